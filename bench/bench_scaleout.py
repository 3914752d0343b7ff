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
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.bench_release_permission import VERSION, free_port, populate, run_wrk  # noqa: E402

RSS_TARGET_MB = 250


def start(workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``aireg serve --workers N`` on a free port; returns once ``/readyz`` answers 200."""
    port = free_port()
    cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc.base_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"{proc.base_url}/readyz", timeout=1).status_code == 200:  # type: ignore[attr-defined]
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready within 90 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def worker_pids(proc: subprocess.Popen[bytes]) -> list[int]:
    """The processes serving requests: the children of uvicorn's supervisor, or the process itself."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return pids or [proc.pid]


def load(base: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    if shutil.which("wrk") and args.client != "httpx":
        return run_wrk(base, "release", env, args, pin=False)
    import asyncio

    from bench.bench_release_permission import _httpx_load

    return asyncio.run(_httpx_load(base, "release", env["AIREG_BENCH_TOKEN"], args.systems, args))


def memory_mb(pid: int) -> tuple[float, float]:
    """``(VmRSS, VmHWM)`` of a process in MB: its resident memory now and at its peak."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line[:5]] = int(line.split()[1]) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


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
    args.tmp = tempfile.mkdtemp(prefix="aireg-bench-")

    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(args.pg_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    os.environ.update(
        AIREG_DATABASE_URL=args.pg_url,
        AIREG_DATABASE_SCHEMA=schema,
        AIREG_SECRET_KEY="bench-secret-key-0123456789",
        AIREG_LOG_LEVEL="warning",
    )
    try:
        started = time.perf_counter()
        token, _states = populate(args.systems, args.seed)
        # the audit check and the KPIs need a caller who may read every site
        from app.db import session_scope
        from app.identity import service as identity
        from app.identity.models import Role

        with session_scope() as session:
            for role in (Role.admin, Role.compliance_officer, Role.auditor):
                identity.grant_role(session, "ci", role, "*", actor="bench")
        print(f"populated {args.systems} systems in schema {schema} in {time.perf_counter() - started:.1f} s")
        env = dict(os.environ) | {
            "AIREG_BENCH_TOKEN": token,
            "AIREG_BENCH_SYSTEMS": str(args.systems),
        }
        results: dict[int, list[dict[str, float]]] = {}
        for workers in (1, 2):
            proc = start(workers, env)
            try:
                base = proc.base_url  # type: ignore[attr-defined]
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
            finally:
                stop(proc)
        one = statistics.median(r["rps"] for r in results[1])
        two = statistics.median(r["rps"] for r in results[2])
        print(
            f"release-permission median: 1 worker {one:.0f} req/s, "
            f"2 workers {two:.0f} req/s, x{two / one:.2f}"
        )
        print(f"(machine: {os.cpu_count()} cores shared by the load generator and the workers)")

        proc = start(1, env)
        try:
            base = proc.base_url  # type: ignore[attr-defined]
            load(base, env, argparse.Namespace(**{**vars(args), "duration": 3}))
            (pid,) = worker_pids(proc)[:1]
            print(
                f"one worker over {args.systems} systems, after release-permission load: "
                f"RSS {memory_mb(pid)[0]:.0f} MB, peak {memory_mb(pid)[1]:.0f} MB"
            )
            calls = walk_portfolio(base, token, pid)
            rss = memory_mb(pid)[1]
        finally:
            stop(proc)
        verdict = "meets" if rss < RSS_TARGET_MB else "MISSES"
        print(
            f"peak RSS of one worker over {args.systems} systems after {calls} portfolio calls and load: "
            f"{rss:.0f} MB ({verdict} the < {RSS_TARGET_MB} MB target)"
        )
    finally:
        from app.db import dispose_engines

        dispose_engines()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
        shutil.rmtree(args.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
