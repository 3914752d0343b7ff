"""A high-risk system's approval request needs its NIST AI RMF risk assessment first (CONTRACT: Trust)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.approvals.helpers import (
    ANNEX1_MACHINERY,
    ANNEX3_EMPLOYMENT,
    MINIMAL,
    assess_risk,
    classify,
    submit,
)

BODY = {"version": "v1", "environment": "pilot", "justification": "roll out v1"}


def _approval_events(client: Any, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = client.get("/api/v1/audit-events", params={"entity_type": "approval", "limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.mark.parametrize("answers", [ANNEX3_EMPLOYMENT, ANNEX1_MACHINERY], ids=["annex3", "annex1"])
def test_high_risk_without_assessment_is_409_and_creates_nothing(
    client: Any, team: dict[str, dict[str, str]], make_system: Any, answers: dict[str, Any]
) -> None:
    system = make_system()
    assert classify(client, team["admin"], system, answers, assess=False)["ai_act_class"] == "high_risk"
    before = client.get(f"/api/v1/systems/{system}", headers=team["admin"]).json()["revision"]

    r = client.post(f"/api/v1/systems/{system}/approvals", json=BODY, headers=team["bob"])

    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 409 and body["code"] == "RISK_ASSESSMENT_MISSING"
    assert system in body["detail"] and "risk assessment" in body["detail"]
    listed = client.get("/api/v1/approvals", params={"site": "STR"}, headers=team["admin"]).json()
    assert (listed["items"], listed["total"]) == ([], 0)
    assert _approval_events(client, team["admin"]) == []
    assert client.get(f"/api/v1/systems/{system}", headers=team["admin"]).json()["revision"] == before


def test_after_the_assessment_the_request_is_accepted(
    client: Any, team: dict[str, dict[str, str]], make_system: Any
) -> None:
    system = make_system()
    classify(client, team["admin"], system, ANNEX3_EMPLOYMENT, assess=False)
    submit(client, team["bob"], system, "v1", "pilot", expect=409)
    assess_risk(client, team["rita"], system)  # the risk officer records it

    created = submit(client, team["bob"], system, "v1", "pilot")

    assert created["state"] == "submitted" and "risk_officer" in created["required_signoffs"]
    assert [e["action"] for e in _approval_events(client, team["admin"])] == ["approval.submit"]


@pytest.mark.parametrize(
    ("answers", "ai_act_class"),
    [({"transparency": ["art50.1"]}, "limited_risk"), (MINIMAL, "minimal_risk")],
)
def test_lower_classes_need_none_until_the_system_becomes_high_risk(
    client: Any, team: dict[str, dict[str, str]], make_system: Any, answers: dict[str, Any], ai_act_class: str
) -> None:
    system = make_system()
    assert classify(client, team["admin"], system, answers)["ai_act_class"] == ai_act_class
    assert client.get(f"/api/v1/systems/{system}/risk-assessment", headers=team["admin"]).status_code == 404
    assert submit(client, team["bob"], system, "v1", "pilot")["state"] == "submitted"

    classify(client, team["admin"], system, ANNEX3_EMPLOYMENT, assess=False)  # now high-risk
    r = client.post(f"/api/v1/systems/{system}/approvals", json=BODY | {"version": "v2"}, headers=team["bob"])

    assert r.status_code == 409, r.text
    assert r.json()["code"] == "RISK_ASSESSMENT_MISSING"
    listed = client.get("/api/v1/approvals", params={"site": "STR"}, headers=team["admin"]).json()
    assert [a["version"] for a in listed["items"]] == ["v1"]
