"""Single sign-on against a real OpenID Connect provider, driven through real headless Chromium.

The provider is panva's ``oidc-provider`` (npm, pinned in tests/oidc/package-lock.json) run by node from
tests/oidc/provider.mjs: its development login form takes any password, then asks for consent. The registry
is a real ``aireg serve`` over the test database. Users sign in with the provider and land on the registry
with the roles the registry grants them; strangers, tampered answers and switched-off passwords are refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import lxml.html
import pytest

from tests.server import free_port, serve
from tests.web.helpers import PASSWORD
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
NODE = shutil.which("node")
CLIENT_ID, CLIENT_SECRET = "aireg", "aireg-test-secret-0123456789"
SSO_NAME = "Acme SSO"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.environ.get("CI")
        and (not CHROMIUM.exists() or NODE is None or not (OIDC_DIR / "node_modules").is_dir()),
        reason="needs /usr/bin/chromium, node and `npm ci --prefix tests/oidc`; in CI these tests always run",
    ),
]


@contextmanager
def oidc_provider(port: int, redirect_uri: str, log: Path) -> Iterator[str]:
    """Run tests/oidc/provider.mjs on ``port``; yields its issuer; stops it at the end."""
    assert NODE is not None, "node is not on PATH"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [NODE, str(OIDC_DIR / "provider.mjs"), str(port), redirect_uri, CLIENT_ID, CLIENT_SECRET],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # "ready <issuer>" once listening (EOF if it died)
            assert line.startswith("ready "), log.read_text()[-3000:]
            yield line.split()[1]
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
def registry(db: None, database: tuple[str, str | None], tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``registry(**env)``: a real ``aireg serve`` wired to a fresh provider; returns the registry's URL."""
    from app.identity.oidc import forget_provider

    started: list[Any] = []

    def start(**env: str) -> str:
        issuer_port = free_port()  # discovery happens at the first sign-in, after both are up
        settings = {
            "AIREG_LOG_LEVEL": "warning",
            "AIREG_OIDC_ISSUER": f"http://127.0.0.1:{issuer_port}",
            "AIREG_OIDC_CLIENT_ID": CLIENT_ID,
            "AIREG_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "AIREG_OIDC_DISPLAY_NAME": SSO_NAME,
            **env,
        }
        server = serve(database, tmp_path / "serve.log", **settings)
        base = server.__enter__()
        started.append(server)
        provider = oidc_provider(issuer_port, f"{base}/login/oidc/callback", tmp_path / "provider.log")
        provider.__enter__()
        started.append(provider)
        return base

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)
    forget_provider()


@pytest.fixture
def accounts(db: None) -> None:
    """clara (compliance officer) and rita (risk officer), with e-mails; the provider knows both."""
    from app.db import session_scope
    from app.identity import service
    from app.identity.models import Role, UserCreate

    with session_scope() as session:
        for username, email, role in (
            ("clara", "clara@example.com", "compliance_officer"),
            ("rita", "rita@example.com", "risk_officer"),
        ):
            data = UserCreate(
                username=username, email=email, password=PASSWORD, display_name=username.title()
            )
            service.create_user(session, data, actor="test")
            service.grant_role(session, username, Role(role), "*", actor="test")


@pytest.fixture
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def sign_in_at_provider(chromium: Any, base: str, login: str) -> Any:
    """A new browser: "Sign in with Acme SSO", the provider's login form (any password), consent."""
    page = chromium.new_context().new_page()
    page.goto(f"{base}/login")
    page.get_by_role("link", name=f"Sign in with {SSO_NAME}").click()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password works here")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # consent to share openid, e-mail and profile
    page.wait_for_url(lambda url: url.startswith(base))  # back from the provider: signed in, or refused
    page.wait_for_load_state("domcontentloaded")
    return page


def events(action: str) -> list[dict[str, Any]]:
    """The audit events with ``action``, oldest first (read from the shared test database)."""
    from sqlmodel import select

    from app.audit.models import AuditEvent
    from app.db import session_scope

    with session_scope(write=False) as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
        return [{"actor": e.actor, "entity_id": e.entity_id, "after": e.after} for e in rows]


def signed_out(page: Any, base: str) -> bool:
    return "/login" in page.goto(f"{base}/systems").url


def test_clara_and_rita_sign_in_through_the_provider_with_their_registry_roles(
    registry: Callable[..., str], accounts: None, chromium: Any
) -> None:
    from playwright.sync_api import expect

    base = registry()
    clara = sign_in_at_provider(chromium, base, "clara")  # matched by preferred_username
    assert clara.url == f"{base}/dashboard"  # a compliance officer starts on the dashboard
    expect(clara.locator("header")).to_contain_text("Clara")
    rita = sign_in_at_provider(chromium, base, "r.risk")  # username unknown here; matched by verified e-mail
    expect(rita.locator("header")).to_contain_text("Rita")
    assert not signed_out(rita, base)
    sign_ins = events("session.sign_in")
    assert [(e["actor"], e["after"]["method"]) for e in sign_ins] == [("clara", "oidc"), ("rita", "oidc")]
    assert events("session.sign_in_failed") == []


def test_a_stranger_is_told_to_ask_an_administrator_and_gets_no_session(
    registry: Callable[..., str], accounts: None, chromium: Any
) -> None:
    from playwright.sync_api import expect

    base = registry()
    # the second has rita's e-mail, but the provider has not verified it: no match, and the page says who
    for login, who in (("stranger", "stranger@example.com"), ("unverified", "unverified")):
        page = sign_in_at_provider(chromium, base, login)
        expect(page.get_by_role("heading", level=1)).to_have_text("No registry account")
        expect(page.locator("main")).to_contain_text(f"no registry account for {who}; ask an administrator")
        assert "/login/oidc/callback" in page.url
        assert signed_out(page, base)
    failed = events("session.sign_in_failed")
    assert [(e["entity_id"], e["after"]["reason"], e["after"]["method"]) for e in failed] == [
        ("stranger@example.com", "no_account", "oidc"),
        ("unverified", "no_account", "oidc"),
    ]
    assert events("session.sign_in") == []


def test_with_oidc_create_users_a_stranger_gets_an_account_with_no_roles(
    registry: Callable[..., str], accounts: None, chromium: Any
) -> None:
    from playwright.sync_api import expect
    from sqlmodel import select

    from app.db import session_scope
    from app.identity import service
    from app.identity.models import User

    base = registry(AIREG_OIDC_CREATE_USERS="true")
    page = sign_in_at_provider(chromium, base, "stranger")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Stranger S.")  # no roles yet
    with session_scope(write=False) as session:
        user = session.exec(select(User).where(User.username == "stranger")).one()
        assert user.email == "stranger@example.com" and user.is_active
        assert service.user_grants(session, user.id) == []
    assert [e["actor"] for e in events("user.create")][-1] == "oidc"
    assert [e["actor"] for e in events("session.sign_in")] == ["stranger"]


def test_a_tampered_state_is_refused_audited_and_signs_nobody_in(
    registry: Callable[..., str], accounts: None, chromium: Any
) -> None:
    from playwright.sync_api import expect

    base = registry()
    page = chromium.new_context().new_page()
    sent: list[dict[str, list[str]]] = []  # the authorization requests the registry sends the browser to
    page.on("request", lambda r: sent.append(parse_qs(urlsplit(r.url).query)) if "/auth?" in r.url else None)
    page.goto(f"{base}/login/oidc")  # a real attempt: its state, nonce and verifier are in this browser
    assert sent[0]["code_challenge_method"] == ["S256"] and sent[0]["nonce"] and sent[0]["code_challenge"]
    response = page.goto(f"{base}/login/oidc/callback?code=stolen-code&state=not-the-state")
    assert response.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("Single sign-on did not work")
    expect(page.locator("main")).to_contain_text("state mismatch")
    # the failed answer used the attempt up: its real state does not work afterwards either
    response = page.goto(f"{base}/login/oidc/callback?code=stolen-code&state={sent[0]['state'][0]}")
    assert response.status == 400
    expect(page.locator("main")).to_contain_text("no sign-in was started in this browser")
    # an error sent back by the provider, with the right state, is refused as well
    page.goto(f"{base}/login/oidc")
    response = page.goto(f"{base}/login/oidc/callback?error=access_denied&state={sent[-1]['state'][0]}")
    assert response.status == 403
    expect(page.locator("main")).to_contain_text("the sign-in provider refused")
    assert signed_out(page, base)
    reasons = [e["after"]["reason"] for e in events("session.sign_in_failed")]
    assert reasons == ["state_mismatch", "no_attempt", "provider_error:access_denied"]
    assert events("session.sign_in") == []


def test_with_local_passwords_off_the_form_is_gone_and_a_password_post_is_refused(
    registry: Callable[..., str], accounts: None
) -> None:
    base = registry(AIREG_LOCAL_PASSWORDS="false")
    with httpx.Client(base_url=base) as browser:
        page = browser.get("/login")
        doc = lxml.html.fromstring(page.text)
        assert doc.xpath("//input[@type='password']") == []
        assert doc.xpath("//a[@id='oidc-sign-in']/text()") == [f"Sign in with {SSO_NAME}"]
        csrf = doc.xpath("//meta[@name='csrf-token']/@content")[0]
        refused = browser.post(
            "/login",
            data={"csrf_token": csrf, "username": "clara", "password": PASSWORD},
            follow_redirects=False,
        )
        assert refused.status_code == 403
        assert "switched off" in refused.text
        assert browser.get("/systems", follow_redirects=False).status_code == 303  # still anonymous
    assert events("session.sign_in") == []
