"""HTTP endpoint for portfolio figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.db import SessionDep
from app.identity.dependencies import CurrentPrincipal
from app.identity.models import SITE_PATTERN
from app.kpis import service as kpis
from app.kpis.models import KpiRead

router = APIRouter(prefix="/api/v1", tags=["kpis"])

SiteQuery = Annotated[str | None, Query(pattern=SITE_PATTERN)]


@router.get("/kpis", response_model=KpiRead)
def portfolio_kpis(
    session: SessionDep,
    principal: CurrentPrincipal,
    site: SiteQuery = None,
    quarters: Annotated[int, Query(ge=1, le=20, description="how many quarters back, this one included")] = 4,
) -> KpiRead:
    """Portfolio figures for the sites the caller may read (or one site)."""
    if site is not None:
        principal.require("kpi", "read", site, entity_id=site)
        sites: set[str] | None = {site}
    else:
        sites = principal.require_anywhere("kpi", "read")
    return kpis.portfolio_kpis(session, sites=sites, quarters=quarters)
