"""The Alembic migrations: up, down to nothing, up again, and no drift from the models (``alembic check``)."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.db import MIGRATIONS_DIR, alembic_config, make_engine
from app.models import include_object, metadata

TEST_PG_URL = os.environ.get("AIREG_TEST_DATABASE_URL")


def _tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def _drift(engine: sa.Engine) -> list[object]:
    """What ``alembic check`` would report: differences between the migrated schema and the models."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object}
        )
        return list(compare_metadata(context, metadata))


def _round_trip(url: str, schema: str | None) -> None:
    cfg = alembic_config(url, schema)
    engine = make_engine(url, schema)
    head = ScriptDirectory.from_config(cfg).get_current_head()

    command.upgrade(cfg, "head")
    assert set(metadata.tables) <= _tables(engine)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
    assert _drift(engine) == []

    command.downgrade(cfg, "base")
    assert _tables(engine) <= {"alembic_version"}  # every table is gone
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() is None

    command.upgrade(cfg, "head")
    assert set(metadata.tables) <= _tables(engine)
    assert _drift(engine) == []
    engine.dispose()


def test_single_head_with_a_dated_name():
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert len(script.get_heads()) == 1
    for path in Path(MIGRATIONS_DIR, "versions").glob("*.py"):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{4}_[a-z0-9_]+\.py", path.name), path.name


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'fresh.db'}", None)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema (dropped afterwards)."""
    if not TEST_PG_URL:
        pytest.skip("AIREG_TEST_DATABASE_URL is not set")
    schema = f"aireg_mig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(TEST_PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    yield schema
    make_engine(TEST_PG_URL, schema).dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def test_postgresql_upgrade_downgrade_upgrade(pg_schema: str) -> None:
    assert TEST_PG_URL
    _round_trip(TEST_PG_URL, pg_schema)
    # everything landed in the fresh schema, nothing in public
    admin = sa.create_engine(TEST_PG_URL)
    with admin.connect() as conn:
        in_schema = set(sa.inspect(conn).get_table_names(schema=pg_schema))
    admin.dispose()
    assert set(metadata.tables) <= in_schema
