"""Failed authentication attempts, kept briefly for rate limiting (shared by every worker)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class AuthFailure(SQLModel, table=True):
    """One failed login or token authentication, counted against a key (client IP, username, token prefix)."""

    __tablename__ = "auth_failure"
    __table_args__ = (sa.Index("ix_auth_failure_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80)
    at: datetime = Field(sa_type=UTCDateTime, index=True)


class InstanceSecret(SQLModel, table=True):
    """A random secret made at the instance's first start (e.g. the session-cookie signing key).

    Kept in the database so every worker, restart and machine of one deployment shares it; never a default
    in the source. ``AIREG_SECRET_KEY`` overrides it.
    """

    __tablename__ = "instance_secret"

    name: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime)
