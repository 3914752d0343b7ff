"""Sign-offs: who may sign what (Casbin), separation of duties, comments, conditions, withdraw and revoke."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.approvals.models import ApprovalRequest
from app.db import session_scope
from tests.approvals.helpers import (
    ANNEX3_EMPLOYMENT,
    COUNTERMEASURES,
    DIGEST_V2,
    MINIMAL,
    PROHIBITED,
    audit_actions,
    release,
    sign,
    submit,
)
from tests.factories import long_lived_user

GAP_FIELDS = {"zone": "STR-CTL", "sl_achieved": {f"FR{i}": 3 for i in range(1, 7)} | {"FR7": 1}}


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


def test_required_signoffs_follow_the_rule_table(client: Any, team: dict, make_system: Any) -> None:
    minimal = make_system(MINIMAL)
    assert submit(client, team["bob"], minimal, "v1", "production")["required_signoffs"] == [
        "business_owner",
        "compliance_officer",
    ]
    annex3 = make_system(ANNEX3_EMPLOYMENT, personal_data=True)
    body = submit(client, team["bob"], annex3, "v1", "pilot")
    assert body["required_signoffs"] == ["business_owner", "compliance_officer", "risk_officer", "dpo"]
    assert body["validity_months"] == 6
    enterprise = make_system(MINIMAL, zone="STR-ENT", sl_achieved={f"FR{i}": 2 for i in range(1, 8)})
    assert "ot_security" not in submit(client, team["bob"], enterprise, "v1", "pilot")["required_signoffs"]
    # Purdue 4, but an assessed SL-A 0 < SL-T 2 (an unassessed FR would be no gap: tests/zones)
    gap_outside_ot = make_system(MINIMAL, zone="STR-ENT", sl_achieved={f"FR{i}": 0 for i in range(1, 8)})
    body = submit(client, team["bob"], gap_outside_ot, "v1", "pilot")
    assert body["required_because"]["ot_security"] == ["sl_gap"] and body["validity_months"] == 12


def test_prohibited_and_bad_submissions_are_refused(client: Any, team: dict, make_system: Any) -> None:
    bob = team["bob"]
    banned = make_system(PROHIBITED)
    body = _problem(
        client.post(
            f"/api/v1/systems/{banned}/approvals",
            json={"version": "v1", "environment": "pilot", "justification": "x"},
            headers=bob,
        ),
        422,
    )
    assert body["code"] == "PROHIBITED" and "Art. 5" in body["detail"]
    assert release(client, team["ci"], banned, "v1", "pilot")["reasons"][0]["code"] == "PROHIBITED"

    system = make_system(MINIMAL)
    url = f"/api/v1/systems/{system}/approvals"
    body = _problem(
        client.post(url, json={"version": "v9", "environment": "pilot", "justification": "x"}, headers=bob),
        422,
    )
    assert body["errors"][0]["loc"] == ["body", "version"]
    body = _problem(
        client.post(
            url,
            json={
                "version": "v1",
                "environment": "pilot",
                "justification": "x",
                "artifact_digest": DIGEST_V2,
            },
            headers=bob,
        ),
        422,
    )
    assert body["errors"][0]["loc"] == ["body", "artifact_digest"]
    _problem(
        client.post(url, json={"version": "v1", "environment": "staging", "justification": "x"}, headers=bob),
        422,
    )
    _problem(
        client.post(url, json={"version": "v1", "environment": "pilot", "justification": ""}, headers=bob),
        422,
    )
    _problem(
        client.post(
            url, json={"version": "v1", "environment": "pilot", "justification": "x"}, headers=team["berta"]
        ),
        403,
    )  # not her system: request_own
    _problem(
        client.post(
            url, json={"version": "v1", "environment": "pilot", "justification": "x"}, headers=team["leo"]
        ),
        404,
    )  # no role in STR
    _problem(
        client.post(
            url, json={"version": "v1", "environment": "pilot", "justification": "x"}, headers=team["rita"]
        ),
        403,
    )  # risk officers do not request
    with session_scope() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(ApprovalRequest)).scalar_one() == 0


def test_separation_of_duties(client: Any, team: dict, make_system: Any) -> None:
    system = make_system(ANNEX3_EMPLOYMENT, personal_data=True)
    a = submit(client, team["bob"], system, "v1", "pilot")["id"]
    # The requester never signs, not even for the role he holds.
    body = sign(client, team["bob"], a, "business_owner", expect=403)
    assert "separation of duties" in body["detail"]
    # Casbin: a business owner may not sign for risk; someone from another site sees nothing.
    sign(client, team["berta"], a, "risk_officer", expect=403)
    sign(client, team["leo"], a, "business_owner", expect=404)
    # One person signs one role at most, even when holding two.
    double = long_lived_user("max", ("risk_officer", "STR"), ("dpo", "STR"))
    sign(client, double, a, "risk_officer")
    body = sign(client, double, a, "dpo", expect=403)
    assert "one role at most" in body["detail"]
    # A role is signed once; a role the request does not need cannot be signed.
    sign(client, team["rita"], a, "risk_officer", expect=409)
    body = sign(client, team["sam"], a, "safety_engineer", expect=422)
    assert body["errors"][0]["loc"] == ["body", "role"]
    # Denials are audited.
    r = client.get("/api/v1/audit-events", params={"entity_id": a, "limit": 500}, headers=team["admin"])
    denied = [e for e in r.json()["items"] if e["action"] == "access.denied"]
    assert {e["actor"] for e in denied} >= {"bob", "berta", "max"}
    r = client.get(f"/api/v1/approvals/{a}", headers=team["audrey"])
    assert [s["signer"] for s in r.json()["signoffs"]] == ["max"]


def test_comments_and_conditions(client: Any, team: dict, make_system: Any) -> None:
    system = make_system(MINIMAL, **GAP_FIELDS)
    a = submit(client, team["bob"], system, "v1", "pilot")
    assert a["sl_gap"] == ["FR7"] and "ot_security" in a["required_signoffs"]
    body = sign(client, team["otto"], a["id"], "ot_security", expect=422)
    assert body["errors"][0]["loc"] == ["body", "comment"] and "countermeasures" in body["detail"]
    sign(client, team["otto"], a["id"], "ot_security", comment="   ", expect=422)
    for bad in ("recall >=", "recall ~ 0.9", ">= 0.9", "recall >= nan", "recall >= 1e999"):
        body = sign(client, team["clara"], a["id"], "compliance_officer", conditions=[bad], expect=422)
        assert body["errors"][0]["loc"][:2] == ["body", "conditions"]
    body = sign(client, team["clara"], a["id"], "compliance_officer", "reject", expect=422)
    assert body["errors"][0]["loc"] == ["body", "comment"]  # a rejection says why
    body = sign(
        client,
        team["clara"],
        a["id"],
        "compliance_officer",
        "reject",
        comment="no",
        conditions=["x > 1"],
        expect=422,
    )
    assert body["errors"][0]["loc"] == ["body", "conditions"]
    sign(client, team["otto"], a["id"], "ot_security", comment=COUNTERMEASURES)
    sign(
        client, team["clara"], a["id"], "compliance_officer", conditions=["recall >= 0.99", "latency_ms < 50"]
    )
    body = sign(client, team["berta"], a["id"], "business_owner")
    assert body["state"] == "approved"
    answer = release(client, team["ci"], system, "v1", "pilot")
    assert answer["allowed"] is False
    messages = [r["message"] for r in answer["reasons"]]
    assert [r["code"] for r in answer["reasons"]] == ["CONDITION_NOT_MET", "CONDITION_NOT_MET"]
    assert "recall >= 0.99" in messages[0] and "recall = 0.98" in messages[0]
    assert "latency_ms" in messages[1] and "not recorded" in messages[1]


def test_withdraw_is_the_requesters(client: Any, team: dict, make_system: Any) -> None:
    system = make_system(MINIMAL)
    a = submit(client, team["bob"], system, "v1", "production")["id"]
    url = f"/api/v1/approvals/{a}/withdraw"
    _problem(client.post(url, headers=team["berta"]), 403)  # another owner in the site
    _problem(client.post(url, headers=team["clara"]), 403)
    _problem(client.post(url, headers={"If-Match": '"99"'} | team["bob"]), 409)  # stale revision
    r = client.post(url, json={"reason": "wrong version"}, headers=team["bob"])
    assert (
        r.status_code == 200
        and r.json()["state"] == "withdrawn"
        and r.json()["close_reason"] == "wrong version"
    )
    _problem(client.post(url, headers=team["bob"]), 409)
    sign(client, team["clara"], a, "compliance_officer", expect=409)
    answer = release(client, team["ci"], system, "v1", "production")
    assert answer["reasons"][0]["code"] == "NO_APPROVAL" and "withdrawn" in answer["reasons"][0]["message"]
    again = submit(client, team["bob"], system, "v1", "production")
    assert again["supersedes"] == a
    assert audit_actions(client, team["admin"], a) == ["approval.submit", "approval.withdraw"]


def test_revoke_only_an_approved_request(client: Any, team: dict, make_system: Any) -> None:
    system = make_system(MINIMAL)
    a = submit(client, team["bob"], system, "v1", "production")["id"]
    url = f"/api/v1/approvals/{a}/revoke"
    _problem(client.post(url, json={"reason": "x"}, headers=team["clara"]), 409)  # still submitted
    _problem(client.post(url, json={}, headers=team["clara"]), 422)
    sign(client, team["clara"], a, "compliance_officer")
    sign(client, team["berta"], a, "business_owner")
    _problem(client.post(url, json={"reason": "x"}, headers=team["leo"]), 404)
    _problem(client.post(url, json={"reason": "x"}, headers=team["audrey"]), 403)
    r = client.post(url, json={"reason": "supplier recall"}, headers=team["clara"])
    assert r.status_code == 200 and r.json()["closed_by"] == "clara"
    _problem(client.post(url, json={"reason": "again"}, headers=team["clara"]), 409)


def test_hashes_detect_a_changed_request(client: Any, team: dict, make_system: Any) -> None:
    system = make_system(MINIMAL)
    a = submit(client, team["bob"], system, "v1", "production")["id"]
    sign(client, team["clara"], a, "compliance_officer", conditions=["recall >= 0.9"])
    sign(client, team["berta"], a, "business_owner")
    r = client.get(f"/api/v1/approvals/{a}/verify", headers=team["audrey"])
    assert r.json() == {
        "id": a,
        "valid": True,
        "content_valid": True,
        "conditions_valid": True,
        "validity_valid": True,
        "signoffs": [
            {"role": "compliance_officer", "signer": "clara", "hash_valid": True},
            {"role": "business_owner", "signer": "berta", "hash_valid": True},
        ],
    }
    with session_scope() as session:  # someone edits the database behind the service's back
        session.execute(
            sa.update(ApprovalRequest).where(ApprovalRequest.id == a).values(justification="other")
        )
    body = client.get(f"/api/v1/approvals/{a}/verify", headers=team["audrey"]).json()
    assert body["valid"] is False and body["content_valid"] is False
    assert [s["hash_valid"] for s in body["signoffs"]] == [False, False]
    assert [
        s["hash_valid"]
        for s in client.get(f"/api/v1/approvals/{a}", headers=team["audrey"]).json()["signoffs"]
    ] == [
        False,
        False,
    ]
    with session_scope() as session:
        session.execute(
            sa.update(ApprovalRequest)
            .where(ApprovalRequest.id == a)
            .values(justification="roll out v1", conditions=[])
        )
    body = client.get(f"/api/v1/approvals/{a}/verify", headers=team["audrey"]).json()
    assert body["content_valid"] is True and body["conditions_valid"] is False and body["valid"] is False


def test_approvals_block_system_deletion(client: Any, team: dict, make_system: Any) -> None:
    system = make_system(MINIMAL)
    submit(client, team["bob"], system, "v1", "pilot")
    r = client.delete(f"/api/v1/systems/{system}", headers=team["admin"])
    body = _problem(r, 409)
    assert body["history"]["approvals"] == 1


def test_reclassified_while_pending_cannot_be_signed(client: Any, team: dict, make_system: Any) -> None:
    from tests.approvals.helpers import classify

    system = make_system(MINIMAL)
    a = submit(client, team["bob"], system, "v1", "production")["id"]
    sign(client, team["clara"], a, "compliance_officer")
    classify(client, team["admin"], system, ANNEX3_EMPLOYMENT)
    body = sign(client, team["berta"], a, "business_owner", expect=409)
    assert body["code"] == "RECLASSIFIED_SINCE_SUBMISSION"
    assert client.post(f"/api/v1/approvals/{a}/withdraw", headers=team["bob"]).status_code == 200
    assert "risk_officer" in submit(client, team["bob"], system, "v1", "pilot")["required_signoffs"]
