"""Portfolio figures: lifecycle per quarter, monitoring coverage, approval lead time and backlog, replication
share and open incidents (no HTTP here).

Lifecycle history per quarter is replayed from the audit trail (``system.create`` / ``system.update`` events
that carry ``lifecycle_stage``), the one place every past state of a system is kept.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, select

from app.approvals.models import ApprovalRequest, ApprovalState, Environment
from app.audit.models import AuditEvent
from app.db import utcnow
from app.operations import incidents
from app.operations.models import MonitoringState
from app.operations.service import monitoring_statuses
from app.systems.models import AISystem, LifecycleStage

SECONDS_PER_DAY = 86_400
# Ages of pending approvals are counted in these buckets (days, upper bound exclusive; None = no bound).
AGE_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("0-7d", 7),
    ("7-30d", 30),
    ("30-90d", 90),
    ("90d+", None),
)
_STAGE_ACTIONS = ("system.create", "system.update", "system.archive", "system.delete")


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


def quarter_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the quarter ``moment`` falls in."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, 3 * ((moment.month - 1) // 3) + 1, 1, tzinfo=UTC)


def _shift_quarters(start: datetime, n: int) -> datetime:
    index = start.year * 4 + (start.month - 1) // 3 + n
    return datetime(index // 4, 3 * (index % 4) + 1, 1, tzinfo=UTC)


def _label(start: datetime) -> str:
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _in_sites(column: Any, sites: set[str] | None) -> Any:
    return sa.true() if sites is None else column.in_(sorted(sites))


def stages_by_quarter(
    session: Session, *, sites: set[str] | None, quarters: int, now: datetime
) -> list[QuarterStages]:
    """Systems in production and in pilot at the end of each of the last ``quarters`` quarters."""
    current = quarter_start(now)
    starts = [_shift_quarters(current, -i) for i in range(quarters - 1, -1, -1)]
    ends = [*starts[1:], now]
    rows = session.execute(
        sa.select(AuditEvent.ts, AuditEvent.action, AuditEvent.entity_id, AuditEvent.after)
        .where(
            AuditEvent.entity_type == "system",
            AuditEvent.action.in_(_STAGE_ACTIONS),
            AuditEvent.ts <= now,
            _in_sites(AuditEvent.site, sites),
        )
        .order_by(AuditEvent.ts, AuditEvent.seq)
    ).all()
    stage: dict[str, str] = {}
    out: list[QuarterStages] = []
    i = 0
    for start, end in zip(starts, ends, strict=True):
        while i < len(rows) and rows[i][0] < end:
            _, action, system_id, after = rows[i]
            if action in ("system.archive", "system.delete"):
                stage.pop(system_id, None)
            elif after and "lifecycle_stage" in after:
                stage[system_id] = str(after["lifecycle_stage"])
            i += 1
        values = list(stage.values())
        out.append(
            QuarterStages(
                quarter=_label(start),
                start=start,
                end=end,
                production=values.count(LifecycleStage.production.value),
                pilot=values.count(LifecycleStage.pilot.value),
            )
        )
    return out


def _lead_time(session: Session, systems: list[AISystem]) -> LeadTime:
    """Median days from a system's registration to its first approved production release."""
    ids = {s.id: s for s in systems}
    if not ids:
        return LeadTime(systems=0, median_days=None)
    first = session.execute(
        sa.select(ApprovalRequest.system_id, sa.func.min(ApprovalRequest.decided_at))
        .where(
            ApprovalRequest.environment == Environment.production,
            ApprovalRequest.state.in_([ApprovalState.approved, ApprovalState.expired, ApprovalState.revoked]),
            ApprovalRequest.decided_at.is_not(None),
            ApprovalRequest.site.in_(sorted({s.site for s in systems})),
        )
        .group_by(ApprovalRequest.system_id)
    ).all()
    days = []
    for system_id, decided in first:
        system = ids.get(system_id)
        if system is None or decided is None:
            continue
        decided = decided if decided.tzinfo else decided.replace(tzinfo=UTC)  # min() loses the column type
        days.append((decided - system.created_at).total_seconds() / SECONDS_PER_DAY)
    return LeadTime(systems=len(days), median_days=round(statistics.median(days), 1) if days else None)


def _pending(session: Session, sites: set[str] | None, now: datetime) -> PendingApprovals:
    created = session.exec(
        select(ApprovalRequest.created_at).where(
            ApprovalRequest.state == ApprovalState.submitted, _in_sites(ApprovalRequest.site, sites)
        )
    ).all()
    ages = sorted((now - c).total_seconds() / SECONDS_PER_DAY for c in created)
    buckets = dict.fromkeys((name for name, _ in AGE_BUCKETS), 0)
    for age in ages:
        name = next(n for n, bound in AGE_BUCKETS if bound is None or age < bound)
        buckets[name] += 1
    return PendingApprovals(
        count=len(ages),
        median_age_days=round(statistics.median(ages), 1) if ages else None,
        oldest_age_days=round(ages[-1], 1) if ages else None,
        by_age=buckets,
    )


def portfolio_kpis(session: Session, *, sites: set[str] | None, quarters: int = 4) -> KpiRead:
    """Every portfolio figure for ``sites`` (``None`` = all sites)."""
    now = utcnow()
    registered = list(
        session.exec(
            select(AISystem).where(AISystem.archived_at.is_(None), _in_sites(AISystem.site, sites))
        ).all()
    )
    live = [s for s in registered if s.lifecycle_stage != LifecycleStage.retired]
    production = [s for s in live if s.lifecycle_stage == LifecycleStage.production]
    statuses = monitoring_statuses(session, production, now)
    active = sum(1 for s in statuses.values() if s.state is MonitoringState.active)
    replicated = sum(1 for s in live if s.replicated_from)
    return KpiRead(
        sites=sorted(sites) if sites is not None else None,
        computed_at=now,
        systems=len(live),
        stages_by_quarter=stages_by_quarter(session, sites=sites, quarters=quarters, now=now),
        monitoring=MonitoringCoverage(
            production_systems=len(production),
            monitoring_active=active,
            share_active=_share(active, len(production)),
        ),
        days_to_first_production_approval=_lead_time(session, registered),
        approvals_pending=_pending(session, sites, now),
        replicated_from_another_line=ReplicationShare(
            systems=len(live), replicated=replicated, share=_share(replicated, len(live))
        ),
        open_incidents=OpenIncidents(**incidents.open_counts(session, sites=sites)),
    )
