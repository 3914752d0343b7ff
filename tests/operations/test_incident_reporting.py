"""A serious incident records which reporting duties bind at its ``aware_at``, and to whom the report goes.

Art. 73 reporting for an Annex III system binds from the Chapter III date (2 Dec 2027 as amended in 2026,
Art. 113), with the sectoral limit of Art. 73(9) named as a condition; a systemic-risk GPAI model's incidents
go to the AI Office (Art. 55(1)(c)).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import HIGH_RISK, Ops

GPAI_SYSTEMIC = {"gpai_model": True, "gpai_systemic_risk": True}


def reported(ops: Ops, system_id: str, **fields: Any) -> dict[str, Any]:
    return ops.ok(ops.incident(system_id, **fields), 201)


def test_art73_does_not_bind_before_the_chapter_iii_date_and_says_so(ops: Ops) -> None:
    system = ops.ready(HIGH_RISK)  # Annex III 4(a): Art. 73 from 2027-12-02
    body = reported(ops, system["id"], kind="health")
    assert [(d["id"], d["binds"]) for d in body["reporting"]] == [("art73", False)]
    assert "2027-12-02" in body["reporting"][0]["reason"]
    assert "Art. 73(9)" in body["reporting"][0]["condition"]
    again = ops.ok(ops.client.get(f"/api/v1/incidents/{body['id']}", headers=ops.carol))
    assert again["reporting"] == body["reporting"]


def test_art73_binds_for_an_incident_known_after_that_date(ops: Ops, travel: Any) -> None:
    system = ops.ready(HIGH_RISK)
    travel(datetime(2028, 1, 15, 9, 0, tzinfo=UTC))
    now = datetime(2028, 1, 15, 9, 0, tzinfo=UTC)
    body = reported(
        ops,
        system["id"],
        kind="fundamental_rights",
        occurred_at=(now - timedelta(hours=3)).isoformat(),
        aware_at=(now - timedelta(hours=1)).isoformat(),
    )
    duty = body["reporting"][0]
    assert (duty["id"], duty["binds"], duty["reason"]) == ("art73", True, None)
    assert "market surveillance authority" in duty["report_to"]


def test_systemic_risk_gpai_incidents_go_to_the_ai_office(ops: Ops) -> None:
    system = ops.system(ai_act_role="provider")
    ops.classify(system["id"], GPAI_SYSTEMIC)
    body = reported(ops, system["id"])
    assert [(d["id"], d["binds"]) for d in body["reporting"]] == [("art55", True)]
    assert body["reporting"][0]["report_to"].startswith("AI Office")


def test_a_minor_incident_or_an_unclassified_system_has_nothing_to_judge(ops: Ops) -> None:
    system = ops.ready(HIGH_RISK)
    assert reported(ops, system["id"], serious=False)["reporting"] is None
    unclassified = ops.system(name="Paint inspection")
    assert reported(ops, unclassified["id"])["reporting"] is None
