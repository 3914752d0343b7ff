"""Consistent online backups and restores of the registry database.

SQLite: the sqlite3 online backup API copies a consistent snapshot page by page while the service keeps
running. PostgreSQL: ``pg_dump --format=custom`` under a snapshot exported from a transaction that also
reads the audit head, so the head reported for a backup is exactly the one inside it; ``pg_restore`` puts
it back (schema and all) in one transaction. A restore refuses to overwrite a database that holds data
unless forced, then applies pending migrations and verifies the audit chain.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from app.audit.service import GENESIS_HASH
from app.db import dispose_engines, forget_migrations, get_engine, is_sqlite, migrate
from app.settings import get_settings

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_CUSTOM_MAGIC = b"PGDMP"


class BackupError(RuntimeError):
    """A backup or restore that cannot be done, with the reason for the operator."""


@dataclass(frozen=True)
class Snapshot:
    """What a backup or a restored database holds: its backend, audit event count and audit head hash."""

    backend: str
    events: int
    head: str


def _head_of(conn: sa.Connection) -> tuple[int, str]:
    row = conn.execute(sa.text("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")).first()
    count = conn.execute(sa.text("SELECT count(*) FROM audit_event")).scalar_one()
    return int(count), (row[1] if row else GENESIS_HASH)


# --- SQLite --------------------------------------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _sqlite_head(path: Path) -> tuple[int, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1").fetchone()
        count = conn.execute("SELECT count(*) FROM audit_event").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not an aireg database: {exc}") from exc
    finally:
        conn.close()
    return int(count), (row[1] if row else GENESIS_HASH)


def _backup_sqlite(url: str, dest: Path) -> Snapshot:
    source = _sqlite_path(url)
    if not source.exists():
        raise BackupError(f"the database file {source} does not exist")
    tmp = dest.with_name(dest.name + ".partial")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)  # a consistent snapshot even while the service writes
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()
    os.replace(tmp, dest)
    events, head = _sqlite_head(dest)
    return Snapshot("sqlite", events, head)


def _restore_sqlite(url: str, src_file: Path) -> None:
    target = _sqlite_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    dispose_engines()
    src = sqlite3.connect(f"file:{src_file}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)  # replaces every page of the target, under its write lock
    finally:
        dst.close()
        src.close()


# --- PostgreSQL ----------------------------------------------------------------------------------------


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and an environment carrying it (never on a command line)."""
    parsed: URL = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} is not installed (PostgreSQL client tools: apt-get install postgresql-client)"
        )
    return path


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed: {result.stderr.strip()[-2000:]}")
    return result


def _backup_postgres(url: str, schema: str | None, dest: Path) -> Snapshot:
    pg_dump = _tool("pg_dump")
    uri, env = _libpq(url)
    engine = get_engine()
    tmp = dest.with_name(dest.name + ".partial")
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot_id = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            events, head = _head_of(conn)
            cmd = [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot_id}"]
            if schema:
                cmd.append(f"--schema={schema}")
            _run([*cmd, f"--file={tmp}", f"--dbname={uri}"], env)
    os.replace(tmp, dest)
    return Snapshot("postgresql", events, head)


def dump_schemas(path: Path) -> set[str]:
    """The schemas whose tables a custom-format dump holds."""
    listing = _run([_tool("pg_restore"), "--list", str(path)], dict(os.environ)).stdout
    schemas: set[str] = set()
    for line in listing.splitlines():
        if line.startswith(";"):
            continue
        parts = line.split()
        if len(parts) >= 6 and parts[3] == "TABLE" and parts[4] != "DATA":
            schemas.add(parts[4])
    return schemas


PG_EXTENSION = "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"


def _restore_postgres(url: str, schema: str | None, src_file: Path) -> None:
    pg_restore = _tool("pg_restore")
    wanted = schema or "public"
    found = dump_schemas(src_file)
    if found and found != {wanted}:
        raise BackupError(
            f"the backup holds schema {', '.join(sorted(found))} but the configured schema is {wanted}; "
            "set AIREG_DATABASE_SCHEMA to match"
        )
    uri, env = _libpq(url)
    dispose_engines()
    # Extensions are not in a one-schema dump; the systems search indexes name pg_trgm's operator class in
    # schema public, where migration b8e0d5f3a467 installs it: the fresh database needs it first.
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(PG_EXTENSION)
    finally:
        engine.dispose()
    _run(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={uri}",
            str(src_file),
        ],
        env,
    )


# --- public API ----------------------------------------------------------------------------------------


def backup(dest: Path) -> Snapshot:
    """Write a consistent snapshot of the configured database to ``dest``; returns what it holds."""
    settings = get_settings()
    migrate()
    dest = dest.resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if is_sqlite(settings.database_url):
        return _backup_sqlite(settings.database_url, dest)
    return _backup_postgres(settings.database_url, settings.database_schema, dest)


def backup_kind(path: Path) -> str:
    """``sqlite`` or ``postgresql``, read from the file's first bytes."""
    with path.open("rb") as fh:
        magic = fh.read(16)
    if magic.startswith(SQLITE_MAGIC):
        return "sqlite"
    if magic.startswith(PG_CUSTOM_MAGIC):
        return "postgresql"
    raise BackupError(
        f"{path} is not an aireg backup (neither a SQLite database nor a pg_dump custom archive)"
    )


def database_rows() -> int:
    """How many rows the configured database's aireg tables hold (0 for a new or missing database)."""
    from app.models import metadata

    settings = get_settings()
    if is_sqlite(settings.database_url):
        path = _sqlite_path(settings.database_url)
        if not path.exists():
            return 0
    engine = get_engine()
    total = 0
    with engine.connect() as conn:
        existing = set(sa.inspect(conn).get_table_names())
        for table in metadata.sorted_tables:
            if table.name in existing:
                total += conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    return total


def restore(src: Path, *, force: bool = False) -> Snapshot:
    """Replace the configured database with a backup; refuses a database that holds data unless ``force``.

    Pending migrations are applied afterwards (a backup of an older release comes up to date), and the
    returned snapshot reports the restored audit trail. A restore is a deliberate rollback of the trail: once
    the restored keyed chain verifies, the audit checkpoints outside the database restart at its head (else
    they would report every event since the backup as removed).
    """
    from app.audit.service import reset_checkpoints
    from app.db import session_scope

    settings = get_settings()
    src = src.resolve()
    if not src.is_file():
        raise BackupError(f"{src} does not exist")
    kind = backup_kind(src)
    backend = "sqlite" if is_sqlite(settings.database_url) else "postgresql"
    if kind != backend:
        raise BackupError(f"{src} is a {kind} backup but the configured database is {backend}")
    rows = database_rows()
    if rows and not force:
        raise BackupError(
            f"the configured database is not empty ({rows} rows); restore with --force to overwrite it"
        )
    if backend == "sqlite":
        _restore_sqlite(settings.database_url, src)
    else:
        _restore_postgres(settings.database_url, settings.database_schema, src)
    dispose_engines()
    forget_migrations()
    migrate()
    from app.identity.authz import reset_authorizer

    reset_authorizer()
    with session_scope(write=False) as session:
        result = reset_checkpoints(session)
    if not result.valid:
        raise BackupError(
            f"the restored audit chain does not verify "
            f"(first bad event {result.first_bad_seq}: {result.reason})"
        )
    return Snapshot(backend, result.events, result.head)
