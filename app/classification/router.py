"""HTTP endpoints: AI Act classification, NIST AI RMF risk assessment and checklist, the catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status

from app.classification import service
from app.classification.catalog import get_catalog
from app.classification.engine import ClassificationResult, classify, parse_answers
from app.classification.models import (
    ChecklistRead,
    ChecklistUpdate,
    ClassificationRead,
    ClassifyRequest,
    RiskAssessmentCreate,
    RiskAssessmentRead,
    SystemClassifyRequest,
)
from app.db import SessionDep
from app.http import Page, PageDep
from app.identity.dependencies import CurrentPrincipal
from app.systems.dependencies import system_access
from app.systems.models import AISystem

router = APIRouter(prefix="/api/v1", tags=["classification"])


@router.post("/classify", response_model=ClassificationResult)
def classify_answers(data: ClassifyRequest, principal: CurrentPrincipal) -> ClassificationResult:
    """Classify answers without storing anything (the wizard's live preview)."""
    catalog = get_catalog()
    answers = parse_answers(data.answers, catalog, loc=service.ANSWERS_LOC)
    return classify(answers, ai_act_role=data.ai_act_role, catalog=catalog)


@router.post(
    "/systems/{system_id}/classification", status_code=status.HTTP_201_CREATED, response_model=ClassificationRead
)
def record_classification(
    data: SystemClassifyRequest,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("classification", "create", for_update=True))],
) -> ClassificationRead:
    row = service.record_classification(session, system, data.answers, actor=principal.username)
    return service.classification_read(row)


@router.get("/systems/{system_id}/classification", response_model=ClassificationRead)
def current_classification(
    session: SessionDep,
    system: Annotated[AISystem, Depends(system_access("classification", "read"))],
) -> ClassificationRead:
    row = service.require_current(service.current_classification(session, system.id), "classification", system.id)
    return service.classification_read(row)


@router.get("/systems/{system_id}/classification/history", response_model=Page[ClassificationRead])
def classification_history(
    session: SessionDep,
    page: PageDep,
    system: Annotated[AISystem, Depends(system_access("classification", "read"))],
) -> Page[ClassificationRead]:
    rows, total = service.classification_history(session, system.id, page)
    return Page(
        items=[service.classification_read(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "/systems/{system_id}/risk-assessment", status_code=status.HTTP_201_CREATED, response_model=RiskAssessmentRead
)
def record_risk_assessment(
    data: RiskAssessmentCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("risk_assessment", "create", for_update=True))],
) -> RiskAssessmentRead:
    return service.risk_assessment_read(
        service.record_risk_assessment(session, system, data, actor=principal.username)
    )


@router.get("/systems/{system_id}/risk-assessment", response_model=RiskAssessmentRead)
def current_risk_assessment(
    session: SessionDep,
    system: Annotated[AISystem, Depends(system_access("risk_assessment", "read"))],
) -> RiskAssessmentRead:
    row = service.require_current(
        service.current_risk_assessment(session, system.id), "risk assessment", system.id
    )
    return service.risk_assessment_read(row)


@router.get("/systems/{system_id}/risk-assessment/history", response_model=list[RiskAssessmentRead])
def risk_assessment_history(
    session: SessionDep,
    system: Annotated[AISystem, Depends(system_access("risk_assessment", "read"))],
) -> list[RiskAssessmentRead]:
    return [service.risk_assessment_read(r) for r in service.risk_assessment_history(session, system.id)]


@router.get("/systems/{system_id}/nist-checklist", response_model=ChecklistRead)
def nist_checklist(
    session: SessionDep,
    system: Annotated[AISystem, Depends(system_access("risk_assessment", "read"))],
) -> ChecklistRead:
    return service.checklist(session, system.id)


@router.put("/systems/{system_id}/nist-checklist/{subcategory}", response_model=ChecklistRead)
def update_nist_checklist_item(
    subcategory: Annotated[str, Path(max_length=16, description="e.g. 'MEASURE 2.11'")],
    data: ChecklistUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("risk_assessment", "create"))],
) -> ChecklistRead:
    service.update_checklist_item(session, system, subcategory, data, actor=principal.username)
    return service.checklist(session, system.id)


@router.get("/catalog")
def catalog_summary(principal: CurrentPrincipal) -> dict[str, Any]:
    """The regulatory catalogue in force: version, legal basis and its parts."""
    catalog = get_catalog()
    return {
        "catalog_version": catalog.catalog_version,
        "legal_basis": catalog.legal_basis,
        "ai_act": catalog.ai_act.model_dump(mode="json"),
        "nist_ai_rmf": catalog.nist.model_dump(mode="json"),
        "iec62443": catalog.iec62443.model_dump(mode="json"),
    }
