"""Incidents of AI systems (AI Act Art. 73): the table and its schemas."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, enum_column
from app.http import IsoDateTime

LongText = Annotated[str, StringConstraints(min_length=1, max_length=5000, strip_whitespace=True)]


class IncidentKind(StrEnum):
    """Kinds of incident (AI Act Art. 3(49) points (a)-(d), Art. 3(61)); the catalogue lists the same ids."""

    death = "death"
    health = "health"
    critical_infrastructure = "critical_infrastructure"
    fundamental_rights = "fundamental_rights"
    property_environment = "property_environment"
    widespread_infringement = "widespread_infringement"
    other = "other"


class IncidentStatus(StrEnum):
    open = "open"
    closed = "closed"


class DeadlineState(StrEnum):
    """Where an incident stands against its Art. 73 reporting deadline."""

    not_reportable = "not_reportable"
    due = "due"
    overdue = "overdue"
    reported_on_time = "reported_on_time"
    reported_late = "reported_late"


class Incident(SQLModel, table=True):
    """An incident or malfunction of an AI system; a serious one of a high-risk system is reportable."""

    __table_args__ = (
        sa.Index("ix_incident_system_status", "system_id", "status"),
        sa.Index("ix_incident_status_site", "status", "site", "id"),
    )

    id: str = Field(primary_key=True, max_length=16)
    system_id: str = Field(foreign_key="ai_system.id", max_length=16)
    site: str = Field(max_length=16)
    title: str = Field(max_length=200)
    description: str = Field(max_length=5000)
    serious: bool
    kind: IncidentKind = Field(sa_type=enum_column(IncidentKind, 32))
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    aware_at: datetime = Field(sa_type=UTCDateTime)
    reported_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The system's AI Act class when the incident was recorded, and the Art. 73 rule that set the deadline.
    ai_act_class: str | None = Field(default=None, max_length=16)
    report_deadline: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deadline_rule: str | None = Field(default=None, max_length=16)
    deadline_days: int | None = None
    # Who must be told under the AI Act, judged at ``aware_at`` from the system's classification (Art. 73 with
    # its sectoral limits 73(9)-(10); Art. 55(1)(c) to the AI Office for systemic-risk GPAI models):
    # [{id, binds, report_to, applies_from, reason, condition}]; null for a first-edition classification.
    reporting: list[dict[str, Any]] | None = Field(default=None, sa_type=sa.JSON)
    status: IncidentStatus = Field(default=IncidentStatus.open, sa_type=enum_column(IncidentStatus, 16))
    root_cause: str | None = Field(default=None, max_length=5000)
    corrective_action: str | None = Field(default=None, max_length=5000)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=40)
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lifted_by: str | None = Field(default=None, max_length=40)
    lift_reason: str | None = Field(default=None, max_length=2000)
    created_by: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    revision: int = 1


# --- incident schemas ----------------------------------------------------------------------------------


class IncidentCreate(SQLModel):
    model_config = {"extra": "forbid"}

    title: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    description: LongText
    serious: bool
    kind: IncidentKind
    occurred_at: IsoDateTime
    aware_at: IsoDateTime
    reported_at: IsoDateTime | None = Field(
        default=None, description="when it was reported to the market surveillance authority, if already"
    )


class IncidentClose(SQLModel):
    model_config = {"extra": "forbid"}

    root_cause: LongText
    corrective_action: LongText
    revision: int | None = None


class IncidentLift(SQLModel):
    model_config = {"extra": "forbid"}

    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
    revision: int | None = None


class IncidentReport(SQLModel):
    model_config = {"extra": "forbid"}

    reported_at: IsoDateTime
    revision: int | None = None


class IncidentRead(SQLModel):
    id: str
    system_id: str
    site: str
    title: str
    description: str
    serious: bool
    kind: IncidentKind
    occurred_at: datetime
    aware_at: datetime
    reported_at: datetime | None
    status: IncidentStatus
    report_deadline: datetime | None = Field(description="AI Act Art. 73, counted from aware_at; null = none")
    deadline_rule: str | None = Field(description="the Art. 73 paragraph that set the deadline, e.g. art73.4")
    deadline_days: int | None
    reporting: list[dict[str, Any]] | None = Field(
        default=None,
        description="reporting duties at aware_at: {id, binds, report_to, applies_from, reason, condition}",
    )
    deadline_state: DeadlineState
    time_left_seconds: int | None = Field(
        description="until the deadline while unreported; negative = overdue"
    )
    ai_act_class: str | None
    suspends_release: bool
    root_cause: str | None
    corrective_action: str | None
    closed_at: datetime | None
    closed_by: str | None
    lifted_at: datetime | None
    lifted_by: str | None
    lift_reason: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    revision: int
