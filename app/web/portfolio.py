"""The dashboard's figures that no API serves yet: systems counted by class, tier, stage and site, and the
approvals whose validity runs out soon (read-only queries, one or two per figure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select

from app.approvals import service as approvals
from app.approvals.models import ApprovalRead, ApprovalRequest, ApprovalState
from app.db import utcnow
from app.systems.models import AISystem

UNSET = "unset"


@dataclass
class Breakdown:
    """Live systems counted four ways, plus class per site (for the stacked site chart)."""

    total: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    by_tier: Counter[str] = field(default_factory=Counter)
    by_stage: Counter[str] = field(default_factory=Counter)
    by_site: dict[str, Counter[str]] = field(default_factory=dict)


def _in_sites(column: Mapped[str], sites: set[str] | None) -> sa.ColumnElement[bool]:
    return sa.true() if sites is None else column.in_(sorted(sites))


def breakdown(session: Session, sites: set[str] | None) -> Breakdown:
    """One grouped scan of the live systems in ``sites`` (``None`` = every site)."""
    keys = (
        col(AISystem.site),
        col(AISystem.ai_act_class),
        col(AISystem.risk_tier),
        col(AISystem.lifecycle_stage),
    )
    rows = session.execute(
        sa.select(*keys, sa.func.count())
        .where(col(AISystem.archived_at).is_(None), _in_sites(col(AISystem.site), sites))
        .group_by(*keys)
    ).all()
    out = Breakdown()
    for site, cls, tier, stage, n in rows:
        cls_key = str(getattr(cls, "value", cls) or UNSET)
        out.total += n
        out.by_class[cls_key] += n
        out.by_tier[str(getattr(tier, "value", tier) or UNSET)] += n
        out.by_stage[str(getattr(stage, "value", stage))] += n
        out.by_site.setdefault(site, Counter())[cls_key] += n
    return out


def oldest_pending(session: Session, sites: set[str] | None, limit: int = 8) -> list[ApprovalRead]:
    """The requests that have waited longest for their sign-offs."""
    rows = session.exec(
        select(ApprovalRequest)
        .where(ApprovalRequest.state == ApprovalState.submitted, _in_sites(col(ApprovalRequest.site), sites))
        .order_by(col(ApprovalRequest.created_at), col(ApprovalRequest.id))
        .limit(limit)
    ).all()
    return approvals.approval_reads(session, list(rows))


def reviews_due(session: Session, sites: set[str] | None, days: int = 30) -> list[ApprovalRead]:
    """Approvals whose validity ends within ``days``: each needs a review and a new approval by then."""
    now = utcnow()
    rows = session.exec(
        select(ApprovalRequest)
        .where(
            ApprovalRequest.state == ApprovalState.approved,
            col(ApprovalRequest.valid_until) > now,
            col(ApprovalRequest.valid_until) <= now + timedelta(days=days),
            _in_sites(col(ApprovalRequest.site), sites),
        )
        .order_by(col(ApprovalRequest.valid_until), col(ApprovalRequest.id))
        .limit(200)
    ).all()
    return approvals.approval_reads(session, list(rows))
