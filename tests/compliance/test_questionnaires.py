"""Questionnaires that produce evidence (issue 14): the FRIA (AI Act Art. 27) and the DPIA screening (GDPR
Art. 35) as forms defined in data; answers checked against their questions; a completed response becomes a
hashed Markdown document stored as evidence and linked to the form's requirements; then it is read-only."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.classification.catalog import CatalogError, get_catalog
from app.compliance.frameworks import get_frameworks
from app.compliance.questionnaires import QUESTIONNAIRES_DIR, load_questionnaires
from app.settings import get_settings
from tests.compliance.test_requirements import HIGH_RISK_HR, classify
from tests.systems.helpers import assert_problem, audit_events, system_body

Headers = dict[str, str]

FRIA_ANSWERS: dict[str, Any] = {
    "deployer_processes": "Shortlisting applicants for assembly-line jobs; a recruiter reviews every list.",
    "intended_purpose_followed": True,
    "first_use": "2027-12-01",
    "period_of_use": "Two years, reviewed yearly",
    "frequency": "weekly",
    "affected_categories": ["job_applicants", "employees"],
    "affected_groups": "About 3,000 applicants a year; older applicants and people with disabilities.",
    "rights_at_risk": ["non_discrimination", "privacy", "work"],
    "risks_of_harm": "Biased ranking against <b>older</b> applicants;\n# not a heading",
    "provider_information_used": True,
    "oversight_measures": "Two trained recruiters review each list and may override the ranking.",
    "mitigation_measures": "Suspend use, inform the provider, re-screen affected applications.",
    "internal_governance": "The HR director decides; the works council is informed each quarter.",
    "complaint_mechanism": "Applicants may ask for a human review at hr-review@example.com.",
    "authority_notified": False,
}
DPIA_BASE: dict[str, Any] = {
    "processing_description": "Ranking of applications",
    "controller": "ACME Manufacturing SE",
    **{
        q: False
        for q in (
            "evaluation_scoring",
            "automated_decisions",
            "systematic_monitoring",
            "sensitive_data",
            "large_scale",
            "matching_datasets",
            "vulnerable_subjects",
            "innovative_technology",
            "prevents_rights",
            "art35_3_a",
            "art35_3_b",
            "art35_3_c",
            "authority_list",
        )
    },
}


@pytest.fixture
def people(make_user: Callable[..., Headers], plant: dict[str, Any], admin: Headers) -> dict[str, Headers]:
    return {
        "admin": admin,
        "officer": make_user("cora", ("compliance_officer", "STR")),
        "lyon": make_user("leo", ("compliance_officer", "LYO")),
        "bob": make_user("bob", ("business_owner", "STR")),
        "dora": make_user("dora", ("dpo", "STR")),
        "audrey": make_user("audrey", ("auditor", "STR")),
        "rita": make_user("rita", ("risk_officer", "STR")),
    }


def make_system(client: Any, people: dict[str, Headers], role: str, **overrides: Any) -> str:
    """An Annex III 4(a) (recruitment) system in STR, classified, of the given AI Act role."""
    body = system_body(ai_act_role=role, vendor="HRTech", **overrides)
    r = client.post("/api/v1/systems", json=body, headers=people["admin"])
    assert r.status_code == 201, r.text
    system_id = str(r.json()["id"])
    classify(client, people["officer"], system_id, HIGH_RISK_HR)
    return system_id


@pytest.fixture
def deployer(client: Any, people: dict[str, Headers]) -> str:
    return make_system(client, people, "deployer")


def start(client: Any, headers: Headers, system_id: str, qid: str, answers: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1/systems/{system_id}/questionnaires/{qid}", json={"answers": answers}, headers=headers
    )


def url(system_id: str, rid: str = "") -> str:
    return f"/api/v1/systems/{system_id}/questionnaire-responses" + (f"/{rid}" if rid else "")


def requirement(client: Any, headers: Headers, system_id: str, ref: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/systems/{system_id}/requirements", params={"limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    return next(i for i in r.json()["items"] if i["id"] == ref)


def errors_at(response: Any) -> list[list[Any]]:
    return [e["loc"] for e in response.json()["errors"]]


# ------------------------------------------------------------------------------------------- the forms


def test_the_forms_are_listed_and_shown(client: Any, people: dict[str, Headers]) -> None:
    r = client.get("/api/v1/questionnaires", headers=people["audrey"])
    assert r.status_code == 200, r.text
    listed = {q["id"]: q for q in r.json()}
    assert set(listed) == {"fria", "dpia_screening"}
    assert listed["fria"]["evidence_for"] == ["ai_act:art27"]
    assert listed["dpia_screening"]["evidence_for"] == ["ai_act:art26"]

    fria = client.get("/api/v1/questionnaires/fria", headers=people["bob"]).json()
    cites = [s["cites"] for s in fria["sections"]]
    assert cites == [f"Art. 27(1)({x})" for x in "abcdef"] + ["Art. 27(3)"]
    kinds = {q["kind"] for s in fria["sections"] for q in s["questions"]}
    assert kinds == {"text", "yes_no", "choice", "multi_choice", "date"}
    dpia = client.get("/api/v1/questionnaires/dpia_screening", headers=people["bob"]).json()
    assert dpia["outcome"]["required_when_at_least"] == 2 and len(dpia["outcome"]["criteria"]) == 9

    assert_problem(client.get("/api/v1/questionnaires/nope", headers=people["bob"]), 404)
    assert client.get("/api/v1/questionnaires", headers={}).status_code == 401


def test_a_broken_form_is_refused_naming_file_and_key(tmp_path: Path) -> None:
    source = Path(get_settings().risk_catalog_dir) / QUESTIONNAIRES_DIR
    target = tmp_path / QUESTIONNAIRES_DIR
    shutil.copytree(source, target)
    data = yaml.safe_load((target / "dpia_screening.yaml").read_text())
    data["evidence_for"] = ["ai_act:art999"]
    data["sections"][0]["questions"][0]["choices"] = [{"value": "x", "label": "X"}]
    data["sections"][0]["questions"][1]["kind"] = "essay"
    data["outcome"]["criteria"].append("processing_description")
    data["outcome"]["required_when_any"].append("no_such_question")
    (target / "dpia_screening.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (target / "fria.yaml").write_text(
        (target / "fria.yaml").read_text().replace("id: fria", "id: fria\nsurprise: 1", 1)
    )
    get_catalog.cache_clear()
    with pytest.raises(CatalogError) as exc:
        load_questionnaires(target, get_frameworks())
    text = "\n".join(exc.value.problems)
    assert "dpia_screening.yaml: sections[0].questions[1].kind" in text
    assert "fria.yaml: surprise: unknown key" in text or "fria.yaml: surprise" in text
    # the kind error stops that file's model; fix it and the cross-reference errors show
    data["sections"][0]["questions"][1]["kind"] = "text"
    (target / "dpia_screening.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(CatalogError) as exc:
        load_questionnaires(target, get_frameworks())
    text = "\n".join(exc.value.problems)
    assert "dpia_screening.yaml: evidence_for[0]: 'ai_act:art999' is no control" in text
    assert "dpia_screening.yaml: sections[0].questions[0].choices: only choice and multi_choice" in text
    assert "outcome.criteria[9]: 'processing_description' is a text question, not yes_no" in text
    assert "outcome.required_when_any[4]: no question 'no_such_question'" in text


# ------------------------------------------------------------------------------------------- the FRIA


def test_the_fria_of_a_deployer_becomes_linked_hashed_evidence(
    client: Any, people: dict[str, Headers], deployer: str
) -> None:
    bob = people["bob"]
    partial = {k: FRIA_ANSWERS[k] for k in ("deployer_processes", "frequency", "affected_categories")}
    r = start(client, bob, deployer, "fria", partial)
    assert r.status_code == 201, r.text
    draft = r.json()
    rid = draft["id"]
    assert rid.startswith("QNR-") and draft["status"] == "draft" and draft["applies"] is True
    assert draft["answers"] == partial and draft["evidence_id"] is None and draft["revision"] == 1
    assert "risks_of_harm" in draft["missing"] and "deployer_processes" not in draft["missing"]
    assert draft["outcome"] is None and draft["skipped"] == []

    # completing early: 422 listing every required question still unanswered
    r = client.post(url(deployer, rid) + "/complete", json={}, headers=bob)
    assert_problem(r, 422)
    assert ["body", "answers", "risks_of_harm"] in errors_at(r)
    assert r.json()["missing"] == draft["missing"]

    rest = {k: v for k, v in FRIA_ANSWERS.items() if k not in partial}
    r = client.patch(url(deployer, rid), json={"answers": rest, "revision": 1}, headers=people["officer"])
    assert r.status_code == 200, r.text
    assert r.json()["missing"] == [] and r.json()["revision"] == 2 and r.json()["updated_by"] == "cora"
    assert r.json()["answers"] == {k: FRIA_ANSWERS[k] for k in r.json()["answers"]}
    assert set(r.json()["answers"]) == set(FRIA_ANSWERS)

    r = client.post(url(deployer, rid) + "/complete", json={"revision": 2}, headers=bob)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "completed" and done["completed_by"] == "bob" and done["revision"] == 3
    assert done["evidence_id"].startswith("EVD-")
    assert done["linked"] == ["ai_act:art27"] and done["skipped"] == []

    # the document: stored as evidence, its bytes hash to the evidence's sha256
    evidence = client.get(f"/api/v1/evidence/{done['evidence_id']}", headers=people["audrey"]).json()
    assert evidence["media_type"] == "text/markdown" and evidence["requirements"] == ["ai_act:art27"]
    assert evidence["filename"].startswith(f"fria-{deployer}-") and evidence["filename"].endswith(".md")
    content = client.get(f"/api/v1/evidence/{done['evidence_id']}/content", headers=people["audrey"])
    assert content.status_code == 200
    assert hashlib.sha256(content.content).hexdigest() == evidence["sha256"]
    text = content.content.decode()
    assert text.startswith("# Fundamental rights impact assessment")
    assert "## 4. Specific risks of harm" in text and "Art. 27(1)(d)" in text
    assert "Job applicants; Employees" in text and "Every week" in text  # choice labels
    assert "&lt;b&gt;older&lt;/b&gt;" in text and "<b>" not in text  # user text is text, never markup
    assert "\n# not a heading" not in text
    assert "not answered" in text  # an optional question left open

    # the requirement lists the evidence, and counts it for marking it met
    art27 = requirement(client, bob, deployer, "ai_act:art27")
    assert art27["evidence"] == [done["evidence_id"]] and art27["evidence_current"] is True
    assert requirement(client, bob, deployer, "iso42001:A.5.4")["crosswalk_evidence"] == [done["evidence_id"]]

    # a completed response is read-only
    r = client.patch(url(deployer, rid), json={"answers": {"notes": "late"}, "revision": 3}, headers=bob)
    assert_problem(r, 409)
    assert r.json()["code"] == "RESPONSE_COMPLETED"
    assert_problem(client.post(url(deployer, rid) + "/complete", json={}, headers=bob), 409)

    listed = client.get(url(deployer), headers=people["audrey"]).json()
    assert [x["id"] for x in listed] == [rid]
    assert client.get(url(deployer, rid), headers=people["audrey"]).json() == done

    actions = [e["action"] for e in audit_events(client, people["admin"], entity_id=deployer)]
    for action in (
        "questionnaire.start",
        "questionnaire.update",
        "evidence.upload",
        "questionnaire.complete",
    ):
        assert action in actions


def test_a_second_fria_keeps_the_first_link(client: Any, people: dict[str, Headers], deployer: str) -> None:
    ids = []
    for _ in range(2):
        rid = start(client, people["officer"], deployer, "fria", FRIA_ANSWERS).json()["id"]
        r = client.post(url(deployer, rid) + "/complete", json={}, headers=people["officer"])
        assert r.status_code == 200, r.text
        ids.append(r.json()["evidence_id"])
    assert ids[0] != ids[1]
    assert requirement(client, people["officer"], deployer, "ai_act:art27")["evidence"] == ids


def test_a_fria_of_a_provider_does_not_apply_and_links_nothing(
    client: Any, people: dict[str, Headers]
) -> None:
    provider = make_system(client, people, "provider")
    r = start(client, people["officer"], provider, "fria", FRIA_ANSWERS)
    assert r.status_code == 201, r.text
    assert r.json()["applies"] is False and r.json()["skipped"] == ["ai_act:art27"]
    r = client.post(url(provider, r.json()["id"]) + "/complete", json={}, headers=people["officer"])
    assert r.status_code == 200, r.text
    assert r.json()["linked"] == [] and r.json()["skipped"] == ["ai_act:art27"]
    assert r.json()["evidence_id"].startswith("EVD-")


# ------------------------------------------------------------------------------------------- DPIA screening


@pytest.mark.parametrize(
    ("criteria", "required"),
    [
        ([], False),
        (["vulnerable_subjects"], False),
        (["vulnerable_subjects", "innovative_technology"], True),
    ],
)
def test_the_dpia_screening_needs_two_criteria(
    client: Any, people: dict[str, Headers], deployer: str, criteria: list[str], required: bool
) -> None:
    answers = {**DPIA_BASE, **dict.fromkeys(criteria, True)}
    r = start(client, people["dora"], deployer, "dpia_screening", answers)
    assert r.status_code == 201, r.text
    assert r.json()["outcome"] == {
        "dpia_required": required,
        "criteria_met": criteria,
        "required_when_at_least": 2,
        "named_cases_met": [],
    }
    r = client.post(url(deployer, r.json()["id"]) + "/complete", json={}, headers=people["dora"])
    assert r.status_code == 200, r.text
    assert r.json()["outcome"]["dpia_required"] is required and r.json()["linked"] == ["ai_act:art26"]
    content = client.get(f"/api/v1/evidence/{r.json()['evidence_id']}/content", headers=people["dora"])
    assert f"- dpia_required: {'yes' if required else 'no'}" in content.content.decode()


def test_a_case_the_gdpr_names_requires_a_dpia_alone(
    client: Any, people: dict[str, Headers], deployer: str
) -> None:
    r = start(client, people["dora"], deployer, "dpia_screening", {**DPIA_BASE, "art35_3_b": True})
    assert r.json()["outcome"]["dpia_required"] is True
    assert r.json()["outcome"]["named_cases_met"] == ["art35_3_b"]


def test_the_dpia_screening_applies_when_personal_data_are_processed(
    client: Any, people: dict[str, Headers]
) -> None:
    with_data = make_system(client, people, "deployer", personal_data=True)
    without = make_system(client, people, "deployer", personal_data=False)
    for system_id, expected in ((with_data, True), (without, False)):
        r = start(client, people["dora"], system_id, "dpia_screening", {})
        assert r.status_code == 201, r.text
        assert r.json()["applies"] is expected


# ------------------------------------------------------------------------------------------- answers checked


def test_each_answer_is_checked_against_its_question(
    client: Any, people: dict[str, Headers], deployer: str
) -> None:
    officer = people["officer"]
    bad = {
        "no_such_question": "x",
        "intended_purpose_followed": "yes",
        "frequency": "hourly",
        "affected_categories": ["employees", "aliens"],
        "first_use": "2027-02-30",
        "deployer_processes": "   ",
    }
    r = start(client, officer, deployer, "fria", bad)
    assert_problem(r, 422)
    assert sorted(errors_at(r)) == sorted(["body", "answers", k] for k in bad)
    assert "unknown choice 'hourly'" in r.json()["detail"]
    assert client.get(url(deployer), headers=officer).json() == []  # nothing stored

    rid = start(client, officer, deployer, "fria", {"frequency": "daily", "notes": "n"}).json()["id"]
    r = client.patch(
        url(deployer, rid), json={"answers": {"frequency": ["daily"]}, "revision": 1}, headers=officer
    )
    assert_problem(r, 422)
    assert errors_at(r) == [["body", "answers", "frequency"]]
    # null removes an answer; a stale revision is refused
    r = client.patch(url(deployer, rid), json={"answers": {"notes": None}, "revision": 1}, headers=officer)
    assert r.status_code == 200 and r.json()["answers"] == {"frequency": "daily"}
    r = client.patch(url(deployer, rid), json={"answers": {"notes": "x"}, "revision": 1}, headers=officer)
    assert_problem(r, 409)
    r = client.patch(url(deployer, rid), json={"answers": {"notes": "x"}}, headers=officer)
    assert_problem(r, 422)

    assert_problem(start(client, officer, deployer, "nope", {}), 404)
    assert_problem(client.get(url(deployer, "QNR-999999"), headers=officer), 404)


# ------------------------------------------------------------------------------------------- who may


def test_permissions(client: Any, people: dict[str, Headers], deployer: str) -> None:
    rid = start(client, people["officer"], deployer, "fria", {"notes": "n"}).json()["id"]
    # readers read, only compliance officers, DPOs and business owners write
    for who in ("audrey", "rita"):
        assert client.get(url(deployer, rid), headers=people[who]).status_code == 200
        assert_problem(start(client, people[who], deployer, "fria", {}), 403)
        r = client.patch(
            url(deployer, rid), json={"answers": {"notes": "x"}, "revision": 1}, headers=people[who]
        )
        assert_problem(r, 403)
        assert_problem(client.post(url(deployer, rid) + "/complete", json={}, headers=people[who]), 403)
    for who in ("officer", "dora", "bob"):
        assert start(client, people[who], deployer, "dpia_screening", {}).status_code == 201
    # another site's compliance officer does not see the system at all
    assert_problem(client.get(url(deployer, rid), headers=people["lyon"]), 404)
    assert_problem(start(client, people["lyon"], deployer, "fria", {}), 404)
    assert client.get("/api/v1/questionnaires", headers=people["lyon"]).status_code == 200
