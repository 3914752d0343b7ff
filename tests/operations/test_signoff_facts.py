"""Facts that decide who must sign belong to the roles that own them, and changing one voids approvals.

``personal_data``, ``ai_act_role``, ``business_owner``, ``technical_owner``: compliance officers;
``zone``, ``sl_achieved``: OT security. An admin grant alone changes none of them; a business owner
cannot drop the DPO, OT-security or risk sign-off from the next request by editing them. Every refusal is
audited and changes nothing. A change after an approval: ``CHANGED_SINCE_APPROVAL`` at the gate.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Ops

SL = {f"FR{i}": 3 for i in range(1, 8)}

# field -> (a new value, the role whose member may set it)
FACTS: dict[str, tuple[Any, str]] = {
    "personal_data": (True, "carol"),
    "ai_act_role": ("provider", "carol"),
    "business_owner": ("bea", "carol"),
    "technical_owner": ("bea", "carol"),
    "zone": ("STR-ENT", "otto"),
    "sl_achieved": (SL, "otto"),
}


@pytest.fixture(autouse=True)
def root(ops: Ops, long_lived_user: Any) -> None:
    """An admin in every site and nothing else (the plant fixture's admin is a compliance officer too)."""
    ops.h["root"] = long_lived_user("root", ("admin", "*"))


def patch(ops: Ops, system_id: str, as_: str, **changes: Any) -> Any:
    current = ops.ok(ops.client.get(f"/api/v1/systems/{system_id}", headers=ops.carol))
    return ops.client.patch(
        f"/api/v1/systems/{system_id}",
        json={**changes, "revision": current["revision"]},
        headers=ops.h[as_],
    )


def codes(answer: dict[str, Any]) -> list[str]:
    return [r["code"] for r in answer["reasons"] if r["severity"] == "error"]


@pytest.mark.parametrize("field", list(FACTS))
@pytest.mark.parametrize("as_", ["bob", "root", "rita", "dora"])
def test_a_fact_changed_by_anyone_but_its_owning_role_is_403_changes_nothing_and_is_audited(
    ops: Ops, field: str, as_: str
) -> None:
    system = ops.system(zone="STR-CTL")
    value, _owner = FACTS[field]
    before = ops.ok(ops.client.get(f"/api/v1/systems/{system['id']}", headers=ops.carol))
    r = patch(ops, system["id"], as_, **{field: value})
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    after = ops.ok(ops.client.get(f"/api/v1/systems/{system['id']}", headers=ops.carol))
    assert after == before
    events = ops.ok(
        ops.client.get(
            "/api/v1/audit-events",
            params={"entity_type": f"system.{field}", "entity_id": system["id"]},
            headers=ops.admin,
        )
    )["items"]
    assert [(e["action"], e["actor"]) for e in events] == [("access.denied", as_)]


@pytest.mark.parametrize("field", list(FACTS))
def test_the_owning_role_changes_its_fact(ops: Ops, field: str) -> None:
    system = ops.system(zone="STR-CTL")
    value, owner = FACTS[field]
    r = patch(ops, system["id"], owner, **{field: value})
    assert r.status_code == 200, r.text
    assert r.json()[field] == value


def test_a_business_owner_still_edits_the_other_fields_of_their_own_system(ops: Ops) -> None:
    system = ops.system()
    r = patch(
        ops, system["id"], "bob", purpose="Detect weld seam and spatter defects", lifecycle_stage="pilot"
    )
    assert r.status_code == 200, r.text
    # sending a fact unchanged alongside is no change of it
    r = patch(ops, system["id"], "bob", name="Weld seam inspection v2", personal_data=False)
    assert r.status_code == 200, r.text
    # but one changed fact in the same PATCH refuses the whole PATCH
    r = patch(ops, system["id"], "bob", name="Renamed", personal_data=True)
    assert r.status_code == 403
    assert ops.ok(ops.client.get(f"/api/v1/systems/{system['id']}", headers=ops.carol))["name"] == (
        "Weld seam inspection v2"
    )


def test_an_owner_cannot_drop_the_dpo_from_the_next_request(ops: Ops) -> None:
    system = ops.ready(personal_data=True)
    first = ops.request(system["id"])
    assert "dpo" in first["required_signoffs"]
    ops.client.post(f"/api/v1/approvals/{first['id']}/withdraw", headers=ops.bob)
    assert patch(ops, system["id"], "bob", personal_data=False).status_code == 403
    assert "dpo" in ops.request(system["id"])["required_signoffs"]


@pytest.mark.parametrize("field", list(FACTS))
def test_a_fact_changed_after_approval_voids_it_at_the_gate(ops: Ops, field: str) -> None:
    system = ops.ready(zone="STR-CTL", sl_achieved={f"FR{i}": 3 for i in range(1, 8)})
    approval = ops.approve(system["id"])
    assert ops.release(system["id"])["allowed"] is True
    value, owner = FACTS[field]
    if field == "sl_achieved":
        value = {f"FR{i}": 4 for i in range(1, 8)}  # even a rise changes who signed what
    assert patch(ops, system["id"], owner, **{field: value}).status_code == 200
    answer = ops.release(system["id"])
    assert answer["allowed"] is False
    assert "CHANGED_SINCE_APPROVAL" in codes(answer)
    assert answer["approval_id"] == approval["id"]
    read = ops.ok(ops.client.get(f"/api/v1/approvals/{approval['id']}", headers=ops.carol))
    assert read["changed_since_approval"] is True
    if field != "business_owner":  # (bob no longer owns it: the new owner would request)
        # a new approval on the new facts releases again
        ops.approve(system["id"])
        assert ops.release(system["id"])["allowed"] is True


def test_other_fields_and_unchanged_facts_leave_the_approval_standing(ops: Ops) -> None:
    system = ops.ready(personal_data=True)
    ops.approve(system["id"])
    assert patch(ops, system["id"], "bob", purpose="A better description of the purpose").status_code == 200
    assert patch(ops, system["id"], "carol", personal_data=True).status_code == 200
    assert ops.release(system["id"])["allowed"] is True


def test_a_request_whose_facts_changed_before_it_was_signed_cannot_be_signed(ops: Ops) -> None:
    system = ops.ready()
    approval = ops.request(system["id"])
    assert patch(ops, system["id"], "carol", personal_data=True).status_code == 200
    r = ops.client.post(
        f"/api/v1/approvals/{approval['id']}/signoffs",
        json={"role": "compliance_officer", "decision": "approve", "comment": "ok"},
        headers=ops.carol,
    )
    assert r.status_code == 409
    assert r.json()["code"] == "CHANGED_SINCE_SUBMISSION"


def test_every_sign_off_fact_has_an_owning_role_in_the_policy() -> None:
    from app.identity.authz import read_policy_lines
    from app.settings import get_settings
    from app.systems.models import SIGNOFF_FACTS

    lines = read_policy_lines(get_settings().policies_dir / "policy.csv")
    owners = {line[3]: line[1] for line in lines if line[3].startswith("system.")}
    assert set(owners) == {f"system.{f}" for f in SIGNOFF_FACTS}
    assert "admin" not in owners.values()
