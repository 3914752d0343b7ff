"""Operating AI at scale: monitoring reports, deployments, incidents (AI Act Art. 73) and their schemas."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from app.approvals.models import ApprovalRead, Environment
from app.db import UTCDateTime
from app.http import IsoDateTime
from app.systems.models import (
    LINE_PATTERN,
    LifecycleStage,
    MetricValue,
    SiteCode,
    SystemRead,
    UsernameRef,
    VersionString,
)

# A production system with no monitoring interval of its own is expected to report at least this often.
DEFAULT_MONITORING_INTERVAL_HOURS = 24

LongText = Annotated[str, StringConstraints(min_length=1, max_length=5000, strip_whitespace=True)]
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
ZoneRef = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_.-]{0,23}$")]
LineRef = Annotated[str, StringConstraints(pattern=LINE_PATTERN)]


class MonitoringStatus(StrEnum):
    ok = "ok"
    degraded = "degraded"
    alert = "alert"


class MonitoringState(StrEnum):
    """Whether a system's pipeline reports as often as expected."""

    active = "active"  # a report came within the expected interval
    lapsed = "lapsed"  # the last report is older than the interval
    missing = "missing"  # monitoring is expected but no report ever came
    not_required = "not_required"  # not in production and no interval of its own


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


def enum_column(enum_cls: type[StrEnum], length: int = 32) -> sa.Enum:
    """A VARCHAR column storing an enum's values and loading them back as enum members."""
    return sa.Enum(
        enum_cls, native_enum=False, length=length, values_callable=lambda members: [m.value for m in members]
    )


# --- tables --------------------------------------------------------------------------------------------


class MonitoringReport(SQLModel, table=True):
    """One report of a pipeline's monitoring run: the version observed, metric values and a verdict."""

    __tablename__ = "monitoring_report"
    __table_args__ = (
        sa.Index("ix_monitoring_report_system_time", "system_id", "observed_at"),
        sa.Index("ix_monitoring_report_site_time", "site", "observed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    system_id: str = Field(foreign_key="ai_system.id", max_length=16)
    site: str = Field(max_length=16)
    version: str = Field(max_length=64)
    status: MonitoringStatus = Field(sa_type=enum_column(MonitoringStatus, 16))
    metrics: dict[str, float] = Field(default_factory=dict, sa_type=sa.JSON)
    note: str | None = Field(default=None, max_length=5000)
    observed_at: datetime = Field(sa_type=UTCDateTime)
    reported_by: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Deployment(SQLModel, table=True):
    """A version a pipeline rolled out to an environment; line and zone are kept as they were then."""

    __table_args__ = (
        sa.Index("ix_deployment_system_env_time", "system_id", "environment", "deployed_at"),
        sa.Index("ix_deployment_site_line_time", "site", "line", "deployed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    system_id: str = Field(foreign_key="ai_system.id", max_length=16)
    site: str = Field(max_length=16)
    line: str | None = Field(default=None, max_length=24)
    zone: str | None = Field(default=None, max_length=24)
    version: str = Field(max_length=64)
    artifact_digest: str = Field(max_length=71)
    environment: Environment = Field(sa_type=enum_column(Environment, 16))
    deployed_at: datetime = Field(sa_type=UTCDateTime)
    approval_id: str | None = Field(default=None, max_length=16)
    note: str | None = Field(default=None, max_length=5000)
    reported_by: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime)


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


# --- monitoring schemas --------------------------------------------------------------------------------


class MonitoringReportCreate(SQLModel):
    model_config = {"extra": "forbid"}

    version: VersionString
    status: MonitoringStatus
    metrics: dict[MetricName, MetricValue] = Field(default_factory=dict, max_length=100)
    observed_at: IsoDateTime | None = Field(default=None, description="when the run happened (default: now)")
    note: Annotated[str, StringConstraints(max_length=5000)] | None = None


class MonitoringReportRead(SQLModel):
    id: int
    system_id: str
    version: str
    status: MonitoringStatus
    metrics: dict[str, float]
    note: str | None
    observed_at: datetime
    reported_by: str
    created_at: datetime


class MonitoringStatusRead(SQLModel):
    """A system's monitoring state, as lists, the dashboard and KPIs show it."""

    system_id: str
    name: str
    site: str
    line: str | None
    lifecycle_stage: LifecycleStage
    state: MonitoringState
    interval_hours: int | None
    last_observed_at: datetime | None
    last_status: MonitoringStatus | None
    last_version: str | None
    due_by: datetime | None = Field(description="when the next report is due (past when lapsed)")


# --- deployment schemas --------------------------------------------------------------------------------


class DeploymentCreate(SQLModel):
    model_config = {"extra": "forbid"}

    version: VersionString
    environment: Environment
    deployed_at: IsoDateTime | None = Field(default=None, description="default: now")
    note: Annotated[str, StringConstraints(max_length=5000)] | None = None


class DeploymentRead(SQLModel):
    id: int
    system_id: str
    site: str
    line: str | None
    zone: str | None
    version: str
    artifact_digest: str
    environment: Environment
    deployed_at: datetime
    approval_id: str | None
    note: str | None
    reported_by: str
    created_at: datetime


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


# --- replication ---------------------------------------------------------------------------------------


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


# --- reviews -------------------------------------------------------------------------------------------


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
