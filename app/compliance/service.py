"""Compliance work (no HTTP here): frameworks read from the validated files, and the requirements derived
from them and the classifications, with what people record about them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple, TypeVar, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.approvals import release, webhooks
from app.approvals.models import Environment
from app.audit import service as audit
from app.classification import service as classifications
from app.classification.models import Classification
from app.compliance.evidence import is_current
from app.compliance.frameworks import OWNER_ROLES, Framework, Frameworks, get_frameworks
from app.compliance.models import (
    ORGANISATION_SCOPE,
    ControlRead,
    Evidence,
    FrameworkRead,
    FrameworkSummary,
    GroupRead,
    OrganisationRequirement,
    Requirement,
    RequirementEvidence,
    RequirementRead,
    RequirementStatus,
    RequirementTally,
    RequirementTallyState,
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

    @property
    def ref(self) -> str:
        """``framework:control``, as the API names a requirement."""
        return f"{self.framework}:{self.control}"


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

    See ``derive_for_class``.
    """
    if classification is None:
        return []
    return derive_for_class(str(classification.ai_act_class), classification.result, frameworks)


def derive_for_class(ai_act_class: str, result: dict[str, Any], frameworks: Frameworks) -> list[Derived]:
    """The requirements of a system whose current classification has this class and result.

    AI Act (a framework backed by ``catalog: ai_act``): the result's duties for its effective role, dated as
    the result dates them; organisation-wide ones (Art. 4) are the organisation's, and ids that are no duty
    of today's catalogue (``art2.2`` in a first-edition result) are left out. Any other adopted
    framework: its controls that are not organisation-wide, when the system's class is in the file's
    ``applies_to_classes``.
    """
    derived: list[Derived] = []
    for framework in _adopted(frameworks):
        if framework.catalog == "ai_act":
            for oid, when in _ai_act_duties(result).items():
                control = framework.control_by_id.get(oid)
                if control is None or control.organisation_wide:
                    continue  # no duty of today's catalogue (a first-edition id), or the organisation's
                derived.append(
                    Derived(
                        framework.id, oid, control.title, when or control.applies_from, framework.owner_role
                    )
                )
        elif ai_act_class in framework.applies_to_classes:
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
    if (updates or missing) and model is Requirement:
        forget_tally(session, key["system_id"])
    for row, changes in updates:
        for k, v in changes.items():
            setattr(row, k, v)
        session.add(row)
    now = utcnow()
    new: list[R] = [
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
    return rows + new


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


# --- evidence, status as of now, and what is still open ---------------------------------------------------
#
# One definition of "done", used by the API, the pages, the sweep and the release gate alike: a requirement
# is done when it is ``not_applicable``, or ``met`` while at least one current evidence item supports it,
# linked to it or to a control it maps to (``maps_to``) in the same scope. ``met`` whose evidence has all
# expired counts as ``open`` at once; the sweep then records it (``requirement.reopened``).


@dataclass(frozen=True)
class EvidenceLinks:
    """Evidence linked to the requirements of one scope (a system, or the organisation): ``framework:control``
    -> ``[(evidence id, current today)]``."""

    by_ref: dict[str, list[tuple[str, bool]]]
    valid_until: dict[str, date | None] = field(default_factory=dict)  # evidence id -> its last day

    def direct(self, ref: str) -> list[str]:
        return [eid for eid, _ in self.by_ref.get(ref, [])]

    def crosswalk(self, ref: str, frameworks: Frameworks) -> list[str]:
        """Evidence of the controls ``ref`` maps to (each once, in link order)."""
        seen: dict[str, None] = {}
        for other in _maps_to(ref, frameworks):
            for eid, _ in self.by_ref.get(other, []):
                seen.setdefault(eid, None)
        return [eid for eid in seen if eid not in self.direct(ref)]

    def current(self, ref: str, frameworks: Frameworks) -> bool:
        """Whether current evidence supports ``ref``, directly or through the crosswalk."""
        if not self.by_ref:
            return False
        return any(ok for r in (ref, *_maps_to(ref, frameworks)) for _, ok in self.by_ref.get(r, []))


_crosswalk: tuple[Frameworks, dict[str, tuple[str, ...]]] | None = None


def _maps_to(ref: str, frameworks: Frameworks) -> tuple[str, ...]:
    """The controls ``ref`` maps to (a flat index per loaded set of frameworks: the gate asks per control)."""
    global _crosswalk
    cached = _crosswalk
    if cached is None or cached[0] is not frameworks:
        index = {f"{f.id}:{c.id}": tuple(c.maps_to) for f in frameworks.frameworks for c in f.controls}
        cached = _crosswalk = (frameworks, index)
    return cached[1].get(ref, ())


def evidence_links(session: Session, scope: str, today: date) -> EvidenceLinks:
    """The evidence links of a scope (a system id, or ``organisation``), with whether each is current."""
    rows = session.exec(
        select(
            col(RequirementEvidence.framework),
            col(RequirementEvidence.control),
            col(Evidence.id),
            col(Evidence.valid_until),
        )
        .join(Evidence, col(Evidence.id) == col(RequirementEvidence.evidence_id))
        .where(col(RequirementEvidence.scope) == scope)
        .order_by(col(RequirementEvidence.linked_at), col(Evidence.id))
    ).all()
    return _links(rows, today)


def _links(rows: Any, today: date) -> EvidenceLinks:
    by_ref: dict[str, list[tuple[str, bool]]] = {}
    until: dict[str, date | None] = {}
    for framework, control, eid, valid_until in rows:
        by_ref.setdefault(f"{framework}:{control}", []).append((eid, is_current(valid_until, today)))
        until[eid] = valid_until
    return EvidenceLinks(by_ref, until)


def effective_status(status: RequirementStatus | str, evidence_current: bool) -> RequirementStatus:
    """The status as of now: ``met`` stops counting when no current evidence supports it."""
    status = RequirementStatus(status)
    if status == RequirementStatus.met and not evidence_current:
        return RequirementStatus.open
    return status


def is_overdue(status: RequirementStatus | str, evidence_current: bool, binding: bool) -> bool:
    """Binds today and is not done: what holds a production release (``REQUIREMENTS_OPEN``)."""
    return binding and not is_done(status, evidence_current)


def is_done(status: RequirementStatus | str, evidence_current: bool) -> bool:
    """Met with current evidence, or not applicable (with the note that says why): the statuses
    ``effective_status`` leaves ``met`` or ``not_applicable``. Compared as text, without making an enum
    member: the release gate asks it for every requirement of the system on every call."""
    if status == RequirementStatus.not_applicable:
        return True
    return status == RequirementStatus.met and evidence_current


_binding_cache: tuple[Frameworks, dict[str, bool]] | None = None


def _binding(frameworks: Frameworks) -> dict[str, bool]:
    """Framework id -> whether it binds (``binding: true``), indexed once per loaded set of frameworks."""
    global _binding_cache
    cached = _binding_cache
    if cached is None or cached[0] is not frameworks:
        cached = _binding_cache = (frameworks, {f.id: f.binding for f in frameworks.frameworks})
    return cached[1]


def binds_on(
    framework_id: str,
    applies_from: date | None,
    derived: bool,
    today: date,
    frameworks: Frameworks | None = None,
) -> bool:
    """Whether a requirement binds on ``today``: still derived, its framework binds, its date reached."""
    if not derived or not _binding(frameworks or get_frameworks()).get(framework_id, False):
        return False
    return applies_from is None or applies_from <= today


def binds(
    row: Requirement | OrganisationRequirement,
    today: date | None = None,
    frameworks: Frameworks | None = None,
) -> bool:
    """``binds_on`` for a stored requirement."""
    return binds_on(row.framework, row.applies_from, row.derived, today or utcnow().date(), frameworks)


# --- the portfolio: the same rules over every system at once --------------------------------------------


@dataclass
class PortfolioCounts:
    """The derived requirements of one framework over the live systems of one site, each counted once:
    ``met`` (with current evidence), ``not_applicable``, ``overdue`` (binds today and is not done) and
    ``open`` (not done and does not bind yet; ``in_progress`` included)."""

    site: str
    framework: str
    met: int = 0
    open: int = 0
    overdue: int = 0
    not_applicable: int = 0

    @property
    def total(self) -> int:
        return self.met + self.open + self.overdue + self.not_applicable


def frameworks_key(frameworks: Frameworks) -> str:
    """What the derivation depends on besides the classification: the adopted frameworks and their
    versions (a tally computed under other frameworks is counted again)."""
    text = ",".join(f"{fid}@{frameworks.by_id[fid].version}" for fid in frameworks.adopted)
    return hashlib.sha256(text.encode()).hexdigest()


TALLY_BATCH = 500  # systems counted per round of queries


def tally_systems(session: Session, system_ids: list[str], today: date) -> None:
    """Count the derived requirements of these systems per framework by the rules above
    (``effective_status``, ``binds``) and store the counts with the last day they hold: the day before the
    next ``applies_from`` that starts binding or the next expiry of a current evidence item.

    A few queries per ``TALLY_BATCH`` systems (their newest classifications, requirement rows and evidence
    links); a system whose rows are out of step with its classification is brought in step first (``_sync``).
    """
    frameworks = get_frameworks()
    key = frameworks_key(frameworks)
    for n in range(0, len(system_ids), TALLY_BATCH):
        batch = system_ids[n : n + TALLY_BATCH]
        newest = (
            sa.select(sa.func.max(Classification.id))
            .where(col(Classification.system_id).in_(batch))
            .group_by(col(Classification.system_id))
        )
        current = {
            c.system_id: c
            for c in session.exec(select(Classification).where(col(Classification.id).in_(newest)))
        }
        stored: dict[str, list[Any]] = {sid: [] for sid in batch}
        for row in session.execute(  # plain rows: counting needs no ORM objects
            sa.select(
                col(Requirement.system_id),
                col(Requirement.framework),
                col(Requirement.control),
                col(Requirement.title),
                col(Requirement.status),
                col(Requirement.derived),
                col(Requirement.applies_from),
            ).where(col(Requirement.system_id).in_(batch))
        ):
            stored[row.system_id].append(row)
        linked: dict[str, list[Any]] = {}
        for scope, *link in session.execute(_links_query(batch)):
            linked.setdefault(scope, []).append(link)
        session.execute(sa.delete(RequirementTally).where(col(RequirementTally.system_id).in_(batch)))
        session.execute(
            sa.delete(RequirementTallyState).where(col(RequirementTallyState.system_id).in_(batch))
        )
        tallies: list[dict[str, Any]] = []
        states: list[dict[str, Any]] = []
        for sid in batch:
            classification = current.get(sid)
            rows = stored[sid]
            if classification is not None:
                derived = derive_for_system(classification, frameworks)
                if any(_changes(rows, derived)):  # out of step: the stored rows, brought in step
                    loaded = list(session.exec(_select_rows(Requirement, {"system_id": sid})).all())
                    rows = _sync(session, Requirement, loaded, derived, system_id=sid)
            counts, fresh_until = _tally(rows, _links(linked.get(sid, []), today), frameworks, today)
            tallies.extend({"system_id": sid, "framework": fid, **c} for fid, c in counts.items())
            states.append(
                {
                    "system_id": sid,
                    "classification_id": classification.id if classification is not None else 0,
                    "frameworks_key": key,
                    "fresh_until": fresh_until,
                    "computed_at": utcnow(),
                }
            )
        if tallies:
            session.execute(sa.insert(RequirementTally), tallies)
        session.execute(sa.insert(RequirementTallyState), states)
    session.flush()


def _tally(
    rows: list[Any], links: EvidenceLinks, frameworks: Frameworks, today: date
) -> tuple[dict[str, dict[str, int]], date | None]:
    """One system's counts per framework, and the last day they hold (None: until a change)."""
    counts: dict[str, dict[str, int]] = {}
    changes: list[date] = []
    for row in rows:
        if not row.derived or row.framework not in frameworks.adopted:
            continue
        ref = f"{row.framework}:{row.control}"
        tally = counts.setdefault(row.framework, {"met": 0, "open": 0, "overdue": 0, "not_applicable": 0})
        status = effective_status(row.status, links.current(ref, frameworks))
        if status == RequirementStatus.met:
            tally["met"] += 1
        elif status == RequirementStatus.not_applicable:
            tally["not_applicable"] += 1
        elif binds_on(row.framework, row.applies_from, row.derived, today, frameworks):
            tally["overdue"] += 1
        else:
            tally["open"] += 1
        starts = row.applies_from
        if (
            starts is not None
            and starts > today
            and binds_on(row.framework, starts, True, starts, frameworks)
        ):
            changes.append(starts)
    for items in links.by_ref.values():
        for eid, current in items:
            until = links.valid_until.get(eid)
            if current and until is not None:
                changes.append(until + timedelta(days=1))
    return counts, (min(changes) - timedelta(days=1) if changes else None)


def forget_tally(session: Session, system_id: str) -> None:
    """The system's requirements changed: its tally is counted again at the next portfolio view."""
    session.execute(sa.delete(RequirementTallyState).where(col(RequirementTallyState.system_id) == system_id))


def stale_tallies(session: Session, sites: set[str] | None, today: date) -> list[str]:
    """The live classified systems in ``sites`` whose tally does not hold today: never counted, counted for
    another classification or other frameworks, past its ``fresh_until``, or forgotten after a change."""
    latest = (
        sa.select(sa.func.max(Classification.id))
        .where(col(Classification.system_id) == col(AISystem.id))
        .correlate(AISystem)
        .scalar_subquery()
    )
    holds = (
        sa.select(col(RequirementTallyState.system_id))
        .where(
            col(RequirementTallyState.system_id) == col(AISystem.id),
            col(RequirementTallyState.classification_id) == latest,
            col(RequirementTallyState.frameworks_key) == frameworks_key(get_frameworks()),
            sa.or_(
                col(RequirementTallyState.fresh_until).is_(None),
                col(RequirementTallyState.fresh_until) >= today,
            ),
        )
        .correlate(AISystem)
        .exists()
    )
    return list(
        session.exec(
            select(col(AISystem.id)).where(
                col(AISystem.archived_at).is_(None),
                sa.true() if sites is None else col(AISystem.site).in_(sorted(sites)),
                latest.is_not(None),
                ~holds,
            )
        ).all()
    )


def portfolio_counts(
    session: Session, sites: set[str] | None, today: date | None = None
) -> list[PortfolioCounts]:
    """Requirements of the live systems in ``sites`` (None: every site) per site and adopted framework,
    counted by the same rules the API applies one system at a time.

    The counts come from each system's stored tally (``tally_systems``); systems whose tally does not hold
    today (``stale_tallies``) are counted again first, in a write transaction of its own, and the read
    snapshot is then renewed (as ``_read_in_step`` does). A view after changes to a few systems counts only
    those; the first view of a large registry counts every system once.
    """
    today = today or utcnow().date()
    stale = stale_tallies(session, sites, today)
    if stale:
        with session_scope() as writer:
            tally_systems(writer, stale, today)
        session.rollback()  # end the read snapshot, so the tallies just committed are seen
    frameworks = get_frameworks()
    query = (
        sa.select(
            col(AISystem.site),
            col(RequirementTally.framework),
            sa.func.sum(col(RequirementTally.met)),
            sa.func.sum(col(RequirementTally.open)),
            sa.func.sum(col(RequirementTally.overdue)),
            sa.func.sum(col(RequirementTally.not_applicable)),
        )
        .join(AISystem, col(AISystem.id) == col(RequirementTally.system_id))
        .where(
            col(AISystem.archived_at).is_(None),
            col(RequirementTally.framework).in_(frameworks.adopted),
            sa.true() if sites is None else col(AISystem.site).in_(sorted(sites)),
        )
        .group_by(col(AISystem.site), col(RequirementTally.framework))
    )
    out = [
        PortfolioCounts(site, framework, int(met), int(open_), int(overdue), int(na))
        for site, framework, met, open_, overdue, na in session.execute(query).all()
    ]
    rank = {fid: n for n, fid in enumerate(frameworks.adopted)}
    return sorted(out, key=lambda c: (rank.get(c.framework, len(rank)), c.framework, c.site))


class Outstanding(NamedTuple):
    """A derived requirement not done: its reference, title, date and whether it binds today (a tuple: the
    release gate makes one per open requirement on every call)."""

    ref: str
    title: str
    applies_from: date | None
    binding: bool


def outstanding(
    derived: list[Derived], recorded: dict[str, str], links: EvidenceLinks, today: date
) -> list[Outstanding]:
    """The derived requirements that are not done (``recorded``: ``framework:control`` -> stored status;
    a requirement without a row is open), in the derivation's order."""
    frameworks = get_frameworks()
    result = []
    for d in derived:
        ref = d.ref
        status = recorded.get(ref, RequirementStatus.open)
        # evidence is looked at only where it can matter (``met``)
        if not is_done(status, status == RequirementStatus.met and links.current(ref, frameworks)):
            binding = binds_on(d.framework, d.applies_from, True, today, frameworks)
            result.append(Outstanding(ref, d.title, d.applies_from, binding))
    return result


def system_outstanding(session: Session, system_id: str, today: date | None = None) -> list[Outstanding]:
    """What is still open for a system (for the approval page and the inbox), without writing anything."""
    today = today or utcnow().date()
    derived = derive_for_system(classifications.current_classification(session, system_id), get_frameworks())
    recorded = dict(
        session.exec(
            select(Requirement.framework + ":" + Requirement.control, Requirement.status).where(
                Requirement.system_id == system_id
            )
        ).all()
    )
    return outstanding(derived, recorded, evidence_links(session, system_id, today), today)


def requirement_read(
    row: Requirement | OrganisationRequirement, links: EvidenceLinks, today: date | None = None
) -> RequirementRead:
    """The API view of a requirement, its status as of now (see ``effective_status``)."""
    today = today or utcnow().date()
    frameworks = get_frameworks()
    ref = f"{row.framework}:{row.control}"
    current = links.current(ref, frameworks)
    return RequirementRead(
        id=ref,
        framework=row.framework,
        control=row.control,
        title=row.title,
        status=effective_status(row.status, current),
        applies_from=row.applies_from,
        binding=binds(row, today, frameworks),
        derived=row.derived,
        owner_role=row.owner_role,
        note=row.note,
        evidence=links.direct(ref),
        crosswalk_evidence=links.crosswalk(ref, frameworks),
        evidence_current=current,
        revision=row.revision,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def scope_of(row: Requirement | OrganisationRequirement) -> str:
    """The evidence scope of a requirement: its system's id, or ``organisation``."""
    return row.system_id if isinstance(row, Requirement) else ORGANISATION_SCOPE


def update_requirement(
    session: Session,
    row: R,
    data: RequirementUpdate,
    *,
    if_match: int | None,
    actor: str,
    entity: tuple[str, str, str | None],
) -> R:
    """Change a requirement's status, note, owner role or linked evidence; audited with before and after.

    The rules, in the order a person would ask: the change names the current revision (409 if stale); linked
    evidence exists and belongs to the same system (or to the organisation) (422 naming it); a requirement
    marked ``not_applicable`` says why in its note (422 naming ``note``); ``met`` needs at least one current
    evidence item, linked or through the crosswalk (409 ``EVIDENCE_REQUIRED``). ``entity``:
    ``(entity_type, entity_id, site)`` of the audit event.
    """
    check_revision(row.revision, if_match, data.revision)
    ref = f"{row.framework}:{row.control}"
    scope = scope_of(row)
    today = utcnow().date()
    links = evidence_links(session, scope, today)
    before_ids = links.direct(ref)
    after_ids = before_ids if data.evidence is None else list(dict.fromkeys(data.evidence))
    if after_ids != before_ids:
        check_evidence(session, scope, after_ids)
        links = _relink(session, scope, row, before_ids, after_ids, actor, today)
    if data.status is not None:
        status = data.status
    elif data.evidence is None:  # a note or owner change records the status as of now (``met`` may lapse)
        status = effective_status(row.status, links.current(ref, get_frameworks()))
    else:  # new links: a ``met`` requirement must keep current evidence (unlinking the last is refused)
        status = row.status
    note = (data.note or None) if data.note is not None else row.note
    if status == RequirementStatus.not_applicable and not note:
        raise field_error(
            ["body", "note"], f"{ref} marked not_applicable needs a note saying why it does not apply"
        )
    if status == RequirementStatus.met and not links.current(ref, get_frameworks()):
        raise Conflict(
            f"{ref} cannot be marked met: met needs at least one current evidence item linked to it (or to "
            "a control it maps to); upload evidence and link it in the same change",
            code="EVIDENCE_REQUIRED",
        )
    owner_role = str(data.owner_role) if data.owner_role is not None else row.owner_role
    if owner_role not in OWNER_ROLES:
        raise field_error(
            ["body", "owner_role"], f"a requirement is owned by one of: {', '.join(OWNER_ROLES)}"
        )
    if (status, note, owner_role, after_ids) == (row.status, row.note, row.owner_role, before_ids):
        return row
    before = {**_audit_view(row), "evidence": before_ids}
    if isinstance(row, Requirement):
        forget_tally(session, row.system_id)
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
        after={**_audit_view(row), "evidence": after_ids},
    )
    return row


def check_evidence(
    session: Session, scope: str, ids: list[str], loc: Sequence[str | int] = ("body", "evidence")
) -> None:
    """422 naming the first id (at ``loc``, index appended) that is no evidence of this scope."""
    found = {e.id: e.system_id for e in session.exec(select(Evidence).where(col(Evidence.id).in_(ids))).all()}
    owner = None if scope == ORGANISATION_SCOPE else scope
    for n, eid in enumerate(ids):
        if eid not in found:
            raise field_error([*loc, n], f"evidence {eid} does not exist")
        if found[eid] != owner:
            where = f"system {found[eid]}" if found[eid] else "the organisation"
            mine = "the organisation" if owner is None else f"system {owner}"
            raise field_error([*loc, n], f"evidence {eid} belongs to {where}, not to {mine}")


def _relink(
    session: Session,
    scope: str,
    row: Requirement | OrganisationRequirement,
    before: list[str],
    after: list[str],
    actor: str,
    today: date,
) -> EvidenceLinks:
    """Replace the requirement's evidence links; the scope's links as they now are."""
    gone = [eid for eid in before if eid not in after]
    if gone:
        session.execute(
            sa.delete(RequirementEvidence).where(
                col(RequirementEvidence.scope) == scope,
                col(RequirementEvidence.framework) == row.framework,
                col(RequirementEvidence.control) == row.control,
                col(RequirementEvidence.evidence_id).in_(gone),
            )
        )
    now = utcnow()
    for eid in after:
        if eid not in before:
            session.add(
                RequirementEvidence(
                    scope=scope,
                    framework=row.framework,
                    control=row.control,
                    evidence_id=eid,
                    linked_by=actor,
                    linked_at=now,
                )
            )
    session.flush()
    return evidence_links(session, scope, today)


def _audit_view(row: Requirement | OrganisationRequirement) -> dict[str, Any]:
    return {
        "requirement": f"{row.framework}:{row.control}",
        "status": str(row.status),
        "note": row.note,
        "owner_role": row.owner_role,
        "revision": row.revision,
    }


# --- the release gate and the sweep -------------------------------------------------------------------------

_SHOWN = 5  # requirements named in a reason; the rest are counted


def _gate_reasons(check: release.CheckInput) -> list[release.Reason]:
    """The release gate's hook (the rules above, on the rows of ``gate_check``'s statements): a production
    release is denied with ``REQUIREMENTS_OPEN`` while a requirement that binds today is not done;
    requirements not done that do not bind yet are a ``REQUIREMENTS_OPEN`` warning."""
    current = check.rows["classification"]
    if not current or current[0]["ai_act_class"] == "prohibited":
        return []  # NOT_CLASSIFIED or PROHIBITED says it all
    said = _gate_said(
        str(current[0]["ai_act_class"]),
        current[0]["result"] or {},
        tuple(sorted((f"{r['framework']}:{r['control']}", str(r["status"])) for r in check.rows["recorded"])),
        tuple(sorted((r["framework"], r["control"], r["id"], r["valid_until"]) for r in check.rows["links"])),
        check.now.date(),
    )
    return [reason(release.REQUIREMENTS_OPEN, head + check.system_id + tail) for reason, head, tail in said]


_Said = tuple[tuple[Callable[[str, str], release.Reason], str, str], ...]


def _said(pending: list[Outstanding], today: date) -> _Said:
    """What ``_gate_reasons`` says of ``pending``: each reason as its kind and the text around the system's
    id (the rest of it depends on the requirements alone, so it is worded once per distinct input)."""
    binding = [o for o in pending if o.binding]
    later = [o for o in pending if not o.binding]
    said: list[tuple[Callable[[str, str], release.Reason], str, str]] = []
    if binding:
        one = len(binding) == 1
        said.append(
            (
                release.error,
                f"{_count(binding)} of ",
                f" {'binds' if one else 'bind'} today and {'is' if one else 'are'} not met: "
                f"{_named(binding)}; record {'it' if one else 'each'} met with current evidence, or not "
                "applicable with a note",
            )
        )
    if later:
        first = min((o.applies_from for o in later if o.applies_from), default=None)
        when = f"; the first binds on {first.isoformat()}" if first and first > today else ""
        said.append(
            (
                release.warning,
                f"{_count(later)} of ",
                f" {'is' if len(later) == 1 else 'are'} open and do not bind yet: {_named(later)}{when}",
            )
        )
    return tuple(said)


_LinkRow = tuple[str, str, str, date | None]  # framework, control, evidence id, valid until
_GateKey = tuple[str, bytes, tuple[tuple[str, str], ...], tuple[_LinkRow, ...], date]
_gate_cache: tuple[Frameworks, dict[_GateKey, _Said]] | None = None


def _gate_said(
    ai_act_class: str,
    result: dict[str, Any],
    recorded: tuple[tuple[str, str], ...],
    links: tuple[_LinkRow, ...],
    today: date,
) -> _Said:
    """``_said`` of ``outstanding`` for what the gate read (``recorded``: ``(ref, status)``, ``links``:
    evidence rows, both sorted), remembered per loaded set of frameworks: the gate asks on every call, and
    most systems share a handful of classification results and the same few records, so the rule runs
    (and its answer is worded) once for each distinct set of inputs instead of once per call."""
    global _gate_cache
    frameworks = get_frameworks()
    cached = _gate_cache
    if cached is None or cached[0] is not frameworks or len(cached[1]) > 4096:
        cached = _gate_cache = (frameworks, {})
    key = (ai_act_class, orjson.dumps(result, option=orjson.OPT_SORT_KEYS), recorded, links, today)
    said = cached[1].get(key)
    if said is None:
        derived = derive_for_class(ai_act_class, result, frameworks)
        pending = outstanding(derived, dict(recorded), _links(links, today), today)
        said = cached[1][key] = _said(pending, today)
    return said


def _gate_statements() -> dict[str, Any]:
    """The rows ``_gate_reasons`` judges: the current classification, the recorded requirements and the
    evidence links of the system asked about."""
    system_id = release.param("sid")
    return {
        "classification": release.newest_classification(
            col(Classification.ai_act_class), col(Classification.result), system_id=system_id
        ),
        "recorded": sa.select(
            col(Requirement.framework), col(Requirement.control), col(Requirement.status)
        ).where(col(Requirement.system_id) == system_id),
        # _links_query takes scope values; a bound parameter works the same in its IN
        "links": _links_query(cast(list[str], [system_id])),
    }


# the production gate only: other environments are not held by requirements
gate_check = release.ReleaseCheck(
    _gate_statements, _gate_reasons, environments=frozenset({Environment.production.value})
)


def _count(items: list[Outstanding]) -> str:
    return f"{len(items)} requirement{'' if len(items) == 1 else 's'}"


def _named(items: list[Outstanding]) -> str:
    shown = ", ".join(f"{o.ref} ({o.title})" for o in items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


SWEEP_ACTOR = "system:evidence"
REOPENED_EVENT = "requirement.reopened"


def expired_scopes(session: Session, today: date) -> list[str]:
    """The scopes (system ids, ``organisation``) where evidence linked to a requirement has expired while a
    requirement of the scope is still recorded ``met``: the only places a requirement may need reopening."""
    met_system = (
        sa.select(col(Requirement.id))
        .where(
            col(Requirement.system_id) == col(RequirementEvidence.scope),
            col(Requirement.status) == RequirementStatus.met,
        )
        .exists()
    )
    met_organisation = sa.and_(
        col(RequirementEvidence.scope) == ORGANISATION_SCOPE,
        sa.select(col(OrganisationRequirement.id))
        .where(col(OrganisationRequirement.status) == RequirementStatus.met)
        .exists(),
    )
    return sorted(
        set(
            session.exec(
                select(col(RequirementEvidence.scope))
                .join(Evidence, col(Evidence.id) == col(RequirementEvidence.evidence_id))
                .where(
                    col(Evidence.valid_until).is_not(None),
                    col(Evidence.valid_until) < today,
                    sa.or_(met_system, met_organisation),
                )
            ).all()
        )
    )


def scopes_to_reopen(session: Session, today: date) -> list[str]:
    """Of ``expired_scopes``, the ones where a ``met`` requirement has lost its last current evidence, by
    the rule ``EvidenceLinks.current`` (a few reads per ``TALLY_BATCH`` scopes, nothing written): a scope
    whose ``met`` requirements all still hold is not visited, so a long list never starves the rest."""
    frameworks = get_frameworks()
    found: list[str] = []
    candidates = expired_scopes(session, today)
    for n in range(0, len(candidates), TALLY_BATCH):
        batch = candidates[n : n + TALLY_BATCH]
        met: dict[str, list[str]] = {}
        for scope, framework, control in session.execute(
            sa.select(col(Requirement.system_id), col(Requirement.framework), col(Requirement.control)).where(
                col(Requirement.system_id).in_(batch), col(Requirement.status) == RequirementStatus.met
            )
        ):
            met.setdefault(scope, []).append(f"{framework}:{control}")
        if ORGANISATION_SCOPE in batch:
            met[ORGANISATION_SCOPE] = [
                f"{f}:{c}"
                for f, c in session.execute(
                    sa.select(
                        col(OrganisationRequirement.framework), col(OrganisationRequirement.control)
                    ).where(col(OrganisationRequirement.status) == RequirementStatus.met)
                )
            ]
        linked: dict[str, list[Any]] = {}
        for scope, *link in session.execute(_links_query(batch)):
            linked.setdefault(scope, []).append(link)
        for scope in batch:
            links = _links(linked.get(scope, []), today)
            if any(not links.current(ref, frameworks) for ref in met.get(scope, [])):
                found.append(scope)
    return found


def _links_query(scopes: list[str]) -> Any:
    """``(scope, framework, control, evidence id, valid_until)`` of the evidence links of ``scopes``."""
    return (
        sa.select(
            col(RequirementEvidence.scope),
            col(RequirementEvidence.framework),
            col(RequirementEvidence.control),
            col(Evidence.id),
            col(Evidence.valid_until),
        )
        .join(Evidence, col(Evidence.id) == col(RequirementEvidence.evidence_id))
        .where(col(RequirementEvidence.scope).in_(scopes))
        .order_by(col(RequirementEvidence.linked_at), col(Evidence.id))
    )


def reopen_scope(session: Session, scope: str, today: date) -> list[str]:
    """Record as ``open`` every ``met`` requirement of the scope that no current evidence supports any more;
    each is audited (``requirement.reopened``) and announced by webhook. Returns their ``scope/ref``."""
    frameworks = get_frameworks()
    met: Sequence[Requirement | OrganisationRequirement]
    if scope == ORGANISATION_SCOPE:
        met = session.exec(
            select(OrganisationRequirement).where(
                col(OrganisationRequirement.status) == RequirementStatus.met
            )
        ).all()
    else:
        met = session.exec(
            select(Requirement).where(
                col(Requirement.status) == RequirementStatus.met, col(Requirement.system_id) == scope
            )
        ).all()
    links = evidence_links(session, scope, today)
    reopened = []
    for row in met:
        ref = f"{row.framework}:{row.control}"
        if not links.current(ref, frameworks):
            reopened.append(f"{scope}/{ref}")
            _reopen(session, row, scope, ref, links)
    return reopened


def reopen_unsupported(session: Session, today: date | None = None) -> list[str]:
    """``reopen_scope`` for every scope ``expired_scopes`` names, in one transaction."""
    today = today or utcnow().date()
    return [ref for scope in expired_scopes(session, today) for ref in reopen_scope(session, scope, today)]


def _reopen(
    session: Session, row: Requirement | OrganisationRequirement, scope: str, ref: str, links: EvidenceLinks
) -> None:
    before = _audit_view(row)
    if isinstance(row, Requirement):
        forget_tally(session, row.system_id)
    row.status = RequirementStatus.open
    row.revision += 1
    row.updated_at = utcnow()
    row.updated_by = SWEEP_ACTOR
    session.add(row)
    session.flush()
    system = session.get(AISystem, scope) if isinstance(row, Requirement) else None
    site = system.site if system is not None else None
    expired = links.direct(ref) + links.crosswalk(ref, get_frameworks())
    audit.record(
        session,
        actor=SWEEP_ACTOR,
        action=REOPENED_EVENT,
        entity_type="system" if isinstance(row, Requirement) else ORGANISATION,
        entity_id=scope,
        site=site,
        before=before,
        after={**_audit_view(row), "reason": "evidence expired", "expired_evidence": expired},
    )
    webhooks.enqueue(
        session,
        REOPENED_EVENT,
        {
            "requirement": ref,
            "system": scope if isinstance(row, Requirement) else None,
            "status": "open",
            "expired_evidence": expired,
            "revision": row.revision,
        },
        approval_id=None,
        subject="requirement",
    )


SWEEP_SCOPES_PER_ROUND = 200


def sweep_requirements() -> int:
    """Background round (approvals sweep hook): reopen requirements whose evidence expired, one scope per
    short write transaction (so a large backlog never holds the database's write lock for long), at most
    ``SWEEP_SCOPES_PER_ROUND`` scopes a round; the next round goes on."""
    today = utcnow().date()
    with session_scope(write=False) as session:
        scopes = scopes_to_reopen(session, today)
    reopened = 0
    for scope in scopes[:SWEEP_SCOPES_PER_ROUND]:
        with session_scope() as session:
            reopened += len(reopen_scope(session, scope, today))
    return reopened
