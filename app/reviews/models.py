"""Periodic review of approvals: what is due and what a renewal answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from app.approvals.models import ApprovalRead


class ReviewDue(SQLModel):
    approval_id: str
    system_id: str
    system_name: str
    site: str
    line: str | None
    version: str
    environment: str
    state: str
    valid_until: datetime
    days_left: int = Field(description="whole days until valid_until; negative once past")
    renewal_id: str | None = Field(description="a newer request for the same release still awaiting sign-off")


class RenewRequest(SQLModel):
    """Optional body of a renewal: a justification of its own (default: names the approval renewed)."""

    model_config = {"extra": "forbid"}

    justification: Annotated[str, StringConstraints(min_length=1, max_length=5000)] | None = None


class RenewalRead(SQLModel):
    renews: str
    approval: ApprovalRead
    evidence: list[dict[str, Any]] = Field(
        description="[{item, unchanged, before, now}] since the renewed approval"
    )
