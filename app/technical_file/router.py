"""The technical file of a system (AI Act Art. 11, Annex IV): its sections, their changes and history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.db import SessionDep
from app.http import IfMatchDep
from app.identity.dependencies import CurrentPrincipal
from app.systems.dependencies import system_access
from app.systems.models import AISystem
from app.technical_file import service
from app.technical_file.models import TechnicalFileChange, TechnicalFileRead, TechnicalFileUpdate

router = APIRouter(prefix="/api/v1", tags=["technical file"])

FileReader = Annotated[AISystem, Depends(system_access("technical_file", "read"))]
FileEditor = Annotated[AISystem, Depends(system_access("technical_file", "update", for_update=True))]


@router.get("/systems/{system_id}/technical-file", response_model=TechnicalFileRead)
def technical_file(system: FileReader, session: SessionDep) -> TechnicalFileRead:
    """Every Annex IV section (``annex4.1.a`` ... ``annex4.9``) with its recorded text and evidence ids."""
    return service.read_file(session, system)


@router.patch(
    "/systems/{system_id}/technical-file",
    response_model=TechnicalFileRead,
    responses={
        409: {"description": "stale revision: the file changed since it was read"},
        422: {"description": "an unknown or repeated section id, evidence of another system, or no revision"},
    },
)
def update_technical_file(
    data: TechnicalFileUpdate,
    system: FileEditor,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatchDep,
) -> TechnicalFileRead:
    """Record any subset of the sections (text and evidence ids), naming the file's revision.

    Compliance officers edit every system's file, business owners those of the systems they own; each
    changed section is an audit event with the SHA-256 of the text before and after and the new text.
    """
    return service.update_file(session, system, data, if_match=if_match, actor=principal.username)


@router.get("/systems/{system_id}/technical-file/history", response_model=list[TechnicalFileChange])
def technical_file_history(system: FileReader, session: SessionDep) -> list[TechnicalFileChange]:
    """Every change of a section, newest first, read from the audit trail."""
    return service.history(session, system)
