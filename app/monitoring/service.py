"""Monitoring reports and deployments reported by pipelines (no HTTP here).

Other domains call ``monitoring_status`` / ``monitoring_statuses`` (system lists, the dashboard, KPIs) and
``deployments_at`` (what ran where at a given time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.service import to_jsonable
from app.db import paginate, utcnow
from app.errors import Conflict, field_error
from app.http import PageParams
from app.identity.dependencies import Principal
from app.incidents.service import CLOCK_SKEW
from app.monitoring.models import (
    DEFAULT_MONITORING_INTERVAL_HOURS,
    Deployment,
    DeploymentCreate,
    DeploymentRead,
    MonitoringReport,
    MonitoringReportCreate,
    MonitoringReportRead,
    MonitoringState,
    MonitoringStatus,
    MonitoringStatusRead,
)
from app.systems import service as systems
from app.systems.models import AISystem, LifecycleStage

# --- monitoring ----------------------------------------------------------------------------------------


def record_monitoring(
    session: Session, system: AISystem, data: MonitoringReportCreate, *, actor: str
) -> MonitoringReport:
    """Store one monitoring report of a registered version of the system."""
    now = utcnow()
    observed_at = data.observed_at or now
    if observed_at > now + CLOCK_SKEW:
        raise field_error(["body", "observed_at"], "lies in the future")
    if systems.get_version(session, system.id, data.version) is None:
        raise field_error(["body", "version"], f"system {system.id} has no version {data.version!r}")
    report = MonitoringReport(
        system_id=system.id,
        site=system.site,
        version=data.version,
        status=data.status,
        metrics=dict(data.metrics),
        note=data.note,
        observed_at=observed_at,
        reported_by=actor,
        created_at=now,
    )
    session.add(report)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="monitoring.report",
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        after={
            "report_id": report.id,
            "version": report.version,
            "status": report.status,
            "metrics": report.metrics,
            "observed_at": report.observed_at,
        },
    )
    return report


def monitoring_read(report: MonitoringReport) -> MonitoringReportRead:
    return MonitoringReportRead.model_validate(report.model_dump())


def list_monitoring(
    session: Session,
    system_id: str,
    page: PageParams,
    *,
    status: MonitoringStatus | None = None,
    since: datetime | None = None,
) -> tuple[list[MonitoringReport], int]:
    """A system's reports, newest first."""
    conditions: list[Any] = [col(MonitoringReport.system_id) == system_id]
    if status is not None:
        conditions.append(col(MonitoringReport.status) == status)
    if since is not None:
        conditions.append(col(MonitoringReport.observed_at) >= since)
    order = (col(MonitoringReport.observed_at).desc(), col(MonitoringReport.id).desc())
    return paginate(session, select(MonitoringReport).where(*conditions), page, *order)


@dataclass(frozen=True)
class _Latest:
    observed_at: datetime
    status: str
    version: str


_ID_CHUNK = 500  # system ids bound per query
SECONDS_PER_DAY = 86_400


def epoch_seconds(column: Any, dialect: str) -> Any:
    """SQL seconds since 1970 of a ``UTCDateTime`` column, so times can be compared with per-row intervals."""
    if dialect == "sqlite":
        return (sa.func.julianday(column) - 2440587.5) * SECONDS_PER_DAY
    return sa.extract("epoch", column)


def latest_times(*conditions: Any) -> Any:
    """Subquery: the newest observation time of each system's reports (``system_id``, ``observed_at``)."""
    return (
        sa.select(
            col(MonitoringReport.system_id),
            sa.func.max(col(MonitoringReport.observed_at)).label("observed_at"),
        )
        .where(*conditions)
        .group_by(col(MonitoringReport.system_id))
        .subquery("latest")
    )


def _latest_reports(session: Session, system_ids: Iterable[str]) -> dict[str, _Latest]:
    """The newest report of each of the given systems (by observation time, then id), in id batches."""
    ids = sorted(set(system_ids))
    out: dict[str, _Latest] = {}
    for i in range(0, len(ids), _ID_CHUNK):
        chunk = ids[i : i + _ID_CHUNK]
        latest = latest_times(col(MonitoringReport.system_id).in_(chunk))
        rows = session.execute(
            sa.select(
                col(MonitoringReport.system_id),
                col(MonitoringReport.observed_at),
                col(MonitoringReport.status),
                col(MonitoringReport.version),
            )
            .join(
                latest,
                sa.and_(
                    latest.c.system_id == col(MonitoringReport.system_id),
                    latest.c.observed_at == col(MonitoringReport.observed_at),
                ),
            )
            .where(col(MonitoringReport.system_id).in_(chunk))
            .order_by(
                col(MonitoringReport.id)
            )  # of reports observed at the same instant, the last recorded wins
        ).all()
        for system_id, observed_at, status, version in rows:
            out[system_id] = _Latest(observed_at, status, version)
    return out


class _SystemLike(Protocol):
    id: str
    name: str
    site: str
    line: str | None
    lifecycle_stage: LifecycleStage
    monitoring_interval_hours: int | None


def monitoring_interval(system: _SystemLike) -> int | None:
    """Hours between expected reports: the system's own interval, or the default for production systems."""
    if system.monitoring_interval_hours is not None:
        return system.monitoring_interval_hours
    if system.lifecycle_stage == LifecycleStage.production:
        return DEFAULT_MONITORING_INTERVAL_HOURS
    return None


def _status(system: _SystemLike, latest: _Latest | None, now: datetime) -> MonitoringStatusRead:
    interval = monitoring_interval(system)
    tracked = interval is not None and system.lifecycle_stage in (
        LifecycleStage.production,
        LifecycleStage.pilot,
    )
    due_by = None
    if not tracked:
        state = MonitoringState.not_required
    elif latest is None:
        state = MonitoringState.missing
    else:
        due_by = latest.observed_at + timedelta(hours=interval or 0)
        state = MonitoringState.active if now <= due_by else MonitoringState.lapsed
    return MonitoringStatusRead(
        system_id=system.id,
        name=system.name,
        site=system.site,
        line=system.line,
        lifecycle_stage=system.lifecycle_stage,
        state=state,
        interval_hours=interval if tracked else system.monitoring_interval_hours,
        last_observed_at=latest.observed_at if latest else None,
        last_status=MonitoringStatus(latest.status) if latest else None,
        last_version=latest.version if latest else None,
        due_by=due_by,
    )


def monitoring_status(
    session: Session, system: AISystem, now: datetime | None = None
) -> MonitoringStatusRead:
    """Whether the system's monitoring is active, lapsed, missing or not required, with its last report."""
    latest = _latest_reports(session, [system.id]).get(system.id)
    return _status(system, latest, now or utcnow())


def monitoring_statuses(
    session: Session, systems_list: Iterable[AISystem], now: datetime | None = None
) -> dict[str, MonitoringStatusRead]:
    """Monitoring status of many systems at once (one query per 500 systems), by system id."""
    rows = list(systems_list)
    if not rows:
        return {}
    latest = _latest_reports(session, [s.id for s in rows])
    moment = now or utcnow()
    return {s.id: _status(s, latest.get(s.id), moment) for s in rows}


def monitored_condition() -> Any:
    """Systems expected to report: live and in production, or in pilot with an interval of their own."""
    return sa.and_(
        col(AISystem.archived_at).is_(None),
        sa.or_(
            col(AISystem.lifecycle_stage) == LifecycleStage.production,
            sa.and_(
                col(AISystem.lifecycle_stage) == LifecycleStage.pilot,
                col(AISystem.monitoring_interval_hours).is_not(None),
            ),
        ),
    )


def state_conditions(latest: Any, states: set[MonitoringState], *, now: datetime, dialect: str) -> list[Any]:
    """SQL conditions (OR-ed) for the states of monitored systems outer-joined to ``latest_times``."""
    interval = sa.func.coalesce(col(AISystem.monitoring_interval_hours), DEFAULT_MONITORING_INTERVAL_HOURS)
    due = epoch_seconds(latest.c.observed_at, dialect) + interval * 3600
    within = due >= now.timestamp()
    out: list[Any] = []
    if MonitoringState.missing in states:
        out.append(latest.c.observed_at.is_(None))
    if MonitoringState.active in states:
        out.append(sa.and_(latest.c.observed_at.is_not(None), within))
    if MonitoringState.lapsed in states:
        out.append(sa.and_(latest.c.observed_at.is_not(None), sa.not_(within)))
    return out


def monitoring_overview(
    session: Session,
    page: PageParams,
    *,
    sites: set[str] | None,
    site: str | None = None,
    line: str | None = None,
    states: set[MonitoringState] | None = None,
) -> tuple[list[MonitoringStatusRead], int]:
    """One page (by system id) of the monitoring status of the systems expected to report, and the total."""
    now = utcnow()
    conditions: list[Any] = [monitored_condition()]
    if sites is not None:
        if not sites:
            return [], 0
        conditions.append(col(AISystem.site).in_(sorted(sites)))
    if site is not None:
        conditions.append(col(AISystem.site) == site)
    if line is not None:
        conditions.append(col(AISystem.line) == line)
    latest = latest_times()
    if states is not None:
        conditions.append(
            sa.or_(
                sa.false(),
                *state_conditions(latest, states, now=now, dialect=session.get_bind().dialect.name),
            )
        )
    joined = (
        sa.select(col(AISystem.id))
        .outerjoin(latest, latest.c.system_id == col(AISystem.id))
        .where(*conditions)
    )
    total = session.execute(sa.select(sa.func.count()).select_from(joined.subquery())).scalar_one()
    rows = session.execute(
        sa.select(
            col(AISystem.id),
            col(AISystem.name),
            col(AISystem.site),
            col(AISystem.line),
            col(AISystem.lifecycle_stage),
            col(AISystem.monitoring_interval_hours),
        )
        .outerjoin(latest, latest.c.system_id == col(AISystem.id))
        .where(*conditions)
        .order_by(col(AISystem.id))
        .limit(page.limit)
        .offset(page.offset)
    ).all()
    reports = _latest_reports(session, [r.id for r in rows])
    return [_status(r, reports.get(r.id), now) for r in rows], total


def lapsed_monitoring(
    session: Session,
    page: PageParams,
    *,
    sites: set[str] | None,
    site: str | None = None,
    line: str | None = None,
) -> tuple[list[MonitoringStatusRead], int]:
    """Systems expected to report whose monitoring has lapsed or never started (the dashboard's warning)."""
    return monitoring_overview(
        session,
        page,
        sites=sites,
        site=site,
        line=line,
        states={MonitoringState.lapsed, MonitoringState.missing},
    )


def system_monitoring_states(session: Session, rows: list[AISystem]) -> dict[str, dict[str, Any]]:
    """The ``monitoring`` state each system read model shows (registered with the systems domain)."""
    return {sid: {"monitoring": s.state.value} for sid, s in monitoring_statuses(session, rows).items()}


# --- deployments ---------------------------------------------------------------------------------------


def release_decision(
    session: Session, principal: Principal, system: AISystem, version: str, environment: str
) -> dict[str, Any]:
    """The release gate's answer for this release (``GET /release-permission``), in this transaction."""
    from app.approvals import release
    from app.approvals.rules import get_rules

    connection = session.connection()
    db = release.RawReader(connection.connection.dbapi_connection, connection.dialect.name)
    asked = release.Release(system.id, version, environment)
    return release.decide(db, principal, asked, rules=get_rules(), now=utcnow())


def record_deployment(
    session: Session, system: AISystem, data: DeploymentCreate, *, principal: Principal
) -> Deployment:
    """Record a rollout a pipeline made; refused (409, with the gate's reasons) unless the gate allows it."""
    now = utcnow()
    deployed_at = data.deployed_at or now
    if deployed_at > now + CLOCK_SKEW:
        raise field_error(["body", "deployed_at"], "lies in the future")
    actor = principal.username
    decision = release_decision(session, principal, system, data.version, data.environment.value)
    if not decision.get("allowed"):
        reasons = decision["reasons"]
        codes = ", ".join(r["code"] for r in reasons if r.get("severity", "error") == "error")
        raise Conflict(
            f"release of {system.id} {data.version} to {data.environment.value} is not allowed ({codes})",
            reasons=reasons,
            release_permission=to_jsonable(decision),
        )
    version = systems.get_version(session, system.id, data.version)
    if version is None:  # the gate denies unknown versions; kept as a guard
        raise field_error(["body", "version"], f"system {system.id} has no version {data.version!r}")
    deployment = Deployment(
        system_id=system.id,
        site=system.site,
        line=system.line,
        zone=system.zone,
        version=data.version,
        artifact_digest=version.artifact_digest,
        environment=data.environment,
        deployed_at=deployed_at,
        approval_id=decision.get("approval_id"),
        note=data.note,
        reported_by=actor,
        created_at=now,
    )
    session.add(deployment)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="deployment.create",
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        after=deployment.model_dump(mode="json"),
    )
    return deployment


def deployment_read(row: Deployment) -> DeploymentRead:
    return DeploymentRead.model_validate(row.model_dump())


def list_deployments(
    session: Session, system_id: str, page: PageParams, *, environment: str | None = None
) -> tuple[list[Deployment], int]:
    """A system's deployment history, newest first."""
    conditions: list[Any] = [col(Deployment.system_id) == system_id]
    if environment is not None:
        conditions.append(col(Deployment.environment) == environment)
    order = (col(Deployment.deployed_at).desc(), col(Deployment.id).desc())
    return paginate(session, select(Deployment).where(*conditions), page, *order)


def deployments_at(
    session: Session,
    at: datetime,
    page: PageParams,
    *,
    system_id: str | None = None,
    sites: set[str] | None = None,
    site: str | None = None,
    line: str | None = None,
    environment: str | None = None,
) -> tuple[list[Deployment], int]:
    """What ran at ``at``: the newest deployment at or before it, per system and environment.

    ``line`` matches the line the system was on when that deployment was made.
    """
    conditions: list[Any] = [col(Deployment.deployed_at) <= at]
    if system_id is not None:
        conditions.append(col(Deployment.system_id) == system_id)
    if sites is not None:
        if not sites:
            return [], 0
        conditions.append(col(Deployment.site).in_(sorted(sites)))
    if site is not None:
        conditions.append(col(Deployment.site) == site)
    if environment is not None:
        conditions.append(col(Deployment.environment) == environment)
    ranked = (
        sa.select(
            col(Deployment.id),
            col(Deployment.line),
            sa.func.row_number()
            .over(
                partition_by=(col(Deployment.system_id), col(Deployment.environment)),
                order_by=(col(Deployment.deployed_at).desc(), col(Deployment.id).desc()),
            )
            .label("rn"),
        )
        .where(*conditions)
        .subquery()
    )
    current = [ranked.c.rn == 1]
    if line is not None:
        current.append(ranked.c.line == line)
    ids = sa.select(ranked.c.id).where(*current)
    order = (col(Deployment.system_id), col(Deployment.environment))
    return paginate(session, select(Deployment).where(col(Deployment.id).in_(ids)), page, *order)
