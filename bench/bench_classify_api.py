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
import itertools
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import add_user, bench_database, issue_token, load_average, time_calls, time_calls_async
from bench.bench_classify import MIX

WARMUP = 200


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

    import logging

    logging.disable(logging.INFO)  # the access log would time the log handler, not the endpoint
    with bench_database(args.database_url) as db:
        _measure(db.backend, args.calls)


def _measure(backend: str, calls: int) -> None:
    import asyncio
    import json

    from fastapi.testclient import TestClient

    from app.classification.catalog import get_catalog
    from app.classification.engine import classify
    from app.db import session_scope
    from app.main import create_app

    with session_scope() as session:
        add_user(session, "bench", [("compliance_officer", "*")])
        token = issue_token(session, "bench")

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

        engine = time_calls(engine_call, calls * 5, warmup=WARMUP, gc_off=True)
        api = time_calls(api_call, calls, warmup=WARMUP, gc_off=True)
        bare = time_calls(bare_call, calls, warmup=WARMUP, gc_off=True) if has_health else None

    raw_body = json.dumps({"answers": MIX[4][0], "ai_act_role": MIX[4][1]}).encode()
    raw_call = _raw_asgi(create_app(), "/api/v1/classify", raw_body, headers)

    async def checked_raw_call() -> None:
        status = await raw_call()
        if status != 200:
            raise SystemExit(f"unexpected status {status}")

    raw = asyncio.run(time_calls_async(checked_raw_call, calls, warmup=WARMUP, gc_off=True))

    print(
        f"POST /api/v1/classify in process (TestClient, {backend}), {len(MIX)} answer sets, catalogue "
        f"{catalog.catalog_version}"
    )
    print(f"{'classify() alone (dict answers)':<48} {engine.text('µs')}")
    print(f"{'POST /api/v1/classify (bearer token)':<48} {api.text('µs')}")
    if bare:
        print(f"{'GET /healthz (TestClient round trip)':<48} {bare.text('µs')}")
    print(f"{'POST /api/v1/classify as raw ASGI (no threads)':<48} {raw.text('µs')}")
    print(f"while measuring: {load_average()}")
    median_ms = api.ms()
    verdict = "meets" if median_ms < 2 else "MISSES"
    print(f"target: POST /api/v1/classify median < 2 ms -> {median_ms:.2f} ms, {verdict} the target")


if __name__ == "__main__":
    main()
