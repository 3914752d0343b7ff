"""The keyed, checkpointed, append-only trail: what an attacker with the database but not the key cannot hide.

Every attack here is made the way it would be: as the database owner (the append-only guard lifted), or on
the files in the state directory; every finding is read through the HTTP API and the CLI.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlmodel import Session
from typer.testing import CliRunner

from app.audit.checkpoint import HEAD, VERIFIED, checkpoint_path, write_checkpoint
from app.audit.keys import KEYRING_FILE, get_keyring, key_id_of
from app.audit.models import AuditEvent
from app.audit.service import GENESIS_HASH, event_payload, record, verify_chain
from app.cli import app as cli
from app.db import alembic_config, get_engine, make_engine, session_scope
from app.settings import PROJECT_ROOT, get_settings
from tests.audit.owner import owner_sql, owner_transaction
from tests.identity.helpers import audit_events

runner = CliRunner()
TEST_PG_URL = os.environ.get("AIREG_TEST_DATABASE_URL")


def _verify(client: Any, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = client.get("/api/v1/audit-events/verify", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _cli_verify(*args: str) -> tuple[int, dict[str, Any], str]:
    out = runner.invoke(cli, ["audit", "verify", *args])
    return out.exit_code, json.loads(out.stdout), out.stderr


@pytest.fixture
def trail(client: Any, admin: dict[str, str], plant: Any) -> dict[str, Any]:
    """Two sites with zones, a few users: some twenty events, all through the API."""
    for name in ("ada", "bob", "cyd", "dee"):
        r = client.post("/api/v1/users", json={"username": name}, headers=admin)
        assert r.status_code == 201, r.text
    result = _verify(client, admin)
    assert result["valid"] and result["events"] > 10 and result["checkpoint_seq"] == result["events"]
    return {"admin": admin, "head": result["events"]}


@pytest.fixture
def fresh_settings() -> Iterator[pytest.MonkeyPatch]:
    """Change AIREG_* variables for one test; the settings are read again, and again after it."""
    with pytest.MonkeyPatch.context() as mp:
        yield mp
        get_settings.cache_clear()
    get_settings.cache_clear()


def _rows_from(conn: sa.Connection, seq: int) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(AuditEvent.__table__).where(AuditEvent.seq >= seq).order_by(AuditEvent.seq))
    return [dict(r._mapping) for r in rows]


def _payload(row: dict[str, Any], prev_hash: str) -> bytes:
    fields = ("seq", "ts", "actor", "action", "entity_type", "entity_id", "site", "before", "after")
    return event_payload(**{f: row[f] for f in fields}, prev_hash=prev_hash)


def _rewrite_from(seq: int, digest, key_id: str | None, **changes: Any) -> None:  # type: ignore[no-untyped-def]
    """As the database owner: change event ``seq`` and recompute every later link with ``digest``."""
    with owner_transaction() as conn:
        rows = _rows_from(conn, seq)
        prev = rows[0]["prev_hash"]
        rows[0].update(changes)
        for row in rows:
            new = digest(_payload(row, prev))
            conn.execute(
                sa.update(AuditEvent)
                .where(AuditEvent.seq == row["seq"])
                .values(**(changes if row["seq"] == seq else {}), prev_hash=prev, hash=new, key_id=key_id)
            )
            prev = new


# --- (a) the database refuses ------------------------------------------------------------------------


def test_the_database_refuses_to_update_delete_or_truncate_events(client, trail) -> None:  # type: ignore[no-untyped-def]
    engine = get_engine()
    attempts = [
        "UPDATE audit_event SET actor = 'mallory' WHERE seq = 3",
        "UPDATE audit_event SET hash = hash",
        "DELETE FROM audit_event WHERE seq = (SELECT MAX(seq) FROM audit_event)",
        "DELETE FROM audit_event",
    ]
    if engine.dialect.name == "postgresql":
        attempts.append("TRUNCATE audit_event")
    for statement in attempts:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    # through the ORM too
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), session_scope() as session:
        session.execute(sa.update(AuditEvent).where(AuditEvent.seq == 1).values(actor="mallory"))
    result = _verify(client, trail["admin"])
    assert result["valid"] and result["events"] == trail["head"]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT actor FROM audit_event WHERE seq = 3")).scalar() != "mallory"


# --- (b) removal of the newest events ----------------------------------------------------------------


@pytest.mark.parametrize("removed", [1, 4])
def test_removing_the_newest_events_is_found(client, trail, removed: int) -> None:  # type: ignore[no-untyped-def]
    head = trail["head"]
    # the owner lifts the guard and removes the last events: every remaining link still holds
    owner_sql("DELETE FROM audit_event WHERE seq > :keep", keep=head - removed)
    for params in ({}, {"full": "true"}, {"full": "false"}):
        result = _verify(client, trail["admin"], **params)
        assert result["valid"] is False, params
        assert result["first_bad_seq"] == head - removed + 1
        assert result["events"] == head - removed
        assert "newest events are missing" in result["reason"] and result["checkpoint_seq"] == head
    code, report, err = _cli_verify()
    assert code == 1 and report["first_bad_seq"] == head - removed + 1 and "missing" in err

    # new events appended afterwards never lower the checkpoint, nor hide the gap once they pass it
    for name in ("eve", "fay", "gus", "hal", "ida")[:removed]:
        r = _add_user(client, trail["admin"], name)
        assert r.status_code == 201
    result = _verify(client, trail["admin"])
    assert result["valid"] is False and result["first_bad_seq"] == head
    assert "rewritten" in result["reason"]


def _add_user(client: Any, admin: dict[str, str], name: str) -> Any:
    return client.post("/api/v1/users", json={"username": name}, headers=admin)


def _event_count(client: Any, admin: dict[str, str]) -> int:
    return client.get("/api/v1/audit-events", params={"limit": 1}, headers=admin).json()["total"]


def test_emptying_the_whole_trail_is_found(client, trail) -> None:  # type: ignore[no-untyped-def]
    owner_sql("DELETE FROM audit_event")
    result = _verify(client, trail["admin"])
    assert result["valid"] is False and result["first_bad_seq"] == 1 and result["events"] == 0
    assert result["head"] == GENESIS_HASH


# --- (c) a rewritten chain ---------------------------------------------------------------------------


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize("scheme", ["plain-sha256", "plain-sha256-as-keyed", "hmac-wrong-key"])
def test_a_rewritten_and_rehashed_chain_is_found(client, trail, scheme: str) -> None:  # type: ignore[no-untyped-def]
    target = 6
    if scheme == "hmac-wrong-key":
        wrong = secrets.token_bytes(32)
        _rewrite_from(
            target, lambda p: hmac.new(wrong, p, "sha256").hexdigest(), key_id_of(wrong), actor="mallory"
        )
    else:
        # the first edition's scheme: with no key_id (an "old" event), or keeping the real key's id
        key_id = None if scheme == "plain-sha256" else get_keyring().current
        _rewrite_from(target, _sha256, key_id, actor="mallory")
    result = _verify(client, trail["admin"])
    assert result["valid"] is False and result["first_bad_seq"] == target, result
    assert result["events"] == target - 1
    if scheme == "plain-sha256":
        assert "not keyed" in result["reason"]
    elif scheme == "hmac-wrong-key":
        assert "not in the keyring" in result["reason"]
    else:
        assert "does not match its hash" in result["reason"]
    code, report, _ = _cli_verify()
    assert code == 1 and report["first_bad_seq"] == target


def test_a_chain_rewritten_even_with_the_key_contradicts_the_head_checkpoint(client, trail) -> None:  # type: ignore[no-untyped-def]
    """Who steals the key but not the state directory can rewrite every hash, but not the checkpoint."""
    ring = get_keyring()
    _rewrite_from(4, lambda p: ring.sign(p), ring.current, actor="mallory")
    result = _verify(client, trail["admin"])
    assert result["valid"] is False and result["first_bad_seq"] == trail["head"]
    assert "rewritten" in result["reason"]


def test_the_hash_is_an_hmac_under_a_key_that_is_not_in_the_database(client, trail) -> None:  # type: ignore[no-untyped-def]
    path = Path(get_settings().state_dir) / KEYRING_FILE
    key = bytes.fromhex(path.read_text().split()[-1])
    with get_engine().connect() as conn:
        rows = _rows_from(conn, 1)
    for row in rows:
        assert row["key_id"] == key_id_of(key)
        assert row["hash"] == hmac.new(key, _payload(row, row["prev_hash"]), "sha256").hexdigest()
        assert row["hash"] != _sha256(_payload(row, row["prev_hash"]))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    if get_engine().dialect.name == "sqlite":
        db_file = Path(get_engine().url.database)  # type: ignore[arg-type]
        for f in (db_file, db_file.with_name(db_file.name + "-wal")):
            if f.exists():
                data = f.read_bytes()
                assert key not in data and key.hex().encode() not in data


# --- (d) the checkpoint --------------------------------------------------------------------------------


def test_a_tampered_checkpoint_is_found_and_kept(client, trail) -> None:  # type: ignore[no-untyped-def]
    head = trail["head"]
    path = checkpoint_path(HEAD)
    body = json.loads(path.read_text())
    assert body["seq"] == head and set(body) == {"seq", "hash", "key_id", "mac"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # an attacker who removed the last events lowers the checkpoint to match; without the key, the MAC fails
    owner_sql("DELETE FROM audit_event WHERE seq > :keep", keep=head - 2)
    with get_engine().connect() as conn:
        new_head = conn.execute(
            sa.text("SELECT hash FROM audit_event WHERE seq = :s"), {"s": head - 2}
        ).scalar()
    path.write_text(json.dumps({**body, "seq": head - 2, "hash": new_head}))
    result = _verify(client, trail["admin"])
    assert result["valid"] is False and "valid MAC" in result["reason"]
    code, _, err = _cli_verify()
    assert code == 1 and "valid MAC" in err

    # the next append does not overwrite the evidence
    assert _add_user(client, trail["admin"], "zed").status_code == 201
    assert json.loads(path.read_text())["seq"] == head - 2
    assert _verify(client, trail["admin"])["valid"] is False

    for garbage in ("", "{not json", json.dumps({**body, "mac": "0" * 64})):
        path.write_text(garbage)
        result = _verify(client, trail["admin"])
        assert result["valid"] is False and str(path) in result["reason"]


def test_without_a_checkpoint_the_keyed_chain_verifies_with_a_notice(client, trail) -> None:  # type: ignore[no-untyped-def]
    """A fresh state directory beside an existing database: nothing to compare the head with, said so."""
    for kind in (HEAD, VERIFIED):
        checkpoint_path(kind).unlink(missing_ok=True)
    result = _verify(client, trail["admin"])
    assert result["valid"] is True and result["checkpoint_seq"] is None
    assert "no head checkpoint" in result["notice"]
    assert "no head checkpoint" in runner.invoke(cli, ["audit", "verify"]).stderr
    # the next append writes it again
    assert _add_user(client, trail["admin"], "zed").status_code == 201
    result = _verify(client, trail["admin"])
    assert result["valid"] and result["notice"] is None and result["checkpoint_seq"] == trail["head"] + 1


def test_the_head_checkpoint_follows_commits_only_and_never_goes_back(client, trail) -> None:  # type: ignore[no-untyped-def]
    head = trail["head"]
    with pytest.raises(RuntimeError), session_scope() as session:
        record(session, actor="t", action="x.y", entity_type="t", entity_id="1")
        raise RuntimeError("rolled back")
    assert json.loads(checkpoint_path(HEAD).read_text())["seq"] == head
    # an event appended before a savepoint that rolls back: the checkpoint stays behind, never ahead
    with session_scope() as session:
        record(session, actor="t", action="x.y", entity_type="t", entity_id="2")
        with pytest.raises(sa.exc.DBAPIError), session.begin_nested():
            session.execute(sa.text("SELECT * FROM no_such_table"))
    assert json.loads(checkpoint_path(HEAD).read_text())["seq"] == head
    with session_scope() as session:
        record(session, actor="t", action="x.y", entity_type="t", entity_id="3")
        with session.begin_nested():  # a savepoint released: still not the commit
            record(session, actor="t", action="x.y", entity_type="t", entity_id="4")
            assert json.loads(checkpoint_path(HEAD).read_text())["seq"] == head
    assert json.loads(checkpoint_path(HEAD).read_text())["seq"] == head + 3
    assert write_checkpoint(HEAD, 1, "f" * 64) is False  # lower: refused
    assert json.loads(checkpoint_path(HEAD).read_text())["seq"] == head + 3
    assert _verify(client, trail["admin"])["valid"] is True


def test_a_walk_over_an_older_snapshot_is_no_false_alarm(client, trail) -> None:  # type: ignore[no-untyped-def]
    """A reader whose snapshot predates the latest commit (SQLite keeps it) sees a checkpoint ahead of it."""
    with session_scope(write=False) as session:
        session.execute(
            sa.select(sa.func.count()).select_from(AuditEvent)
        ).scalar_one()  # the snapshot starts
        assert _add_user(client, trail["admin"], "eve").status_code == 201  # commit + checkpoint
        assert json.loads(checkpoint_path(HEAD).read_text())["seq"] > trail["head"]
        result = verify_chain(session)
    assert result.valid is True, result
    assert result.events >= trail["head"]


def test_a_quick_verify_starts_after_the_last_full_one(client, trail) -> None:  # type: ignore[no-untyped-def]
    admin, head = trail["admin"], trail["head"]
    assert json.loads(checkpoint_path(VERIFIED).read_text())["seq"] == head  # the fixture's full walk
    for name in ("eve", "fay"):
        assert _add_user(client, admin, name).status_code == 201
    total = _event_count(client, admin)
    quick = _verify(client, admin, full="false")
    assert quick["valid"] and quick["from_seq"] == head + 1 and quick["events"] == total
    assert _cli_verify("--quick")[1]["from_seq"] == total + 1  # the quick walk moved the anchor too
    # what a quick walk does not re-read, a full walk does (the CLI's default)
    owner_sql("UPDATE audit_event SET actor = 'mallory' WHERE seq = 2")
    assert _verify(client, admin, full="false")["valid"] is True
    full = _verify(client, admin)
    assert full["valid"] is False and full["first_bad_seq"] == 2 and full["from_seq"] == 1
    code, report, _ = _cli_verify()
    assert code == 1 and report["first_bad_seq"] == 2


# --- (e) rotation ----------------------------------------------------------------------------------------


def test_events_before_and_after_a_rotation_verify(client, trail) -> None:  # type: ignore[no-untyped-def]
    admin, head = trail["admin"], trail["head"]
    path = Path(get_settings().state_dir) / KEYRING_FILE
    before = path.read_text().split()
    first = get_keyring().current
    out = runner.invoke(cli, ["audit", "rotate-key"])
    assert out.exit_code == 0, out.output
    after = path.read_text().split()
    assert after[:-1] == before and len(after) == len(before) + 1
    second = key_id_of(bytes.fromhex(after[-1]))
    assert second != first and second in out.stdout
    assert _add_user(client, admin, "eve").status_code == 201
    result = _verify(client, admin)
    assert result["valid"] and result["events"] == head + 2
    events = audit_events(client, admin)
    assert {e["key_id"] for e in events[:head]} == {first}
    assert [e["key_id"] for e in events[head:]] == [second, second]
    assert events[head]["action"] == "audit.rotate_key" and events[head]["after"]["previous_key_id"] == first
    assert json.loads(checkpoint_path(HEAD).read_text())["key_id"] == second
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0

    # dropping the old key from the keyring leaves the older events unverifiable: it is needed
    path.write_text(after[-1] + "\n")
    result = _verify(client, admin)
    assert (
        result["valid"] is False and result["first_bad_seq"] == 1 and "not in the keyring" in result["reason"]
    )
    path.write_text("\n".join(after) + "\n")
    assert _verify(client, admin)["valid"] is True


def test_rotation_of_a_key_given_in_the_environment(client, trail, fresh_settings) -> None:  # type: ignore[no-untyped-def]
    admin = trail["admin"]
    k1, k2 = secrets.token_hex(32), secrets.token_bytes(32).hex()
    fresh_settings.setenv("AIREG_AUDIT_KEY", k1)
    get_settings.cache_clear()
    assert _add_user(client, admin, "eve").status_code == 201
    out = runner.invoke(cli, ["audit", "rotate-key"])  # the environment's key is rotated by the operator
    assert out.exit_code == 2 and "AIREG_AUDIT_OLD_KEYS" in out.output

    fresh_settings.setenv("AIREG_AUDIT_KEY", base64.b64encode(bytes.fromhex(k2)).decode())  # base64 works too
    fresh_settings.setenv("AIREG_AUDIT_OLD_KEYS", f"{k1}, ")
    get_settings.cache_clear()
    assert _add_user(client, admin, "fay").status_code == 201
    result = _verify(client, admin)
    assert result["valid"] is True and result["events"] == trail["head"] + 2
    events = audit_events(client, admin)[trail["head"] :]
    assert [e["key_id"] for e in events] == [key_id_of(bytes.fromhex(k1)), key_id_of(bytes.fromhex(k2))]

    fresh_settings.delenv("AIREG_AUDIT_OLD_KEYS")
    get_settings.cache_clear()
    result = _verify(client, admin)
    assert result["valid"] is False and result["first_bad_seq"] == trail["head"] + 1

    fresh_settings.setenv("AIREG_AUDIT_KEY", "too-short")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="at least 32"):
        get_settings()


# --- (f) the keyring file ------------------------------------------------------------------------------


_MAKE_KEYRING = """
import sys, time
start = float(sys.argv[1])
while time.time() < start:
    pass
from app.audit.keys import get_keyring
print(get_keyring().current)
"""


def test_the_keyring_is_made_once_when_processes_start_together(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIREG_AUDIT_")}
    env["AIREG_STATE_DIR"] = str(state)
    start = time.time() + 2.0  # both interpreters are up by then and race for the file
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _MAKE_KEYRING, str(start)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    keyring = state / KEYRING_FILE
    lines = keyring.read_text().split()
    assert len(lines) == 1 and ids == {key_id_of(bytes.fromhex(lines[0]))}
    assert stat.S_IMODE(keyring.stat().st_mode) == 0o600
    assert sorted(p.name for p in state.iterdir()) == [KEYRING_FILE]  # no temporary file left behind


def test_the_keyring_is_made_once_by_threads_too(tmp_path: Path, fresh_settings) -> None:  # type: ignore[no-untyped-def]
    fresh_settings.setenv("AIREG_STATE_DIR", str(tmp_path))
    fresh_settings.delenv("AIREG_AUDIT_KEY", raising=False)
    get_settings.cache_clear()
    barrier, seen = threading.Barrier(8), []

    def make() -> None:
        barrier.wait()
        seen.append(get_keyring().current)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(seen) == 8 and len(set(seen)) == 1
    assert len((tmp_path / KEYRING_FILE).read_text().split()) == 1


# --- (g) upgrading a first-edition trail ----------------------------------------------------------------

FIRST_EDITION = "eaa662cac373"


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request, tmp_path: Path, fresh_settings) -> Iterator[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    """A new database at the first edition's revision, and a state directory of its own."""
    fresh_settings.setenv("AIREG_STATE_DIR", str(tmp_path / "state"))
    fresh_settings.delenv("AIREG_AUDIT_KEY", raising=False)
    get_settings.cache_clear()
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}", None
        return
    if not TEST_PG_URL:
        pytest.skip("AIREG_TEST_DATABASE_URL is not set")
    schema = f"aireg_old_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(TEST_PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield TEST_PG_URL, schema
    finally:
        make_engine(TEST_PG_URL, schema).dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


_OLD_COLUMNS = ("seq", "ts", "actor", "action", "entity_type", "entity_id", "site", "before", "after")


def _first_edition_trail(engine: sa.Engine, count: int, *, break_at: int | None = None) -> list[str]:
    """Append ``count`` events hashed as the first edition did (plain SHA-256); returns their hashes."""
    from datetime import UTC, datetime, timedelta

    table = sa.table(
        "audit_event",
        *(
            sa.column(c)
            for c in ("seq", "actor", "action", "entity_type", "entity_id", "site", "prev_hash", "hash")
        ),
        sa.column("ts", AuditEvent.__table__.c.ts.type),
        sa.column("before", sa.JSON()),
        sa.column("after", sa.JSON()),
    )
    prev, rows = GENESIS_HASH, []
    start = datetime(2026, 11, 30, 12, tzinfo=UTC)
    for seq in range(1, count + 1):
        row = {
            "seq": seq,
            "ts": start + timedelta(seconds=seq, microseconds=seq),
            "actor": "admin",
            "action": "user.create",
            "entity_type": "user",
            "entity_id": f"u{seq}",
            "site": "STR" if seq % 2 else None,
            "before": None,
            "after": {"username": f"u{seq}", "n": seq, "nested": {"é": [1, 2.5, None]}},
        }
        digest = _sha256(event_payload(**row, prev_hash=prev))
        if seq == break_at:
            row["actor"] = "mallory"  # edited after it was hashed
        rows.append({**row, "prev_hash": prev, "hash": digest})
        prev = digest
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    return [r["hash"] for r in rows]


def _verify_at(engine: sa.Engine) -> Any:
    with Session(engine) as session:
        return verify_chain(session)


def test_upgrading_a_first_edition_trail_rekeys_it(old_database) -> None:  # type: ignore[no-untyped-def]
    url, schema = old_database
    cfg = alembic_config(url, schema)
    engine = make_engine(url, schema)
    command.upgrade(cfg, FIRST_EDITION)
    old_hashes = _first_edition_trail(engine, 12)

    command.upgrade(cfg, "head")
    ring = get_keyring()
    result = _verify_at(engine)
    assert result.valid is True and result.events == 12 and result.first_bad_seq is None, result
    with engine.connect() as conn:
        rows = _rows_from(conn, 1)
    assert {r["key_id"] for r in rows} == {ring.current}
    assert [r["hash"] for r in rows] != old_hashes
    assert all(r["hash"] == ring.sign(_payload(r, r["prev_hash"])) for r in rows)
    # and the table is append-only from now on
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_event WHERE seq = 12")

    # down again: the first edition's plain SHA-256 chain, exactly as it was
    command.downgrade(cfg, FIRST_EDITION)
    with engine.connect() as conn:
        hashes = conn.execute(sa.text("SELECT hash FROM audit_event ORDER BY seq")).scalars().all()
        assert "key_id" not in {c["name"] for c in sa.inspect(conn).get_columns("audit_event")}
    assert hashes == old_hashes
    command.upgrade(cfg, "head")
    assert _verify_at(engine).valid is True


def test_upgrading_a_broken_first_edition_trail_leaves_it_as_it_was(old_database) -> None:  # type: ignore[no-untyped-def]
    url, schema = old_database
    cfg = alembic_config(url, schema)
    engine = make_engine(url, schema)
    command.upgrade(cfg, FIRST_EDITION)
    old_hashes = _first_edition_trail(engine, 9, break_at=5)

    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        rows = _rows_from(conn, 1)
    assert [r["hash"] for r in rows] == old_hashes and {r["key_id"] for r in rows} == {None}
    result = _verify_at(engine)
    assert result.valid is False and result.first_bad_seq == 1
    assert "not keyed" in result.reason and "breaks at event 5: event content" in result.reason


@pytest.mark.parametrize("length", [32, 63, 64, 65, 200])
def test_the_keyed_hash_is_hmac_sha256_for_any_key_length(length: int) -> None:
    from app.audit.keys import KeyedHash

    key = secrets.token_bytes(length)
    for message in (b"", b"x", secrets.token_bytes(1000)):
        assert KeyedHash(key).hexdigest(message) == hmac.new(key, message, "sha256").hexdigest()


def test_a_lost_keyring_is_never_silently_replaced(client, trail) -> None:  # type: ignore[no-untyped-def]
    """With events in the trail, a missing keyring stops writes with a clear error (a fresh key would leave
    every earlier event unverifiable); restoring the file lets them go on."""
    path = Path(get_settings().state_dir) / KEYRING_FILE
    saved = path.read_bytes()
    path.unlink()
    try:
        r = _add_user(client, trail["admin"], "zed")
        assert r.status_code == 500 and r.headers["content-type"].startswith("application/problem+json")
        assert not path.exists()
        assert audit_events(client, trail["admin"], entity_id="zed") == []
    finally:
        path.write_bytes(saved)
        path.chmod(0o600)
    assert _add_user(client, trail["admin"], "zed").status_code == 201
    assert _verify(client, trail["admin"])["valid"] is True
