"""Sites and their lines: create, read, list, update with revisions."""

from __future__ import annotations

from typing import Any

from tests.systems.helpers import assert_problem, audit_events, system_body


def _create(client: Any, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/sites", json=body, headers=headers)


def test_create_site_with_lines(client, admin):
    r = _create(
        client,
        admin,
        code="BCN",
        name="Barcelona plant",
        lines=[{"code": "PRESS", "name": "Press line"}, {"code": "ASM-1", "name": "Assembly 1"}],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["code"] == "BCN"
    assert body["name"] == "Barcelona plant"
    assert body["revision"] == 1
    assert body["lines"] == [{"code": "ASM-1", "name": "Assembly 1"}, {"code": "PRESS", "name": "Press line"}]
    assert body["created_at"].endswith(("+00:00", "Z"))
    again = client.get("/api/v1/sites/BCN", headers=admin)
    assert again.status_code == 200
    assert again.json() == body
    events = audit_events(client, admin, entity_type="site", entity_id="BCN")
    assert [e["action"] for e in events] == ["site.create"]


def test_create_site_without_lines(client, admin):
    r = _create(client, admin, code="BCN", name="Barcelona")
    assert r.status_code == 201, r.text
    assert r.json()["lines"] == []


def test_duplicate_site_is_409_and_keeps_the_first(client, admin):
    assert _create(client, admin, code="BCN", name="First").status_code == 201
    r = _create(client, admin, code="BCN", name="Second")
    assert_problem(r, 409)
    assert "BCN" in r.json()["detail"]
    assert client.get("/api/v1/sites/BCN", headers=admin).json()["name"] == "First"


def test_bad_site_code_is_422_naming_the_field(client, admin):
    for code in ("bcn", "B", "B C", "TOO-LONG-SITE-CODE-X", ""):
        r = _create(client, admin, code=code, name="x")
        assert_problem(r, 422, field="code")
    assert client.get("/api/v1/sites", headers=admin).json() == []


def test_bad_line_code_and_duplicate_line_are_422(client, admin):
    r = _create(client, admin, code="BCN", name="x", lines=[{"code": "bad line", "name": "x"}])
    body = assert_problem(r, 422, field="code")
    assert body["errors"][0]["loc"][:3] == ["body", "lines", 0]
    r = _create(
        client, admin, code="BCN", name="x", lines=[{"code": "L1", "name": "a"}, {"code": "L1", "name": "b"}]
    )
    body = assert_problem(r, 422, field="code")
    assert body["errors"][0]["loc"] == ["body", "lines", 1, "code"]
    assert client.get("/api/v1/sites/BCN", headers=admin).status_code == 404


def test_unknown_field_and_missing_name_are_422(client, admin):
    assert_problem(_create(client, admin, code="BCN", name="x", city="Barcelona"), 422, field="city")
    assert_problem(_create(client, admin, code="BCN"), 422, field="name")


def test_get_unknown_site_is_404(client, admin):
    assert_problem(client.get("/api/v1/sites/NOPE", headers=admin), 404)


def test_list_sites_is_ordered_and_scoped(client, admin, plant, make_user):
    r = client.get("/api/v1/sites", headers=admin)
    assert r.status_code == 200
    assert [s["code"] for s in r.json()] == ["LYO", "STR"]
    assert [ln["code"] for ln in r.json()[1]["lines"]] == ["ASM2", "BODY1"]
    # a business owner in STR sees only STR, and LYO does not exist for them
    owner = make_user("olga", ("business_owner", "STR"))
    assert [s["code"] for s in client.get("/api/v1/sites", headers=owner).json()] == ["STR"]
    assert_problem(client.get("/api/v1/sites/LYO", headers=owner), 404)
    assert client.get("/api/v1/sites/STR", headers=owner).status_code == 200


def test_only_admins_create_sites(client, plant, make_user):
    owner = make_user("olga", ("business_owner", "STR"))
    assert_problem(_create(client, owner, code="BCN", name="x"), 403)
    assert_problem(client.post("/api/v1/sites", json={"code": "BCN", "name": "x"}), 401)


def test_patch_site_with_if_match(client, admin, plant):
    r = client.patch(
        "/api/v1/sites/STR",
        json={
            "name": "Stuttgart",
            "lines": [{"code": "BODY1", "name": "Body shop 1"}, {"code": "PAINT", "name": "P"}],
        },
        headers={**admin, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Stuttgart"
    assert body["revision"] == 2
    # ASM2 was removed (no systems on it), BODY1 renamed, PAINT added
    assert body["lines"] == [{"code": "BODY1", "name": "Body shop 1"}, {"code": "PAINT", "name": "P"}]
    assert client.get("/api/v1/sites/STR", headers=admin).json() == body
    events = audit_events(client, admin, entity_type="site", entity_id="STR")
    update = [e for e in events if e["action"] == "site.update"]
    assert len(update) == 1
    assert update[0]["before"]["name"] == "Plant STR"
    assert update[0]["after"]["name"] == "Stuttgart"


def test_patch_site_with_revision_in_body(client, admin, plant):
    r = client.patch("/api/v1/sites/LYO", json={"name": "Lyon", "revision": 1}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 2
    assert r.json()["lines"] == [{"code": "SMT1", "name": "SMT1"}]  # lines untouched when not sent
    r = client.patch("/api/v1/sites/LYO", json={"name": "Lyon 2"}, headers={**admin, "If-Match": 'W/"2"'})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Lyon 2"


def test_patch_site_stale_revision_is_409_and_changes_nothing(client, admin, plant):
    before = client.get("/api/v1/sites/STR", headers=admin).json()
    assert (
        client.patch("/api/v1/sites/STR", json={"name": "A", "revision": 1}, headers=admin).status_code == 200
    )
    current = client.get("/api/v1/sites/STR", headers=admin).json()
    r = client.patch("/api/v1/sites/STR", json={"name": "B", "lines": [], "revision": 1}, headers=admin)
    body = assert_problem(r, 409)
    assert body["current_revision"] == 2
    assert client.get("/api/v1/sites/STR", headers=admin).json() == current
    assert current["lines"] == before["lines"]


def test_patch_site_needs_a_revision(client, admin, plant):
    r = client.patch("/api/v1/sites/STR", json={"name": "X"}, headers=admin)
    body = assert_problem(r, 422, field="revision")
    assert "required" in body["detail"]
    r = client.patch(
        "/api/v1/sites/STR", json={"name": "X", "revision": 2}, headers={**admin, "If-Match": '"1"'}
    )
    assert_problem(r, 422, field="revision")
    r = client.patch("/api/v1/sites/STR", json={"name": "X"}, headers={**admin, "If-Match": "abc"})
    assert_problem(r, 422, field="If-Match")
    assert client.get("/api/v1/sites/STR", headers=admin).json()["name"] == "Plant STR"


def test_removing_a_line_with_systems_is_409(client, admin, plant, make_user):
    make_user("bob", ("business_owner", "STR"))
    r = client.post("/api/v1/systems", json=system_body(line="ASM2"), headers=admin)
    assert r.status_code == 201, r.text
    system_id = r.json()["id"]
    r = client.patch(
        "/api/v1/sites/STR",
        json={"name": "Renamed", "lines": [{"code": "BODY1", "name": "BODY1"}], "revision": 1},
        headers=admin,
    )
    body = assert_problem(r, 409)
    assert "ASM2" in body["detail"] and system_id in body["detail"]
    after = client.get("/api/v1/sites/STR", headers=admin).json()
    assert after["name"] == "Plant STR"
    assert after["revision"] == 1
    assert [ln["code"] for ln in after["lines"]] == ["ASM2", "BODY1"]


def test_patch_unknown_site_is_404(client, admin):
    assert_problem(client.patch("/api/v1/sites/NOPE", json={"name": "x", "revision": 1}, headers=admin), 404)
