"""Requirements of systems and of the organisation (issue 14): derived from the current classification and
the adopted frameworks, kept in step when the classification changes, changed through the API and the CLI
under the rules (note for not_applicable, evidence for met, current revision), audited, and authorized."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.compliance.frameworks import FRAMEWORKS_DIR
from app.db import set_clock_offset
from app.settings import get_settings
from tests.compliance.test_frameworks import catalog_copy  # noqa: F401  (the fixture, by name)
from tests.systems.helpers import assert_problem, audit_events, system_body

Headers = dict[str, str]
HIGH_RISK_HR = {"annex3_uses": ["annex3.4.a"]}  # Annex III 4(a), recruitment: duties from 2 Dec 2027
ANNEX3_DATE = "2027-12-02"
# What the catalogue gives a provider and a deployer of an Annex III system, without Art. 4 (organisation's)
PROVIDER_DUTIES = {
    *("art8", "art9", "art10", "art11", "art12", "art13", "art14", "art15", "art16", "art17", "art18"),
    *("art19", "art20", "art21", "art43", "art47", "art48", "art49", "art72", "art73"),
}
DEPLOYER_DUTIES = {"art26", "art27", "art49.3", "art73", "art86"}


@pytest.fixture
def people(make_user: Callable[..., Headers], plant: dict[str, Any], admin: Headers) -> dict[str, Headers]:
    """An admin, a compliance officer in STR, one in LYO, and bob, business owner of the STR systems."""
    return {
        "admin": admin,
        "officer": make_user("cora", ("compliance_officer", "STR")),
        "lyon": make_user("leo", ("compliance_officer", "LYO")),
        "bob": make_user("bob", ("business_owner", "STR")),
    }


@pytest.fixture
def classified(client: Any, people: dict[str, Headers]) -> Callable[..., str]:
    """Create a system in STR (a provider's, unless ``ai_act_role`` says) classified with ``answers``."""

    def factory(answers: dict[str, Any], **overrides: Any) -> str:
        overrides.setdefault("ai_act_role", "provider")
        r = client.post("/api/v1/systems", json=system_body(**overrides), headers=people["admin"])
        assert r.status_code == 201, r.text
        system_id = str(r.json()["id"])
        classify(client, people["officer"], system_id, answers)
        return system_id

    return factory


@pytest.fixture
def clock() -> Iterator[Callable[[str], None]]:
    """Move the service clock to a day (UTC noon); reset after the test."""

    def travel(day: str) -> None:
        target = datetime.fromisoformat(f"{day}T12:00:00+00:00")
        set_clock_offset(target - datetime.now(UTC))

    yield travel
    set_clock_offset(None)


def classify(client: Any, headers: Headers, system_id: str, answers: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/api/v1/systems/{system_id}/classification", json={"answers": answers}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def requirements(client: Any, headers: Headers, system_id: str) -> dict[str, dict[str, Any]]:
    r = client.get(f"/api/v1/systems/{system_id}/requirements", params={"limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(body["items"])
    ids = [i["id"] for i in body["items"]]
    assert len(ids) == len(set(ids)), "a requirement is listed once"
    return {i["id"]: i for i in body["items"]}


def of(reqs: dict[str, dict[str, Any]], framework: str, *, derived: bool = True) -> set[str]:
    return {r["control"] for r in reqs.values() if r["framework"] == framework and r["derived"] is derived}


# ------------------------------------------------------------------------------------------- derivation


def test_a_high_risk_provider_gets_its_duties_and_the_voluntary_controls(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    system_id = classified(HIGH_RISK_HR)
    reqs = requirements(client, people["officer"], system_id)
    assert of(reqs, "ai_act") == PROVIDER_DUTIES  # art4 is the organisation's, not the system's
    art9 = reqs["ai_act:art9"]
    assert art9 == {
        **art9,
        "framework": "ai_act",
        "control": "art9",
        "status": "open",
        "applies_from": ANNEX3_DATE,
        "binding": False,  # 6 Dec 2026: Annex III duties do not bind yet
        "derived": True,
        "evidence": [],
        "revision": 1,
        "owner_role": "compliance_officer",
        "note": None,
    }
    assert art9["title"]
    # ISO/IEC 42001 and NIST AI RMF: the per-system controls, tracked but never binding
    assert {"A.6.2.4", "A.7.4"} <= of(reqs, "iso42001") and not {"4.1", "A.2.2"} & of(reqs, "iso42001")
    assert "MAP 1.1" in of(reqs, "nist_ai_rmf") and "GOVERN 1.1" not in of(reqs, "nist_ai_rmf")
    assert not any(r["binding"] for r in reqs.values() if r["framework"] != "ai_act")
    # AI Act first, in the framework's own order
    assert next(iter(reqs)) == "ai_act:art8"


def test_a_deployer_gets_deployer_duties(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    system_id = classified(HIGH_RISK_HR, ai_act_role="deployer", vendor="HRTech")
    assert of(requirements(client, people["officer"], system_id), "ai_act") == DEPLOYER_DUTIES


def test_an_art25_role_change_makes_the_deployer_a_provider(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    answers = {**HIGH_RISK_HR, "role_change": ["art25.1.a"]}
    system_id = classified(answers, ai_act_role="deployer", vendor="HRTech")
    assert (
        of(requirements(client, people["officer"], system_id), "ai_act") == PROVIDER_DUTIES | DEPLOYER_DUTIES
    )


def test_a_limited_risk_system_gets_its_art50_duty_binding_now(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    system_id = classified({"transparency": ["art50.1"]})
    reqs = requirements(client, people["officer"], system_id)
    assert list(reqs) == ["ai_act:art50.1"]  # no voluntary controls below high-risk (applies_to_classes)
    assert (reqs["ai_act:art50.1"]["applies_from"], reqs["ai_act:art50.1"]["binding"]) == ("2026-08-02", True)


def test_an_unclassified_system_has_no_requirements(client: Any, people: dict[str, Headers]) -> None:
    r = client.post("/api/v1/systems", json=system_body(), headers=people["admin"])
    assert requirements(client, people["officer"], r.json()["id"]) == {}


def test_a_first_edition_classification_keeps_only_todays_duties(
    client: Any, people: dict[str, Headers]
) -> None:
    """A result stored by catalogue 2026-07-27 named ``art2.2`` as a duty: not a requirement today."""
    from app.classification.models import Classification
    from app.db import session_scope, utcnow

    system_id = client.post("/api/v1/systems", json=system_body(), headers=people["admin"]).json()["id"]
    result = {
        "ai_act_class": "high_risk",
        "obligations": [
            {"id": "art2.2", "title": "Annex I Section B", "applies_from": "2028-08-02", "in_force": False},
            {"id": "art4", "title": "AI literacy", "applies_from": "2025-02-02", "in_force": True},
            {"id": "art26", "title": "Deployer duties", "applies_from": ANNEX3_DATE, "in_force": False},
        ],
        "transparency_obligations": [],
        "gpai_obligations": [],
    }
    with session_scope() as session:
        session.add(
            Classification(
                system_id=system_id,
                answers=HIGH_RISK_HR,
                ai_act_role="deployer",
                effective_role="deployer",
                ai_act_class="high_risk",
                basis=["art6.2", "annex3.4.a"],
                result=result,
                catalog_version="2026-07-27",
                assessor="cora",
                created_at=utcnow(),
            )
        )
    reqs = requirements(client, people["officer"], system_id)
    assert of(reqs, "ai_act") == {"art26"}
    assert reqs["ai_act:art26"]["applies_from"] == ANNEX3_DATE


def test_reclassification_keeps_the_history(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    officer = people["officer"]
    system_id = classified(HIGH_RISK_HR)
    url = f"/api/v1/systems/{system_id}/requirements/ai_act:art9"
    r = client.patch(
        url, json={"status": "in_progress", "note": "risk file drafted", "revision": 1}, headers=officer
    )
    assert r.status_code == 200, r.text

    classify(client, officer, system_id, {"transparency": ["art50.1"]})
    reqs = requirements(client, officer, system_id)
    assert of(reqs, "ai_act") == {"art50.1"}
    assert of(reqs, "ai_act", derived=False) == PROVIDER_DUTIES  # kept, not deleted
    kept = reqs["ai_act:art9"]
    assert (kept["status"], kept["note"], kept["binding"], kept["revision"]) == (
        "in_progress",
        "risk file drafted",
        False,
        2,
    )
    assert of(reqs, "iso42001") == set() and "A.6.2.4" in of(reqs, "iso42001", derived=False)
    assert next(iter(reqs)) == "ai_act:art50.1"  # derived ones first

    classify(client, officer, system_id, HIGH_RISK_HR)
    back = requirements(client, officer, system_id)["ai_act:art9"]
    assert (back["derived"], back["status"], back["note"]) == (True, "in_progress", "risk file drafted")
    assert requirements(client, officer, system_id)["ai_act:art50.1"]["derived"] is False


def test_annex3_duties_bind_from_2_december_2027(
    client: Any,
    people: dict[str, Headers],
    classified: Callable[..., str],
    clock: Callable[[str], None],
    make_user: Callable[..., Headers],
) -> None:
    system_id = classified(HIGH_RISK_HR)
    clock("2027-12-01")
    later = make_user("vera", ("compliance_officer", "STR"))  # the fixture's tokens expired on the way
    assert requirements(client, later, system_id)["ai_act:art9"]["binding"] is False
    clock("2027-12-02")
    reqs = requirements(client, later, system_id)
    assert {r["control"] for r in reqs.values() if r["binding"]} == PROVIDER_DUTIES
    assert reqs["iso42001:A.6.2.4"]["binding"] is False  # voluntary: binding: false in iso42001.yaml


ACME = """
title: ACME chatbot rules
version: "2026.1"
applies_to_classes: [limited_risk]
binding: true
owner_role: dpo
controls:
  - {id: ACME-1, title: Chatbots say they are bots in the first message}
  - {id: ACME-2, title: Transcripts are deleted after 30 days, applies_from: 2027-06-01}
  - {id: ACME-3, title: One named person answers for all chatbots, organisation_wide: true}
"""


@pytest.mark.usefixtures("catalog_copy")
def test_a_framework_file_decides_classes_binding_and_owner(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    """A new file, adopted, with no code: its classes, binding and owner role are the file's."""
    import os

    from app.classification.catalog import get_catalog

    (get_settings().risk_catalog_dir / FRAMEWORKS_DIR / "acme.yaml").write_text(ACME)
    os.environ["AIREG_ADOPTED_FRAMEWORKS"] = "ai_act,acme"
    get_settings.cache_clear()
    get_catalog.cache_clear()
    officer = people["officer"]
    chatbot = classified({"transparency": ["art50.1"]})
    reqs = requirements(client, officer, chatbot)
    assert list(reqs) == ["ai_act:art50.1", "acme:ACME-1", "acme:ACME-2"]
    assert (reqs["acme:ACME-1"]["binding"], reqs["acme:ACME-1"]["owner_role"]) == (True, "dpo")
    assert (reqs["acme:ACME-2"]["binding"], reqs["acme:ACME-2"]["applies_from"]) == (False, "2027-06-01")
    # a high-risk system is not in the file's classes; ISO and NIST are not adopted here
    high_risk = requirements(client, officer, classified(HIGH_RISK_HR))
    assert of(high_risk, "ai_act") == PROVIDER_DUTIES
    assert {r["framework"] for r in high_risk.values()} == {"ai_act"}
    org = client.get("/api/v1/organisation/requirements", headers=officer).json()["items"]
    assert [i["id"] for i in org] == ["ai_act:art4", "acme:ACME-3"]


# ------------------------------------------------------------------------------------------ changing


def test_patch_rules_note_revision_evidence_and_audit(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    officer = people["officer"]
    system_id = classified(HIGH_RISK_HR)
    url = f"/api/v1/systems/{system_id}/requirements/ai_act:art13"
    # not applicable needs a note (a blank one is no note)
    assert_problem(
        client.patch(url, json={"status": "not_applicable", "revision": 1}, headers=officer),
        422,
        field="note",
    )
    blank = {"status": "not_applicable", "note": "  ", "revision": 1}
    assert_problem(client.patch(url, json=blank, headers=officer), 422, field="note")
    url = f"/api/v1/systems/{system_id}/requirements/ai_act:art10"
    # a change names the revision it is based on
    assert_problem(client.patch(url, json={"status": "in_progress"}, headers=officer), 422, field="revision")
    body = {"status": "not_applicable", "note": "no training data: rules only", "revision": 1}
    r = client.patch(url, json=body, headers=officer)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("id", "status", "note", "revision", "updated_by")} == {
        "id": "ai_act:art10",
        "status": "not_applicable",
        "note": "no training data: rules only",
        "revision": 2,
        "updated_by": "cora",
    }
    # stale revision, in the body or as If-Match
    assert_problem(client.patch(url, json={"status": "open", "revision": 1}, headers=officer), 409)
    r = client.patch(url, json={"status": "open"}, headers={**officer, "If-Match": '"1"'})
    assert_problem(r, 409)
    r = client.patch(url, json={"status": "open"}, headers={**officer, "If-Match": '"2"'})
    assert (r.status_code, r.json()["revision"]) == (200, 3)
    # met needs current evidence, which cannot be linked yet: refused, not recorded
    r = client.patch(url, json={"status": "met", "revision": 3}, headers=officer)
    assert assert_problem(r, 409)["code"] == "EVIDENCE_REQUIRED"
    assert requirements(client, officer, system_id)["ai_act:art10"]["status"] == "open"
    # the owner is a role that does the work (not admin, not a pipeline)
    r = client.patch(url, json={"owner_role": "mlops", "revision": 3}, headers=officer)
    assert_problem(r, 422, field="owner_role")
    r = client.patch(url, json={"owner_role": "risk_officer", "revision": 3}, headers=officer)
    assert (r.status_code, r.json()["owner_role"], r.json()["revision"]) == (200, "risk_officer", 4)
    # an unknown requirement is 404
    r = client.patch(
        f"/api/v1/systems/{system_id}/requirements/ai_act:art99", json={"revision": 1}, headers=officer
    )
    assert_problem(r, 404)

    events = [
        e
        for e in audit_events(client, people["admin"], entity_id=system_id)
        if e["action"] == "requirement.update"
    ]
    # in sequence order: the two changes that were made, none of the refused ones
    assert [(e["before"]["status"], e["after"]["status"]) for e in events] == [
        ("open", "not_applicable"),
        ("not_applicable", "open"),
        ("open", "open"),
    ]
    assert (events[2]["before"]["owner_role"], events[2]["after"]["owner_role"]) == (
        "compliance_officer",
        "risk_officer",
    )
    first = events[0]
    assert first["actor"] == "cora" and first["entity_type"] == "system"
    assert first["after"]["requirement"] == "ai_act:art10" and first["before"]["revision"] == 1
    assert first["after"]["note"] == "no training data: rules only"


def test_a_business_owner_reads_but_may_not_update(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    system_id = classified(HIGH_RISK_HR)
    assert "ai_act:art9" in requirements(client, people["bob"], system_id)
    url = f"/api/v1/systems/{system_id}/requirements/ai_act:art9"
    assert_problem(
        client.patch(url, json={"status": "in_progress", "revision": 1}, headers=people["bob"]), 403
    )
    denied = [
        e
        for e in audit_events(client, people["admin"], entity_id=system_id)
        if e["action"] == "access.denied" and e["actor"] == "bob"
    ]
    assert [(e["entity_type"], e["after"]["attempted"]) for e in denied] == [("requirement", "update")]
    assert requirements(client, people["officer"], system_id)["ai_act:art9"]["revision"] == 1
    r = client.patch(
        "/api/v1/organisation/requirements/ai_act:art4", json={"revision": 1}, headers=people["bob"]
    )
    assert_problem(r, 403)


def test_a_system_of_another_site_is_404(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    system_id = classified(HIGH_RISK_HR)
    assert_problem(client.get(f"/api/v1/systems/{system_id}/requirements", headers=people["lyon"]), 404)
    url = f"/api/v1/systems/{system_id}/requirements/ai_act:art9"
    assert_problem(
        client.patch(url, json={"status": "in_progress", "revision": 1}, headers=people["lyon"]), 404
    )


# -------------------------------------------------------------------------------------- organisation


def test_the_organisation_tracks_ai_literacy_once(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    officer = people["officer"]
    for _ in range(2):
        classified(HIGH_RISK_HR)
    r = client.get("/api/v1/organisation/requirements", params={"limit": 500}, headers=people["bob"])
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    ids = [i["id"] for i in items]
    assert ids.count("ai_act:art4") == 1 and ids[0] == "ai_act:art4"
    art4 = items[0]
    assert (art4["applies_from"], art4["binding"], art4["status"]) == ("2025-02-02", True, "open")
    assert {"iso42001:4.1", "iso42001:10.2", "nist_ai_rmf:GOVERN 1.1"} <= set(ids)
    assert "iso42001:A.6.2.4" not in ids and "ai_act:art9" not in ids
    assert not any(i["binding"] for i in items if i["framework"] != "ai_act")

    body = {"status": "in_progress", "note": "training plan 2027", "revision": 1}
    r = client.patch("/api/v1/organisation/requirements/ai_act:art4", json=body, headers=officer)
    assert (r.status_code, r.json()["revision"], r.json()["status"]) == (200, 2, "in_progress")
    again = client.get("/api/v1/organisation/requirements", params={"limit": 500}, headers=officer).json()
    assert [i["id"] for i in again["items"]].count("ai_act:art4") == 1 and again["total"] == len(items)
    events = [
        e
        for e in audit_events(client, people["admin"], entity_type="organisation")
        if e["action"] == "requirement.update"
    ]
    assert [(e["after"]["requirement"], e["before"]["status"], e["after"]["status"]) for e in events] == [
        ("ai_act:art4", "open", "in_progress")
    ]


def test_requirement_lists_are_paged(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    system_id = classified(HIGH_RISK_HR)
    everything = list(requirements(client, people["officer"], system_id))
    r = client.get(
        f"/api/v1/systems/{system_id}/requirements",
        params={"limit": 5, "offset": 3},
        headers=people["officer"],
    )
    body = r.json()
    assert (body["total"], body["limit"], body["offset"]) == (len(everything), 5, 3)
    assert [i["id"] for i in body["items"]] == everything[3:8]


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_lists_and_sets_requirements(
    client: Any, people: dict[str, Headers], classified: Callable[..., str]
) -> None:
    import json

    runner = CliRunner()
    system_id = classified(HIGH_RISK_HR)
    listed = runner.invoke(cli_app, ["requirements", "list", system_id, "--json"])
    assert listed.exit_code == 0, listed.output
    assert {i["control"] for i in json.loads(listed.stdout) if i["framework"] == "ai_act"} == PROVIDER_DUTIES
    text = runner.invoke(cli_app, ["requirements", "list", system_id])
    assert text.exit_code == 0 and "ai_act:art9" in text.stdout and ANNEX3_DATE in text.stdout

    # rule refusals: exit 1, nothing changed
    refused = runner.invoke(cli_app, ["requirements", "set", system_id, "ai_act:art9", "not_applicable"])
    assert refused.exit_code == 1 and "note" in refused.output
    met = runner.invoke(cli_app, ["requirements", "set", system_id, "ai_act:art9", "met"])
    assert met.exit_code == 1 and "evidence" in met.output
    # bad input: exit 2
    for args in (
        [system_id, "ai_act:art9", "done"],
        [system_id, "ai_act:art99", "open"],
        ["AIS-999999", "ai_act:art9", "open"],
    ):
        bad = runner.invoke(cli_app, ["requirements", "set", *args])
        assert bad.exit_code == 2, (args, bad.output)
    assert requirements(client, people["officer"], system_id)["ai_act:art9"]["revision"] == 1

    ok = runner.invoke(
        cli_app,
        ["requirements", "set", system_id, "ai_act:art9", "not_applicable", "--note", "not placed on market"],
    )
    assert ok.exit_code == 0, ok.output
    art9 = requirements(client, people["officer"], system_id)["ai_act:art9"]
    assert (art9["status"], art9["note"], art9["revision"]) == ("not_applicable", "not placed on market", 2)
    assert art9["updated_by"].startswith("cli")
    events = [
        e
        for e in audit_events(client, people["admin"], entity_id=system_id)
        if e["action"] == "requirement.update"
    ]
    assert [(e["before"]["status"], e["after"]["status"]) for e in events] == [("open", "not_applicable")]
    assert events[0]["actor"].startswith("cli")


def test_a_binding_framework_applies_even_when_not_adopted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The AI Act is the law: leaving it out of AIREG_ADOPTED_FRAMEWORKS does not drop its duties."""
    from app.compliance.frameworks import get_frameworks

    monkeypatch.setattr(get_settings(), "adopted_frameworks", "iso42001")
    adopted = get_frameworks().adopted
    assert adopted[0] == "iso42001" and "ai_act" in adopted and "nist_ai_rmf" not in adopted
