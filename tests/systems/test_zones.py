"""IEC 62443 zones and conduits as the registry uses them: the basic create, read, update and refusals."""

from __future__ import annotations

from typing import Any

from tests.systems.helpers import assert_problem


def _vector(level: int, **overrides: int) -> dict[str, int]:
    return {**{f"FR{i}": level for i in range(1, 8)}, **overrides}


def _zone(code: str = "STR-DMZ", **overrides: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": "Industrial DMZ",
        "site": "STR",
        "purdue_level": 3.5,
        "sl_target": _vector(3),
    } | (overrides)


def test_create_and_read_zone(client, admin, plant):
    r = client.post("/api/v1/zones", json=_zone(sl_target=_vector(3, FR7=1)), headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["code"], body["site"], body["purdue_level"], body["is_ot"]) == ("STR-DMZ", "STR", 3.5, False)
    assert body["sl_target"] == _vector(3, FR7=1)
    assert body["revision"] == 1
    assert client.get("/api/v1/zones/STR-DMZ", headers=admin).json() == body
    assert client.get("/api/v1/zones/STR-CTL", headers=admin).json()["is_ot"] is True


def test_list_zones_by_site(client, admin, plant):
    page = client.get("/api/v1/zones", params={"site": "STR"}, headers=admin).json()
    assert [z["code"] for z in page["items"]] == ["STR-ENT", "STR-CTL"]  # Purdue level top down
    assert page["total"] == 2
    assert client.get("/api/v1/zones", headers=admin).json()["total"] == 4


def test_zone_refusals(client, admin, plant, make_user):
    assert_problem(client.post("/api/v1/zones", json=_zone(code="STR-CTL"), headers=admin), 409)
    assert_problem(client.post("/api/v1/zones", json=_zone(site="NOPE"), headers=admin), 422, field="site")
    assert_problem(
        client.post("/api/v1/zones", json=_zone(purdue_level=6), headers=admin), 422, field="purdue_level"
    )
    assert_problem(
        client.post("/api/v1/zones", json=_zone(sl_target=_vector(5)), headers=admin), 422, field="FR1"
    )
    assert_problem(client.post("/api/v1/zones", json=_zone(code="str dmz"), headers=admin), 422, field="code")
    assert_problem(client.get("/api/v1/zones/NOPE", headers=admin), 404)
    owner = make_user("olga", ("business_owner", "STR"))
    assert_problem(client.post("/api/v1/zones", json=_zone(), headers=owner), 403)
    assert client.get("/api/v1/zones/STR-DMZ", headers=admin).status_code == 404


def test_update_zone_with_revision(client, admin, plant):
    r = client.patch("/api/v1/zones/STR-ENT", json={"name": "Office IT", "revision": 1}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["revision"]) == ("Office IT", 2)
    r = client.patch("/api/v1/zones/STR-ENT", json={"name": "Stale", "revision": 1}, headers=admin)
    assert_problem(r, 409)
    r = client.patch("/api/v1/zones/STR-ENT", json={"name": "No revision"}, headers=admin)
    assert_problem(r, 422, field="revision")
    assert client.get("/api/v1/zones/STR-ENT", headers=admin).json()["name"] == "Office IT"


def test_conduits(client, admin, plant):
    body = {"name": "ENT to CTL", "from_zone": "STR-ENT", "to_zone": "STR-CTL", "sl_target": _vector(2)}
    r = client.post("/api/v1/conduits", json=body, headers=admin)
    assert r.status_code == 201, r.text
    conduit = r.json()
    assert (conduit["from_zone"], conduit["to_zone"], conduit["sl_target"]) == (
        "STR-ENT",
        "STR-CTL",
        _vector(2),
    )
    page = client.get("/api/v1/conduits", headers=admin).json()
    assert [c["id"] for c in page["items"]] == [conduit["id"]]
    assert_problem(client.post("/api/v1/conduits", json=body, headers=admin), 409)
    assert_problem(
        client.post("/api/v1/conduits", json={**body, "to_zone": "LYO-CTL"}, headers=admin),
        422,
        field="to_zone",
    )
    assert_problem(
        client.post("/api/v1/conduits", json={**body, "to_zone": "STR-ENT"}, headers=admin),
        422,
        field="to_zone",
    )
    assert_problem(
        client.post("/api/v1/conduits", json={**body, "from_zone": "NOPE"}, headers=admin),
        422,
        field="from_zone",
    )
    assert client.get("/api/v1/conduits", headers=admin).json()["total"] == 1
