"""The hash-chained audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class AuditEvent(SQLModel, table=True):
    """One recorded change or decision; ``hash`` covers the event and the hash of the one before it.

    ``hash`` is an HMAC-SHA256 under the audit key named by ``key_id`` (app/audit/keys.py); the database
    refuses UPDATE and DELETE on this table (app/audit/guard.py).
    """

    __tablename__ = "audit_event"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    ts: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=64, index=True)
    action: str = Field(max_length=64)
    entity_type: str = Field(max_length=40)
    entity_id: str = Field(max_length=64)
    site: str | None = Field(default=None, max_length=32, index=True)
    before: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)
    key_id: str | None = Field(default=None, max_length=16)

    __table_args__ = (sa.Index("ix_audit_event_entity", "entity_type", "entity_id", "seq"),)


class AuditEventRead(SQLModel):
    seq: int
    ts: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    site: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str
    key_id: str | None = None


class ChainVerification(SQLModel):
    """What a walk of the chain found.

    ``events`` events verify, up to ``head``; ``first_bad_seq`` is the first that does not (or the first
    missing one), with the ``reason``. ``checkpoint_seq`` is the newest event the checkpoints outside the
    database vouch for (None without any); ``from_seq`` where the walk started (1 for a full walk);
    ``notice`` what the answer cannot show (e.g. no head checkpoint to compare with).
    """

    valid: bool
    events: int
    head: str
    first_bad_seq: int | None
    reason: str | None = None
    checkpoint_seq: int | None = None
    from_seq: int = 1
    notice: str | None = None
