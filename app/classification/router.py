"""HTTP endpoints: AI Act classification, NIST AI RMF risk assessment and checklist, the catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status

from app.classification import service
from app.classification.catalog import get_catalog
from app.classification.engine import ClassificationResult
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
from app.http import IfMatchDep, Page, PageDep
from app.identity.dependencies import CurrentPrincipal, Principal, inline_principal
from app.systems.dependencies import system_access
from app.systems.models import AISystem

router = APIRouter(prefix="/api/v1", tags=["classification"])


@router.post("/classify", response_model=ClassificationResult)
async def classify_answers(
    data: ClassifyRequest, principal: Annotated[Principal, Depends(inline_principal)]
) -> ClassificationResult:
    """Classify answers without storing anything (the wizard's live preview); any authenticated caller.

    ``async``, and authenticated by ``inline_principal``: the engine is pure CPU over the cached catalogue
    (tens of microseconds), so the whole request runs on the event loop without a thread-pool hop.
    """
    return service.preview(data.answers, str(data.ai_act_role), data.as_of)


@router.post(
    "/systems/{system_id}/classification",
    status_code=status.HTTP_201_CREATED,
    response_model=ClassificationRead,
)
def record_classification(
    data: SystemClassifyRequest,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("classification", "create", for_update=True))],
) -> ClassificationRead:
    """Classify the system for its own ai_act_role and record it as its current class (history is kept).

    ``as_of`` (default today) is the date the classification is made for; the result keeps it.
    """
    row = service.record_classification(
        session, system, data.answers, actor=principal.username, as_of=data.as_of
    )
    return service.classification_read(row)


@router.get(
    "/systems/{system_id}/classification", response_model=ClassificationRead, name="current_classification"
)
def read_current_classification(
    session: SessionDep,
    system: Annotated[AISystem, Depends(system_access("classification", "read"))],
) -> ClassificationRead:
    """The system's current (newest) classification; 404 before the first one."""
    row = service.require_current(
        service.current_classification(session, system.id), "classification", system.id
    )
    return service.classification_read(row)


@router.get("/systems/{system_id}/classification/history", response_model=Page[ClassificationRead])
def classification_history(
    session: SessionDep,
    page: PageDep,
    system: Annotated[AISystem, Depends(system_access("classification", "read"))],
) -> Page[ClassificationRead]:
    """Every classification of the system, newest first, each with its catalogue version."""
    rows, total = service.classification_history(session, system.id, page)
    return Page(
        items=[service.classification_read(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/systems/{system_id}/risk-assessment",
    status_code=status.HTTP_201_CREATED,
    response_model=RiskAssessmentRead,
)
def record_risk_assessment(
    data: RiskAssessmentCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("risk_assessment", "create", for_update=True))],
) -> RiskAssessmentRead:
    """Rate impact x likelihood on the catalogue's matrix; the tier becomes the system's risk_tier."""
    return service.risk_assessment_read(
        service.record_risk_assessment(session, system, data, actor=principal.username)
    )


@router.get("/systems/{system_id}/risk-assessment", response_model=RiskAssessmentRead)
def current_risk_assessment(
    session: SessionDep,
    system: Annotated[AISystem, Depends(system_access("risk_assessment", "read"))],
) -> RiskAssessmentRead:
    """The system's newest risk assessment; 404 before the first one."""
    row = service.require_current(
        service.current_risk_assessment(session, system.id), "risk assessment", system.id
    )
    return service.risk_assessment_read(row)


@router.get("/systems/{system_id}/risk-assessment/history", response_model=Page[RiskAssessmentRead])
def risk_assessment_history(
    session: SessionDep,
    page: PageDep,
    system: Annotated[AISystem, Depends(system_access("risk_assessment", "read"))],
) -> Page[RiskAssessmentRead]:
    """Every risk assessment of the system, newest first."""
    rows, total = service.risk_assessment_history(session, system.id, page)
    return Page(
        items=[service.risk_assessment_read(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/systems/{system_id}/nist-checklist", response_model=ChecklistRead)
def nist_checklist(
    session: SessionDep,
    system: Annotated[AISystem, Depends(system_access("risk_assessment", "read"))],
) -> ChecklistRead:
    """All AI RMF subcategories with this system's status and evidence, and coverage per function."""
    return service.checklist(session, system.id)


@router.put("/systems/{system_id}/nist-checklist/{subcategory}", response_model=ChecklistRead)
def update_nist_checklist_item(
    subcategory: Annotated[str, Path(max_length=16, description="e.g. 'MEASURE 2.11'")],
    data: ChecklistUpdate,
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("risk_assessment", "create", for_update=True))],
) -> ChecklistRead:
    """Set one subcategory's status, evidence links and note (the item's ``revision``: 0 when untouched)."""
    service.update_checklist_item(
        session, system, subcategory, data, if_match=if_match, actor=principal.username
    )
    return service.checklist(session, system.id)


@router.get("/catalog")
def catalog_summary(principal: CurrentPrincipal) -> dict[str, Any]:
    """The regulatory catalogue in force: version, legal basis and its parts."""
    catalog = get_catalog()
    return {
        "catalog_version": catalog.catalog_version,
        "legal_basis": catalog.legal_basis,
        "legal_basis_version": catalog.legal_basis_version,
        "ai_act": catalog.ai_act.model_dump(mode="json"),
        "nist_ai_rmf": catalog.nist.model_dump(mode="json"),
        "iec62443": catalog.iec62443.model_dump(mode="json"),
    }
