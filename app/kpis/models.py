"""Portfolio figures: the schema of what ``GET /api/v1/kpis`` answers."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class QuarterStages(SQLModel):
    quarter: str = Field(description="e.g. 2026-Q3")
    start: datetime
    end: datetime = Field(description="end of the quarter, or now for the current one")
    production: int
    pilot: int


class MonitoringCoverage(SQLModel):
    production_systems: int
    monitoring_active: int
    share_active: float | None = Field(description="monitoring_active / production_systems; null when none")


class LeadTime(SQLModel):
    systems: int = Field(description="systems with a first production approval")
    median_days: float | None


class PendingApprovals(SQLModel):
    count: int
    median_age_days: float | None
    oldest_age_days: float | None
    by_age: dict[str, int]


class ReplicationShare(SQLModel):
    systems: int
    replicated: int
    share: float | None


class OpenIncidents(SQLModel):
    by_severity: dict[str, int]
    by_kind: dict[str, int]
    reports_overdue: int = Field(description="serious incidents past their Art. 73 deadline and not reported")


class KpiRead(SQLModel):
    sites: list[str] | None = Field(description="the sites counted; null = every site")
    computed_at: datetime
    systems: int = Field(description="systems in the portfolio (not retired)")
    stages_by_quarter: list[QuarterStages]
    monitoring: MonitoringCoverage
    days_to_first_production_approval: LeadTime
    approvals_pending: PendingApprovals
    replicated_from_another_line: ReplicationShare
    open_incidents: OpenIncidents
