"""Monitoring reports from pipelines and the active / lapsed / missing state lists and the dashboard show."""

from __future__ import annotations

from datetime import timedelta

from app.db import utcnow
from tests.systems.helpers import assert_problem, audit_events


def report(ops, system_id, *, as_="pip", **fields):  # type: ignore[no-untyped-def]
    body = {"version": "1.0.0", "status": "ok", "metrics": {"recall": 0.97, "drift.psi": 0.08}, **fields}
    return ops.client.post(f"/api/v1/systems/{system_id}/monitoring", json=body, headers=ops.h[as_])


def state(ops, system_id):  # type: ignore[no-untyped-def]
    return ops.ok(ops.client.get(f"/api/v1/systems/{system_id}/monitoring/status", headers=ops.carol))


def test_pipeline_reports_and_lists_newest_first(ops):
    system = ops.ready(lifecycle_stage="production")
    ops.version(system["id"], "1.1.0", n=2)
    first = ops.ok(report(ops, system["id"], observed_at=(utcnow() - timedelta(hours=2)).isoformat()), 201)
    second = ops.ok(
        report(ops, system["id"], version="1.1.0", status="degraded", metrics={"recall": 0.91}), 201
    )
    assert (first["version"], first["status"], first["reported_by"]) == ("1.0.0", "ok", "pip")
    assert first["metrics"] == {"recall": 0.97, "drift.psi": 0.08}
    page = ops.ok(ops.client.get(f"/api/v1/systems/{system['id']}/monitoring", headers=ops.audrey))
    assert [r["id"] for r in page["items"]] == [second["id"], first["id"]] and page["total"] == 2
    only = ops.ok(
        ops.client.get(f"/api/v1/systems/{system['id']}/monitoring?status=degraded", headers=ops.bob)
    )
    assert [r["id"] for r in only["items"]] == [second["id"]]
    events = audit_events(ops.client, ops.carol, entity_type="system", entity_id=system["id"])
    assert [e["after"]["status"] for e in events if e["action"] == "monitoring.report"] == ["ok", "degraded"]


def test_report_refusals(ops):
    system = ops.ready(lifecycle_stage="production")
    assert_problem(report(ops, system["id"], as_="bob"), 403)
    assert_problem(report(ops, system["id"], version="9.9.9"), 422, field="version")
    assert_problem(report(ops, system["id"], status="fine"), 422, field="status")
    assert_problem(report(ops, system["id"], metrics={"recall": "high"}), 422, field="recall")
    assert_problem(report(ops, system["id"], metrics={"bad name": 1}), 422)
    future = (utcnow() + timedelta(hours=1)).isoformat()
    assert_problem(report(ops, system["id"], observed_at=future), 422, field="observed_at")
    naive = utcnow().replace(tzinfo=None).isoformat()
    assert_problem(report(ops, system["id"], observed_at=naive), 422, field="observed_at")
    assert_problem(report(ops, "AIS-999999"), 404)
    assert (
        ops.ok(ops.client.get(f"/api/v1/systems/{system['id']}/monitoring", headers=ops.carol))["total"] == 0
    )


def test_state_follows_the_expected_interval(ops, travel):
    production = ops.ready(lifecycle_stage="production")  # default interval 24 h
    slow = ops.ready(lifecycle_stage="production", monitoring_interval_hours=72, name="Slow drift check")
    pilot = ops.ready(lifecycle_stage="pilot", monitoring_interval_hours=12, name="Pilot with interval")
    idea = ops.ready(name="Just an idea")

    assert state(ops, production["id"])["state"] == "missing"
    assert state(ops, idea["id"])["state"] == "not_required"
    assert state(ops, pilot["id"])["state"] == "missing"
    for s in (production, slow, pilot):
        ops.ok(report(ops, s["id"]), 201)
    body = state(ops, production["id"])
    assert (body["state"], body["interval_hours"], body["last_status"], body["last_version"]) == (
        "active",
        24,
        "ok",
        "1.0.0",
    )

    travel(timedelta(hours=25))
    assert state(ops, production["id"])["state"] == "lapsed"
    assert state(ops, slow["id"])["state"] == "active"
    assert state(ops, pilot["id"])["state"] == "lapsed"
    lapsed = ops.ok(ops.client.get("/api/v1/monitoring/lapsed", headers=ops.carol))
    assert sorted(r["system_id"] for r in lapsed["items"]) == sorted([production["id"], pilot["id"]])

    # the system list shows the state of each system
    listed = ops.ok(ops.client.get("/api/v1/systems", headers=ops.carol))["items"]
    assert {s["id"]: s["monitoring"] for s in listed} == {
        production["id"]: "lapsed",
        slow["id"]: "active",
        pilot["id"]: "lapsed",
        idea["id"]: "not_required",
    }
    assert (
        ops.ok(ops.client.get(f"/api/v1/systems/{slow['id']}", headers=ops.carol))["monitoring"] == "active"
    )

    # a fresh report makes it active again
    ops.ok(report(ops, production["id"], status="alert"), 201)
    body = state(ops, production["id"])
    assert (body["state"], body["last_status"]) == ("active", "alert")


def test_backfilled_old_report_does_not_count_as_recent(ops):
    system = ops.ready(lifecycle_stage="production")
    ops.ok(report(ops, system["id"], observed_at=(utcnow() - timedelta(hours=30)).isoformat()), 201)
    assert state(ops, system["id"])["state"] == "lapsed"


def test_overview_filters_by_site_and_state(ops):
    str_prod = ops.ready(lifecycle_stage="production")
    lyo_prod = ops.ready(
        lifecycle_stage="production", site="LYO", line="SMT1", business_owner="lou", as_="lou"
    )
    ops.ready(name="Idea only")
    ops.ok(report(ops, str_prod["id"]), 201)
    everything = ops.ok(ops.client.get("/api/v1/monitoring/status", headers=ops.carol))
    assert {r["system_id"]: r["state"] for r in everything["items"]} == {
        str_prod["id"]: "active",
        lyo_prod["id"]: "missing",
    }
    lyo = ops.ok(ops.client.get("/api/v1/monitoring/status?site=LYO", headers=ops.carol))
    assert [r["system_id"] for r in lyo["items"]] == [lyo_prod["id"]]
    active = ops.ok(ops.client.get("/api/v1/monitoring/status?state=active", headers=ops.carol))
    assert [r["system_id"] for r in active["items"]] == [str_prod["id"]]
    # the STR auditor does not see LYO
    mine = ops.ok(ops.client.get("/api/v1/monitoring/lapsed", headers=ops.audrey))
    assert mine["items"] == [] and mine["total"] == 0


def test_reports_block_system_deletion(ops):
    system = ops.ready()
    ops.ok(report(ops, system["id"]), 201)
    current = ops.ok(ops.client.get(f"/api/v1/systems/{system['id']}", headers=ops.carol))
    r = ops.client.delete(
        f"/api/v1/systems/{system['id']}", headers={**ops.carol, "If-Match": f'"{current["revision"]}"'}
    )
    assert "monitoring_report" in assert_problem(r, 409)["detail"]
