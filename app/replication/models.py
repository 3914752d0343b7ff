"""Replication of an AI system to another line or site: request and answer schemas."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from app.systems.models import LINE_PATTERN, SiteCode, SystemRead, UsernameRef

ZoneRef = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_.-]{0,23}$")]
LineRef = Annotated[str, StringConstraints(pattern=LINE_PATTERN)]


class ReplicateRequest(SQLModel):
    model_config = {"extra": "forbid"}

    site: SiteCode
    line: LineRef | None = None
    zone: ZoneRef | None = None
    business_owner: UsernameRef | None = Field(
        default=None, description="owner at the new site (default: the origin's owner)"
    )
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] | None = None


class SignoffPlan(SQLModel):
    """Which sign-offs of the origin's approval carry over to the replica and which must be given again."""

    origin_approval_id: str | None
    version: str | None
    environment: str | None
    reused: list[dict[str, Any]] = Field(description="[{role, signer, decision, signed_at}] carried over")
    asked_again: list[dict[str, Any]] = Field(description="[{role, because}] the new placement changes")


class ReplicationRead(SQLModel):
    origin: str
    reused: dict[str, Any] = Field(description="evidence carried over: classification, risk assessment, ...")
    signoffs: SignoffPlan


class ReplicatedSystemRead(SystemRead):
    """The new system, plus what was carried over from the origin and what must be signed again."""

    replication: ReplicationRead
