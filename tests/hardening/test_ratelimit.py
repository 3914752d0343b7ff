"""Failed token authentications and failed logins are limited per client IP and per token prefix / user."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.db import set_clock_offset
from app.errors import TooManyRequests
from app.security import ratelimit
from app.settings import get_settings
from tests.systems.helpers import assert_problem

BAD = "aireg_" + "x" * 43


@pytest.fixture
def limit(monkeypatch: pytest.MonkeyPatch) -> int:
    settings = get_settings()
    monkeypatch.setattr(settings, "auth_failure_limit", 3)
    monkeypatch.setattr(settings, "auth_failure_window_seconds", 60)
    return 3


def _bad(client: Any, token: str = BAD) -> Any:
    return client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})


def test_failed_token_authentications_turn_into_429_with_retry_after(client: Any, limit: int) -> None:
    for _ in range(limit):
        assert_problem(_bad(client), 401)
    r = _bad(client)
    problem = assert_problem(r, 429)
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 60 and problem["retry_after"] == retry
    assert "try again" in problem["detail"]


def test_a_valid_token_is_never_limited_even_from_a_blocked_client(
    client: Any, admin: dict[str, str], limit: int
) -> None:
    for _ in range(limit + 2):
        _bad(client)
    assert _bad(client).status_code == 429
    for _ in range(20):
        r = client.get("/api/v1/users/me", headers=admin)
        assert r.status_code == 200, r.text


def test_the_window_slides(client: Any, limit: int) -> None:
    for _ in range(limit):
        _bad(client)
    assert _bad(client).status_code == 429
    set_clock_offset(timedelta(seconds=61))
    assert _bad(client).status_code == 401  # the old failures left the window


def test_blocked_attempts_are_not_recorded_so_the_block_ends(client: Any, limit: int) -> None:
    for _ in range(limit):
        _bad(client)
    for _ in range(10):
        assert _bad(client).status_code == 429
    from app.db import session_scope

    with session_scope(write=False) as session:
        assert ratelimit.retry_after(session, [ratelimit.ip_key("testclient")]) is not None
        count = session.execute(
            __import__("sqlalchemy").text("SELECT count(*) FROM auth_failure WHERE key = :k"),
            {"k": ratelimit.ip_key("testclient")},
        ).scalar_one()
    assert count == limit


def test_the_key_never_holds_the_token_in_the_clear() -> None:
    key = ratelimit.token_key(BAD)
    assert "xxxx" not in key and key.startswith("token:") and len(key) <= 80
    assert ratelimit.token_key(BAD[:14] + "other-suffix") == key  # same prefix, same key


def test_a_missing_header_is_not_counted(client: Any, limit: int) -> None:
    for _ in range(limit + 3):
        assert client.get("/api/v1/users/me").status_code == 401


def test_login_guard_blocks_before_the_password_is_checked(db: None, limit: int) -> None:
    for _ in range(limit):
        ratelimit.guard_login("10.0.0.1", "bob")
        ratelimit.login_failed("10.0.0.1", "bob")
    with pytest.raises(TooManyRequests) as blocked:
        ratelimit.guard_login("10.0.0.9", "bob")  # per username, from any IP
    assert blocked.value.extra["retry_after"] >= 1
    with pytest.raises(TooManyRequests):
        ratelimit.guard_login("10.0.0.1", "alice")  # per IP, for any username
    ratelimit.guard_login("10.0.0.2", "alice")  # others are not affected
    ratelimit.login_succeeded("bob")
    ratelimit.guard_login("10.0.0.3", "bob")  # a successful login clears the username


def test_old_failures_are_purged(db: None, limit: int) -> None:
    from app.db import session_scope

    ratelimit.login_failed("10.0.0.1", "bob")
    set_clock_offset(timedelta(seconds=120))
    ratelimit.login_failed("10.0.0.2", "carol")
    with session_scope(write=False) as session:
        keys = session.execute(__import__("sqlalchemy").text("SELECT key FROM auth_failure")).scalars().all()
    assert sorted(keys) == ["ip:10.0.0.2", "user:carol"]
