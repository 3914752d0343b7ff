"""Portfolio figures: lifecycle per quarter, monitoring coverage, approval lead time and backlog, replication
share and open incidents (no HTTP here).

Lifecycle history per quarter is replayed from the audit trail (``system.create`` / ``system.update`` events
that carry ``lifecycle_stage``), the one place every past state of a system is kept.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.approvals.models import ApprovalRequest, ApprovalState, Environment
from app.audit.models import AuditEvent
from app.db import utcnow
from app.incidents import service as incidents
from app.kpis.models import (
    KpiRead,
    LeadTime,
    MonitoringCoverage,
    OpenIncidents,
    PendingApprovals,
    QuarterStages,
    ReplicationShare,
)
from app.monitoring.models import MonitoringState
from app.monitoring.service import epoch_seconds, latest_times, state_conditions
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


_BATCH = 5_000  # audit rows fetched per round trip while replaying


def stages_by_quarter(
    session: Session, *, sites: set[str] | None, quarters: int, now: datetime
) -> list[QuarterStages]:
    """Systems in production and in pilot at the end of each of the last ``quarters`` quarters."""
    current = quarter_start(now)
    starts = [_shift_quarters(current, -i) for i in range(quarters - 1, -1, -1)]
    ends = [*starts[1:], now]
    # only the four columns the replay needs, the stage read out of the JSON by the database, streamed
    rows = session.execute(
        sa.select(
            col(AuditEvent.ts),
            col(AuditEvent.action),
            col(AuditEvent.entity_id),
            col(AuditEvent.after)["lifecycle_stage"].as_string(),
        )
        .where(
            col(AuditEvent.entity_type) == "system",
            col(AuditEvent.action).in_(_STAGE_ACTIONS),
            col(AuditEvent.ts) <= now,
            _in_sites(col(AuditEvent.site), sites),
        )
        .order_by(col(AuditEvent.ts), col(AuditEvent.seq))
        .execution_options(yield_per=_BATCH)
    )
    known = {s.value: s.value for s in LifecycleStage}  # one shared string per stage, not one per system
    stage: dict[str, str] = {}
    out: list[QuarterStages] = []
    quarter = 0

    def close_quarters(until: datetime | None) -> None:
        nonlocal quarter
        while quarter < len(starts) and (until is None or until >= ends[quarter]):
            values = list(stage.values())
            out.append(
                QuarterStages(
                    quarter=_label(starts[quarter]),
                    start=starts[quarter],
                    end=ends[quarter],
                    production=values.count(LifecycleStage.production.value),
                    pilot=values.count(LifecycleStage.pilot.value),
                )
            )
            quarter += 1

    for ts, action, system_id, lifecycle in rows:
        close_quarters(ts)
        if quarter >= len(starts):
            break
        if action in ("system.archive", "system.delete"):
            stage.pop(system_id, None)
        elif lifecycle is not None:
            stage[system_id] = known.get(lifecycle, lifecycle)
    rows.close()
    close_quarters(None)
    return out


def _lead_time(session: Session, registered: list[Any]) -> LeadTime:
    """Median days from a system's registration to its first approved production release."""
    epoch = partial(epoch_seconds, dialect=session.get_bind().dialect.name)
    first = (
        sa.select(
            col(ApprovalRequest.system_id), sa.func.min(col(ApprovalRequest.decided_at)).label("decided_at")
        )
        .where(
            col(ApprovalRequest.environment) == Environment.production,
            col(ApprovalRequest.state).in_(
                [ApprovalState.approved, ApprovalState.expired, ApprovalState.revoked]
            ),
            col(ApprovalRequest.decided_at).is_not(None),
            col(ApprovalRequest.site).in_(sa.select(col(AISystem.site)).where(*registered).distinct()),
        )
        .group_by(col(ApprovalRequest.system_id))
        .subquery()
    )
    days = list(
        session.execute(
            sa.select((epoch(first.c.decided_at) - epoch(col(AISystem.created_at))) / SECONDS_PER_DAY)
            .join(first, first.c.system_id == col(AISystem.id))
            .where(*registered)
        ).scalars()
    )
    return LeadTime(systems=len(days), median_days=round(statistics.median(days), 1) if days else None)


def pending_ages(session: Session, sites: set[str] | None, now: datetime) -> PendingApprovals:
    created = session.exec(
        select(col(ApprovalRequest.created_at)).where(
            col(ApprovalRequest.state) == ApprovalState.submitted, _in_sites(col(ApprovalRequest.site), sites)
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


def _monitoring_active(session: Session, production: list[Any], now: datetime) -> int:
    """Production systems whose newest report is within their interval."""
    latest = latest_times()
    conditions = state_conditions(
        latest, {MonitoringState.active}, now=now, dialect=session.get_bind().dialect.name
    )
    active = session.execute(
        sa.select(sa.func.count())
        .select_from(AISystem)
        .join(latest, latest.c.system_id == col(AISystem.id))
        .where(*production, *conditions)
    ).scalar_one()
    return int(active)


def portfolio_kpis(session: Session, *, sites: set[str] | None, quarters: int = 4) -> KpiRead:
    """Every portfolio figure for ``sites`` (``None`` = all sites), counted by the database."""
    now = utcnow()
    registered = [col(AISystem.archived_at).is_(None), _in_sites(col(AISystem.site), sites)]
    is_live = col(AISystem.lifecycle_stage) != LifecycleStage.retired
    is_production = col(AISystem.lifecycle_stage) == LifecycleStage.production
    is_replicated = sa.and_(col(AISystem.replicated_from).is_not(None), col(AISystem.replicated_from) != "")
    live, production, replicated = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((is_production, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((is_replicated, 1), else_=0)), 0),
        )
        .select_from(AISystem)
        .where(*registered, is_live)
    ).one()
    active = _monitoring_active(session, [*registered, is_production], now) if production else 0
    return KpiRead(
        sites=sorted(sites) if sites is not None else None,
        computed_at=now,
        systems=live,
        stages_by_quarter=stages_by_quarter(session, sites=sites, quarters=quarters, now=now),
        monitoring=MonitoringCoverage(
            production_systems=production,
            monitoring_active=active,
            share_active=_share(active, production),
        ),
        days_to_first_production_approval=_lead_time(session, registered),
        approvals_pending=pending_ages(session, sites, now),
        replicated_from_another_line=ReplicationShare(
            systems=live, replicated=replicated, share=_share(replicated, live)
        ),
        open_incidents=OpenIncidents(**incidents.open_counts(session, sites=sites)),
    )
