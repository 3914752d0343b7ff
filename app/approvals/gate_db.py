"""The release gate's PostgreSQL connections: a psycopg async pool; the event loop never waits on them.

One pool per event loop and database (opened at the first call, closed by the application's lifespan), of
autocommit connections: every statement reads what is committed at that moment. Statements run as
server-side prepared statements from their first execution (``prepare_threshold=0``). Connecting gives up
after ``AIREG_GATE_CONNECT_TIMEOUT`` seconds, a statement after ``AIREG_GATE_STATEMENT_TIMEOUT_MS``; the
search path is ``AIREG_DATABASE_SCHEMA`` when set, as on the engine of ``app.db``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import make_url

from app.approvals.release import GateQuery, Row
from app.settings import Settings, get_settings

Pool = AsyncConnectionPool[AsyncConnection[Any]]
_Key = tuple[asyncio.AbstractEventLoop, str, str | None]
_pools: dict[_Key, asyncio.Future[Pool]] = {}


def connection_settings(settings: Settings) -> tuple[str, dict[str, Any]]:
    """libpq's connection string for ``AIREG_DATABASE_URL`` and the gate's connection parameters."""
    url = make_url(settings.database_url).set(drivername="postgresql")
    # the URL's own ``options`` (e.g. a search_path set there) are kept: psycopg's keyword would replace them
    given = url.query.get("options")
    parts = [given] if isinstance(given, str) else list(given or ())
    parts.append(f"-c statement_timeout={settings.gate_statement_timeout_ms}")
    # point lookups by key: one plan per prepared statement, never re-planned per call (planning the
    # gate's statement costs ten times its execution)
    parts.append("-c plan_cache_mode=force_generic_plan")
    if settings.database_schema:  # a plain lower-case name (the setting's pattern)
        parts.append(f"-c search_path={settings.database_schema}")
    options = " ".join(parts)
    url = url.difference_update_query(["options"])
    kwargs = {
        "autocommit": True,
        "prepare_threshold": 0,
        "connect_timeout": max(2, math.ceil(settings.gate_connect_timeout)),  # libpq: whole seconds, >= 2
        "options": options,
    }
    if "application_name" not in url.query:  # the gate's connections, as pg_stat_activity names them
        kwargs["application_name"] = "aireg-gate"
    return url.render_as_string(hide_password=False), kwargs


async def _open(settings: Settings) -> Pool:
    conninfo, kwargs = connection_settings(settings)
    pool: Pool = AsyncConnectionPool(
        conninfo,
        kwargs=kwargs,
        min_size=1,
        max_size=settings.gate_pool_size,
        timeout=settings.gate_connect_timeout,  # waiting for a free or new connection
        open=False,
        name="aireg-gate",
    )
    await pool.open(wait=False)
    return pool


async def pool() -> Pool:
    """The pool of this event loop for the configured database (opened at the first call)."""
    settings = get_settings()
    loop = asyncio.get_running_loop()
    key = (loop, settings.database_url, settings.database_schema)
    opening = _pools.get(key)
    if opening is None:
        for stale in [k for k in _pools if k[0].is_closed()]:  # a loop that ended without its lifespan
            del _pools[stale]
        opening = _pools[key] = asyncio.ensure_future(_open(settings))
    try:
        return await opening  # done after the first call: no suspension
    except BaseException:
        _pools.pop(key, None)  # the next call tries again
        raise


async def drop_broken() -> None:
    """Test every idle connection of this loop's pool and drop the ones the server ended (a restart or a
    failover ends them all at once)."""
    await (await pool()).check()


@asynccontextmanager
async def connection() -> AsyncIterator[AsyncConnection[Any]]:
    """A connection of the pool for the statements of one answer."""
    async with (await pool()).connection() as conn:
        yield conn


async def rows(conn: AsyncConnection[Any], query: GateQuery, params: Mapping[str, Any]) -> list[Row]:
    """``query``'s rows by column name (one prepared round trip)."""
    compiled = query.compiled("postgresql")
    cursor = await conn.execute(compiled.sql, compiled.params(params))
    return compiled.rows(await cursor.fetchall())


async def close() -> None:
    """Close the pools of the running event loop (the application's shutdown)."""
    loop = asyncio.get_running_loop()
    for key in [k for k in _pools if k[0] is loop]:
        opening = _pools.pop(key)
        if opening.done() and opening.exception() is None:
            await opening.result().close()
