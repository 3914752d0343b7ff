"""A lived-in portfolio on top of the demo data: classifications, risk assessments and approvals in several
states, so the dashboard and system pages show what they show in daily use (browser tests, screenshots).

The demo plants, the classifications and one approved pilot are recorded about a year ago (the service clock
is moved back), so that approval now comes due for review within 30 days; the open requests are recent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from app import demo
from app.db import session_scope, set_clock_offset
from app.identity import service as identity

RECORDED_DAYS_AGO = 350  # an approval of 12 months' validity then expires in about two weeks

# demo system name -> classification answers (recorded by the compliance officer)
ANSWERS: dict[str, dict[str, Any]] = {
    "Weld seam visual inspection": {},
    "Paint defect detection": {},
    "Robot cell safety zone monitoring": {
        "annex1": {
            "legislation": "annex1.b.21",
            "safety_component": True,
            "third_party_conformity_assessment": True,
        }
    },
    "Press predictive maintenance": {},
    "Energy optimisation of paint shop HVAC": {},
    "Maintenance assistant chatbot": {"transparency": ["art50.1"]},
    "Worker shift scheduler": {"annex3_uses": ["annex3.4.b"], "profiling": True},
    "CV screening for apprentices": {"annex3_uses": ["annex3.4.a"]},
    "Solder joint AOI classifier": {},
    "End-of-line test anomaly detection": {},
    "Production scheduling optimiser": {},
    "Operator fatigue camera": {"prohibited_practices": ["art5.1.f"]},
    "CNC tool wear monitoring": {},
    "Packaging label verification": {},
    "Demand forecasting": {},
}
# demo system name -> (impact, likelihood) of its NIST AI RMF risk assessment
RISKS: dict[str, tuple[int, int]] = {
    "Robot cell safety zone monitoring": (5, 3),
    "Worker shift scheduler": (4, 3),
    "CV screening for apprentices": (4, 4),
    "Weld seam visual inspection": (3, 2),
    "Press predictive maintenance": (2, 2),
    "Maintenance assistant chatbot": (2, 3),
    "CNC tool wear monitoring": (2, 1),
    "Demand forecasting": (1, 2),
}


def tokens(*usernames: str) -> dict[str, dict[str, str]]:
    """Bearer headers for existing users."""
    out = {}
    with session_scope() as session:
        for username in usernames:
            token = identity.issue_token(session, username, name="seed", expires_days=1, actor="seed").token
            out[username] = {"Authorization": f"Bearer {token}"}
    return out


def seed_portfolio(client: TestClient) -> dict[str, str]:
    """Load the demo, then classify, assess and request approvals through the API; returns name -> id."""
    set_clock_offset(timedelta(days=-RECORDED_DAYS_AGO))
    try:
        with session_scope() as session:
            assert demo.load_demo(session)
        ids = _classify_and_approve(client)
    finally:
        set_clock_offset(None)
    h = tokens("berta.owner", "leo.owner")
    _request(client, ids["Press predictive maintenance"], "1.2.0", "production", h["berta.owner"])
    _request(client, ids["End-of-line test anomaly detection"], "1.2.0", "pilot", h["leo.owner"])
    return ids


def _classify_and_approve(client: TestClient) -> dict[str, str]:
    h = tokens("clara.compliance", "rita.risk", "bob.owner", "berta.owner", "otto.ot")
    listed = client.get("/api/v1/systems", params={"limit": 500}, headers=h["clara.compliance"]).json()[
        "items"
    ]
    ids = {s["name"]: s["id"] for s in listed}
    for name, answers in ANSWERS.items():
        r = client.post(
            f"/api/v1/systems/{ids[name]}/classification",
            json={"answers": answers},
            headers=h["clara.compliance"],
        )
        assert r.status_code == 201, r.text
    for name, (impact, likelihood) in RISKS.items():
        r = client.post(
            f"/api/v1/systems/{ids[name]}/risk-assessment",
            json={
                "impact": impact,
                "likelihood": likelihood,
                "risks": [
                    {
                        "title": "Wrong output reaches the line unnoticed",
                        "nist_refs": ["MEASURE 2.5"],
                        "mitigation": "Operator check of every reject",
                    }
                ],
            },
            headers=h["rita.risk"],
        )
        assert r.status_code == 201, r.text
    # an approved pilot, and requests still waiting for their signers
    weld = ids["Weld seam visual inspection"]
    approval = _request(client, weld, "1.2.0", "pilot", h["bob.owner"])
    for role, who in (
        ("business_owner", "berta.owner"),
        ("compliance_officer", "clara.compliance"),
        ("ot_security", "otto.ot"),
    ):
        r = client.post(
            f"/api/v1/approvals/{approval}/signoffs",
            json={"role": role, "decision": "approve", "comment": "Checked"},
            headers=h[who],
        )
        assert r.status_code in (200, 201), r.text
    return ids


def _request(
    client: TestClient, system_id: str, version: str, environment: str, headers: dict[str, str]
) -> str:
    r = client.post(
        f"/api/v1/systems/{system_id}/approvals",
        json={"version": version, "environment": environment, "justification": "Validated on line data"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]
