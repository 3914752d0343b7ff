"""Periodic review of approvals: what is due, reminders through the approval webhooks, and renewal that
carries over unchanged evidence (no HTTP here)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from app.approvals import flows, webhooks
from app.approvals import service as approvals
from app.approvals.models import ApprovalCreate, ApprovalRequest, ApprovalState, Environment
from app.audit import service as audit
from app.classification.models import RiskAssessment
from app.db import session_scope, utcnow
from app.errors import Conflict
from app.reviews.models import ReviewDue
from app.systems.models import AISystem, LifecycleStage

REVIEW_DUE_EVENT = "approval.review_due"
# A reminder for one approval is repeated at most this often while its review stays due.
REMIND_EVERY = timedelta(days=7)
# The background sweep reminds of reviews due within this many days (the API's and CLI's default too).
SWEEP_REMIND_DAYS = 30


def _days_left(valid_until: datetime, now: datetime) -> int:
    return math.floor((valid_until - now).total_seconds() / 86_400)


def reviews_due(
    session: Session,
    *,
    days: int,
    sites: set[str] | None,
    site: str | None = None,
    now: datetime | None = None,
) -> list[ReviewDue]:
    """Approvals whose validity ends within ``days`` (or has ended) and that no newer approval replaced.

    Per system and environment only the newest approved (or expired) request counts; retired or deleted
    systems need no review. A newer request still awaiting sign-off is named as the renewal in progress.
    """
    now = now or utcnow()
    horizon = now + timedelta(days=days)
    conditions: list[Any] = [
        col(ApprovalRequest.state).in_([ApprovalState.approved, ApprovalState.expired]),
        col(ApprovalRequest.valid_until).is_not(None),
    ]
    if sites is not None:
        if not sites:
            return []
        conditions.append(col(ApprovalRequest.site).in_(sorted(sites)))
    if site is not None:
        conditions.append(col(ApprovalRequest.site) == site)
    candidates = session.exec(
        select(ApprovalRequest).where(*conditions, col(ApprovalRequest.valid_until) <= horizon)
    ).all()
    if not candidates:
        return []
    system_ids = sorted({a.system_id for a in candidates})
    others = session.exec(
        select(ApprovalRequest).where(
            col(ApprovalRequest.system_id).in_(system_ids),
            col(ApprovalRequest.state).in_(
                [ApprovalState.approved, ApprovalState.expired, ApprovalState.submitted]
            ),
        )
    ).all()
    newest: dict[tuple[str, str], ApprovalRequest] = {}
    pending: dict[tuple[str, str], ApprovalRequest] = {}
    for a in others:
        key = (a.system_id, str(a.environment))
        target = pending if a.state == ApprovalState.submitted else newest
        if key not in target or approvals.approval_order(a) > approvals.approval_order(target[key]):
            target[key] = a
    systems = {
        s.id: s
        for s in session.exec(
            select(AISystem).where(
                col(AISystem.id).in_(system_ids),
                col(AISystem.archived_at).is_(None),
                col(AISystem.lifecycle_stage) != LifecycleStage.retired,
            )
        ).all()
    }
    out: list[ReviewDue] = []
    for a in candidates:
        key = (a.system_id, str(a.environment))
        system = systems.get(a.system_id)
        if system is None or newest.get(key) is not a:
            continue
        renewal = pending.get(key)
        if renewal is not None and approvals.approval_order(renewal) < approvals.approval_order(a):
            renewal = None
        assert a.valid_until is not None
        out.append(
            ReviewDue(
                approval_id=a.id,
                system_id=a.system_id,
                system_name=system.name,
                site=a.site,
                line=system.line,
                version=a.version,
                environment=str(a.environment),
                state=approvals.effective_state(a, now).value,
                valid_until=a.valid_until,
                days_left=_days_left(a.valid_until, now),
                renewal_id=renewal.id if renewal else None,
            )
        )
    out.sort(key=lambda r: (r.valid_until, r.approval_id))
    return out


def send_reminders(session: Session, *, days: int, sites: set[str] | None = None) -> list[ReviewDue]:
    """Queue an ``approval.review_due`` webhook for each due review not reminded of in the last week.

    Uses the approval webhook outbox (``AIREG_WEBHOOK_URL``); returns the reviews a reminder was queued for.
    """
    try:
        webhooks.check_config()
    except webhooks.WebhookConfigError as exc:
        raise Conflict(str(exc)) from None
    if not webhooks.configured():
        raise Conflict("no webhook receiver is configured (AIREG_WEBHOOK_URL); reminders cannot be sent")
    now = utcnow()
    due = [r for r in reviews_due(session, days=days, sites=sites, now=now) if r.renewal_id is None]
    if not due:
        return []
    from app.approvals.models import WebhookOutbox

    recent = set(
        session.exec(
            select(col(WebhookOutbox.approval_id)).where(
                col(WebhookOutbox.event) == REVIEW_DUE_EVENT,
                col(WebhookOutbox.approval_id).in_([r.approval_id for r in due]),
                col(WebhookOutbox.created_at) > now - REMIND_EVERY,
            )
        ).all()
    )
    sent = []
    for review in due:
        if review.approval_id in recent:
            continue
        webhooks.enqueue(
            session, REVIEW_DUE_EVENT, review.model_dump(mode="json"), approval_id=review.approval_id
        )
        sent.append(review)
    return sent


def _evidence(session: Session, old: ApprovalRequest, new: ApprovalRequest) -> list[dict[str, Any]]:
    """Which evidence the renewal rests on unchanged since the approval it renews."""
    assessment_then = session.exec(
        select(col(RiskAssessment.id))
        .where(
            col(RiskAssessment.system_id) == old.system_id, col(RiskAssessment.created_at) <= old.created_at
        )
        .order_by(col(RiskAssessment.id).desc())
    ).first()
    assessment_now = session.exec(
        select(col(RiskAssessment.id))
        .where(col(RiskAssessment.system_id) == new.system_id)
        .order_by(col(RiskAssessment.id).desc())
    ).first()
    items = [
        ("classification", old.classification_id, new.classification_id),
        ("ai_act_class", old.ai_act_class, new.ai_act_class),
        ("risk_assessment", assessment_then, assessment_now),
        ("artifact_digest", old.artifact_digest, new.artifact_digest),
        ("sl_gap", list(old.sl_gap), list(new.sl_gap)),
        ("required_signoffs", list(old.required_signoffs), list(new.required_signoffs)),
    ]
    return [{"item": name, "unchanged": then == now, "before": then, "now": now} for name, then, now in items]


def renew(
    session: Session, old: ApprovalRequest, system: AISystem, *, justification: str | None, actor: str
) -> tuple[ApprovalRequest, list[dict[str, Any]]]:
    """Open a new request for the same version and environment as an approval under review.

    Every sign-off is asked for again (the rules decide which); the answer lists which evidence is unchanged
    (same classification, risk assessment, digest, ...) so signers see what they are re-confirming.
    """
    state = approvals.effective_state(old)
    if state not in (ApprovalState.approved, ApprovalState.expired):
        raise Conflict(f"approval {old.id} is {state.value}; only an approved or expired approval is renewed")
    newer = session.exec(
        select(col(ApprovalRequest.id)).where(
            col(ApprovalRequest.system_id) == old.system_id,
            col(ApprovalRequest.environment) == old.environment,
            col(ApprovalRequest.state) == ApprovalState.approved,
            col(ApprovalRequest.created_at) > old.created_at,
        )
    ).first()
    if newer is not None:
        raise Conflict(f"approval {old.id} was already replaced by {newer}; review that one instead")
    data = ApprovalCreate(
        version=old.version,
        environment=Environment(str(old.environment)),
        justification=justification
        or f"periodic review: renewal of {old.id} (valid until {old.valid_until:%Y-%m-%d})",
        artifact_digest=old.artifact_digest,
    )
    new = flows.submit(session, system, data, actor=actor)
    evidence = _evidence(session, old, new)
    audit.record(
        session,
        actor=actor,
        action="approval.renew",
        entity_type="approval",
        entity_id=new.id,
        site=new.site,
        after={"renews": old.id, "evidence": evidence},
    )
    return new, evidence


def count_due(session: Session, *, days: int, sites: set[str] | None) -> int:
    """How many reviews are due within ``days`` (for dashboards)."""
    return len(reviews_due(session, days=days, sites=sites))


def sweep_reminders() -> int:
    """Background round (approvals sweep hook): queue due review reminders when a receiver is configured."""
    if not webhooks.configured():
        return 0
    with session_scope() as session:
        return len(send_reminders(session, days=SWEEP_REMIND_DAYS))
