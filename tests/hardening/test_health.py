"""Liveness and readiness endpoints."""

from __future__ import annotations

from typing import Any

import pytest

from app import health
from tests.systems.helpers import assert_problem


def test_healthz_answers_without_login(client: Any) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_checks_database_migrations_and_catalogue(client: Any) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "catalog": "ok"}}


def test_readyz_is_503_when_the_schema_is_behind(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "migration_heads", lambda: frozenset({"ffffffffffff"}))
    r = client.get("/readyz")
    problem = assert_problem(r, 503)
    assert problem["checks"]["migrations"].endswith("code expects ['ffffffffffff']")
    assert problem["checks"]["database"] == "ok"


def test_readyz_is_503_when_the_database_is_unreachable(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    broken = sa.create_engine(
        "postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    monkeypatch.setattr(health, "get_engine", lambda: broken)
    problem = assert_problem(client.get("/readyz"), 503)
    assert problem["checks"]["database"].startswith("unreachable")
    assert "nobody" not in problem["detail"]  # no connection string leaks


def test_readyz_is_503_when_the_catalogue_cannot_load(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.classification.catalog as catalog

    def broken() -> None:
        raise RuntimeError("risk_catalog/ai_act.yaml: bad")

    monkeypatch.setattr(catalog, "get_catalog", broken)
    problem = assert_problem(client.get("/readyz"), 503)
    assert problem["checks"]["catalog"].startswith("not loaded")
