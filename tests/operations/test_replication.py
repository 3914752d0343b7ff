"""Replication: a linked copy at a new placement reuses the evidence and asks again only for the sign-offs
the placement changes (policies/replication.yaml)."""

from __future__ import annotations

import pytest

from app.replication.service import PolicyError, load_policy
from tests.factories import HIGH_RISK, digest
from tests.systems.helpers import assert_problem, audit_events

FULL_SL = {f"FR{i}": 3 for i in range(1, 8)}
DOCS = {
    "intended_use": "Flag weld seams for manual rework",
    "out_of_scope_uses": "Grading welders",
    "human_oversight": "An inspector confirms every rejection",
    "limitations": "Galvanised steel",
    "training_data": "40,000 labelled images",
    "vendor": "Cognex",
    "license": "proprietary",
    "personal_data": False,
    "monitoring_interval_hours": 12,
}


@pytest.fixture
def origin(ops):  # type: ignore[no-untyped-def]
    """A high-risk system in the OT zone STR-CTL, with two versions, 1.0.0 approved for production."""
    system = ops.ready(HIGH_RISK, zone="STR-CTL", sl_achieved=FULL_SL, lifecycle_stage="production", **DOCS)
    ops.version(system["id"], "1.1.0", n=2, notes="retrained")
    approval = ops.approve(system["id"])
    assert approval["required_signoffs"] == [
        "business_owner",
        "compliance_officer",
        "risk_officer",
        "ot_security",
    ]
    return {"system": system, "approval": approval}


def replicate(ops, system_id, *, as_="carol", **body):  # type: ignore[no-untyped-def]
    return ops.client.post(f"/api/v1/systems/{system_id}/replicate", json=body, headers=ops.h[as_])


def roles(entries: list[dict]) -> list[str]:
    return [e["role"] for e in entries]


def test_replica_to_another_site_reuses_evidence_and_asks_placement_signoffs(ops, origin):
    source = origin["system"]
    body = ops.ok(
        replicate(ops, source["id"], site="LYO", line="SMT1", zone="LYO-CTL", business_owner="lou"), 201
    )
    assert body["id"] != source["id"] and body["replicated_from"] == source["id"]
    assert (body["site"], body["line"], body["zone"], body["business_owner"]) == (
        "LYO",
        "SMT1",
        "LYO-CTL",
        "lou",
    )
    assert (body["name"], body["purpose"]) == (source["name"], source["purpose"])
    for key, value in DOCS.items():
        assert body[key] == value, key
    assert body["ai_act_class"] == "high_risk" and body["risk_tier"] == source["risk_tier"]
    assert body["lifecycle_stage"] == "idea"  # it still has to be approved where it now runs
    assert body["sl_achieved"] is None  # security is judged per zone, by the new zone's OT security

    reused = body["replication"]["reused"]
    assert reused["classification"]["same_result"] is True
    assert reused["classification"]["ai_act_class"] == "high_risk"
    assert reused["risk_assessment"]["risk_tier"] == source["risk_tier"]
    assert reused["versions"] == [
        {"version": "1.0.0", "artifact_digest": digest(1)},
        {"version": "1.1.0", "artifact_digest": digest(2)},
    ]
    assert set(reused["documentation_fields"]) >= {"intended_use", "human_oversight", "training_data"}

    plan = body["replication"]["signoffs"]
    assert plan["origin_approval_id"] == origin["approval"]["id"]
    assert (plan["version"], plan["environment"]) == ("1.0.0", "production")
    assert [(e["role"], e["signer"]) for e in plan["reused"]] == [
        ("compliance_officer", "carol"),
        ("risk_officer", "rita"),
    ]
    assert roles(plan["asked_again"]) == ["business_owner", "ot_security"]
    assert "site" in plan["asked_again"][0]["because"] and "zone" in plan["asked_again"][1]["because"]

    # the evidence is really recorded on the replica
    versions = ops.ok(ops.client.get(f"/api/v1/systems/{body['id']}/versions", headers=ops.carol))
    assert sorted(v["version"] for v in versions["items"]) == ["1.0.0", "1.1.0"]
    classification = ops.ok(ops.client.get(f"/api/v1/systems/{body['id']}/classification", headers=ops.carol))
    assert classification["answers"] == {"annex3_uses": ["annex3.4.a"]}
    assessment = ops.ok(ops.client.get(f"/api/v1/systems/{body['id']}/risk-assessment", headers=ops.carol))
    assert (assessment["impact"], assessment["likelihood"]) == (3, 2)
    # origin untouched, link visible on the replica, event on the trail
    assert (
        ops.ok(ops.client.get(f"/api/v1/systems/{source['id']}", headers=ops.carol))["replicated_from"]
        is None
    )
    events = audit_events(ops.client, ops.carol, entity_type="system", entity_id=body["id"])
    replicate_event = next(e for e in events if e["action"] == "system.replicate")
    assert replicate_event["after"]["replicated_from"] == source["id"]
    assert replicate_event["actor"] == "carol"


def test_replica_on_another_line_of_the_same_site_and_zone_reuses_every_signoff(ops, origin):
    body = ops.ok(
        replicate(ops, origin["system"]["id"], as_="bob", site="STR", line="ASM2", zone="STR-CTL"), 201
    )
    plan = body["replication"]["signoffs"]
    assert roles(plan["reused"]) == ["business_owner", "compliance_officer", "risk_officer", "ot_security"]
    assert plan["asked_again"] == []


def test_new_owner_or_new_zone_each_ask_their_own_signoff(ops, origin):
    source = origin["system"]["id"]
    owner = ops.ok(
        replicate(
            ops, source, site="STR", line="ASM2", zone="STR-CTL", business_owner="bea", name="Weld ASM2"
        ),
        201,
    )
    assert roles(owner["replication"]["signoffs"]["asked_again"]) == ["business_owner"]
    zone = ops.ok(replicate(ops, source, site="STR", line="ASM2", zone="LYO-CTL"), 422)
    assert zone["errors"][0]["loc"][-1] == "zone"
    # an IT zone (Purdue 4): no SL-A recorded there yet (unassessed, not SL 0), so OT security is asked
    it_zone = ops.ok(replicate(ops, source, site="STR", line="ASM2", zone="STR-ENT"), 201)
    assert it_zone["sl_gap"] == [] and it_zone["ot_system"] is False
    assert it_zone["sl_unassessed"] == [f"FR{i}" for i in range(1, 8)]
    assert roles(it_zone["replication"]["signoffs"]["asked_again"]) == ["ot_security"]
    # outside any zone the rules require no OT security sign-off at all
    no_zone = ops.ok(replicate(ops, source, site="STR", line="ASM2"), 201)
    plan = no_zone["replication"]["signoffs"]
    assert roles(plan["reused"]) == ["business_owner", "compliance_officer", "risk_officer"]
    assert plan["asked_again"] == []


def test_signoffs_the_origin_never_gave_are_asked(ops):
    system = ops.ready(HIGH_RISK)  # not approved anywhere
    body = ops.ok(
        replicate(ops, system["id"], site="LYO", line="SMT1", zone="LYO-CTL", business_owner="lou"), 201
    )
    plan = body["replication"]["signoffs"]
    assert plan["origin_approval_id"] is None and plan["reused"] == []
    assert roles(plan["asked_again"]) == [
        "business_owner",
        "compliance_officer",
        "risk_officer",
        "ot_security",
    ]
    assert "no approval" in plan["asked_again"][1]["because"]


def test_unclassified_origin_gives_an_unclassified_replica(ops):
    system = ops.system(name="Early idea")
    body = ops.ok(replicate(ops, system["id"], site="STR", line="ASM2"), 201)
    assert body["ai_act_class"] is None and "classification" not in body["replication"]["reused"]
    assert body["replication"]["reused"]["versions"] == []
    assert_problem(ops.client.get(f"/api/v1/systems/{body['id']}/classification", headers=ops.carol), 404)


def test_refusals(ops, origin, make_user):
    source = origin["system"]["id"]
    cases = [
        ({"site": "XXX", "line": "SMT1"}, 422, "site"),
        ({"site": "LYO", "line": "BODY1"}, 422, "line"),
        ({"site": "LYO", "line": "SMT1", "zone": "STR-CTL"}, 422, "zone"),
        ({"site": "LYO", "line": "SMT1", "business_owner": "nobody"}, 422, "business_owner"),
        ({"site": "STR", "line": "BODY1", "zone": "STR-CTL"}, 422, None),  # where it already is
        ({"line": "SMT1"}, 422, "site"),
        ({"site": "LYO", "colour": "red"}, 422, "colour"),
    ]
    for body, status, field in cases:
        assert_problem(replicate(ops, source, **body), status, field=field)
    # only the owner may replicate with replicate_own; lou holds no role in STR
    assert_problem(replicate(ops, source, as_="bea", site="LYO", line="SMT1"), 403)
    assert_problem(replicate(ops, source, as_="lou", site="LYO", line="SMT1"), 404)
    assert_problem(replicate(ops, source, as_="pip", site="LYO", line="SMT1"), 403)
    # an owner who may not create systems in the target site
    stan = make_user("stan", ("business_owner", "STR"))
    mine = ops.ok(
        ops.client.post(
            "/api/v1/systems",
            json={"name": "Stan's", "purpose": "x", "site": "STR", "business_owner": "stan"},
            headers=stan,
        ),
        201,
    )
    ops.h["stan"] = stan
    assert_problem(replicate(ops, mine["id"], as_="stan", site="LYO", line="SMT1"), 403)
    # nothing was created by any refusal
    listed = ops.ok(ops.client.get("/api/v1/systems?site=LYO", headers=ops.carol))
    assert listed["total"] == 0


def test_policy_file_mistakes_are_named(tmp_path):
    path = tmp_path / "replication.yaml"
    path.write_text(
        "version: 1\nasked_again:\n  - role: janitor\n    when_changed: [site]\n    because: x\n"
        "carry_over: {}\n"
    )
    with pytest.raises(PolicyError, match=r"asked_again\.0\.role"):
        load_policy(path)
    path.write_text("version: 1\nasked_again: []\ncarry_over: {documentation_fields: [site]}\n")
    with pytest.raises(PolicyError, match="cannot carry over"):
        load_policy(path)
    path.write_text(
        "version: 1\nasked_again:\n  - {role: ot_security, when_changed: [colour], because: x}\n"
        "carry_over: {}\n"
    )
    with pytest.raises(PolicyError, match="when_changed"):
        load_policy(path)


def test_replica_request_carries_over_unchanged_signoffs(ops, origin):
    """Issue 8: the replica's request for the origin's approved digest and environment reuses the sign-offs
    its placement does not change; only the new site's owner and the new zone's OT security are awaited."""
    source = origin["system"]["id"]
    pilot = ops.ok(
        ops.client.get(
            "/api/v1/approvals", params={"system_id": source, "environment": "pilot"}, headers=ops.carol
        )
    )["items"][0]
    assert pilot["state"] == "approved"
    replica = ops.ok(
        replicate(ops, source, site="LYO", line="SMT1", zone="LYO-CTL", business_owner="lou"), 201
    )
    ops.patch(replica["id"], as_="otto", sl_achieved=FULL_SL)  # the new zone's SL-A, judged there

    def submit(version: str) -> dict:
        body = {"version": version, "environment": "pilot", "justification": "same cell, new plant"}
        return ops.ok(
            ops.client.post(f"/api/v1/systems/{replica['id']}/approvals", json=body, headers=ops.lou), 201
        )

    request = submit("1.0.0")
    assert request["state"] == "submitted"
    carried = {s["role"]: s for s in request["signoffs"]}
    assert sorted(carried) == ["compliance_officer", "risk_officer"]
    for role, signer in (("compliance_officer", "carol"), ("risk_officer", "rita")):
        s = carried[role]
        assert s["signer"] == signer and s["decision"] == "approve" and s["hash_valid"] is True
        assert s["carried_over_from"] == pilot["id"]
        assert s["comment"].startswith(f"carried over from {pilot['id']}")
    assert request["pending_signoffs"] == ["business_owner", "ot_security"]
    events = audit_events(ops.client, ops.carol, entity_type="approval", entity_id=request["id"])
    assert sorted(e["after"]["role"] for e in events if e["action"] == "approval.signoff_carried_over") == [
        "compliance_officer",
        "risk_officer",
    ]

    def inbox(user: str) -> list[str]:
        body = ops.ok(ops.client.get("/api/v1/approvals", params={"inbox": "true"}, headers=ops.h[user]))
        return [a["id"] for a in body["items"]]

    assert request["id"] not in inbox("carol") and request["id"] not in inbox("rita")
    assert request["id"] in inbox("otto") and request["id"] in inbox("bea")
    # a carried role cannot be signed again
    r = ops.client.post(
        f"/api/v1/approvals/{request['id']}/signoffs",
        json={"role": "risk_officer", "decision": "approve", "comment": "again"},
        headers=ops.rita,
    )
    assert_problem(r, 409)
    assert ops.release(replica["id"], "1.0.0", "pilot")["allowed"] is False
    for role, user in (("business_owner", "bea"), ("ot_security", "otto")):
        body = ops.ok(
            ops.client.post(
                f"/api/v1/approvals/{request['id']}/signoffs",
                json={"role": role, "decision": "approve", "comment": "fine"},
                headers=ops.h[user],
            ),
            201,
        )
    assert body["state"] == "approved" and body["pending_signoffs"] == []
    assert {s["carried_over_from"] for s in body["signoffs"]} == {pilot["id"], None}
    verified = ops.ok(ops.client.get(f"/api/v1/approvals/{request['id']}/verify", headers=ops.carol))
    assert verified["valid"] is True
    permission = ops.release(replica["id"], "1.0.0", "pilot")
    assert permission["allowed"] is True and permission["approval_id"] == request["id"]
    # another version (another digest) reuses nothing: every role is asked
    other = submit("1.1.0")
    assert other["signoffs"] == [] and other["pending_signoffs"] == other["required_signoffs"]


def test_replica_in_the_same_placement_still_needs_its_business_owner(ops, origin):
    source = origin["system"]["id"]
    replica = ops.ok(replicate(ops, source, as_="bob", site="STR", line="ASM2", zone="STR-CTL"), 201)
    ops.patch(replica["id"], as_="otto", sl_achieved=FULL_SL)
    request = ops.request(replica["id"], "1.0.0", "pilot")
    assert sorted(s["role"] for s in request["signoffs"]) == [
        "compliance_officer",
        "ot_security",
        "risk_officer",
    ]
    assert request["pending_signoffs"] == ["business_owner"]
    assert request["state"] == "submitted"
