"""HTTP endpoints for sites, AI systems and model versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from app.classification.engine import AIActClass
from app.db import SessionDep
from app.errors import NotFound
from app.http import IfMatchDep, Page, PageDep
from app.identity.dependencies import CurrentPrincipal
from app.identity.models import SITE_PATTERN
from app.systems import models, service
from app.systems.dependencies import SystemRead_, require_may_register, require_may_update, system_access
from app.systems.models import (
    LINE_PATTERN,
    SIGNOFF_FACTS,
    AISystem,
    LifecycleStage,
    RiskTier,
    SystemCreate,
    SystemOrder,
    SystemPage,
    SystemRead,
    SystemUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["registry"])

SiteCodePath = Annotated[str, Path(pattern=SITE_PATTERN)]


# --- sites ---------------------------------------------------------------------------------------------


@router.post("/sites", status_code=status.HTTP_201_CREATED, response_model=models.SiteRead)
def create_site(data: models.SiteCreate, session: SessionDep, principal: CurrentPrincipal) -> models.SiteRead:
    principal.require("site", "create")
    site = service.create_site(session, data, actor=principal.username)
    return service.site_read(session, site)


@router.get("/sites", response_model=list[models.SiteRead])
def list_sites(session: SessionDep, principal: CurrentPrincipal) -> list[models.SiteRead]:
    sites = principal.sites_for("site", "read")
    return [service.site_read(session, s) for s in service.list_sites(session, sites)]


@router.get("/sites/{code}", response_model=models.SiteRead)
def get_site(code: SiteCodePath, session: SessionDep, principal: CurrentPrincipal) -> models.SiteRead:
    site = service.ensure_site_exists(session, code)
    principal.require("site", "read", site.code, entity_id=site.code)
    return service.site_read(session, site)


@router.patch("/sites/{code}", response_model=models.SiteRead)
def update_site(
    code: SiteCodePath,
    data: models.SiteUpdate,
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> models.SiteRead:
    site = service.ensure_site_exists(session, code)
    principal.require("site", "update", site.code, entity_id=site.code)
    service.update_site(session, site, data, if_match=if_match, actor=principal.username)
    return service.site_read(session, site)


# --- systems -------------------------------------------------------------------------------------------


@router.post("/systems", status_code=status.HTTP_201_CREATED, response_model=SystemRead)
def create_system(data: SystemCreate, session: SessionDep, principal: CurrentPrincipal) -> SystemRead:
    if not principal.holds_role_in(data.site):
        service.ensure_site_exists(session, data.site, ["body", "site"])
    require_may_register(principal, data.site, data.business_owner)
    system = service.create_system(session, data, actor=principal.username)
    return service.read_one(session, system)


@router.get("/systems", response_model=SystemPage)
def list_systems(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    site: Annotated[str | None, Query(pattern=SITE_PATTERN)] = None,
    line: Annotated[str | None, Query(pattern=LINE_PATTERN)] = None,
    ai_act_class: AIActClass | None = None,
    risk_tier: RiskTier | None = None,
    lifecycle_stage: LifecycleStage | None = None,
    zone: Annotated[str | None, Query(max_length=24)] = None,
    business_owner: Annotated[str | None, Query(max_length=40)] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="text in name or purpose")
    ] = None,
    order_by: Annotated[SystemOrder, Query(description="sort key")] = SystemOrder.id,
    desc: bool = False,
) -> SystemPage:
    sites = principal.sites_for("system", "read")
    filters = service.SystemFilters(
        site=site,
        line=line,
        ai_act_class=ai_act_class,
        risk_tier=risk_tier,
        lifecycle_stage=lifecycle_stage,
        zone=zone,
        business_owner=business_owner,
        q=q,
    )
    query = service.systems_query(session, filters, sites=sites, order=order_by, descending=desc)
    return service.page_systems(session, query, page)


@router.get("/systems/{system_id}", response_model=SystemRead)
def get_system(system: SystemRead_, session: SessionDep) -> SystemRead:
    return service.read_one(session, system)


@router.patch("/systems/{system_id}", response_model=SystemRead)
def update_system(
    data: SystemUpdate,
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("system", "read", for_update=True))],
) -> SystemRead:
    """Change fields of a system. Facts that decide who must sign (``personal_data``, ``ai_act_role``,
    ``business_owner``, ``technical_owner``: compliance officers; ``zone``, ``sl_achieved``: OT security)
    may only be changed by the role that owns them; a change voids earlier approvals
    (``CHANGED_SINCE_APPROVAL``)."""
    changes = service.update_changes(data)
    fields = [f for f in changes if f not in SIGNOFF_FACTS] + service.changed_facts(system, changes)
    require_may_update(principal, system, fields)
    service.update_system(session, system, data, if_match=if_match, actor=principal.username)
    return service.read_one(session, system)


@router.delete("/systems/{system_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_system(
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("system", "delete", for_update=True))],
) -> Response:
    service.delete_system(session, system, if_match=if_match, actor=principal.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- model versions ------------------------------------------------------------------------------------


@router.post(
    "/systems/{system_id}/versions", status_code=status.HTTP_201_CREATED, response_model=models.VersionRead
)
def create_version(
    data: models.VersionCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("version", "create"))],
) -> models.VersionRead:
    return service.version_read(service.create_version(session, system, data, actor=principal.username))


@router.get("/systems/{system_id}/versions", response_model=Page[models.VersionRead])
def list_versions(
    session: SessionDep,
    page: PageDep,
    system: Annotated[AISystem, Depends(system_access("version", "read"))],
) -> Page[models.VersionRead]:
    rows, total = service.list_versions(session, system.id, page)
    return Page(
        items=[service.version_read(v) for v in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/systems/{system_id}/versions/{version}", response_model=models.VersionRead)
def get_version(
    version: str,
    session: SessionDep,
    system: Annotated[AISystem, Depends(system_access("version", "read"))],
) -> models.VersionRead:
    row = service.get_version(session, system.id, version)
    if row is None:
        raise NotFound(f"system {system.id} has no version {version!r}")
    return service.version_read(row)
