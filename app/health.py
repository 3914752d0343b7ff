"""Liveness and readiness for load balancers and Kubernetes: ``/healthz`` and ``/readyz`` (no login)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.db import alembic_config, get_engine
from app.problems import PROBLEM_JSON, problem

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


@lru_cache
def migration_heads() -> frozenset[str]:
    """The head revision(s) of ``migrations/``."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def readiness_checks() -> dict[str, str]:
    """``ok`` or a short reason for each of: database reachable, schema at head, catalogue loaded."""
    from alembic.runtime.migration import MigrationContext

    from app.classification.catalog import get_catalog
    from app.compliance.frameworks import get_frameworks

    checks: dict[str, str] = {}
    try:
        with get_engine().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
            heads = migration_heads()
            checks["migrations"] = (
                "ok"
                if current == heads
                else (f"database at {sorted(current) or 'no revision'}, code expects {sorted(heads)}")
            )
    except Exception as exc:
        checks.setdefault("database", f"unreachable: {type(exc).__name__}")
        checks.setdefault("migrations", "unknown")
    try:
        get_catalog()
        get_frameworks()
        checks["catalog"] = "ok"
    except Exception as exc:
        checks["catalog"] = f"not loaded: {type(exc).__name__}"
    return checks


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    """Always 200 while the process serves requests; touches nothing else."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: database reachable, migrations at head, catalogue loaded",
    responses={503: {"description": "not ready", "content": {PROBLEM_JSON: {}}}},
)
def readyz() -> Readiness | JSONResponse:
    """200 when this worker can serve; 503 (problem+json, naming the failed checks) otherwise."""
    checks = readiness_checks()
    if all(v == "ok" for v in checks.values()):
        return Readiness(status="ready", checks=checks)
    failed = ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
    return problem(503, f"not ready ({failed})", title="Service unavailable", checks=checks)
