"""Secrets of this instance: made at random on first start, shared by every worker, never in the source.

``AIREG_SECRET_KEY`` (when set) is the session-cookie signing key. Otherwise the first process to need one
inserts a random key into ``instance_secret``; every other worker, restart and machine on the same database
reads that same row. Two processes starting at once race on the primary key: the loser reads the winner's.
"""

from __future__ import annotations

import secrets
import threading

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.db import session_scope, utcnow
from app.security.models import InstanceSecret
from app.settings import get_settings

SESSION_SIGNING = "session_signing_key"

_cache: dict[str, str] = {}
_lock = threading.Lock()


def instance_secret(name: str) -> str:
    """The instance's secret ``name``, created (256 random bits) the first time any process asks."""
    with _lock:
        if name in _cache:
            return _cache[name]
        value = _read(name)
        if value is None:
            try:
                with session_scope() as session:
                    session.add(
                        InstanceSecret(name=name, value=secrets.token_urlsafe(48), created_at=utcnow())
                    )
            except IntegrityError:
                pass  # another process made it first
            value = _read(name)
        assert value is not None
        _cache[name] = value
        return value


def _read(name: str) -> str | None:
    with session_scope(write=False) as session:
        return session.execute(
            sa.select(col(InstanceSecret.value)).where(col(InstanceSecret.name) == name)
        ).scalar()


def session_signing_key() -> str:
    """The key that signs session cookies: ``AIREG_SECRET_KEY``, or the instance's own random one."""
    configured = get_settings().secret_key
    if configured is not None:
        return configured.get_secret_value()
    return instance_secret(SESSION_SIGNING)


def forget() -> None:
    """Drop the cached secrets (tests that recreate the database)."""
    with _lock:
        _cache.clear()
