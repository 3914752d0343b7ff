"""An achieved security level may leave an FR unassessed (``null``, or left out): it is reported in
``sl_unassessed``, never counted as SL 0, never part of ``sl_gap``, and never an accepted gap at the gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.approvals.helpers import DIGEST_V1, MINIMAL, classify, codes, release, sign, submit
from tests.systems.helpers import assert_problem, system_body

Headers = dict[str, str]
FRS = [f"FR{i}" for i in range(1, 8)]
COUNTERMEASURES = "FR6: unidirectional gateway to the cell, allow-listed OPC UA only; reviewed monthly"


@pytest.fixture
def people(make_user: Callable[..., Headers], plant: dict[str, Any], admin: Headers) -> dict[str, Headers]:
    """The admin (also compliance officer everywhere), bob who owns, berta who signs as business owner,
    otto of OT security in STR, and the pipeline."""
    return {
        "admin": admin,
        "bob": make_user("bob", ("business_owner", "STR")),
        "berta": make_user("berta", ("business_owner", "STR")),
        "otto": make_user("otto", ("ot_security", "STR")),
        "ci": make_user("ci", ("mlops", "STR")),
    }


def create(client: Any, headers: Headers, **fields: Any) -> dict[str, Any]:
    r = client.post("/api/v1/systems", json=system_body(**fields), headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_null_and_left_out_frs_are_unassessed_not_sl_0(client: Any, people: dict[str, Headers]) -> None:
    # STR-CTL targets SL 3 on every FR
    body = create(client, people["bob"], zone="STR-CTL", sl_achieved={"FR1": 3, "FR2": 2, "FR3": None})

    assert body["sl_achieved"] == {"FR1": 3, "FR2": 2} | dict.fromkeys(FRS[2:])
    assert body["sl_gap"] == ["FR2"]  # only an assessed level below the target is a gap
    assert body["sl_unassessed"] == FRS[2:]
    read = client.get(f"/api/v1/systems/{body['id']}", headers=people["otto"]).json()
    assert (read["sl_achieved"], read["sl_gap"], read["sl_unassessed"]) == (
        body["sl_achieved"],
        ["FR2"],
        FRS[2:],
    )
    listed = client.get("/api/v1/systems", params={"zone": "STR-CTL"}, headers=people["admin"]).json()
    assert [(s["sl_gap"], s["sl_unassessed"]) for s in listed["items"]] == [(["FR2"], FRS[2:])]
    # nothing recorded at all: every FR with a target is unassessed, none is a gap
    nothing = create(client, people["bob"], zone="STR-CTL")
    assert (nothing["sl_achieved"], nothing["sl_gap"], nothing["sl_unassessed"]) == (None, [], FRS)
    # without a zone no target applies, so nothing is reported
    placeless = create(client, people["bob"], sl_achieved={"FR1": None})
    assert (placeless["sl_gap"], placeless["sl_unassessed"]) == ([], [])
    # a level is still 0-4; and a zone's target is decided for every FR (only SL-A may stay unassessed)
    r = client.post(
        "/api/v1/systems", json=system_body(sl_achieved={"FR1": 5, "FR2": None}), headers=people["bob"]
    )
    assert_problem(r, 422, field="FR1")
    zone = {"code": "STR-NEW", "name": "New", "site": "STR", "purdue_level": 2}
    r = client.post(
        "/api/v1/zones",
        json=zone | {"sl_target": dict.fromkeys(FRS, 2) | {"FR3": None}},
        headers=people["admin"],
    )
    assert_problem(r, 422)
    assert "FR3" in r.json()["detail"]


def test_patch_sets_and_clears_an_unassessed_fr(client: Any, people: dict[str, Headers]) -> None:
    # An uneven zone: FR3 has no target (SL 0), so leaving it unassessed is not reported.
    target = {"FR1": 2, "FR2": 2, "FR3": 0, "FR4": 2, "FR5": 2, "FR6": 2, "FR7": 2}
    r = client.post(
        "/api/v1/zones",
        json={"code": "STR-OPS", "name": "Ops", "site": "STR", "purdue_level": 3, "sl_target": target},
        headers=people["admin"],
    )
    assert r.status_code == 201, r.text
    system = create(client, people["bob"], zone="STR-OPS", sl_achieved=dict.fromkeys(FRS, 2))
    url = f"/api/v1/systems/{system['id']}"

    r = client.patch(
        url,
        json={
            "sl_achieved": dict.fromkeys(FRS, 2) | {"FR3": None, "FR5": None},
            "revision": system["revision"],
        },
        headers=people["otto"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["sl_achieved"]["FR5"] is None
    assert (r.json()["sl_gap"], r.json()["sl_unassessed"]) == ([], ["FR5"])

    r = client.patch(
        url,
        json={
            "sl_achieved": dict.fromkeys(FRS, 2) | {"FR3": None, "FR5": 1},
            "revision": r.json()["revision"],
        },
        headers=people["otto"],
    )
    assert r.status_code == 200, r.text
    assert (r.json()["sl_gap"], r.json()["sl_unassessed"]) == (["FR5"], [])


def _approve(client: Any, people: dict[str, Headers], system: str, environment: str) -> dict[str, Any]:
    a = submit(client, people["bob"], system, "v1", environment)
    assert a["required_because"]["ot_security"] == ["ot_zone", "sl_gap", "sl_unassessed"]
    sign(client, people["berta"], a["id"], "business_owner")
    sign(client, people["admin"], a["id"], "compliance_officer")
    sign(client, people["otto"], a["id"], "ot_security", comment=COUNTERMEASURES)
    return a


def test_the_gate_never_accepts_an_unassessed_fr(client: Any, people: dict[str, Headers]) -> None:
    # FR6 assessed below the target (a gap OT security accepts), FR7 not assessed at all
    achieved = dict.fromkeys(FRS[:5], 3) | {"FR6": 2, "FR7": None}
    system = create(client, people["admin"], zone="STR-CTL", sl_achieved=achieved)["id"]
    r = client.post(
        f"/api/v1/systems/{system}/versions",
        json={"version": "v1", "artifact_digest": DIGEST_V1},
        headers=people["admin"],
    )
    assert r.status_code == 201, r.text
    classify(client, people["admin"], system, MINIMAL)

    pilot = _approve(client, people, system, "pilot")
    assert pilot["sl_gap"] == ["FR6"]  # what the OT security sign-off accepted: never FR7
    production = _approve(client, people, system, "production")
    assert production["sl_gap"] == ["FR6"]

    answer = release(client, people["ci"], system, "v1", "production")
    assert answer["allowed"] is False and answer["approval_id"] == production["id"]
    assert codes(answer) == ["CONDITION_NOT_MET"]
    message = answer["reasons"][0]["message"]
    assert "FR7 not assessed" in message and "FR6" not in message
    assert "SL_GAP_ACCEPTED" not in codes(answer, "warning")
    # in pilot the accepted gap is named, the unassessed FR is not passed off as accepted
    answer = release(client, people["ci"], system, "v1", "pilot")
    assert answer["allowed"] is True and codes(answer, "warning") == ["SL_GAP_ACCEPTED"]
    assert "FR6" in answer["reasons"][0]["message"] and "FR7" not in answer["reasons"][0]["message"]


def test_a_system_with_no_achieved_levels_is_not_released_to_production(
    client: Any, people: dict[str, Headers]
) -> None:
    system = create(client, people["admin"], zone="STR-CTL")["id"]
    r = client.post(
        f"/api/v1/systems/{system}/versions",
        json={"version": "v1", "artifact_digest": DIGEST_V1},
        headers=people["admin"],
    )
    assert r.status_code == 201, r.text
    classify(client, people["admin"], system, MINIMAL)
    a = submit(client, people["bob"], system, "v1", "production")
    # nothing to accept as a gap; OT security is asked because it must record the levels
    assert a["sl_gap"] == [] and a["required_because"]["ot_security"] == ["ot_zone", "sl_unassessed"]
    sign(client, people["berta"], a["id"], "business_owner")
    sign(client, people["admin"], a["id"], "compliance_officer")
    sign(client, people["otto"], a["id"], "ot_security")

    answer = release(client, people["ci"], system, "v1", "production")

    assert answer["allowed"] is False and codes(answer) == ["CONDITION_NOT_MET"]
    assert f"{', '.join(FRS)} not assessed" in answer["reasons"][0]["message"]
    assert "SL_GAP_ACCEPTED" not in codes(answer, "warning")


def test_documents_print_not_assessed(client: Any, people: dict[str, Headers]) -> None:
    achieved = dict.fromkeys(FRS[:6], 3) | {"FR7": None}
    system = create(client, people["admin"], zone="STR-CTL", sl_achieved=achieved)["id"]
    r = client.get(
        f"/api/v1/systems/{system}/documents/model-card", params={"format": "md"}, headers=people["admin"]
    )
    assert r.status_code == 200, r.text
    rows = [line for line in r.text.splitlines() if line.startswith("| FR")]
    fr7 = next(line for line in rows if line.startswith("| FR7 "))
    assert "not assessed" in fr7 and "| 0 |" not in fr7
    assert "not assessed where the zone sets a target: FR7" in r.text
