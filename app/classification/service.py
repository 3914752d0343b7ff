"""Recording classifications, risk assessments and AI RMF checklists (no HTTP here)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from app.audit import service as audit
from app.classification.catalog import Catalog, get_catalog
from app.classification.engine import ClassificationAnswers, classify, parse_answers
from app.classification.models import (
    ChecklistItemRead,
    ChecklistRead,
    ChecklistStatus,
    ChecklistUpdate,
    Classification,
    ClassificationRead,
    FunctionCoverage,
    NistChecklistItem,
    RiskAssessment,
    RiskAssessmentCreate,
    RiskAssessmentRead,
)
from app.db import utcnow
from app.errors import NotFound, Unprocessable, field_error
from app.http import PageParams
from app.systems.models import AIActClass, AISystem, RiskTier

ANSWERS_LOC = ["body", "answers"]


def classification_read(row: Classification) -> ClassificationRead:
    return ClassificationRead.model_validate(
        {
            **row.result,
            "id": row.id,
            "system_id": row.system_id,
            "answers": row.answers,
            "ai_act_role": row.ai_act_role,
            "assessor": row.assessor,
            "created_at": row.created_at,
        }
    )


def record_classification(
    session: Session, system: AISystem, answers: ClassificationAnswers | dict[str, Any], *, actor: str
) -> Classification:
    """Classify a stored system under the current catalogue and make it the system's class.

    Earlier classifications stay as they were, with the catalogue version they were made under.
    """
    catalog = get_catalog()
    parsed = parse_answers(answers, catalog, loc=ANSWERS_LOC)
    result = classify(parsed, ai_act_role=system.ai_act_role.value, catalog=catalog)
    row = Classification(
        system_id=system.id,
        answers=parsed.model_dump(mode="json", exclude_defaults=True),
        ai_act_role=system.ai_act_role.value,
        ai_act_class=AIActClass(result.ai_act_class.value),
        basis=list(result.basis),
        result=result.model_dump(mode="json"),
        catalog_version=result.catalog_version,
        assessor=actor,
        created_at=utcnow(),
    )
    session.add(row)
    previous = system.ai_act_class
    system.ai_act_class = row.ai_act_class
    system.revision += 1
    system.updated_at = row.created_at
    session.add(system)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="system.classify",
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        before={"ai_act_class": previous},
        after={
            "classification_id": row.id,
            "ai_act_class": row.ai_act_class,
            "basis": row.basis,
            "answers": row.answers,
            "catalog_version": row.catalog_version,
        },
    )
    return row


def current_classification(session: Session, system_id: str) -> Classification | None:
    return session.exec(
        select(Classification).where(Classification.system_id == system_id).order_by(Classification.id.desc())
    ).first()


def classification_history(
    session: Session, system_id: str, page: PageParams
) -> tuple[list[Classification], int]:
    total = session.exec(
        select(sa.func.count()).select_from(Classification).where(Classification.system_id == system_id)
    ).one()
    rows = session.exec(
        select(Classification)
        .where(Classification.system_id == system_id)
        .order_by(Classification.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    ).all()
    return list(rows), total


# --- NIST AI RMF risk assessment -----------------------------------------------------------------------


def _check_nist_refs(data: RiskAssessmentCreate, catalog: Catalog) -> None:
    known = catalog.nist.subcategory_by_id
    characteristics = {c.id for c in catalog.nist.trustworthiness_characteristics}
    errors: list[dict[str, Any]] = []
    for i, risk in enumerate(data.risks):
        for j, ref in enumerate(risk.nist_refs):
            if ref not in known:
                errors.append(
                    {"loc": ["body", "risks", i, "nist_refs", j], "msg": f"unknown NIST AI RMF subcategory {ref!r}"}
                )
        if risk.characteristic is not None and risk.characteristic not in characteristics:
            errors.append(
                {
                    "loc": ["body", "risks", i, "characteristic"],
                    "msg": f"unknown trustworthiness characteristic; one of {sorted(characteristics)}",
                }
            )
    if errors:
        first = errors[0]
        raise Unprocessable(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", errors=errors)


def record_risk_assessment(
    session: Session, system: AISystem, data: RiskAssessmentCreate, *, actor: str
) -> RiskAssessment:
    """Rate impact and likelihood on the catalogue's matrix; the tier becomes the system's risk tier."""
    catalog = get_catalog()
    _check_nist_refs(data, catalog)
    tier = RiskTier(catalog.nist.risk_tier(data.impact, data.likelihood))
    row = RiskAssessment(
        system_id=system.id,
        impact=data.impact,
        likelihood=data.likelihood,
        risk_tier=tier,
        risks=[r.model_dump(mode="json") for r in data.risks],
        catalog_version=catalog.catalog_version,
        assessor=actor,
        created_at=utcnow(),
    )
    session.add(row)
    previous = system.risk_tier
    system.risk_tier = tier
    system.revision += 1
    system.updated_at = row.created_at
    session.add(system)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="system.risk_assessment",
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        before={"risk_tier": previous},
        after={"assessment_id": row.id, "impact": row.impact, "likelihood": row.likelihood, "risk_tier": tier,
               "risks": row.risks},
    )
    return row


def risk_assessment_read(row: RiskAssessment) -> RiskAssessmentRead:
    return RiskAssessmentRead.model_validate(row.model_dump())


def current_risk_assessment(session: Session, system_id: str) -> RiskAssessment | None:
    return session.exec(
        select(RiskAssessment).where(RiskAssessment.system_id == system_id).order_by(RiskAssessment.id.desc())
    ).first()


def risk_assessment_history(session: Session, system_id: str) -> list[RiskAssessment]:
    return list(
        session.exec(
            select(RiskAssessment).where(RiskAssessment.system_id == system_id).order_by(RiskAssessment.id.desc())
        ).all()
    )


# --- AI RMF checklist ----------------------------------------------------------------------------------


def checklist(session: Session, system_id: str) -> ChecklistRead:
    """Every AI RMF subcategory with this system's status, and coverage per function."""
    catalog = get_catalog()
    rows = {
        r.subcategory: r
        for r in session.exec(select(NistChecklistItem).where(NistChecklistItem.system_id == system_id)).all()
    }
    items: list[ChecklistItemRead] = []
    per_function: dict[str, dict[str, int]] = {f.id: {s.value: 0 for s in ChecklistStatus} for f in catalog.nist.functions}
    for sub in catalog.nist.subcategories:
        row = rows.get(sub.id)
        function = sub.id.split(" ", 1)[0]
        status = row.status if row else ChecklistStatus.not_started
        per_function[function][ChecklistStatus(status).value] += 1
        items.append(
            ChecklistItemRead(
                subcategory=sub.id,
                title=sub.title,
                function=function,
                status=status,
                evidence=row.evidence if row else [],
                note=row.note if row else None,
                updated_by=row.updated_by if row else None,
                updated_at=row.updated_at if row else None,
            )
        )
    coverage = []
    for function, counts in per_function.items():
        total = sum(counts.values())
        applicable = total - counts["not_applicable"]
        coverage.append(
            FunctionCoverage(
                function=function,
                total=total,
                coverage=round(counts["implemented"] / applicable, 3) if applicable else 1.0,
                **counts,
            )
        )
    return ChecklistRead(system_id=system_id, catalog_version=catalog.catalog_version, coverage=coverage, items=items)


def update_checklist_item(
    session: Session, system: AISystem, subcategory: str, data: ChecklistUpdate, *, actor: str
) -> None:
    catalog = get_catalog()
    if subcategory not in catalog.nist.subcategory_by_id:
        raise field_error(["path", "subcategory"], f"unknown NIST AI RMF subcategory {subcategory!r}")
    row = session.exec(
        select(NistChecklistItem).where(
            NistChecklistItem.system_id == system.id, NistChecklistItem.subcategory == subcategory
        )
    ).first()
    before = None
    if row is None:
        row = NistChecklistItem(system_id=system.id, subcategory=subcategory, status=data.status, updated_by=actor,
                                updated_at=utcnow())
    else:
        before = {"status": row.status, "evidence": row.evidence, "note": row.note}
    row.status = data.status
    row.evidence = [str(u) for u in data.evidence]
    row.note = data.note
    row.updated_by = actor
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="system.nist_checklist",
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        before=before,
        after={"subcategory": subcategory, "status": row.status, "evidence": row.evidence, "note": row.note},
    )


def require_current(row: object | None, what: str, system_id: str) -> Any:
    if row is None:
        raise NotFound(f"system {system_id} has no {what} yet")
    return row
