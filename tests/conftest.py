"""Test database per run: a fresh SQLite file, or a fresh schema on PostgreSQL (AIREG_TEST_DATABASE_URL).

The real Alembic migrations build the schema once per run; each test starts from empty tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

TEST_PG_URL = os.environ.get("AIREG_TEST_DATABASE_URL")


def _configure_environment(tmp_root: Path) -> tuple[str, str | None]:
    if TEST_PG_URL:
        schema = f"aireg_test_{uuid.uuid4().hex[:10]}"
        engine = sa.create_engine(TEST_PG_URL)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        engine.dispose()
        return TEST_PG_URL, schema
    return f"sqlite:///{tmp_root / 'aireg-test.db'}", None


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str | None]]:
    url, schema = _configure_environment(tmp_path_factory.mktemp("db"))
    os.environ["AIREG_DATABASE_URL"] = url
    if schema:
        os.environ["AIREG_DATABASE_SCHEMA"] = schema
    else:
        os.environ.pop("AIREG_DATABASE_SCHEMA", None)
    os.environ["AIREG_SECRET_KEY"] = "test-secret-key-0123456789abcdef"
    # audit keys and checkpoints: a keyring file made at first use in a state directory of this session's own
    os.environ["AIREG_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    os.environ.pop("AIREG_AUDIT_KEY", None)
    os.environ.pop("AIREG_AUDIT_OLD_KEYS", None)
    from app.db import dispose_engines, forget_migrations, migrate
    from app.settings import get_settings

    get_settings.cache_clear()
    forget_migrations()
    migrate()
    yield url, schema
    dispose_engines()
    if schema:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        engine.dispose()


def _empty_tables() -> None:
    """Empty every table as the database owner would: the audit trail's append-only guard is lifted for it."""
    from app.audit import guard
    from app.audit.checkpoint import remove_checkpoints
    from app.db import get_engine, set_clock_offset
    from app.identity.authz import reset_authorizer
    from app.models import metadata

    engine = get_engine()
    tables = [t for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # no user triggers fire
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " CASCADE")
        else:
            guard.uninstall(conn)
            for table in tables:
                conn.execute(table.delete())
            guard.install(conn)
    remove_checkpoints()  # the trail starts again, and so do its checkpoints
    reset_authorizer()
    set_clock_offset(None)


@pytest.fixture
def db(database: tuple[str, str | None]) -> Iterator[None]:
    _empty_tables()
    yield
    _empty_tables()


@pytest.fixture
def client(db: None) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def make_user(db: None) -> Callable[..., dict[str, str]]:
    """A user with role grants; returns auth headers: ``make_user("bob", ("business_owner", "STR"))``."""
    from app.db import session_scope
    from app.identity import service
    from app.identity.models import Role, UserCreate

    def factory(username: str, *grants: tuple[str, str], password: str | None = None) -> dict[str, str]:
        with session_scope() as session:
            service.create_user(session, UserCreate(username=username, password=password), actor="test")
            for role, site in grants:
                service.grant_role(session, username, Role(role), site, actor="test")
            token = service.issue_token(session, username, name="test", expires_days=30, actor="test").token
        return {"Authorization": f"Bearer {token}"}

    return factory


@pytest.fixture
def admin(make_user: Callable[..., dict[str, str]]) -> dict[str, str]:
    return make_user("admin", ("admin", "*"), ("compliance_officer", "*"))


@pytest.fixture
def plant(client: object, admin: dict[str, str]) -> dict[str, object]:
    """Two plants with lines and zones, created through the API."""
    for code, lines in (("STR", ["BODY1", "ASM2"]), ("LYO", ["SMT1"])):
        r = client.post(  # type: ignore[attr-defined]
            "/api/v1/sites",
            json={"code": code, "name": f"Plant {code}", "lines": [{"code": c, "name": c} for c in lines]},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        for zone, level, target in ((f"{code}-CTL", 2, 3), (f"{code}-ENT", 4, 2)):
            r = client.post(  # type: ignore[attr-defined]
                "/api/v1/zones",
                json={
                    "code": zone,
                    "name": zone,
                    "site": code,
                    "purdue_level": level,
                    "sl_target": {f"FR{i}": target for i in range(1, 8)},
                },
                headers=admin,
            )
            assert r.status_code == 201, r.text
    return {"sites": ["STR", "LYO"]}
