"""`aireg backup` / `aireg restore`: consistent snapshots, refusal to overwrite data, identical audit head."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from app.cli import app as cli
from app.db import dispose_engines, forget_migrations
from app.settings import get_settings

runner = CliRunner()
HEAD = re.compile(r"(\d+) audit events, head ([0-9a-f]{64})")


def _head(client: Any, admin: dict[str, str]) -> dict[str, Any]:
    r = client.get("/api/v1/audit-events/verify", headers=admin)
    assert r.status_code == 200, r.text
    return r.json()


def _populate(client: Any, admin: dict[str, str]) -> None:
    for i in range(3):
        r = client.post(
            "/api/v1/systems",
            json={"name": f"S{i}", "purpose": "p", "site": "STR", "line": "BODY1", "business_owner": "admin"},
            headers=admin,
        )
        assert r.status_code == 201, r.text


@pytest.fixture
def other_database(database: tuple[str, str | None]) -> Iterator[tuple[str, str | None]]:
    """Point the settings at a fresh, empty database (a new SQLite file or a new PostgreSQL database)."""
    url, schema = database
    saved = {k: os.environ.get(k) for k in ("AIREG_DATABASE_URL", "AIREG_DATABASE_SCHEMA")}
    created_pg: str | None = None
    if url.startswith("sqlite"):
        target = url.rsplit("/", 1)[0] + f"/restored-{uuid.uuid4().hex[:8]}.db"
    else:
        created_pg = f"aireg_restore_{uuid.uuid4().hex[:10]}"
        admin_engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{created_pg}"')
        admin_engine.dispose()
        target = url.rsplit("/", 1)[0] + f"/{created_pg}"
    dispose_engines()
    os.environ["AIREG_DATABASE_URL"] = target
    get_settings.cache_clear()
    forget_migrations()
    try:
        yield target, schema
    finally:
        dispose_engines()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        forget_migrations()
        if created_pg:
            admin_engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
            with admin_engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{created_pg}" WITH (FORCE)')
            admin_engine.dispose()


@pytest.fixture
def populated(client: Any, admin: dict[str, str], plant: Any) -> dict[str, Any]:
    _populate(client, admin)
    before = _head(client, admin)
    assert before["valid"] and before["events"] > 5
    return before


def test_round_trip_into_a_fresh_database(populated: dict[str, Any], tmp_path: Path, request: Any) -> None:
    backup_file = tmp_path / "aireg.backup"
    r = runner.invoke(cli, ["backup", str(backup_file)])
    assert r.exit_code == 0, r.output
    events, head = HEAD.search(r.output).groups()
    assert (int(events), head) == (populated["events"], populated["head"])
    assert backup_file.stat().st_size > 0

    request.getfixturevalue("other_database")  # settings now name a new, empty database
    r = runner.invoke(cli, ["restore", str(backup_file)])
    assert r.exit_code == 0, r.output
    events, head = HEAD.search(r.output).groups()
    assert (int(events), head) == (populated["events"], populated["head"])
    r = runner.invoke(cli, ["audit", "verify"])
    assert r.exit_code == 0 and f'"head": "{populated["head"]}"' in r.output

    # now the restored database holds data: a second restore is refused without --force
    r = runner.invoke(cli, ["restore", str(backup_file)])
    assert r.exit_code == 1
    assert "not empty" in r.output and "--force" in r.output
    r = runner.invoke(cli, ["restore", "--force", str(backup_file)])
    assert r.exit_code == 0, r.output
    assert populated["head"] in r.output


def test_restore_over_live_data_needs_force_and_then_rolls_back_later_changes(
    client: Any, admin: dict[str, str], populated: dict[str, Any], tmp_path: Path
) -> None:
    backup_file = tmp_path / "snap.backup"
    assert runner.invoke(cli, ["backup", str(backup_file)]).exit_code == 0
    _populate(client, admin)  # changes after the backup
    assert _head(client, admin)["head"] != populated["head"]

    r = runner.invoke(cli, ["restore", str(backup_file)])
    assert r.exit_code == 1 and "not empty" in r.output
    assert _head(client, admin)["events"] > populated["events"]  # nothing was touched

    r = runner.invoke(cli, ["restore", "--force", str(backup_file)])
    assert r.exit_code == 0, r.output
    after = _head(client, admin)
    assert (after["head"], after["events"], after["valid"]) == (populated["head"], populated["events"], True)
    r = client.get("/api/v1/systems", headers=admin)
    assert r.json()["total"] == 3


def test_restore_refuses_files_that_are_not_backups(db: None, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a backup at all")
    r = runner.invoke(cli, ["restore", "--force", str(junk)])
    assert r.exit_code == 1 and "not an aireg backup" in r.output
    r = runner.invoke(cli, ["restore", str(tmp_path / "missing.backup")])
    assert r.exit_code == 1 and "does not exist" in r.output


def test_restore_refuses_a_backup_of_the_other_backend(db: None, tmp_path: Path) -> None:
    other = tmp_path / "other.backup"
    if get_settings().database_url.startswith("sqlite"):
        other.write_bytes(b"PGDMP" + b"\0" * 100)
        expected = "is a postgresql backup"
    else:
        import sqlite3

        sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
        expected = "is a sqlite backup"
    r = runner.invoke(cli, ["restore", "--force", str(other)])
    assert r.exit_code == 1 and expected in r.output
