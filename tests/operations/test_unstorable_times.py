"""A time the store cannot hold is a 422 naming the field on every route that takes a time, never a 500."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.db import utcnow
from tests.factories import Ops
from tests.systems.helpers import assert_problem

# Years 1 and 9999 with an offset overflow when converted to UTC; 1899 is before the registry's range.
UNSTORABLE = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1899-12-31T23:59:59Z")


ROUTES = {
    # name: (where the field is, field, sends the request for one bad value)
    "monitoring report": (
        "body",
        "observed_at",
        lambda ops, sid, inc, bad: ops.client.post(
            f"/api/v1/systems/{sid}/monitoring",
            json={"version": "1.0.0", "status": "ok", "observed_at": bad},
            headers=ops.pip,
        ),
    ),
    "monitoring list": (
        "query",
        "since",
        lambda ops, sid, inc, bad: ops.client.get(
            f"/api/v1/systems/{sid}/monitoring", params={"since": bad}, headers=ops.carol
        ),
    ),
    "deployment report": (
        "body",
        "deployed_at",
        lambda ops, sid, inc, bad: ops.client.post(
            f"/api/v1/systems/{sid}/deployments",
            json={"version": "1.0.0", "environment": "pilot", "deployed_at": bad},
            headers=ops.pip,
        ),
    ),
    "system deployments at": (
        "query",
        "at",
        lambda ops, sid, inc, bad: ops.client.get(
            f"/api/v1/systems/{sid}/deployments", params={"at": bad}, headers=ops.carol
        ),
    ),
    "deployments at": (
        "query",
        "at",
        lambda ops, sid, inc, bad: ops.client.get(
            "/api/v1/deployments", params={"at": bad}, headers=ops.carol
        ),
    ),
    "incident occurred_at": (
        "body",
        "occurred_at",
        lambda ops, sid, inc, bad: ops.incident(sid, occurred_at=bad),
    ),
    "incident aware_at": ("body", "aware_at", lambda ops, sid, inc, bad: ops.incident(sid, aware_at=bad)),
    "incident reported_at": (
        "body",
        "reported_at",
        lambda ops, sid, inc, bad: ops.incident(sid, reported_at=bad),
    ),
    "incident report": (
        "body",
        "reported_at",
        lambda ops, sid, inc, bad: ops.client.post(
            f"/api/v1/incidents/{inc['id']}/report",
            json={"reported_at": bad, "revision": inc["revision"]},
            headers=ops.carol,
        ),
    ),
    "audit events": (
        "query",
        "since",
        lambda ops, sid, inc, bad: ops.client.get(
            "/api/v1/audit-events", params={"since": bad}, headers=ops.admin
        ),
    ),
}


def _stored(ops: Ops, sid: str, incident_id: str) -> dict[str, Any]:
    """What the writes above could have changed, read through the API."""

    def total(url: str) -> int:
        return ops.ok(ops.client.get(url, params={"limit": 500}, headers=ops.carol))["total"]

    return {
        "monitoring": total(f"/api/v1/systems/{sid}/monitoring"),
        "deployments": total(f"/api/v1/systems/{sid}/deployments"),
        "incidents": total(f"/api/v1/systems/{sid}/incidents"),
        "incident": ops.ok(ops.client.get(f"/api/v1/incidents/{incident_id}", headers=ops.carol)),
        "audit": ops.ok(ops.client.get("/api/v1/audit-events", params={"limit": 1}, headers=ops.admin))[
            "total"
        ],
    }


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_unstorable_time_is_422_naming_the_field_and_stores_nothing(ops: Ops, route: str) -> None:
    system = ops.ready()
    sid = system["id"]
    now = utcnow()
    incident = ops.ok(
        ops.incident(
            sid,
            serious=False,
            occurred_at=(now - timedelta(hours=3)).isoformat(),
            aware_at=(now - timedelta(hours=2)).isoformat(),
        ),
        201,
    )
    where, field, send = ROUTES[route]
    before = _stored(ops, sid, incident["id"])
    for bad in UNSTORABLE:
        problem = assert_problem(send(ops, sid, incident, bad), 422)
        named = [e["msg"] for e in problem["errors"] if e["loc"] == [where, field]]
        assert named and "1900-01-01T00:00:00Z" in named[0], (bad, problem)
        assert len(problem["errors"]) == 1, problem
    assert _stored(ops, sid, incident["id"]) == before


def test_times_at_the_ends_of_the_range_are_taken(ops: Ops) -> None:
    sid = ops.ready()["id"]
    for edge in ("1900-01-01T00:00:00Z", "1900-01-01T14:00:00+14:00", "9999-12-31T23:59:59Z"):
        ops.ok(ops.client.get(f"/api/v1/systems/{sid}/deployments", params={"at": edge}, headers=ops.carol))
        ops.ok(ops.client.get("/api/v1/audit-events", params={"since": edge}, headers=ops.admin))
    report = ops.client.post(
        f"/api/v1/systems/{sid}/monitoring",
        json={"version": "1.0.0", "status": "ok", "observed_at": "1900-01-01T00:00:00Z"},
        headers=ops.pip,
    )
    assert ops.ok(report, 201)["observed_at"].startswith("1900-01-01T00:00:00")
