"""Portfolio figures on a known fixture built through the API at known instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.systems.helpers import assert_problem

T1 = datetime(2026, 2, 10, 10, 0, tzinfo=UTC)  # 2026-Q1
T2 = datetime(2026, 5, 10, 10, 0, tzinfo=UTC)  # 2026-Q2
NOW = datetime(2026, 8, 15, 12, 0, tzinfo=UTC)  # 2026-Q3


@pytest.fixture
def portfolio(ops, travel):  # type: ignore[no-untyped-def]
    """A: pilot in Q1, production from Q2, approved 10 days after registration, monitored.
    B: production from Q1, retired the day before now; replicated to LYO as D in Q2.
    E: production from Q1, approved 30 days after registration, never monitored.
    C: pilot from Q2, two requests pending (40 and 5 days old)."""
    travel(T1)
    a = ops.ready(name="A", lifecycle_stage="pilot")
    b = ops.ready(name="B", lifecycle_stage="production")
    e = ops.ready(name="E", lifecycle_stage="production")
    travel(T1 + timedelta(days=10))
    ops.approve(a["id"])
    travel(T1 + timedelta(days=30))
    ops.approve(e["id"])
    travel(T2)
    ops.patch(a["id"], lifecycle_stage="production")
    c = ops.ready(name="C", lifecycle_stage="pilot")
    d = ops.ok(
        ops.client.post(
            f"/api/v1/systems/{b['id']}/replicate",
            json={"site": "LYO", "line": "SMT1", "business_owner": "lou"},
            headers=ops.carol,
        ),
        201,
    )
    incident = ops.ok(ops.incident(c["id"]), 201)
    ops.ok(
        ops.client.post(
            f"/api/v1/incidents/{incident['id']}/close",
            json={"root_cause": "x", "corrective_action": "y"},
            headers=ops.carol,
        )
    )
    travel(NOW - timedelta(days=40))
    ops.request(c["id"], environment="pilot")
    travel(NOW - timedelta(days=5))
    ops.request(c["id"], environment="production")
    travel(NOW - timedelta(days=1))
    ops.patch(b["id"], lifecycle_stage="retired")
    ops.ok(ops.incident(a["id"], kind="health"), 201)
    ops.ok(ops.incident(e["id"], serious=False), 201)
    travel(NOW - timedelta(hours=1))
    ops.ok(
        ops.client.post(
            f"/api/v1/systems/{a['id']}/monitoring",
            json={"version": "1.0.0", "status": "ok"},
            headers=ops.pip,
        ),
        201,
    )
    travel(NOW)
    return {"A": a, "B": b, "C": c, "D": d, "E": e}


def kpis(ops, **params):  # type: ignore[no-untyped-def]
    return ops.ok(ops.client.get("/api/v1/kpis", params=params, headers=ops.carol))


def test_portfolio_figures(ops, portfolio):
    body = kpis(ops)
    assert body["sites"] is None
    assert body["systems"] == 4  # A, C, D, E (B is retired)
    assert [(q["quarter"], q["production"], q["pilot"]) for q in body["stages_by_quarter"]] == [
        ("2025-Q4", 0, 0),
        ("2026-Q1", 2, 1),  # B, E in production; A in pilot
        ("2026-Q2", 3, 1),  # A joined production; C in pilot; D (replica) only an idea
        ("2026-Q3", 2, 1),  # B retired
    ]
    q3 = body["stages_by_quarter"][-1]
    assert q3["start"].startswith("2026-07-01") and q3["end"].startswith("2026-08-15T12:00")
    assert body["monitoring"] == {"production_systems": 2, "monitoring_active": 1, "share_active": 0.5}
    assert body["days_to_first_production_approval"] == {"systems": 2, "median_days": 20.0}
    assert body["approvals_pending"] == {
        "count": 2,
        "median_age_days": 22.5,
        "oldest_age_days": 40.0,
        "by_age": {"0-7d": 1, "7-30d": 0, "30-90d": 1, "90d+": 0},
    }
    assert body["replicated_from_another_line"] == {"systems": 4, "replicated": 1, "share": 0.25}
    assert body["open_incidents"] == {
        "by_severity": {"serious": 1, "not_serious": 1},
        "by_kind": {"health": 1, "other": 1},
        "reports_overdue": 0,
    }


def test_figures_per_site_and_quarters(ops, portfolio):
    lyo = kpis(ops, site="LYO")
    assert lyo["sites"] == ["LYO"] and lyo["systems"] == 1
    assert lyo["replicated_from_another_line"] == {"systems": 1, "replicated": 1, "share": 1.0}
    assert lyo["monitoring"] == {"production_systems": 0, "monitoring_active": 0, "share_active": None}
    assert lyo["days_to_first_production_approval"] == {"systems": 0, "median_days": None}
    assert lyo["approvals_pending"]["count"] == 0
    assert [(q["production"], q["pilot"]) for q in lyo["stages_by_quarter"]] == [(0, 0)] * 4
    two = kpis(ops, quarters=2)
    assert [q["quarter"] for q in two["stages_by_quarter"]] == ["2026-Q2", "2026-Q3"]
    assert_problem(ops.client.get("/api/v1/kpis?quarters=0", headers=ops.carol), 422, field="quarters")
    assert_problem(ops.client.get("/api/v1/kpis?site=lyo", headers=ops.carol), 422, field="site")


def test_access_to_figures(ops, portfolio):
    # the STR auditor gets STR figures only, and no LYO figures at all
    mine = ops.ok(ops.client.get("/api/v1/kpis", headers=ops.audrey))
    assert mine["sites"] == ["STR"] and mine["systems"] == 3
    assert_problem(ops.client.get("/api/v1/kpis?site=LYO", headers=ops.audrey), 404)
    assert_problem(ops.client.get("/api/v1/kpis", headers=ops.pip), 403)  # mlops has no kpi:read
    assert ops.client.get("/api/v1/kpis").status_code == 401
