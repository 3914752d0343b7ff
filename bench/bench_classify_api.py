"""``POST /api/v1/classify`` in process through FastAPI's TestClient (authenticated), next to the pure engine.

Builds a throw-away SQLite database (or a throw-away schema with ``--database-url postgresql+psycopg://...``),
one compliance officer with an API token, then times over the same mix of answer sets as bench_classify.py:
  (a) ``classify()`` alone (dict answers, so parsing is included as on the HTTP path);
  (b) ``POST /api/v1/classify`` with the bearer token (authentication, validation, engine, JSON);
  (c) ``GET /healthz``, for the bare cost of a TestClient round trip (its thread hand-offs);
  (d) the same POST as a raw ASGI call on one event loop (no TestClient threads): what the service adds.
Prints median and p99 of each. Target: (b) median < 2 ms. TestClient hands every request to another thread
several times, so on a loaded machine (b) and (c) grow with the load average while (a) and (d) do not.

Run: ``.venv/bin/python bench/bench_classify_api.py [--calls 2000] [--database-url URL]``
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classify import MIX


def _figures(label: str, samples_ns: list[int]) -> str:
    """``label: median .. µs  p99 .. µs`` for the samples."""
    s = sorted(samples_ns)
    med = statistics.median(s) / 1000
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))] / 1000
    return f"{label:<48} median {med:8.1f} µs   p99 {p99:8.1f} µs   (n={len(s)})"


def _time(fn: Callable[[], Any], calls: int, warmup: int = 200) -> list[int]:
    """Run ``fn`` ``warmup`` times, then time ``calls`` runs with the garbage collector off."""
    for _ in range(warmup):
        fn()
    samples: list[int] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(calls):
            start = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    return samples


def _raw_asgi(app: Any, path: str, body: bytes, headers: dict[str, str]) -> Callable[[], Any]:
    """A coroutine function making one raw ASGI POST to ``app`` and returning the status code."""
    raw_headers = [(b"host", b"testserver"), (b"content-type", b"application/json")] + [
        (k.lower().encode(), v.encode()) for k, v in headers.items()
    ]
    raw_headers.append((b"content-length", str(len(body)).encode()))

    async def call() -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    return call


async def _time_async(fn: Callable[[], Any], calls: int, warmup: int = 200) -> list[int]:
    """``_time`` for a coroutine function, on the running loop."""
    for _ in range(warmup):
        await fn()
    samples: list[int] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(calls):
            start = time.perf_counter_ns()
            status = await fn()
            samples.append(time.perf_counter_ns() - start)
            if status != 200:
                raise SystemExit(f"unexpected status {status}")
    finally:
        gc.enable()
    return samples


def _setup_database(url: str | None) -> tuple[str, str | None]:
    """Point the settings at a fresh database; returns (url, schema)."""
    if url is None:
        tmp = Path(tempfile.mkdtemp(prefix="aireg-bench-"))
        return f"sqlite:///{tmp / 'bench.db'}", None
    import sqlalchemy as sa

    schema = f"aireg_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    return url, schema


def _drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    from app.db import dispose_engines

    dispose_engines()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


def main() -> None:
    """Set up, measure and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per measurement")
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL (default: a temporary SQLite file)"
    )
    args = parser.parse_args()

    url, schema = _setup_database(args.database_url)
    os.environ["AIREG_DATABASE_URL"] = url
    if schema:
        os.environ["AIREG_DATABASE_SCHEMA"] = schema
    os.environ.setdefault("AIREG_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    os.environ["AIREG_LOG_LEVEL"] = "warning"

    import logging

    from fastapi.testclient import TestClient

    from app.classification.catalog import get_catalog
    from app.classification.engine import classify
    from app.db import migrate, session_scope
    from app.identity import service as identity
    from app.identity.models import Role, UserCreate
    from app.main import create_app

    logging.disable(logging.INFO)  # the access log would time the log handler, not the endpoint
    try:
        migrate()
        with session_scope() as session:
            identity.create_user(session, UserCreate(username="bench"), actor="bench")
            identity.grant_role(session, "bench", Role("compliance_officer"), "*", actor="bench")
            token = identity.issue_token(session, "bench", name="bench", expires_days=1, actor="bench").token

        catalog = get_catalog()
        today = date.today()
        mix = itertools.cycle(MIX)

        def engine_call() -> None:
            answers, role = next(mix)
            classify(answers, ai_act_role=role, catalog=catalog, today=today)

        bodies = itertools.cycle([{"answers": a, "ai_act_role": role} for a, role in MIX])
        headers = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app()) as client:
            for body in [{"answers": a, "ai_act_role": role} for a, role in MIX]:
                r = client.post("/api/v1/classify", json=body, headers=headers)
                assert r.status_code == 200, r.text

            def api_call() -> None:
                r = client.post("/api/v1/classify", json=next(bodies), headers=headers)
                if r.status_code != 200:
                    raise SystemExit(f"unexpected {r.status_code}: {r.text}")

            has_health = client.get("/healthz").status_code == 200

            def bare_call() -> None:
                client.get("/healthz")

            engine_ns = _time(engine_call, args.calls * 5)
            api_ns = _time(api_call, args.calls)
            bare_ns = _time(bare_call, args.calls) if has_health else []
        import asyncio
        import json

        raw_body = json.dumps({"answers": MIX[4][0], "ai_act_role": MIX[4][1]}).encode()
        raw_call = _raw_asgi(create_app(), "/api/v1/classify", raw_body, headers)
        raw_ns = asyncio.run(_time_async(raw_call, args.calls))

        backend = "PostgreSQL" if schema else "SQLite"
        print(
            f"POST /api/v1/classify in process (TestClient, {backend}), {len(MIX)} answer sets, catalogue "
            f"{catalog.catalog_version}"
        )
        print(_figures("classify() alone (dict answers)", engine_ns))
        print(_figures("POST /api/v1/classify (bearer token)", api_ns))
        if bare_ns:
            print(_figures("GET /healthz (TestClient round trip)", bare_ns))
        print(_figures("POST /api/v1/classify as raw ASGI (no threads)", raw_ns))
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        median_ms = statistics.median(api_ns) / 1e6
        verdict = "meets" if median_ms < 2 else "MISSES"
        print(f"target: POST /api/v1/classify median < 2 ms -> {median_ms:.2f} ms, {verdict} the target")
    finally:
        if schema:
            _drop_schema(url, schema)


if __name__ == "__main__":
    main()
