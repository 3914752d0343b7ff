"""EU AI Act classification: answers in, class, basis, obligations and rationale out. Pure logic, no I/O.

The rules of Art. 5, 6 and 50 are code below; every identifier, title, date and which obligation binds which
role on which route is data in the risk catalogue (``risk_catalog/ai_act.yaml``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from app.classification.catalog import AIActCatalog, Catalog, cite, get_catalog
from app.errors import Unprocessable

__all__ = [
    "AIActClass",
    "Annex1Answers",
    "ClassificationAnswers",
    "ClassificationResult",
    "Obligation",
    "classify",
    "parse_answers",
    "validate_answers",
]

DEFAULT_LOC: tuple[str, ...] = ("body", "answers")


class AIActClass(StrEnum):
    """Risk class of an AI system under the AI Act."""

    PROHIBITED = "prohibited"
    HIGH_RISK = "high_risk"
    LIMITED_RISK = "limited_risk"
    MINIMAL_RISK = "minimal_risk"


# Input bounds (issue 9): an identifier is short and no list can be longer than the catalogue it names.
CatalogId = Annotated[StrictStr, Field(max_length=40)]
MAX_IDS = 40


class Annex1Answers(BaseModel):
    """Art. 6(1): the Annex I legislation covering the product, and the two conditions."""

    model_config = ConfigDict(extra="forbid")

    legislation: CatalogId | None = None
    # "A safety component of the product, or the product itself", as narrowed by Art. 6(1a)-(1c).
    safety_component: StrictBool = False
    # Art. 6(1)(b); Art. 6(1c): an assessment needed only for non-safety reasons (EMC, radio) does not count.
    third_party_conformity_assessment: StrictBool = False


class ClassificationAnswers(BaseModel):
    """The classification questionnaire, exactly as the public contract's ``answers`` (all keys optional)."""

    model_config = ConfigDict(extra="forbid")

    prohibited_practices: list[CatalogId] = Field(default_factory=list, max_length=MAX_IDS)
    annex1: Annex1Answers | None = None
    annex3_uses: list[CatalogId] = Field(default_factory=list, max_length=MAX_IDS)
    art6_3_conditions: list[CatalogId] = Field(default_factory=list, max_length=MAX_IDS)
    profiling: StrictBool = False
    transparency: list[CatalogId] = Field(default_factory=list, max_length=MAX_IDS)
    gpai_model: StrictBool = False
    gpai_systemic_risk: StrictBool = False


class Obligation(BaseModel):
    """One duty in a classification result, with the date it binds from."""

    id: str
    title: str
    applies_from: date
    in_force: bool
    condition: str | None = None


class ClassificationResult(BaseModel):
    """Outcome of ``classify``: the class, the ids that decided it, the duties and a readable rationale."""

    ai_act_class: AIActClass
    basis: list[str]
    transparency_obligations: list[str]
    obligations: list[Obligation]
    gpai_obligations: list[str]
    rationale: str
    catalog_version: str


# ------------------------------------------------------------------------------------------- validation

# Answer lists of identifiers: (field, AIActCatalog lookup property, what the field expects).
_ID_LISTS: tuple[tuple[str, str, str], ...] = (
    ("prohibited_practices", "practice_by_id", "an Art. 5(1) prohibited practice"),
    ("annex3_uses", "annex3_by_id", "an Annex III use"),
    ("art6_3_conditions", "condition_by_id", "an Art. 6(3) condition"),
    ("transparency", "transparency_by_id", "an Art. 50 transparency duty"),
)


def _unknown_msg(ai: AIActCatalog, value: str, expected: str) -> str:
    """Message for an identifier that is not of the expected kind, with a hint when we know better."""
    msg = f"unknown identifier {value!r}: expected {expected}"
    withdrawn = ai.withdrawn_by_id.get(value)
    if withdrawn is not None:
        use = f" Use {withdrawn.replaced_by!r}." if withdrawn.replaced_by else ""
        return f"{msg}; {withdrawn.note}{use}"
    kind = ai.kind_of(value)
    if kind is not None:
        return f"{msg}, but {value!r} is {kind}"
    return msg


def _answer_errors(
    answers: ClassificationAnswers, ai: AIActCatalog, loc: Sequence[str]
) -> list[dict[str, Any]]:
    """Every semantic problem of structurally valid answers, each with its ``loc``."""
    errors: list[dict[str, Any]] = []
    for field, lookup, expected in _ID_LISTS:
        table = getattr(ai, lookup)
        first: dict[str, int] = {}
        for i, value in enumerate(getattr(answers, field)):
            if value not in table:
                errors.append({"loc": [*loc, field, i], "msg": _unknown_msg(ai, value, expected)})
            elif value in first:
                errors.append(
                    {
                        "loc": [*loc, field, i],
                        "msg": f"duplicate identifier {value!r} (also at {first[value]})",
                    }
                )
            else:
                first[value] = i
    a1 = answers.annex1
    if a1 is not None:
        if a1.legislation is None:
            if a1.safety_component or a1.third_party_conformity_assessment:
                msg = "required when safety_component or third_party_conformity_assessment is true"
                errors.append({"loc": [*loc, "annex1", "legislation"], "msg": msg})
        elif a1.legislation not in ai.legislation_by_id:
            errors.append(
                {
                    "loc": [*loc, "annex1", "legislation"],
                    "msg": _unknown_msg(
                        ai, a1.legislation, "an Annex I legislation (annex1.a.N or annex1.b.N)"
                    ),
                }
            )
    # AI Act Art. 6(3): the derogation exists only for Annex III systems.
    if answers.art6_3_conditions and not answers.annex3_uses:
        msg = "Art. 6(3) conditions only apply to an Annex III use; give annex3_uses or leave this out"
        errors.append({"loc": [*loc, "art6_3_conditions"], "msg": msg})
    # AI Act Art. 51: systemic risk is a property of a general-purpose AI model.
    if answers.gpai_systemic_risk and not answers.gpai_model:
        errors.append(
            {"loc": [*loc, "gpai_systemic_risk"], "msg": "systemic risk needs gpai_model to be true"}
        )
    return errors


def _raise(errors: list[dict[str, Any]]) -> None:
    """Raise one 422 carrying every error."""
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise Unprocessable(f"{where}: {first['msg']}{more}", errors=errors)


def parse_answers(
    data: ClassificationAnswers | Mapping[str, Any],
    catalog: Catalog | None = None,
    *,
    loc: Sequence[str] = DEFAULT_LOC,
) -> ClassificationAnswers:
    """Validate raw answers (types, keys and identifiers) and return them as a model; 422 on any problem."""
    if isinstance(data, ClassificationAnswers):
        answers = data
    else:
        try:
            answers = ClassificationAnswers.model_validate(data)
        except ValidationError as exc:
            _raise([{"loc": [*loc, *e["loc"]], "msg": e["msg"]} for e in exc.errors(include_url=False)])
    errors = _answer_errors(answers, (catalog or get_catalog()).ai_act, loc)
    if errors:
        _raise(errors)
    return answers


def validate_answers(
    answers: ClassificationAnswers | Mapping[str, Any],
    catalog: Catalog | None = None,
    *,
    loc: Sequence[str] = DEFAULT_LOC,
) -> None:
    """Raise ``Unprocessable`` naming every bad field; loc e.g. ``["body", "answers", "annex3_uses", 0]``."""
    parse_answers(answers, catalog, loc=loc)


# ------------------------------------------------------------------------------------------ classification


def _cites(ids: Sequence[str]) -> str:
    """``["art50.1", "art50.3"]`` -> ``Art. 50(1) and Art. 50(3)``."""
    names = [cite(i) for i in ids]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _select_obligations(
    ai: AIActCatalog, routes: Sequence[str], role: str, uses: Sequence[str], transparency: Sequence[str]
) -> dict[str, tuple[date, str | None]]:
    """Obligation id -> (applies_from, condition) from the obligation sets for the routes and role.

    When several sets give one duty, an unconditional set beats a conditional one, then the earliest date.
    """
    chosen: dict[str, tuple[date, str | None]] = {}
    for route in routes:
        for s in ai.sets_for(route, role):
            if not s.matches(uses):
                continue
            for oid in s.obligations:
                old = chosen.get(oid)
                if (
                    old is None
                    or (old[1] is not None and s.condition is None)
                    or ((old[1] is None) == (s.condition is None) and s.applies_from < old[0])
                ):
                    chosen[oid] = (s.applies_from, s.condition)
    # AI Act Art. 50: each transparency duty binds the role the Act names (provider or deployer).
    for tid in transparency:
        duty = ai.transparency_by_id[tid]
        if role in duty.binds and tid not in chosen:
            chosen[tid] = (duty.applies_from, None)
    return chosen


def _title(ai: AIActCatalog, oid: str) -> str:
    """Title of an obligation or Art. 50 duty."""
    ob = ai.obligation_by_id.get(oid)
    return ob.title if ob is not None else ai.transparency_by_id[oid].title


def _timeline(obligations: Sequence[Obligation], role: str, today: date) -> str:
    """Sentence saying which duties bind now and which later, grouped by date."""
    if not obligations:
        return f"No obligation is listed for the {role} role."
    now = [o for o in obligations if o.in_force]
    later: dict[date, list[str]] = {}
    for o in obligations:
        if not o.in_force:
            later.setdefault(o.applies_from, []).append(o.id)
    parts = []
    if now:
        parts.append(f"binding now: {_cites([o.id for o in now])}")
    parts.extend(f"from {d.isoformat()}: {_cites(ids)}" for d, ids in sorted(later.items()))
    conditional = [o.id for o in obligations if o.condition]
    tail = f" ({_cites(conditional)} only under the stated condition)" if conditional else ""
    return f"For the {role} as of {today.isoformat()}, " + "; ".join(parts) + tail + "."


def _route_rationale(
    ai: AIActCatalog,
    answers: ClassificationAnswers,
    uses: Sequence[str],
    conditions: Sequence[str],
    *,
    art6_1: bool,
    art6_2: bool,
) -> list[str]:
    """Sentences explaining how Art. 6(1), 6(2) and 6(3) decided, or did not decide, the class."""
    out: list[str] = []
    a1 = answers.annex1
    if a1 is not None and a1.legislation is not None:
        leg = ai.legislation_by_id[a1.legislation]
        product = f"{cite(leg.id)} ({leg.act}, {leg.title})"
        if art6_1:
            out.append(
                f"Art. 6(1): it is a safety component of, or is itself, a product under {product} that "
                "needs a third-party conformity assessment, so it is high-risk."
            )
            # AI Act Art. 2(2): the catalogue's route note says what reaches a Section B product.
            if note := ai.route_by_id[leg.route].note:
                out.append(note)
        else:
            missing = [
                text
                for ok, text in (
                    (a1.safety_component, "a safety component (Art. 6(1a)-(1c))"),
                    (
                        a1.third_party_conformity_assessment,
                        "a third-party conformity assessment (Art. 6(1)(b))",
                    ),
                )
                if not ok
            ]
            out.append(
                f"{product} covers the product, but without {' or '.join(missing)} Art. 6(1) does not apply."
            )
    if uses:
        listed = "; ".join(f"{cite(u)} ({ai.annex3_by_id[u].title})" for u in uses)
        if art6_2:
            out.append(f"Art. 6(2): it is used for {listed}, so it is high-risk.")
            if conditions:
                out.append(
                    f"{_cites(conditions)} was claimed, but the system profiles natural persons, so the "
                    "Art. 6(3) derogation does not apply (profiling is always high-risk)."
                )
        else:
            out.append(
                f"It is used for {listed}, but {_cites(conditions)} holds and it does not profile natural "
                "persons, so under Art. 6(3) that use does not make it high-risk."
            )
            if note := ai.route_by_id["art6.3"].note:
                out.append(note)
    return out


def classify(
    answers: ClassificationAnswers | Mapping[str, Any],
    *,
    ai_act_role: str = "provider",
    catalog: Catalog | None = None,
    today: date | None = None,
) -> ClassificationResult:
    """Classify an AI system under the AI Act from its answers, for one operator role, as of ``today``."""
    cat = catalog or get_catalog()
    ai = cat.ai_act
    answers = parse_answers(answers, cat)
    if ai_act_role not in ai.roles:
        raise Unprocessable(
            f"ai_act_role: unknown role {ai_act_role!r}",
            errors=[{"loc": ["body", "ai_act_role"], "msg": f"expected one of {', '.join(ai.roles)}"}],
        )
    if today is None:
        today = datetime.now(UTC).date()
    order = ai.obligation_order
    rationale: list[str] = []

    pos = ai.position.__getitem__
    practices = [ai.practice_by_id[p] for p in sorted(answers.prohibited_practices, key=pos)]
    uses = sorted(answers.annex3_uses, key=pos)
    conditions = sorted(answers.art6_3_conditions, key=pos)
    transparency = sorted(answers.transparency, key=pos)

    # AI Act Art. 6(1): a safety component (Art. 6(1a)-(1c)) of an Annex I product needing a third-party
    # conformity assessment.
    a1 = answers.annex1
    leg = ai.legislation_by_id[a1.legislation] if a1 is not None and a1.legislation is not None else None
    art6_1 = (
        leg is not None and a1 is not None and a1.safety_component and a1.third_party_conformity_assessment
    )
    # AI Act Art. 6(2)-(3): an Annex III use is high-risk unless an Art. 6(3) condition holds and there is no
    # profiling of natural persons (profiling always stays high-risk).
    derogated = bool(uses) and bool(conditions) and not answers.profiling
    art6_2 = bool(uses) and not derogated

    if practices:
        ai_act_class = AIActClass.PROHIBITED
    elif art6_1 or art6_2:
        ai_act_class = AIActClass.HIGH_RISK
    elif transparency:
        ai_act_class = AIActClass.LIMITED_RISK
    else:
        ai_act_class = AIActClass.MINIMAL_RISK

    basis: list[str] = []
    obligations: list[Obligation]
    if practices:
        # AI Act Art. 5: the practice may not be placed on the market, put into service or used at all.
        basis = [p.id for p in practices]
        obligations = [
            Obligation(
                id=p.id,
                title=f"Do not place on the market, put into service or use: {p.title}",
                applies_from=p.applies_from,
                in_force=p.applies_from <= today,
            )
            for p in practices
        ]
        for p in practices:
            when = "since" if p.applies_from <= today else "from"
            rationale.append(
                f"{cite(p.id)} ({p.title}) prohibits this practice {when} {p.applies_from.isoformat()}, "
                "so the system is prohibited and must not be placed on the market, put into service or used."
            )
        would = ([f"Art. 6(1) ({cite(leg.id)})"] if art6_1 and leg is not None else []) + (
            [f"Art. 6(2) ({_cites(uses)})"] if art6_2 else []
        )
        if would:
            rationale.append(
                f"Without the prohibition it would be high-risk under {' and '.join(would)}; "
                "no high-risk obligation is listed because the system may not be used."
            )
    else:
        routes = ["any"]
        if art6_1 and leg is not None:
            basis += ["art6.1", leg.id]
            routes.append(leg.route)
        if art6_2:
            basis += ["art6.2", *uses]
            routes.append("annex3")
        if derogated:
            routes.append("art6.3")
            if not art6_1:
                basis += ["art6.3", *conditions]
        if ai_act_class is AIActClass.LIMITED_RISK:
            basis += transparency
        chosen = _select_obligations(ai, routes, ai_act_role, uses, transparency)
        obligations = [
            Obligation(
                id=oid,
                title=_title(ai, oid),
                applies_from=applies_from,
                in_force=applies_from <= today,
                condition=condition,
            )
            for oid, (applies_from, condition) in sorted(chosen.items(), key=lambda kv: order[kv[0]])
        ]

    if not practices:
        rationale.extend(_route_rationale(ai, answers, uses, conditions, art6_1=art6_1, art6_2=art6_2))
    if ai_act_class is AIActClass.LIMITED_RISK:
        rationale.append(
            f"No high-risk route applies; the transparency duties of {_cites(transparency)} "
            "make it limited risk."
        )
    elif ai_act_class is AIActClass.MINIMAL_RISK:
        rationale.append(
            "No Art. 5 practice, no Art. 6 high-risk route and no Art. 50 duty applies: minimal risk."
        )
    if transparency and ai_act_class is not AIActClass.LIMITED_RISK:
        rationale.append(f"Transparency duties under {_cites(transparency)} apply in addition (Art. 50(6)).")

    # AI Act Chapter V: model duties sit beside the system's class and never change it.
    gpai: list[str] = []
    if answers.gpai_model:
        gpai = [d.id for d in ai.gpai_duties if answers.gpai_systemic_risk or not d.systemic_risk_only]
        since = min(ai.gpai_by_id[g].applies_from for g in gpai)
        rationale.append(
            f"As a general-purpose AI model{' with systemic risk' if answers.gpai_systemic_risk else ''} "
            f"it carries {_cites(gpai)} duties (from {since.isoformat()}), "
            "which do not change the system's class."
        )
    rationale.append(_timeline(obligations, ai_act_role, today))

    return ClassificationResult(
        ai_act_class=ai_act_class,
        basis=basis,
        transparency_obligations=transparency,
        obligations=obligations,
        gpai_obligations=gpai,
        rationale=" ".join(rationale),
        catalog_version=cat.catalog_version,
    )
