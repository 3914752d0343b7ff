"""HTTP endpoints of compliance work: the frameworks and their crosswalk."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.compliance import service
from app.compliance.models import FrameworkRead, FrameworkSummary
from app.identity.dependencies import CurrentPrincipal

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
