"""Approval requests for rolling a model version out, and the sign-offs they collect."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime
from app.identity.models import Role
from app.systems.models import VersionString


class Environment(StrEnum):
    pilot = "pilot"
    production = "production"


class ApprovalState(StrEnum):
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"
    revoked = "revoked"
    expired = "expired"


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


class ApprovalRequest(SQLModel, table=True):
    """A request to run one version (by artifact digest) of one system in one environment."""

    __tablename__ = "approval_request"
    __table_args__ = (
        sa.Index("ix_approval_release", "system_id", "version", "environment", "id"),
        sa.Index("ix_approval_state_site", "state", "site", "id"),
        sa.Index("ix_approval_valid_until", "state", "valid_until"),
    )

    id: str = Field(primary_key=True, max_length=16)
    system_id: str = Field(foreign_key="ai_system.id", max_length=16)
    site: str = Field(max_length=16)
    version: str = Field(max_length=64)
    artifact_digest: str = Field(max_length=71)
    environment: Environment = Field(sa_type=sa.String(16))
    requester: str = Field(max_length=40)
    justification: str = Field(max_length=5000)
    state: ApprovalState = Field(sa_type=sa.String(16))
    required_signoffs: list[str] = Field(sa_type=sa.JSON)
    # The classification the request was judged under; a later class change invalidates the approval.
    classification_id: int | None = Field(default=None, foreign_key="classification.id")
    ai_act_class: str = Field(max_length=16)
    conditions: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    content_hash: str = Field(max_length=64)
    valid_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=40)
    close_reason: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    revision: int = 1


class SignOff(SQLModel, table=True):
    """One signer's decision for one required role; ``hash`` binds it to the request's content."""

    __tablename__ = "sign_off"
    __table_args__ = (sa.UniqueConstraint("approval_id", "role", name="uq_sign_off_role"),)

    id: int | None = Field(default=None, primary_key=True)
    approval_id: str = Field(foreign_key="approval_request.id", max_length=16, index=True)
    role: Role = Field(sa_type=sa.String(32))
    signer: str = Field(max_length=40)
    decision: Decision = Field(sa_type=sa.String(16))
    comment: str | None = Field(default=None, max_length=5000)
    conditions: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)
    hash: str = Field(max_length=64)


# --- API schemas ---------------------------------------------------------------------------------------


class ApprovalCreate(SQLModel):
    model_config = {"extra": "forbid"}

    version: VersionString
    environment: Environment
    justification: Annotated[str, StringConstraints(min_length=1, max_length=5000)]
