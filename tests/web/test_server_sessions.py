"""Web sessions live on the server: a cookie is only as good as the session row behind it.

Signing out, a password change, deactivation and a role revocation end the row, so a copy of the cookie
taken before is refused afterwards. The cookie signing key is never a default from the source: without
``AIREG_SECRET_KEY`` the instance makes a random one at first start, which every process shares.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner

from app.web.session import SESSION_COOKIE
from tests.server import serve
from tests.web.helpers import PASSWORD, WebClient


def cookie_of(browser: WebClient) -> str:
    return browser.client.cookies[SESSION_COOKIE]


def replay(client: TestClient, cookie: str, path: str = "/systems") -> int:
    """Status of a page fetched by a fresh browser that presents ``cookie`` (a stolen or kept copy)."""
    thief = TestClient(client.app, raise_server_exceptions=False)
    thief.cookies.set(SESSION_COOKIE, cookie)
    return thief.get(path, follow_redirects=False).status_code


def forge(secret: str, content: dict[str, Any]) -> str:
    """A session cookie signed with ``secret`` the way Starlette's SessionMiddleware signs one."""
    data = base64.b64encode(json.dumps(content).encode())
    return TimestampSigner(secret).sign(data).decode()


def audit_actions(client: TestClient, headers: dict[str, str], **params: str) -> list[str]:
    r = client.get("/api/v1/audit-events", params={"limit": 500, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["items"]]


def test_a_cookie_copied_before_sign_out_is_refused_after_it(
    web: Callable[..., WebClient], client: TestClient
) -> None:
    browser = web("bob")
    kept = cookie_of(browser)
    assert replay(client, kept) == 200
    assert browser.post("/logout", {}, follow=False).status == 303
    assert replay(client, kept) == 303  # to the login page: the session has ended on the server
    assert replay(client, kept, "/api/v1/systems") == 401


def test_a_role_revocation_ends_the_users_sessions(
    web: Callable[..., WebClient], client: TestClient, admin: dict[str, str]
) -> None:
    browser = web("bob")
    kept = cookie_of(browser)
    r = client.delete("/api/v1/users/bob/roles/business_owner", params={"site": "STR"}, headers=admin)
    assert r.status_code == 204
    assert replay(client, kept) == 303
    assert browser.get("/systems", follow=False).status == 303


def test_a_user_without_a_password_can_never_have_a_web_session(
    web: Callable[..., WebClient], client: TestClient, make_user: Callable[..., dict[str, str]]
) -> None:
    from app.db import session_scope
    from app.errors import Unauthorized
    from app.identity import service
    from app.identity.models import User

    make_user("svc", ("admin", "*"))  # like `aireg users add svc` without --password-stdin
    browser = web(None)
    browser.get("/login")
    assert browser.post("/login", {"username": "svc", "password": ""}).status == 400
    assert browser.post("/login", {"username": "svc", "password": "anything-at-all"}).status == 400
    with session_scope() as session:
        user = session.exec(service.select(User).where(User.username == "svc")).one()
        with pytest.raises(Unauthorized):
            service.start_web_session(session, user)
    # a cookie signed with the instance's key but naming no live session gets nothing
    secret = os.environ["AIREG_SECRET_KEY"]
    for content in ({"sid": "made-up"}, {"uid": user.id, "auth": "x"}):
        assert replay(client, forge(secret, content), "/api/v1/users/me") == 401


def test_sign_ins_sign_outs_and_failures_are_in_the_trail(
    web: Callable[..., WebClient], client: TestClient, admin: dict[str, str]
) -> None:
    browser = web("bob")
    browser.post("/logout", {})
    failed = web(None)
    failed.get("/login")
    assert failed.post("/login", {"username": "bob", "password": "not-the-password"}).status == 400
    assert client.get("/api/v1/systems", headers={"Authorization": "Bearer aireg_forged"}).status_code == 401
    r = client.get(
        "/api/v1/release-permission",
        params={"system": "AIS-000001", "version": "1"},
        headers={"Authorization": "Bearer aireg_forged2"},
    )
    assert r.status_code == 401
    actions = audit_actions(client, admin)
    assert actions.count("session.sign_in") == 1
    assert actions.count("session.sign_out") == 1
    assert actions.count("session.sign_in_failed") == 1
    assert actions.count("token.use_failed") == 2
    verified = client.get("/api/v1/audit-events/verify", headers=admin).json()
    assert verified["valid"] is True


# --- the signing key -----------------------------------------------------------------------------------


@pytest.fixture
def no_configured_secret() -> Iterator[None]:
    from app.security import instance
    from app.settings import get_settings

    saved = os.environ.pop("AIREG_SECRET_KEY")
    get_settings.cache_clear()
    instance.forget()
    try:
        yield
    finally:
        os.environ["AIREG_SECRET_KEY"] = saved
        get_settings.cache_clear()
        instance.forget()


@pytest.mark.slow
def test_without_a_configured_key_every_process_shares_one_random_key(
    no_configured_secret: None,
    database: tuple[str, str | None],
    people: dict[str, Any],
    tmp_path: Path,
) -> None:
    from app.db import session_scope
    from app.security.instance import SESSION_SIGNING
    from app.security.models import InstanceSecret

    with serve(database, tmp_path / "a.log") as a, serve(database, tmp_path / "b.log") as b:
        with httpx.Client(base_url=a) as browser_a:
            login = browser_a.get("/login")
            csrf = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            r = browser_a.post("/login", data={"username": "bob", "password": PASSWORD, "csrf_token": csrf})
            assert r.status_code == 303, r.text
            cookie = browser_a.cookies[SESSION_COOKIE]
        # the other process (another worker or machine) accepts the session: the key is shared
        r = httpx.get(f"{b}/api/v1/users/me", cookies={SESSION_COOKIE: cookie})
        assert r.status_code == 200 and r.json()["username"] == "bob"
        # the first edition's default key signs nothing any more
        for secret in ("dev-insecure-change-me", "test-secret-key-0123456789abcdef"):
            forged = forge(secret, {"sid": cookie, "uid": 1})
            assert httpx.get(f"{b}/api/v1/users/me", cookies={SESSION_COOKIE: forged}).status_code == 401
    with session_scope(write=False) as session:
        stored = session.get(InstanceSecret, SESSION_SIGNING)
    assert stored is not None and len(stored.value) >= 43  # >= 256 random bits
    # a restart keeps it: the key is the instance's, not the process's
    with serve(database, tmp_path / "c.log") as c:
        assert httpx.get(f"{c}/api/v1/users/me", cookies={SESSION_COOKIE: cookie}).status_code == 200


def test_two_instances_make_different_keys(no_configured_secret: None, db: None) -> None:
    from app.db import session_scope
    from app.security import instance
    from app.security.models import InstanceSecret

    first = instance.session_signing_key()
    assert instance.session_signing_key() == first  # cached
    with session_scope() as session:  # a new instance: its database has no key yet
        session.delete(session.get(InstanceSecret, instance.SESSION_SIGNING))
    instance.forget()
    second = instance.session_signing_key()
    assert second != first and len(second) >= 43
