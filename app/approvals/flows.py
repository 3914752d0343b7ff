"""Multi-step approval transitions: submit, sign off, withdraw, revoke and expire.

Each transition changes the request under a row lock (``FOR UPDATE`` on PostgreSQL; on SQLite the write
transaction is ``BEGIN IMMEDIATE``, see ``app.db``), records an audit event and queues a webhook in the same
transaction. Nothing here commits; the caller's unit of work does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.approvals import service, webhooks
from app.approvals.models import (
    ApprovalCreate,
    ApprovalRequest,
    ApprovalState,
    Decision,
    Environment,
    SignOff,
    SignOffCreate,
)
from app.approvals.rules import Rules, add_months, get_rules
from app.audit import service as audit
from app.db import session_scope, utcnow
from app.errors import Conflict, Unprocessable, field_error
from app.identity.dependencies import Principal
from app.systems import service as systems
from app.systems.models import AISystem

SYSTEM_ACTOR = "system:approvals"
log = logging.getLogger("aireg.approvals")


@dataclass(frozen=True)
class CarryOver:
    """Sign-offs a replica's request reuses from its origin's approval of the same digest and environment."""

    origin_approval_id: str
    signoffs: dict[str, SignOff]  # role -> the origin's approving sign-off
    asked_again: list[str]  # roles the new placement asks again (the replication policy says which)


CarryOverHook = Callable[[Session, AISystem, Environment, str], "CarryOver | None"]
_carry_over_hooks: list[CarryOverHook] = []


def register_carry_over(hook: CarryOverHook) -> None:
    """Hook for the replication domain: ``hook(session, system, environment, digest)`` returns the sign-offs
    a replica may reuse from its origin, or ``None`` (the first hook with an answer wins)."""
    _carry_over_hooks.append(hook)


def registered_carry_overs() -> tuple[CarryOverHook, ...]:
    """Every registered carry-over hook (``app.wiring`` checks that none is missing)."""
    return tuple(_carry_over_hooks)


def _carry_over(
    session: Session, system: AISystem, environment: Environment, digest: str
) -> CarryOver | None:
    for hook in _carry_over_hooks:
        plan = hook(session, system, environment, digest)
        if plan is not None:
            return plan
    return None


def _value(member: Any) -> Any:
    """An enum member's value (columns may load as enums or as plain strings)."""
    return getattr(member, "value", member)


def _summary(a: ApprovalRequest) -> dict[str, Any]:
    """What audit events and webhooks carry about a request."""
    return {
        **service.request_identity(a),
        "state": str(a.state),
        "requester": a.requester,
        "required_signoffs": list(a.required_signoffs),
        "ai_act_class": a.ai_act_class,
        "conditions": [c["expression"] for c in a.conditions],
        "valid_until": a.valid_until,
        "decided_at": a.decided_at,
        "closed_by": a.closed_by,
        "close_reason": a.close_reason,
        "revision": a.revision,
    }


def _transition(
    session: Session,
    a: ApprovalRequest,
    state: ApprovalState,
    *,
    actor: str,
    action: str,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    before = str(a.state)
    a.state = state
    a.updated_at = now
    a.revision += 1
    session.add(a)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="approval",
        entity_id=a.id,
        site=a.site,
        before={"state": before},
        after=_summary(a) | (extra or {}),
    )
    webhooks.enqueue(session, f"approval.{state.value}", _summary(a), approval_id=a.id)


def _check_revision(a: ApprovalRequest, if_match: int | None) -> None:
    if if_match is not None and if_match != a.revision:
        raise Conflict(
            f"stale revision {if_match}: approval {a.id} is at revision {a.revision}; reload and retry",
            current_revision=a.revision,
        )


# --- submit --------------------------------------------------------------------------------------------


def submit(
    session: Session, system: AISystem, data: ApprovalCreate, *, actor: str, rules: Rules | None = None
) -> ApprovalRequest:
    """Open a request for one version (by digest) in one environment; the rule table decides who signs.

    The caller holds the system row locked, so two submissions for the same system are serialized.
    """
    rules = rules or get_rules()
    if _value(system.lifecycle_stage) == "retired":
        raise Unprocessable(f"system {system.id} is retired; it cannot be released", code="SYSTEM_RETIRED")
    if system.ai_act_class is None:
        raise Unprocessable(
            f"system {system.id} is not classified under the AI Act; classify it before requesting approval",
            code="NOT_CLASSIFIED",
        )
    ai_act_class = _value(system.ai_act_class)
    if ai_act_class == "prohibited":
        # AI Act Art. 5: a prohibited practice may not be placed on the market, put into service or used.
        raise Unprocessable(
            f"system {system.id} is classified as a prohibited AI practice (AI Act Art. 5); "
            "it cannot be approved",
            code="PROHIBITED",
        )
    service.require_risk_assessment(session, system)
    version = systems.get_version(session, system.id, data.version)
    if version is None:
        raise field_error(["body", "version"], f"system {system.id} has no version {data.version!r}")
    if data.artifact_digest is not None and data.artifact_digest != version.artifact_digest:
        raise field_error(
            ["body", "artifact_digest"],
            f"version {data.version} is recorded with digest {version.artifact_digest}",
        )
    history = list(
        session.exec(
            select(ApprovalRequest).where(
                ApprovalRequest.system_id == system.id,
                ApprovalRequest.version == data.version,
                ApprovalRequest.environment == data.environment,
            )
        ).all()
    )
    open_request = next((a for a in history if a.state == ApprovalState.submitted), None)
    if open_request is not None:
        raise Conflict(
            f"approval {open_request.id} for {system.id} version {data.version} in {data.environment.value} "
            "is still open; withdraw it or wait for its decision",
            approval_id=open_request.id,
        )
    snapshot = service.system_facts(session, system, data.environment)
    for prerequisite in rules.prerequisites(snapshot.facts):
        _check_prerequisite(
            session,
            system,
            data.version,
            version.artifact_digest,
            prerequisite.requires_approved,
            prerequisite.id,
            prerequisite.description,
        )
    requirement = rules.required(snapshot.facts)
    previous = max(history, key=service.approval_order, default=None)
    now = utcnow()
    a = ApprovalRequest(
        id=systems.next_id(session, "approval", "APR"),
        system_id=system.id,
        site=system.site,
        version=version.version,
        artifact_digest=version.artifact_digest,
        environment=data.environment,
        requester=actor,
        justification=data.justification,
        state=ApprovalState.submitted,
        required_signoffs=list(requirement.roles),
        required_because={role: list(ids) for role, ids in requirement.because.items()},
        classification_id=snapshot.classification_id,
        ai_act_class=ai_act_class,
        sl_gap=snapshot.facts.sl_gap,
        validity_months=rules.validity_months(ai_act_class),
        supersedes=previous.id if previous else None,
        conditions=[],
        content_hash="",
        facts_revision=system.facts_revision,
        created_at=now,
        updated_at=now,
    )
    a.content_hash = service.content_hash(a)
    session.add(a)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"an approval for {system.id} version {data.version} in {data.environment.value} is already open"
        ) from None
    audit.record(
        session,
        actor=actor,
        action="approval.submit",
        entity_type="approval",
        entity_id=a.id,
        site=a.site,
        after=_summary(a) | {"required_because": a.required_because, "content_hash": a.content_hash},
    )
    webhooks.enqueue(session, "approval.submitted", _summary(a), approval_id=a.id)
    if system.replicated_from:
        _record_carried_over(session, a, system, actor=actor, now=now)
    return a


def _record_carried_over(
    session: Session, a: ApprovalRequest, system: AISystem, *, actor: str, now: datetime
) -> None:
    """Record on a replica's new request the origin's sign-offs the new placement does not change.

    Roles the placement asks again stay pending; a signer who is this request's requester is not carried
    (separation of duties); at least one new signature is always needed (the new site's business owner when
    the placement changes nothing).
    """
    plan = _carry_over(session, system, a.environment, a.artifact_digest)
    if plan is None:
        return
    carried = {
        role: s
        for role, s in plan.signoffs.items()
        if role in a.required_signoffs and role not in plan.asked_again and s.signer != a.requester
    }
    if carried and set(carried) >= set(a.required_signoffs):
        keep = next((r for r in a.required_signoffs if r == "business_owner"), a.required_signoffs[0])
        carried.pop(keep, None)
    for role in a.required_signoffs:
        origin = carried.get(role)
        if origin is None:
            continue
        note = f"carried over from {plan.origin_approval_id}"
        signoff = SignOff(
            approval_id=a.id,
            role=origin.role,
            signer=origin.signer,
            decision=Decision.approve,
            comment=f"{note}: {origin.comment}" if origin.comment else note,
            conditions=list(origin.conditions),
            carried_over_from=plan.origin_approval_id,
            created_at=now,
            hash="",
        )
        signoff.hash = service.signoff_hash(a.content_hash, signoff)
        session.add(signoff)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="approval.signoff_carried_over",
            entity_type="approval",
            entity_id=a.id,
            site=a.site,
            after={
                "role": role,
                "signer": signoff.signer,
                "decision": signoff.decision.value,
                "carried_over_from": plan.origin_approval_id,
                "conditions": [c["expression"] for c in signoff.conditions],
                "hash": signoff.hash,
            },
        )
        a.conditions = [
            *a.conditions,
            *(c | {"role": role, "signer": signoff.signer} for c in signoff.conditions),
        ]
    if carried:
        session.add(a)
        session.flush()


def _check_prerequisite(
    session: Session, system: AISystem, version: str, digest: str, env: Environment, rule_id: str, why: str
) -> None:
    found = session.exec(
        select(ApprovalRequest.id).where(
            ApprovalRequest.system_id == system.id,
            ApprovalRequest.version == version,
            ApprovalRequest.environment == env,
            ApprovalRequest.artifact_digest == digest,
            col(ApprovalRequest.state).in_([ApprovalState.approved, ApprovalState.expired]),
        )
    ).first()
    if found is None:
        raise Unprocessable(
            f"{why or rule_id}: version {version} of {system.id} has no approved {env.value} yet",
            code="PREREQUISITE_NOT_MET",
            rule=rule_id,
        )


# --- sign-offs -----------------------------------------------------------------------------------------


def sign(
    session: Session,
    approval_id: str,
    data: SignOffCreate,
    *,
    principal: Principal,
    if_match: int | None = None,
    rules: Rules | None = None,
) -> ApprovalRequest:
    """Record one sign-off; a rejection rejects the request, the last approval approves it.

    Casbin decides who may sign for a role in the request's site (``signoff.<role>: sign``); the
    separation of duties is checked here: the requester never signs, one person signs one role at most.
    """
    rules = rules or get_rules()
    a = service.get_approval(session, approval_id, for_update=True)
    principal.require("approval", "read", a.site, entity_id=a.id)
    role = data.role.value
    principal.require(f"signoff.{role}", "sign", a.site, entity_id=a.id)
    _check_revision(a, if_match)
    state = service.effective_state(a)
    if state is not ApprovalState.submitted:
        raise Conflict(f"approval {a.id} is {state.value}; only a submitted request takes sign-offs")
    if role not in a.required_signoffs:
        raise field_error(
            ["body", "role"], f"{role} is not required for {a.id}; required: {', '.join(a.required_signoffs)}"
        )
    if principal.username == a.requester:
        raise principal.forbidden(
            f"separation of duties: {principal.username} requested {a.id} and may not sign it",
            f"signoff.{role}",
            "sign",
            a.site,
            a.id,
        )
    existing = service.signoffs_of(session, [a.id])[a.id]
    for s in existing:
        if s.role == role:
            raise Conflict(f"{role} has already signed {a.id} ({s.signer}, {s.decision})")
        if s.signer == principal.username:
            raise principal.forbidden(
                f"separation of duties: {principal.username} already signed {a.id} as {s.role}; "
                "one person signs one role at most",
                f"signoff.{role}",
                "sign",
                a.site,
                a.id,
            )
    if service.content_hash(a) != a.content_hash:
        raise Conflict(f"approval {a.id} no longer matches its content hash; it cannot be signed")
    system = session.get(AISystem, a.system_id)
    current_class = _value(system.ai_act_class) if system is not None else None
    if current_class != a.ai_act_class:
        raise Conflict(
            f"system {a.system_id} was reclassified ({a.ai_act_class} -> {current_class}) after {a.id} was "
            "submitted; withdraw it and submit a new request",
            code="RECLASSIFIED_SINCE_SUBMISSION",
        )
    if system is not None and service.facts_changed(a.facts_revision, system.facts_revision):
        raise Conflict(
            f"system {a.system_id} changed since {a.id} was submitted (owner, personal data, zone, security "
            "level or AI Act role): who must sign may differ; withdraw it and submit a new request",
            code="CHANGED_SINCE_SUBMISSION",
        )
    comment = (data.comment or "").strip() or None
    if data.decision is Decision.reject:
        if data.conditions:
            raise field_error(["body", "conditions"], "conditions go with an approval, not a rejection")
        if comment is None and rules.reject_requires_comment:
            raise field_error(["body", "comment"], "a rejection must say why")
    else:
        hint = comment_hint(rules, a.required_because, role)
        if hint and comment is None:
            gap = f" (SL gap: {', '.join(a.sl_gap)})" if a.sl_gap else ""
            raise field_error(["body", "comment"], f"required for {role}: {hint}{gap}")
    conditions = [
        service.parse_condition(c, ["body", "conditions", i]) for i, c in enumerate(data.conditions)
    ]
    now = utcnow()
    signoff = SignOff(
        approval_id=a.id,
        role=data.role,
        signer=principal.username,
        decision=data.decision,
        comment=comment,
        conditions=conditions,
        created_at=now,
        hash="",
    )
    signoff.hash = service.signoff_hash(a.content_hash, signoff)
    session.add(signoff)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"{role} has already signed {a.id}") from None
    audit.record(
        session,
        actor=principal.username,
        action="approval.signoff",
        entity_type="approval",
        entity_id=a.id,
        site=a.site,
        after={
            "role": role,
            "decision": data.decision.value,
            "comment": comment,
            "conditions": [c["expression"] for c in conditions],
            "hash": signoff.hash,
        },
    )
    signoffs = [*existing, signoff]
    a.conditions = [
        c | {"role": str(s.role), "signer": s.signer}
        for s in signoffs
        if s.decision == Decision.approve
        for c in s.conditions
    ]
    if data.decision is Decision.reject:
        a.decided_at = now
        a.closed_by = principal.username
        a.close_reason = f"rejected by {role}: {comment}" if comment else f"rejected by {role}"
        _transition(
            session, a, ApprovalState.rejected, actor=principal.username, action="approval.reject", now=now
        )
    elif all(
        any(s.role == r and s.decision == Decision.approve for s in signoffs) for r in a.required_signoffs
    ):
        a.decided_at = now
        a.valid_until = add_months(now, a.validity_months)
        _transition(
            session, a, ApprovalState.approved, actor=principal.username, action="approval.approve", now=now
        )
    else:
        a.updated_at = now
        a.revision += 1
        session.add(a)
        session.flush()
    return a


def comment_hint(rules: Rules, required_because: Mapping[str, list[str]], role: str) -> str | None:
    """The hint of the first rule that required ``role`` for a request (its ``required_because``) and
    wants a comment with it."""
    by_id = {r.id: r for r in rules.table.rules}
    for rule_id in required_because.get(role, []):
        rule = by_id.get(rule_id)
        if rule is not None and rule.comment_required:
            return rule.comment_hint or f"rule {rule.id} requires a comment"
    return None


# --- withdraw, revoke, expire --------------------------------------------------------------------------


def withdraw(
    session: Session,
    approval_id: str,
    *,
    principal: Principal,
    reason: str | None,
    if_match: int | None = None,
) -> ApprovalRequest:
    """The requester takes back an open request (``approval: withdraw_own``; ``withdraw`` covers anyone's)."""
    a = service.get_approval(session, approval_id, for_update=True)
    granted = principal.require(
        "approval", "withdraw", a.site, entity_id=a.id, alternatives=("withdraw_own",)
    )
    if granted == "withdraw_own" and a.requester != principal.username:
        raise principal.forbidden(
            f"only the requester ({a.requester}) may withdraw {a.id}",
            "approval",
            "withdraw_own",
            a.site,
            a.id,
        )
    _check_revision(a, if_match)
    if a.state != ApprovalState.submitted:
        raise Conflict(
            f"approval {a.id} is {service.effective_state(a).value}; "
            "only a submitted request can be withdrawn"
        )
    now = utcnow()
    a.closed_by = principal.username
    a.close_reason = reason or None
    _transition(
        session, a, ApprovalState.withdrawn, actor=principal.username, action="approval.withdraw", now=now
    )
    return a


def revoke(
    session: Session, approval_id: str, *, principal: Principal, reason: str, if_match: int | None = None
) -> ApprovalRequest:
    """Withdraw a granted approval before its time (``approval: revoke``); the reason is mandatory."""
    a = service.get_approval(session, approval_id, for_update=True)
    principal.require("approval", "revoke", a.site, entity_id=a.id)
    _check_revision(a, if_match)
    if not reason.strip():
        raise field_error(["body", "reason"], "a revocation must give its reason")
    state = service.effective_state(a)
    if state is not ApprovalState.approved:
        raise Conflict(f"approval {a.id} is {state.value}; only an approved request can be revoked")
    now = utcnow()
    a.closed_by = principal.username
    a.close_reason = reason.strip()
    _transition(
        session, a, ApprovalState.revoked, actor=principal.username, action="approval.revoke", now=now
    )
    return a


def _overdue(now: datetime) -> sa.ColumnElement[bool]:
    """Approved and past ``valid_until``: due to be recorded as expired."""
    return sa.and_(
        col(ApprovalRequest.state) == ApprovalState.approved, col(ApprovalRequest.valid_until) <= now
    )


def expire_due(session: Session, *, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Record the expiry of approvals past ``valid_until`` (a review is then due); returns their ids."""
    now = now or utcnow()
    rows = session.exec(
        select(ApprovalRequest)
        .where(_overdue(now))
        .order_by(col(ApprovalRequest.valid_until))
        .limit(limit)
        .with_for_update()
    ).all()
    for a in rows:
        _transition(
            session,
            a,
            ApprovalState.expired,
            actor=SYSTEM_ACTOR,
            action="approval.expire",
            now=now,
            extra={"review_due": True},
        )
    return [a.id for a in rows]


SweepHook = Callable[[], Any]
_sweep_hooks: list[SweepHook] = []


def register_sweep(hook: SweepHook) -> None:
    """Hook for other domains: ``hook()`` runs after each background expiry round (in its own transaction;
    a failing hook is logged and does not stop the others)."""
    _sweep_hooks.append(hook)


def registered_sweeps() -> tuple[SweepHook, ...]:
    """Every registered sweep hook (``app.wiring`` checks that none is missing)."""
    return tuple(_sweep_hooks)


def sweep_expired() -> int:
    """One background round: expire overdue approvals (checked cheaply, read-only, first), then the hooks."""
    now = utcnow()
    with session_scope(write=False) as session:
        due = session.exec(select(sa.func.count()).select_from(ApprovalRequest).where(_overdue(now))).one()
    expired = 0
    if due:
        with session_scope() as session:
            expired = len(expire_due(session, now=now))
    for hook in _sweep_hooks:
        try:
            hook()
        except Exception:  # one hook's failure must not stop expiry or the other hooks
            log.exception("approvals sweep hook %s failed", getattr(hook, "__name__", hook))
    return expired
