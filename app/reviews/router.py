"""HTTP endpoints for the periodic review of approvals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from app.approvals import service as approvals
from app.approvals.models import APPROVAL_ID_PATTERN
from app.db import SessionDep
from app.http import Page, PageDep
from app.identity.dependencies import CurrentPrincipal
from app.identity.models import SITE_PATTERN
from app.reviews import service as reviews
from app.reviews.models import RenewalRead, RenewRequest, ReviewDue
from app.systems import service as systems
from app.systems.dependencies import check_ownership

router = APIRouter(prefix="/api/v1", tags=["reviews"])

SiteQuery = Annotated[str | None, Query(pattern=SITE_PATTERN)]


@router.get("/reviews/due", response_model=Page[ReviewDue])
def reviews_due(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    days: Annotated[int, Query(ge=0, le=3650, description="approvals expiring within this many days")] = 30,
    site: SiteQuery = None,
) -> Page[ReviewDue]:
    """Approvals whose validity ends within ``days`` (or ended) and that no newer approval replaced."""
    rows = reviews.reviews_due(session, days=days, sites=principal.sites_for("approval", "read"), site=site)
    return Page(
        items=rows[page.offset : page.offset + page.limit],
        total=len(rows),
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/approvals/{approval_id}/renew", status_code=status.HTTP_201_CREATED, response_model=RenewalRead
)
def renew_approval(
    approval_id: Annotated[str, Path(pattern=APPROVAL_ID_PATTERN, description="e.g. APR-000042")],
    session: SessionDep,
    principal: CurrentPrincipal,
    data: RenewRequest | None = None,
) -> RenewalRead:
    """Re-approval for the periodic review: a new request for the same version and environment, every sign-off
    asked again, with the evidence that is unchanged since the approval it renews listed."""
    old = approvals.get_approval(session, approval_id)
    principal.require("approval", "read", old.site, entity_id=old.id)
    system = systems.get_system(session, old.system_id, for_update=True)
    granted = principal.require(
        "approval", "request", system.site, entity_id=system.id, alternatives=("request_own",)
    )
    check_ownership(principal, system, granted, "approval")
    new, evidence = reviews.renew(
        session, old, system, justification=data.justification if data else None, actor=principal.username
    )
    return RenewalRead(renews=old.id, approval=approvals.approval_read(session, new), evidence=evidence)


@router.post("/reviews/remind", response_model=Page[ReviewDue])
def remind_reviews(
    session: SessionDep,
    principal: CurrentPrincipal,
    days: Annotated[int, Query(ge=0, le=3650)] = 30,
) -> Page[ReviewDue]:
    """Queue an ``approval.review_due`` webhook for each due review not reminded of in the last week."""
    sites = principal.require_anywhere("review", "remind")
    rows = reviews.send_reminders(session, days=days, sites=sites)
    return Page(items=rows, total=len(rows), limit=max(len(rows), 1), offset=0)
