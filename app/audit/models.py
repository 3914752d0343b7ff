"""The hash-chained audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class AuditEvent(SQLModel, table=True):
    """One recorded change or decision; ``hash`` covers the event and the hash of the one before it."""

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


class ChainVerification(SQLModel):
    valid: bool
    events: int
    head: str
    first_bad_seq: int | None
    reason: str | None = None
