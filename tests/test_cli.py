"""The ``aireg`` command line, run in process against the test database (the ``database`` fixture)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app


@pytest.fixture
def cli(db: None) -> Any:
    """Run ``aireg ARGS`` in process; returns the click Result (stdout and stderr kept apart)."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=input)

    return run


def _ok(result: Any) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def _site(client: Any, headers: dict[str, str], code: str = "STR") -> None:
    r = client.post("/api/v1/sites", json={"code": code, "name": code}, headers=headers)
    assert r.status_code == 201, r.text


def test_users_add_list_grant_revoke(cli, client, admin):
    _site(client, admin)
    assert "created user carla" in _ok(
        cli("users", "add", "carla", "--display-name", "Carla C", "--email", "c@x.eu")
    )
    _ok(cli("users", "grant", "carla", "compliance_officer", "--site", "STR"))
    _ok(cli("users", "grant", "carla", "auditor", "--site", "*"))
    listing = _ok(cli("users", "list"))
    line = next(ln for ln in listing.splitlines() if ln.startswith("carla"))
    assert "Carla C" in line and "compliance_officer@STR" in line and "auditor@*" in line
    rows = json.loads(_ok(cli("users", "list", "--json")))
    carla = next(r for r in rows if r["username"] == "carla")
    assert carla["email"] == "c@x.eu"
    assert {(g["role"], g["site"]) for g in carla["roles"]} == {
        ("compliance_officer", "STR"),
        ("auditor", "*"),
    }

    _ok(cli("users", "revoke", "carla", "auditor", "--site", "*"))
    user = client.get("/api/v1/users/carla", headers=admin).json()
    assert [(g["role"], g["site"]) for g in user["roles"]] == [("compliance_officer", "STR")]
    # the trail names the console user as the actor
    events = client.get("/api/v1/audit-events", params={"entity_id": "carla"}, headers=admin).json()["items"]
    assert [e["action"] for e in events] == ["user.create", "role.grant", "role.grant", "role.revoke"]
    assert all(e["actor"].startswith("cli") for e in events)


def test_users_add_password_from_stdin(cli):
    from sqlmodel import select

    from app.db import session_scope
    from app.identity.models import User
    from app.identity.service import verify_password

    _ok(cli("users", "add", "pat", "--password-stdin", input="correct-horse-battery\n"))
    with session_scope() as session:
        stored = session.exec(select(User.password_hash).where(User.username == "pat")).one()
    assert stored and "correct-horse-battery" not in stored
    assert verify_password("correct-horse-battery", stored)
    assert not verify_password("wrong-password-123", stored)


def test_users_add_refusals(cli):
    result = cli("users", "add", "Bad Name")
    assert result.exit_code != 0
    assert "username" in result.stderr
    result = cli("users", "add", "shorty", "--password-stdin", input="short\n")
    assert result.exit_code != 0
    assert "password" in result.stderr
    _ok(cli("users", "add", "dup"))
    result = cli("users", "add", "dup")
    assert result.exit_code == 1
    assert "already exists" in result.stderr


def test_grant_refusals_are_clear(cli, client, admin):
    _site(client, admin)
    _ok(cli("users", "add", "dana"))
    result = cli("users", "grant", "dana", "overlord", "--site", "STR")
    assert result.exit_code == 2
    assert "overlord" in result.stderr and "compliance_officer" in result.stderr
    result = cli("users", "grant", "dana", "auditor", "--site", "NOPE")
    assert result.exit_code == 1
    assert "NOPE" in result.stderr and "does not exist" in result.stderr
    result = cli("users", "grant", "dana", "auditor", "--site", "not a site")
    assert result.exit_code == 2
    assert "invalid site" in result.stderr
    result = cli("users", "grant", "ghost", "auditor", "--site", "STR")
    assert result.exit_code == 1
    assert "ghost" in result.stderr
    _ok(cli("users", "grant", "dana", "auditor", "--site", "STR"))
    result = cli("users", "grant", "dana", "auditor", "--site", "STR")
    assert result.exit_code == 1 and "already holds" in result.stderr
    result = cli("users", "revoke", "dana", "dpo", "--site", "STR")
    assert result.exit_code == 1 and "does not hold" in result.stderr
    assert client.get("/api/v1/users/dana", headers=admin).json()["roles"] == [
        {"role": "auditor", "site": "STR"}
    ]


def test_tokens_issue_list_revoke(cli, client, admin):
    _site(client, admin)
    _ok(cli("users", "add", "ci"))
    _ok(cli("users", "grant", "ci", "mlops", "--site", "*"))
    out = _ok(cli("tokens", "issue", "ci", "--name", "pipeline", "--expires-days", "7"))
    assert out.count("\n") == 1  # the token alone, on one line
    token = out.strip()
    assert token.startswith("aireg_") and " " not in token
    headers = {"Authorization": f"Bearer {token}"}
    r = client.get("/api/v1/users/me", headers=headers)
    assert r.status_code == 200 and r.json()["username"] == "ci"
    assert client.get("/api/v1/systems", headers=headers).status_code == 200

    listing = _ok(cli("tokens", "list", "--user", "ci"))
    assert token not in listing
    line = next(ln for ln in listing.splitlines() if "pipeline" in ln)
    assert "active" in line
    token_id = line.split()[0]
    _ok(cli("tokens", "revoke", token_id))
    assert "revoked" in next(ln for ln in _ok(cli("tokens", "list")).splitlines() if ln.startswith(token_id))
    assert client.get("/api/v1/users/me", headers=headers).status_code == 401
    result = cli("tokens", "revoke", token_id)
    assert result.exit_code == 1 and "already revoked" in result.stderr
    result = cli("tokens", "revoke", "0000000000000000")
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_tokens_issue_refusals(cli):
    result = cli("tokens", "issue", "ghost")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "ghost" in result.stderr
    _ok(cli("users", "add", "eve"))
    assert cli("tokens", "issue", "eve", "--expires-days", "0").exit_code == 2


def test_audit_verify_and_export(cli, client, admin):
    _site(client, admin)
    _ok(cli("users", "add", "fred"))
    result = json.loads(_ok(cli("audit", "verify")))
    assert result["valid"] is True and result["first_bad_seq"] is None
    assert result["events"] >= 5

    lines = _ok(cli("audit", "export")).splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == result["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["hash"] == result["head"]
    assert events[-1]["action"] == "user.create" and events[-1]["entity_id"] == "fred"
    for prev, event in itertools.pairwise(events):
        assert event["prev_hash"] == prev["hash"]


def test_audit_export_to_file(cli, client, admin, tmp_path):
    _site(client, admin)
    out = tmp_path / "trail.jsonl"
    _ok(cli("audit", "export", "-o", str(out)))
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert any(e["action"] == "site.create" and e["entity_id"] == "STR" for e in events)


def test_audit_verify_fails_on_tampering(cli, client, admin):
    import sqlalchemy as sa

    from app.audit.models import AuditEvent
    from tests.audit.owner import owner_transaction

    _site(client, admin)
    with owner_transaction() as conn:  # the database refuses the edit unless its owner lifts the guard
        seq = conn.execute(sa.select(AuditEvent.seq).where(AuditEvent.action == "site.create")).scalar_one()
        conn.execute(sa.update(AuditEvent).where(AuditEvent.seq == seq).values(actor="mallory"))
    result = cli("audit", "verify")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["first_bad_seq"] == seq


def test_migrate_builds_a_fresh_database(cli, tmp_path, monkeypatch):
    import sqlalchemy as sa

    from app.models import metadata
    from app.settings import get_settings

    path = tmp_path / "fresh.db"
    monkeypatch.setenv("AIREG_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.delenv("AIREG_DATABASE_SCHEMA", raising=False)
    get_settings.cache_clear()
    try:
        assert "latest schema revision" in _ok(cli("migrate"))
        engine = sa.create_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            head = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
        engine.dispose()
        assert set(metadata.tables) <= tables
        assert head
        assert "latest schema revision" in _ok(cli("migrate"))  # idempotent
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


@pytest.mark.parametrize("command", ["serve", "migrate", "users", "tokens", "audit"])
def test_help_lists_the_commands(cli, command):
    assert command in _ok(cli("--help"))
