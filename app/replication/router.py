"""HTTP endpoint replicating an AI system to another line or site."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from app.db import SessionDep
from app.identity.dependencies import CurrentPrincipal
from app.replication import service as replication
from app.replication.models import ReplicatedSystemRead, ReplicateRequest
from app.systems import service as systems
from app.systems.dependencies import system_access
from app.systems.models import AISystem

router = APIRouter(prefix="/api/v1", tags=["replication"])


@router.post(
    "/systems/{system_id}/replicate", status_code=status.HTTP_201_CREATED, response_model=ReplicatedSystemRead
)
def replicate_system(
    data: ReplicateRequest,
    session: SessionDep,
    principal: CurrentPrincipal,
    origin: Annotated[AISystem, Depends(system_access("system", "replicate"))],
) -> ReplicatedSystemRead:
    """Copy a system to another line or site, reusing its evidence; placement sign-offs are asked again."""
    if not principal.holds_role_in(data.site):
        systems.ensure_site_exists(session, data.site, ["body", "site"])
    principal.require("system", "create", data.site)
    return replication.replicate(session, origin, data, actor=principal.username)
