"""AI Act classification engine and risk catalogue: table-driven real-world cases, validation, loading."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from app.classification.catalog import Catalog, CatalogError, cite, get_catalog, load_catalog
from app.classification.engine import (
    AIActClass,
    ClassificationAnswers,
    ClassificationResult,
    classify,
    parse_answers,
    validate_answers,
)
from app.errors import Unprocessable
from app.settings import PROJECT_ROOT, get_settings

CATALOG_DIR = PROJECT_ROOT / "risk_catalog"
VERSION = str(yaml.safe_load((CATALOG_DIR / "catalog.yaml").read_text(encoding="utf-8"))["catalog_version"])
TODAY = date(2026, 11, 30)  # after Art. 50 (2 Aug 2026), before Art. 5(1)(ba)/(bb) and every high-risk date
GPAI = ["art53.1.a", "art53.1.b", "art53.1.c", "art53.1.d"]  # Art. 53(1)(a)-(d), every GPAI model provider
GPAI_SYSTEMIC = [*GPAI, "art52", "art55"]  # plus the Art. 52 notification and Art. 55

PROHIBITED, HIGH, LIMITED, MINIMAL = (
    AIActClass.PROHIBITED,
    AIActClass.HIGH_RISK,
    AIActClass.LIMITED_RISK,
    AIActClass.MINIMAL_RISK,
)
# Provider duties of a high-risk system (Art. 8-21, 43, 47, 48, 72, 73), both routes.
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
NOT_PROVIDER_HR = frozenset(PROVIDER_HR | {"art49"})


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
    """One real-world system: its answers and what the engine must conclude."""

    answers: dict[str, Any]
    ai_act_class: AIActClass
    basis: list[str]
    role: str = "provider"
    transparency: list[str] = field(default_factory=list)
    gpai: list[str] = field(default_factory=list)
    has: frozenset[str] | set[str] = frozenset()  # obligation ids that must be listed
    lacks: frozenset[str] | set[str] = frozenset()  # obligation ids that must not be listed
    exact: list[str] | None = None  # the whole obligation id list, in order
    as_of: date = TODAY


CASES: dict[str, Case] = {
    # ---------------------------------------------------------------- Art. 5 prohibited practices
    # Webcam mood tracking of assembly-line workers to push productivity: art5.1.f -> prohibited
    "workplace_emotion_inference": Case(
        {"prohibited_practices": ["art5.1.f"]}, PROHIBITED, ["art5.1.f"], exact=["art5.1.f"]
    ),
    # Emotion inference used to rate workers' performance (also Annex III 4(b)): prohibited wins, no Art. 9-49
    "emotion_inference_with_hr_use": Case(
        {"prohibited_practices": ["art5.1.f"], "annex3_uses": ["annex3.4.b"]},
        PROHIBITED,
        ["art5.1.f"],
        exact=["art5.1.f"],
    ),
    # Supplier-staff "trust score" drawn from social media and reused for site access: art5.1.c -> prohibited
    "social_scoring_of_contractors": Case(
        {"prohibited_practices": ["art5.1.c"]}, PROHIBITED, ["art5.1.c"], exact=["art5.1.c"]
    ),
    # Scraping CCTV and web photos to grow a face database for plant access control: art5.1.e -> prohibited
    "face_db_scraping": Case({"prohibited_practices": ["art5.1.e"]}, PROHIBITED, ["art5.1.e"]),
    # Inferring union membership of employees from CCTV footage: art5.1.g -> prohibited
    "union_membership_categorisation": Case({"prohibited_practices": ["art5.1.g"]}, PROHIBITED, ["art5.1.g"]),
    # Loss-prevention tool predicting which staff will steal, from profiling alone, plus 6(d) use: prohibited
    "theft_prediction_by_profiling": Case(
        {"prohibited_practices": ["art5.1.d"], "annex3_uses": ["annex3.6.d"], "profiling": True},
        PROHIBITED,
        ["art5.1.d"],
        lacks=NOT_PROVIDER_HR,
    ),
    # Retail kiosk chatbot nudging elderly customers into loans with dark patterns: art5.1.a+b, art50.1 kept
    "manipulative_kiosk_chatbot": Case(
        {"prohibited_practices": ["art5.1.b", "art5.1.a"], "transparency": ["art50.1"]},
        PROHIBITED,
        ["art5.1.a", "art5.1.b"],
        transparency=["art50.1"],
        exact=["art5.1.a", "art5.1.b"],
    ),
    # Talking toy using subliminal cues to make children buy add-ons (toy safety, Annex I A.2): prohibited
    "manipulative_toy_with_annex1": Case(
        {"prohibited_practices": ["art5.1.a"], "annex1": a1("annex1.a.2")},
        PROHIBITED,
        ["art5.1.a"],
        lacks=NOT_PROVIDER_HR,
    ),
    # Image model fine-tuned into a "nudify" app on a systemic-risk GPAI model: art5.1.ba (from 2 Dec 2026)
    "nudify_app_on_gpai": Case(
        {"prohibited_practices": ["art5.1.ba"], "gpai_model": True, "gpai_systemic_risk": True},
        PROHIBITED,
        ["art5.1.ba"],
        gpai=GPAI_SYSTEMIC,
        as_of=date(2026, 12, 2),
    ),
    # ---------------------------------------------------------------- Art. 6(1), Annex I Section B
    # Vision-based safeguarding replacing a light curtain on a press brake (Machinery Reg. 2023/1230): high;
    # Art. 2(2) is a scope rule (basis), not a duty: only Art. 6(1), 60a, 102-112 apply, so no AI Act duty
    "press_brake_safeguarding": Case(
        {"annex1": a1("annex1.b.21")},
        HIGH,
        ["art6.1", "annex1.b.21", "art2.2"],
        exact=[],
    ),
    # The plant operating that press brake (deployer): Art. 26 does not reach Section B either (Art. 2(2))
    "press_brake_safeguarding_deployer": Case(
        {"annex1": a1("annex1.b.21")},
        HIGH,
        ["art6.1", "annex1.b.21", "art2.2"],
        role="deployer",
        exact=[],
    ),
    # AI energy optimiser in a machine: not a safety component under Art. 6(1a) -> minimal
    "machine_energy_optimiser": Case(
        {"annex1": a1("annex1.b.21", safety=False)}, MINIMAL, [], exact=["art4"]
    ),
    # Safety-related robot-cell monitor under self-certified machinery rules (no third party): not high-risk
    "robot_cell_monitor_self_assessed": Case(
        {"annex1": a1("annex1.b.21", third_party=False)}, MINIMAL, [], exact=["art4"]
    ),
    # Autonomous steering of an agricultural tractor (Reg. 167/2013): high via Section B, sectoral route
    "autonomous_tractor": Case(
        {"annex1": a1("annex1.b.15")},
        HIGH,
        ["art6.1", "annex1.b.15", "art2.2"],
        lacks=PROVIDER_HR | {"art2.2"},
    ),
    # Driverless forklift (machinery) that also assigns picking tasks by worker behaviour (Annex III 4(b))
    "forklift_with_task_allocation": Case(
        {"annex1": a1("annex1.b.21"), "annex3_uses": ["annex3.4.b"]},
        HIGH,
        ["art6.1", "annex1.b.21", "art2.2", "art6.2", "annex3.4.b"],
        has={"art4", "art9", "art49"},
        lacks={"art2.2"},
    ),
    # Importer of an AI drone flight controller for inspections (unmanned aircraft, B.20): sectoral route only
    "drone_controller_importer": Case(
        {"annex1": a1("annex1.b.20")}, HIGH, ["art6.1", "annex1.b.20", "art2.2"], role="importer", exact=[]
    ),
    # ---------------------------------------------------------------- Art. 6(1), Annex I Section A
    # MDR class IIa software triaging occupational-health X-rays (notified body involved): high
    "mdr_xray_triage": Case(
        {"annex1": a1("annex1.a.11")},
        HIGH,
        ["art6.1", "annex1.a.11"],
        has=PROVIDER_HR | {"art4"},
        lacks={"art49", "art2.2", "art26"},
    ),
    # The company clinic using that software (deployer): Art. 26 and Art. 73 via the provider; no FRIA
    "mdr_xray_triage_deployer": Case(
        {"annex1": a1("annex1.a.11")},
        HIGH,
        ["art6.1", "annex1.a.11"],
        role="deployer",
        exact=["art4", "art26", "art73"],
    ),
    # Smart hard hat detecting falls and triggering alarms (PPE Reg. 2016/425, third party): high
    "smart_hard_hat": Case({"annex1": a1("annex1.a.9")}, HIGH, ["art6.1", "annex1.a.9"], has=PROVIDER_HR),
    # Lift controller predicting door faults, part of the safety chain (Lifts Dir. 2014/33/EU): high
    "lift_door_safety": Case({"annex1": a1("annex1.a.4")}, HIGH, ["art6.1", "annex1.a.4"], has=PROVIDER_HR),
    # Wi-Fi sensor module needing a notified body only for radio aspects (Art. 6(1c)): not high-risk
    "radio_module_emc_only": Case({"annex1": a1("annex1.a.6", third_party=False)}, MINIMAL, []),
    # Importer of an AI-enabled toy robot (toy safety, third-party assessed): Art. 23 only
    "toy_robot_importer": Case(
        {"annex1": a1("annex1.a.2")}, HIGH, ["art6.1", "annex1.a.2"], role="importer", exact=["art23"]
    ),
    # Distributor of ATEX gas detectors with AI leak detection: Art. 24 only
    "atex_detector_distributor": Case(
        {"annex1": a1("annex1.a.5")}, HIGH, ["art6.1", "annex1.a.5"], role="distributor", exact=["art24"]
    ),
    # ---------------------------------------------------------------- Art. 6(2), Annex III
    # CV screening for hiring, built in-house: annex3.4.a -> high_risk, all provider duties incl. registration
    "cv_screening_provider": Case(
        {"annex3_uses": ["annex3.4.a"]},
        HIGH,
        ["art6.2", "annex3.4.a"],
        has=PROVIDER_HR | {"art49", "art4"},
        lacks={"art49.5", "art26", "art6.4"},
    ),
    # HR department using a vendor's CV screening (deployer): Art. 26, conditional FRIA and 49(3), Art. 86
    "cv_screening_deployer": Case(
        {"annex3_uses": ["annex3.4.a"]},
        HIGH,
        ["art6.2", "annex3.4.a"],
        role="deployer",
        exact=["art4", "art26", "art27", "art49.3", "art73", "art86"],
    ),
    # Shift and task allocation from workers' behavioural data (annex3.4.b), deployer
    "shift_allocation_deployer": Case(
        {"annex3_uses": ["annex3.4.b"]},
        HIGH,
        ["art6.2", "annex3.4.b"],
        role="deployer",
        has={"art26", "art86"},
    ),
    # Credit scoring for staff salary-advance loans (annex3.5.b): every deployer owes a FRIA
    "staff_loan_credit_scoring": Case(
        {"annex3_uses": ["annex3.5.b"]}, HIGH, ["art6.2", "annex3.5.b"], role="deployer", has={"art27"}
    ),
    # Pricing group life insurance for employees (annex3.5.c): FRIA for every deployer
    "group_life_insurance_pricing": Case(
        {"annex3_uses": ["annex3.5.c"]}, HIGH, ["art6.2", "annex3.5.c"], role="deployer", has={"art27"}
    ),
    # AI load balancing as safety component of the site's electricity supply (annex3.2): national registration
    "grid_load_balancing_provider": Case(
        {"annex3_uses": ["annex3.2"]},
        HIGH,
        ["art6.2", "annex3.2"],
        has=PROVIDER_HR | {"art49.5"},
        lacks={"art49"},
    ),
    # Water utility running that system (deployer): no FRIA, no Art. 86, no Art. 49(3) for point 2
    "grid_load_balancing_deployer": Case(
        {"annex3_uses": ["annex3.2"]},
        HIGH,
        ["art6.2", "annex3.2"],
        role="deployer",
        exact=["art4", "art26", "art73"],
    ),
    # Admission ranking for the company's apprenticeship programme (annex3.3.a)
    "apprenticeship_admission": Case({"annex3_uses": ["annex3.3.a"]}, HIGH, ["art6.2", "annex3.3.a"]),
    # Proctoring of forklift-licence theory exams (annex3.3.d)
    "exam_proctoring": Case({"annex3_uses": ["annex3.3.d"]}, HIGH, ["art6.2", "annex3.3.d"]),
    # Remote face identification of visitors across a campus (annex3.1.a)
    "campus_face_identification": Case(
        {"annex3_uses": ["annex3.1.a"]}, HIGH, ["art6.2", "annex3.1.a"], has={"art49"}
    ),
    # Call-centre voice emotion recognition for customers, deployer: high-risk and still Art. 50(3)
    "call_centre_emotion_recognition": Case(
        {"annex3_uses": ["annex3.1.c"], "transparency": ["art50.3"]},
        HIGH,
        ["art6.2", "annex3.1.c"],
        role="deployer",
        transparency=["art50.3"],
        has={"art26", "art50.3"},
    ),
    # Same system seen by its provider: Art. 50(3) binds deployers, so it is reported but not a provider duty
    "call_centre_emotion_recognition_provider": Case(
        {"annex3_uses": ["annex3.1.c"], "transparency": ["art50.3"]},
        HIGH,
        ["art6.2", "annex3.1.c"],
        transparency=["art50.3"],
        has=PROVIDER_HR,
        lacks={"art50.3"},
    ),
    # Site fire brigade emergency-call triage and dispatch plus an answering bot (annex3.5.d, art50.1)
    "emergency_call_triage": Case(
        {"annex3_uses": ["annex3.5.d"], "transparency": ["art50.1"]},
        HIGH,
        ["art6.2", "annex3.5.d"],
        transparency=["art50.1"],
        has={"art50.1", "art9"},
    ),
    # Hiring suite: ad targeting, candidate ranking and promotion scoring (two uses, answer order ignored)
    "hiring_suite_two_uses": Case(
        {"annex3_uses": ["annex3.4.b", "annex3.4.a"]}, HIGH, ["art6.2", "annex3.4.a", "annex3.4.b"]
    ),
    # Importer of a vendor's proctoring product: Art. 23 only
    "proctoring_importer": Case(
        {"annex3_uses": ["annex3.3.d"]}, HIGH, ["art6.2", "annex3.3.d"], role="importer", exact=["art23"]
    ),
    # ---------------------------------------------------------------- Art. 6(3) derogation
    # Tool that only de-duplicates and normalises incoming CVs (narrow procedural task): not high-risk
    "cv_deduplication": Case(
        {"annex3_uses": ["annex3.4.a"], "art6_3_conditions": ["art6.3.a"]},
        MINIMAL,
        ["art6.3", "art6.3.a"],
        exact=["art4", "art6.4", "art49.2"],
    ),
    # Spell-checker for appraisal texts already written by managers, with a chat UI: limited via Art. 50(1)
    "appraisal_text_polisher": Case(
        {"annex3_uses": ["annex3.4.b"], "art6_3_conditions": ["art6.3.b"], "transparency": ["art50.1"]},
        LIMITED,
        ["art6.3", "art6.3.b", "art50.1"],
        transparency=["art50.1"],
        exact=["art4", "art6.4", "art49.2", "art50.1"],
    ),
    # Flags deviations in past grading patterns but builds worker profiles: profiling keeps it high-risk
    "grading_deviation_with_profiling": Case(
        {"annex3_uses": ["annex3.4.b"], "art6_3_conditions": ["art6.3.c"], "profiling": True},
        HIGH,
        ["art6.2", "annex3.4.b"],
        has=PROVIDER_HR,
        lacks={"art6.4", "art49.2"},
    ),
    # Pre-sorting loan files before a human credit decision, two conditions (a, d)
    "loan_file_presorting": Case(
        {"annex3_uses": ["annex3.5.b"], "art6_3_conditions": ["art6.3.d", "art6.3.a"]},
        MINIMAL,
        ["art6.3", "art6.3.a", "art6.3.d"],
        has={"art6.4", "art49.2"},
        lacks=NOT_PROVIDER_HR,
    ),
    # The bank using that pre-sorting tool (deployer): Art. 6(4) and 49(2) bind the provider only
    "loan_file_presorting_deployer": Case(
        {"annex3_uses": ["annex3.5.b"], "art6_3_conditions": ["art6.3.a"]},
        MINIMAL,
        ["art6.3", "art6.3.a"],
        role="deployer",
        exact=["art4"],
    ),
    # Machine-safety vision (Section A lift) whose worker-scheduling feature is derogated: still high via 6(1)
    "lift_safety_with_derogated_hr_use": Case(
        {"annex1": a1("annex1.a.4"), "annex3_uses": ["annex3.4.b"], "art6_3_conditions": ["art6.3.a"]},
        HIGH,
        ["art6.1", "annex1.a.4"],
        has=PROVIDER_HR | {"art6.4", "art49.2"},
        lacks={"art49"},
    ),
    # ---------------------------------------------------------------- Art. 50, minimal, GPAI
    # Maintenance-manual chatbot for technicians: art50.1 -> limited_risk
    "maintenance_chatbot": Case(
        {"transparency": ["art50.1"]},
        LIMITED,
        ["art50.1"],
        transparency=["art50.1"],
        exact=["art4", "art50.1"],
    ),
    # Marketing image generator used by the comms team (deployer): Art. 50(2) binds the provider
    "marketing_image_generator_deployer": Case(
        {"transparency": ["art50.2"]},
        LIMITED,
        ["art50.2"],
        role="deployer",
        transparency=["art50.2"],
        exact=["art4"],
    ),
    # Synthetic-presenter safety training videos published by the deployer: art50.4
    "deepfake_training_videos": Case(
        {"transparency": ["art50.4"]},
        LIMITED,
        ["art50.4"],
        role="deployer",
        transparency=["art50.4"],
        exact=["art4", "art50.4"],
    ),
    # Predictive maintenance on CNC spindles: minimal_risk
    "cnc_predictive_maintenance": Case({}, MINIMAL, [], exact=["art4"]),
    # Visual weld inspection (quality control only, Art. 6(1a)), no Annex I claim: minimal
    "weld_inspection": Case({"annex1": None, "profiling": False}, MINIMAL, []),
    # Supplier-risk clustering that profiles companies' contacts but has no Annex III use: minimal
    "supplier_clustering_profiling_only": Case({"profiling": True}, MINIMAL, []),
    # In-house LLM published as a model for other teams (GPAI, no systemic risk): minimal, Art. 53
    "in_house_llm": Case({"gpai_model": True}, MINIMAL, [], gpai=GPAI, exact=["art4"]),
    # Frontier-scale model behind a plant assistant chatbot (systemic risk): limited, Art. 53 and 55
    "frontier_model_assistant": Case(
        {"transparency": ["art50.1"], "gpai_model": True, "gpai_systemic_risk": True},
        LIMITED,
        ["art50.1"],
        transparency=["art50.1"],
        gpai=GPAI_SYSTEMIC,
    ),
    # GPAI model fine-tuned for CV screening: high-risk stays high-risk, GPAI duties alongside
    "gpai_cv_screening": Case(
        {"annex3_uses": ["annex3.4.a"], "gpai_model": True},
        HIGH,
        ["art6.2", "annex3.4.a"],
        gpai=GPAI,
        has=PROVIDER_HR,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_classification_cases(case: Case, catalog: Catalog) -> None:
    result = classify(case.answers, ai_act_role=case.role, catalog=catalog, as_of=case.as_of)
    assert result.ai_act_class is case.ai_act_class
    assert result.basis == case.basis
    assert result.transparency_obligations == case.transparency
    assert result.gpai_obligations == case.gpai
    ids = [o.id for o in result.obligations]
    assert len(ids) == len(set(ids)), "obligations listed twice"
    if case.exact is not None:
        assert ids == case.exact
    assert set(case.has) <= set(ids), f"missing {set(case.has) - set(ids)}"
    assert not set(case.lacks) & set(ids), f"unexpected {set(case.lacks) & set(ids)}"
    assert result.catalog_version == VERSION
    assert result.rationale
    for o in result.obligations:
        assert o.in_force is (o.applies_from <= case.as_of)


def test_at_least_45_cases() -> None:
    assert len(CASES) >= 45


def _by_id(result: ClassificationResult) -> dict[str, Any]:
    return {o.id: o for o in result.obligations}


def test_annex3_route_dates_follow_the_2026_amendment(catalog: Catalog) -> None:
    # AI Act Art. 113(c)(i) as amended: Annex III systems from 2 Dec 2027; Art. 4 since 2 Feb 2025.
    obs = _by_id(classify({"annex3_uses": ["annex3.4.a"]}, catalog=catalog, today=TODAY))
    assert obs["art4"].applies_from == date(2025, 2, 2) and obs["art4"].in_force
    for oid in PROVIDER_HR | {"art49"}:
        assert obs[oid].applies_from == date(2027, 12, 2)
        assert not obs[oid].in_force


def test_annex1_route_dates_follow_the_2026_amendment(catalog: Catalog) -> None:
    # AI Act Art. 113(c)(ii) as amended: Annex I (Art. 6(1)) systems from 2 Aug 2028.
    obs = _by_id(classify({"annex1": a1("annex1.a.11")}, catalog=catalog, today=TODAY))
    assert {obs[oid].applies_from for oid in PROVIDER_HR} == {date(2028, 8, 2)}
    section_b = classify({"annex1": a1("annex1.b.21")}, catalog=catalog, today=TODAY)
    assert "art2.2" in section_b.basis and section_b.obligations == []  # Art. 2(2) is a scope rule


@pytest.mark.parametrize(
    ("today", "in_force"),
    [(date(2027, 12, 1), False), (date(2027, 12, 2), True), (date(2030, 1, 1), True)],
)
def test_in_force_relative_to_today(catalog: Catalog, today: date, in_force: bool) -> None:
    obs = _by_id(classify({"annex3_uses": ["annex3.4.a"]}, catalog=catalog, today=today))
    assert obs["art9"].in_force is in_force
    assert obs["art4"].in_force


@pytest.mark.parametrize(("today", "in_force"), [(date(2026, 8, 1), False), (date(2026, 8, 2), True)])
def test_art50_in_force_from_2_august_2026(catalog: Catalog, today: date, in_force: bool) -> None:
    # Art. 113: Art. 50 applies from 2 Aug 2026; the day before it neither binds nor decides the class.
    result = classify({"transparency": ["art50.1"]}, catalog=catalog, today=today)
    assert result.ai_act_class is (LIMITED if in_force else MINIMAL)
    assert ("art50.1" in _by_id(result)) is in_force
    assert [(u.id, u.applies_from) for u in result.upcoming] == (
        [] if in_force else [("art50.1", date(2026, 8, 2))]
    )


@pytest.mark.parametrize(("today", "in_force"), [(date(2026, 12, 1), False), (date(2026, 12, 2), True)])
def test_new_prohibitions_apply_from_2_december_2026(catalog: Catalog, today: date, in_force: bool) -> None:
    # Art. 5(1)(ba), inserted by Reg. (EU) 2026/1744, counts from 2 Dec 2026: before that it is upcoming.
    result = classify({"prohibited_practices": ["art5.1.ba"]}, catalog=catalog, today=today)
    assert result.ai_act_class is (PROHIBITED if in_force else MINIMAL)
    assert "2026-12-02" in result.rationale
    if in_force:
        assert result.obligations[0].id == "art5.1.ba" and result.obligations[0].in_force
        assert result.upcoming == [] and result.next_change is None
    else:
        assert [u.id for u in result.upcoming] == ["art5.1.ba"]
        assert result.next_change is not None
        assert (result.next_change.on, result.next_change.ai_act_class) == (date(2026, 12, 2), PROHIBITED)


def test_today_defaults_to_the_current_date(catalog: Catalog) -> None:
    obs = _by_id(classify({}, catalog=catalog))
    assert obs["art4"].in_force


def test_fria_conditional_for_private_deployers_but_not_for_credit_scoring(catalog: Catalog) -> None:
    # AI Act Art. 27(1): public bodies and public-service providers, plus every deployer of 5(b)/5(c).
    hr = _by_id(
        classify({"annex3_uses": ["annex3.4.a"]}, ai_act_role="deployer", catalog=catalog, today=TODAY)
    )
    assert hr["art27"].condition and "public" in hr["art27"].condition
    mixed = classify(
        {"annex3_uses": ["annex3.4.a", "annex3.5.b"]}, ai_act_role="deployer", catalog=catalog, today=TODAY
    )
    assert _by_id(mixed)["art27"].condition is None


def test_rationale_names_the_deciding_articles(catalog: Catalog) -> None:
    r = classify({"annex1": a1("annex1.b.21"), "transparency": ["art50.1"]}, catalog=catalog, today=TODAY)
    assert "Art. 6(1)" in r.rationale and "Regulation (EU) 2023/1230" in r.rationale
    assert "Art. 2(2)" in r.rationale and "sectoral act" in r.rationale
    assert "Art. 2(2) leaves no room for Art. 50(1)" in r.rationale
    m = classify({"annex1": a1("annex1.a.11"), "transparency": ["art50.1"]}, catalog=catalog, today=TODAY)
    assert "Art. 50(1)" in m.rationale and "binding now" in m.rationale and "from 2028-08-02" in m.rationale
    d = classify(
        {"annex3_uses": ["annex3.4.a"], "art6_3_conditions": ["art6.3.a"]}, catalog=catalog, today=TODAY
    )
    assert "Art. 6(3)(a)" in d.rationale and "Art. 6(4)" in d.rationale and "Art. 49(2)" in d.rationale
    p = classify(
        {"annex3_uses": ["annex3.4.a"], "art6_3_conditions": ["art6.3.a"], "profiling": True},
        catalog=catalog,
        today=TODAY,
    )
    assert "profiles natural persons" in p.rationale
    x = classify(
        {"prohibited_practices": ["art5.1.f"], "annex3_uses": ["annex3.4.b"]}, catalog=catalog, today=TODAY
    )
    assert "Art. 5(1)(f)" in x.rationale and "would be high-risk under Art. 6(2)" in x.rationale
    s = classify({"annex1": a1("annex1.b.21", third_party=False)}, catalog=catalog, today=TODAY)
    assert "third-party conformity assessment" in s.rationale and "does not apply" in s.rationale


def test_classify_accepts_a_model_and_a_mapping_alike(catalog: Catalog) -> None:
    raw = {"annex3_uses": ["annex3.4.a"], "transparency": ["art50.1"]}
    assert classify(raw, catalog=catalog, today=TODAY) == classify(
        ClassificationAnswers.model_validate(raw), catalog=catalog, today=TODAY
    )


def test_result_serialises_to_the_contract_shape(catalog: Catalog) -> None:
    body = classify({"annex3_uses": ["annex3.4.a"]}, catalog=catalog, today=TODAY).model_dump(mode="json")
    assert set(body) == {
        "ai_act_class",
        "basis",
        "transparency_obligations",
        "obligations",
        "gpai_obligations",
        "rationale",
        "catalog_version",
        "effective_role",
        "as_of",
        "upcoming",
        "next_change",
        "gpai_duties",
        "incident_reporting",
    }
    assert body["effective_role"] == "provider" and body["as_of"] == TODAY.isoformat()
    assert {"id", "applies_from"} <= set(body["upcoming"][0])
    assert body["ai_act_class"] == "high_risk"
    assert {"id", "title", "applies_from", "in_force"} <= set(body["obligations"][0])


_ID_SETS = {
    "prohibited_practices": ["art5.1.a", "art5.1.ba", "art5.1.f"],
    "annex3_uses": ["annex3.1.c", "annex3.2", "annex3.4.a", "annex3.5.b"],
    "art6_3_conditions": ["art6.3.a", "art6.3.d"],
    "transparency": ["art50.1", "art50.2", "art50.3", "art50.4"],
}


@st.composite
def _answers(draw: st.DrawFn) -> dict[str, Any]:
    answers: dict[str, Any] = {
        k: draw(st.lists(st.sampled_from(v), unique=True)) for k, v in _ID_SETS.items()
    }
    if not answers["annex3_uses"]:
        answers["art6_3_conditions"] = []
    answers["profiling"] = draw(st.booleans())
    if draw(st.booleans()):
        answers["annex1"] = a1(
            draw(st.sampled_from(["annex1.a.11", "annex1.b.21"])), draw(st.booleans()), draw(st.booleans())
        )
    return answers


@settings(max_examples=200, deadline=None)
@given(answers=_answers(), systemic=st.booleans(), role=st.sampled_from(["provider", "deployer"]))
def test_gpai_and_transparency_never_change_the_class(
    answers: dict[str, Any], systemic: bool, role: str, catalog: Catalog
) -> None:
    cat = catalog
    base = classify(answers, ai_act_role=role, catalog=cat, today=TODAY)
    with_gpai = classify(
        {**answers, "gpai_model": True, "gpai_systemic_risk": systemic},
        ai_act_role=role,
        catalog=cat,
        today=TODAY,
    )
    assert with_gpai.ai_act_class is base.ai_act_class
    assert with_gpai.obligations == base.obligations
    assert with_gpai.gpai_obligations == ((GPAI_SYSTEMIC if systemic else GPAI) if role == "provider" else [])
    if "art2.2" not in base.basis or "annex3" in str(base.basis):  # Art. 2(2) alone leaves no Art. 50 duty
        assert sorted(base.transparency_obligations) == sorted(answers["transparency"])
    if any(catalog.ai_act.practice_by_id[p].applies_from <= TODAY for p in answers["prohibited_practices"]):
        assert base.ai_act_class is PROHIBITED
    elif answers["annex3_uses"] and (answers["profiling"] or not answers["art6_3_conditions"]):
        assert base.ai_act_class is HIGH


# --------------------------------------------------------------------------------------- validation


def _errors(answers: Any, catalog: Catalog) -> list[dict[str, Any]]:
    with pytest.raises(Unprocessable) as info:
        validate_answers(answers, catalog)
    assert info.value.status == 422
    assert info.value.errors
    return info.value.errors


def test_valid_answers_pass(catalog: Catalog) -> None:
    assert validate_answers({"annex3_uses": ["annex3.4.a"], "annex1": a1("annex1.b.21")}, catalog) is None
    assert validate_answers(ClassificationAnswers(), catalog) is None


def test_unknown_identifier(catalog: Catalog) -> None:
    errors = _errors({"annex3_uses": ["annex3.9.z"]}, catalog)
    assert errors == [{"loc": ["body", "answers", "annex3_uses", 0], "msg": errors[0]["msg"]}]
    assert "unknown identifier 'annex3.9.z'" in errors[0]["msg"]


def test_identifier_of_the_wrong_kind_is_named(catalog: Catalog) -> None:
    errors = _errors({"prohibited_practices": ["art5.1.f", "annex3.4.a"]}, catalog)
    assert errors[0]["loc"] == ["body", "answers", "prohibited_practices", 1]
    assert "is an Annex III use" in errors[0]["msg"]


def test_duplicate_identifier(catalog: Catalog) -> None:
    errors = _errors({"transparency": ["art50.1", "art50.1"]}, catalog)
    assert errors[0]["loc"] == ["body", "answers", "transparency", 1]
    assert "duplicate" in errors[0]["msg"]


@pytest.mark.parametrize(
    ("answers", "loc"),
    [
        ({"profiling": "yes"}, ["body", "answers", "profiling"]),
        ({"gpai_model": 1}, ["body", "answers", "gpai_model"]),
        ({"annex3_uses": "annex3.4.a"}, ["body", "answers", "annex3_uses"]),
        ({"annex3_uses": [4]}, ["body", "answers", "annex3_uses", 0]),
        (
            {"annex1": {"legislation": "annex1.b.21", "safety_component": "true"}},
            ["body", "answers", "annex1", "safety_component"],
        ),
    ],
)
def test_wrong_type(answers: dict[str, Any], loc: list[Any], catalog: Catalog) -> None:
    assert _errors(answers, catalog)[0]["loc"] == loc


@pytest.mark.parametrize(
    ("answers", "loc"),
    [
        ({"annex_3_uses": ["annex3.4.a"]}, ["body", "answers", "annex_3_uses"]),
        (
            {"annex1": {"legislation": "annex1.b.21", "notified_body": True}},
            ["body", "answers", "annex1", "notified_body"],
        ),
    ],
)
def test_unknown_key(answers: dict[str, Any], loc: list[Any], catalog: Catalog) -> None:
    errors = _errors(answers, catalog)
    assert errors[0]["loc"] == loc


def test_derogation_without_annex3_use(catalog: Catalog) -> None:
    errors = _errors({"art6_3_conditions": ["art6.3.a"]}, catalog)
    assert errors[0]["loc"] == ["body", "answers", "art6_3_conditions"]
    assert "Annex III" in errors[0]["msg"]


def test_systemic_risk_without_gpai_model(catalog: Catalog) -> None:
    errors = _errors({"gpai_systemic_risk": True}, catalog)
    assert errors[0]["loc"] == ["body", "answers", "gpai_systemic_risk"]


def test_annex1_legislation_must_be_in_annex1(catalog: Catalog) -> None:
    errors = _errors({"annex1": a1("annex3.4.a")}, catalog)
    assert errors[0]["loc"] == ["body", "answers", "annex1", "legislation"]
    assert "is an Annex III use" in errors[0]["msg"]


def test_deleted_machinery_point_points_to_section_b(catalog: Catalog) -> None:
    # Reg. (EU) 2026/1744 deleted Annex I Section A point 1 (Machinery Directive).
    errors = _errors({"annex1": a1("annex1.a.1")}, catalog)
    assert "annex1.b.21" in errors[0]["msg"]


def test_annex1_conditions_need_legislation(catalog: Catalog) -> None:
    errors = _errors({"annex1": {"safety_component": True}}, catalog)
    assert errors[0]["loc"] == ["body", "answers", "annex1", "legislation"]


def test_every_problem_is_reported_at_once(catalog: Catalog) -> None:
    errors = _errors(
        {"annex3_uses": ["nope"], "transparency": ["art50.9"], "art6_3_conditions": ["art6.3.a"]}, catalog
    )
    locs = [e["loc"][2:] for e in errors]
    assert ["annex3_uses", 0] in locs and ["transparency", 0] in locs


def test_parse_answers_uses_the_given_loc(catalog: Catalog) -> None:
    with pytest.raises(Unprocessable) as info:
        parse_answers({"annex3_uses": ["x"]}, catalog, loc=("answers",))
    assert info.value.errors[0]["loc"] == ["answers", "annex3_uses", 0]


def test_unknown_role(catalog: Catalog) -> None:
    with pytest.raises(Unprocessable) as info:
        classify({}, ai_act_role="manufacturer", catalog=catalog)
    assert info.value.errors[0]["loc"] == ["body", "ai_act_role"]


# ----------------------------------------------------------------------------------------- catalogue


def test_shipped_catalogue_contents(catalog: Catalog) -> None:
    ai = catalog.ai_act
    assert catalog.catalog_version == VERSION == "2026-12-06"
    assert ai.roles == [
        "provider", "deployer", "importer", "distributor", "authorised_representative", "product_manufacturer"
    ]  # fmt: skip
    assert "2026/1744" in catalog.legal_basis
    assert set(ai.practice_by_id) == {f"art5.1.{x}" for x in "abcdefgh"} | {"art5.1.ba", "art5.1.bb"}
    assert {p.applies_from for p in ai.prohibited_practices if p.id.endswith(("ba", "bb"))} == {
        date(2026, 12, 2)
    }
    assert set(ai.legislation_by_id) == {f"annex1.a.{n}" for n in range(2, 13)} | {
        f"annex1.b.{n}" for n in range(13, 22)
    }
    assert ai.legislation_by_id["annex1.b.21"].act == "Regulation (EU) 2023/1230"
    assert list(ai.annex3_by_id) == [
        "annex3.1.a", "annex3.1.b", "annex3.1.c", "annex3.2",
        "annex3.3.a", "annex3.3.b", "annex3.3.c", "annex3.3.d",
        "annex3.4.a", "annex3.4.b",
        "annex3.5.a", "annex3.5.b", "annex3.5.c", "annex3.5.d",
        "annex3.6.a", "annex3.6.b", "annex3.6.c", "annex3.6.d", "annex3.6.e",
        "annex3.7.a", "annex3.7.b", "annex3.7.c", "annex3.7.d",
        "annex3.8.a", "annex3.8.b",
    ]  # fmt: skip
    assert {u.applies_from for u in ai.annex3_uses} == {date(2027, 12, 2)}
    assert list(ai.condition_by_id) == ["art6.3.a", "art6.3.b", "art6.3.c", "art6.3.d"]
    assert list(ai.transparency_by_id) == ["art50.1", "art50.2", "art50.3", "art50.4"]
    assert {g.id: g.applies_from for g in ai.gpai_duties} == {
        g: date(2025, 8, 2) for g in [*GPAI_SYSTEMIC, "art54"]
    }
    assert list(ai.exclusion_by_id) == ["art2.3", "art2.4", "art2.6", "art2.8", "art2.10", "art2.12"]
    assert list(ai.answerable_role_change_by_id) == ["art25.1.a", "art25.1.b", "art25.1.c"]
    assert list(ai.exception_by_id) == ["art5.1.h.i", "art5.1.h.ii", "art5.1.h.iii"]
    assert "art2.2" not in ai.obligation_by_id and "art2.2" in ai.scope_rule_by_id

    nist = catalog.nist
    assert list(nist.function_by_id) == ["GOVERN", "MAP", "MEASURE", "MANAGE"]
    assert len(nist.category_by_id) == 19 and len(nist.subcategory_by_id) == 72
    per_function = {f: sum(s.id.startswith(f + " ") for s in nist.subcategories) for f in nist.function_by_id}
    assert per_function == {"GOVERN": 19, "MAP": 18, "MEASURE": 22, "MANAGE": 13}
    assert "MEASURE 2.11" in nist.subcategory_by_id and "MANAGE 4.3" in nist.subcategory_by_id
    assert len(nist.trustworthiness_characteristics) == 7
    assert [nist.risk_tier(1, 1), nist.risk_tier(3, 3), nist.risk_tier(4, 3), nist.risk_tier(5, 5)] == [
        "low",
        "medium",
        "high",
        "critical",
    ]
    with pytest.raises(ValueError):
        nist.risk_tier(6, 1)

    iec = catalog.iec62443
    assert iec.fr_ids == ("FR1", "FR2", "FR3", "FR4", "FR5", "FR6", "FR7")
    assert sorted(iec.sl_by_level) == [0, 1, 2, 3, 4]
    assert 3.5 in iec.purdue_by_level
    assert [z.code for z in iec.default_zones] == ["enterprise", "dmz", "operations", "control", "field"]
    assert all(set(z.sl_target) == set(iec.fr_ids) for z in iec.default_zones)


def test_cite() -> None:
    assert cite("art5.1.ba") == "Art. 5(1)(ba)"
    assert cite("art49.2") == "Art. 49(2)"
    assert cite("annex1.b.21") == "Annex I Section B point 21"
    assert cite("annex3.2") == "Annex III point 2"
    assert cite("annex3.4.a") == "Annex III point 4(a)"
    assert cite("GOVERN 1.1") == "GOVERN 1.1"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "risk_catalog"
    shutil.copytree(CATALOG_DIR, target)
    return target


def _edit(directory: Path, filename: str, change: Any) -> None:
    path = directory / filename
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _load_error(directory: Path) -> str:
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    return str(info.value)


def test_broken_catalogue_bad_date(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    _edit(d, "ai_act.yaml", lambda data: data["annex3_uses"][3].update(applies_from="2027-13-02"))
    msg = _load_error(d)
    assert "ai_act.yaml: annex3_uses[3].applies_from: invalid date" in msg


def test_broken_catalogue_unknown_key(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    _edit(d, "ai_act.yaml", lambda data: data["obligations"][2].update(bindz=["provider"]))
    assert "ai_act.yaml: obligations[2].bindz: unknown key" in _load_error(d)


def test_broken_catalogue_duplicate_id(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    _edit(d, "ai_act.yaml", lambda data: data["annex3_uses"][5].update(id="annex3.1.a"))
    assert "ai_act.yaml: annex3_uses[5].id: duplicate id 'annex3.1.a'" in _load_error(d)


def test_broken_catalogue_unknown_reference(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    _edit(d, "ai_act.yaml", lambda data: data["obligation_sets"][2]["obligations"].append("art99"))
    assert "ai_act.yaml: obligation_sets[2].obligations[19]: unknown obligation 'art99'" in _load_error(d)


def test_broken_catalogue_role_mismatch(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    _edit(d, "ai_act.yaml", lambda data: data["obligation_sets"][2]["roles"].append("deployer"))
    assert "does not bind role 'deployer'" in _load_error(d)


def test_broken_catalogue_nist_matrix(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    _edit(d, "nist_ai_rmf.yaml", lambda data: data["risk_matrix"]["matrix"][4].__setitem__(4, "severe"))
    assert "nist_ai_rmf.yaml: risk_matrix.matrix[4][4]: unknown tier 'severe'" in _load_error(d)


def test_broken_catalogue_iec_vector(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    _edit(d, "iec62443.yaml", lambda data: data["default_zones"][0]["sl_target"].pop("FR7"))
    assert "iec62443.yaml: default_zones[0].sl_target: keys must be exactly" in _load_error(d)


def test_broken_catalogue_duplicate_yaml_key(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    path = d / "catalog.yaml"
    path.write_text(path.read_text(encoding="utf-8") + 'catalog_version: "again"\n', encoding="utf-8")
    msg = _load_error(d)
    assert "catalog.yaml" in msg and "duplicate key 'catalog_version'" in msg


def test_missing_file(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    (d / "iec62443.yaml").unlink()
    assert "iec62443.yaml: cannot read file" in _load_error(d)


def test_new_catalogue_version_needs_no_code_change(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    _edit(d, "catalog.yaml", lambda data: data.update(catalog_version="2027-03-01"))

    def amend(data: dict[str, Any]) -> None:
        # A hypothetical later amendment: an earlier Annex III date and a FRIA for every HR deployer.
        for s in data["obligation_sets"]:
            if s["route"] == "annex3":
                s["applies_from"] = "2027-08-02"
        data["obligation_sets"].append(
            {"route": "annex3", "roles": ["deployer"], "applies_from": "2027-08-02", "obligations": ["art27"]}
        )

    _edit(d, "ai_act.yaml", amend)
    new = load_catalog(d)
    result = classify({"annex3_uses": ["annex3.4.a"]}, ai_act_role="deployer", catalog=new, today=TODAY)
    assert result.catalog_version == "2027-03-01"
    obs = _by_id(result)
    assert obs["art26"].applies_from == date(2027, 8, 2)
    assert obs["art27"].condition is None


def test_get_catalog_reads_the_configured_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _copy(tmp_path)
    _edit(d, "catalog.yaml", lambda data: data.update(catalog_version="2099-01-01"))
    monkeypatch.setenv("AIREG_RISK_CATALOG_DIR", str(d))
    get_settings.cache_clear()
    get_catalog.cache_clear()
    try:
        assert get_catalog().catalog_version == "2099-01-01"
        assert get_catalog() is get_catalog()
        assert classify({}).catalog_version == "2099-01-01"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        get_catalog.cache_clear()
    assert get_catalog().catalog_version != "2099-01-01"
