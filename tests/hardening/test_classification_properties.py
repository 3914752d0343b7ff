"""Property-based checks of the AI Act classification rules (Hypothesis, fixed seed, bounded examples)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.classification.catalog import get_catalog
from app.classification.engine import classify

AI = get_catalog().ai_act
PRACTICES = sorted(AI.practice_by_id)
USES = sorted(AI.annex3_by_id)
CONDITIONS = sorted(AI.condition_by_id)
TRANSPARENCY = sorted(AI.transparency_by_id)
LEGISLATION = sorted(AI.legislation_by_id)
ROLES = list(AI.roles)
RANK = {"minimal_risk": 0, "limited_risk": 1, "high_risk": 2, "prohibited": 3}

PROPERTY = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _ids(pool: list[str], max_size: int = 3) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(pool), unique=True, max_size=max_size)


@st.composite
def answers(draw: st.DrawFn, *, practices: bool = True) -> dict[str, Any]:
    """Valid questionnaire answers (every identifier from the catalogue, every cross-field rule kept)."""
    uses = draw(_ids(USES))
    gpai = draw(st.booleans())
    data: dict[str, Any] = {
        "prohibited_practices": draw(_ids(PRACTICES, 2)) if practices else [],
        "annex3_uses": uses,
        "art6_3_conditions": draw(_ids(CONDITIONS)) if uses else [],
        "profiling": draw(st.booleans()),
        "transparency": draw(_ids(TRANSPARENCY)),
        "gpai_model": gpai,
        "gpai_systemic_risk": draw(st.booleans()) if gpai else False,
    }
    if draw(st.booleans()):
        data["annex1"] = {
            "legislation": draw(st.sampled_from(LEGISLATION)),
            "safety_component": draw(st.booleans()),
            "third_party_conformity_assessment": draw(st.booleans()),
        }
    return data


def _class(data: dict[str, Any], role: str = "provider") -> str:
    return classify(data, ai_act_role=role).ai_act_class.value


@PROPERTY
@given(answers(), st.lists(st.sampled_from(PRACTICES), min_size=1, max_size=3, unique=True))
def test_a_prohibited_practice_always_wins(data: dict[str, Any], practices: list[str]) -> None:
    data["prohibited_practices"] = sorted(set(data["prohibited_practices"]) | set(practices))
    result = classify(data)
    assert result.ai_act_class.value == "prohibited"
    assert set(practices) <= set(result.basis)


@PROPERTY
@given(answers(practices=False), st.sampled_from(USES), _ids(CONDITIONS, 4))
def test_profiling_never_derogates(data: dict[str, Any], use: str, conditions: list[str]) -> None:
    """Art. 6(3) last subparagraph: an Annex III system that profiles natural persons is always high-risk."""
    data["annex3_uses"] = sorted(set(data["annex3_uses"]) | {use})
    data["art6_3_conditions"] = conditions
    data["profiling"] = True
    assert _class(data) == "high_risk"


@PROPERTY
@given(answers(), st.booleans(), st.sampled_from(ROLES))
def test_gpai_never_changes_the_class(data: dict[str, Any], systemic: bool, role: str) -> None:
    without = {**data, "gpai_model": False, "gpai_systemic_risk": False}
    with_gpai = {**data, "gpai_model": True, "gpai_systemic_risk": systemic}
    assert _class(with_gpai, role) == _class(without, role)
    assert classify(without, ai_act_role=role).gpai_obligations == []


@PROPERTY
@given(answers(), st.sampled_from(USES), st.sampled_from(["no_conditions", "profiling"]))
def test_adding_an_annex3_use_without_derogation_never_lowers_the_class(
    data: dict[str, Any], use: str, how: str
) -> None:
    before = _class(data)
    more = {**data, "annex3_uses": sorted(set(data["annex3_uses"]) | {use})}
    if how == "no_conditions":
        more["art6_3_conditions"] = []
    else:
        more["profiling"] = True
    after = _class(more)
    assert RANK[after] >= RANK[before]
    assert RANK[after] >= RANK["high_risk"]


@PROPERTY
@given(answers(), st.sampled_from(ROLES))
def test_the_operator_role_changes_duties_never_the_class(data: dict[str, Any], role: str) -> None:
    assert _class(data, role) == _class(data, "provider")


@PROPERTY
@given(answers(practices=False), _ids(TRANSPARENCY, 4))
def test_transparency_duties_alone_never_make_a_system_high_risk(
    data: dict[str, Any], extra: list[str]
) -> None:
    before = _class(data)
    after = _class({**data, "transparency": sorted(set(data["transparency"]) | set(extra))})
    if extra and before == "minimal_risk":
        assert after == "limited_risk"
    else:
        assert RANK[after] == max(RANK[before], RANK["limited_risk"] if extra else 0)
