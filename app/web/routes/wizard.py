"""The AI Act classification wizard: the questionnaire step by step, a preview, and saving the result."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.classification import service as classification
from app.classification.catalog import get_catalog
from app.classification.engine import ClassificationResult, classify, parse_answers
from app.db import SessionDep
from app.errors import Unprocessable
from app.identity.dependencies import CurrentPrincipal, Principal
from app.systems.dependencies import system_access
from app.systems.models import AISystem
from app.web.forms import FormDep, checked, field_errors, text, values
from app.web.nav import permits
from app.web.paths import path_for
from app.web.session import flash, require_csrf
from app.web.templating import label, render

router = APIRouter(dependencies=[Depends(require_csrf)], include_in_schema=False)

# Form field -> answers key, for the lists of catalogue identifiers.
ID_LISTS = ("prohibited_practices", "annex3_uses", "art6_3_conditions", "transparency")
FLAGS = ("profiling", "gpai_model", "gpai_systemic_risk")


def answers_from(data: Any) -> dict[str, Any]:
    """The contract's ``answers`` from the wizard's fields (a posted form or a shared link's query)."""
    answers: dict[str, Any] = {}
    for key in ID_LISTS:
        if chosen := values(data, key):
            answers[key] = chosen
    legislation = text(data, "annex1_legislation") or None
    safety, third_party = checked(data, "annex1_safety_component"), checked(data, "annex1_third_party")
    if legislation or safety or third_party:
        answers["annex1"] = {
            "legislation": legislation,
            "safety_component": safety,
            "third_party_conformity_assessment": third_party,
        }
    for key in FLAGS:
        if checked(data, key):
            answers[key] = True
    return answers


def answers_query(answers: dict[str, Any]) -> str:
    """The answers as the wizard's query string, so a preview can be shared as a link."""
    pairs: list[tuple[str, str]] = [(key, v) for key in ID_LISTS for v in answers.get(key, [])]
    annex1 = answers.get("annex1") or {}
    if annex1.get("legislation"):
        pairs.append(("annex1_legislation", annex1["legislation"]))
    if annex1.get("safety_component"):
        pairs.append(("annex1_safety_component", "on"))
    if annex1.get("third_party_conformity_assessment"):
        pairs.append(("annex1_third_party", "on"))
    pairs += [(key, "on") for key in FLAGS if answers.get(key)]
    return urlencode(pairs)


def questionnaire() -> dict[str, Any]:
    """The catalogue's entries the questions offer, grouped the way the Act groups them."""
    ai = get_catalog().ai_act
    areas: dict[str, list[Any]] = {}
    for use in ai.annex3_uses:
        areas.setdefault(f"{use.area}. {use.area_title}", []).append(use)
    sections: dict[str, list[Any]] = {}
    for leg in ai.annex1_legislation:
        sections.setdefault(leg.section, []).append(leg)
    return {
        "practices": ai.prohibited_practices,
        "legislation": sections,
        "annex3_areas": areas,
        "conditions": ai.art6_3_conditions,
        "transparency": ai.transparency_duties,
        "gpai_duties": ai.gpai_duties,
        "catalog_version": get_catalog().catalog_version,
        "legal_basis": get_catalog().legal_basis,
    }


def identifier_titles() -> dict[str, str]:
    """Title of every AI Act identifier a classification's basis can name (from the catalogue)."""
    ai = get_catalog().ai_act
    tables = (
        ai.practice_by_id,
        ai.legislation_by_id,
        ai.annex3_by_id,
        ai.condition_by_id,
        ai.transparency_by_id,
    )
    return {key: entry.title for table in tables for key, entry in table.items()}


def result_view(result: ClassificationResult) -> dict[str, Any]:
    """A result with the titles of the identifiers that decided it."""
    return {"result": result, "titles": identifier_titles()}


def wizard_context(
    session: Session,
    principal: Principal,
    system: AISystem,
    answers: dict[str, Any],
    *,
    result: ClassificationResult | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    current = classification.current_classification(session, system.id)
    return {
        "system": system,
        "answers": answers,
        "selected": _selected(answers),
        "questions": questionnaire(),
        "preview": result_view(result) if result is not None else None,
        "errors": errors or {},
        "can_save": permits(principal, system, "classification", "create"),
        "current": current,
        "share_query": answers_query(answers),
    }


def _selected(answers: dict[str, Any]) -> set[str]:
    """Every identifier and flag the answers hold, for checking boxes in the template."""
    chosen: set[str] = {v for key in ID_LISTS for v in answers.get(key, [])}
    annex1 = answers.get("annex1") or {}
    if annex1.get("legislation"):
        chosen.add(annex1["legislation"])
    chosen |= {key for key in ("safety_component", "third_party_conformity_assessment") if annex1.get(key)}
    chosen |= {key for key in FLAGS if answers.get(key)}
    return chosen


def _evaluate(
    answers: dict[str, Any], system: AISystem
) -> tuple[ClassificationResult | None, dict[str, str]]:
    try:
        parsed = parse_answers(answers, loc=classification.ANSWERS_LOC)
        return classify(parsed, ai_act_role=system.ai_act_role.value), {}
    except Unprocessable as exc:
        return None, field_errors(exc)


ClassificationReader = Annotated[AISystem, Depends(system_access("classification", "read"))]


@router.get("/systems/{system_id}/classify", name="wizard")
def wizard(
    request: Request, session: SessionDep, principal: CurrentPrincipal, system: ClassificationReader
) -> Response:
    """The questionnaire, filled from a shared link's answers or else from the current classification."""
    if request.query_params:
        answers = answers_from(request.query_params)
    else:
        current = classification.current_classification(session, system.id)
        answers = dict(current.answers) if current else {}
    result, errors = _evaluate(answers, system) if answers or request.query_params else (None, {})
    return render(
        request,
        "wizard.html",
        wizard_context(session, principal, system, answers, result=result, errors=errors),
    )


@router.post("/systems/{system_id}/classify/preview", name="wizard_preview")
def wizard_preview(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    form: FormDep,
    system: ClassificationReader,
) -> Response:
    """Show what the answers lead to, storing nothing (the no-JavaScript twin of the live preview)."""
    answers = answers_from(form)
    result, errors = _evaluate(answers, system)
    context = wizard_context(session, principal, system, answers, result=result, errors=errors)
    return render(request, "wizard.html", context, status=422 if errors else 200)


@router.post("/systems/{system_id}/classify", name="wizard_save")
def wizard_save(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    form: FormDep,
    system: Annotated[AISystem, Depends(system_access("classification", "create", for_update=True))],
) -> Response:
    """Record the classification: it becomes the system's AI Act class (earlier ones stay in the history)."""
    answers = answers_from(form)
    try:
        row = classification.record_classification(session, system, answers, actor=principal.username)
    except Unprocessable as exc:
        session.rollback()
        context = wizard_context(session, principal, system, answers, errors=field_errors(exc))
        return render(request, "wizard.html", context, status=422)
    flash(
        request,
        f"Classification saved: {system.id} is now {label(row.ai_act_class, 'ai_act_class').lower()}.",
    )
    url = path_for(request, "system_detail", system_id=system.id)
    return RedirectResponse(f"{url}#classification", status_code=303)
