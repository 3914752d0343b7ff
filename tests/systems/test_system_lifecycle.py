"""Reading, updating and deleting one AI system: revisions, ownership, history and archiving."""

from __future__ import annotations

import pytest

from tests.systems.helpers import DIGEST, assert_problem, audit_events


@pytest.mark.parametrize("system_id", ["AIS-999999", "AIS-1", "ais-000001", "foo", "AIS-000001x", "1"])
def test_get_unknown_or_malformed_id_is_404(client, admin, new_system, system_id):
    new_system()
    body = assert_problem(client.get(f"/api/v1/systems/{system_id}", headers=admin), 404)
    assert "does not exist" in body["detail"]
    assert_problem(client.patch(f"/api/v1/systems/{system_id}", json={"revision": 1}, headers=admin), 404)
    assert_problem(client.delete(f"/api/v1/systems/{system_id}", headers=admin), 404)


def test_get_needs_authentication_and_hides_other_sites(client, new_system, make_user):
    system = new_system()
    assert_problem(client.get(f"/api/v1/systems/{system['id']}"), 401)
    lyon = make_user("leo", ("business_owner", "LYO"))
    body = assert_problem(client.get(f"/api/v1/systems/{system['id']}", headers=lyon), 404)
    assert "does not exist" in body["detail"]


def test_patch_with_body_revision(client, admin, bob, new_system):
    system = new_system()
    r = client.patch(
        f"/api/v1/systems/{system['id']}",
        json={"name": "Weld seam inspection", "vendor": "Cognex", "lifecycle_stage": "pilot", "revision": 1},
        headers=bob,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Weld seam inspection"
    assert body["vendor"] == "Cognex"
    assert body["lifecycle_stage"] == "pilot"
    assert body["revision"] == 2
    assert body["purpose"] == system["purpose"]  # untouched fields stay
    assert body["updated_at"] >= system["updated_at"]
    assert client.get(f"/api/v1/systems/{system['id']}", headers=admin).json() == body
    event = audit_events(client, admin, entity_type="system", entity_id=system["id"])[-1]
    assert event["action"] == "system.update"
    assert event["actor"] == "bob"
    assert event["before"] == {"name": "Weld inspection", "vendor": None, "lifecycle_stage": "idea"}
    assert event["after"] == {
        "name": "Weld seam inspection",
        "vendor": "Cognex",
        "lifecycle_stage": "pilot",
        "revision": 2,
    }


def test_patch_with_if_match_and_clearing_a_field(client, admin, new_system):
    system = new_system(vendor="Cognex")
    r = client.patch(
        f"/api/v1/systems/{system['id']}", json={"vendor": None}, headers={**admin, "If-Match": '"1"'}
    )
    assert r.status_code == 200, r.text
    assert r.json()["vendor"] is None
    assert r.json()["revision"] == 2


def test_patch_stale_revision_is_409_and_changes_nothing(client, admin, new_system):
    system = new_system()
    url = f"/api/v1/systems/{system['id']}"
    assert client.patch(url, json={"name": "First edit", "revision": 1}, headers=admin).status_code == 200
    current = client.get(url, headers=admin).json()
    r = client.patch(url, json={"name": "Lost update", "purpose": "x", "revision": 1}, headers=admin)
    body = assert_problem(r, 409)
    assert body["current_revision"] == 2
    assert "stale" in body["detail"]
    r = client.patch(url, json={"name": "Lost update"}, headers={**admin, "If-Match": '"1"'})
    assert_problem(r, 409)
    assert client.get(url, headers=admin).json() == current
    assert [e["action"] for e in audit_events(client, admin, entity_id=system["id"])] == [
        "system.create",
        "system.update",
    ]


def test_patch_without_revision_is_422_saying_it_is_required(client, admin, new_system):
    system = new_system()
    r = client.patch(f"/api/v1/systems/{system['id']}", json={"name": "No revision"}, headers=admin)
    body = assert_problem(r, 422, field="revision")
    assert "required" in body["detail"]
    assert client.get(f"/api/v1/systems/{system['id']}", headers=admin).json() == system


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"line": "SMT1"}, "line"),
        ({"zone": "LYO-CTL"}, "zone"),
        ({"business_owner": "ghost"}, "business_owner"),
        ({"name": None}, "name"),
        ({"lifecycle_stage": None}, "lifecycle_stage"),
        ({"ai_act_role": "owner"}, "ai_act_role"),
        ({"purpose": "x" * 5001}, "purpose"),
        ({"site": "LYO"}, "site"),
        ({"ai_act_class": "minimal_risk"}, "ai_act_class"),
        ({"sl_achieved": {"FR1": 9}}, "FR1"),
    ],
)
def test_patch_invalid_change_is_422_and_changes_nothing(client, admin, new_system, make_user, change, field):
    system = new_system()
    # the zone is OT security's to set (the admin fixture is a compliance officer too)
    editor = make_user("otto", ("ot_security", "*")) if field == "zone" else admin
    r = client.patch(f"/api/v1/systems/{system['id']}", json={**change, "revision": 1}, headers=editor)
    assert_problem(r, 422, field=field)
    assert client.get(f"/api/v1/systems/{system['id']}", headers=admin).json() == system


def test_business_owner_edits_only_own_systems(client, admin, bob, new_system, make_user):
    berta = make_user("berta", ("business_owner", "STR"))
    system = new_system()  # owned by bob
    r = client.patch(
        f"/api/v1/systems/{system['id']}", json={"name": "Mine now", "revision": 1}, headers=berta
    )
    assert_problem(r, 403)
    assert client.get(f"/api/v1/systems/{system['id']}", headers=admin).json()["name"] == system["name"]
    denied = [e for e in audit_events(client, admin) if e["action"] == "access.denied"]
    assert denied and denied[-1]["actor"] == "berta" and denied[-1]["entity_id"] == system["id"]
    # the owner cannot hand the system over (it decides who signs); a compliance officer can, and the
    # right moves with it
    r = client.patch(
        f"/api/v1/systems/{system['id']}", json={"business_owner": "berta", "revision": 1}, headers=bob
    )
    assert_problem(r, 403)
    r = client.patch(
        f"/api/v1/systems/{system['id']}", json={"business_owner": "berta", "revision": 1}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = client.patch(
        f"/api/v1/systems/{system['id']}", json={"name": "Berta's", "revision": 2}, headers=berta
    )
    assert r.status_code == 200, r.text
    assert_problem(
        client.patch(f"/api/v1/systems/{system['id']}", json={"name": "Bob's", "revision": 3}, headers=bob),
        403,
    )


def test_delete_without_history_is_204(client, admin, new_system):
    system = new_system()
    r = client.delete(f"/api/v1/systems/{system['id']}", headers=admin)
    assert r.status_code == 204
    assert r.content == b""
    assert_problem(client.get(f"/api/v1/systems/{system['id']}", headers=admin), 404)
    assert client.get("/api/v1/systems", headers=admin).json()["total"] == 0
    events = audit_events(client, admin, entity_type="system", entity_id=system["id"])
    assert [e["action"] for e in events] == ["system.create", "system.delete"]
    assert events[-1]["before"]["name"] == system["name"]
    # ids are never reused
    assert new_system()["id"] == "AIS-000002"


def test_delete_with_stale_if_match_is_409(client, admin, new_system):
    system = new_system()
    r = client.delete(f"/api/v1/systems/{system['id']}", headers={**admin, "If-Match": '"7"'})
    assert_problem(r, 409)
    assert client.get(f"/api/v1/systems/{system['id']}", headers=admin).status_code == 200
    r = client.delete(f"/api/v1/systems/{system['id']}", headers={**admin, "If-Match": '"1"'})
    assert r.status_code == 204


def test_delete_with_versions_is_409_until_retired_then_archived(client, admin, new_system):
    system = new_system(lifecycle_stage="production")
    url = f"/api/v1/systems/{system['id']}"
    assert (
        client.post(
            f"{url}/versions", json={"version": "1.0", "artifact_digest": DIGEST}, headers=admin
        ).status_code
        == 201
    )
    body = assert_problem(client.delete(url, headers=admin), 409)
    assert "retire" in body["detail"]
    assert body["history"]["versions"] == 1
    assert client.get(url, headers=admin).status_code == 200

    r = client.patch(url, json={"lifecycle_stage": "retired", "revision": 1}, headers=admin)
    assert r.status_code == 200, r.text
    r = client.delete(url, headers=admin)
    assert r.status_code == 204, r.text

    assert_problem(client.get(url, headers=admin), 404)
    assert_problem(client.get(f"{url}/versions", headers=admin), 404)
    assert client.get("/api/v1/systems", headers=admin).json()["total"] == 0
    assert (
        client.get("/api/v1/systems", params={"lifecycle_stage": "retired"}, headers=admin).json()["items"]
        == []
    )
    assert_problem(client.delete(url, headers=admin), 404)
    events = audit_events(client, admin, entity_type="system", entity_id=system["id"])
    assert [e["action"] for e in events] == [
        "system.create",
        "version.create",
        "system.update",
        "system.archive",
    ]
    assert client.get("/api/v1/audit-events/verify", headers=admin).json()["valid"] is True


def test_delete_with_a_classification_is_409_not_500(client, admin, new_system):
    system = new_system()
    url = f"/api/v1/systems/{system['id']}"
    r = client.post(f"{url}/classification", json={"answers": {}}, headers=admin)
    assert r.status_code == 201, r.text
    body = assert_problem(client.delete(url, headers=admin), 409)
    assert body["history"]["classification"] == 1
    assert client.get(url, headers=admin).status_code == 200


def test_business_owner_may_not_delete(client, bob, new_system):
    system = new_system()
    assert_problem(client.delete(f"/api/v1/systems/{system['id']}", headers=bob), 403)
