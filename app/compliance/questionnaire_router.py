"""HTTP endpoints of the questionnaires that produce evidence: the forms (FRIA, DPIA screening) and a system's
responses to them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from app.compliance import questionnaires as service
from app.compliance.models import (
    QuestionnaireAnswers,
    QuestionnaireComplete,
    QuestionnaireResponseRead,
    QuestionnaireStart,
    QuestionnaireSummary,
)
from app.compliance.questionnaires import Questionnaire
from app.db import SessionDep
from app.http import IfMatchDep
from app.identity.dependencies import CurrentPrincipal
from app.systems.dependencies import system_access
from app.systems.models import AISystem

router = APIRouter(prefix="/api/v1", tags=["compliance"])

QuestionnaireId = Annotated[
    str, Path(max_length=32, description="e.g. fria, dpia_screening", examples=["fria"])
]
ResponseId = Annotated[str, Path(max_length=16, description="e.g. QNR-000001", examples=["QNR-000001"])]
Reader = Annotated[AISystem, Depends(system_access("questionnaire", "read"))]
Writer = Annotated[AISystem, Depends(system_access("questionnaire", "update", for_update=True))]
_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "the response is completed (`code: RESPONSE_COMPLETED`), or a stale revision"},
    422: {"description": "an unknown question, an answer of the wrong kind or an unknown choice (names it)"},
}


@router.get("/questionnaires", response_model=list[QuestionnaireSummary])
def questionnaires_index(principal: CurrentPrincipal) -> list[QuestionnaireSummary]:
    """The questionnaires loaded from the catalogue, with their number of questions."""
    principal.require_anywhere("questionnaire", "read")
    return service.list_questionnaires()


@router.get("/questionnaires/{questionnaire_id}", response_model=Questionnaire)
def questionnaire_detail(questionnaire_id: QuestionnaireId, principal: CurrentPrincipal) -> Questionnaire:
    """The form: sections, questions (kind, choices, required, help), and its outcome rule; 404 if unknown."""
    principal.require_anywhere("questionnaire", "read")
    return service.require_questionnaire(questionnaire_id)


@router.post(
    "/systems/{system_id}/questionnaires/{questionnaire_id}",
    response_model=QuestionnaireResponseRead,
    status_code=201,
    responses=_WRITE_RESPONSES,
)
def start_response(
    questionnaire_id: QuestionnaireId,
    data: QuestionnaireStart,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Writer,
) -> QuestionnaireResponseRead:
    """Start a draft response of the system, with any answers known so far."""
    questionnaire = service.require_questionnaire(questionnaire_id)
    row = service.start_response(session, system, questionnaire, data.answers, actor=principal.username)
    return service.response_read(session, system, row)


@router.get("/systems/{system_id}/questionnaire-responses", response_model=list[QuestionnaireResponseRead])
def responses_index(
    session: SessionDep,
    system: Reader,
    questionnaire: Annotated[
        str | None, Query(max_length=32, description="responses to this questionnaire only")
    ] = None,
) -> list[QuestionnaireResponseRead]:
    """The system's questionnaire responses, newest first."""
    derived = service.derived_refs(session, system)
    return [
        service.response_read(session, system, row, derived)
        for row in service.list_responses(session, system, questionnaire)
    ]


@router.get(
    "/systems/{system_id}/questionnaire-responses/{response_id}", response_model=QuestionnaireResponseRead
)
def response_detail(
    response_id: ResponseId, session: SessionDep, system: Reader
) -> QuestionnaireResponseRead:
    """One response: answers, what is still missing, the outcome and, once completed, its evidence."""
    return service.response_read(session, system, service.get_response(session, system, response_id))


@router.patch(
    "/systems/{system_id}/questionnaire-responses/{response_id}",
    response_model=QuestionnaireResponseRead,
    responses=_WRITE_RESPONSES,
)
def update_response(
    response_id: ResponseId,
    data: QuestionnaireAnswers,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatchDep,
    system: Writer,
) -> QuestionnaireResponseRead:
    """Merge answers into a draft (``null`` removes one), based on ``revision`` (or If-Match)."""
    row = service.get_response(session, system, response_id, for_update=True)
    row = service.update_response(
        session,
        system,
        row,
        data.answers,
        revision=data.revision,
        if_match=if_match,
        actor=principal.username,
    )
    return service.response_read(session, system, row)


@router.post(
    "/systems/{system_id}/questionnaire-responses/{response_id}/complete",
    response_model=QuestionnaireResponseRead,
    responses={
        409: {"description": "already completed (`code: RESPONSE_COMPLETED`), or a stale revision"},
        422: {"description": "required questions unanswered (`missing` lists them), valid_until in the past"},
    },
)
def complete_response(
    response_id: ResponseId,
    data: QuestionnaireComplete,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatchDep,
    system: Writer,
) -> QuestionnaireResponseRead:
    """Complete a draft: its answers become a Markdown document stored as evidence (hashed) and linked to the
    form's requirements the system has; ``skipped`` names those it does not have."""
    row = service.get_response(session, system, response_id, for_update=True)
    row = service.complete_response(
        session,
        system,
        row,
        valid_until=data.valid_until,
        revision=data.revision,
        if_match=if_match,
        actor=principal.username,
    )
    return service.response_read(session, system, row)
