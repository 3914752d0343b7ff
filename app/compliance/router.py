"""HTTP endpoints of compliance work: the frameworks and their crosswalk, requirements of systems and of
the organisation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from app.compliance import service
from app.compliance.models import FrameworkRead, FrameworkSummary, RequirementRead, RequirementUpdate
from app.db import SessionDep, utcnow
from app.http import IfMatchDep, Page, PageDep, PageParams
from app.identity.dependencies import CurrentPrincipal
from app.systems.dependencies import system_access
from app.systems.models import AISystem

router = APIRouter(prefix="/api/v1", tags=["compliance"])

FrameworkId = Annotated[str, Path(max_length=64, description="e.g. iso42001", examples=["iso42001"])]


@router.get("/frameworks", response_model=list[FrameworkSummary])
def frameworks_index(principal: CurrentPrincipal) -> list[FrameworkSummary]:
    """The compliance frameworks loaded from the catalogue, with their number of controls."""
    principal.require_anywhere("framework", "read")
    return service.list_frameworks()


@router.get("/frameworks/{framework_id}", response_model=FrameworkRead)
def framework_detail(framework_id: FrameworkId, principal: CurrentPrincipal) -> FrameworkRead:
    """One framework, every control with the controls of other frameworks it maps to; 404 if unknown."""
    principal.require_anywhere("framework", "read")
    return service.framework_read(service.require_framework(framework_id))


# --- requirements --------------------------------------------------------------------------------------

RequirementId = Annotated[
    str, Path(max_length=100, description="framework:control", examples=["ai_act:art9", "iso42001:A.6.2.4"])
]
_PATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "stale revision, or `met` without current evidence (`code: EVIDENCE_REQUIRED`)"},
    422: {"description": "`not_applicable` without a note, or no revision"},
}


def _page(rows: list[RequirementRead], page: PageParams) -> Page[RequirementRead]:
    return Page(
        items=rows[page.offset : page.offset + page.limit],
        total=len(rows),
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/systems/{system_id}/requirements", response_model=Page[RequirementRead])
def system_requirements(
    session: SessionDep,
    page: PageDep,
    system: Annotated[AISystem, Depends(system_access("requirement", "read"))],
) -> Page[RequirementRead]:
    """The system's requirements from its current classification and the adopted frameworks."""
    today = utcnow().date()
    rows = service.read_system_requirements(session, system)
    return _page([service.requirement_read(r, today) for r in rows], page)


@router.patch(
    "/systems/{system_id}/requirements/{requirement_id}",
    response_model=RequirementRead,
    responses=_PATCH_RESPONSES,
)
def update_system_requirement(
    requirement_id: RequirementId,
    data: RequirementUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatchDep,
    system: Annotated[AISystem, Depends(system_access("requirement", "update"))],
) -> RequirementRead:
    """Record progress on one requirement of the system (status, note, owner role)."""
    row = service.find_requirement(
        service.system_requirements(session, system), requirement_id, f"system {system.id}"
    )
    row = service.update_requirement(
        session,
        row,
        data,
        if_match=if_match,
        actor=principal.username,
        entity=("system", system.id, system.site),
    )
    return service.requirement_read(row)


@router.get("/organisation/requirements", response_model=Page[RequirementRead])
def organisation_requirements(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep
) -> Page[RequirementRead]:
    """Requirements tracked once for the organisation (AI literacy, management-system clauses)."""
    principal.require_anywhere("requirement", "read")
    today = utcnow().date()
    return _page(
        [service.requirement_read(r, today) for r in service.read_organisation_requirements(session)], page
    )


@router.patch(
    "/organisation/requirements/{requirement_id}", response_model=RequirementRead, responses=_PATCH_RESPONSES
)
def update_organisation_requirement(
    requirement_id: RequirementId,
    data: RequirementUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatchDep,
) -> RequirementRead:
    """Record progress on an organisation-wide requirement (a compliance officer of any site may)."""
    principal.require_anywhere("requirement", "update")
    row = service.find_requirement(
        service.organisation_requirements(session), requirement_id, "the organisation"
    )
    row = service.update_requirement(
        session,
        row,
        data,
        if_match=if_match,
        actor=principal.username,
        entity=(service.ORGANISATION, service.ORGANISATION, None),
    )
    return service.requirement_read(row)
