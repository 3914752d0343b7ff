"""Classifier, second edition (catalogue 2026-12-06): table cases on the new routes, each naming the article
that decides it (Art. 2 scope, Art. 25 role changes, Art. 5(1)(h) by role, GPAI, dates, precision fixes),
the new answer keys' validation, incident reporting and the catalogue history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from app.classification.catalog import Catalog, catalog_for, catalog_versions, cite, load_catalog
from app.classification.engine import (
    AIActClass,
    ClassificationResult,
    classify,
    incident_reporting,
    validate_answers,
)
from app.errors import Unprocessable
from app.settings import PROJECT_ROOT

CATALOG_DIR = PROJECT_ROOT / "risk_catalog"
AS_OF = date(2026, 12, 6)  # after Art. 5(1)(ba)/(bb) and Art. 50; before every high-risk date
PROHIBITED, HIGH, LIMITED, MINIMAL, OUT = (
    AIActClass.PROHIBITED,
    AIActClass.HIGH_RISK,
    AIActClass.LIMITED_RISK,
    AIActClass.MINIMAL_RISK,
    AIActClass.OUT_OF_SCOPE,
)
GPAI = ["art53.1.a", "art53.1.b", "art53.1.c", "art53.1.d"]
SYSTEMIC = [*GPAI, "art52", "art55"]
PROVIDER_HR = {"art8", "art9", "art10", "art11", "art12", "art13", "art14", "art15", "art16", "art17"} | {
    "art18",
    "art19",
    "art20",
    "art21",
    "art43",
    "art47",
    "art48",
    "art72",
    "art73",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The shipped catalogue, read straight from the repository."""
    return load_catalog(CATALOG_DIR)


def a1(legislation: str, safety: bool = True, third_party: bool = True) -> dict[str, Any]:
    """Annex I answer block."""
    return {
        "legislation": legislation,
        "safety_component": safety,
        "third_party_conformity_assessment": third_party,
    }


@dataclass(frozen=True)
class Case:
    """One system on a new route: its answers, the article that decides it, and what must follow."""

    article: str  # the identifier that decides the case; named in basis or rationale
    answers: dict[str, Any]
    ai_act_class: AIActClass
    basis: list[str]
    role: str = "provider"
    effective_role: str | None = None  # default: the role itself
    as_of: date = AS_OF
    gpai: list[str] = field(default_factory=list)
    transparency: list[str] | None = None
    has: frozenset[str] | set[str] = frozenset()
    lacks: frozenset[str] | set[str] = frozenset()
    exact: list[str] | None = None
    unconditional: frozenset[str] | set[str] = frozenset()  # obligation ids that must carry no condition
    in_force: frozenset[str] | set[str] = frozenset()  # obligation ids binding on as_of
    upcoming: list[str] | None = None
    next_change: tuple[date, AIActClass] | None = None


CASES: dict[str, Case] = {
    # ------------------------------------------------------------------------------ Art. 2 scope
    # Target-recognition model for an army's drones, used exclusively for defence: Art. 2(3) -> out of scope
    "military_target_recognition": Case(
        "art2.3", {"scope_exclusions": ["art2.3"], "annex3_uses": ["annex3.1.a"]}, OUT, ["art2.3"], exact=[]
    ),
    # Defence contractor's staff "loyalty score" (social scoring): Art. 5(1)(c) is never hidden by Art. 2(3)
    "military_claim_over_social_scoring": Case(
        "art5.1.c",
        {"scope_exclusions": ["art2.3"], "prohibited_practices": ["art5.1.c"]},
        PROHIBITED,
        ["art5.1.c"],
        exact=["art5.1.c"],
    ),
    # Foreign police using a plant's evidence-analysis tool under an EU cooperation agreement (deployer)
    "third_country_police_cooperation": Case(
        "art2.4",
        {"scope_exclusions": ["art2.4"], "annex3_uses": ["annex3.6.c"]},
        OUT,
        ["art2.4"],
        role="deployer",
        exact=[],
    ),
    # The same exclusion claimed by the tool's provider: Art. 2(4) covers the using authority only
    "third_country_claim_by_provider": Case(
        "art2.4",
        {"scope_exclusions": ["art2.4"], "annex3_uses": ["annex3.6.c"]},
        HIGH,
        ["art6.2", "annex3.6.c"],
        has=PROVIDER_HR,
    ),
    # Materials-science model built and used only in the R&D lab: Art. 2(6) -> out of scope
    "lab_research_only": Case(
        "art2.6", {"scope_exclusions": ["art2.6"], "annex3_uses": ["annex3.4.a"]}, OUT, ["art2.6"], exact=[]
    ),
    # Recruitment-ranking prototype tested on synthetic CVs before release: Art. 2(8) -> out of scope
    "prototype_before_market": Case(
        "art2.8", {"scope_exclusions": ["art2.8"], "annex3_uses": ["annex3.4.a"]}, OUT, ["art2.8"], exact=[]
    ),
    # The same prototype piloted with real applicants: Art. 2(8) never covers real-world testing -> high-risk
    "prototype_in_real_world_testing": Case(
        "art2.8",
        {"scope_exclusions": ["art2.8"], "real_world_testing": True, "annex3_uses": ["annex3.4.a"]},
        HIGH,
        ["art6.2", "annex3.4.a"],
        has=PROVIDER_HR,
    ),
    # An employee's hobby deep-fake app used at home (natural person, personal use): Art. 2(10), out of scope
    "personal_deepfake_hobby": Case(
        "art2.10",
        {"scope_exclusions": ["art2.10"], "transparency": ["art50.4"]},
        OUT,
        ["art2.10"],
        role="deployer",
        transparency=[],
        exact=[],
    ),
    # The app's provider cannot rely on its users' personal use: Art. 2(10) binds deployers only
    "personal_use_claimed_by_provider": Case(
        "art2.10",
        {"scope_exclusions": ["art2.10"], "transparency": ["art50.2"]},
        LIMITED,
        ["art50.2"],
        transparency=["art50.2"],
        exact=["art4", "art50.2"],
    ),
    # Open-source anomaly-detection library on the plant's GitHub: Art. 2(12) -> out of scope
    "open_source_anomaly_library": Case(
        "art2.12", {"scope_exclusions": ["art2.12"]}, OUT, ["art2.12"], exact=[]
    ),
    # Open-source CV ranking: Art. 2(12) never covers a high-risk system
    "open_source_cv_ranking": Case(
        "art2.12",
        {"scope_exclusions": ["art2.12"], "annex3_uses": ["annex3.4.a"]},
        HIGH,
        ["art6.2", "annex3.4.a"],
        has=PROVIDER_HR,
    ),
    # Open-source chatbot: Art. 2(12) never covers an Art. 50 system
    "open_source_chatbot": Case(
        "art2.12",
        {"scope_exclusions": ["art2.12"], "transparency": ["art50.1"]},
        LIMITED,
        ["art50.1"],
        transparency=["art50.1"],
        has={"art50.1"},
    ),
    # Open-source GPAI model: the system is out of scope, the model keeps Art. 53(1)(c)-(d) (Art. 53(2))
    "open_source_gpai_model": Case(
        "art2.12",
        {"scope_exclusions": ["art2.12"], "gpai_model": True, "gpai_open_source": True},
        OUT,
        ["art2.12"],
        gpai=["art53.1.c", "art53.1.d"],
        exact=[],
    ),
    # Defence-only model: Art. 2(3) takes the GPAI model duties away too
    "military_gpai_model": Case(
        "art2.3", {"scope_exclusions": ["art2.3"], "gpai_model": True}, OUT, ["art2.3"], gpai=[], exact=[]
    ),
    # Open-source image tool falling under Art. 5(1)(ba): out of scope until 2 Dec 2026, then prohibited
    "open_source_nudify_before_ban": Case(
        "art5.1.ba",
        {"scope_exclusions": ["art2.12"], "prohibited_practices": ["art5.1.ba"]},
        OUT,
        ["art2.12"],
        as_of=date(2026, 11, 30),
        upcoming=["art5.1.ba"],
        next_change=(date(2026, 12, 2), PROHIBITED),
    ),
    # ------------------------------------------------------------------------------ Art. 25 role changes
    # HR department sells a bought CV screener under its own brand to subsidiaries: Art. 25(1)(a) -> provider
    "rebranded_cv_screener": Case(
        "art25.1.a",
        {"annex3_uses": ["annex3.4.a"], "role_change": ["art25.1.a"]},
        HIGH,
        ["art6.2", "annex3.4.a", "art25.1.a"],
        role="deployer",
        effective_role="provider",
        has=PROVIDER_HR | {"art26", "art86"},
    ),
    # Importer retrains a credit-scoring model (substantial modification): Art. 25(1)(b) -> provider
    "importer_retrains_credit_scoring": Case(
        "art25.1.b",
        {"annex3_uses": ["annex3.5.b"], "role_change": ["art25.1.b"]},
        HIGH,
        ["art6.2", "annex3.5.b", "art25.1.b"],
        role="importer",
        effective_role="provider",
        has=PROVIDER_HR | {"art23", "art49"},
    ),
    # Distributor turns a tutoring chatbot into an admissions ranker: Art. 25(1)(c) -> provider
    "distributor_repurposes_to_admissions": Case(
        "art25.1.c",
        {"annex3_uses": ["annex3.3.a"], "role_change": ["art25.1.c"]},
        HIGH,
        ["art6.2", "annex3.3.a", "art25.1.c"],
        role="distributor",
        effective_role="provider",
        has=PROVIDER_HR | {"art24"},
    ),
    # A purpose change leaving the system limited-risk does not make the deployer a provider (Art. 25(1)(c))
    "purpose_change_not_high_risk": Case(
        "art25.1.c",
        {"transparency": ["art50.4"], "role_change": ["art25.1.c"]},
        LIMITED,
        ["art50.4"],
        role="deployer",
        transparency=["art50.4"],
        exact=["art4", "art50.4"],
    ),
    # Lift maker integrating a door-safety AI under its own name: Art. 25(3) makes it the provider
    "lift_maker_as_provider": Case(
        "art25.3",
        {"annex1": a1("annex1.a.4")},
        HIGH,
        ["art6.1", "annex1.a.4", "art25.3"],
        role="product_manufacturer",
        effective_role="provider",
        has=PROVIDER_HR | {"art4"},
    ),
    # Machine builder (Section B machinery): Art. 2(2) leaves no AI Act duty and Art. 25(3) needs Section A
    "machine_builder_section_b": Case(
        "art2.2",
        {"annex1": a1("annex1.b.21")},
        HIGH,
        ["art6.1", "annex1.b.21", "art2.2"],
        role="product_manufacturer",
        exact=[],
    ),
    # EU authorised representative of a US hiring-tool provider: Art. 22 duties
    "authorised_representative_hiring_tool": Case(
        "art22",
        {"annex3_uses": ["annex3.4.a"]},
        HIGH,
        ["art6.2", "annex3.4.a"],
        role="authorised_representative",
        exact=["art22"],
    ),
    # Authorised representative for an MDR triage device: Art. 22 from the Annex I date (2 Aug 2028)
    "authorised_representative_mdr": Case(
        "art22",
        {"annex1": a1("annex1.a.11")},
        HIGH,
        ["art6.1", "annex1.a.11"],
        role="authorised_representative",
        exact=["art22"],
        upcoming=["art22"],
    ),
    # Authorised representative that rebrands the system: Art. 25(1)(a) adds the provider's duties to Art. 22
    "authorised_representative_rebrands": Case(
        "art25.1.a",
        {"annex3_uses": ["annex3.4.b"], "role_change": ["art25.1.a"]},
        HIGH,
        ["art6.2", "annex3.4.b", "art25.1.a"],
        role="authorised_representative",
        effective_role="provider",
        has=PROVIDER_HR | {"art22"},
    ),
    # ------------------------------------------------------------------------------ Art. 5(1)(h) by role
    # Police using live face matching on a station square: the use is banned (Art. 5(1)(h))
    "police_live_face_matching": Case(
        "art5.1.h",
        {"prohibited_practices": ["art5.1.h"]},
        PROHIBITED,
        ["art5.1.h"],
        role="deployer",
        exact=["art5.1.h"],
    ),
    # The same use to find an abducted child (exception (h)(i)): high-risk, Art. 5(2)-(4) now, unconditional
    "abduction_search_exception": Case(
        "art5.1.h.i",
        {"prohibited_practices": ["art5.1.h"], "art5_1_h_exception": "art5.1.h.i"},
        HIGH,
        ["art5.1.h", "art5.1.h.i", "art6.2", "annex3.1.a"],
        role="deployer",
        has={"art5.2", "art5.3", "art5.4", "art27", "art49.3", "art26"},
        unconditional={"art5.2", "art5.3", "art5.4", "art27", "art49.3"},
        in_force={"art5.2", "art5.3", "art5.4", "art27", "art49.3"},
    ),
    # Locating a terrorism suspect (exception (h)(iii), Annex II offence)
    "terror_suspect_exception": Case(
        "art5.1.h.iii",
        {"prohibited_practices": ["art5.1.h"], "art5_1_h_exception": "art5.1.h.iii"},
        HIGH,
        ["art5.1.h", "art5.1.h.iii", "art6.2", "annex3.1.a"],
        role="deployer",
        unconditional={"art27", "art49.3"},
    ),
    # The vendor providing that real-time system: not banned, high-risk under Annex III 1(a)
    "live_face_matching_provider": Case(
        "annex3.1.a",
        {"prohibited_practices": ["art5.1.h"]},
        HIGH,
        ["art6.2", "annex3.1.a"],
        has=PROVIDER_HR | {"art49"},
    ),
    # Its importer: Art. 23 duties of an Annex III 1(a) system
    "live_face_matching_importer": Case(
        "annex3.1.a",
        {"prohibited_practices": ["art5.1.h"]},
        HIGH,
        ["art6.2", "annex3.1.a"],
        role="importer",
        exact=["art23"],
    ),
    # --------------------------------------------------------------------------------------- GPAI
    # Frontier model trained with 3e25 FLOP: systemic risk presumed (Art. 51(2)), Art. 52 and 55 added
    "frontier_model_by_compute": Case(
        "art51.2",
        {"gpai_model": True, "gpai_training_flops": 3e25},
        MINIMAL,
        ["art51.2"],
        gpai=SYSTEMIC,
    ),
    # A 5e24 FLOP model: below the threshold, Art. 53 only
    "mid_size_model_below_threshold": Case(
        "art53", {"gpai_model": True, "gpai_training_flops": 5e24}, MINIMAL, [], gpai=GPAI
    ),
    # Above the threshold but the Commission accepted the Art. 52(2) rebuttal: no Art. 52, 55
    "rebutted_presumption": Case(
        "art52.2",
        {"gpai_model": True, "gpai_training_flops": 2e25, "gpai_systemic_risk_rebutted": True},
        MINIMAL,
        [],
        gpai=GPAI,
    ),
    # Open-weights model without systemic risk: Art. 53(2) lifts Art. 53(1)(a)-(b)
    "open_weights_model": Case(
        "art53.2",
        {"gpai_model": True, "gpai_open_source": True},
        MINIMAL,
        [],
        gpai=["art53.1.c", "art53.1.d"],
    ),
    # Open weights and systemic risk: no exemption (Art. 53(2))
    "open_weights_frontier_model": Case(
        "art53.2",
        {"gpai_model": True, "gpai_open_source": True, "gpai_training_flops": 1e25},
        MINIMAL,
        ["art51.2"],
        gpai=SYSTEMIC,
    ),
    # Model on the market since 2024: its duties bind from 2 Aug 2027 (Art. 111(3)), upcoming until then
    "legacy_model_2024": Case(
        "art111.3",
        {"gpai_model": True, "gpai_placed_before_2025_08_02": True},
        MINIMAL,
        [],
        gpai=GPAI,
        upcoming=GPAI,
    ),
    # The same model seen on 2 Aug 2027: every duty binds
    "legacy_model_2024_in_2027": Case(
        "art111.3",
        {"gpai_model": True, "gpai_placed_before_2025_08_02": True},
        MINIMAL,
        [],
        as_of=date(2027, 8, 2),
        gpai=GPAI,
        upcoming=[],
    ),
    # A plant using a vendor's GPAI model (deployer): the model duties bind the model's provider only
    "gpai_used_by_deployer": Case("art53", {"gpai_model": True}, MINIMAL, [], role="deployer", gpai=[]),
    # EU authorised representative of a non-EU model provider: Art. 54
    "gpai_authorised_representative": Case(
        "art54", {"gpai_model": True}, MINIMAL, [], role="authorised_representative", gpai=["art54"], exact=[]
    ),
    # ... of an open-source model without systemic risk: Art. 54(6) lifts it
    "gpai_authorised_representative_open_source": Case(
        "art54.6",
        {"gpai_model": True, "gpai_open_source": True},
        MINIMAL,
        [],
        role="authorised_representative",
        gpai=[],
    ),
    # -------------------------------------------------------------------------------------- dates
    # CSAM generator seen on 1 Dec 2026: Art. 5(1)(bb) counts from 2 Dec 2026, listed as upcoming
    "csam_generator_day_before": Case(
        "art5.1.bb",
        {"prohibited_practices": ["art5.1.bb"]},
        MINIMAL,
        [],
        as_of=date(2026, 12, 1),
        upcoming=["art5.1.bb"],
        next_change=(date(2026, 12, 2), PROHIBITED),
    ),
    # Synthetic-image marking before Art. 50 applied (31 Jul 2026): not limited risk yet
    "image_marking_before_art50": Case(
        "art50.2",
        {"transparency": ["art50.2"]},
        MINIMAL,
        [],
        as_of=date(2026, 7, 31),
        transparency=[],
        upcoming=["art50.2"],
        next_change=(date(2026, 8, 2), LIMITED),
    ),
    # Workplace emotion inference seen in January 2025: Art. 5 applies from 2 Feb 2025
    "emotion_inference_before_art5": Case(
        "art5.1.f",
        {"prohibited_practices": ["art5.1.f"]},
        MINIMAL,
        [],
        as_of=date(2025, 1, 15),
        upcoming=["art5.1.f", "art4"],
        next_change=(date(2025, 2, 2), PROHIBITED),
    ),
    # Hiring tool that also makes intimate deep fakes, before 2 Dec 2026: high-risk now, prohibited from then
    "hiring_tool_with_deepfakes": Case(
        "art5.1.ba",
        {"prohibited_practices": ["art5.1.ba"], "annex3_uses": ["annex3.4.a"]},
        HIGH,
        ["art6.2", "annex3.4.a"],
        as_of=date(2026, 11, 30),
        next_change=(date(2026, 12, 2), PROHIBITED),
    ),
    # --------------------------------------------------------------------------- precision fixes
    # Press-brake safeguarding with an operator chat: Art. 2(2) leaves neither Art. 4 nor Art. 50 duties
    "section_b_machine_with_chat": Case(
        "art2.2",
        {"annex1": a1("annex1.b.21"), "transparency": ["art50.1"]},
        HIGH,
        ["art6.1", "annex1.b.21", "art2.2"],
        transparency=[],
        exact=[],
    ),
    # Municipal benefits eligibility (Annex III 5(a), a public body): FRIA and registration without condition
    "benefits_eligibility_public_body": Case(
        "annex3.5.a",
        {"annex3_uses": ["annex3.5.a"]},
        HIGH,
        ["art6.2", "annex3.5.a"],
        role="deployer",
        unconditional={"art27", "art49.3"},
    ),
    # Police evidence-reliability tool (Annex III 6(c)): FRIA and registration without condition
    "police_evidence_reliability": Case(
        "annex3.6.c",
        {"annex3_uses": ["annex3.6.c"]},
        HIGH,
        ["art6.2", "annex3.6.c"],
        role="deployer",
        unconditional={"art27", "art49.3"},
    ),
    # Border risk assessment (Annex III 7(b)): the same
    "border_risk_assessment": Case(
        "annex3.7.b",
        {"annex3_uses": ["annex3.7.b"]},
        HIGH,
        ["art6.2", "annex3.7.b"],
        role="deployer",
        unconditional={"art27", "art49.3"},
    ),
    # Hiring suite: CV de-duplication (narrow procedural task) next to performance scoring: Art. 6(3) per use
    "art6_3_per_use_mixed": Case(
        "art6.3.a",
        {"annex3_uses": ["annex3.4.a", "annex3.4.b"], "art6_3_conditions": {"annex3.4.a": ["art6.3.a"]}},
        HIGH,
        ["art6.2", "annex3.4.b"],
        has=PROVIDER_HR | {"art6.4", "art49.2"},
    ),
    # Both uses derogated, each for its own reason: not high-risk
    "art6_3_per_use_all": Case(
        "art6.3",
        {
            "annex3_uses": ["annex3.4.a", "annex3.4.b"],
            "art6_3_conditions": {"annex3.4.a": ["art6.3.a"], "annex3.4.b": ["art6.3.d"]},
        },
        MINIMAL,
        ["art6.3", "art6.3.a", "art6.3.d"],
        exact=["art4", "art6.4", "art49.2"],
    ),
    # Grid derogated, recruitment not: point 2's national registration (Art. 49(5)) does not follow
    "art6_3_per_use_grid_derogated": Case(
        "art6.3.b",
        {"annex3_uses": ["annex3.2", "annex3.4.a"], "art6_3_conditions": {"annex3.2": ["art6.3.b"]}},
        HIGH,
        ["art6.2", "annex3.4.a"],
        has={"art49"},
        lacks={"art49.5"},
    ),
    # Arts. 18-21 are duties of their own for a high-risk provider
    "provider_keeps_documents_and_logs": Case(
        "art18",
        {"annex3_uses": ["annex3.8.a"]},
        HIGH,
        ["art6.2", "annex3.8.a"],
        has={"art18", "art19", "art20", "art21"},
    ),
}


def _check(case: Case, result: ClassificationResult) -> None:
    assert result.ai_act_class is case.ai_act_class, result.rationale
    assert result.basis == case.basis
    assert result.effective_role == (case.effective_role or case.role)
    assert result.gpai_obligations == case.gpai
    assert result.as_of == case.as_of
    if case.transparency is not None:
        assert result.transparency_obligations == case.transparency
    ids = [o.id for o in result.obligations]
    assert len(ids) == len(set(ids)), "obligations listed twice"
    if case.exact is not None:
        assert ids == case.exact
    assert set(case.has) <= set(ids), f"missing {set(case.has) - set(ids)}"
    assert not set(case.lacks) & set(ids), f"unexpected {set(case.lacks) & set(ids)}"
    by_id = {o.id: o for o in result.obligations}
    for oid in case.unconditional:
        assert by_id[oid].condition is None, oid
    for oid in case.in_force:
        assert by_id[oid].in_force, oid
    if case.upcoming is not None:
        assert [u.id for u in result.upcoming] == case.upcoming
    if case.next_change is None:
        assert result.next_change is None
    else:
        assert result.next_change is not None
        assert (result.next_change.on, result.next_change.ai_act_class) == case.next_change
    # every date-bound entry is in force on as_of, or upcoming (and then never decided the class)
    upcoming = {u.id for u in result.upcoming}
    for o in [*result.obligations, *result.gpai_duties]:
        assert o.in_force is (o.applies_from <= case.as_of)
        assert (o.id in upcoming) is (not o.in_force)
    # the deciding article is named: in the basis or, cited, in the rationale
    assert case.article in result.basis or cite(case.article) in result.rationale, result.rationale


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_second_edition_cases(case: Case, catalog: Catalog) -> None:
    result = classify(case.answers, ai_act_role=case.role, catalog=catalog, as_of=case.as_of)
    _check(case, result)
    assert result.catalog_version == "2026-12-06"


def test_at_least_30_new_cases() -> None:
    assert len(CASES) >= 30


# ---------------------------------------------------------------------------------------- rationale


def test_rationale_explains_the_new_routes(catalog: Catalog) -> None:
    military = classify({"scope_exclusions": ["art2.3"], "annex3_uses": ["annex3.4.a"]}, catalog=catalog)
    assert "Art. 2(3)" in military.rationale and "would be high-risk" in military.rationale
    hidden = classify(
        {"scope_exclusions": ["art2.12"], "prohibited_practices": ["art5.1.e"]}, catalog=catalog, as_of=AS_OF
    )
    assert (
        "Art. 2(12) was claimed, but it never covers a prohibited practice (Art. 5(1)(e))" in hidden.rationale
    )
    testing = classify({"scope_exclusions": ["art2.8"], "real_world_testing": True}, catalog=catalog)
    assert "never covers testing in real-world conditions" in testing.rationale
    rebrand = classify(
        {"annex3_uses": ["annex3.4.a"], "role_change": ["art25.1.b"]}, ai_act_role="deployer", catalog=catalog
    )
    assert "new conformity assessment" in rebrand.rationale and "Art. 43(4)" in rebrand.rationale
    assert "deployer acting as provider" in rebrand.rationale
    already = classify({"annex3_uses": ["annex3.4.a"], "role_change": ["art25.1.a"]}, catalog=catalog)
    assert "already is the provider" in already.rationale and already.basis == ["art6.2", "annex3.4.a"]
    exception = classify(
        {"prohibited_practices": ["art5.1.h"], "art5_1_h_exception": "art5.1.h.ii"},
        ai_act_role="deployer",
        catalog=catalog,
    )
    assert "Art. 5(1)(h)(ii)" in exception.rationale and "prior authorisation" in exception.rationale
    provider = classify({"prohibited_practices": ["art5.1.h"]}, catalog=catalog)
    assert "bans this only for the deployer role" in provider.rationale
    frontier = classify({"gpai_model": True, "gpai_training_flops": 3e25}, catalog=catalog)
    assert "Art. 51(2)" in frontier.rationale and "Art. 52(2)" in frontier.rationale
    later = classify({"prohibited_practices": ["art5.1.bb"]}, catalog=catalog, as_of=date(2026, 11, 1))
    assert "applies from 2026-12-02" in later.rationale and "the class will be prohibited" in later.rationale


def test_exception_answer_without_a_use_under_it_changes_nothing_for_a_provider(catalog: Catalog) -> None:
    # Art. 5(1)(h) binds deployers; a provider naming an exception is still Annex III 1(a).
    answers = {"prohibited_practices": ["art5.1.h"], "art5_1_h_exception": "art5.1.h.i"}
    assert classify(answers, catalog=catalog).basis == ["art6.2", "annex3.1.a"]


def test_the_exception_route_stays_high_risk_when_annex3_1a_is_derogated(catalog: Catalog) -> None:
    # Art. 5(2): the route of the exception decides high-risk even if someone claims Art. 6(3) for 1(a).
    answers = {
        "prohibited_practices": ["art5.1.h"],
        "art5_1_h_exception": "art5.1.h.i",
        "annex3_uses": ["annex3.1.a"],
        "art6_3_conditions": ["art6.3.d"],
    }
    result = classify(answers, ai_act_role="deployer", catalog=catalog, as_of=AS_OF)
    assert result.ai_act_class is HIGH and result.basis[:2] == ["art5.1.h", "art5.1.h.i"]
    assert {"art5.2", "art5.3", "art5.4"} <= {o.id for o in result.obligations}


# ------------------------------------------------------------------------------------ incident reporting


def test_incident_reporting_carries_dates_limits_and_the_ai_office(catalog: Catalog) -> None:
    mdr = classify({"annex1": a1("annex1.a.11")}, catalog=catalog, as_of=AS_OF)
    [duty] = mdr.incident_reporting
    assert (duty.id, duty.applies_from) == ("art73", date(2028, 8, 2))
    assert [(lim.id, lim.kinds, lim.condition) for lim in duty.limits] == [
        ("art73.10", ["fundamental_rights"], None)
    ]
    # Art. 113: not binding before the Annex I date; Art. 73(10): only fundamental-rights incidents
    [before] = incident_reporting(mdr, kind="fundamental_rights", aware_at=date(2027, 1, 1))
    assert not before["binds"] and "2028-08-02" in before["reason"]
    [death] = incident_reporting(mdr, kind="death", aware_at=date(2029, 1, 1))
    assert not death["binds"] and "Art. 73(10)" in death["reason"]
    [rights] = incident_reporting(mdr, kind="fundamental_rights", aware_at=date(2029, 1, 1))
    assert rights["binds"] and rights["reason"] is None
    # Annex III: Art. 73(9) is conditional (equivalent sectoral reporting): binding, with the condition named
    hr = classify({"annex3_uses": ["annex3.5.b"]}, catalog=catalog, as_of=AS_OF)
    [health] = incident_reporting(hr.model_dump(mode="json"), kind="health", aware_at=date(2028, 1, 1))
    assert health["binds"] and "Art. 73(9)" in health["condition"]
    # Art. 55(1)(c): systemic-risk model incidents go to the AI Office
    frontier = classify({"gpai_model": True, "gpai_systemic_risk": True}, catalog=catalog, as_of=AS_OF)
    [office] = incident_reporting(frontier, kind="health", aware_at=AS_OF)
    assert office["id"] == "art55" and office["binds"] and "AI Office" in office["report_to"]
    assert incident_reporting(classify({}, catalog=catalog), kind="death", aware_at=AS_OF) == []


# -------------------------------------------------------------------------------------------- validation


def _errors(answers: Any, catalog: Catalog) -> list[dict[str, Any]]:
    with pytest.raises(Unprocessable) as info:
        validate_answers(answers, catalog)
    return info.value.errors


@pytest.mark.parametrize(
    ("answers", "loc", "hint"),
    [
        ({"scope_exclusions": ["art2.5"]}, ["scope_exclusions", 0], "Art. 2 scope exclusion"),
        ({"scope_exclusions": ["art2.3", "art2.3"]}, ["scope_exclusions", 1], "duplicate"),
        ({"role_change": ["art25.3"]}, ["role_change", 0], "an Art. 25(1) role change"),
        ({"role_change": ["art25.1.d"]}, ["role_change", 0], "unknown identifier"),
        ({"art5_1_h_exception": "art5.1.h.iv"}, ["art5_1_h_exception"], "unknown identifier"),
        (
            {"art5_1_h_exception": "art5.1.h.i"},
            ["art5_1_h_exception"],
            "name 'art5.1.h' in prohibited_practices",
        ),
        ({"art5_1_h_exception": ["art5.1.h.i"]}, ["art5_1_h_exception"], "string"),
        ({"gpai_training_flops": 1e26}, ["gpai_training_flops"], "needs gpai_model"),
        ({"gpai_model": True, "gpai_training_flops": -1}, ["gpai_training_flops"], "greater than or equal"),
        ({"gpai_model": True, "gpai_training_flops": "1e26"}, ["gpai_training_flops"], "number"),
        ({"gpai_model": True, "gpai_training_flops": True}, ["gpai_training_flops"], "number"),
        ({"gpai_open_source": True}, ["gpai_open_source"], "needs gpai_model"),
        ({"gpai_placed_before_2025_08_02": True}, ["gpai_placed_before_2025_08_02"], "needs gpai_model"),
        (
            {"gpai_model": True, "gpai_training_flops": 1e24, "gpai_systemic_risk_rebutted": True},
            ["gpai_systemic_risk_rebutted"],
            "threshold",
        ),
        (
            {
                "gpai_model": True,
                "gpai_training_flops": 1e26,
                "gpai_systemic_risk": True,
                "gpai_systemic_risk_rebutted": True,
            },
            ["gpai_systemic_risk_rebutted"],
            "contradicts",
        ),
        ({"real_world_testing": "yes"}, ["real_world_testing"], "bool"),
        (
            {"annex3_uses": ["annex3.4.a"], "art6_3_conditions": {"annex3.4.b": ["art6.3.a"]}},
            ["art6_3_conditions", "annex3.4.b"],
            "not one of annex3_uses",
        ),
        (
            {"annex3_uses": ["annex3.4.a"], "art6_3_conditions": {"annex3.4.a": ["art6.3.z"]}},
            ["art6_3_conditions", "annex3.4.a", 0],
            "unknown identifier",
        ),
        (
            {"annex3_uses": ["annex3.4.a"], "art6_3_conditions": {"annex3.4.a": [4]}},
            ["art6_3_conditions", "annex3.4.a", 0],
            "string",
        ),
        ({"annex3_uses": ["annex3.4.a"], "art6_3_conditions": "art6.3.a"}, ["art6_3_conditions"], "mapping"),
        (
            {"art6_3_conditions": {"annex3.4.a": ["art6.3.a"]}},
            ["art6_3_conditions"],
            "only apply to an Annex III",
        ),
    ],
)
def test_new_answer_keys_are_validated(
    answers: dict[str, Any], loc: list[Any], hint: str, catalog: Catalog
) -> None:
    errors = _errors(answers, catalog)
    match = [e for e in errors if e["loc"] == ["body", "answers", *loc]]
    assert match, errors
    assert hint.lower() in match[0]["msg"].lower(), match


def test_new_answer_keys_accept_their_valid_forms(catalog: Catalog) -> None:
    validate_answers(
        {
            "scope_exclusions": ["art2.8"],
            "real_world_testing": False,
            "prohibited_practices": ["art5.1.h"],
            "art5_1_h_exception": "art5.1.h.iii",
            "annex3_uses": ["annex3.4.a", "annex3.4.b"],
            "art6_3_conditions": {"annex3.4.a": ["art6.3.a"], "annex3.4.b": []},
            "role_change": ["art25.1.a", "art25.1.c"],
            "gpai_model": True,
            "gpai_training_flops": 10**26,
            "gpai_systemic_risk_rebutted": True,
            "gpai_open_source": True,
            "gpai_placed_before_2025_08_02": True,
        },
        catalog,
    )


@pytest.mark.parametrize("role", ["authorised_representative", "product_manufacturer"])
def test_new_roles_are_known(role: str, catalog: Catalog) -> None:
    assert classify({}, ai_act_role=role, catalog=catalog).effective_role == role


# ------------------------------------------------------------------------------------- catalogue history


def test_every_installed_catalogue_version_loads_and_the_first_edition_is_kept() -> None:
    versions = catalog_versions()
    assert versions[0] == "2026-12-06" and "2026-07-27" in versions
    for version in versions:
        assert catalog_for(version).catalog_version == version
    old = catalog_for("2026-07-27").ai_act
    assert "art2.2" in old.obligation_by_id and "art53" in old.gpai_by_id  # first-edition ids still resolve
    assert old.roles == ["provider", "deployer", "importer", "distributor"]
    with pytest.raises(LookupError):
        catalog_for("1999-01-01")
    with pytest.raises(LookupError):
        catalog_for("../risk_catalog")


def test_a_first_edition_answer_set_classifies_under_its_own_catalogue() -> None:
    # The engine evaluates an older catalogue too: its data (no exclusions, whole-article GPAI duties) rules.
    old = catalog_for("2026-07-27")
    result = classify({"annex1": a1("annex1.b.21"), "gpai_model": True}, catalog=old, as_of=AS_OF)
    assert result.catalog_version == "2026-07-27"
    assert [o.id for o in result.obligations] == ["art2.2", "art4"] and result.gpai_obligations == ["art53"]
