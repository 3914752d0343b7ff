"""Sliding-window limits on failed logins and failed token authentications (429 with ``Retry-After``).

Failures are rows in ``auth_failure``, so every worker and every host of a scaled-out service counts the
same attempts. Keys are the client IP, the username tried, and a hash of the presented token's prefix.
A valid token is never limited: it is checked first, and only a failure touches this table. A login is
limited before its password is checked, so a blocked client cannot keep guessing.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from app.audit import service as audit
from app.db import session_scope, utcnow
from app.errors import TooManyRequests
from app.security.models import AuthFailure
from app.settings import get_settings

TOKEN_PREFIX_CHARS = 14  # "aireg_" and the first 8 random characters


def ip_key(ip: str | None) -> str:
    return f"ip:{ip or 'unknown'}"[:80]


def user_key(username: str) -> str:
    return f"user:{username.lower()}"[:80]


def token_key(token: str) -> str:
    """The token's prefix, hashed: the key never holds any part of a token in the clear."""
    return "token:" + hashlib.sha256(token[:TOKEN_PREFIX_CHARS].encode()).hexdigest()[:32]


def retry_after(session: Session, keys: Sequence[str]) -> int | None:
    """Seconds until every key is below the limit again, or ``None`` when none is at the limit."""
    settings = get_settings()
    limit, window = settings.auth_failure_limit, timedelta(seconds=settings.auth_failure_window_seconds)
    now = utcnow()
    cutoff = now - window
    wait = 0.0
    for key in keys:
        recent = sa.select(col(AuthFailure.at)).where(
            col(AuthFailure.key) == key, col(AuthFailure.at) > cutoff
        )
        count = session.execute(sa.select(sa.func.count()).select_from(recent.subquery())).scalar_one()
        if count < limit:
            continue
        # the attempt that must leave the window before one more is allowed
        expiring = session.execute(
            recent.order_by(col(AuthFailure.at)).limit(1).offset(count - limit)
        ).scalar_one()
        wait = max(wait, (expiring + window - now).total_seconds())
    return max(1, math.ceil(wait)) if wait > 0 else None


def _too_many(seconds: int, what: str) -> TooManyRequests:
    return TooManyRequests(f"too many failed {what}; try again in {seconds} s", retry_after=seconds)


def record_failures(session: Session, keys: Sequence[str]) -> None:
    """Count one failure against each key and forget attempts older than the window."""
    now = utcnow()
    cutoff = now - timedelta(seconds=get_settings().auth_failure_window_seconds)
    session.execute(sa.delete(AuthFailure).where(col(AuthFailure.at) <= cutoff))
    for key in keys:
        session.add(AuthFailure(key=key, at=now))
    session.flush()


def token_failed(ip: str | None, token: str, reason: str = "token did not authenticate") -> None:
    """A presented token did not authenticate: count it and audit it, or raise 429 when its IP or prefix
    is blocked (attempts past the limit are refused unread, and not written to the trail one by one)."""
    keys = (ip_key(ip), token_key(token))
    with session_scope() as session:
        seconds = retry_after(session, keys)
        if seconds is None:
            record_failures(session, keys)
            audit.record(
                session,
                actor="anonymous",
                action="token.use_failed",
                entity_type="token",
                entity_id=keys[1].removeprefix("token:")[:16],
                after={"reason": reason, "ip": ip},
            )
    if seconds is not None:
        raise _too_many(seconds, "authentications from this client")


def guard_login(ip: str | None, username: str) -> None:
    """Call before checking a password: 429 while the client IP or the username is blocked."""
    with session_scope(write=False) as session:
        seconds = retry_after(session, (ip_key(ip), user_key(username)))
    if seconds is not None:
        raise _too_many(seconds, "logins")


def login_failed(ip: str | None, username: str) -> None:
    """Count a failed login against the client IP and the username, and audit it (own transaction)."""
    with session_scope() as session:
        record_failures(session, (ip_key(ip), user_key(username)))
        audit.record(
            session,
            actor="anonymous",
            action="session.sign_in_failed",
            entity_type="user",
            entity_id=username[:64] or "-",
            after={"ip": ip},
        )


def login_succeeded(username: str) -> None:
    """A successful login clears the username's failures (the IP's stay counted)."""
    with session_scope() as session:
        session.execute(sa.delete(AuthFailure).where(col(AuthFailure.key) == user_key(username)))
