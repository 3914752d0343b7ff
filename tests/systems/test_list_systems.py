"""Listing AI systems: every filter, text search, ordering, paging and the refusals."""

from __future__ import annotations

from typing import Any

import pytest

from tests.systems.helpers import assert_problem, set_columns

# name, purpose, site, line, owner, stage, zone, ai_act_class, risk_tier
PORTFOLIO = [
    (
        "Weld inspection",
        "Detect weld seam defects",
        "STR",
        "BODY1",
        "bob",
        "production",
        "STR-CTL",
        "high_risk",
        "high",
    ),
    (
        "Paint check",
        "Find paint runs on bodies",
        "STR",
        "BODY1",
        "berta",
        "pilot",
        "STR-CTL",
        "minimal_risk",
        "low",
    ),
    (
        "Shift planner",
        "Allocate WORKERS to shifts",
        "STR",
        "ASM2",
        "berta",
        "pilot",
        "STR-ENT",
        "high_risk",
        "critical",
    ),
    ("HVAC optimiser", "Cut paint shop energy use", "STR", None, "bob", "idea", None, None, None),
    (
        "AOI classifier",
        "Solder joint weld-like defects",
        "LYO",
        "SMT1",
        "leo",
        "production",
        "LYO-CTL",
        "high_risk",
        "medium",
    ),
    (
        "Invoice reader",
        "Extract fields 100% automatically",
        "LYO",
        None,
        "leo",
        "retired",
        None,
        "limited_risk",
        "low",
    ),
]


@pytest.fixture
def portfolio(client: Any, admin: dict[str, str], plant: Any, make_user: Any) -> list[dict[str, Any]]:
    """Six systems in two sites with mixed classes, tiers, stages, zones and owners."""
    for user, site in (("bob", "STR"), ("berta", "STR"), ("leo", "LYO")):
        make_user(user, ("business_owner", site))
    created = []
    for name, purpose, site, line, owner, stage, zone, cls, tier in PORTFOLIO:
        body = {
            "name": name,
            "purpose": purpose,
            "site": site,
            "line": line,
            "business_owner": owner,
            "lifecycle_stage": stage,
            "zone": zone,
        }
        r = client.post("/api/v1/systems", json=body, headers=admin)
        assert r.status_code == 201, r.text
        set_columns(r.json()["id"], ai_act_class=cls, risk_tier=tier)
        created.append(client.get(f"/api/v1/systems/{r.json()['id']}", headers=admin).json())
    return created


def _names(client: Any, headers: dict[str, str], **params: Any) -> list[str]:
    r = client.get("/api/v1/systems", params=params, headers=headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] >= len(page["items"])
    return [s["name"] for s in page["items"]]


def test_list_everything_in_id_order(client, admin, portfolio):
    r = client.get("/api/v1/systems", headers=admin)
    assert r.status_code == 200
    page = r.json()
    assert (page["total"], page["limit"], page["offset"]) == (6, 50, 0)
    assert page["items"] == portfolio
    assert [s["id"] for s in page["items"]] == [f"AIS-00000{i}" for i in range(1, 7)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"site": "LYO"}, ["AOI classifier", "Invoice reader"]),
        ({"site": "STR", "line": "BODY1"}, ["Weld inspection", "Paint check"]),
        ({"line": "ASM2"}, ["Shift planner"]),
        ({"ai_act_class": "high_risk"}, ["Weld inspection", "Shift planner", "AOI classifier"]),
        ({"ai_act_class": "high_risk", "site": "STR"}, ["Weld inspection", "Shift planner"]),
        ({"ai_act_class": "limited_risk"}, ["Invoice reader"]),
        ({"ai_act_class": "prohibited"}, []),
        ({"risk_tier": "low"}, ["Paint check", "Invoice reader"]),
        ({"risk_tier": "critical"}, ["Shift planner"]),
        ({"lifecycle_stage": "pilot"}, ["Paint check", "Shift planner"]),
        ({"lifecycle_stage": "retired"}, ["Invoice reader"]),
        ({"zone": "STR-CTL"}, ["Weld inspection", "Paint check"]),
        ({"zone": "LYO-ENT"}, []),
        ({"business_owner": "berta"}, ["Paint check", "Shift planner"]),
        ({"business_owner": "leo", "lifecycle_stage": "production"}, ["AOI classifier"]),
        ({"q": "weld"}, ["Weld inspection", "AOI classifier"]),  # name or purpose
        ({"q": "WELD SEAM"}, ["Weld inspection"]),  # case-insensitive
        ({"q": "workers"}, ["Shift planner"]),  # case-insensitive the other way
        ({"q": "paint"}, ["Paint check", "HVAC optimiser"]),
        ({"q": "100%"}, ["Invoice reader"]),  # % is literal, not a wildcard
        ({"q": "%"}, ["Invoice reader"]),
        ({"q": "_"}, []),  # _ is literal too
        ({"q": "nothing like this"}, []),
        ({"q": "weld", "site": "STR"}, ["Weld inspection"]),
    ],
)
def test_filters(client, admin, portfolio, params, expected):
    r = client.get("/api/v1/systems", params=params, headers=admin)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [s["name"] for s in page["items"]] == expected
    assert page["total"] == len(expected)


def test_order_by_and_desc(client, admin, portfolio):
    by_name = sorted(s["name"] for s in portfolio)
    assert _names(client, admin, order_by="name") == by_name
    assert _names(client, admin, order_by="name", desc=True) == list(reversed(by_name))
    ids = [
        s["id"] for s in client.get("/api/v1/systems", params={"desc": "true"}, headers=admin).json()["items"]
    ]
    assert ids == [f"AIS-00000{i}" for i in range(6, 0, -1)]
    # ties on the sort key are broken by id, so pages are stable
    by_site = client.get("/api/v1/systems", params={"order_by": "site"}, headers=admin).json()["items"]
    assert [(s["site"], s["id"]) for s in by_site] == sorted((s["site"], s["id"]) for s in portfolio)
    stages = [
        s["lifecycle_stage"]
        for s in client.get("/api/v1/systems", params={"order_by": "lifecycle_stage"}, headers=admin).json()[
            "items"
        ]
    ]
    assert stages == sorted(stages)


def test_pagination(client, admin, portfolio):
    all_ids = [s["id"] for s in portfolio]
    seen = []
    for offset in range(0, 6, 4):
        page = client.get("/api/v1/systems", params={"limit": 4, "offset": offset}, headers=admin).json()
        assert (page["total"], page["limit"], page["offset"]) == (6, 4, offset)
        seen += [s["id"] for s in page["items"]]
    assert seen == all_ids
    page = client.get("/api/v1/systems", params={"limit": 2, "offset": 100}, headers=admin).json()
    assert page["items"] == [] and page["total"] == 6
    page = client.get("/api/v1/systems", params={"limit": 500}, headers=admin).json()
    assert len(page["items"]) == 6
    page = client.get(
        "/api/v1/systems", params={"limit": 1, "ai_act_class": "high_risk"}, headers=admin
    ).json()
    assert (len(page["items"]), page["total"]) == (1, 3)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 501}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"ai_act_class": "foo"}, "ai_act_class"),
        ({"risk_tier": "extreme"}, "risk_tier"),
        ({"lifecycle_stage": "beta"}, "lifecycle_stage"),
        ({"order_by": "purpose"}, "order_by"),
        ({"desc": "sideways"}, "desc"),
        ({"site": "lower"}, "site"),
        ({"line": "bad line"}, "line"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_bad_query_is_422_naming_the_parameter(client, admin, portfolio, params, field):
    body = assert_problem(client.get("/api/v1/systems", params=params, headers=admin), 422, field=field)
    assert body["errors"][0]["loc"][0] == "query"


def test_list_is_scoped_to_the_callers_sites(client, admin, portfolio, make_user):
    lyon = make_user("lucie", ("auditor", "LYO"))
    page = client.get("/api/v1/systems", headers=lyon).json()
    assert [s["name"] for s in page["items"]] == ["AOI classifier", "Invoice reader"]
    assert page["total"] == 2
    # filtering on a site the caller cannot see yields nothing rather than an error or a leak
    page = client.get("/api/v1/systems", params={"site": "STR"}, headers=lyon).json()
    assert (page["items"], page["total"]) == ([], 0)
    nobody = make_user("nobody")
    assert client.get("/api/v1/systems", headers=nobody).json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
        "total_exact": True,
    }
    assert_problem(client.get("/api/v1/systems"), 401)


def test_list_reports_sl_gap_per_zone(client, admin, plant, make_user):
    make_user("bob", ("business_owner", "STR"))
    two = {f"FR{i}": 2 for i in range(1, 8)}
    for zone in ("STR-CTL", "STR-ENT"):
        body = {
            "name": zone,
            "purpose": "p",
            "site": "STR",
            "business_owner": "bob",
            "zone": zone,
            "sl_achieved": two,
        }
        assert client.post("/api/v1/systems", json=body, headers=admin).status_code == 201
    items = client.get("/api/v1/systems", headers=admin).json()["items"]
    assert {s["zone"]: s["sl_gap"] for s in items} == {
        "STR-CTL": [f"FR{i}" for i in range(1, 8)],
        "STR-ENT": [],
    }
