"""HTTP endpoints for IEC 62443 zones and conduits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from app.db import SessionDep
from app.http import IfMatchDep, Page, PageDep
from app.identity.dependencies import CurrentPrincipal
from app.identity.models import SITE_PATTERN
from app.zones import service
from app.zones.models import ZONE_PATTERN, ConduitCreate, ConduitRead, ZoneCreate, ZoneRead, ZoneUpdate

router = APIRouter(prefix="/api/v1", tags=["zones"])

ZoneCodePath = Annotated[str, Path(pattern=ZONE_PATTERN)]
SiteQuery = Annotated[str | None, Query(pattern=SITE_PATTERN)]


@router.post("/zones", status_code=status.HTTP_201_CREATED, response_model=ZoneRead)
def create_zone(data: ZoneCreate, session: SessionDep, principal: CurrentPrincipal) -> ZoneRead:
    """Create a zone with its Purdue level and target SL vector (FR1-FR7)."""
    principal.require("zone", "create", data.site)
    return service.zone_read(service.create_zone(session, data, actor=principal.username))


@router.get("/zones", response_model=Page[ZoneRead])
def list_zones(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep, site: SiteQuery = None
) -> Page[ZoneRead]:
    """The zones of the sites the caller works in."""
    sites = principal.sites_for("zone", "read")
    rows, total = service.list_zones(session, sites, page, site)
    return Page(items=[service.zone_read(z) for z in rows], total=total, limit=page.limit, offset=page.offset)


@router.get("/zones/{code}", response_model=ZoneRead)
def get_zone(code: ZoneCodePath, session: SessionDep, principal: CurrentPrincipal) -> ZoneRead:
    """One zone."""
    zone = service.get_zone(session, code)
    principal.require("zone", "read", zone.site, entity_id=zone.code)
    return service.zone_read(zone)


@router.patch("/zones/{code}", response_model=ZoneRead)
def update_zone(
    code: ZoneCodePath,
    data: ZoneUpdate,
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> ZoneRead:
    """Change a zone's name, Purdue level or target SL vector (needs its ``revision``)."""
    zone = service.get_zone(session, code)
    principal.require("zone", "update", zone.site, entity_id=zone.code)
    zone = service.update_zone(session, zone, data, if_match=if_match, actor=principal.username)
    return service.zone_read(zone)


@router.post("/conduits", status_code=status.HTTP_201_CREATED, response_model=ConduitRead)
def create_conduit(data: ConduitCreate, session: SessionDep, principal: CurrentPrincipal) -> ConduitRead:
    """Create a conduit between two zones of one site, with its target SL vector."""
    zone = service.zone_ref(session, data.from_zone, ["body", "from_zone"])
    principal.require("zone", "update", zone.site, entity_id=zone.code)
    conduit = service.create_conduit(session, data, actor=principal.username)
    return service.conduit_read(conduit, zone.site)


@router.get("/conduits", response_model=Page[ConduitRead])
def list_conduits(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    site: SiteQuery = None,
    zone: Annotated[
        str | None, Query(pattern=ZONE_PATTERN, description="conduits touching this zone")
    ] = None,
) -> Page[ConduitRead]:
    """The conduits of the sites the caller works in."""
    sites = principal.sites_for("zone", "read")
    rows, total = service.list_conduits(session, sites, page, site=site, zone=zone)
    return Page(
        items=[service.conduit_read(c, s) for c, s in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/conduits/{conduit_id}", response_model=ConduitRead)
def get_conduit(
    conduit_id: Annotated[int, Path(ge=1, le=2_147_483_647)], session: SessionDep, principal: CurrentPrincipal
) -> ConduitRead:
    """One conduit."""
    conduit, site = service.get_conduit(session, conduit_id)
    principal.require("zone", "read", site, entity_id=str(conduit_id))
    return service.conduit_read(conduit, site)
