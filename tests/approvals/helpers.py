"""Helpers for the approval tests: the release gate, sign-offs and audit reads through the API."""

from __future__ import annotations

from typing import Any

DIGEST_V1 = "sha256:" + "a1" * 32
DIGEST_V2 = "sha256:" + "b2" * 32

ANNEX1_MACHINERY = {
    "annex1": {
        "legislation": "annex1.b.21",
        "safety_component": True,
        "third_party_conformity_assessment": True,
    }
}
ANNEX3_EMPLOYMENT = {"annex3_uses": ["annex3.4.a"]}
PROHIBITED = {"prohibited_practices": ["art5.1.f"]}
MINIMAL: dict[str, Any] = {}

COUNTERMEASURES = "FR4: unidirectional gateway to the cell, allow-listed OPC UA only; reviewed monthly"


def release(
    client: Any,
    headers: dict[str, str],
    system: str,
    version: str,
    environment: str = "production",
    **params: str,
) -> dict[str, Any]:
    """The release-permission answer (asserting 200 and the contract's shape)."""
    r = client.get(
        "/api/v1/release-permission",
        params={"system": system, "version": version, "environment": environment, **params},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "allowed",
        "system",
        "version",
        "environment",
        "approval_id",
        "valid_until",
        "reasons",
        "checked_at",
    }
    assert body["system"] == system and body["version"] == version and body["environment"] == environment
    if not body["allowed"]:
        assert any(r["severity"] == "error" for r in body["reasons"]), body
    else:
        assert all(r["severity"] == "warning" for r in body["reasons"]), body
    return body


def codes(body: dict[str, Any], severity: str = "error") -> list[str]:
    """The reason codes of one severity, in order."""
    return [r["code"] for r in body["reasons"] if r["severity"] == severity]


def sign(
    client: Any,
    headers: dict[str, str],
    approval_id: str,
    role: str,
    decision: str = "approve",
    comment: str | None = None,
    conditions: list[str] | None = None,
    expect: int = 201,
) -> dict[str, Any]:
    body: dict[str, Any] = {"role": role, "decision": decision}
    if comment is not None:
        body["comment"] = comment
    if conditions is not None:
        body["conditions"] = conditions
    r = client.post(f"/api/v1/approvals/{approval_id}/signoffs", json=body, headers=headers)
    assert r.status_code == expect, r.text
    return r.json()


def submit(
    client: Any, headers: dict[str, str], system: str, version: str, environment: str, expect: int = 201
) -> dict[str, Any]:
    r = client.post(
        f"/api/v1/systems/{system}/approvals",
        json={"version": version, "environment": environment, "justification": f"roll out {version}"},
        headers=headers,
    )
    assert r.status_code == expect, r.text
    return r.json()


def audit_actions(client: Any, headers: dict[str, str], entity_id: str) -> list[str]:
    """The ``approval.*`` actions recorded for one request, in order."""
    r = client.get(
        "/api/v1/audit-events",
        params={"entity_type": "approval", "entity_id": entity_id, "limit": 500},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    events = sorted(r.json()["items"], key=lambda e: e["seq"])
    return [e["action"] for e in events if e["action"].startswith("approval.")]


RISK_ASSESSMENT = {
    "impact": 3,
    "likelihood": 2,
    "risks": [
        {
            "title": "Missed defects after a process change",
            "nist_refs": ["MEASURE 2.11"],
            "mitigation": "re-validation after every line change",
        }
    ],
}


def assess_risk(client: Any, headers: dict[str, str], system_id: str) -> dict[str, Any]:
    """Record a NIST AI RMF risk assessment through the API (a high-risk request needs one first)."""
    r = client.post(f"/api/v1/systems/{system_id}/risk-assessment", json=RISK_ASSESSMENT, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def classify(
    client: Any, headers: dict[str, str], system_id: str, answers: dict[str, Any], *, assess: bool = True
) -> dict[str, Any]:
    """Record a classification through the API; a system found high-risk also gets its risk assessment
    (unless ``assess=False``), as a real team would record it before asking for approval."""
    r = client.post(f"/api/v1/systems/{system_id}/classification", json={"answers": answers}, headers=headers)
    assert r.status_code == 201, r.text
    result = r.json()
    if assess and result["ai_act_class"] == "high_risk":
        current = client.get(f"/api/v1/systems/{system_id}/risk-assessment", headers=headers)
        if current.status_code == 404:
            assess_risk(client, headers, system_id)
    return result
