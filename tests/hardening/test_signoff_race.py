"""Sign-off races: every required role signing at once (twice each), and a rejection racing the approvals.

Exactly one sign-off per role is kept, the request completes exactly once, a late decision is a 409, and
the audit chain holds at the end, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.approvals.helpers import ANNEX3_EMPLOYMENT, audit_actions, submit
from tests.factories import TEAM
from tests.hardening.test_concurrency import _race, _verify_chain

SIGNER = {role: user for user, (role, site) in TEAM.items() if site == "STR" and user != "bob"}


def _sign(
    client: Any, headers: dict[str, str], approval_id: str, role: str, decision: str = "approve"
) -> Any:
    body = {"role": role, "decision": decision}
    if decision == "reject":
        body["comment"] = "evidence missing"  # a rejection must say why
    return client.post(f"/api/v1/approvals/{approval_id}/signoffs", json=body, headers=headers)


def test_every_role_signing_twice_at_once_completes_exactly_once(
    client: Any,
    team: dict[str, dict[str, str]],
    make_system: Any,
) -> None:
    system = make_system(ANNEX3_EMPLOYMENT)
    request = submit(client, team["bob"], system, "v1", "pilot")
    roles = request["required_signoffs"]
    assert len(roles) >= 3
    attempts = [role for role in roles for _ in range(2)]

    results = _race(
        len(attempts), lambda i: _sign(client, team[SIGNER[attempts[i]]], request["id"], attempts[i])
    )
    by_role: dict[str, Counter[int]] = {}
    for role, r in zip(attempts, results, strict=True):
        assert r.status_code in (201, 409), r.text
        by_role.setdefault(role, Counter())[r.status_code] += 1
    assert all(c[201] == 1 and c[409] == 1 for c in by_role.values()), by_role

    final = client.get(f"/api/v1/approvals/{request['id']}", headers=team["admin"]).json()
    assert final["state"] == "approved"
    assert sorted(s["role"] for s in final["signoffs"]) == sorted(roles)
    actions = Counter(audit_actions(client, team["admin"], request["id"]))
    assert actions["approval.approve"] == 1 and actions["approval.signoff"] == len(roles)
    _verify_chain(client, team["admin"])


def test_a_rejection_racing_the_approvals_leaves_one_consistent_outcome(
    client: Any,
    team: dict[str, dict[str, str]],
    make_system: Any,
) -> None:
    system = make_system(ANNEX3_EMPLOYMENT)
    request = submit(client, team["bob"], system, "v1", "pilot")
    roles = request["required_signoffs"]
    rejecter = roles[-1]
    calls = [(role, "approve") for role in roles[:-1]] + [(rejecter, "reject")]

    results = _race(
        len(calls),
        lambda i: _sign(client, team[SIGNER[calls[i][0]]], request["id"], calls[i][0], calls[i][1]),
    )
    assert all(r.status_code in (201, 409) for r in results), [r.text for r in results]
    final = client.get(f"/api/v1/approvals/{request['id']}", headers=team["admin"]).json()
    actions = Counter(audit_actions(client, team["admin"], request["id"]))
    # the rejecting role is one of those required, so the request can never be approved without it
    assert final["state"] == "rejected"
    assert actions["approval.reject"] == 1 and actions["approval.approve"] == 0
    accepted = sum(r.status_code == 201 for r in results)
    assert len(final["signoffs"]) == accepted == actions["approval.signoff"]
    assert results[-1].status_code == 201
    _verify_chain(client, team["admin"])
