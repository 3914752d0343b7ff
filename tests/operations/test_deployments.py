"""Deployments reported by pipelines: the release gate refuses what it would deny; history answers which
version ran where at a given time."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.db import utcnow
from tests.systems.helpers import assert_problem, audit_events


def deploy(ops, system_id, version="1.0.0", environment="production", *, as_="pip", **extra):  # type: ignore[no-untyped-def]
    body = {"version": version, "environment": environment, **extra}
    return ops.client.post(f"/api/v1/systems/{system_id}/deployments", json=body, headers=ops.h[as_])


def iso(moment: datetime) -> str:
    return moment.isoformat()


def test_refused_with_the_gates_reasons_until_approved(ops):
    system = ops.ready()
    body = assert_problem(deploy(ops, system["id"]), 409)
    assert [r["code"] for r in body["reasons"]] == ["NO_APPROVAL"]
    assert "NO_APPROVAL" in body["detail"]
    assert body["release_permission"]["allowed"] is False

    body = assert_problem(deploy(ops, system["id"], "2.0.0"), 409)
    assert "UNKNOWN_VERSION" in [r["code"] for r in body["reasons"]]

    ops.request(system["id"])
    body = assert_problem(deploy(ops, system["id"]), 409)
    assert [r["code"] for r in body["reasons"]] == ["APPROVAL_PENDING"]
    assert (
        ops.ok(ops.client.get(f"/api/v1/systems/{system['id']}/deployments", headers=ops.carol))["total"] == 0
    )


def test_recorded_when_allowed(ops):
    system = ops.ready()
    approval = ops.approve(system["id"])
    when = utcnow().replace(microsecond=0) - timedelta(minutes=5)
    body = ops.ok(deploy(ops, system["id"], deployed_at=iso(when), note="blue/green switch"), 201)
    assert (body["version"], body["environment"], body["line"], body["site"]) == (
        "1.0.0",
        "production",
        "BODY1",
        "STR",
    )
    assert body["approval_id"] == approval["id"]
    assert body["artifact_digest"] == approval["artifact_digest"]
    assert datetime.fromisoformat(body["deployed_at"].replace("Z", "+00:00")) == when
    assert body["reported_by"] == "pip"
    events = audit_events(ops.client, ops.carol, entity_type="system", entity_id=system["id"])
    assert events[-1]["action"] == "deployment.create"


def test_refusals(ops):
    system = ops.ready()
    ops.approve(system["id"])
    assert_problem(deploy(ops, system["id"], as_="bob"), 403)
    assert_problem(deploy(ops, system["id"], environment="staging"), 422, field="environment")
    assert_problem(
        deploy(ops, system["id"], deployed_at=iso(utcnow() + timedelta(hours=1))), 422, field="deployed_at"
    )
    assert_problem(deploy(ops, system["id"], deployed_at="yesterday"), 422, field="deployed_at")
    assert_problem(deploy(ops, "AIS-424242"), 404)
    # the pilot environment has no approval of its own
    assert [
        r["code"] for r in assert_problem(deploy(ops, system["id"], environment="pilot"), 409)["reasons"]
    ] == ["NO_APPROVAL"]


def test_which_version_ran_at_a_time_per_environment(ops):
    system = ops.ready()
    ops.version(system["id"], "1.1.0", n=2)
    ops.approve(system["id"], "1.0.0")
    ops.approve(system["id"], "1.0.0", "pilot")
    ops.approve(system["id"], "1.1.0", "pilot")
    ops.approve(system["id"], "1.1.0")
    t0 = utcnow().replace(microsecond=0) - timedelta(days=10)
    ops.ok(deploy(ops, system["id"], "1.0.0", "pilot", deployed_at=iso(t0)), 201)
    ops.ok(deploy(ops, system["id"], "1.0.0", "production", deployed_at=iso(t0 + timedelta(days=1))), 201)
    ops.ok(deploy(ops, system["id"], "1.1.0", "pilot", deployed_at=iso(t0 + timedelta(days=3))), 201)
    ops.ok(deploy(ops, system["id"], "1.1.0", "production", deployed_at=iso(t0 + timedelta(days=6))), 201)

    def at(moment: datetime, **params: str) -> dict[str, str]:
        r = ops.client.get(
            f"/api/v1/systems/{system['id']}/deployments",
            params={"at": iso(moment), **params},
            headers=ops.audrey,
        )
        return {d["environment"]: d["version"] for d in ops.ok(r)["items"]}

    assert at(t0 - timedelta(seconds=1)) == {}
    assert at(t0) == {"pilot": "1.0.0"}
    assert at(t0 + timedelta(days=2)) == {"pilot": "1.0.0", "production": "1.0.0"}
    assert at(t0 + timedelta(days=4)) == {"pilot": "1.1.0", "production": "1.0.0"}
    assert at(t0 + timedelta(days=6)) == {"pilot": "1.1.0", "production": "1.1.0"}
    assert at(t0 + timedelta(days=4), environment="production") == {"production": "1.0.0"}

    history = ops.ok(ops.client.get(f"/api/v1/systems/{system['id']}/deployments", headers=ops.audrey))
    assert [(d["version"], d["environment"]) for d in history["items"]] == [
        ("1.1.0", "production"),
        ("1.1.0", "pilot"),
        ("1.0.0", "production"),
        ("1.0.0", "pilot"),
    ]
    r = ops.client.get(
        f"/api/v1/systems/{system['id']}/deployments?at=2026-01-01T00:00:00", headers=ops.audrey
    )
    assert_problem(r, 422, field="at")


def test_line_wide_query_uses_the_line_at_deployment_time(ops):
    weld = ops.ready()
    paint = ops.ready(name="Paint inspection", line="ASM2")
    lyo = ops.ready(name="Solder joints", site="LYO", line="SMT1")
    for s in (weld, paint, lyo):
        ops.approve(s["id"])
    t0 = utcnow().replace(microsecond=0) - timedelta(days=5)
    ops.ok(deploy(ops, lyo["id"], deployed_at=iso(t0)), 201)
    ops.ok(deploy(ops, weld["id"], deployed_at=iso(t0)), 201)
    ops.ok(deploy(ops, paint["id"], deployed_at=iso(t0 + timedelta(days=1))), 201)
    # weld moves to line ASM2 and is deployed again there
    ops.patch(weld["id"], line="ASM2")
    ops.ok(deploy(ops, weld["id"], deployed_at=iso(t0 + timedelta(days=3))), 201)

    def line(name: str, moment: datetime) -> list[str]:
        r = ops.client.get(
            "/api/v1/deployments", params={"site": "STR", "line": name, "at": iso(moment)}, headers=ops.carol
        )
        return sorted(d["system_id"] for d in ops.ok(r)["items"])

    assert line("BODY1", t0 + timedelta(days=2)) == [weld["id"]]
    assert line("ASM2", t0 + timedelta(days=2)) == [paint["id"]]
    assert line("BODY1", t0 + timedelta(days=4)) == []
    assert line("ASM2", t0 + timedelta(days=4)) == sorted([weld["id"], paint["id"]])
    # default: production, now; the STR auditor sees STR only
    now_all = ops.ok(ops.client.get("/api/v1/deployments", headers=ops.audrey))
    assert sorted(d["system_id"] for d in now_all["items"]) == sorted([weld["id"], paint["id"]])
    everywhere = ops.ok(ops.client.get("/api/v1/deployments", headers=ops.carol))
    assert sorted(d["system_id"] for d in everywhere["items"]) == sorted([weld["id"], paint["id"], lyo["id"]])
    lyo_line = ops.ok(ops.client.get("/api/v1/deployments?site=LYO&line=SMT1", headers=ops.carol))
    assert [d["system_id"] for d in lyo_line["items"]] == [lyo["id"]]
    assert ops.ok(ops.client.get("/api/v1/deployments?environment=pilot", headers=ops.carol))["total"] == 0


def test_deployments_block_system_deletion(ops):
    system = ops.ready()
    ops.approve(system["id"])
    ops.ok(deploy(ops, system["id"]), 201)
    current = ops.ok(ops.client.get(f"/api/v1/systems/{system['id']}", headers=ops.carol))
    r = ops.client.delete(
        f"/api/v1/systems/{system['id']}", headers={**ops.carol, "If-Match": f'"{current["revision"]}"'}
    )
    assert "deployment" in assert_problem(r, 409)["detail"]
