"""AI literacy training records (AI Act Art. 4): who was trained in what, when, and until when it counts.

The register is kept once for the organisation. A record is never deleted: a wrong or obsolete one is
withdrawn with a reason, which the audit trail keeps. A record is current on a day when it is not withdrawn
and its ``valid_until`` is not set or not past.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.compliance.models import (
    TrainingCreate,
    TrainingRead,
    TrainingRecord,
    TrainingSiteFigures,
    TrainingSummary,
)
from app.db import paginate, utcnow
from app.errors import Conflict, NotFound, field_error
from app.http import PageParams
from app.identity.models import User
from app.systems import service as systems

ENTITY_TYPE = "training"
ID_KIND, ID_PREFIX = "training", "TRN"
EXPIRY_WARNING_DAYS = 30
NO_SITE = "-"  # the ``by_site`` key of records without a site


@dataclass(frozen=True)
class TrainingFilters:
    """What a list asks for: ``current`` True (current only), False (not current only) or None (both)."""

    current: bool | None = None
    site: str | None = None
    q: str | None = None
    include_withdrawn: bool = False


def is_current(record: TrainingRecord, today: date) -> bool:
    """Whether the record counts on ``today``: not withdrawn, and ``valid_until`` not set or not past."""
    return record.removed_at is None and (record.valid_until is None or record.valid_until >= today)


def training_read(record: TrainingRecord, today: date | None = None) -> TrainingRead:
    """The API view of a record, ``current`` as of ``today`` (default: the service's today)."""
    today = today or utcnow().date()
    return TrainingRead(**record.model_dump(), current=is_current(record, today))


def get_training(session: Session, record_id: str, *, for_update: bool = False) -> TrainingRecord:
    """A training record (withdrawn ones too), or 404."""
    stmt = select(TrainingRecord).where(TrainingRecord.id == record_id)
    if for_update:
        stmt = stmt.with_for_update()
    record = session.exec(stmt).first()
    if record is None:
        raise NotFound(f"training record {record_id!r} does not exist")
    return record


def _check_create(session: Session, data: TrainingCreate, today: date) -> None:
    """Refuse, naming the field: a completion in the future, an end before the completion, an unknown user
    or site."""
    if data.completed_on > today:
        raise field_error(
            ["body", "completed_on"],
            f"{data.completed_on} is in the future (today is {today}): record it once completed",
        )
    if data.valid_until is not None and data.valid_until < data.completed_on:
        raise field_error(
            ["body", "valid_until"],
            f"{data.valid_until} is before completed_on {data.completed_on}: a training cannot expire before "
            "it is completed",
        )
    if (
        data.username is not None
        and not session.exec(select(User.id).where(User.username == data.username)).first()
    ):
        raise field_error(
            ["body", "username"], f"unknown user {data.username!r}: give a registry user or none"
        )
    if data.site is not None:
        systems.ensure_site_exists(session, data.site, ["body", "site"])


def create_training(session: Session, data: TrainingCreate, *, actor: str) -> TrainingRecord:
    """Record a completed training (audited ``training.create``)."""
    now = utcnow()
    _check_create(session, data, now.date())
    record = TrainingRecord(
        id=systems.next_id(session, ID_KIND, ID_PREFIX),
        **data.model_dump(),
        created_by=actor,
        created_at=now,
    )
    _save(session, record, "training.create", actor=actor, after=_audit_view(record))
    return record


def withdraw_training(session: Session, record: TrainingRecord, reason: str, *, actor: str) -> TrainingRecord:
    """Withdraw a record: kept, no longer counted; the reason goes into the trail (``training.withdraw``).

    A record is withdrawn once: withdrawing it again is a 409 naming who withdrew it and when.
    """
    if record.removed_at is not None:
        raise Conflict(
            f"training record {record.id} was already withdrawn by {record.removed_by} on "
            f"{record.removed_at:%Y-%m-%d}",
            code="ALREADY_WITHDRAWN",
        )
    before = _audit_view(record)
    record.removed_at = utcnow()
    record.removed_by = actor
    _save(
        session,
        record,
        "training.withdraw",
        actor=actor,
        before=before,
        after={**_audit_view(record), "reason": reason},
    )
    return record


def _current_condition(today: date) -> Any:
    return sa.and_(
        col(TrainingRecord.removed_at).is_(None),
        sa.or_(col(TrainingRecord.valid_until).is_(None), col(TrainingRecord.valid_until) >= today),
    )


def list_training(
    session: Session, filters: TrainingFilters, *, page: PageParams, today: date | None = None
) -> tuple[list[TrainingRead], int]:
    """A page of records, newest completion first, with the number of all that match ``filters``.

    ``q``: text in the person's name, the username or the course (any case).
    """
    today = today or utcnow().date()
    conditions: list[Any] = []
    if not filters.include_withdrawn:
        conditions.append(col(TrainingRecord.removed_at).is_(None))
    if filters.current is not None:
        current = _current_condition(today)
        conditions.append(current if filters.current else sa.not_(current))
    if filters.site is not None:
        conditions.append(TrainingRecord.site == filters.site)
    if filters.q:
        needle = filters.q.lower()
        conditions.append(
            sa.or_(
                *(
                    sa.func.lower(column).contains(needle, autoescape=True)
                    for column in (TrainingRecord.person, TrainingRecord.username, TrainingRecord.course)
                )
            )
        )
    rows, total = paginate(
        session,
        select(TrainingRecord).where(*conditions),
        page,
        col(TrainingRecord.completed_on).desc(),
        col(TrainingRecord.id).desc(),
    )
    return [training_read(r, today) for r in rows], total


def _figures(records: list[TrainingRecord], today: date) -> TrainingSiteFigures:
    horizon = today + timedelta(days=EXPIRY_WARNING_DAYS)
    current = [r for r in records if is_current(r, today)]
    people = {r.username or f"name:{' '.join(r.person.lower().split())}" for r in current}
    return TrainingSiteFigures(
        people_trained_current=len(people),
        records_current=len(current),
        records_expired=len(records) - len(current),
        expiring_within_30_days=sum(
            1 for r in current if r.valid_until is not None and r.valid_until <= horizon
        ),
    )


def training_summary(session: Session, today: date | None = None) -> TrainingSummary:
    """AI literacy figures of the organisation and of each site, withdrawn records left out.

    A person is counted once: by username when the record names one, else by name (any case and spacing).
    """
    today = today or utcnow().date()
    records = list(session.exec(select(TrainingRecord).where(col(TrainingRecord.removed_at).is_(None))).all())
    by_site: dict[str, list[TrainingRecord]] = {}
    for r in records:
        by_site.setdefault(r.site or NO_SITE, []).append(r)
    return TrainingSummary(
        **_figures(records, today).model_dump(),
        by_site={site: _figures(rows, today) for site, rows in sorted(by_site.items())},
    )


def _save(
    session: Session, record: TrainingRecord, action: str, *, actor: str, after: Any, before: Any = None
) -> None:
    """Write the record and its audit event in the caller's transaction."""
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type=ENTITY_TYPE,
        entity_id=record.id,
        site=record.site,
        before=before,
        after=after,
    )


def _audit_view(record: TrainingRecord) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude={"created_at"})
