"""Incidents of AI systems: Art. 73 reporting deadlines, closing, and the release suspension they cause."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.approvals import release
from app.approvals.release import SUSPENDED_BY_INCIDENT
from app.audit import service as audit
from app.classification import engine
from app.classification import service as classification_service
from app.classification.catalog import AIActCatalog, get_catalog
from app.db import paginate, utcnow
from app.errors import Conflict, NotFound, field_error
from app.http import PageParams, check_revision
from app.incidents.models import (
    DeadlineState,
    Incident,
    IncidentClose,
    IncidentCreate,
    IncidentKind,
    IncidentLift,
    IncidentRead,
    IncidentReport,
    IncidentStatus,
)
from app.systems import service as systems
from app.systems.models import AISystem

# Times a client sends may run ahead of ours by this much (clock skew) before they count as "in the future".
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Deadline:
    """An Art. 73 reporting deadline: when, which paragraph set it, and how many days it allows."""

    due: datetime
    rule: str
    days: int


def report_deadline(
    *,
    serious: bool,
    kind: str,
    ai_act_class: str | None,
    aware_at: datetime,
    catalog: AIActCatalog | None = None,
) -> Deadline | None:
    """The Art. 73 deadline for an incident, counted from ``aware_at``; ``None`` when it is not reportable.

    Art. 73(1) binds serious incidents (Art. 3(49)) of high-risk AI systems. The days come from the catalogue:
    Art. 73(2) the general deadline, 73(3) widespread infringement or a 3(49)(b) critical-infrastructure
    disruption, 73(4) the death of a person.
    """
    if not serious or ai_act_class != "high_risk":
        return None
    rule = (catalog or get_catalog().ai_act).incident_deadline(kind)
    return Deadline(due=aware_at + timedelta(days=rule.days), rule=rule.id, days=rule.days)


def reporting_duties(
    session: Session, system: AISystem, *, serious: bool, kind: str, aware_at: datetime
) -> list[dict[str, Any]] | None:
    """The reporting duties of a serious incident as the system's current classification sets them.

    Judged on ``aware_at``: whether each binds then (Art. 113 dates, the Art. 73(9)-(10) sectoral limits) and
    to whom the report goes (the AI Office for systemic-risk GPAI incidents, Art. 55(1)(c)). ``None`` when
    there is nothing to judge by (not serious, not classified, or a first-edition classification)."""
    if not serious:
        return None
    current = classification_service.current_classification(session, system.id)
    if current is None or "incident_reporting" not in (current.result or {}):
        return None
    duties = engine.incident_reporting(current.result, kind=kind, aware_at=aware_at.astimezone(UTC).date())
    return [audit.to_jsonable(d) for d in duties]


def deadline_state(incident: Incident, now: datetime) -> tuple[DeadlineState, int | None]:
    """Where the incident stands against its deadline, and the seconds left (negative once overdue)."""
    if incident.report_deadline is None:
        return DeadlineState.not_reportable, None
    if incident.reported_at is not None:
        on_time = incident.reported_at <= incident.report_deadline
        return (DeadlineState.reported_on_time if on_time else DeadlineState.reported_late), None
    left = int((incident.report_deadline - now).total_seconds())
    return (DeadlineState.due if left >= 0 else DeadlineState.overdue), left


def suspends_release(incident: Incident) -> bool:
    """An open serious incident suspends release permission until it is closed or the suspension lifted."""
    return incident.serious and incident.status == IncidentStatus.open and incident.lifted_at is None


def incident_read(incident: Incident, now: datetime | None = None) -> IncidentRead:
    """The API body of an incident, with its deadline state and time left at ``now``."""
    state, left = deadline_state(incident, now or utcnow())
    return IncidentRead.model_validate(
        {
            **incident.model_dump(),
            "deadline_state": state,
            "time_left_seconds": left,
            "suspends_release": suspends_release(incident),
        }
    )


def _not_future(value: datetime, name: str, now: datetime) -> None:
    if value > now + CLOCK_SKEW:
        raise field_error(["body", name], "lies in the future")


def create_incident(session: Session, system: AISystem, data: IncidentCreate, *, actor: str) -> Incident:
    """Record an incident; a serious one of a high-risk system gets its Art. 73 deadline from ``aware_at``."""
    now = utcnow()
    _not_future(data.occurred_at, "occurred_at", now)
    _not_future(data.aware_at, "aware_at", now)
    if data.aware_at < data.occurred_at:
        raise field_error(
            ["body", "aware_at"], "is before occurred_at: one cannot learn of it before it happens"
        )
    if data.reported_at is not None:
        _not_future(data.reported_at, "reported_at", now)
        if data.reported_at < data.aware_at:
            raise field_error(["body", "reported_at"], "is before aware_at")
    ai_act_class = system.ai_act_class.value if system.ai_act_class is not None else None
    deadline = report_deadline(
        serious=data.serious, kind=data.kind.value, ai_act_class=ai_act_class, aware_at=data.aware_at
    )
    reporting = reporting_duties(
        session, system, serious=data.serious, kind=data.kind.value, aware_at=data.aware_at
    )
    incident = Incident(
        id=systems.next_id(session, "incident", "INC"),
        system_id=system.id,
        site=system.site,
        title=data.title,
        description=data.description,
        serious=data.serious,
        kind=data.kind,
        occurred_at=data.occurred_at,
        aware_at=data.aware_at,
        reported_at=data.reported_at,
        ai_act_class=ai_act_class,
        report_deadline=deadline.due if deadline else None,
        deadline_rule=deadline.rule if deadline else None,
        deadline_days=deadline.days if deadline else None,
        reporting=reporting,
        status=IncidentStatus.open,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(incident)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="incident.create",
        entity_type="incident",
        entity_id=incident.id,
        site=incident.site,
        after=incident.model_dump(mode="json"),
    )
    return incident


def get_incident(session: Session, incident_id: str, *, for_update: bool = False) -> Incident:
    """An incident by id, or 404."""
    stmt = select(Incident).where(col(Incident.id) == incident_id)
    if for_update:
        stmt = stmt.with_for_update()
    incident = session.exec(stmt).first()
    if incident is None:
        raise NotFound(f"incident {incident_id!r} does not exist")
    return incident


def list_incidents(
    session: Session,
    *,
    sites: set[str] | None,
    page: PageParams,
    system_id: str | None = None,
    site: str | None = None,
    status: IncidentStatus | None = None,
    serious: bool | None = None,
    kind: IncidentKind | None = None,
    suspending: bool | None = None,
) -> tuple[list[Incident], int]:
    """Incidents in ``sites`` (``None`` = all), newest first."""
    conditions: list[Any] = []
    if sites is not None:
        if not sites:
            return [], 0
        conditions.append(col(Incident.site).in_(sorted(sites)))
    for column, value in (
        (col(Incident.system_id), system_id),
        (col(Incident.site), site),
        (col(Incident.status), status),
        (col(Incident.serious), serious),
        (col(Incident.kind), kind),
    ):
        if value is not None:
            conditions.append(column == value)
    if suspending is not None:
        suspended = sa.and_(*_suspends())
        conditions.append(suspended if suspending else sa.not_(suspended))
    order = (col(Incident.aware_at).desc(), col(Incident.id).desc())
    return paginate(session, select(Incident).where(*conditions), page, *order)


def _change(
    session: Session, incident: Incident, *, action: str, actor: str, changes: dict[str, Any]
) -> Incident:
    before = {k: getattr(incident, k) for k in changes}
    for key, value in changes.items():
        setattr(incident, key, value)
    incident.revision += 1
    incident.updated_at = utcnow()
    session.add(incident)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="incident",
        entity_id=incident.id,
        site=incident.site,
        before=before,
        after={**changes, "revision": incident.revision},
    )
    return incident


def close_incident(
    session: Session, incident: Incident, data: IncidentClose, *, if_match: int | None, actor: str
) -> Incident:
    """Close an incident with its root cause and corrective action; this ends any release suspension."""
    if if_match is not None or data.revision is not None:
        check_revision(incident.revision, if_match, data.revision)
    if incident.status == IncidentStatus.closed:
        raise Conflict(f"incident {incident.id} is already closed")
    return _change(
        session,
        incident,
        action="incident.close",
        actor=actor,
        changes={
            "status": IncidentStatus.closed,
            "root_cause": data.root_cause,
            "corrective_action": data.corrective_action,
            "closed_at": utcnow(),
            "closed_by": actor,
        },
    )


def lift_suspension(
    session: Session, incident: Incident, data: IncidentLift, *, if_match: int | None, actor: str
) -> Incident:
    """A compliance officer's explicit decision that an open serious incident no longer blocks releases."""
    if if_match is not None or data.revision is not None:
        check_revision(incident.revision, if_match, data.revision)
    if not incident.serious:
        raise Conflict(f"incident {incident.id} is not serious; it suspends nothing")
    if incident.status == IncidentStatus.closed:
        raise Conflict(f"incident {incident.id} is closed; it no longer suspends releases")
    if incident.lifted_at is not None:
        raise Conflict(f"the suspension by incident {incident.id} was already lifted by {incident.lifted_by}")
    return _change(
        session,
        incident,
        action="incident.lift",
        actor=actor,
        changes={"lifted_at": utcnow(), "lifted_by": actor, "lift_reason": data.reason},
    )


def record_report(
    session: Session, incident: Incident, data: IncidentReport, *, if_match: int | None, actor: str
) -> Incident:
    """Record when the incident was reported to the market surveillance authority (Art. 73(1))."""
    if if_match is not None or data.revision is not None:
        check_revision(incident.revision, if_match, data.revision)
    _not_future(data.reported_at, "reported_at", utcnow())
    if data.reported_at < incident.aware_at:
        raise field_error(["body", "reported_at"], "is before aware_at")
    return _change(
        session, incident, action="incident.report", actor=actor, changes={"reported_at": data.reported_at}
    )


def _suspends() -> list[Any]:
    """The rule in SQL (``suspends_release`` in Python): open, serious, and its suspension not lifted."""
    return [
        col(Incident.status) == IncidentStatus.open,
        col(Incident.serious).is_(True),
        col(Incident.lifted_at).is_(None),
    ]


def suspending_incidents(session: Session, system_id: str) -> list[Incident]:
    """The open serious incidents of a system whose suspension nobody lifted (they block every release)."""
    return list(
        session.exec(
            select(Incident)
            .where(col(Incident.system_id) == system_id, *_suspends())
            .order_by(col(Incident.id))
        ).all()
    )


def _suspension_message(incident_id: str, kind: str, title: str) -> str:
    return (
        f"open serious incident {incident_id} ({kind}: {title}) suspends releases until it is closed "
        "or a compliance officer lifts the suspension"
    )


def release_reasons(session: Session, system_id: str) -> list[dict[str, str]]:
    """The ``SUSPENDED_BY_INCIDENT`` reasons for a system (empty when nothing suspends it)."""
    return [
        release.error(SUSPENDED_BY_INCIDENT, _suspension_message(i.id, str(i.kind), i.title))
        for i in suspending_incidents(session, system_id)
    ]


def _gate_reasons(check: release.CheckInput) -> list[release.Reason]:
    return [
        release.error(SUSPENDED_BY_INCIDENT, _suspension_message(r["id"], str(r["kind"]), r["title"]))
        for r in sorted(check.rows["suspending"], key=lambda r: str(r["id"]))
    ]


def _gate_statements() -> dict[str, Any]:
    """The rows ``_gate_reasons`` judges: the suspending incidents of the system asked about."""
    suspending = sa.select(col(Incident.id), col(Incident.kind), col(Incident.title))
    return {"suspending": suspending.where(col(Incident.system_id) == release.param("sid"), *_suspends())}


# The release gate's hook: every version and environment of a system is suspended while an open serious
# incident of it stands unlifted (the rule of ``suspending_incidents``, run on the gate's connection).
gate_check = release.ReleaseCheck(_gate_statements, _gate_reasons)


def open_counts(session: Session, *, sites: set[str] | None, site: str | None = None) -> dict[str, Any]:
    """Open incidents by severity (serious / not serious) and by kind, for the portfolio figures."""
    conditions: list[Any] = [col(Incident.status) == IncidentStatus.open]
    if sites is not None:
        conditions.append(col(Incident.site).in_(sorted(sites)))
    if site is not None:
        conditions.append(col(Incident.site) == site)
    rows = session.execute(
        sa.select(col(Incident.serious), col(Incident.kind), sa.func.count())
        .where(*conditions)
        .group_by(col(Incident.serious), col(Incident.kind))
    ).all()
    by_severity = {"serious": 0, "not_serious": 0}
    by_kind: dict[str, int] = {}
    for serious, kind, n in rows:
        by_severity["serious" if serious else "not_serious"] += n
        by_kind[str(kind)] = by_kind.get(str(kind), 0) + n
    overdue = session.exec(
        select(sa.func.count())
        .select_from(Incident)
        .where(*conditions, col(Incident.reported_at).is_(None), col(Incident.report_deadline) < utcnow())
    ).one()
    return {"by_severity": by_severity, "by_kind": by_kind, "reports_overdue": overdue}
