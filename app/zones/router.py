"""HTTP endpoints for IEC 62443 zones and conduits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from app.db import SessionDep
from app.http import IfMatchDep
from app.identity.dependencies import CurrentPrincipal
from app.identity.models import SITE_PATTERN
from app.zones import service
from app.zones.models import ZONE_PATTERN, ConduitCreate, ConduitRead, ZoneCreate, ZoneRead, ZoneUpdate

router = APIRouter(prefix="/api/v1", tags=["zones"])

ZoneCodePath = Annotated[str, Path(pattern=ZONE_PATTERN)]


@router.post("/zones", status_code=status.HTTP_201_CREATED, response_model=ZoneRead)
def create_zone(data: ZoneCreate, session: SessionDep, principal: CurrentPrincipal) -> ZoneRead:
    principal.require("zone", "create", data.site)
    return service.zone_read(service.create_zone(session, data, actor=principal.username))


@router.get("/zones", response_model=list[ZoneRead])
def list_zones(
    session: SessionDep,
    principal: CurrentPrincipal,
    site: Annotated[str | None, Query(pattern=SITE_PATTERN)] = None,
) -> list[ZoneRead]:
    sites = principal.sites_for("zone", "read")
    return [service.zone_read(z) for z in service.list_zones(session, sites, site)]


@router.get("/zones/{code}", response_model=ZoneRead)
def get_zone(code: ZoneCodePath, session: SessionDep, principal: CurrentPrincipal) -> ZoneRead:
    zone = service.get_zone(session, code)
    principal.require("zone", "read", zone.site, entity_id=zone.code)
    return service.zone_read(zone)


@router.patch("/zones/{code}", response_model=ZoneRead)
def update_zone(
    code: ZoneCodePath, data: ZoneUpdate, if_match: IfMatchDep, session: SessionDep, principal: CurrentPrincipal
) -> ZoneRead:
    zone = service.get_zone(session, code)
    principal.require("zone", "update", zone.site, entity_id=zone.code)
    return service.zone_read(service.update_zone(session, zone, data, if_match=if_match, actor=principal.username))


@router.post("/conduits", status_code=status.HTTP_201_CREATED, response_model=ConduitRead)
def create_conduit(data: ConduitCreate, session: SessionDep, principal: CurrentPrincipal) -> ConduitRead:
    zone = service.get_zone(session, data.from_zone)
    principal.require("zone", "update", zone.site, entity_id=zone.code)
    return service.conduit_read(service.create_conduit(session, data, actor=principal.username))


@router.get("/conduits", response_model=list[ConduitRead])
def list_conduits(session: SessionDep, principal: CurrentPrincipal) -> list[ConduitRead]:
    sites = principal.sites_for("zone", "read")
    return [service.conduit_read(c) for c in service.list_conduits(session, sites)]
