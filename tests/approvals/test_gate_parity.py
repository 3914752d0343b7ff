"""The release gate refuses a bad token exactly as every other endpoint does (one set of token rules).

For each kind of bad token, ``GET /api/v1/systems`` (the regular dependency) and ``GET
/api/v1/release-permission`` (the gate's own statement; on PostgreSQL its async pool) answer with the same
status and detail, and each refusal is counted against the client like the others.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.factories import create_user

GATE = "/api/v1/release-permission"
GATE_PARAMS = {"system": "AIS-000001", "version": "v1"}
API = "/api/v1/systems"


def _issued(username: str) -> tuple[str, str]:
    """A fresh token of ``username``: (id, token)."""
    from app.db import session_scope
    from app.identity import service

    with session_scope() as session:
        issued = service.issue_token(session, username, name="parity", expires_days=1, actor="test")
    return issued.id, issued.token


def _malformed() -> str:
    return "nope"


def _unknown() -> str:
    return "aireg_" + "x" * 43


def _revoked() -> str:
    from app.db import session_scope
    from app.identity import service

    token_id, token = _issued("pia")
    with session_scope() as session:
        service.revoke_token(session, token_id, actor="test")
    return token


def _expired() -> str:
    from app.db import set_clock_offset

    _, token = _issued("pia")
    set_clock_offset(timedelta(days=2))  # reset by the next test's empty database
    return token


def _deactivated() -> str:
    from app.db import session_scope
    from app.identity import service

    _, token = _issued("pia")
    with session_scope() as session:
        service.set_active(session, "pia", False, actor="test")
    return token


@pytest.mark.parametrize(
    ("bad_token", "detail"),
    [
        (_malformed, "malformed token"),
        (_unknown, "unknown token"),
        (_revoked, "token revoked"),
        (_expired, "token expired"),
        (_deactivated, "user deactivated"),
    ],
    ids=["malformed", "unknown", "revoked", "expired", "deactivated"],
)
def test_bad_token_same_answer_from_api_and_gate(
    client: Any, bad_token: Callable[[], str], detail: str
) -> None:
    from app.db import set_clock_offset

    create_user("pia", ("mlops", "*"))
    try:
        headers = {"Authorization": f"Bearer {bad_token()}"}
        api = client.get(API, headers=headers)
        gate = client.get(GATE, params=GATE_PARAMS, headers=headers)
    finally:
        set_clock_offset(None)
    assert api.status_code == gate.status_code == 401, (api.text, gate.text)
    assert api.json()["detail"] == gate.json()["detail"] == detail
    assert api.headers["content-type"] == gate.headers["content-type"] == "application/problem+json"


def test_gate_counts_failed_tokens_like_the_api(client: Any) -> None:
    """Past the limit both answer 429, whichever of the two counted the failures."""
    from app.settings import get_settings

    headers = {"Authorization": f"Bearer {_unknown()}"}
    limit = get_settings().auth_failure_limit
    for i in range(limit):
        url, params = (GATE, GATE_PARAMS) if i % 2 else (API, {})
        r = client.get(url, params=params, headers=headers)
        assert r.status_code == 401, r.text
    assert client.get(GATE, params=GATE_PARAMS, headers=headers).status_code == 429
    assert client.get(API, headers=headers).status_code == 429


def test_postgresql_gate_reads_through_its_async_pool(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.approvals import gate_db, release
    from app.db import get_engine

    if get_engine().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    read: list[object] = []
    original = gate_db.rows

    async def counted(conn: Any, query: Any, params: Any) -> Any:
        read.append(query)
        return await original(conn, query, params)

    monkeypatch.setattr(gate_db, "rows", counted)
    headers = create_user("pia", ("mlops", "*"))
    r = client.get(GATE, params=GATE_PARAMS, headers=headers)
    assert r.status_code == 404, r.text  # authenticated, then no such system
    # one statement per answer, carrying the rows of every release check
    assert read == [release.gate_query("production", with_token=True)[0]]


def test_postgresql_connection_settings() -> None:
    """The gate's connections: autocommit, prepared at once, the schema and both timeouts of the settings."""
    from app.approvals import gate_db
    from app.settings import Settings

    settings = Settings(
        database_url="postgresql+psycopg://u:p@db.example:5433/reg",
        database_schema="tenant_a",
        gate_connect_timeout=0.5,
        gate_statement_timeout_ms=1234,
    )
    conninfo, kwargs = gate_db.connection_settings(settings)
    assert conninfo == "postgresql://u:p@db.example:5433/reg"
    assert kwargs["autocommit"] is True and kwargs["prepare_threshold"] == 0
    assert kwargs["connect_timeout"] == 2  # libpq's smallest
    assert kwargs["options"] == (
        "-c statement_timeout=1234 -c plan_cache_mode=force_generic_plan -c search_path=tenant_a"
    )
    assert kwargs["application_name"] == "aireg-gate"


def test_unreachable_postgresql_gives_up_within_the_connect_timeout() -> None:
    import asyncio
    import time

    from psycopg_pool import PoolTimeout

    from app.approvals import gate_db
    from app.settings import Settings

    settings = Settings(database_url="postgresql+psycopg://u@127.0.0.1:1/none", gate_connect_timeout=0.5)

    async def ask() -> None:
        pool = await gate_db._open(settings)
        try:
            async with pool.connection():
                pass
        finally:
            await pool.close()

    began = time.monotonic()
    with pytest.raises(PoolTimeout):
        asyncio.run(ask())
    assert time.monotonic() - began < 5


def test_the_urls_own_connection_options_are_kept() -> None:
    """A search_path given in the URL's ``options`` stays: psycopg's keyword would otherwise replace it."""
    from app.approvals import gate_db
    from app.settings import Settings

    settings = Settings(
        database_url="postgresql+psycopg://u@db.example/reg?options=-csearch_path%3Dtenant_b&sslmode=require",
        database_schema=None,
    )
    conninfo, kwargs = gate_db.connection_settings(settings)
    assert conninfo == "postgresql://u@db.example/reg?sslmode=require"
    assert kwargs["options"] == (
        "-csearch_path=tenant_b -c statement_timeout=5000 -c plan_cache_mode=force_generic_plan"
    )


def test_postgresql_gate_survives_a_dropped_pooled_connection(client: Any) -> None:
    """The server ends the gate's pooled connections (a restart, a failover): the next answer is still 200,
    on a fresh connection, instead of a 503 per stale connection."""
    import sqlalchemy as sa

    from app.db import get_engine

    engine = get_engine()
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    headers = create_user("pia", ("mlops", "*"))
    client.post("/api/v1/sites", json={"code": "STR", "name": "Strasbourg"}, headers=headers)
    assert client.get(GATE, params=GATE_PARAMS, headers=headers).status_code == 404  # the pool is open
    with engine.connect() as conn:
        ended = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'aireg-gate' AND datname = current_database()"
            )
        ).scalar_one()
    assert ended >= 1
    for _ in range(3):
        assert client.get(GATE, params=GATE_PARAMS, headers=headers).status_code == 404
