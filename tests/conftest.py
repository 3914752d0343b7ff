"""Test database per run: a fresh SQLite file, or a fresh schema on PostgreSQL (AIREG_TEST_DATABASE_URL).

The real Alembic migrations build the schema once per run; each test starts from empty tables. The fixtures
shared by several test packages live here too (the approval team, the operations people); their data and
helpers are in tests/factories.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests import factories
from tests.approvals.helpers import DIGEST_V1, DIGEST_V2, classify
from tests.factories import TEAM, Ops, create_user, empty_tables, token_headers

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


@pytest.fixture
def db(database: tuple[str, str | None]) -> Iterator[None]:
    empty_tables()
    yield
    empty_tables()


@pytest.fixture
def client(db: None) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def make_user(db: None) -> Callable[..., dict[str, str]]:
    """A user with role grants; returns auth headers: ``make_user("bob", ("business_owner", "STR"))``."""
    return create_user


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


# -- the approval tests' team and systems (also used by the client, hardening and integration tests) --------


@pytest.fixture
def team(client: Any, plant: dict[str, object]) -> dict[str, dict[str, str]]:
    """Auth headers per username; ``admin`` is the plant fixture's admin with a long-lived token."""
    headers = {name: factories.long_lived_user(name, grant) for name, grant in TEAM.items()}
    headers["admin"] = token_headers("admin", expires_days=3650, name="long")
    return headers


@pytest.fixture
def make_system(client: Any, team: dict[str, dict[str, str]]) -> Callable[..., str]:
    """Create a system owned by bob (with versions v1, v2) and optionally classify it; returns its id."""
    admin = team["admin"]

    def factory(
        answers: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        **fields: Any,
    ) -> str:
        body = {
            "name": "Weld seam inspection",
            "purpose": "camera-based weld seam defect detection",
            "site": "STR",
            "line": "BODY1",
            "business_owner": "bob",
            **fields,
        }
        r = client.post("/api/v1/systems", json=body, headers=admin)
        assert r.status_code == 201, r.text
        system_id = r.json()["id"]
        for version, digest in (("v1", DIGEST_V1), ("v2", DIGEST_V2)):
            r = client.post(
                f"/api/v1/systems/{system_id}/versions",
                json={
                    "version": version,
                    "artifact_digest": digest,
                    "metrics": metrics
                    if metrics is not None
                    else {"recall": 0.98, "false_reject_rate": 0.01},
                },
                headers=admin,
            )
            assert r.status_code == 201, r.text
        if answers is not None:
            classify(client, admin, system_id, answers)
        return system_id

    return factory


# -- the operations tests' people and driver (also used by the integration tests) ----------------------------


@pytest.fixture
def long_lived_user(db: None) -> Callable[..., dict[str, str]]:
    """Like ``make_user``, with tokens valid for ten years, so tests may travel in time."""
    return factories.long_lived_user


@pytest.fixture
def ops(
    client: Any, admin: dict[str, str], long_lived_user: Callable[..., dict[str, str]], plant: Any
) -> Ops:
    """People: bob and bea (business owners in STR and LYO), carol (compliance), rita (risk), otto (OT
    security), dora (DPO), sam (safety), pip (mlops pipeline), audrey (auditor in STR), lou (business owner in
    LYO only)."""
    make_user = long_lived_user
    users = {
        "admin": admin,  # the plant's admin (token valid 30 days: do not travel with it)
        "bob": make_user("bob", ("business_owner", "STR"), ("business_owner", "LYO")),
        "bea": make_user("bea", ("business_owner", "STR"), ("business_owner", "LYO")),
        "lou": make_user("lou", ("business_owner", "LYO")),
        "carol": make_user("carol", ("compliance_officer", "*")),
        "rita": make_user("rita", ("risk_officer", "*")),
        "otto": make_user("otto", ("ot_security", "*")),
        "dora": make_user("dora", ("dpo", "*")),
        "sam": make_user("sam", ("safety_engineer", "*")),
        "pip": make_user("pip", ("mlops", "*")),
        "audrey": make_user("audrey", ("auditor", "STR")),
    }
    return Ops(client, users)
