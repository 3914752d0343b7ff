"""EU AI Act classification: answers in, class, basis, obligations and rationale out. Pure logic, no I/O.

The engine is a generic evaluator over the risk catalogue (``risk_catalog/ai_act.yaml``): every identifier,
title and date, which role a ban or duty binds, what an Art. 2 exclusion never covers, which operator an
Art. 25 change makes the provider, the GPAI threshold and exemptions, and which obligation binds which role on
which route, is data there. The code below knows the shape of the Act (Art. 5 before Art. 6 before Art. 50,
Art. 2 over all of them, the Art. 6(1) and 6(3) tests) and how dates decide: a practice or duty whose
``applies_from`` is after ``as_of`` never decides the class; it is listed as upcoming.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictStr,
    ValidationError,
)

from app.classification.catalog import (
    AIActCatalog,
    Catalog,
    Legislation,
    Practice,
    PracticeException,
    ScopeExclusion,
    cite,
    get_catalog,
)
from app.errors import Unprocessable

__all__ = [
    "AIActClass",
    "Annex1Answers",
    "ClassificationAnswers",
    "ClassificationResult",
    "NextChange",
    "Obligation",
    "ReportingDuty",
    "Upcoming",
    "classify",
    "incident_reporting",
    "parse_answers",
    "validate_answers",
]

DEFAULT_LOC: tuple[str, ...] = ("body", "answers")


class AIActClass(StrEnum):
    """Risk class of an AI system under the AI Act (``out_of_scope``: an Art. 2 exclusion holds)."""

    PROHIBITED = "prohibited"
    HIGH_RISK = "high_risk"
    LIMITED_RISK = "limited_risk"
    MINIMAL_RISK = "minimal_risk"
    OUT_OF_SCOPE = "out_of_scope"


# Input bounds (issue 9): an identifier is short and no list can be longer than the catalogue it names.
CatalogId = Annotated[StrictStr, Field(max_length=40)]
MAX_IDS = 40
IdList = Annotated[list[CatalogId], Field(max_length=MAX_IDS)]
# A finite, non-negative JSON number (an int such as 10**25 is taken as well); no strings, no booleans.
Flops = Annotated[float, Strict(), AllowInfNan(False), Field(ge=0)]


class Annex1Answers(BaseModel):
    """Art. 6(1): the Annex I legislation covering the product, and the two conditions."""

    model_config = ConfigDict(extra="forbid")

    legislation: CatalogId | None = None
    # "A safety component of the product, or the product itself", as narrowed by Art. 6(1a)-(1c).
    safety_component: StrictBool = False
    # Art. 6(1)(b); Art. 6(1c): an assessment needed only for non-safety reasons (EMC, radio) does not count.
    third_party_conformity_assessment: StrictBool = False


class ClassificationAnswers(BaseModel):
    """The classification questionnaire, exactly as the public contract's ``answers`` (all keys optional).

    ``art6_3_conditions`` is a list (the conditions claimed for every Annex III use) or a mapping of Annex III
    use to its own list: the Art. 6(3) test is made per use.
    """

    model_config = ConfigDict(extra="forbid")

    scope_exclusions: IdList = Field(
        default_factory=list,
        description="Art. 2 exclusions claimed: art2.3, art2.4, art2.6, art2.8, art2.10, art2.12",
    )
    real_world_testing: StrictBool = Field(
        default=False, description="Tested in real-world conditions (Art. 2(8) never covers that)"
    )
    prohibited_practices: IdList = Field(
        default_factory=list, description="Art. 5(1) practices: art5.1.a ..."
    )
    art5_1_h_exception: CatalogId | None = Field(
        default=None, description="Art. 5(1)(h) exception the use falls under: art5.1.h.i, .ii or .iii"
    )
    annex1: Annex1Answers | None = None
    annex3_uses: IdList = Field(default_factory=list, description="Annex III uses: annex3.1.a ... annex3.8.b")
    art6_3_conditions: IdList | Annotated[dict[CatalogId, IdList], Field(max_length=MAX_IDS)] = Field(
        default_factory=list,
        description="Art. 6(3) conditions: one list for every Annex III use, or a mapping of use to its list",
    )
    profiling: StrictBool = False
    transparency: IdList = Field(default_factory=list, description="Art. 50 duties: art50.1 ... art50.4")
    role_change: IdList = Field(
        default_factory=list, description="Art. 25(1) changes making the operator the provider: art25.1.a-c"
    )
    gpai_model: StrictBool = False
    gpai_systemic_risk: StrictBool = False
    gpai_training_flops: Flops | None = Field(
        default=None, description="Cumulative training compute in FLOP; from 1e25 systemic risk is presumed"
    )
    gpai_systemic_risk_rebutted: StrictBool = Field(
        default=False, description="The Commission accepted the Art. 52(2) rebuttal of the presumption"
    )
    gpai_open_source: StrictBool = Field(default=False, description="Free and open-source model (Art. 53(2))")
    gpai_placed_before_2025_08_02: StrictBool = Field(
        default=False, description="Placed on the market before 2 Aug 2025 (Art. 111(3))"
    )

    def conditions_for(self, use: str) -> list[str]:
        """The Art. 6(3) conditions claimed for one Annex III use."""
        c = self.art6_3_conditions
        return c.get(use, []) if isinstance(c, dict) else c


class Obligation(BaseModel):
    """One duty in a classification result, with the date it binds from."""

    id: str
    title: str
    applies_from: date
    in_force: bool
    condition: str | None = None


class Upcoming(BaseModel):
    """A practice or duty the answers name that does not apply yet on ``as_of``."""

    id: str
    title: str
    applies_from: date
    kind: str  # practice | transparency | obligation | gpai


class NextChange(BaseModel):
    """The first later date on which an upcoming practice or duty changes the class, and the class then."""

    on: date
    ai_act_class: AIActClass


class ReportingLimit(BaseModel):
    """Art. 73(9)-(10): only these incident kinds are reported under the AI Act (if the condition holds)."""

    id: str
    kinds: list[str]
    condition: str | None = None


class ReportingDuty(BaseModel):
    """An incident-reporting duty of the result (Art. 73, Art. 55(1)(c)): where to, from when, its limits."""

    id: str
    applies_from: date
    report_to: str
    limits: list[ReportingLimit] = Field(default_factory=list)


class ClassificationResult(BaseModel):
    """Outcome of ``classify``: the class, the ids that decided it, the duties and a readable rationale."""

    ai_act_class: AIActClass
    basis: list[str]
    transparency_obligations: list[str]
    obligations: list[Obligation]
    gpai_obligations: list[str]
    rationale: str
    catalog_version: str
    effective_role: str
    as_of: date | None = None  # None only on classifications stored before catalogue 2026-12-06
    upcoming: list[Upcoming] = Field(default_factory=list)
    next_change: NextChange | None = None
    gpai_duties: list[Obligation] = Field(default_factory=list)
    incident_reporting: list[ReportingDuty] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------- validation

# Answer lists of identifiers: (field, AIActCatalog lookup property, what the field expects).
_ID_LISTS: tuple[tuple[str, str, str], ...] = (
    ("scope_exclusions", "exclusion_by_id", "an Art. 2 scope exclusion"),
    ("prohibited_practices", "practice_by_id", "an Art. 5(1) prohibited practice"),
    ("annex3_uses", "annex3_by_id", "an Annex III use"),
    ("transparency", "transparency_by_id", "an Art. 50 transparency duty"),
    ("role_change", "answerable_role_change_by_id", "an Art. 25(1) role change"),
)
# GPAI answers that describe a model, so need gpai_model (Art. 3(63)), and what they say in words.
_GPAI_DETAILS = {
    "gpai_systemic_risk": "systemic risk",
    "gpai_training_flops": "training compute",
    "gpai_systemic_risk_rebutted": "a rebutted systemic-risk presumption",
    "gpai_open_source": "an open-source model",
    "gpai_placed_before_2025_08_02": "a model placed on the market before 2 Aug 2025",
}


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


def _id_errors(
    values: Sequence[str], table: Mapping[str, Any], expected: str, ai: AIActCatalog, loc: list[Any]
) -> list[dict[str, Any]]:
    """Unknown and duplicate identifiers of one answer list."""
    errors: list[dict[str, Any]] = []
    first: dict[str, int] = {}
    for i, value in enumerate(values):
        if value not in table:
            errors.append({"loc": [*loc, i], "msg": _unknown_msg(ai, value, expected)})
        elif value in first:
            errors.append(
                {"loc": [*loc, i], "msg": f"duplicate identifier {value!r} (also at {first[value]})"}
            )
        else:
            first[value] = i
    return errors


def _answer_errors(
    answers: ClassificationAnswers, ai: AIActCatalog, loc: Sequence[str]
) -> list[dict[str, Any]]:
    """Every semantic problem of structurally valid answers, each with its ``loc``."""
    errors: list[dict[str, Any]] = []
    for name, lookup, expected in _ID_LISTS:
        errors += _id_errors(getattr(answers, name), getattr(ai, lookup), expected, ai, [*loc, name])
    exc = answers.art5_1_h_exception
    if exc is not None:
        owner = ai.exception_by_id.get(exc)
        if owner is None:
            msg = _unknown_msg(ai, exc, "an exception to an Art. 5(1) prohibition (art5.1.h.i ... iii)")
            errors.append({"loc": [*loc, "art5_1_h_exception"], "msg": msg})
        elif owner[0].id not in answers.prohibited_practices:
            msg = f"{exc!r} is an exception to {owner[0].id}; name {owner[0].id!r} in prohibited_practices"
            errors.append({"loc": [*loc, "art5_1_h_exception"], "msg": msg})
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
    errors += _derogation_errors(answers, ai, [*loc, "art6_3_conditions"])
    # AI Act Art. 3(63), 51: these answers describe a general-purpose AI model.
    if not answers.gpai_model:
        set_ = answers.model_fields_set
        for name, words in _GPAI_DETAILS.items():
            if name in set_ and getattr(answers, name) not in (None, False):
                errors.append({"loc": [*loc, name], "msg": f"{words} needs gpai_model to be true"})
    rule = ai.gpai_rules.systemic_risk_presumption
    if answers.gpai_systemic_risk_rebutted and answers.gpai_model:
        flops = answers.gpai_training_flops
        if rule is None or flops is None or flops < rule.threshold_flops:
            msg = "a rebuttal needs gpai_training_flops at or above the systemic-risk threshold"
            errors.append({"loc": [*loc, "gpai_systemic_risk_rebutted"], "msg": msg})
        elif answers.gpai_systemic_risk:
            msg = "contradicts gpai_systemic_risk: a rebutted presumption leaves no systemic risk"
            errors.append({"loc": [*loc, "gpai_systemic_risk_rebutted"], "msg": msg})
    return errors


def _derogation_errors(
    answers: ClassificationAnswers, ai: AIActCatalog, loc: list[Any]
) -> list[dict[str, Any]]:
    """Art. 6(3): conditions only for Annex III uses, known conditions, per use when given as a mapping."""
    given = answers.art6_3_conditions
    if not given:
        return []
    if not answers.annex3_uses:
        msg = "Art. 6(3) conditions only apply to an Annex III use; give annex3_uses or leave this out"
        return [{"loc": loc, "msg": msg}]
    expected = "an Art. 6(3) condition"
    if isinstance(given, list):
        return _id_errors(given, ai.condition_by_id, expected, ai, loc)
    errors: list[dict[str, Any]] = []
    for use, conditions in given.items():
        if use not in answers.annex3_uses:
            msg = f"{use!r} is not one of annex3_uses; the Art. 6(3) test is made for each listed use"
            errors.append({"loc": [*loc, use], "msg": msg})
        errors += _id_errors(conditions, ai.condition_by_id, expected, ai, [*loc, use])
    return errors


def _raise(errors: list[dict[str, Any]]) -> None:
    """Raise one 422 carrying every error."""
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise Unprocessable(f"{where}: {first['msg']}{more}", errors=errors)


def _structural_errors(exc: ValidationError, data: Any, loc: Sequence[str]) -> list[dict[str, Any]]:
    """Pydantic's errors with their ``loc``; for a list-or-mapping field only the branch the input took."""
    out: list[dict[str, Any]] = []
    shapes: set[str | int] = set()
    for e in exc.errors(include_url=False):
        where = list(e["loc"])
        if len(where) > 1 and isinstance(where[1], str) and "[" in where[1]:  # a union branch tag
            raw = data.get(where[0]) if isinstance(data, Mapping) else None
            taken = "dict" if isinstance(raw, Mapping) else "list" if isinstance(raw, list) else None
            if taken is None:
                if where[0] not in shapes:
                    shapes.add(where[0])
                    msg = "should be a list of identifiers, or a mapping of Annex III use to such a list"
                    out.append({"loc": [*loc, where[0]], "msg": msg})
                continue
            if not where[1].startswith(taken):
                continue
            where = [where[0], *where[2:]]
        out.append({"loc": [*loc, *where], "msg": e["msg"]})
    return out


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
            _raise(_structural_errors(exc, data, loc))
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


def _cites(ids: Iterable[str]) -> str:
    """``["art50.1", "art50.3"]`` -> ``Art. 50(1) and Art. 50(3)``."""
    names = [cite(i) for i in ids]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _words(items: Iterable[str], last: str = "and") -> str:
    """``["a", "b", "c"]`` -> ``a, b and c``."""
    names = [str(i).replace("_", " ") for i in items]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {last} " + names[-1]


_CLASS_WORDS = {
    AIActClass.PROHIBITED: "prohibited",
    AIActClass.HIGH_RISK: "high-risk",
    AIActClass.LIMITED_RISK: "limited risk",
    AIActClass.MINIMAL_RISK: "minimal risk",
    AIActClass.OUT_OF_SCOPE: "out of scope",
}
# What an Art. 2 exclusion can never cover or be defeated by, in words (the catalogue names them).
_LIMIT_WORDS = {
    "prohibited": "a prohibited practice",
    "high_risk": "a high-risk system",
    "transparency": "a system with Art. 50 duties",
    "real_world_testing": "testing in real-world conditions",
}


@dataclass(slots=True)
class _Decision:
    """What decides the class on one date: the in-scope class and the facts behind it."""

    cls: AIActClass
    banned: list[Practice]  # practices in force whose ban reaches the role
    excepted: list[tuple[Practice, PracticeException]]  # in force, used under an exception
    redirected: list[Practice]  # practices whose ban does not reach the role: they count as an Annex III use
    pending: list[tuple[str, str, date, str]]  # (id, title, applies_from, kind) not deciding yet
    leg: Legislation | None
    art6_1: bool
    uses: list[str]  # every Annex III use: answered and from practices
    high_uses: list[str]  # uses not derogated
    derogated: dict[str, list[str]]  # use -> the Art. 6(3) conditions that hold for it
    routes: list[str]  # high-risk routes, in order
    transparency: list[str]  # Art. 50 duties in force


def _decide(ai: AIActCatalog, a: ClassificationAnswers, role: str, as_of: date) -> _Decision:
    """The in-scope class on ``as_of``: Art. 5, then Art. 6(1)-(3), then Art. 50, each as the data says."""
    pos = ai.position.__getitem__
    pending: list[tuple[str, str, date, str]] = []
    banned: list[Practice] = []
    excepted: list[tuple[Practice, PracticeException]] = []
    redirected: list[Practice] = []
    extra_uses: list[str] = []
    exception = ai.exception_by_id.get(a.art5_1_h_exception) if a.art5_1_h_exception else None
    for pid in sorted(a.prohibited_practices, key=pos):
        p = ai.practice_by_id[pid]
        if not p.binds_role(role):
            # The ban does not reach this role (Art. 5(1)(h) bans the use): the system is an Annex III use.
            redirected.append(p)
            extra_uses += [p.otherwise_use] if p.otherwise_use else []
        elif p.applies_from > as_of:
            pending.append((p.id, p.title, p.applies_from, "practice"))
        elif exception is not None and exception[0].id == p.id:
            excepted.append((p, exception[1]))
            extra_uses += p.exception_uses
        else:
            banned.append(p)

    uses = sorted({*a.annex3_uses, *extra_uses}, key=pos)
    # Art. 6(3): per use, a condition and no profiling of natural persons (profiling is always high-risk).
    derogated = {}
    if not a.profiling:
        derogated = {u: sorted(c, key=pos) for u in uses if (c := a.conditions_for(u))}
    high_uses = [u for u in uses if u not in derogated]

    # Art. 6(1): a safety component (Art. 6(1a)-(1c)) of an Annex I product needing a third-party assessment.
    a1 = a.annex1
    leg = ai.legislation_by_id[a1.legislation] if a1 is not None and a1.legislation is not None else None
    art6_1 = (
        leg is not None and a1 is not None and a1.safety_component and a1.third_party_conformity_assessment
    )

    routes: list[str] = []
    if art6_1 and leg is not None:
        routes.append(leg.route)
    routes += [r for p, _ in excepted if (r := p.exception_route) and r not in routes]
    if high_uses:
        routes.append("annex3")

    transparency: list[str] = []
    for tid in sorted(a.transparency, key=pos):
        t = ai.transparency_by_id[tid]
        if t.applies_from > as_of:
            pending.append((t.id, t.title, t.applies_from, "transparency"))
        else:
            transparency.append(tid)

    if banned:
        cls = AIActClass.PROHIBITED
    elif routes:
        cls = AIActClass.HIGH_RISK
    elif transparency:
        cls = AIActClass.LIMITED_RISK
    else:
        cls = AIActClass.MINIMAL_RISK
    return _Decision(
        cls,
        banned,
        excepted,
        redirected,
        pending,
        leg,
        art6_1,
        uses,
        high_uses,
        derogated,
        routes,
        transparency,
    )


@dataclass(slots=True)
class _Scope:
    """Which claimed Art. 2 exclusions hold, and why the others do not."""

    holding: list[ScopeExclusion] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # rationale sentences


def _scope(ai: AIActCatalog, a: ClassificationAnswers, role: str, d: _Decision) -> _Scope:
    """Art. 2: an exclusion holds for its roles unless an answer defeats it or it never covers the system."""
    out = _Scope()
    high: list[str] = []
    if d.routes:
        high = [*([d.leg.id] if d.art6_1 and d.leg else []), *(e.id for _, e in d.excepted), *d.high_uses]
    facts: dict[str, list[str] | bool] = {
        "prohibited": [p.id for p in d.banned],
        "high_risk": high,
        "transparency": d.transparency,
        "real_world_testing": a.real_world_testing,
    }
    for xid in sorted(a.scope_exclusions, key=ai.position.__getitem__):
        x = ai.exclusion_by_id[xid]
        if x.roles is not None and role not in x.roles:
            out.refused.append(
                f"{cite(x.id)} was claimed, but it covers only the {_words(x.roles, 'or')} role, not the "
                f"{role.replace('_', ' ')}."
            )
            continue
        blocking = [k for k in (*x.defeated_by, *x.never_covers) if facts.get(k)]
        if blocking:
            why = "; ".join(
                _LIMIT_WORDS[k] + (f" ({_cites(v)})" if isinstance(v := facts[k], list) else "")
                for k in blocking
            )
            out.refused.append(f"{cite(x.id)} was claimed, but it never covers {why}.")
            continue
        out.holding.append(x)
    return out


def _class_at(ai: AIActCatalog, a: ClassificationAnswers, role: str, when: date) -> AIActClass:
    """The class on another date (for ``next_change``)."""
    d = _decide(ai, a, role, when)
    return AIActClass.OUT_OF_SCOPE if _scope(ai, a, role, d).holding else d.cls


def _select_obligations(
    ai: AIActCatalog,
    routes: Sequence[str],
    roles: Sequence[str],
    uses: Sequence[str],
    transparency: Sequence[str],
) -> dict[str, tuple[date, str | None]]:
    """Obligation id -> (applies_from, condition) from the obligation sets for the routes and roles.

    When several sets give one duty, an unconditional set beats a conditional one, then the earliest date.
    """
    chosen: dict[str, tuple[date, str | None]] = {}
    for route in routes:
        for role in roles:
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
        if tid not in chosen and any(r in duty.binds for r in roles):
            chosen[tid] = (duty.applies_from, None)
    return chosen


def _role_words(role: str, effective: str) -> str:
    """``deployer`` or ``deployer acting as provider``."""
    words = role.replace("_", " ")
    return words if effective == role else f"{words} acting as {effective.replace('_', ' ')}"


def _timeline(obligations: Sequence[Obligation], who: str, as_of: date) -> str:
    """Sentence saying which duties bind now and which later, grouped by date."""
    if not obligations:
        return f"No obligation is listed for the {who} role."
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
    return f"For the {who} as of {as_of.isoformat()}, " + "; ".join(parts) + tail + "."


def _practice_rationale(ai: AIActCatalog, d: _Decision, role: str, as_of: date) -> list[str]:
    """Sentences on Art. 5: bans that decide, uses under an exception, bans that do not reach the role."""
    out: list[str] = []
    for p in d.banned:
        out.append(
            f"{cite(p.id)} ({p.title}) prohibits this practice since {p.applies_from.isoformat()}, "
            "so the system is prohibited and must not be placed on the market, put into service or used."
        )
    for p, exc in d.excepted:
        out.append(
            f"{cite(p.id)} bans this use, but it is made under the exception of {cite(exc.id)} "
            f"({exc.title}): the system is high-risk and the duties of Art. 5(2)-(4) bind without condition."
        )
        route = ai.route_by_id.get(p.exception_route or "")
        if route is not None and route.note:
            out.append(route.note)
    for p in d.redirected:
        use = f" For the {role.replace('_', ' ')} it is {cite(p.otherwise_use)}." if p.otherwise_use else ""
        out.append(
            f"{cite(p.id)} bans this only for the {_words(p.binds or [], 'and')} role, not the "
            f"{role.replace('_', ' ')}.{use}"
        )
        if p.note:
            out.append(p.note)
    return out


def _route_rationale(ai: AIActCatalog, a: ClassificationAnswers, d: _Decision) -> list[str]:
    """Sentences explaining how Art. 6(1), 6(2) and 6(3) decided, or did not decide, the class."""
    out: list[str] = []
    a1 = a.annex1
    if a1 is not None and d.leg is not None:
        leg = d.leg
        product = f"{cite(leg.id)} ({leg.act}, {leg.title})"
        if d.art6_1:
            out.append(
                f"Art. 6(1): it is a safety component of, or is itself, a product under {product} that "
                "needs a third-party conformity assessment, so it is high-risk."
            )
            route = ai.route_by_id[leg.route]
            rule = ai.scope_rule_by_id.get(route.scope_rule or "")
            for note in (route.note, rule.note if rule else None):
                if note:
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
    if d.high_uses:
        listed = "; ".join(f"{cite(u)} ({ai.annex3_by_id[u].title})" for u in d.high_uses)
        out.append(f"Art. 6(2): it is used for {listed}, so it is high-risk.")
        claimed = [u for u in d.high_uses if a.conditions_for(u)]
        if claimed and a.profiling:
            conditions = sorted(
                {c for u in claimed for c in a.conditions_for(u)}, key=ai.position.__getitem__
            )
            out.append(
                f"{_cites(conditions)} was claimed, but the system profiles natural persons, so the "
                "Art. 6(3) derogation does not apply (profiling is always high-risk)."
            )
    for use, conditions in d.derogated.items():
        out.append(
            f"It is used for {cite(use)} ({ai.annex3_by_id[use].title}), but {_cites(conditions)} holds for "
            "that use and it does not profile natural persons, so under Art. 6(3) that use does not make it "
            "high-risk."
        )
    if d.derogated and (note := ai.route_by_id["art6.3"].note):
        out.append(note)
    return out


def _gpai(
    ai: AIActCatalog, a: ClassificationAnswers, role: str, as_of: date
) -> tuple[list[Obligation], list[str], list[str]]:
    """Chapter V: the model's duties for this role (dated), the basis they add, and rationale sentences."""
    if not a.gpai_model:
        return [], [], []
    rules = ai.gpai_rules
    basis: list[str] = []
    notes: list[str] = []
    presumption = rules.systemic_risk_presumption
    presumed = (
        presumption is not None
        and a.gpai_training_flops is not None
        and a.gpai_training_flops >= presumption.threshold_flops
    )
    systemic = a.gpai_systemic_risk
    if presumed and presumption is not None:
        if a.gpai_systemic_risk_rebutted:
            notes.append(
                f"Training compute of {a.gpai_training_flops:.3g} FLOP reaches the {cite(presumption.id)} "
                f"threshold of {presumption.threshold_flops:.0e} FLOP, but the Commission accepted the "
                f"{cite(presumption.rebuttal)} arguments: no systemic risk is presumed."
            )
        else:
            systemic = True
            basis.append(presumption.id)
            notes.append(
                f"Training compute of {a.gpai_training_flops:.3g} FLOP reaches the {cite(presumption.id)} "
                f"threshold of {presumption.threshold_flops:.0e} FLOP: systemic risk is presumed (rebuttable "
                f"under {cite(presumption.rebuttal)})."
            )
    # Art. 53(2), 54(6): the open-source exemption never reaches a model with systemic risk.
    exempt = a.gpai_open_source and not systemic
    lifted = [g for g in ai.gpai_duties if g.open_source_exempt and role in g.binds]
    if a.gpai_open_source and lifted:
        refs = _cites(sorted({g.open_source_exempt or "" for g in lifted}))
        ids = _cites(g.id for g in lifted)
        notes.append(
            f"Released as free and open source, the model is exempt from {ids} ({refs})."
            if exempt
            else f"The open-source exemption ({refs}) does not apply to a model with systemic risk."
        )
    legacy = rules.legacy_models if a.gpai_placed_before_2025_08_02 else None
    duties: list[Obligation] = []
    for g in ai.gpai_duties:
        if (
            role not in g.binds
            or (g.systemic_risk_only and not systemic)
            or (g.open_source_exempt and exempt)
        ):
            continue
        start = max(g.applies_from, legacy.applies_from) if legacy is not None else g.applies_from
        duties.append(Obligation(id=g.id, title=g.title, applies_from=start, in_force=start <= as_of))
    if legacy is not None:
        notes.append(
            f"Placed on the market before {legacy.placed_before.isoformat()}, the model has until "
            f"{legacy.applies_from.isoformat()} to comply ({cite(legacy.id)})."
        )
    kind = " with systemic risk" if systemic else ""
    if duties:
        since = min(o.applies_from for o in duties)
        notes.insert(
            0,
            f"As a general-purpose AI model{kind} it carries {_cites([o.id for o in duties])} duties (from "
            f"{since.isoformat()}), which do not change the system's class.",
        )
    else:
        holders = sorted({r for g in ai.gpai_duties for r in g.binds}, key=ai.roles.index)
        articles = sorted({g.id.split(".")[0] for g in ai.gpai_duties}, key=lambda x: int(x[3:]))
        notes.insert(
            0,
            f"The duties of a general-purpose AI model{kind} ({_cites(articles)}) bind its "
            f"{_words(holders, 'or')}, not the {role.replace('_', ' ')}.",
        )
    return duties, basis, notes


def _reporting(
    ai: AIActCatalog, d: _Decision, obligations: Sequence[Obligation], gpai: Sequence[Obligation]
) -> list[ReportingDuty]:
    """Incident-reporting duties with where their reports go and the Art. 73(9)-(10) limits that apply."""
    out: list[ReportingDuty] = []
    routes = set(d.routes)
    by_id, gpai_by_id, incident_limits = ai.obligation_by_id, ai.gpai_by_id, ai.incident_limits
    for o in obligations:
        ob = by_id.get(o.id)
        if ob is None or ob.report_to is None:
            continue
        limits = [
            ReportingLimit(id=lim.id, kinds=list(lim.kinds), condition=lim.condition)
            for lim in incident_limits
            if lim.duty == o.id
            and (
                routes.intersection(lim.routes)
                or (d.leg is not None and d.art6_1 and d.leg.id in lim.legislation)
            )
        ]
        out.append(ReportingDuty(id=o.id, applies_from=o.applies_from, report_to=ob.report_to, limits=limits))
    for o in gpai:
        g = gpai_by_id.get(o.id)
        if g is not None and g.report_to is not None:
            out.append(ReportingDuty(id=o.id, applies_from=o.applies_from, report_to=g.report_to))
    return out


def classify(
    answers: ClassificationAnswers | Mapping[str, Any],
    *,
    ai_act_role: str = "provider",
    catalog: Catalog | None = None,
    as_of: date | None = None,
    today: date | None = None,
) -> ClassificationResult:
    """Classify an AI system under the AI Act from its answers, for one operator role, as of a date.

    ``as_of`` (``today`` is its older name) defaults to the current UTC date. Only what applies on that date
    decides the class; what the answers name that applies later is listed in ``upcoming``.
    """
    cat = catalog or get_catalog()
    ai = cat.ai_act
    a = parse_answers(answers, cat)
    role = ai_act_role
    if role not in ai.roles:
        raise Unprocessable(
            f"ai_act_role: unknown role {role!r}",
            errors=[{"loc": ["body", "ai_act_role"], "msg": f"expected one of {', '.join(ai.roles)}"}],
        )
    when = as_of or today or datetime.now(UTC).date()
    d = _decide(ai, a, role, when)
    scope = _scope(ai, a, role, d)
    rationale: list[str] = []
    basis: list[str] = []
    obligations: list[Obligation] = []
    transparency: list[str] = []
    effective = role
    gpai: list[Obligation] = []
    gpai_basis: list[str] = []
    gpai_notes: list[str] = []
    if a.gpai_model and (not scope.holding or all(x.keeps_gpai for x in scope.holding)):
        gpai, gpai_basis, gpai_notes = _gpai(ai, a, role, when)

    if scope.holding:
        cls = AIActClass.OUT_OF_SCOPE
        basis = [x.id for x in scope.holding]
        for x in scope.holding:
            rationale.append(
                f"{cite(x.id)} ({x.title}): the AI Act does not apply, so the system is out of scope and no "
                "obligation is listed."
            )
            if x.note:
                rationale.append(x.note)
        rationale.append(f"Without the exclusion it would be {_CLASS_WORDS[d.cls]}.")
        rationale += scope.refused
    else:
        cls = d.cls
        rationale += scope.refused
        rationale += _practice_rationale(ai, d, role, when)
        if cls is AIActClass.PROHIBITED:
            # AI Act Art. 5: the practice may not be placed on the market, put into service or used at all.
            basis = [p.id for p in d.banned]
            obligations = [
                Obligation(
                    id=p.id,
                    title=f"Do not place on the market, put into service or use: {p.title}",
                    applies_from=p.applies_from,
                    in_force=True,
                )
                for p in d.banned
            ]
            would = ([f"Art. 6(1) ({cite(d.leg.id)})"] if d.art6_1 and d.leg is not None else []) + (
                [f"Art. 6(2) ({_cites(d.high_uses)})"] if d.high_uses else []
            )
            if would:
                rationale.append(
                    f"Without the prohibition it would be high-risk under {' and '.join(would)}; "
                    "no high-risk obligation is listed because the system may not be used."
                )
            transparency = d.transparency
        else:
            basis, obligations, transparency, effective = _in_scope_duties(ai, a, d, role, when, rationale)

    # Upcoming: what the answers name that does not apply yet, and when the class would change.
    upcoming = [Upcoming(id=i, title=t, applies_from=f, kind=k) for i, t, f, k in d.pending]
    upcoming += [
        Upcoming(id=o.id, title=o.title, applies_from=o.applies_from, kind="obligation")
        for o in obligations
        if not o.in_force
    ]
    upcoming += [
        Upcoming(id=o.id, title=o.title, applies_from=o.applies_from, kind="gpai")
        for o in gpai
        if not o.in_force
    ]
    positions = ai.position
    upcoming.sort(key=lambda u: (u.applies_from, positions.get(u.id, 1 << 20)))
    next_change = None
    for on in sorted({f for _, _, f, _ in d.pending}):
        later = _class_at(ai, a, role, on)
        if later is not cls:
            next_change = NextChange(on=on, ai_act_class=later)
            break
    for i, title, applies_from, _ in d.pending:
        rationale.append(
            f"{cite(i)} ({title}) applies from {applies_from.isoformat()}; on {when.isoformat()} it does not "
            "decide the class (listed as upcoming)."
        )
    if next_change is not None:
        rationale.append(
            f"From {next_change.on.isoformat()} the class will be {_CLASS_WORDS[next_change.ai_act_class]}."
        )
    rationale += gpai_notes
    rationale.append(_timeline(obligations, _role_words(role, effective), when))

    return ClassificationResult(
        ai_act_class=cls,
        basis=basis + gpai_basis,
        transparency_obligations=transparency,
        obligations=obligations,
        gpai_obligations=[o.id for o in gpai],
        rationale=" ".join(rationale),
        catalog_version=cat.catalog_version,
        effective_role=effective,
        as_of=when,
        upcoming=upcoming,
        next_change=next_change,
        gpai_duties=gpai,
        incident_reporting=_reporting(ai, d, obligations, gpai),
    )


def _in_scope_duties(
    ai: AIActCatalog,
    a: ClassificationAnswers,
    d: _Decision,
    role: str,
    when: date,
    rationale: list[str],
) -> tuple[list[str], list[Obligation], list[str], str]:
    """Basis, obligations, Art. 50 duties and effective role of a system that is not prohibited."""
    pos = ai.position.__getitem__
    basis: list[str] = []
    for p, exc in d.excepted:
        basis += [p.id, exc.id]
    if d.art6_1 and d.leg is not None:
        basis += ["art6.1", d.leg.id]
        rule = ai.route_by_id[d.leg.route].scope_rule
        basis += [rule] if rule else []
    if d.high_uses:
        basis += ["art6.2", *d.high_uses]
    if d.derogated and not d.routes:
        basis += ["art6.3", *sorted({c for cs in d.derogated.values() for c in cs}, key=pos)]

    # AI Act Art. 25: who becomes the provider of a high-risk system (answered, or by role and route).
    effective = role
    for change in ai.role_changes:
        named = change.id in a.role_change
        if not named and not change.automatic:
            continue
        fits_route = change.requires_routes is None or bool(set(change.requires_routes) & set(d.routes))
        if d.cls is AIActClass.HIGH_RISK and role in change.from_roles and fits_route:
            effective = change.becomes
            basis.append(change.id)
            rationale.append(
                f"{cite(change.id)} ({change.title}): the {role.replace('_', ' ')} becomes the "
                f"{change.becomes} of this high-risk system, with the provider's duties and a new conformity "
                "assessment (Art. 16, Art. 43), and keeps the duties of its own role."
            )
            if change.note:
                rationale.append(change.note)
        elif named:
            why = (
                f"the {role.replace('_', ' ')} already is the {change.becomes}"
                if role == change.becomes
                else "the system is not high-risk"
                if d.cls is not AIActClass.HIGH_RISK
                else f"it applies to the {_words(change.from_roles, 'or')} role"
                if role not in change.from_roles
                else "it does not reach the system's high-risk route ("
                + "; ".join(ai.route_by_id[r].title for r in d.routes)
                + ")"
            )
            rationale.append(f"{cite(change.id)} was answered, but {why}, so the role does not change.")

    routes = ["any", *d.routes]
    if d.derogated:
        routes.append("art6.3")
    transparency = list(d.transparency)
    rationale += _route_rationale(ai, a, d)
    # Scope rules (Art. 2(2)): while a limited route is the only high-risk route, what it displaces goes.
    limited = [
        ai.scope_rule_by_id[r.scope_rule] for r in map(ai.route_by_id.__getitem__, d.routes) if r.scope_rule
    ]
    if limited and len(limited) == len(d.routes):
        for scope_rule in limited:
            routes = [r for r in routes if r not in scope_rule.displaces_routes]
            if scope_rule.displaces_transparency and transparency:
                rationale.append(f"{cite(scope_rule.id)} leaves no room for {_cites(transparency)} either.")
                transparency = []
    roles = [role] if effective == role else [role, effective]
    chosen = _select_obligations(ai, routes, roles, d.high_uses, transparency)
    order = ai.obligation_order
    titles = ai.title_by_id
    obligations = [
        Obligation(
            id=oid,
            title=titles[oid],
            applies_from=applies_from,
            in_force=applies_from <= when,
            condition=condition,
        )
        for oid, (applies_from, condition) in sorted(chosen.items(), key=lambda kv: order[kv[0]])
    ]
    if d.cls is AIActClass.LIMITED_RISK:
        basis += transparency
        rationale.append(
            f"No high-risk route applies; the transparency duties of {_cites(transparency)} "
            "make it limited risk."
        )
    elif d.cls is AIActClass.MINIMAL_RISK:
        rationale.append(
            "No Art. 5 practice, no Art. 6 high-risk route and no Art. 50 duty applies on the date: "
            "minimal risk."
        )
    elif transparency:
        rationale.append(f"Transparency duties under {_cites(transparency)} apply in addition (Art. 50(6)).")
    return basis, obligations, transparency, effective


def incident_reporting(
    result: ClassificationResult | Mapping[str, Any], *, kind: str, aware_at: date
) -> list[dict[str, Any]]:
    """Which reporting duty of a result binds an incident of ``kind`` known on ``aware_at``, and to whom.

    Each item: ``{"id", "binds", "report_to", "applies_from", "reason", "condition"}``. A duty does not bind
    before its ``applies_from`` (Art. 113), nor for a kind outside an unconditional Art. 73(9)-(10) limit; a
    conditional limit leaves it binding with the ``condition`` named.
    """
    body = result.model_dump(mode="json") if isinstance(result, ClassificationResult) else result
    out: list[dict[str, Any]] = []
    for duty in body.get("incident_reporting") or []:
        applies_from = date.fromisoformat(str(duty["applies_from"]))
        binds, reason, condition = True, None, None
        if aware_at < applies_from:
            binds, reason = False, f"{cite(duty['id'])} binds from {applies_from.isoformat()}"
        for lim in duty.get("limits") or []:
            if kind in lim["kinds"]:
                continue
            if lim.get("condition"):
                condition = f"{cite(lim['id'])}: {lim['condition']} Then only {_words(lim['kinds'], 'or')}."
            elif binds:
                binds = False
                reason = (
                    f"{cite(lim['id'])} limits reporting under the AI Act to {_words(lim['kinds'], 'or')}"
                )
        out.append(
            {
                "id": duty["id"],
                "binds": binds,
                "report_to": duty["report_to"],
                "applies_from": applies_from,
                "reason": reason,
                "condition": condition,
            }
        )
    return out
