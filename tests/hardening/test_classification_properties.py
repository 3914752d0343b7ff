"""Property-based checks of the AI Act classification rules (Hypothesis, fixed seed, bounded examples)."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.classification.catalog import get_catalog
from app.classification.engine import ClassificationResult, classify

AI = get_catalog().ai_act
PRACTICES = sorted(AI.practice_by_id)
# Practices whose ban reaches every role (Art. 5(1)(h) bans only the deployer's use).
ALL_ROLE_PRACTICES = sorted(p.id for p in AI.prohibited_practices if p.binds is None)
USES = sorted(AI.annex3_by_id)
CONDITIONS = sorted(AI.condition_by_id)
TRANSPARENCY = sorted(AI.transparency_by_id)
LEGISLATION = sorted(AI.legislation_by_id)
EXCLUSIONS = sorted(AI.exclusion_by_id)
ROLE_CHANGES = sorted(AI.answerable_role_change_by_id)
EXCEPTIONS = sorted(AI.exception_by_id)
ROLES = list(AI.roles)
RANK = {"out_of_scope": -1, "minimal_risk": 0, "limited_risk": 1, "high_risk": 2, "prohibited": 3}
AS_OF = date(2026, 12, 6)
# Every date a practice or duty of the catalogue starts on, and the days around them.
DATES = sorted(
    {
        d
        for d in (
            *(p.applies_from for p in AI.prohibited_practices),
            *(t.applies_from for t in AI.transparency_duties),
            *(s.applies_from for s in AI.obligation_sets),
            *(g.applies_from for g in AI.gpai_duties),
        )
    }
)
AS_OF_DATES = st.one_of(
    st.sampled_from(DATES), st.dates(min_value=date(2024, 6, 1), max_value=date(2031, 1, 1))
)

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
def answers(draw: st.DrawFn, *, practices: bool = True, second_edition: bool = False) -> dict[str, Any]:
    """Valid questionnaire answers (every identifier from the catalogue, every cross-field rule kept).

    ``second_edition`` adds the keys of catalogue 2026-12-06 (exclusions, role changes, the Art. 5(1)(h)
    exception, per-use Art. 6(3) conditions and the GPAI details).
    """
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
    if not second_edition:
        return data
    data["scope_exclusions"] = draw(_ids(EXCLUSIONS, 2))
    data["real_world_testing"] = draw(st.booleans())
    data["role_change"] = draw(_ids(ROLE_CHANGES, 2))
    if uses and draw(st.booleans()):
        data["art6_3_conditions"] = {u: draw(_ids(CONDITIONS, 2)) for u in uses if draw(st.booleans())}
    if "art5.1.h" in data["prohibited_practices"] and draw(st.booleans()):
        data["art5_1_h_exception"] = draw(st.sampled_from(EXCEPTIONS))
    if gpai:
        data["gpai_training_flops"] = draw(st.sampled_from([None, 1e23, 9.9e24, 1e25, 4e25]))
        data["gpai_open_source"] = draw(st.booleans())
        data["gpai_placed_before_2025_08_02"] = draw(st.booleans())
    return data


def _class(data: dict[str, Any], role: str = "provider") -> str:
    return classify(data, ai_act_role=role, as_of=AS_OF).ai_act_class.value


@PROPERTY
@given(answers(), st.lists(st.sampled_from(ALL_ROLE_PRACTICES), min_size=1, max_size=3, unique=True))
def test_a_prohibited_practice_always_wins(data: dict[str, Any], practices: list[str]) -> None:
    in_force = [p for p in practices if AI.practice_by_id[p].applies_from <= AS_OF]
    data["prohibited_practices"] = sorted(set(data["prohibited_practices"]) | set(in_force))
    result = classify(data, as_of=AS_OF)
    if in_force:
        assert result.ai_act_class.value == "prohibited"
        assert set(in_force) <= set(result.basis)


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
    """Except where the Act itself bans by role: Art. 5(1)(h) bans the deployer's use only."""
    data["prohibited_practices"] = [p for p in data["prohibited_practices"] if p in ALL_ROLE_PRACTICES]
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


# ------------------------------------------------------------------------- second edition (issue 13)


def _without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


@PROPERTY
@given(
    answers(second_edition=True),
    st.lists(st.sampled_from(EXCLUSIONS), min_size=1, unique=True),
    st.sampled_from(ROLES),
    AS_OF_DATES,
)
def test_an_exclusion_never_hides_a_prohibited_practice(
    data: dict[str, Any], exclusions: list[str], role: str, as_of: date
) -> None:
    """Art. 2: whatever exclusion is claimed, a system that is prohibited without it stays prohibited."""
    data["scope_exclusions"] = exclusions
    plain = classify(_without(data, "scope_exclusions"), ai_act_role=role, as_of=as_of)
    claimed = classify(data, ai_act_role=role, as_of=as_of)
    if plain.ai_act_class.value == "prohibited":
        assert claimed.ai_act_class.value == "prohibited"
        assert claimed.basis == plain.basis and claimed.obligations == plain.obligations
    if claimed.ai_act_class.value == "out_of_scope":
        # no practice that reaches the role applies yet; each one that will is listed as upcoming
        upcoming = {u.id for u in claimed.upcoming}
        for p in map(AI.practice_by_id.__getitem__, data["prohibited_practices"]):
            if p.binds_role(role):
                assert p.applies_from > as_of and p.id in upcoming


@PROPERTY
@given(
    answers(second_edition=True, practices=False),
    st.one_of(st.none(), st.sampled_from(USES)),
    st.sampled_from(ROLES),
    _ids(ROLE_CHANGES, 3),
    AS_OF_DATES,
)
def test_a_role_change_never_lowers_duties(
    data: dict[str, Any], use: str | None, role: str, changes: list[str], as_of: date
) -> None:
    """Art. 25: a role change adds the provider's duties; none goes, none binds later or under a condition."""
    if use is not None:  # half the systems get a high-risk use, so that a change can hold
        data = {**data, "annex3_uses": sorted({*data["annex3_uses"], use}), "art6_3_conditions": []}
    base = classify({**data, "role_change": []}, ai_act_role=role, as_of=as_of)
    changed = classify({**data, "role_change": changes}, ai_act_role=role, as_of=as_of)
    assert changed.ai_act_class is base.ai_act_class
    after = {o.id: o for o in changed.obligations}
    for o in base.obligations:
        assert o.id in after, f"{o.id} lost by {changes}"
        assert after[o.id].applies_from <= o.applies_from
        assert o.condition is not None or after[o.id].condition is None
    assert set(base.gpai_obligations) <= set(changed.gpai_obligations)
    assert set(base.transparency_obligations) <= set(changed.transparency_obligations)
    if changed.effective_role != base.effective_role:
        assert changed.effective_role == "provider" and changed.ai_act_class.value == "high_risk"
        assert len(changed.obligations) > len(base.obligations)


def _decided_by(result: ClassificationResult) -> set[str]:
    """The identifiers a result names as deciding its class."""
    return set(result.basis)


@PROPERTY
@given(answers(second_edition=True), st.sampled_from(ROLES), AS_OF_DATES)
def test_no_duty_that_applies_later_decides_the_class(data: dict[str, Any], role: str, as_of: date) -> None:
    """A practice or duty whose applies_from is after as_of never decides the class: it is only upcoming.

    Checked three ways: nothing dated after as_of is in the basis; removing every practice and Art. 50 duty
    not yet applicable leaves the class unchanged; and each of them is listed as upcoming with its date.
    """
    result = classify(data, ai_act_role=role, as_of=as_of)
    dated = {
        **{p.id: p.applies_from for p in AI.prohibited_practices},
        **{t.id: t.applies_from for t in AI.transparency_duties},
    }
    later = [i for i in (*data["prohibited_practices"], *data["transparency"]) if dated[i] > as_of]
    assert not {i for i in _decided_by(result) if i in dated and dated[i] > as_of}
    pruned = {
        **data,
        "prohibited_practices": [p for p in data["prohibited_practices"] if p not in later],
        "transparency": [t for t in data["transparency"] if t not in later],
    }
    if data.get("art5_1_h_exception") and "art5.1.h" not in pruned["prohibited_practices"]:
        pruned.pop("art5_1_h_exception")
    assert classify(pruned, ai_act_role=role, as_of=as_of).ai_act_class is result.ai_act_class
    upcoming = {u.id: u.applies_from for u in result.upcoming}
    for i in later:
        practice = AI.practice_by_id.get(i)
        if practice is not None and not practice.binds_role(role):
            continue  # a ban that does not reach this role counts as its Annex III use, undated
        assert upcoming.get(i) == dated[i]
    # every duty listed is in force on as_of or listed as upcoming with the same date
    for o in [*result.obligations, *result.gpai_duties]:
        assert o.in_force is (o.applies_from <= as_of)
        if not o.in_force:
            assert upcoming.get(o.id) == o.applies_from
    assert all(u.applies_from > as_of for u in result.upcoming)
    if result.next_change is not None:
        assert result.next_change.on > as_of
        assert classify(data, ai_act_role=role, as_of=result.next_change.on).ai_act_class is (
            result.next_change.ai_act_class
        )
