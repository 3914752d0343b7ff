"""IEC 62443 through the API: SL-T vectors, a system's sl_gap, the OT flag by Purdue level, and conduits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.systems.helpers import assert_problem, audit_events, system_body

Headers = dict[str, str]
FRS = [f"FR{i}" for i in range(1, 8)]


def vector(level: int, **overrides: int) -> dict[str, int]:
    """An SL vector with ``level`` on every FR, some FRs overridden."""
    return {**dict.fromkeys(FRS, level), **overrides}


def zone_body(code: str, level: float, target: dict[str, int], site: str = "STR") -> dict[str, Any]:
    """A ``POST /zones`` body."""
    return {"code": code, "name": f"Zone {code}", "site": site, "purdue_level": level, "sl_target": target}


@pytest.fixture
def people(make_user: Callable[..., Headers], plant: dict[str, Any], admin: Headers) -> dict[str, Headers]:
    """The admin, bob (business owner in STR), an OT security engineer in STR and one only in LYO."""
    return {
        "admin": admin,
        "owner": make_user("bob", ("business_owner", "STR")),
        "ot": make_user("otto", ("ot_security", "STR")),
        "lyon_ot": make_user("lea", ("ot_security", "LYO")),
    }


@pytest.fixture
def new_system(client: Any, people: dict[str, Headers]) -> Callable[..., dict[str, Any]]:
    """Create a system in STR through the API and return its body."""

    def factory(**overrides: Any) -> dict[str, Any]:
        r = client.post("/api/v1/systems", json=system_body(**overrides), headers=people["admin"])
        assert r.status_code == 201, r.text
        return r.json()

    return factory


# ------------------------------------------------------------------------------------------------ sl_gap


@pytest.mark.parametrize(
    ("achieved", "gap", "unassessed"),
    [
        (vector(3), [], []),  # meets STR-CTL's SL-T 3 everywhere
        (vector(4), [], []),  # exceeding the target is no gap
        (vector(3, FR1=2), ["FR1"], []),
        (vector(3, FR4=2, FR7=0), ["FR4", "FR7"], []),
        (vector(2), FRS, []),
        (vector(0), FRS, []),  # an assessed SL 0 is a gap
        ({"FR1": 3, "FR2": 2}, ["FR2"], FRS[2:]),  # left-out FRs are unassessed, not SL 0
        (None, [], FRS),  # nothing assessed yet
    ],
)
def test_sl_gap_against_the_zone_target(
    client: Any,
    people: dict[str, Headers],
    new_system: Callable[..., dict[str, Any]],
    achieved: Any,
    gap: list[str],
    unassessed: list[str],
) -> None:
    system = new_system(zone="STR-CTL", sl_achieved=achieved)
    assert (system["sl_gap"], system["sl_unassessed"]) == (gap, unassessed)
    read = client.get(f"/api/v1/systems/{system['id']}", headers=people["owner"]).json()
    assert (read["sl_gap"], read["sl_unassessed"]) == (gap, unassessed)


def test_sl_gap_with_an_uneven_target(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    target = {"FR1": 4, "FR2": 1, "FR3": 0, "FR4": 2, "FR5": 3, "FR6": 0, "FR7": 2}
    r = client.post("/api/v1/zones", json=zone_body("STR-OPS", 3, target), headers=people["ot"])
    assert r.status_code == 201, r.text
    achieved = {"FR1": 3, "FR2": 1, "FR3": 0, "FR4": 4, "FR5": 2, "FR6": 0, "FR7": 2}
    system = new_system(zone="STR-OPS", sl_achieved=achieved)
    assert system["sl_gap"] == ["FR1", "FR5"]
    # raising the achieved level closes the gap; moving to a stricter zone opens others
    url = f"/api/v1/systems/{system['id']}"
    r = client.patch(
        url, json={"sl_achieved": {**achieved, "FR1": 4, "FR5": 3}, "revision": 1}, headers=people["ot"]
    )
    assert r.status_code == 200, r.text
    assert r.json()["sl_gap"] == []
    r = client.patch(url, json={"zone": "STR-CTL", "revision": 2}, headers=people["ot"])
    assert r.json()["sl_gap"] == ["FR2", "FR3", "FR6", "FR7"]


def test_a_system_without_a_zone_has_no_gap(new_system: Callable[..., dict[str, Any]]) -> None:
    system = new_system(sl_achieved=vector(0))
    assert (system["zone"], system["sl_gap"], system["ot_system"]) == (None, [], False)


# ----------------------------------------------------------------------------------------------- OT flag

PURDUE_OT = [(0, True), (1, True), (2, True), (3, True), (3.5, False), (4, False), (5, False)]


def test_ot_system_follows_the_zones_purdue_level(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    ids = {}
    for n, (level, ot) in enumerate(PURDUE_OT):
        r = client.post("/api/v1/zones", json=zone_body(f"STR-L{n}", level, vector(2)), headers=people["ot"])
        assert r.status_code == 201, r.text
        assert (r.json()["purdue_level"], r.json()["is_ot"]) == (level, ot)
        system = new_system(name=f"System at level {level}", zone=f"STR-L{n}")
        assert system["ot_system"] is ot, level
        ids[system["id"]] = ot
    listed = client.get("/api/v1/systems", params={"limit": 500}, headers=people["owner"]).json()["items"]
    assert {s["id"]: s["ot_system"] for s in listed} == ids


def test_ot_flag_follows_moves_and_zone_changes(
    client: Any, people: dict[str, Headers], new_system: Callable[..., dict[str, Any]]
) -> None:
    system = new_system(zone="STR-CTL")  # Purdue 2
    url = f"/api/v1/systems/{system['id']}"
    assert system["ot_system"] is True
    r = client.patch(url, json={"zone": "STR-ENT", "revision": 1}, headers=people["ot"])
    assert r.json()["ot_system"] is False  # Purdue 4
    r = client.patch(url, json={"zone": None, "revision": 2}, headers=people["ot"])
    assert (r.json()["zone"], r.json()["ot_system"]) == (None, False)
    r = client.patch(url, json={"zone": "STR-ENT", "revision": 3}, headers=people["ot"])
    zone = client.patch(
        "/api/v1/zones/STR-ENT", json={"purdue_level": 3, "revision": 1}, headers=people["ot"]
    )
    assert zone.status_code == 200, zone.text
    assert zone.json()["is_ot"] is True
    assert client.get(url, headers=people["owner"]).json()["ot_system"] is True


@pytest.fixture
def zone_queries() -> Iterator[list[str]]:
    """SQL statements that read the zone table while the test runs."""
    from app.db import get_engine

    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM zone" in statement:
            seen.append(statement)

    engine = get_engine()
    sa.event.listen(engine, "before_cursor_execute", listener)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", listener)


def test_listing_reads_the_zones_once_not_per_row(
    client: Any,
    people: dict[str, Headers],
    new_system: Callable[..., dict[str, Any]],
    zone_queries: list[str],
) -> None:
    for n in range(12):
        new_system(name=f"S{n}", zone=("STR-CTL", "STR-ENT", None)[n % 3])
    zone_queries.clear()
    page = client.get("/api/v1/systems", params={"limit": 500}, headers=people["owner"]).json()
    assert page["total"] == 12
    assert sum(s["ot_system"] for s in page["items"]) == 4
    assert len(zone_queries) == 1, zone_queries


# ---------------------------------------------------------------------------------------- zone refusals


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"purdue_level": 2.7}, "purdue_level"),  # not a Purdue level (3.5 is the only half level)
        ({"purdue_level": 6}, "purdue_level"),
        ({"purdue_level": -1}, "purdue_level"),
        ({"sl_target": {"FR1": 3}}, "sl_target"),  # a target names every FR
        ({"sl_target": vector(3, FR8=1)}, "FR8"),
        ({"sl_target": vector(3, FR2=5)}, "FR2"),
        ({"sl_target": vector(3, FR3=-1)}, "FR3"),
        ({"sl_target": "SL3"}, "sl_target"),
        ({"site": "NOPE"}, "site"),
        ({"code": "str ctl"}, "code"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_zone_is_422_naming_the_field(
    client: Any, people: dict[str, Headers], overrides: dict[str, Any], field: str
) -> None:
    body = zone_body("STR-NEW", 3, vector(2)) | overrides
    assert_problem(client.post("/api/v1/zones", json=body, headers=people["admin"]), 422, field=field)
    assert_problem(client.get("/api/v1/zones/STR-NEW", headers=people["admin"]), 404)


def test_zone_update_refusals(client: Any, people: dict[str, Headers]) -> None:
    url = "/api/v1/zones/STR-CTL"
    assert_problem(
        client.patch(url, json={"purdue_level": 2.5, "revision": 1}, headers=people["ot"]),
        422,
        field="purdue_level",
    )
    assert_problem(
        client.patch(url, json={"sl_target": {"FR1": 4}, "revision": 1}, headers=people["ot"]),
        422,
        field="sl_target",
    )
    assert_problem(client.patch(url, json={"name": "x", "revision": 7}, headers=people["ot"]), 409)
    assert_problem(client.patch(url, json={"name": "x", "revision": 1}, headers=people["owner"]), 403)
    assert_problem(client.patch(url, json={"name": "x", "revision": 1}, headers=people["lyon_ot"]), 404)
    zone = client.get(url, headers=people["owner"]).json()
    assert (zone["revision"], zone["purdue_level"], zone["sl_target"]) == (1, 2, vector(3))


def test_zones_are_seen_only_in_the_callers_sites(client: Any, people: dict[str, Headers]) -> None:
    page = client.get("/api/v1/zones", headers=people["lyon_ot"]).json()
    assert ({z["code"] for z in page["items"]}, page["total"]) == ({"LYO-CTL", "LYO-ENT"}, 2)
    assert (page["limit"], page["offset"]) == (50, 0)
    assert_problem(client.get("/api/v1/zones/STR-CTL", headers=people["lyon_ot"]), 404)
    assert_problem(
        client.post("/api/v1/zones", json=zone_body("STR-X", 1, vector(1)), headers=people["lyon_ot"]), 403
    )
    one = client.get("/api/v1/zones", params={"limit": 1, "offset": 1}, headers=people["admin"]).json()
    assert (len(one["items"]), one["total"]) == (1, 4)


# ---------------------------------------------------------------------------------------------- conduits


def conduit_body(frm: str = "STR-ENT", to: str = "STR-CTL", **overrides: Any) -> dict[str, Any]:
    """A ``POST /conduits`` body."""
    return {"name": f"{frm} to {to}", "from_zone": frm, "to_zone": to, "sl_target": vector(2)} | overrides


def test_conduit_between_two_zones_of_a_site(client: Any, people: dict[str, Headers]) -> None:
    r = client.post("/api/v1/conduits", json=conduit_body(sl_target=vector(3, FR4=1)), headers=people["ot"])
    assert r.status_code == 201, r.text
    conduit = r.json()
    assert (conduit["from_zone"], conduit["to_zone"], conduit["site"]) == ("STR-ENT", "STR-CTL", "STR")
    assert conduit["sl_target"] == vector(3, FR4=1)
    assert client.get(f"/api/v1/conduits/{conduit['id']}", headers=people["owner"]).json() == conduit
    # the same pair again is a conflict; the other direction is a conduit of its own
    assert_problem(
        client.post("/api/v1/conduits", json=conduit_body(name="again"), headers=people["ot"]), 409
    )
    back = client.post("/api/v1/conduits", json=conduit_body("STR-CTL", "STR-ENT"), headers=people["ot"])
    assert back.status_code == 201, back.text
    page = client.get("/api/v1/conduits", params={"zone": "STR-CTL"}, headers=people["owner"]).json()
    assert ([c["id"] for c in page["items"]], page["total"]) == ([conduit["id"], back.json()["id"]], 2)
    events = audit_events(client, people["admin"], entity_type="conduit")
    assert [(e["action"], e["actor"], e["site"]) for e in events] == [("conduit.create", "otto", "STR")] * 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (conduit_body("STR-CTL", "STR-CTL"), 422, "to_zone"),  # a conduit joins two distinct zones
        (conduit_body("STR-CTL", "LYO-CTL"), 422, "to_zone"),  # zones of two sites
        (conduit_body("STR-CTL", "NOPE"), 422, "to_zone"),
        (conduit_body("NOPE", "STR-CTL"), 422, "from_zone"),
        (conduit_body(sl_target={"FR1": 2}), 422, "sl_target"),
        (conduit_body(sl_target=vector(2, FR5=9)), 422, "FR5"),
        (conduit_body(name=""), 422, "name"),
        (conduit_body(direction="both"), 422, "direction"),
    ],
)
def test_bad_conduit_is_refused(
    client: Any, people: dict[str, Headers], body: dict[str, Any], status: int, field: str
) -> None:
    assert_problem(client.post("/api/v1/conduits", json=body, headers=people["admin"]), status, field=field)
    assert client.get("/api/v1/conduits", headers=people["admin"]).json()["total"] == 0


def test_conduit_access(client: Any, people: dict[str, Headers]) -> None:
    assert_problem(client.post("/api/v1/conduits", json=conduit_body(), headers=people["owner"]), 403)
    assert_problem(client.post("/api/v1/conduits", json=conduit_body(), headers=people["lyon_ot"]), 404)
    conduit = client.post("/api/v1/conduits", json=conduit_body(), headers=people["ot"]).json()
    lyon = client.post("/api/v1/conduits", json=conduit_body("LYO-ENT", "LYO-CTL"), headers=people["lyon_ot"])
    assert lyon.status_code == 201, lyon.text
    assert_problem(client.get(f"/api/v1/conduits/{conduit['id']}", headers=people["lyon_ot"]), 404)
    assert [c["site"] for c in client.get("/api/v1/conduits", headers=people["lyon_ot"]).json()["items"]] == [
        "LYO"
    ]
    assert client.get("/api/v1/conduits", headers=people["admin"]).json()["total"] == 2
    assert (
        client.get("/api/v1/conduits", params={"site": "STR"}, headers=people["admin"]).json()["total"] == 1
    )
    assert_problem(client.get("/api/v1/conduits/999999", headers=people["admin"]), 404)
