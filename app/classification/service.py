"""Recording classifications, risk assessments and AI RMF checklists (no HTTP here)."""

from __future__ import annotations

from datetime import date
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app.audit import service as audit
from app.classification.catalog import Catalog, get_catalog
from app.classification.engine import (
    AIActClass,
    ClassificationAnswers,
    ClassificationResult,
    classify,
    parse_answers,
)
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
from app.db import paginate, utcnow
from app.errors import NotFound, Unprocessable, field_error
from app.http import PageParams, check_revision
from app.systems.models import AISystem, RiskTier

ANSWERS_LOC = ["body", "answers"]

_Recorded = TypeVar("_Recorded", Classification, RiskAssessment)


def preview(
    answers: ClassificationAnswers | dict[str, Any], ai_act_role: str, as_of: date | None = None
) -> ClassificationResult:
    """Classify answers under the current catalogue as of ``as_of`` (default: today), storing nothing."""
    return classify(answers, ai_act_role=ai_act_role, catalog=get_catalog(), as_of=as_of or utcnow().date())


def classification_read(row: Classification) -> ClassificationRead:
    """The API view of a stored classification (the result exactly as it was computed then).

    A classification stored before catalogue 2026-12-06 has no ``as_of`` in its result: it was made as of
    the day it was recorded, which is what it reads back as.
    """
    return ClassificationRead.model_validate(
        {
            "as_of": row.created_at.date(),
            **row.result,
            "effective_role": row.effective_role,
            "id": row.id,
            "system_id": row.system_id,
            "answers": row.answers,
            "ai_act_role": row.ai_act_role,
            "assessor": row.assessor,
            "created_at": row.created_at,
        }
    )


def record_classification(
    session: Session,
    system: AISystem,
    answers: ClassificationAnswers | dict[str, Any],
    *,
    actor: str,
    as_of: date | None = None,
) -> Classification:
    """Classify a stored system for its own ``ai_act_role`` and make the result the system's class.

    A new row every time: earlier classifications stay as they were, with the catalogue version they were
    made under (the AI Act obligations differ by operator role, Art. 16 vs Art. 26). The row keeps the
    effective role (Art. 25) beside the system's role, and the date it was made as of inside its result.
    """
    catalog = get_catalog()
    role = str(system.ai_act_role)
    if role not in catalog.ai_act.roles:
        raise Unprocessable(
            f"the system's ai_act_role {role!r} is not a role of catalogue {catalog.catalog_version}",
            errors=[
                {
                    "loc": ["system", "ai_act_role"],
                    "msg": f"expected one of {', '.join(catalog.ai_act.roles)}",
                }
            ],
        )
    parsed = parse_answers(answers, catalog)  # 422 naming the field, also for callers passing a dict
    now = utcnow()
    result = classify(parsed, ai_act_role=role, catalog=catalog, as_of=as_of or now.date())
    row = Classification(
        system_id=system.id,
        # What the assessor answered, as given (keys left out stay out).
        answers=parsed.model_dump(mode="json", exclude_unset=True),
        ai_act_role=role,
        effective_role=result.effective_role,
        ai_act_class=AIActClass(result.ai_act_class),
        basis=list(result.basis),
        result=result.model_dump(mode="json"),
        catalog_version=result.catalog_version,
        assessor=actor,
        created_at=now,
    )
    previous = system.ai_act_class
    system.ai_act_class = row.ai_act_class
    _store_with_system(session, row, system)
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
            "ai_act_role": row.ai_act_role,
            "effective_role": row.effective_role,
            "as_of": result.as_of.isoformat() if result.as_of else None,
        },
    )
    return row


def _store_with_system(session: Session, row: _Recorded, system: AISystem) -> None:
    """Store a new record together with the system field it changed: one more system revision, one flush."""
    session.add(row)
    system.revision += 1
    system.updated_at = row.created_at
    session.add(system)
    session.flush()


def _of_system(model: type[_Recorded], system_id: str) -> SelectOfScalar[_Recorded]:
    """The records of one system (classifications or risk assessments), in no order."""
    return select(model).where(col(model.system_id) == system_id)


def _newest_first(model: type[_Recorded]) -> sa.UnaryExpression[int | None]:
    """Newest first: ids grow with every record, so the highest id is the current one."""
    return col(model.id).desc()


def current_classification_statement(system_id: str) -> SelectOfScalar[Classification]:
    """The query for a system's newest classification: one row, or none before the first one."""
    return _of_system(Classification, system_id).order_by(_newest_first(Classification)).limit(1)


def current_classification(session: Session, system_id: str) -> Classification | None:
    """The newest classification of a system (its current class), or None."""
    return session.exec(current_classification_statement(system_id)).first()


def classification_history(
    session: Session, system_id: str, page: PageParams
) -> tuple[list[Classification], int]:
    """A page of a system's classifications, newest first."""
    return paginate(session, _of_system(Classification, system_id), page, _newest_first(Classification))


# --- NIST AI RMF risk assessment -----------------------------------------------------------------------


def _check_nist_refs(data: RiskAssessmentCreate, catalog: Catalog) -> None:
    """Every risk must cite AI RMF subcategories (and a characteristic) the catalogue knows; 422 otherwise."""
    known = catalog.nist.subcategory_by_id
    characteristics = {c.id for c in catalog.nist.trustworthiness_characteristics}
    errors: list[dict[str, Any]] = []
    for i, risk in enumerate(data.risks):
        seen: set[str] = set()
        for j, ref in enumerate(risk.nist_refs):
            if ref in seen:
                errors.append(
                    {"loc": ["body", "risks", i, "nist_refs", j], "msg": f"{ref!r} is listed twice"}
                )
            seen.add(ref)
            if ref not in known:
                errors.append(
                    {
                        "loc": ["body", "risks", i, "nist_refs", j],
                        "msg": f"unknown NIST AI RMF subcategory {ref!r}",
                    }
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
    matrix = catalog.nist.risk_matrix
    for key, levels in (("impact", matrix.impact_levels), ("likelihood", matrix.likelihood_levels)):
        if getattr(data, key) not in levels:
            raise field_error(["body", key], f"the risk matrix has levels {min(levels)}-{max(levels)}")
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
    previous = system.risk_tier
    system.risk_tier = tier
    _store_with_system(session, row, system)
    audit.record(
        session,
        actor=actor,
        action="system.risk_assessment",
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        before={"risk_tier": previous},
        after={
            "assessment_id": row.id,
            "impact": row.impact,
            "likelihood": row.likelihood,
            "risk_tier": tier,
            "risks": row.risks,
        },
    )
    return row


def risk_assessment_read(row: RiskAssessment) -> RiskAssessmentRead:
    """The API view of a risk assessment."""
    return RiskAssessmentRead.model_validate(row, from_attributes=True)


def current_risk_assessment(session: Session, system_id: str) -> RiskAssessment | None:
    """The newest risk assessment of a system, or None."""
    return session.exec(
        _of_system(RiskAssessment, system_id).order_by(_newest_first(RiskAssessment)).limit(1)
    ).first()


def risk_assessment_history(
    session: Session, system_id: str, page: PageParams
) -> tuple[list[RiskAssessment], int]:
    """A page of a system's risk assessments, newest first."""
    return paginate(session, _of_system(RiskAssessment, system_id), page, _newest_first(RiskAssessment))


# --- AI RMF checklist ----------------------------------------------------------------------------------


def checklist(session: Session, system_id: str) -> ChecklistRead:
    """Every AI RMF subcategory with this system's status, and coverage per function.

    Coverage = implemented / (total - not_applicable); a function with nothing applicable counts as covered.
    """
    nist = get_catalog().nist
    rows = {
        r.subcategory: r
        for r in session.exec(select(NistChecklistItem).where(NistChecklistItem.system_id == system_id)).all()
    }
    per_function: dict[str, dict[str, int]] = {
        f.id: {s.value: 0 for s in ChecklistStatus} for f in nist.functions
    }
    items: list[ChecklistItemRead] = []
    for sub in nist.subcategories:
        row = rows.get(sub.id)
        function = nist.category_by_id[sub.category].function
        status = ChecklistStatus(row.status) if row else ChecklistStatus.not_started
        per_function[function][status.value] += 1
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
                revision=row.revision if row else 0,
            )
        )
    coverage = []
    for function, counts in per_function.items():
        total = sum(counts.values())
        applicable = total - counts[ChecklistStatus.not_applicable.value]
        implemented = counts[ChecklistStatus.implemented.value]
        coverage.append(
            FunctionCoverage(
                function=function,
                total=total,
                coverage=round(implemented / applicable, 3) if applicable else 1.0,
                **counts,
            )
        )
    return ChecklistRead(
        system_id=system_id, catalog_version=get_catalog().catalog_version, coverage=coverage, items=items
    )


def update_checklist_item(
    session: Session,
    system: AISystem,
    subcategory: str,
    data: ChecklistUpdate,
    *,
    if_match: int | None,
    actor: str,
) -> NistChecklistItem:
    """Set the status, evidence links and note of one subcategory (optimistic concurrency on the item).

    The caller holds the system row lock, so two first writes of one item cannot race.
    """
    if subcategory not in get_catalog().nist.subcategory_by_id:
        raise field_error(["path", "subcategory"], f"unknown NIST AI RMF subcategory {subcategory!r}")
    row = session.exec(
        select(NistChecklistItem).where(
            NistChecklistItem.system_id == system.id, NistChecklistItem.subcategory == subcategory
        )
    ).first()
    check_revision(row.revision if row else 0, if_match, data.revision)
    now = utcnow()
    before = None
    if row is None:
        row = NistChecklistItem(
            system_id=system.id,
            subcategory=subcategory,
            status=data.status,
            updated_by=actor,
            updated_at=now,
            revision=0,
        )
    else:
        before = {"status": row.status, "evidence": row.evidence, "note": row.note}
    row.status = data.status
    row.evidence = [str(u) for u in data.evidence]
    row.note = data.note
    row.updated_by = actor
    row.updated_at = now
    row.revision += 1
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
    return row


def require_current(row: object | None, what: str, system_id: str) -> Any:
    """``row``, or a 404 saying the system has no such record yet."""
    if row is None:
        raise NotFound(f"system {system_id} has no {what} yet")
    return row
