"""Read-only lookups the pages need around a list of systems (choices for filters, approval states)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, select

from app.approvals import service as approvals
from app.approvals.models import ApprovalRequest
from app.http import MAX_LIMIT, PageParams
from app.systems import service as systems
from app.systems.models import AISystem, SiteRead
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
        .where(ApprovalRequest.system_id.in_(system_ids))
        .group_by(ApprovalRequest.system_id)
        .subquery()
    )
    rows = session.exec(
        select(ApprovalRequest).join(
            newest,
            sa.and_(
                ApprovalRequest.system_id == newest.c.system_id,
                ApprovalRequest.created_at == newest.c.created_at,
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
    rows = session.exec(select(AISystem.id, AISystem.name).where(AISystem.id.in_(sorted(set(ids))))).all()
    return dict(rows)


def owners(session: Session, sites: set[str] | None) -> list[str]:
    """Business owners of live systems in ``sites`` (for the filter's suggestions)."""
    stmt = select(AISystem.business_owner).where(AISystem.archived_at.is_(None)).distinct()
    if sites is not None:
        stmt = stmt.where(AISystem.site.in_(sorted(sites)))
    return sorted(session.exec(stmt).all())
