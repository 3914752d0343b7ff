"""Scale-out on PostgreSQL: release-permission throughput with 2 workers vs 1, and one worker's peak memory.

Builds a fresh PostgreSQL schema with ``--systems`` AI systems (default 100,000; the data set of
``bench_release_permission.py``: a version, a classification and an approval request each), then for 1 and
for 2 workers starts ``aireg serve --workers N`` and loads ``GET /api/v1/release-permission`` (a random system
per request, an mlops token) with ``--connections`` concurrent clients (wrk when installed, else httpx).
Then, with one worker, it walks the portfolio the way users do (every page of ``GET /api/v1/systems`` at
``limit=500``, filtered lists, text search, KPIs, the audit verification) and reads the worker's peak
resident memory (``VmHWM``). Prints throughput, p99, the 2-vs-1 ratio and the peak RSS against its target
(< 250 MB).

Run: ``.venv/bin/python bench/bench_scaleout.py [--pg-url URL] [--systems 100000] [--duration 10]``
(the machine's core count bounds the scaling: wrk and the workers share the same cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench._common import bench_database, memory_mb, serve
from bench.bench_release_permission import VERSION, populate, run_wrk

RSS_TARGET_MB = 250


def load(base: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    if shutil.which("wrk") and args.client != "httpx":
        return run_wrk(base, "release", env, args, pin=False)
    import asyncio

    from bench.bench_release_permission import _httpx_load

    return asyncio.run(_httpx_load(base, "release", env["AIREG_BENCH_TOKEN"], args.systems, args))


def walk_portfolio(base: str, token: str, pid: int) -> int:
    """What a busy day does to one worker: every list page, filters, search, KPIs, monitoring, the audit
    check; prints the worker's resident and peak memory after each kind of call."""
    headers = {"Authorization": f"Bearer {token}"}
    calls = 0

    def note(label: str, seconds: float) -> None:
        rss, hwm = memory_mb(pid)
        print(f"  {label:<44} {seconds * 1000:8.0f} ms   RSS {rss:5.0f} MB   peak {hwm:5.0f} MB")

    with httpx.Client(base_url=base, headers=headers, timeout=300) as c:
        offset = 0
        began = time.perf_counter()
        while True:
            r = c.get("/api/v1/systems", params={"limit": 500, "offset": offset})
            r.raise_for_status()
            calls += 1
            offset += 500
            if offset >= r.json()["total"]:
                break
        note(f"GET /api/v1/systems x{calls} (every page)", (time.perf_counter() - began) / calls)
        for path, params in (
            ("/api/v1/systems", {"ai_act_class": "high_risk", "limit": 500}),
            ("/api/v1/systems", {"zone": "STR-CTL", "limit": 500, "offset": 20_000}),
            ("/api/v1/systems", {"q": "System 9", "limit": 500}),
            ("/api/v1/systems", {"order_by": "name", "desc": "true", "limit": 500}),
            ("/api/v1/approvals", {"limit": 500}),
            ("/api/v1/audit-events/verify", {}),
            ("/api/v1/kpis", {}),
            ("/api/v1/monitoring/status", {}),
            ("/api/v1/monitoring/lapsed", {}),
        ):
            began = time.perf_counter()
            r = c.get(path, params=params)
            calls += 1
            if r.status_code >= 500:
                raise SystemExit(f"{path} failed: {r.status_code} {r.text[:300]}")
            query = "&".join(f"{k}={v}" for k, v in params.items() if k != "limit")
            note(f"GET {path}{'?' + query if query else ''}", time.perf_counter() - began)
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("AIREG_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--systems", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--runs", type=int, default=2, help="load runs per worker count")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--client", choices=["auto", "wrk", "httpx"], default="auto")
    args = parser.parse_args()
    with bench_database(args.pg_url, migrate=False) as db:
        args.tmp = str(db.tmp)
        _measure(db.label, args)


def _measure(database: str, args: argparse.Namespace) -> None:
    """Populate, then load 1 and 2 workers, then walk the portfolio with one."""
    started = time.perf_counter()
    token, _states = populate(args.systems, args.seed)
    # the audit check and the KPIs need a caller who may read every site
    from app.db import session_scope
    from app.identity import service as identity
    from app.identity.models import Role

    with session_scope() as session:
        for role in (Role.admin, Role.compliance_officer, Role.auditor):
            identity.grant_role(session, "ci", role, "*", actor="bench")
    print(f"populated {args.systems} systems in {database} in {time.perf_counter() - started:.1f} s")
    env = dict(os.environ) | {
        "AIREG_BENCH_TOKEN": token,
        "AIREG_BENCH_SYSTEMS": str(args.systems),
    }
    results: dict[int, list[dict[str, float]]] = {}
    for workers in (1, 2):
        with serve(workers=workers, env=env) as server:
            base = server.base_url
            probe = httpx.get(
                f"{base}/api/v1/release-permission",
                params={"system": "AIS-000001", "version": VERSION, "environment": "production"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert probe.status_code == 200, probe.text
            load(base, env, argparse.Namespace(**{**vars(args), "duration": 2}))  # warm up
            results[workers] = [load(base, env, args) for _ in range(args.runs)]
            for i, r in enumerate(results[workers], 1):
                print(
                    f"workers={workers} run {i}: {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                    f"p99 {r['p99_ms']:6.1f} ms  errors {r['errors']:.0f}"
                )
    one = statistics.median(r["rps"] for r in results[1])
    two = statistics.median(r["rps"] for r in results[2])
    print(f"release-permission median: 1 worker {one:.0f} req/s, 2 workers {two:.0f} req/s, x{two / one:.2f}")
    print(f"(machine: {os.cpu_count()} cores shared by the load generator and the workers)")

    with serve(workers=1, env=env) as server:
        base = server.base_url
        load(base, env, argparse.Namespace(**{**vars(args), "duration": 3}))
        pid = server.worker_pids()[0]
        print(
            f"one worker over {args.systems} systems, after release-permission load: "
            f"RSS {memory_mb(pid)[0]:.0f} MB, peak {memory_mb(pid)[1]:.0f} MB"
        )
        calls = walk_portfolio(base, token, pid)
        rss = memory_mb(pid)[1]
    verdict = "meets" if rss < RSS_TARGET_MB else "MISSES"
    print(
        f"peak RSS of one worker over {args.systems} systems after {calls} portfolio calls and load: "
        f"{rss:.0f} MB ({verdict} the < {RSS_TARGET_MB} MB target)"
    )


if __name__ == "__main__":
    main()
