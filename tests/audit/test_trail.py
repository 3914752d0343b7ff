"""The hash-chained audit trail through the API and the CLI: what is recorded, who sees it, tampering."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.audit.service import GENESIS_HASH, event_hash, verify_chain
from app.cli import app as cli
from app.db import get_engine, session_scope, set_clock_offset
from tests.audit.owner import owner_sql, owner_transaction
from tests.identity.helpers import DIGEST, audit_events, create_system

runner = CliRunner()


def _rehash(event: dict) -> str:
    return event_hash(
        seq=event["seq"],
        ts=datetime.fromisoformat(event["ts"]),
        actor=event["actor"],
        action=event["action"],
        entity_type=event["entity_type"],
        entity_id=event["entity_id"],
        site=event["site"],
        before=event["before"],
        after=event["after"],
        prev_hash=event["prev_hash"],
    )


def _sql(statement: str, **params: object) -> None:
    """Someone with the database owner's rights edits the trail (the append-only guard lifted)."""
    owner_sql(statement, **params)


def _verify_api(client, headers) -> dict:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/audit-events/verify", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def activity(client, admin, plant, make_user):  # type: ignore[no-untyped-def]
    """A small history: users, grants, tokens, systems in both sites, an update, a delete, a denial."""
    owner = make_user("olga", ("business_owner", "STR"))
    make_user("lyon", ("business_owner", "LYO"))
    s1 = create_system(client, owner, "STR", "olga")
    s2 = create_system(client, admin, "LYO", "lyon", name="Solder check")
    r = client.patch(f"/api/v1/systems/{s1['id']}", json={"name": "Weld QA", "revision": 1}, headers=owner)
    assert r.status_code == 200, r.text
    r = client.delete(f"/api/v1/systems/{s2['id']}", headers={**admin, "If-Match": '"1"'})
    assert r.status_code == 204, r.text
    r = client.post("/api/v1/users/olga/tokens", json={"name": "ci"}, headers=admin)
    assert client.delete(f"/api/v1/tokens/{r.json()['id']}", headers=admin).status_code == 204
    assert (
        client.delete(
            "/api/v1/users/lyon/roles/business_owner", params={"site": "LYO"}, headers=admin
        ).status_code
        == 204
    )
    assert (
        client.post("/api/v1/sites", json={"code": "BER", "name": "Berlin"}, headers=owner).status_code == 403
    )
    return {"admin": admin, "owner": owner, "s1": s1, "s2": s2}


def test_every_change_is_an_event_with_a_valid_link(client, activity) -> None:  # type: ignore[no-untyped-def]
    events = audit_events(client, activity["admin"])
    actions = [e["action"] for e in events]
    for expected in (
        "user.create",
        "role.grant",
        "token.issue",
        "site.create",
        "zone.create",
        "system.create",
        "system.update",
        "system.delete",
        "token.revoke",
        "role.revoke",
        "access.denied",
    ):
        assert expected in actions, expected
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    prev = GENESIS_HASH
    for event in events:
        assert event["prev_hash"] == prev
        assert event["hash"] == _rehash(event)
        assert datetime.fromisoformat(event["ts"]).utcoffset() == timedelta(0)
        prev = event["hash"]
    update = next(e for e in events if e["action"] == "system.update")
    assert (
        update["actor"] == "olga" and update["site"] == "STR" and update["entity_id"] == activity["s1"]["id"]
    )
    assert update["before"]["name"] == "Vision QA" and update["after"]["name"] == "Weld QA"
    revoke = next(e for e in events if e["action"] == "role.revoke")
    assert revoke["before"] == {"role": "business_owner", "site": "LYO"} and revoke["site"] == "LYO"
    denied = [e for e in events if e["action"] == "access.denied"]
    assert denied[-1]["actor"] == "olga" and denied[-1]["entity_type"] == "site"
    assert denied[-1]["after"]["attempted"] == "create"
    issued = [e for e in events if e["action"] == "token.issue"]
    assert all("token" not in (e["after"] or {}) for e in issued)
    result = _verify_api(client, activity["admin"])
    assert result == {
        "valid": True,
        "events": len(events),
        "head": prev,
        "first_bad_seq": None,
        "reason": None,
        "checkpoint_seq": len(events),  # the head checkpoint outside the database agrees
        "from_seq": 1,
        "notice": None,
    }


def test_denials_are_recorded_including_404_across_sites(client, admin, plant, make_user) -> None:  # type: ignore[no-untyped-def]
    lyon = make_user("lyon", ("business_owner", "LYO"))
    spy = make_user("spy", ("auditor", "STR"))
    lyo = create_system(client, lyon, "LYO", "lyon")
    assert client.get(f"/api/v1/systems/{lyo['id']}", headers=spy).status_code == 404
    r = client.patch(f"/api/v1/systems/{lyo['id']}", json={"name": "x", "revision": 1}, headers=lyon)
    assert r.status_code == 200
    assert client.post("/api/v1/users", json={"username": "sneaky"}, headers=spy).status_code == 403
    denied = [e for e in audit_events(client, admin, actor="spy") if e["action"] == "access.denied"]
    assert [(e["entity_type"], e["entity_id"], e["site"], e["after"]["attempted"]) for e in denied] == [
        ("system", lyo["id"], "LYO", "read"),
        ("user", "-", None, "manage"),
    ]
    assert client.get("/api/v1/users/sneaky", headers=admin).status_code == 404
    assert _verify_api(client, admin)["valid"] is True


def test_failed_changes_leave_no_event(client, admin, plant, make_user) -> None:  # type: ignore[no-untyped-def]
    """The event rides in the change's transaction: no change, no event (and the chain stays whole)."""
    before = len(audit_events(client, admin))
    assert client.post("/api/v1/users", json={"username": "admin"}, headers=admin).status_code == 409
    r = client.post(
        "/api/v1/systems",
        json={"name": "x", "purpose": "y", "site": "STR", "business_owner": "admin", "zone": "LYO-CTL"},
        headers=admin,
    )
    assert r.status_code == 422
    assert (
        client.post(
            "/api/v1/users/admin/roles", json={"role": "admin", "site": "*"}, headers=admin
        ).status_code
        == 409
    )
    assert len(audit_events(client, admin)) == before

    from app.audit.service import record

    with pytest.raises(RuntimeError), session_scope() as session:
        record(session, actor="t", action="x.y", entity_type="t", entity_id="1")
        raise RuntimeError("the change failed")
    assert len(audit_events(client, admin)) == before
    assert _verify_api(client, admin) == {**_verify_api(client, admin), "valid": True, "events": before}


def test_audit_list_is_filtered_to_the_callers_sites(client, activity, make_user) -> None:  # type: ignore[no-untyped-def]
    admin = activity["admin"]
    str_auditor = make_user("aud-str", ("auditor", "STR"))
    everything = audit_events(client, admin)
    seen = audit_events(client, str_auditor)
    assert seen and {e["site"] for e in seen} == {"STR"}
    assert len(seen) == sum(1 for e in everything if e["site"] == "STR")
    both = make_user("aud-both", ("auditor", "STR"), ("auditor", "LYO"))
    assert {e["site"] for e in audit_events(client, both)} == {"STR", "LYO"}
    # the global trail (users, tokens, global grants) is for callers holding audit:read in every site
    assert any(e["site"] is None for e in audit_events(client, admin))
    # a role without audit:read sees nothing
    r = client.get("/api/v1/audit-events", headers=activity["owner"])
    assert r.status_code == 403
    r = client.get("/api/v1/audit-events/verify", headers=activity["owner"])
    assert r.status_code == 403
    # a LYO system's events, asked for by id, are not shown to the STR auditor
    lyo_events = audit_events(client, str_auditor, entity_id=activity["s2"]["id"])
    assert lyo_events == []
    assert audit_events(client, admin, entity_id=activity["s2"]["id"])


def test_audit_filters(client, activity) -> None:  # type: ignore[no-untyped-def]
    admin, s1 = activity["admin"], activity["s1"]
    by_entity = audit_events(client, admin, entity_type="system", entity_id=s1["id"])
    assert [e["action"] for e in by_entity] == ["system.create", "system.update"]
    assert {e["actor"] for e in audit_events(client, admin, actor="olga")} == {"olga"}
    set_clock_offset(timedelta(hours=2))
    client.post("/api/v1/users", json={"username": "later"}, headers=admin)
    since = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert [e["action"] for e in audit_events(client, admin, since=since)] == ["user.create"]
    r = client.get("/api/v1/audit-events", params={"since": "2026-01-01T00:00:00"}, headers=admin)
    assert r.status_code == 422  # a time without an offset is ambiguous
    r = client.get("/api/v1/audit-events", params={"limit": 2, "offset": 1}, headers=admin)
    body = r.json()
    assert [e["seq"] for e in body["items"]] == [2, 3] and body["limit"] == 2 and body["offset"] == 1
    assert client.get("/api/v1/audit-events", params={"limit": 0}, headers=admin).status_code == 422


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
def test_no_endpoint_modifies_events(client, activity, method: str) -> None:  # type: ignore[no-untyped-def]
    admin = activity["admin"]
    before = audit_events(client, admin)
    r = client.request(method, "/api/v1/audit-events", json={"seq": 1}, headers=admin)
    assert r.status_code == 405, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = client.request(method, "/api/v1/audit-events/verify", json={}, headers=admin)
    assert r.status_code == 405
    r = client.request(method, "/api/v1/audit-events/1", json={"actor": "x"}, headers=admin)
    assert r.status_code in (404, 405)
    after = audit_events(client, admin)
    assert after == before
    paths = client.get("/openapi.json").json()["paths"]
    for path, ops in paths.items():
        if "audit" in path:
            assert set(ops) <= {"get", "parameters"}, path


def test_an_edited_row_is_named_by_verify(client, activity) -> None:  # type: ignore[no-untyped-def]
    admin = activity["admin"]
    events = audit_events(client, admin)
    target = next(e for e in events if e["action"] == "system.update")
    assert _verify_api(client, admin)["valid"] is True
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0

    # someone with database access rewrites history: the new name, as if it had always been so
    _sql("UPDATE audit_event SET actor = 'admin' WHERE seq = :seq", seq=target["seq"])
    result = _verify_api(client, admin)
    assert result["valid"] is False
    assert result["first_bad_seq"] == target["seq"]
    assert result["events"] == target["seq"] - 1
    out = runner.invoke(cli, ["audit", "verify"])
    assert out.exit_code == 1
    assert json.loads(out.stdout)["first_bad_seq"] == target["seq"]

    # restore it: valid again (so the finding is the edit, not something else)
    _sql("UPDATE audit_event SET actor = 'olga' WHERE seq = :seq", seq=target["seq"])
    assert _verify_api(client, admin)["valid"] is True


def test_json_edit_time_edit_and_rehashed_edit_are_caught(client, activity) -> None:  # type: ignore[no-untyped-def]
    admin = activity["admin"]
    events = audit_events(client, admin)
    seq = events[5]["seq"]
    _sql("UPDATE audit_event SET after = :v WHERE seq = :seq", v=json.dumps({"tampered": True}), seq=seq)
    assert _verify_api(client, admin)["first_bad_seq"] == seq
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 1
    original = events[5]["after"]
    _sql("UPDATE audit_event SET after = :v WHERE seq = :seq", v=json.dumps(original), seq=seq)
    assert _verify_api(client, admin)["valid"] is True

    # the time moved by a microsecond
    with owner_transaction() as conn:
        ts = conn.execute(sa.select(AuditEvent.ts).where(AuditEvent.seq == 3)).scalar_one()
        moved = ts + timedelta(microseconds=1)
        conn.execute(sa.update(AuditEvent).where(AuditEvent.seq == 3).values(ts=moved))
    assert _verify_api(client, admin)["first_bad_seq"] == 3

    # an edit whose own hash is recomputed still breaks the next event's link
    fixed = {**events[2], "ts": moved.isoformat()}
    _sql("UPDATE audit_event SET hash = :h WHERE seq = 3", h=_rehash(fixed))
    result = _verify_api(client, admin)
    assert result["first_bad_seq"] == 4 and "previous-hash" in result["reason"]


def test_a_deleted_row_is_a_gap(client, activity) -> None:  # type: ignore[no-untyped-def]
    admin = activity["admin"]
    _sql("DELETE FROM audit_event WHERE seq = 7")
    result = _verify_api(client, admin)
    assert result["valid"] is False and result["first_bad_seq"] == 7 and "gap" in result["reason"]
    out = runner.invoke(cli, ["audit", "verify"])
    assert out.exit_code == 1 and json.loads(out.stdout)["first_bad_seq"] == 7


def test_verify_streams_in_batches(client, activity) -> None:  # type: ignore[no-untyped-def]
    """Small batches give the same answer as one; the walk never loads the whole trail."""
    with session_scope(write=False) as session:
        whole = verify_chain(session, batch=100_000)
        for batch in (1, 2, 7):
            assert verify_chain(session, batch=batch) == whole
    assert whole.valid and whole.events == len(audit_events(client, activity["admin"]))
    _sql("UPDATE audit_event SET entity_id = 'x' WHERE seq = 9")
    with session_scope(write=False) as session:
        for batch in (1, 4, 100):
            assert verify_chain(session, batch=batch).first_bad_seq == 9


def test_empty_trail_is_valid(db) -> None:  # type: ignore[no-untyped-def]
    with session_scope(write=False) as session:
        result = verify_chain(session)
    assert result.valid and result.events == 0 and result.head == GENESIS_HASH


def test_cli_export_is_json_lines_in_order(client, activity, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = runner.invoke(cli, ["audit", "export"])
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines == audit_events(client, activity["admin"])
    assert all(_rehash(e) == e["hash"] for e in lines)
    target = tmp_path / "trail.jsonl"
    assert runner.invoke(cli, ["audit", "export", "-o", str(target)]).exit_code == 0
    assert target.read_text().splitlines() == out.stdout.splitlines()


def test_cli_changes_are_audited_as_the_console_user(client, admin, plant) -> None:  # type: ignore[no-untyped-def]
    assert runner.invoke(cli, ["users", "add", "quinn", "--display-name", "Quinn"]).exit_code == 0
    assert runner.invoke(cli, ["users", "grant", "quinn", "auditor", "--site", "STR"]).exit_code == 0
    events = audit_events(client, admin, entity_id="quinn")
    assert [e["action"] for e in events] == ["user.create", "role.grant"]
    assert all(e["actor"].startswith("cli") for e in events)
    r = client.post(
        "/api/v1/systems/AIS-000001/versions", json={"version": "1", "artifact_digest": DIGEST}, headers=admin
    )
    assert r.status_code == 404


def test_unreadable_json_is_a_broken_event_not_an_error(client, activity) -> None:  # type: ignore[no-untyped-def]
    """SQLite stores JSON as text, so a raw edit can leave it unparseable; verify names the event."""
    if get_engine().dialect.name != "sqlite":
        pytest.skip("PostgreSQL's json type refuses text that is not JSON")
    _sql("UPDATE audit_event SET before = '{not json' WHERE seq = 4")
    result = _verify_api(client, activity["admin"])
    assert result["valid"] is False and result["first_bad_seq"] == 4 and "JSON" in result["reason"]
    out = runner.invoke(cli, ["audit", "verify"])
    assert out.exit_code == 1 and "broken at event 4" in out.stderr
