"""The whole life of a release: a high-risk machinery AI in an OT zone with an SL gap and personal data.

Submit, every sign-off, a rejection, the resubmission, approval, release for that digest only, expiry,
reclassification and revocation, with the release-permission answer checked after each step.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.db import set_clock_offset, utcnow
from tests.approvals.helpers import (
    ANNEX1_MACHINERY,
    ANNEX3_EMPLOYMENT,
    COUNTERMEASURES,
    DIGEST_V1,
    DIGEST_V2,
    MINIMAL,
    audit_actions,
    classify,
    codes,
    release,
    sign,
    submit,
)

OT_FIELDS = {
    "zone": "STR-CTL",  # Purdue 2, SL-T 3 in every FR
    "sl_achieved": {"FR1": 3, "FR2": 3, "FR3": 3, "FR4": 2, "FR5": 3, "FR6": 3, "FR7": 3},
    "personal_data": True,
}
ALL_ROLES = ["business_owner", "compliance_officer", "risk_officer", "dpo", "ot_security", "safety_engineer"]


def test_release_walkthrough(client: Any, team: dict[str, dict[str, str]], make_system: Any) -> None:
    ci, bob, admin = team["ci"], team["bob"], team["admin"]
    system = make_system(**OT_FIELDS)

    # Unclassified: the gate says so, and no request can even be submitted.
    answer = release(client, ci, system, "v1", "pilot")
    assert answer["allowed"] is False and codes(answer) == ["NOT_CLASSIFIED", "NO_APPROVAL"]
    refused = submit(client, bob, system, "v1", "pilot", expect=422)
    assert refused["code"] == "NOT_CLASSIFIED"

    classify(client, admin, system, ANNEX1_MACHINERY)  # high-risk through the Annex I product route
    assert codes(release(client, ci, system, "v1", "pilot")) == ["NO_APPROVAL"]
    assert codes(release(client, ci, system, "v9", "pilot")) == ["UNKNOWN_VERSION"]

    # Production for a high-risk system needs an approved pilot of the same version first.
    refused = submit(client, bob, system, "v1", "production", expect=422)
    assert refused["code"] == "PREREQUISITE_NOT_MET"

    first = submit(client, bob, system, "v1", "pilot")
    assert first["state"] == "submitted" and first["valid_until"] is None
    assert first["required_signoffs"] == ALL_ROLES
    assert first["required_because"]["ot_security"] == ["ot_zone", "sl_gap"]
    assert first["sl_gap"] == ["FR4"] and first["artifact_digest"] == DIGEST_V1
    answer = release(client, ci, system, "v1", "pilot")
    assert codes(answer) == ["APPROVAL_PENDING"] and answer["approval_id"] == first["id"]
    submit(client, bob, system, "v1", "pilot", expect=409)  # one open request per system+version+env

    # Sign-offs on the first request, then a rejection by risk.
    body = sign(client, team["berta"], first["id"], "business_owner")
    assert body["pending_signoffs"] == ALL_ROLES[1:]
    sign(client, team["clara"], first["id"], "compliance_officer")
    assert (
        "awaits the sign-off of risk_officer, dpo, ot_security, safety_engineer"
        in (release(client, ci, system, "v1", "pilot")["reasons"][0]["message"])
    )
    body = sign(
        client, team["rita"], first["id"], "risk_officer", "reject", comment="FMEA for the cell missing"
    )
    assert body["state"] == "rejected"
    answer = release(client, ci, system, "v1", "pilot")
    assert codes(answer) == ["APPROVAL_REJECTED"] and "FMEA" in answer["reasons"][0]["message"]
    sign(client, team["dora"], first["id"], "dpo", expect=409)  # a rejected request takes no more sign-offs

    # Resubmission: every role signs, the last sign-off approves.
    second = submit(client, bob, system, "v1", "pilot")
    assert second["supersedes"] == first["id"] and second["id"] != first["id"]
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("berta", "business_owner", {}),
        ("clara", "compliance_officer", {"conditions": ["recall >= 0.97", "false_reject_rate <= 0.02"]}),
        ("rita", "risk_officer", {}),
        ("dora", "dpo", {"comment": "DPIA DP-2026-14 done"}),
        ("otto", "ot_security", {"comment": COUNTERMEASURES}),
        ("sam", "safety_engineer", {}),
    ]
    for i, (user, role, extra) in enumerate(steps):
        assert codes(release(client, ci, system, "v1", "pilot")) == ["APPROVAL_PENDING"]
        body = sign(client, team[user], second["id"], role, **extra)
        assert body["pending_signoffs"] == [r for r in ALL_ROLES if r not in {s[1] for s in steps[: i + 1]}]
        assert body["state"] == ("approved" if i == len(steps) - 1 else "submitted")
    assert [s["hash_valid"] for s in body["signoffs"]] == [True] * 6
    assert [c["expression"] for c in body["conditions"]] == ["recall >= 0.97", "false_reject_rate <= 0.02"]
    approved_at = utcnow()
    valid_until = body["valid_until"]
    assert (
        timedelta(days=180) < _parse(valid_until) - approved_at < timedelta(days=185)
    )  # 6 months: high-risk

    # Allowed for that version's digest only, in that environment only.
    answer = release(client, ci, system, "v1", "pilot")
    assert answer["allowed"] is True and answer["approval_id"] == second["id"]
    assert answer["valid_until"] == valid_until
    assert codes(answer, "warning") == ["SL_GAP_ACCEPTED"]
    assert release(client, ci, system, "v1", "pilot", artifact_digest=DIGEST_V1)["allowed"] is True
    wrong = release(client, ci, system, "v1", "pilot", artifact_digest=DIGEST_V2)
    assert codes(wrong) == ["DIGEST_MISMATCH"]  # the version exists; its recorded artifact is another
    assert DIGEST_V1 in wrong["reasons"][0]["message"] and DIGEST_V2 in wrong["reasons"][0]["message"]
    assert codes(release(client, ci, system, "v2", "pilot")) == ["NO_APPROVAL"]
    assert codes(release(client, ci, system, "v1", "production")) == ["NO_APPROVAL"]

    # Production now may be requested (the pilot is approved) and is approved in turn.
    prod = submit(client, bob, system, "v1", "production")
    for user, role, extra in steps:
        sign(client, team[user], prod["id"], role, **{k: v for k, v in extra.items() if k == "comment"})
    assert release(client, ci, system, "v1", "production")["allowed"] is True

    # Expiry: six months and a day later both approvals have lapsed and a review is due.
    set_clock_offset(timedelta(days=185))
    answer = release(client, ci, system, "v1", "pilot")
    assert codes(answer) == ["APPROVAL_EXPIRED"] and "review is due" in answer["reasons"][0]["message"]
    r = client.get(f"/api/v1/approvals/{second['id']}", headers=ci | {})
    assert r.status_code == 403  # mlops may ask the gate but not read approvals
    r = client.get(f"/api/v1/approvals/{second['id']}", headers=team["audrey"])
    assert r.json()["state"] == "expired" and r.json()["review_due"] is True
    set_clock_offset(None)
    assert release(client, ci, system, "v1", "pilot")["allowed"] is True  # computed, not cached

    # Reclassification within the same class keeps the approval; into another class voids it.
    classify(client, admin, system, ANNEX3_EMPLOYMENT)
    assert release(client, ci, system, "v1", "pilot")["allowed"] is True
    classify(client, admin, system, MINIMAL)
    for env in ("pilot", "production"):
        answer = release(client, ci, system, "v1", env)
        assert codes(answer) == ["RECLASSIFIED_SINCE_APPROVAL"]
    classify(client, admin, system, ANNEX1_MACHINERY)  # back again: still void, a new approval is needed
    assert codes(release(client, ci, system, "v1", "pilot")) == ["RECLASSIFIED_SINCE_APPROVAL"]
    r = client.get(f"/api/v1/approvals/{second['id']}", headers=team["audrey"])
    assert r.json()["reclassified_since_approval"] is True

    # Revocation needs a reason and the revoke permission.
    r = client.post(f"/api/v1/approvals/{prod['id']}/revoke", json={"reason": "  "}, headers=team["rita"])
    assert r.status_code == 422
    r = client.post(f"/api/v1/approvals/{prod['id']}/revoke", json={"reason": "x"}, headers=bob)
    assert r.status_code == 403
    r = client.post(
        f"/api/v1/approvals/{prod['id']}/revoke",
        json={"reason": "camera model changed"},
        headers=team["rita"],
    )
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert r.json()["close_reason"] == "camera model changed"
    answer = release(client, ci, system, "v1", "production")
    assert codes(answer) == ["APPROVAL_REVOKED"] and "camera model changed" in answer["reasons"][0]["message"]

    # Every transition is in the audit trail.
    assert audit_actions(client, admin, first["id"]) == [
        "approval.submit",
        "approval.signoff",
        "approval.signoff",
        "approval.signoff",
        "approval.reject",
    ]
    assert audit_actions(client, admin, prod["id"])[-1] == "approval.revoke"
    assert audit_actions(client, admin, second["id"]).count("approval.approve") == 1


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)
