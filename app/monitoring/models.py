"""Monitoring of AI systems in operation: monitoring reports (AI Act Art. 72), deployments, schemas."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from app.approvals.models import Environment
from app.db import UTCDateTime, enum_column
from app.http import IsoDateTime
from app.systems.models import LifecycleStage, MetricValue, VersionString

# A production system with no monitoring interval of its own is expected to report at least this often.
DEFAULT_MONITORING_INTERVAL_HOURS = 24

MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]


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
