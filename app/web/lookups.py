"""Read-only lookups the pages need around a list of systems (choices for filters, approval states)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.approvals import service as approvals
from app.approvals.models import ApprovalRead, ApprovalRequest, ApprovalState, Decision, SignOffRead
from app.approvals.rules import Rules
from app.http import MAX_LIMIT, PageParams
from app.systems import service as systems
from app.systems.models import AISystem, SiteRead
from app.web.templating import role_label
from app.zones import service as zones
from app.zones.models import Zone


@dataclass(frozen=True)
class ApprovalSummary:
    """The newest approval request of a system, with its state as of now (expiry applied)."""

    id: str
    state: str
    environment: str
    version: str


def latest_approvals(session: Session, system_ids: list[str]) -> dict[str, ApprovalSummary]:
    """The newest request of each system in one query."""
    if not system_ids:
        return {}
    newest = (
        select(ApprovalRequest.system_id, sa.func.max(ApprovalRequest.created_at).label("created_at"))
        .where(col(ApprovalRequest.system_id).in_(system_ids))
        .group_by(col(ApprovalRequest.system_id))
        .subquery()
    )
    rows = session.exec(
        select(ApprovalRequest).join(
            newest,
            sa.and_(
                col(ApprovalRequest.system_id) == newest.c.system_id,
                col(ApprovalRequest.created_at) == newest.c.created_at,
            ),
        )
    ).all()
    out: dict[str, ApprovalSummary] = {}
    for a in sorted(rows, key=approvals.approval_order):
        out[a.system_id] = ApprovalSummary(
            id=a.id,
            state=approvals.effective_state(a).value,
            environment=str(a.environment),
            version=a.version,
        )
    return out


@dataclass(frozen=True)
class GapStatus:
    """Where a request's IEC 62443 security-level gap stands, as its sign-offs say.

    ``state`` is ``awaiting`` (a role the gap calls for has not signed yet), ``accepted`` (every such role
    approved: the gap is accepted with the countermeasures its comment names), ``refused`` (one rejected),
    ``closed`` (the request ended before they signed) or ``uncovered`` (no rule of this request asked for
    the gap's sign-off).
    """

    frs: list[str]
    state: str
    roles: list[str]
    signoffs: list[SignOffRead]

    @property
    def text(self) -> str:
        """``Security-level gap in FR3: awaiting OT security sign-off`` and the like."""
        who = " and ".join(role_label(r) for r in self.roles)
        head = f"Security-level gap in {', '.join(self.frs)}"
        if self.state == "accepted":
            by = "; ".join(f"{s.signer}, {s.created_at:%Y-%m-%d}" for s in self.signoffs)
            return f"{head}: accepted with compensating countermeasures by the {who} sign-off ({by})"
        if self.state == "awaiting":
            return f"{head}: awaiting {who} sign-off"
        if self.state == "refused":
            return f"{head}: not accepted ({who} rejected the request)"
        if self.state == "closed":
            return f"{head}: not accepted (the request was closed before the {who} sign-off)"
        return f"{head}: no sign-off of this request accepts it"


def gap_status(a: ApprovalRead, rules: Rules) -> GapStatus | None:
    """The state of ``a``'s security-level gap, from its sign-offs and the rules that asked for them.

    The roles that accept a gap are those the rule table required *because of* the gap (a rule with
    ``when: {sl_gap: true}``), as recorded in the request's ``required_because``; nothing is hard-coded.
    """
    if not a.sl_gap:
        return None
    gap_rules = {r.id for r in rules.table.rules if r.when.sl_gap}
    roles = [r for r in a.required_signoffs if gap_rules & set(a.required_because.get(r, []))]
    signed = [s for s in a.signoffs if s.role in roles]
    if not roles:
        state = "uncovered"
    elif any(s.decision is Decision.reject for s in signed):
        state = "refused"
    elif {s.role for s in signed if s.decision is Decision.approve} >= set(roles):
        state = "accepted"
    elif a.state is ApprovalState.submitted:
        state = "awaiting"
    else:
        state = "closed"
    return GapStatus(frs=list(a.sl_gap), state=state, roles=roles, signoffs=signed)


def sites_with_lines(session: Session, sites: set[str] | None) -> list[SiteRead]:
    """The sites the caller may see, each with its lines."""
    return [systems.site_read(session, site) for site in systems.list_sites(session, sites)]


def zones_by_site(session: Session, sites: set[str] | None) -> dict[str, list[Zone]]:
    """The zones of ``sites`` grouped by site (for the zone selects; every zone, however many)."""
    out: dict[str, list[Zone]] = {}
    page = PageParams(limit=MAX_LIMIT, offset=0)
    while True:
        rows, total = zones.list_zones(session, sites, page)
        for zone in rows:
            out.setdefault(zone.site, []).append(zone)
        if not rows or page.offset + len(rows) >= total:
            return out
        page = PageParams(limit=MAX_LIMIT, offset=page.offset + MAX_LIMIT)


def system_names(session: Session, ids: list[str]) -> dict[str, str]:
    """System id -> name, in one query."""
    if not ids:
        return {}
    rows = session.exec(
        select(AISystem.id, AISystem.name).where(col(AISystem.id).in_(sorted(set(ids))))
    ).all()
    return dict(rows)


def owners(session: Session, sites: set[str] | None) -> list[str]:
    """Business owners of live systems in ``sites`` (for the filter's suggestions)."""
    stmt = select(AISystem.business_owner).where(col(AISystem.archived_at).is_(None)).distinct()
    if sites is not None:
        stmt = stmt.where(col(AISystem.site).in_(sorted(sites)))
    return sorted(session.exec(stmt).all())
