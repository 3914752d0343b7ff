"""Creating AI systems: server-made ids, round-tripped fields, computed SL gap, and every refusal."""

from __future__ import annotations

import pytest

from tests.systems.helpers import assert_problem, audit_events, system_body

FULL = {
    "name": "Paint defect detection",
    "purpose": "Detects paint runs and craters on painted bodies",
    "site": "STR",
    "line": "BODY1",
    "business_owner": "bob",
    "technical_owner": "tina",
    "vendor": "Cognex",
    "ai_act_role": "provider",
    "lifecycle_stage": "pilot",
    "personal_data": True,
    "zone": "STR-CTL",
    "sl_achieved": {"FR1": 3, "FR2": 1, "FR3": 3, "FR4": 4, "FR5": 0, "FR6": 3, "FR7": 2},
    "intended_use": "Flag parts for manual rework",
    "out_of_scope_uses": "Grading workers",
    "human_oversight": "An inspector confirms every rejection",
    "limitations": "Dark paints",
    "training_data": "40,000 labelled images",
    "license": "proprietary",
    "monitoring_interval_hours": 24,
}


def test_create_round_trips_every_field(client, admin, bob, make_user):
    make_user("tina", ("mlops", "STR"))
    r = client.post("/api/v1/systems", json=FULL, headers=bob)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == "AIS-000001"
    for key, value in FULL.items():
        assert body[key] == value, key
    assert body["ai_act_class"] is None
    assert body["risk_tier"] is None
    assert body["replicated_from"] is None
    assert body["revision"] == 1
    assert body["created_at"].endswith(("+00:00", "Z"))
    # zone STR-CTL targets SL 3 on every FR: below it are FR2 (1), FR5 (0) and FR7 (2)
    assert body["sl_gap"] == ["FR2", "FR5", "FR7"]
    assert client.get(f"/api/v1/systems/{body['id']}", headers=admin).json() == body
    events = audit_events(client, admin, entity_type="system", entity_id=body["id"])
    assert [(e["action"], e["actor"], e["site"]) for e in events] == [("system.create", "bob", "STR")]
    assert events[0]["after"]["name"] == FULL["name"]


def test_ids_are_sequential_and_defaults_apply(client, admin, bob):
    first = client.post("/api/v1/systems", json=system_body(), headers=bob).json()
    second = client.post("/api/v1/systems", json=system_body(line=None, name="Other"), headers=bob).json()
    assert (first["id"], second["id"]) == ("AIS-000001", "AIS-000002")
    assert second["line"] is None
    assert second["vendor"] is None
    assert second["ai_act_role"] == "deployer"
    assert second["lifecycle_stage"] == "idea"
    assert second["personal_data"] is False
    assert second["zone"] is None
    assert second["sl_achieved"] is None
    assert second["sl_gap"] == []


def test_sl_gap_against_the_zone_target(client, bob):
    r = client.post(
        "/api/v1/systems", json=system_body(zone="STR-ENT", sl_achieved={"FR1": 2, "FR4": 2}), headers=bob
    )
    assert r.status_code == 201, r.text
    # STR-ENT targets SL 2 on every FR; FRs left out are not assessed (null), never SL 0
    assert r.json()["sl_gap"] == []
    assert r.json()["sl_unassessed"] == ["FR2", "FR3", "FR5", "FR6", "FR7"]
    full = {f"FR{i}": 2 for i in range(1, 8)}
    r = client.post("/api/v1/systems", json=system_body(zone="STR-ENT", sl_achieved=full), headers=bob)
    assert (r.json()["sl_gap"], r.json()["sl_unassessed"]) == ([], [])
    r = client.post("/api/v1/systems", json=system_body(zone="STR-ENT"), headers=bob)
    assert (r.json()["sl_gap"], r.json()["sl_unassessed"]) == ([], [f"FR{i}" for i in range(1, 8)])


def test_sl_gap_follows_a_zone_target_change(client, admin, bob):
    full = {f"FR{i}": 2 for i in range(1, 8)}
    system = client.post(
        "/api/v1/systems", json=system_body(zone="STR-ENT", sl_achieved=full), headers=bob
    ).json()
    assert system["sl_gap"] == []
    r = client.patch(
        "/api/v1/zones/STR-ENT", json={"sl_target": {**full, "FR3": 4}, "revision": 1}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert client.get(f"/api/v1/systems/{system['id']}", headers=admin).json()["sl_gap"] == ["FR3"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ai_act_role": "owner"}, "ai_act_role"),
        ({"lifecycle_stage": "beta"}, "lifecycle_stage"),
        ({"personal_data": "maybe"}, "personal_data"),
        ({"purpose": "x" * 5001}, "purpose"),
        ({"intended_use": "x" * 5001}, "intended_use"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": ...}, "name"),
        ({"purpose": ...}, "purpose"),
        ({"site": ...}, "site"),
        ({"business_owner": ...}, "business_owner"),
        ({"colour": "red"}, "colour"),
        ({"id": "AIS-999999"}, "id"),
        ({"ai_act_class": "minimal_risk"}, "ai_act_class"),
        ({"revision": 7}, "revision"),
        ({"sl_achieved": {"FR1": 5}}, "FR1"),
        ({"sl_achieved": {"FR8": 1}}, "FR8"),
        ({"site": "str"}, "site"),
        ({"line": "body 1"}, "line"),
        ({"business_owner": "Bob!"}, "business_owner"),
        ({"monitoring_interval_hours": 0}, "monitoring_interval_hours"),
    ],
)
def test_invalid_body_is_422_naming_the_field(client, admin, bob, overrides, field):
    r = client.post("/api/v1/systems", json=system_body(**overrides), headers=bob)
    body = assert_problem(r, 422, field=field)
    assert body["errors"][0]["msg"]
    assert client.get("/api/v1/systems", headers=admin).json()["total"] == 0


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"site": "NOPE", "line": None}, "site", "NOPE"),
        ({"line": "SMT1"}, "line", "SMT1"),
        ({"business_owner": "nobody"}, "business_owner", "nobody"),
        ({"technical_owner": "nobody"}, "technical_owner", "nobody"),
        ({"zone": "LYO-CTL"}, "zone", "LYO"),
        ({"zone": "NOWHERE"}, "zone", "NOWHERE"),
    ],
)
def test_bad_reference_is_422_naming_the_field(client, admin, bob, overrides, field, words):
    r = client.post("/api/v1/systems", json=system_body(**overrides), headers=admin)
    body = assert_problem(r, 422, field=field)
    assert words in body["detail"]
    assert client.get("/api/v1/systems", headers=admin).json()["total"] == 0
    # nothing was written to the trail either
    assert audit_events(client, admin, entity_type="system") == []


def test_several_bad_references_are_all_named(client, admin, bob):
    r = client.post(
        "/api/v1/systems",
        json=system_body(line="SMT1", business_owner="ghost", zone="LYO-ENT"),
        headers=admin,
    )
    body = assert_problem(r, 422)
    assert sorted(e["loc"][-1] for e in body["errors"]) == ["business_owner", "line", "zone"]


def test_unknown_site_for_a_site_bound_caller_is_422(client, bob):
    # bob holds a role only in STR: an unknown site is still a 422 on the field, not a leak or a 403
    r = client.post("/api/v1/systems", json=system_body(site="NOPE", line=None), headers=bob)
    assert_problem(r, 422, field="site")


def test_creating_in_a_site_without_a_role_is_refused(client, bob):
    r = client.post(
        "/api/v1/systems", json=system_body(site="LYO", line="SMT1", business_owner="bob"), headers=bob
    )
    assert_problem(r, 403)


def test_not_json_and_no_token(client, bob):
    r = client.post(
        "/api/v1/systems", content=b"{not json", headers={**bob, "Content-Type": "application/json"}
    )
    assert_problem(r, 422)
    assert_problem(client.post("/api/v1/systems", json=system_body()), 401)
    assert_problem(
        client.post("/api/v1/systems", json=system_body(), headers={"Authorization": "Bearer x"}), 401
    )


def test_business_owner_registers_only_own_systems(client, plant, make_user):
    """Business owners create their own systems; naming someone else as owner is a compliance decision."""
    make_user("berta", ("business_owner", "STR"))
    bob = make_user("bob", ("business_owner", "STR"))
    body = {"name": "Paint check", "purpose": "paint defects", "site": "STR", "business_owner": "berta"}
    r = client.post("/api/v1/systems", json=body, headers=bob)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = client.post("/api/v1/systems", json=body | {"business_owner": "bob"}, headers=bob)
    assert r.status_code == 201, r.text
    assert r.json()["business_owner"] == "bob"
