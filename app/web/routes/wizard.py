"""The AI Act classification wizard: the questionnaire step by step, a preview, and saving the result."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.classification import service as classification
from app.classification.catalog import get_catalog
from app.classification.engine import ClassificationResult, parse_answers
from app.db import SessionDep
from app.errors import Unprocessable
from app.identity.dependencies import CurrentPrincipal, Principal
from app.systems.dependencies import system_access
from app.systems.models import AISystem
from app.web.forms import FormDep, checked, field_errors, text, validation_message, values
from app.web.nav import permits
from app.web.paths import path_for
from app.web.session import flash, require_csrf
from app.web.templating import label, render

router = APIRouter(dependencies=[Depends(require_csrf)], include_in_schema=False)

# Form field -> answers key, for the lists of catalogue identifiers.
ID_LISTS = ("scope_exclusions", "prohibited_practices", "annex3_uses", "transparency", "role_change")
FLAGS = (
    "real_world_testing",
    "profiling",
    "gpai_model",
    "gpai_systemic_risk",
    "gpai_systemic_risk_rebutted",
    "gpai_open_source",
    "gpai_placed_before_2025_08_02",
)
# The Art. 6(3) conditions of one Annex III use: field ``art6_3.<use>``. The older field ``art6_3_conditions``
# (shared links made before catalogue 2026-12-06) claims the same conditions for every use.
PER_USE = "art6_3."
LEGACY_CONDITIONS = "art6_3_conditions"


def _flops(raw: str) -> float | str:
    """``3e25`` -> 3e25; anything that is not a number stays text, so validation names the field."""
    try:
        return float(raw.replace("_", "").replace(" ", ""))
    except ValueError:
        return raw


def answers_from(data: Any) -> dict[str, Any]:
    """The contract's ``answers`` from the wizard's fields (a posted form or a shared link's query)."""
    answers: dict[str, Any] = {}
    for key in ID_LISTS:
        if chosen := values(data, key):
            answers[key] = chosen
    if exception := text(data, "art5_1_h_exception"):
        answers["art5_1_h_exception"] = exception
    legislation = text(data, "annex1_legislation") or None
    safety, third_party = checked(data, "annex1_safety_component"), checked(data, "annex1_third_party")
    if legislation or safety or third_party:
        answers["annex1"] = {
            "legislation": legislation,
            "safety_component": safety,
            "third_party_conformity_assessment": third_party,
        }
    uses = answers.get("annex3_uses", [])
    if legacy := values(data, LEGACY_CONDITIONS):
        answers["art6_3_conditions"] = legacy
    else:
        # Only uses still ticked count (a hidden group may keep ticks of a use unticked since).
        per_use = {u: c for u in uses if (c := values(data, PER_USE + u))}
        if per_use:
            # One use: the plain list says the same (and reads like every classification before it).
            answers["art6_3_conditions"] = next(iter(per_use.values())) if len(uses) == 1 else per_use
    for key in FLAGS:
        if checked(data, key):
            answers[key] = True
    if flops := text(data, "gpai_training_flops"):
        answers["gpai_training_flops"] = _flops(flops)
    return answers


def as_of_from(data: Any) -> tuple[date | None, dict[str, str]]:
    """The wizard's ``as_of`` date field (empty: today), or the error to show beside it."""
    raw = text(data, "as_of")
    if not raw:
        return None, {}
    try:
        return date.fromisoformat(raw), {}
    except ValueError:
        return None, {"as_of": validation_message("as_of", "date_parsing")}


def answers_query(answers: dict[str, Any], as_of: date | None = None) -> str:
    """The answers as the wizard's query string, so a preview can be shared as a link."""
    pairs: list[tuple[str, str]] = [(key, v) for key in ID_LISTS for v in answers.get(key, [])]
    if answers.get("art5_1_h_exception"):
        pairs.append(("art5_1_h_exception", answers["art5_1_h_exception"]))
    annex1 = answers.get("annex1") or {}
    if annex1.get("legislation"):
        pairs.append(("annex1_legislation", annex1["legislation"]))
    if annex1.get("safety_component"):
        pairs.append(("annex1_safety_component", "on"))
    if annex1.get("third_party_conformity_assessment"):
        pairs.append(("annex1_third_party", "on"))
    conditions = answers.get("art6_3_conditions") or []
    if isinstance(conditions, dict):
        pairs += [(PER_USE + use, c) for use, cs in conditions.items() for c in cs]
    else:
        pairs += [(LEGACY_CONDITIONS, c) for c in conditions]
    pairs += [(key, "on") for key in FLAGS if answers.get(key)]
    flops = answers.get("gpai_training_flops")
    if flops is not None:
        pairs.append(("gpai_training_flops", f"{flops:g}" if isinstance(flops, float) else str(flops)))
    if as_of is not None:
        pairs.append(("as_of", as_of.isoformat()))
    return urlencode(pairs)


def questionnaire() -> dict[str, Any]:
    """The catalogue's entries the questions offer, grouped the way the Act groups them."""
    catalog = get_catalog()
    ai = catalog.ai_act
    areas: dict[str, list[Any]] = {}
    for use in ai.annex3_uses:
        areas.setdefault(f"{use.area}. {use.area_title}", []).append(use)
    sections: dict[str, list[Any]] = {}
    for leg in ai.annex1_legislation:
        sections.setdefault(leg.section, []).append(leg)
    return {
        "exclusions": ai.scope_exclusions,
        "practices": ai.prohibited_practices,
        "exceptions": [(p, e) for p in ai.prohibited_practices for e in p.exceptions],
        "legislation": sections,
        "annex3_areas": areas,
        "annex3_uses": ai.annex3_uses,
        "conditions": ai.art6_3_conditions,
        "transparency": ai.transparency_duties,
        "role_changes": [c for c in ai.role_changes if not c.automatic],
        "automatic_changes": [c for c in ai.role_changes if c.automatic],
        "gpai_duties": ai.gpai_duties,
        "gpai_rules": ai.gpai_rules,
        "catalog_version": catalog.catalog_version,
        "legal_basis": catalog.legal_basis,
    }


def identifier_titles() -> dict[str, str]:
    """Title of every AI Act identifier a classification's basis can name (from the catalogue)."""
    ai = get_catalog().ai_act
    tables = (
        ai.exclusion_by_id,
        ai.practice_by_id,
        ai.legislation_by_id,
        ai.annex3_by_id,
        ai.condition_by_id,
        ai.transparency_by_id,
        ai.role_change_by_id,
        ai.scope_rule_by_id,
    )
    titles = {key: entry.title for table in tables for key, entry in table.items()}
    titles.update({key: exc.title for key, (_, exc) in ai.exception_by_id.items()})
    if rule := ai.gpai_rules.systemic_risk_presumption:
        titles[rule.id] = "Systemic risk presumed from the training compute"
    return titles


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
    as_of: date | None = None,
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
        "share_query": answers_query(answers, as_of),
        "as_of": as_of,
        "flops": answers.get("gpai_training_flops"),
    }


def _selected(answers: dict[str, Any]) -> set[str]:
    """Every identifier and flag the answers hold, for checking boxes in the template.

    An Art. 6(3) condition is ``<use>|<condition>`` (a list of conditions counts for every use).
    """
    chosen: set[str] = {v for key in ID_LISTS for v in answers.get(key, [])}
    if answers.get("art5_1_h_exception"):
        chosen.add(answers["art5_1_h_exception"])
    annex1 = answers.get("annex1") or {}
    if annex1.get("legislation"):
        chosen.add(annex1["legislation"])
    chosen |= {key for key in ("safety_component", "third_party_conformity_assessment") if annex1.get(key)}
    chosen |= {key for key in FLAGS if answers.get(key)}
    conditions = answers.get("art6_3_conditions") or []
    if isinstance(conditions, dict):
        chosen |= {f"{use}|{c}" for use, cs in conditions.items() if isinstance(cs, list) for c in cs}
    else:
        chosen |= {f"{use}|{c}" for use in answers.get("annex3_uses", []) for c in conditions}
    return chosen


def _evaluate(
    answers: dict[str, Any], system: AISystem, as_of: date | None = None
) -> tuple[ClassificationResult | None, dict[str, str]]:
    try:
        parsed = parse_answers(answers, loc=classification.ANSWERS_LOC)
        return classification.preview(parsed, system.ai_act_role.value, as_of), {}
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
    as_of, errors = as_of_from(request.query_params)
    result = None
    if (answers or request.query_params) and not errors:
        result, errors = _evaluate(answers, system, as_of)
    return render(
        request,
        "wizard.html",
        wizard_context(session, principal, system, answers, result=result, errors=errors, as_of=as_of),
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
    as_of, errors = as_of_from(form)
    result = None
    if not errors:
        result, errors = _evaluate(answers, system, as_of)
    context = wizard_context(session, principal, system, answers, result=result, errors=errors, as_of=as_of)
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
    as_of, errors = as_of_from(form)
    try:
        if errors:
            raise Unprocessable("as_of: not a date", errors=[{"loc": ["as_of"], "msg": errors["as_of"]}])
        row = classification.record_classification(
            session, system, answers, actor=principal.username, as_of=as_of
        )
    except Unprocessable as exc:
        session.rollback()
        context = wizard_context(session, principal, system, answers, errors=field_errors(exc), as_of=as_of)
        return render(request, "wizard.html", context, status=422)
    flash(
        request,
        f"Classification saved: {system.id} is now {label(row.ai_act_class, 'ai_act_class').lower()}.",
    )
    url = path_for(request, "system_detail", system_id=system.id)
    return RedirectResponse(f"{url}#classification", status_code=303)
