"""Approval requests and sign-offs: reads, content hashes, go/no-go conditions, the signer's inbox.

No HTTP here and no commits; the multi-step transitions (submit, sign, withdraw, revoke, expire) are in
``app.approvals.flows``.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.approvals.models import (
    ApprovalRead,
    ApprovalRequest,
    ApprovalState,
    ApprovalVerification,
    ConditionRead,
    Environment,
    SignOff,
    SignOffRead,
    SignOffVerification,
)
from app.approvals.rules import Facts, add_months
from app.audit.service import canonical_json
from app.classification.models import Classification, RiskAssessment
from app.classification.service import current_classification
from app.db import paginate, utcnow
from app.errors import Conflict, NotFound, field_error
from app.http import PageParams
from app.identity.models import Role
from app.systems.models import AISystem, sl_gap, sl_unassessed
from app.zones.models import Zone
from app.zones.service import is_ot

# --- content hashes ------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="microseconds")


def request_identity(a: ApprovalRequest) -> dict[str, Any]:
    """Which release a request is about: its id, system, site, version, artifact and environment (the
    head of both its signed content and the summary audit events and webhooks carry)."""
    return {
        "id": a.id,
        "system_id": a.system_id,
        "site": a.site,
        "version": a.version,
        "artifact_digest": a.artifact_digest,
        "environment": str(a.environment),
    }


def request_content(a: ApprovalRequest) -> dict[str, Any]:
    """The fields of a request that sign-offs vouch for (everything a signer judged; not its state)."""
    return {
        **request_identity(a),
        "requester": a.requester,
        "justification": a.justification,
        "required_signoffs": list(a.required_signoffs),
        "classification_id": a.classification_id,
        "ai_act_class": a.ai_act_class,
        "sl_gap": list(a.sl_gap),
        "validity_months": a.validity_months,
        "supersedes": a.supersedes,
        "created_at": _iso(a.created_at),
    }


def content_hash(a: ApprovalRequest) -> str:
    """SHA-256 over the canonical JSON of the request's content."""
    return hashlib.sha256(canonical_json(request_content(a)).encode()).hexdigest()


def signoff_hash(request_hash: str, s: SignOff) -> str:
    """SHA-256 binding one decision to the content hash of the request it was made on."""
    payload = {
        "request": request_hash,
        "approval_id": s.approval_id,
        "role": str(s.role),
        "signer": s.signer,
        "decision": str(s.decision),
        "comment": s.comment,
        "conditions": list(s.conditions),
        "created_at": _iso(s.created_at),
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


# --- go/no-go conditions -------------------------------------------------------------------------------

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_.-]{0,63})\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")


def parse_condition(text: str, loc: list[str | int]) -> dict[str, Any]:
    """``"recall >= 0.97"`` -> ``{"metric": "recall", "op": ">=", "value": 0.97, "expression": ...}``."""
    match = _CONDITION_RE.match(text)
    if match is None:
        raise field_error(loc, "expected '<metric> <op> <number>' with op one of >=, <=, >, <, ==, !=")
    metric, op, raw = match.groups()
    try:
        value = float(raw)
    except ValueError:
        raise field_error(loc, f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise field_error(loc, "the threshold must be a finite number")
    return {"metric": metric, "op": op, "value": value, "expression": f"{metric} {op} {raw}"}


def failed_condition(condition: dict[str, Any], metrics: dict[str, Any] | None) -> str | None:
    """Why the version's metrics do not meet ``condition`` (a missing metric fails), or ``None``."""
    metric = condition["metric"]
    value = (metrics or {}).get(metric)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return f"condition {condition['expression']!r} not met: metric {metric!r} is not recorded"
    if not _OPS[condition["op"]](float(value), float(condition["value"])):
        return f"condition {condition['expression']!r} not met: {metric} = {value:g}"
    return None


def condition_read(c: dict[str, Any]) -> ConditionRead:
    return ConditionRead.model_validate(c)


# --- facts and states ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemFacts:
    """A system's current facts for the rules, with the classification they rest on."""

    facts: Facts
    classification_id: int | None
    zone: Zone | None


def system_facts(session: Session, system: AISystem, environment: Environment | str) -> SystemFacts:
    """Class, basis, personal data, OT zone, SL gap and unassessed SLs of a system, as the rules see them."""
    classification = current_classification(session, system.id)
    zone = session.get(Zone, system.zone) if system.zone else None
    target = zone.sl_target if zone else None
    facts = Facts(
        ai_act_class=str(system.ai_act_class) if system.ai_act_class else None,
        environment=str(environment),
        personal_data=bool(system.personal_data),
        ot_zone=bool(zone is not None and is_ot(zone)),
        sl_gap=sl_gap(target, system.sl_achieved),
        basis=list(classification.basis) if classification else [],
        risk_tier=str(system.risk_tier) if system.risk_tier else None,
        sl_unassessed=sl_unassessed(target, system.sl_achieved),
    )
    return SystemFacts(
        facts=facts, classification_id=classification.id if classification else None, zone=zone
    )


class Dated(Protocol):
    """What the state and order rules read of a request: an ``ApprovalRequest``, or a row the gate read."""

    @property
    def id(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def valid_until(self) -> datetime | None: ...

    @property
    def created_at(self) -> datetime: ...


def effective_state(a: Dated, now: datetime | None = None) -> ApprovalState:
    """The state as of now: an approval past ``valid_until`` is expired even before the sweep records it."""
    state = ApprovalState(a.state)
    if state is ApprovalState.approved and a.valid_until is not None and a.valid_until <= (now or utcnow()):
        return ApprovalState.expired
    return state


def approval_order(a: Dated) -> tuple[datetime, int, str]:
    """Newest first when reversed: by creation, then by the numeric part of the id."""
    return (a.created_at, len(a.id), a.id)


RISK_ASSESSMENT_MISSING = "RISK_ASSESSMENT_MISSING"


def risk_assessment_missing(session: Session, system: AISystem) -> bool:
    """Whether the system is high-risk now and has no NIST AI RMF risk assessment recorded."""
    if system.ai_act_class != "high_risk":
        return False
    found = session.exec(
        select(RiskAssessment.id).where(RiskAssessment.system_id == system.id).limit(1)
    ).first()
    return found is None


def require_risk_assessment(session: Session, system: AISystem) -> None:
    """A high-risk system's approval request needs its risk assessment first (AI Act Art. 9 risk
    management, done with the NIST AI RMF): 409 ``RISK_ASSESSMENT_MISSING`` otherwise.

    Every path that opens a request (API, web form, periodic review, demo) goes through
    ``flows.submit``, which calls this before anything is written.
    """
    if risk_assessment_missing(session, system):
        raise Conflict(
            f"system {system.id} is classified high-risk and has no NIST AI RMF risk assessment; "
            "record its risk assessment before requesting approval",
            code=RISK_ASSESSMENT_MISSING,
        )


# --- reads ---------------------------------------------------------------------------------------------


def get_approval(session: Session, approval_id: str, *, for_update: bool = False) -> ApprovalRequest:
    """One request, or 404 (``for_update`` takes a row lock on PostgreSQL)."""
    stmt = select(ApprovalRequest).where(ApprovalRequest.id == approval_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.exec(stmt).first()
    if row is None:
        raise NotFound(f"approval {approval_id!r} does not exist")
    return row


def signoffs_of(session: Session, approval_ids: Iterable[str]) -> dict[str, list[SignOff]]:
    """The sign-offs of several requests in one query, oldest first."""
    ids = sorted(set(approval_ids))
    result: dict[str, list[SignOff]] = {i: [] for i in ids}
    if not ids:
        return result
    for s in session.exec(
        select(SignOff).where(col(SignOff.approval_id).in_(ids)).order_by(col(SignOff.id))
    ).all():
        result[s.approval_id].append(s)
    return result


def facts_changed(requested_at: int | None, system_facts_revision: int | None) -> bool:
    """Whether a fact deciding who must sign changed since the request was made (SIGNOFF_FACTS): then the
    request, and any approval it became, releases nothing more (the gate's CHANGED_SINCE_APPROVAL).

    ``requested_at`` is the request's ``facts_revision``, ``system_facts_revision`` the system's now."""
    return (system_facts_revision or 0) != (requested_at or 0)


def changed_ids(session: Session, approvals: Iterable[ApprovalRequest]) -> set[str]:
    """Approved requests whose system's sign-off facts have changed since they were requested."""
    judged = [a for a in approvals if a.state == ApprovalState.approved]
    if not judged:
        return set()
    revisions: dict[str, int] = dict(
        session.execute(
            sa.select(col(AISystem.id), col(AISystem.facts_revision)).where(
                col(AISystem.id).in_(sorted({a.system_id for a in judged}))
            )
        ).all()
    )
    return {a.id for a in judged if facts_changed(a.facts_revision, revisions.get(a.system_id))}


def reclassified_since() -> sa.Exists:
    """For a row of ``approval_request`` in the enclosing query: its system has since been classified into a
    class other than the one the request was made for (correlated; the release gate selects it too)."""
    return sa.exists().where(
        col(Classification.system_id) == col(ApprovalRequest.system_id),
        col(Classification.id) > sa.func.coalesce(col(ApprovalRequest.classification_id), 0),
        col(Classification.ai_act_class) != col(ApprovalRequest.ai_act_class),
    )


def reclassified_ids(session: Session, approvals: Iterable[ApprovalRequest]) -> set[str]:
    """Approved requests whose system has since been classified into a different class."""
    judged = sorted(a.id for a in approvals if a.state == ApprovalState.approved)
    if not judged:
        return set()
    found = session.execute(
        sa.select(col(ApprovalRequest.id)).where(col(ApprovalRequest.id).in_(judged), reclassified_since())
    )
    return set(found.scalars())


def _signoff_read(s: SignOff, request_hash: str) -> SignOffRead:
    return SignOffRead(
        role=str(s.role),
        signer=s.signer,
        decision=s.decision,
        comment=s.comment,
        conditions=[condition_read(c | {"role": str(s.role), "signer": s.signer}) for c in s.conditions],
        created_at=s.created_at,
        hash=s.hash,
        hash_valid=s.hash == signoff_hash(request_hash, s),
        carried_over_from=s.carried_over_from,
    )


def approval_reads(session: Session, approvals: list[ApprovalRequest]) -> list[ApprovalRead]:
    """Full read models for several requests with a fixed number of queries."""
    signoffs = signoffs_of(session, (a.id for a in approvals))
    reclassified = reclassified_ids(session, approvals)
    changed = changed_ids(session, approvals)
    now = utcnow()
    out = []
    for a in approvals:
        recomputed = content_hash(a)
        signed = {str(s.role) for s in signoffs[a.id]}
        state = effective_state(a, now)
        out.append(
            ApprovalRead(
                id=a.id,
                system_id=a.system_id,
                site=a.site,
                version=a.version,
                artifact_digest=a.artifact_digest,
                environment=a.environment,
                requester=a.requester,
                justification=a.justification,
                state=state,
                required_signoffs=list(a.required_signoffs),
                required_because=dict(a.required_because),
                pending_signoffs=[r for r in a.required_signoffs if r not in signed]
                if state is ApprovalState.submitted
                else [],
                signoffs=[_signoff_read(s, recomputed) for s in signoffs[a.id]],
                conditions=[condition_read(c) for c in a.conditions],
                ai_act_class=a.ai_act_class,
                classification_id=a.classification_id,
                reclassified_since_approval=a.id in reclassified,
                changed_since_approval=a.id in changed,
                sl_gap=list(a.sl_gap),
                validity_months=a.validity_months,
                valid_until=a.valid_until,
                review_due=state is ApprovalState.expired,
                supersedes=a.supersedes,
                decided_at=a.decided_at,
                closed_by=a.closed_by,
                close_reason=a.close_reason,
                content_hash=a.content_hash,
                created_at=a.created_at,
                updated_at=a.updated_at,
                revision=a.revision,
            )
        )
    return out


def approval_read(session: Session, a: ApprovalRequest) -> ApprovalRead:
    return approval_reads(session, [a])[0]


def verify(session: Session, a: ApprovalRequest) -> ApprovalVerification:
    """Recompute the request's content hash and every sign-off hash; any later edit shows up here."""
    signoffs = signoffs_of(session, [a.id])[a.id]
    recomputed = content_hash(a)
    checks = [
        SignOffVerification(
            role=str(s.role), signer=s.signer, hash_valid=s.hash == signoff_hash(recomputed, s)
        )
        for s in signoffs
    ]
    approving = [s for s in signoffs if s.decision == "approve"]
    expected_conditions = [
        c | {"role": str(s.role), "signer": s.signer} for s in approving for c in s.conditions
    ]
    conditions_valid = list(a.conditions) == expected_conditions
    validity_valid = True
    if a.state in (ApprovalState.approved, ApprovalState.expired, ApprovalState.revoked) and a.decided_at:
        last = max((s.created_at for s in approving), default=None)
        validity_valid = (
            last is not None
            and a.decided_at == last
            and a.valid_until == add_months(a.decided_at, a.validity_months)
        )
    content_valid = recomputed == a.content_hash
    return ApprovalVerification(
        id=a.id,
        valid=content_valid and conditions_valid and validity_valid and all(c.hash_valid for c in checks),
        content_valid=content_valid,
        conditions_valid=conditions_valid,
        validity_valid=validity_valid,
        signoffs=checks,
    )


# --- lists and the signer's inbox ----------------------------------------------------------------------


@dataclass
class ApprovalFilters:
    state: ApprovalState | None = None
    site: str | None = None
    system_id: str | None = None
    environment: Environment | None = None
    requester: str | None = None


def _role_required(role: str) -> sa.ColumnElement[bool]:
    # required_signoffs is a JSON list of role names; a role's quoted name is unique within it.
    return sa.cast(col(ApprovalRequest.required_signoffs), sa.Text).like(f'%"{role}"%')


def _in_sites(sites: set[str] | None) -> sa.ColumnElement[bool]:
    return sa.true() if sites is None else col(ApprovalRequest.site).in_(sorted(sites))


def list_approvals(
    session: Session,
    filters: ApprovalFilters,
    *,
    read_sites: set[str] | None,
    page: PageParams,
    username: str | None = None,
    sign_sites: dict[str, set[str] | None] | None = None,
) -> tuple[list[ApprovalRead], int]:
    """Requests in ``read_sites`` matching ``filters``, newest first.

    With ``sign_sites`` (role -> sites where ``username`` may sign it) the list is that signer's inbox:
    open requests they did not make and have not signed for any role, still awaiting one of those roles.
    """
    now = utcnow()
    conditions: list[sa.ColumnElement[bool]] = [_in_sites(read_sites)]
    for name in ("site", "system_id", "environment", "requester"):
        value = getattr(filters, name)
        if value is not None:
            conditions.append(col(getattr(ApprovalRequest, name)) == value)
    state = col(ApprovalRequest.state)
    valid_until = col(ApprovalRequest.valid_until)
    if filters.state is ApprovalState.approved:
        conditions += [state == ApprovalState.approved, valid_until > now]
    elif filters.state is ApprovalState.expired:
        conditions.append(
            sa.or_(
                state == ApprovalState.expired,
                sa.and_(state == ApprovalState.approved, valid_until <= now),
            )
        )
    elif filters.state is not None:
        conditions.append(state == filters.state)
    if sign_sites is not None:
        assert username is not None
        of_request = col(SignOff.approval_id) == col(ApprovalRequest.id)
        by_me = sa.exists().where(of_request, col(SignOff.signer) == username)
        per_role = [
            sa.and_(
                _in_sites(sites),
                _role_required(role),
                ~sa.exists().where(of_request, col(SignOff.role) == role),
            )
            for role, sites in sign_sites.items()
            if sites is None or sites
        ]
        if not per_role:
            return [], 0
        conditions += [
            state == ApprovalState.submitted,
            col(ApprovalRequest.requester) != username,
            ~by_me,
            sa.or_(*per_role),
        ]
    rows, total = paginate(
        session,
        select(ApprovalRequest).where(*conditions),
        page,
        col(ApprovalRequest.created_at).desc(),
        col(ApprovalRequest.id).desc(),
    )
    return approval_reads(session, rows), total


def signable_roles() -> list[str]:
    """Every role that can be asked to sign (the ``signoff.<role>`` resources of the policy)."""
    return [r.value for r in Role]
