"""The release gate: authentication, 404s, every reason code, and answers that follow every write at once."""

from __future__ import annotations

from typing import Any

import pytest

from app.approvals import release as gate
from tests.approvals.helpers import (
    ANNEX3_EMPLOYMENT,
    COUNTERMEASURES,
    MINIMAL,
    classify,
    codes,
    release,
    sign,
    submit,
)
from tests.factories import long_lived_user

URL = "/api/v1/release-permission"


def _approve_minimal(client: Any, team: dict, system: str, env: str = "production") -> str:
    a = submit(client, team["bob"], system, "v1", env)["id"]
    sign(client, team["clara"], a, "compliance_officer")
    assert sign(client, team["berta"], a, "business_owner")["state"] == "approved"
    return a


def test_authentication_and_visibility(client: Any, team: dict, make_system: Any) -> None:
    system = make_system(MINIMAL)
    params = {"system": system, "version": "v1"}
    assert client.get(URL, params=params).status_code == 401
    assert client.get(URL, params=params, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get(URL, params=params, headers={"Authorization": "Basic eDp5"}).status_code == 401
    unknown = {"Authorization": "Bearer aireg_" + "x" * 43}
    r = client.get(URL, params=params, headers=unknown)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    elsewhere = client.get(URL, params=params, headers=team["leo"])  # no role in STR
    unknown_system = client.get(URL, params={"system": "AIS-999999", "version": "v1"}, headers=team["leo"])
    assert elsewhere.status_code == unknown_system.status_code == 404
    # one message for both: the answer does not tell whether the system exists elsewhere
    assert elsewhere.json()["detail"] == f"system {system!r} does not exist"
    assert unknown_system.json()["detail"] == "system 'AIS-999999' does not exist"
    site_admin = long_lived_user("sid", ("admin", "STR"))
    assert (
        client.get(URL, params=params, headers=site_admin).status_code == 403
    )  # admins may not ask the gate
    for bad in (
        {"system": system},
        {"version": "v1"},
        {"system": "x", "version": "v1"},
        {"system": system, "version": "v1", "environment": "staging"},
        {"system": system, "version": "v1", "artifact_digest": "md5:00"},
    ):
        r = client.get(URL, params=bad, headers=team["ci"])
        assert r.status_code == 422, (bad, r.text)
    r = client.get(URL, params={"version": "v1!", "environment": "staging"}, headers=team["ci"])
    assert [e["loc"] for e in r.json()["errors"]] == [
        ["query", "system"],
        ["query", "version"],
        ["query", "environment"],
    ]
    assert client.post(URL, params=params, headers=team["ci"]).status_code == 405
    answer = release(client, team["ci"], system, "v1")  # environment defaults to production
    assert answer["environment"] == "production" and codes(answer) == ["NO_APPROVAL"]


def test_revoked_token_is_refused_at_once(client: Any, team: dict, make_system: Any) -> None:
    system = make_system(MINIMAL)
    r = client.post(
        "/api/v1/users/ci/tokens", json={"name": "pipeline", "expires_days": 1}, headers=team["ci"]
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    headers = {"Authorization": f"Bearer {issued['token']}"}
    assert release(client, headers, system, "v1")["allowed"] is False
    assert client.delete(f"/api/v1/tokens/{issued['id']}", headers=team["ci"]).status_code == 204
    assert client.get(URL, params={"system": system, "version": "v1"}, headers=headers).status_code == 401


def test_material_changes_after_approval(client: Any, team: dict, make_system: Any) -> None:
    ci, admin = team["ci"], team["admin"]
    system = make_system(MINIMAL, zone="STR-ENT", sl_achieved={f"FR{i}": 2 for i in range(1, 8)})
    _approve_minimal(client, team, system)
    assert release(client, ci, system, "v1")["allowed"] is True
    revision = client.get(f"/api/v1/systems/{system}", headers=admin).json()["revision"]
    r = client.patch(
        f"/api/v1/systems/{system}", json={"personal_data": True, "revision": revision}, headers=admin
    )
    assert r.status_code == 200, r.text
    answer = release(client, ci, system, "v1")
    assert codes(answer) == ["CHANGED_SINCE_APPROVAL", "CONDITION_NOT_MET"]
    assert "dpo" in answer["reasons"][1]["message"]
    r = client.patch(
        f"/api/v1/systems/{system}",
        json={"personal_data": False, "revision": r.json()["revision"]},
        headers=admin,
    )
    # back to the old value: still a change after the approval (who signed saw other facts meanwhile)
    assert codes(release(client, ci, system, "v1")) == ["CHANGED_SINCE_APPROVAL"]
    # The OT security sign-off accepted FR7 only; a wider gap later is not covered.
    gap_system = make_system(
        MINIMAL, zone="STR-CTL", sl_achieved={f"FR{i}": 3 for i in range(1, 7)} | {"FR7": 1}
    )
    a = submit(client, team["bob"], gap_system, "v1", "production")["id"]
    sign(client, team["clara"], a, "compliance_officer")
    sign(client, team["berta"], a, "business_owner")
    sign(client, team["otto"], a, "ot_security", comment=COUNTERMEASURES)
    answer = release(client, ci, gap_system, "v1")
    assert answer["allowed"] is True and codes(answer, "warning") == ["SL_GAP_ACCEPTED"]
    assert "FR7" in answer["reasons"][0]["message"]
    revision = client.get(f"/api/v1/systems/{gap_system}", headers=admin).json()["revision"]
    r = client.patch(
        f"/api/v1/systems/{gap_system}",
        json={"sl_achieved": {f"FR{i}": 3 for i in range(1, 6)} | {"FR6": 2, "FR7": 1}, "revision": revision},
        headers=team["otto"],  # the achieved SL is OT security's to record
    )
    assert r.status_code == 200, r.text
    answer = release(client, ci, gap_system, "v1")
    assert codes(answer) == ["CHANGED_SINCE_APPROVAL", "CONDITION_NOT_MET"]
    assert "FR6" in answer["reasons"][1]["message"]


def test_retired_and_prohibited_after_approval(client: Any, team: dict, make_system: Any) -> None:
    ci, admin = team["ci"], team["admin"]
    system = make_system(MINIMAL)
    _approve_minimal(client, team, system)
    classify(client, admin, system, {"prohibited_practices": ["art5.1.f"]})
    assert codes(release(client, ci, system, "v1")) == ["PROHIBITED", "RECLASSIFIED_SINCE_APPROVAL"]
    revision = client.get(f"/api/v1/systems/{system}", headers=admin).json()["revision"]
    r = client.patch(
        f"/api/v1/systems/{system}", json={"lifecycle_stage": "retired", "revision": revision}, headers=admin
    )
    assert r.status_code == 200, r.text
    answer = release(client, ci, system, "v1")
    assert codes(answer) == ["SYSTEM_RETIRED", "PROHIBITED", "RECLASSIFIED_SINCE_APPROVAL"]
    assert codes(release(client, ci, system, "v7")) == ["SYSTEM_RETIRED", "PROHIBITED", "UNKNOWN_VERSION"]
    refused = submit(client, team["bob"], system, "v2", "pilot", expect=422)
    assert refused["code"] == "SYSTEM_RETIRED"
    assert client.delete(f"/api/v1/systems/{system}", headers=admin).status_code == 204  # archived
    assert client.get(f"/api/v1/systems/{system}", headers=admin).status_code == 404
    assert codes(release(client, ci, system, "v1"))[0] == "SYSTEM_RETIRED"  # still a definite "no"


def test_a_newer_request_and_an_older_approval(client: Any, team: dict, make_system: Any) -> None:
    ci = team["ci"]
    system = make_system(ANNEX3_EMPLOYMENT)
    first = submit(client, team["bob"], system, "v1", "pilot")["id"]
    for user, role in (
        ("clara", "compliance_officer"),
        ("berta", "business_owner"),
        ("rita", "risk_officer"),
    ):
        sign(client, team[user], first, role)
    r = client.post(f"/api/v1/approvals/{first}/revoke", json={"reason": "drift"}, headers=team["rita"])
    assert r.status_code == 200
    second = submit(client, team["bob"], system, "v1", "pilot")["id"]
    answer = release(client, ci, system, "v1", "pilot")
    # every reason that applies: the new request is pending and the last approval was revoked
    assert codes(answer) == ["APPROVAL_PENDING", "APPROVAL_REVOKED"] and answer["approval_id"] == second
    assert "drift" in answer["reasons"][1]["message"]


def test_suspension_hook(client: Any, team: dict, make_system: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    system = make_system(MINIMAL)
    _approve_minimal(client, team, system)
    assert gate.other_domains_reasons.__doc__ and release(client, team["ci"], system, "v1")["allowed"] is True
    calls: list[tuple[str, str, str]] = []

    def reasons(check: gate.CheckInput) -> list[dict[str, str]]:
        calls.append((check.system_id, check.version, check.environment))
        return [gate.error(gate.SUSPENDED_BY_INCIDENT, "incident INC-1 is open")]

    check = gate.ReleaseCheck(dict, reasons)  # no statements of its own
    monkeypatch.setattr(gate, "_release_checks", [check])
    answer = release(client, team["ci"], system, "v1")
    assert codes(answer) == ["SUSPENDED_BY_INCIDENT"] and calls == [(system, "v1", "production")]


def test_check_rows_ride_in_the_gate_statement_typed_by_column(
    client: Any, team: dict, make_system: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check's statements run inside the gate's one statement (``RowsAsJson``); their rows come back by
    name with each column read as its type: times aware, JSON as data, booleans as bool, on either
    database; a statement without rows gives an empty list."""
    from datetime import datetime

    import sqlalchemy as sa
    from sqlmodel import col

    from app.systems.models import AISystem, ModelVersion

    system = make_system(MINIMAL)
    _approve_minimal(client, team, system)
    seen: list[dict[str, list[dict[str, Any]]]] = []

    def statements() -> dict[str, sa.Select[Any]]:
        sid = gate.param("sid")
        return {
            "system": sa.select(
                col(AISystem.id),
                col(AISystem.created_at),
                col(AISystem.personal_data),
                col(AISystem.sl_achieved),
            ).where(col(AISystem.id) == sid),
            "versions": sa.select(col(ModelVersion.version), col(ModelVersion.metrics)).where(
                col(ModelVersion.system_id) == sid, col(ModelVersion.version) == gate.param("ver")
            ),
            "none": sa.select(col(AISystem.id)).where(col(AISystem.id) == "AIS-999999"),
        }

    def reasons(check: gate.CheckInput) -> list[dict[str, str]]:
        seen.append(check.rows)
        return []

    monkeypatch.setattr(gate, "_release_checks", [gate.ReleaseCheck(statements, reasons)])
    assert release(client, team["ci"], system, "v1")["allowed"] is True
    [rows] = seen
    [row] = rows["system"]
    assert row["id"] == system and row["personal_data"] is False
    assert isinstance(row["created_at"], datetime) and row["created_at"].utcoffset() is not None
    assert row["sl_achieved"] is None  # a JSON column holding NULL (no zone assessed)
    [version] = rows["versions"]
    assert version["version"] == "v1" and isinstance(version["metrics"], dict)
    assert rows["none"] == []


def test_a_gate_statement_too_wide_for_sqlite_json_rows_is_refused_when_compiled() -> None:
    """SQLite's ``json_object`` takes 127 arguments: a statement of 64 columns cannot be read as JSON rows,
    and says so when compiled instead of failing in the database on the first call."""
    import sqlalchemy as sa

    def wide(n: int) -> gate.GateQuery:
        return gate.GateQuery(sa.select(*(sa.literal(i).label(f"c{i}") for i in range(n))))

    assert "json_object(" in wide(gate.SQLITE_MAX_COLUMNS).compiled("sqlite").sql
    with pytest.raises(ValueError, match="at most 63 columns"):
        wide(gate.SQLITE_MAX_COLUMNS + 1).compiled("sqlite")
    assert "row_to_json" in wide(gate.SQLITE_MAX_COLUMNS + 1).compiled("postgresql").sql
