"""Compliance work (no HTTP here): frameworks read from the validated files, and the requirements derived
from them and the classifications, with what people record about them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.audit import service as audit
from app.classification import service as classifications
from app.classification.models import Classification
from app.compliance.frameworks import OWNER_ROLES, Framework, Frameworks, get_frameworks
from app.compliance.models import (
    ControlRead,
    FrameworkRead,
    FrameworkSummary,
    GroupRead,
    OrganisationRequirement,
    Requirement,
    RequirementRead,
    RequirementStatus,
    RequirementUpdate,
)
from app.db import session_scope, utcnow
from app.errors import Conflict, NotFound, field_error
from app.http import check_revision
from app.systems.models import AISystem


def list_frameworks() -> list[FrameworkSummary]:
    """Every loaded framework, in id order, with its number of controls and whether it is adopted."""
    frameworks = get_frameworks()
    return [
        FrameworkSummary(
            id=f.id,
            title=f.title,
            version=f.version,
            controls=len(f.controls),
            adopted=f.id in frameworks.adopted,
        )
        for f in frameworks.frameworks
    ]


def require_framework(framework_id: str) -> Framework:
    """The framework ``framework_id``, or 404."""
    framework = get_frameworks().by_id.get(framework_id)
    if framework is None:
        raise NotFound(f"framework {framework_id!r} does not exist")
    return framework


def framework_read(framework: Framework) -> FrameworkRead:
    """A framework with its controls and their crosswalk links."""
    return FrameworkRead(
        id=framework.id,
        title=framework.title,
        version=framework.version,
        adopted=framework.id in get_frameworks().adopted,
        groups=[GroupRead(id=g.id, title=g.title) for g in framework.groups],
        controls=[
            ControlRead(
                id=c.id,
                title=c.title,
                maps_to=list(c.maps_to),
                group=c.group,
                organisation_wide=c.organisation_wide,
                applies_from=c.applies_from,
                binds=list(c.binds),
            )
            for c in framework.controls
        ],
    )


# --- requirements --------------------------------------------------------------------------------------
#
# Which requirements exist is derived, never typed in: from the system's current classification (its duties
# for the effective role) and the adopted frameworks' files (``applies_to_classes``, ``organisation_wide``,
# ``binding``; risk_catalog/frameworks/README.md). The rows hold what people record (status, note, owner
# role) and are kept in step on every read: new ones appear ``open``; ones no longer derived stay, with
# ``derived`` false, so their history is not lost.

R = TypeVar("R", Requirement, OrganisationRequirement)
ORGANISATION = "organisation"  # the audit trail's entity for organisation-wide requirements


@dataclass(frozen=True)
class Derived:
    """A requirement the rules give today: its control, title, date and owning role."""

    framework: str
    control: str
    title: str
    applies_from: date | None
    owner_role: str


def _ai_act_duties(result: dict[str, Any]) -> dict[str, date | None]:
    """Every duty of a classification result (obligations, Art. 50, GPAI) with the date the result gives."""
    duties: dict[str, date | None] = {}
    for entry in [*result.get("obligations", []), *result.get("gpai_duties", [])]:
        when = entry.get("applies_from")
        duties.setdefault(entry["id"], date.fromisoformat(when) if when else None)
    for oid in [*result.get("transparency_obligations", []), *result.get("gpai_obligations", [])]:
        duties.setdefault(oid, None)
    return duties


def derive_for_system(classification: Classification | None, frameworks: Frameworks) -> list[Derived]:
    """The requirements of a system with this current classification, in framework order (none unclassified).

    AI Act (a framework backed by ``catalog: ai_act``): the result's duties for its effective role, dated as
    the result dates them; organisation-wide ones (Art. 4) are the organisation's, and ids that are no duty
    of today's catalogue (``art2.2`` in a first-edition result) are left out. Any other adopted
    framework: its controls that are not organisation-wide, when the system's class is in the file's
    ``applies_to_classes``.
    """
    if classification is None:
        return []
    derived: list[Derived] = []
    for framework in _adopted(frameworks):
        if framework.catalog == "ai_act":
            for oid, when in _ai_act_duties(classification.result).items():
                control = framework.control_by_id.get(oid)
                if control is None or control.organisation_wide:
                    continue  # no duty of today's catalogue (a first-edition id), or the organisation's
                derived.append(
                    Derived(
                        framework.id, oid, control.title, when or control.applies_from, framework.owner_role
                    )
                )
        elif str(classification.ai_act_class) in framework.applies_to_classes:
            derived.extend(
                Derived(framework.id, c.id, c.title, c.applies_from, framework.owner_role)
                for c in framework.controls
                if not c.organisation_wide
            )
    return derived


def derive_for_organisation(frameworks: Frameworks) -> list[Derived]:
    """The organisation-wide controls of every adopted framework (AI literacy, management-system clauses)."""
    return [
        Derived(framework.id, c.id, c.title, c.applies_from, framework.owner_role)
        for framework in _adopted(frameworks)
        for c in framework.controls
        if c.organisation_wide
    ]


def _adopted(frameworks: Frameworks) -> list[Framework]:
    return [frameworks.by_id[fid] for fid in frameworks.adopted if fid in frameworks.by_id]


def _changes(rows: list[R], derived: list[Derived]) -> tuple[list[tuple[R, dict[str, Any]]], list[Derived]]:
    """What keeping ``rows`` in step with ``derived`` takes: changes to stored rows, and rows to add."""
    have = {(r.framework, r.control): r for r in rows}
    wanted = {(d.framework, d.control): d for d in derived}
    updates: list[tuple[R, dict[str, Any]]] = []
    for ref, row in have.items():
        d = wanted.get(ref)
        changes = (
            {"derived": False}
            if d is None
            else {"derived": True, "title": d.title[:300], "applies_from": d.applies_from}
        )
        if any(getattr(row, k) != v for k, v in changes.items()):
            updates.append((row, changes))
    return updates, [d for ref, d in wanted.items() if ref not in have]


def _sync(session: Session, model: type[R], rows: list[R], derived: list[Derived], **key: Any) -> list[R]:
    """Bring stored rows in step with ``derived``: add new ones (open), flag the ones no longer derived."""
    updates, missing = _changes(rows, derived)
    for row, changes in updates:
        for k, v in changes.items():
            setattr(row, k, v)
        session.add(row)
    now = utcnow()
    new = [
        model(
            framework=d.framework,
            control=d.control,
            title=d.title[:300],
            applies_from=d.applies_from,
            owner_role=d.owner_role,
            created_at=now,
            updated_at=now,
            **key,
        )
        for d in missing
    ]
    if new:
        try:
            with session.begin_nested():  # another request may make the same rows at the same moment
                session.add_all(new)
        except IntegrityError:
            return list(session.exec(_select_rows(model, key)).all())
    session.flush()
    return [*rows, *new]


def _read_in_step(session: Session, model: type[R], derived: list[Derived], **key: Any) -> list[R]:
    """The stored rows for a read-only request. When they are out of step, they are brought in step first
    in a write transaction of its own (a read transaction never writes: on SQLite it could not upgrade once
    another writer committed), and then read again in a fresh snapshot."""
    rows = list(session.exec(_select_rows(model, key)).all())
    updates, missing = _changes(rows, derived)
    if not updates and not missing:
        return rows
    with session_scope() as writer:
        _sync(writer, model, list(writer.exec(_select_rows(model, key)).all()), derived, **key)
    session.rollback()  # end the read snapshot, so the rows just committed are seen
    return list(session.exec(_select_rows(model, key)).all())


def _select_rows(model: type[Any], key: dict[str, Any]) -> Any:
    query = select(model)
    for column, value in key.items():
        query = query.where(getattr(model, column) == value)
    return query


def system_requirements(session: Session, system: AISystem) -> list[Requirement]:
    """A system's requirements, kept in step with its current classification, in framework order."""
    frameworks = get_frameworks()
    derived = derive_for_system(classifications.current_classification(session, system.id), frameworks)
    rows = list(session.exec(_select_rows(Requirement, {"system_id": system.id})).all())
    return _ordered(_sync(session, Requirement, rows, derived, system_id=system.id), frameworks)


def read_system_requirements(session: Session, system: AISystem) -> list[Requirement]:
    """``system_requirements`` for a read-only request (see ``_read_in_step``)."""
    frameworks = get_frameworks()
    system_id = system.id
    derived = derive_for_system(classifications.current_classification(session, system_id), frameworks)
    return _ordered(_read_in_step(session, Requirement, derived, system_id=system_id), frameworks)


def read_organisation_requirements(session: Session) -> list[OrganisationRequirement]:
    """``organisation_requirements`` for a read-only request (see ``_read_in_step``)."""
    frameworks = get_frameworks()
    return _ordered(
        _read_in_step(session, OrganisationRequirement, derive_for_organisation(frameworks)), frameworks
    )


def organisation_requirements(session: Session) -> list[OrganisationRequirement]:
    """The organisation-wide requirements of the adopted frameworks, in framework order."""
    frameworks = get_frameworks()
    rows = list(session.exec(select(OrganisationRequirement)).all())
    return _ordered(
        _sync(session, OrganisationRequirement, rows, derive_for_organisation(frameworks)), frameworks
    )


def _ordered(rows: list[R], frameworks: Frameworks) -> list[R]:
    """Derived first, by adopted framework and the framework's own order; then the ones no longer derived."""
    rank = {fid: n for n, fid in enumerate(frameworks.adopted)}
    place = {(f.id, c.id): n for f in frameworks.frameworks for n, c in enumerate(f.controls)}
    return sorted(
        rows,
        key=lambda r: (
            not r.derived,
            rank.get(r.framework, len(rank)),
            r.framework,
            place.get((r.framework, r.control), len(place)),
            r.control,
        ),
    )


def find_requirement(rows: list[R], ref: str, where: str) -> R:
    """The requirement ``framework:control`` among ``rows``, or 404 naming where it was looked for."""
    for row in rows:
        if f"{row.framework}:{row.control}" == ref:
            return row
    raise NotFound(f"requirement {ref!r} does not exist for {where}")


def binds(row: Requirement | OrganisationRequirement, today: date | None = None) -> bool:
    """Whether the requirement binds today: still derived, its framework binds, its date reached."""
    framework = get_frameworks().by_id.get(row.framework)
    if not row.derived or framework is None or not framework.binding:
        return False
    today = today or utcnow().date()
    return row.applies_from is None or row.applies_from <= today


def requirement_read(
    row: Requirement | OrganisationRequirement, today: date | None = None
) -> RequirementRead:
    """The API view of a requirement (``evidence`` is empty until evidence can be linked)."""
    return RequirementRead(
        id=f"{row.framework}:{row.control}",
        framework=row.framework,
        control=row.control,
        title=row.title,
        status=row.status,
        applies_from=row.applies_from,
        binding=binds(row, today),
        derived=row.derived,
        owner_role=row.owner_role,
        note=row.note,
        evidence=[],
        revision=row.revision,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def update_requirement(
    session: Session,
    row: Requirement | OrganisationRequirement,
    data: RequirementUpdate,
    *,
    if_match: int | None,
    actor: str,
    entity: tuple[str, str, str | None],
) -> Requirement | OrganisationRequirement:
    """Change a requirement's status, note or owner role; audited with before and after.

    The rules, in the order a person would ask: the change names the current revision (409 if stale); a
    requirement marked ``not_applicable`` says why in its note (422 naming ``note``); ``met`` needs at least
    one current evidence item, and evidence cannot be linked yet, so ``met`` is refused (409) rather than
    recorded without proof. ``entity``: ``(entity_type, entity_id, site)`` of the audit event.
    """
    check_revision(row.revision, if_match, data.revision)
    ref = f"{row.framework}:{row.control}"
    status = data.status or row.status
    note = (data.note or None) if data.note is not None else row.note
    if status == RequirementStatus.not_applicable and not note:
        raise field_error(
            ["body", "note"], f"{ref} marked not_applicable needs a note saying why it does not apply"
        )
    if status == RequirementStatus.met and row.status != RequirementStatus.met:
        raise Conflict(
            f"{ref} cannot be marked met: met needs at least one current evidence item, and evidence cannot "
            "be linked to requirements yet",
            code="EVIDENCE_REQUIRED",
        )
    owner_role = str(data.owner_role) if data.owner_role is not None else row.owner_role
    if owner_role not in OWNER_ROLES:
        raise field_error(
            ["body", "owner_role"], f"a requirement is owned by one of: {', '.join(OWNER_ROLES)}"
        )
    if (status, note, owner_role) == (row.status, row.note, row.owner_role):
        return row
    before = _audit_view(row)
    row.status, row.note, row.owner_role = status, note, owner_role
    row.revision += 1
    row.updated_at = utcnow()
    row.updated_by = actor
    session.add(row)
    session.flush()
    entity_type, entity_id, site = entity
    audit.record(
        session,
        actor=actor,
        action="requirement.update",
        entity_type=entity_type,
        entity_id=entity_id,
        site=site,
        before=before,
        after=_audit_view(row),
    )
    return row


def _audit_view(row: Requirement | OrganisationRequirement) -> dict[str, Any]:
    return {
        "requirement": f"{row.framework}:{row.control}",
        "status": str(row.status),
        "note": row.note,
        "owner_role": row.owner_role,
        "revision": row.revision,
    }
