"""The rule table (policies/signoff_rules.yaml) and the expiry of approvals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.approvals import flows
from app.approvals.rules import Facts, RulesError, add_months, get_rules, load_rules
from app.db import session_scope, set_clock_offset
from tests.approvals.helpers import MINIMAL, audit_actions, codes, release, sign, submit

GOOD = (Path(__file__).resolve().parents[2] / "policies" / "signoff_rules.yaml").read_text()


@pytest.mark.parametrize(
    ("facts", "roles"),
    [
        (Facts("minimal_risk", "pilot", False, False), ["business_owner", "compliance_officer"]),
        (Facts("limited_risk", "production", True, False), ["business_owner", "compliance_officer", "dpo"]),
        (
            Facts("high_risk", "pilot", False, False, basis=["art6.2", "annex3.4.a"]),
            ["business_owner", "compliance_officer", "risk_officer"],
        ),
        (
            Facts("high_risk", "pilot", True, True, sl_gap=["FR4"], basis=["art6.1", "annex1.b.21"]),
            ["business_owner", "compliance_officer", "risk_officer", "dpo", "ot_security", "safety_engineer"],
        ),
        (
            Facts("minimal_risk", "pilot", False, True),
            ["business_owner", "compliance_officer", "ot_security"],
        ),
        (
            Facts("minimal_risk", "pilot", False, False, sl_gap=["FR1"]),
            ["business_owner", "compliance_officer", "ot_security"],
        ),
        (  # an IT zone with an FR whose achieved level is not assessed: OT security must record it
            Facts("minimal_risk", "pilot", False, False, sl_unassessed=["FR3"]),
            ["business_owner", "compliance_officer", "ot_security"],
        ),
    ],
)
def test_default_rule_table(facts: Facts, roles: list[str]) -> None:
    assert get_rules().required(facts).roles == roles


def test_validity_and_prerequisites() -> None:
    rules = get_rules()
    assert rules.validity_months("high_risk") == 6 and rules.validity_months("minimal_risk") == 12
    assert [p.id for p in rules.prerequisites(Facts("high_risk", "production", False, False))] == [
        "pilot_before_production"
    ]
    assert rules.prerequisites(Facts("high_risk", "pilot", False, False)) == []
    assert rules.prerequisites(Facts("minimal_risk", "production", False, False)) == []
    assert add_months(datetime(2026, 8, 31, tzinfo=UTC), 6) == datetime(2027, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 30, tzinfo=UTC), 12) == datetime(2027, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("require: [dpo]", "require: [janitor]"), "rules.2.require.0 (rule 'personal_data')"),
        (
            ("    when: {personal_data: true}", "    when: {personal_data: true, colour: red}"),
            "rules.2.when.colour (rule 'personal_data')",
        ),
        (("  default: 12", "  normal: 12"), "validity_months"),
        (("  high_risk: 6", "  high_risk: 600"), "validity_months.high_risk"),
        (("version: 1", "version: 7"), "unsupported version"),
        (("  - id: ot_zone", "  - id: personal_data"), "used twice"),
        (("requires_approved: pilot", "requires_approved: staging"), "prerequisites.0.requires_approved"),
        (("rules:", "rules: ["), "not valid YAML"),
    ],
)
def test_broken_rule_table_names_file_and_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    assert change[0] in GOOD
    path = tmp_path / "signoff_rules.yaml"
    path.write_text(GOOD.replace(change[0], change[1], 1))
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_rule_table(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(RulesError, match="expected a mapping"):
        load_rules(tmp_path / "list.yaml")


def test_expiry_is_recorded_and_a_review_is_due(client: Any, team: dict, make_system: Any) -> None:
    system = make_system(MINIMAL)
    a = submit(client, team["bob"], system, "v1", "production")["id"]
    sign(client, team["clara"], a, "compliance_officer")
    body = sign(client, team["berta"], a, "business_owner")
    valid_until = datetime.fromisoformat(body["valid_until"])
    assert body["validity_months"] == 12
    with session_scope() as session:
        assert flows.expire_due(session) == []  # nothing is due yet
    set_clock_offset(valid_until - datetime.now(UTC) - timedelta(seconds=5))
    assert release(client, team["ci"], system, "v1")["allowed"] is True  # five seconds left
    set_clock_offset(valid_until - datetime.now(UTC) + timedelta(seconds=1))
    answer = release(client, team["ci"], system, "v1")
    assert codes(answer) == ["APPROVAL_EXPIRED"] and answer["approval_id"] == a
    assert client.get(f"/api/v1/approvals/{a}", headers=team["audrey"]).json()["state"] == "expired"
    r = client.get("/api/v1/approvals", params={"state": "expired"}, headers=team["audrey"])
    assert [x["id"] for x in r.json()["items"]] == [a]
    assert flows.sweep_expired() == 1  # the background worker's round: the expiry enters the trail
    assert flows.sweep_expired() == 0
    set_clock_offset(None)
    answer = release(client, team["ci"], system, "v1")  # recorded: stays expired even back in time
    assert codes(answer) == ["APPROVAL_EXPIRED"]
    assert audit_actions(client, team["admin"], a)[-1] == "approval.expire"
    r = client.post(f"/api/v1/approvals/{a}/revoke", json={"reason": "late"}, headers=team["clara"])
    assert r.status_code == 409
    review = submit(client, team["bob"], system, "v1", "production")
    assert review["supersedes"] == a
