"""An open serious incident suspends release permission (SUSPENDED_BY_INCIDENT) until closed or lifted."""

from __future__ import annotations

from tests.factories import HIGH_RISK
from tests.systems.helpers import assert_problem, audit_events

CLOSE = {
    "root_cause": "Lighting changed after a lamp swap",
    "corrective_action": "Lamp type fixed; model recalibrated",
}


def codes(answer: dict) -> list[str]:
    """The denying reasons (a high-risk system's requirements that do not bind yet add a warning)."""
    return [r["code"] for r in answer["reasons"] if r["severity"] == "error"]


def test_serious_incident_suspends_every_release_until_closed(ops):
    system = ops.ready(HIGH_RISK)
    ops.approve(system["id"])
    assert ops.release(system["id"])["allowed"] is True
    assert ops.release(system["id"], environment="pilot")["allowed"] is True

    incident = ops.ok(ops.incident(system["id"], kind="health"), 201)
    for environment in ("production", "pilot"):
        answer = ops.release(system["id"], environment=environment)
        assert answer["allowed"] is False
        assert codes(answer) == ["SUSPENDED_BY_INCIDENT"]
        assert incident["id"] in answer["reasons"][0]["message"]
        assert answer["approval_id"] is not None  # the approval itself still stands

    # a pipeline reporting a rollout meanwhile is refused with the gate's reasons
    r = ops.client.post(
        f"/api/v1/systems/{system['id']}/deployments",
        json={"version": "1.0.0", "environment": "production"},
        headers=ops.pip,
    )
    body = assert_problem(r, 409)
    assert codes(body) == ["SUSPENDED_BY_INCIDENT"]
    assert body["release_permission"]["allowed"] is False

    closed = ops.ok(
        ops.client.post(f"/api/v1/incidents/{incident['id']}/close", json=CLOSE, headers=ops.carol)
    )
    assert closed["suspends_release"] is False
    assert ops.release(system["id"])["allowed"] is True


def test_non_serious_incident_does_not_suspend(ops):
    system = ops.ready()
    ops.approve(system["id"])
    body = ops.ok(ops.incident(system["id"], serious=False), 201)
    assert body["suspends_release"] is False
    assert ops.release(system["id"])["allowed"] is True


def test_each_open_serious_incident_is_a_reason_and_only_for_its_system(ops):
    system = ops.ready()
    other = ops.ready(name="Paint inspection")
    ops.approve(system["id"])
    ops.approve(other["id"])
    first = ops.ok(ops.incident(system["id"]), 201)
    second = ops.ok(ops.incident(system["id"], kind="property_environment", as_="bob"), 201)
    answer = ops.release(system["id"])
    assert codes(answer) == ["SUSPENDED_BY_INCIDENT", "SUSPENDED_BY_INCIDENT"]
    assert [
        first["id"] in answer["reasons"][0]["message"],
        second["id"] in answer["reasons"][1]["message"],
    ] == [
        True,
        True,
    ]
    assert ops.release(other["id"])["allowed"] is True
    # closing one leaves the other standing
    ops.ok(ops.client.post(f"/api/v1/incidents/{first['id']}/close", json=CLOSE, headers=ops.carol))
    assert codes(ops.release(system["id"])) == ["SUSPENDED_BY_INCIDENT"]


def test_suspension_adds_to_other_denial_reasons(ops):
    system = ops.ready()
    ops.ok(ops.incident(system["id"]), 201)
    answer = ops.release(system["id"])
    assert answer["allowed"] is False
    assert codes(answer) == ["NO_APPROVAL", "SUSPENDED_BY_INCIDENT"]


def test_compliance_officer_lifts_the_suspension_explicitly(ops):
    system = ops.ready()
    ops.approve(system["id"])
    incident = ops.ok(ops.incident(system["id"]), 201)
    url = f"/api/v1/incidents/{incident['id']}/lift"

    assert_problem(ops.client.post(url, json={"reason": "contained"}, headers=ops.bob), 403)
    assert_problem(ops.client.post(url, json={"reason": "contained"}, headers=ops.rita), 403)
    assert_problem(ops.client.post(url, json={}, headers=ops.carol), 422, field="reason")
    assert_problem(ops.client.post(url, json={"reason": "  "}, headers=ops.carol), 422, field="reason")
    assert_problem(ops.client.post(url, json={"reason": "x"}, headers={**ops.carol, "If-Match": '"9"'}), 409)
    assert ops.release(system["id"])["allowed"] is False

    reason = "Cause contained: manual inspection of every part until the fix ships"
    lifted = ops.ok(ops.client.post(url, json={"reason": reason}, headers={**ops.carol, "If-Match": '"1"'}))
    assert (lifted["lifted_by"], lifted["lift_reason"], lifted["suspends_release"]) == (
        "carol",
        reason,
        False,
    )
    assert lifted["status"] == "open"  # still open: only its effect on releases is lifted
    assert ops.release(system["id"])["allowed"] is True
    assert_problem(ops.client.post(url, json={"reason": "again"}, headers=ops.carol), 409)

    suspending = ops.ok(ops.client.get("/api/v1/incidents?suspending=true", headers=ops.carol))
    assert suspending["total"] == 0
    events = audit_events(ops.client, ops.carol, entity_type="incident", entity_id=incident["id"])
    lift = next(e for e in events if e["action"] == "incident.lift")
    assert (lift["actor"], lift["after"]["lift_reason"]) == ("carol", reason)

    # closing after a lift still works; lifting a closed or non-serious incident is refused
    ops.ok(ops.client.post(f"/api/v1/incidents/{incident['id']}/close", json=CLOSE, headers=ops.carol))
    assert_problem(ops.client.post(url, json={"reason": "late"}, headers=ops.carol), 409)
    minor = ops.ok(ops.incident(system["id"], serious=False), 201)
    assert_problem(
        ops.client.post(f"/api/v1/incidents/{minor['id']}/lift", json={"reason": "x"}, headers=ops.carol), 409
    )


def test_new_serious_incident_after_a_lift_suspends_again(ops):
    system = ops.ready()
    ops.approve(system["id"])
    first = ops.ok(ops.incident(system["id"]), 201)
    ops.ok(ops.client.post(f"/api/v1/incidents/{first['id']}/lift", json={"reason": "ok"}, headers=ops.carol))
    assert ops.release(system["id"])["allowed"] is True
    ops.ok(ops.incident(system["id"], kind="death", title="Fatal accident at cell 4"), 201)
    assert codes(ops.release(system["id"])) == ["SUSPENDED_BY_INCIDENT"]
