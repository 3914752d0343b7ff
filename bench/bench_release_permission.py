"""Release-permission throughput and p99 under load, next to a bare endpoint and a one-query floor.

Builds a fresh database with ``--systems`` AI systems (default 100,000), one model version, one
classification and one approval request each (bulk Core inserts: ~80 % approved and valid, the rest
pending, rejected, revoked or expired; a third in an OT zone with an SL gap; some carry go/no-go
conditions), starts the service like ``aireg serve`` (uvicorn, 1 worker, on 127.0.0.1, pinned to CPU 0
when there are two or more; the app of ``bench/bench_app.py`` plus the floor route below), then alternates
load runs with ``--connections`` concurrent clients (wrk on CPU 1 when installed, else an asyncio httpx
client) of:

- SQLite: ``GET /bench/constant`` (bare FastAPI: an ``async def`` returning constant JSON) and ``GET
  /api/v1/release-permission`` (a random system each request, an mlops token). Target: gate >= 0.5 x bare.
- PostgreSQL (``--postgres URL``, a throw-away schema there): ``GET /bench/floor`` (an ``async def`` making
  one prepared round trip through a psycopg ``AsyncConnectionPool`` with the gate's own connection
  settings) and the gate. Targets: gate >= 0.8 x floor, gate p99 < 50 ms.

Both backends also load ``GET /bench/statement``: the gate's fixed part alone (its typed query read and its
one statement, answered unjudged: no authentication, rules or other domains' checks), the ceiling any gate
with this statement can reach; printed as a ratio without a target.

Prints throughput, p50 and p99 of each run, the medians, and the ratios in the same run.

Run: ``.venv/bin/python bench/bench_release_permission.py [--systems 100000] [--duration 10] [--runs 5]
[--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test] [--skip-sqlite]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the route's annotations here

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VERSION = "1.0.0"
CHUNK = 5000
# loads that ask about a random system each request
ROUTES = {"release": "/api/v1/release-permission", "statement": "/bench/statement"}

WRK_SCRIPT = """
local token = os.getenv("AIREG_BENCH_TOKEN")
local n = tonumber(os.getenv("AIREG_BENCH_SYSTEMS"))
local path = os.getenv("AIREG_BENCH_PATH")
local headers = {["Authorization"] = "Bearer " .. token}
math.randomseed(os.time())
local routes = {release = "/api/v1/release-permission", statement = "/bench/statement"}
request = function()
  local route = routes[path]
  if route == nil then
    return wrk.format("GET", path, headers)
  end
  local p = string.format(
    "%s?system=AIS-%06d&version=VERSION&environment=production", route, math.random(1, n))
  return wrk.format("GET", p, headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
""".replace("VERSION", VERSION)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def populate(n: int, seed: int) -> tuple[str, dict[str, int]]:
    """Bulk-insert the portfolio; returns an mlops token and how many approvals are in each state."""
    import sqlalchemy as sa

    from app.approvals import service as approvals
    from app.approvals.models import ApprovalRequest
    from app.classification.models import Classification
    from app.db import get_engine, migrate, session_scope, utcnow
    from app.identity import service as identity
    from app.identity.models import Role, UserCreate
    from app.systems.models import AISystem, IdCounter, ModelVersion, Site
    from app.zones.models import Zone

    migrate()
    rng = random.Random(seed)
    now = utcnow()
    with session_scope() as session:
        session.add(Site(code="STR", name="Stuttgart", created_at=now))
        session.flush()
        for code, level, target in (("STR-CTL", 2, 3), ("STR-ENT", 4, 2)):
            session.add(
                Zone(
                    code=code,
                    name=code,
                    site="STR",
                    purdue_level=level,
                    sl_target={f"FR{i}": target for i in range(1, 8)},
                    created_at=now,
                )
            )
        identity.create_user(session, UserCreate(username="ci"), actor="bench")
        identity.grant_role(session, "ci", Role.mlops, "*", actor="bench")
        identity.create_user(session, UserCreate(username="bob"), actor="bench")
        token = identity.issue_token(session, "ci", name="bench", expires_days=30, actor="bench").token

    states: dict[str, int] = {}
    engine = get_engine()
    digest = "sha256:" + "ab" * 32
    ids = [f"AIS-{i:06d}" for i in range(1, n + 1)]
    for start in range(0, n, CHUNK):
        systems, versions, classifications, requests = [], [], [], []
        for offset, system_id in enumerate(ids[start : start + CHUNK]):
            index = start + offset + 1
            ot = rng.random() < 0.33
            high = rng.random() < 0.7
            cls = "high_risk" if high else "minimal_risk"
            gap = ["FR4"] if ot else []
            systems.append(
                {
                    "id": system_id,
                    "name": f"System {index}",
                    "purpose": "bench",
                    "site": "STR",
                    "business_owner": "bob",
                    # OT systems miss the zone's SL-T 3 in FR4; the others meet their zone's SL-T 2
                    "zone": "STR-CTL" if ot else "STR-ENT",
                    "sl_achieved": {f"FR{i}": (2 if ot and i == 4 else 3) for i in range(1, 8)},
                    "personal_data": False,
                    "ai_act_role": "provider",
                    "ai_act_class": cls,
                    "lifecycle_stage": "production",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            versions.append(
                {
                    "system_id": system_id,
                    "version": VERSION,
                    "artifact_digest": digest,
                    "metrics": {"recall": 0.98, "false_reject_rate": 0.01},
                    "created_by": "bench",
                    "created_at": now,
                }
            )
            classifications.append(
                {
                    "id": index,
                    "system_id": system_id,
                    "answers": {},
                    "ai_act_role": "provider",
                    "effective_role": "provider",
                    "ai_act_class": cls,
                    "basis": ["art6.2", "annex3.4.a"] if high else [],
                    "result": {},
                    "catalog_version": "bench",
                    "assessor": "bench",
                    "created_at": now,
                }
            )
            roll = rng.random()
            state, valid_until = "approved", now + timedelta(days=180)
            if roll > 0.95:
                state, valid_until = "expired", now - timedelta(days=1)  # lapsed and swept
            elif roll > 0.90:
                state, valid_until = "submitted", None
            elif roll > 0.85:
                state, valid_until = "rejected", None
            elif roll > 0.80:
                state, valid_until = "revoked", now + timedelta(days=90)
            states[state] = states.get(state, 0) + 1
            required = ["business_owner", "compliance_officer"] + (["risk_officer"] if high else [])
            required += ["ot_security"] if ot else []
            row = dict(
                id=f"APR-{index:06d}",
                system_id=system_id,
                site="STR",
                version=VERSION,
                artifact_digest=digest,
                environment="production",
                requester="bob",
                justification="bench",
                state=state,
                required_signoffs=required,
                required_because={r: ["bench"] for r in required},
                classification_id=index,
                ai_act_class=cls,
                sl_gap=gap,
                validity_months=6 if high else 12,
                conditions=[
                    {
                        "metric": "recall",
                        "op": ">=",
                        "value": 0.97,
                        "expression": "recall >= 0.97",
                        "role": "compliance_officer",
                        "signer": "clara",
                    }
                ]
                if index % 4 == 0
                else [],
                valid_until=valid_until,
                supersedes=None,
                created_at=now,
                updated_at=now,
                revision=1,
            )
            row["content_hash"] = approvals.content_hash(SimpleNamespace(**row))  # type: ignore[arg-type]
            requests.append(row)
        with engine.begin() as conn:
            conn.execute(AISystem.__table__.insert(), systems)
            conn.execute(ModelVersion.__table__.insert(), versions)
            conn.execute(Classification.__table__.insert(), classifications)
            conn.execute(ApprovalRequest.__table__.insert(), requests)
    with engine.begin() as conn:
        for kind, value in (("system", n), ("approval", n)):
            conn.execute(sa.insert(IdCounter).values(kind=kind, value=value))
    return token, states


def create_app() -> Any:
    """``bench/bench_app.py``'s app (the service and ``/bench/constant``), ``/bench/statement`` (the gate's
    typed query read and its one statement, unjudged) and, on PostgreSQL, ``/bench/floor``: one prepared
    round trip through a psycopg async pool with the gate's connection settings."""
    import orjson
    from fastapi import Response
    from psycopg_pool import AsyncConnectionPool

    from app.approvals.gate_db import connection_settings
    from app.approvals.router import ReleaseQuery
    from app.http import query_model
    from app.settings import get_settings
    from bench.bench_app import create_app as create_bench_app

    app = create_bench_app()
    settings = get_settings()
    read_query = query_model(ReleaseQuery)

    @app.get("/bench/statement", include_in_schema=False)
    async def statement(request: Request) -> Response:
        """The gate's fixed costs alone: its typed query read and its one statement on its own connection
        (the token's hash as the key), the rows answered unjudged: no authentication, rules or checks."""
        from app.approvals import gate_db, release
        from app.db import get_engine

        query = await read_query(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        environment = query.environment.value
        gate, _checks = release.gate_query(environment, with_token=True)
        params = release.gate_params(query.system, query.version, environment, token)
        if get_engine().dialect.name == "postgresql":
            async with gate_db.connection() as conn:
                rows = await gate_db.rows(conn, gate, params)
        else:
            with release.raw_reader(get_engine()) as db:
                rows = db.rows(gate, params)
        found = rows[0]["system_id"] if rows else None
        return Response(orjson.dumps({"rows": len(rows), "system": found}), media_type="application/json")

    if not settings.database_url.startswith("postgresql"):
        app.router.routes.insert(0, app.router.routes.pop())
        return app
    conninfo, kwargs = connection_settings(settings)
    pools: list[AsyncConnectionPool[Any]] = []
    systems = int(os.environ.get("AIREG_BENCH_SYSTEMS", "1"))

    @app.get("/bench/floor", include_in_schema=False)
    async def floor() -> Response:
        if not pools:
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                conninfo, kwargs=kwargs, min_size=1, max_size=settings.gate_pool_size, open=False
            )
            pools.append(pool)
            await pool.open(wait=False)
        sid = f"AIS-{random.randint(1, systems):06d}"
        async with pools[0].connection() as conn:
            cursor = await conn.execute("SELECT id, site FROM ai_system WHERE id = %(sid)s", {"sid": sid})
            row = await cursor.fetchone()
        return Response(orjson.dumps({"system": row[0] if row else None}), media_type="application/json")

    for _ in range(2):  # matched first, like /bench/constant
        app.router.routes.insert(0, app.router.routes.pop())
    return app


def serve(host: str, port: int) -> None:
    """Serve ``create_app`` with the settings of ``aireg serve`` (as ``bench/bench_app.py`` does)."""
    import uvicorn

    from app.db import migrate
    from app.logging import logging_config
    from app.settings import get_settings

    migrate()
    uvicorn.run(
        "bench.bench_release_permission:create_app",
        factory=True,
        host=host,
        port=port,
        workers=1,
        access_log=False,
        log_config=logging_config(get_settings().log_level, access_log=False),
    )


def start_server(port: int, env: dict[str, str], pin: bool) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(port)]
    if pin:
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not come up within 60 s")


def run_wrk(
    url: str, path: str, env: dict[str, str], args: argparse.Namespace, pin: bool
) -> dict[str, float]:
    script = Path(args.tmp) / "bench.lua"
    script.write_text(WRK_SCRIPT)
    cmd = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "-s", str(script), url]
    if pin:
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(
        cmd, env=env | {"AIREG_BENCH_PATH": path}, capture_output=True, text=True, check=True
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("BENCH "))
    requests, duration_us, p50, p99, status_errors, socket_errors = map(int, line.split()[1:])
    return {
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "errors": status_errors + socket_errors,
    }


async def _httpx_load(url: str, path: str, token: str, n: int, args: argparse.Namespace) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + args.duration
    headers = {"Authorization": f"Bearer {token}"}

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        rng = random.Random()
        while time.perf_counter() < stop:
            target = path
            if path in ROUTES:
                target = (
                    f"{ROUTES[path]}?system=AIS-{rng.randint(1, n):06d}&version={VERSION}"
                    "&environment=production"
                )
            started = time.perf_counter()
            r = await client.get(url + target, headers=headers)
            latencies.append(time.perf_counter() - started)
            errors += r.status_code != 200

    began = time.perf_counter()
    limits = httpx.Limits(max_connections=args.connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(args.connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": errors,
    }


def _use_database(url: str, schema: str | None) -> None:
    """Point this process's settings at ``url`` (and ``schema``), forgetting any earlier database."""
    from app.db import dispose_engines, forget_migrations
    from app.settings import get_settings

    os.environ["AIREG_DATABASE_URL"] = url
    if schema:
        os.environ["AIREG_DATABASE_SCHEMA"] = schema
    else:
        os.environ.pop("AIREG_DATABASE_SCHEMA", None)
    dispose_engines()
    forget_migrations()
    get_settings.cache_clear()


def _pg(url: str, sql: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False)) as conn:
        conn.autocommit = True
        conn.execute(sql)


def measure(
    backend: str, url: str, schema: str | None, baseline: tuple[str, str], args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Populate ``url``, serve it, alternate load runs of the baseline and the gate; the medians."""
    _use_database(url, schema)
    began = time.perf_counter()
    token, states = populate(args.systems, args.seed)
    print(
        f"[{backend}] populated {args.systems:,} systems, versions, classifications and approvals "
        f"in {time.perf_counter() - began:.1f} s; approval states: {dict(sorted(states.items()))}"
    )
    if backend == "PostgreSQL":
        _pg(url, f'ANALYZE "{schema}".ai_system, "{schema}".approval_request, "{schema}".model_version')
    port = free_port()
    env = os.environ | {
        "AIREG_BENCH_TOKEN": token,
        "AIREG_BENCH_SYSTEMS": str(args.systems),
        "PYTHONUNBUFFERED": "1",
    }
    server = start_server(port, env, args.pin)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, list[dict[str, float]]] = {baseline[0]: [], "statement": [], "release": []}
    try:
        import httpx

        sample = [random.randint(1, args.systems) for _ in range(200)]
        allowed = 0
        for i in sample:
            r = httpx.get(
                f"{base}/api/v1/release-permission",
                params={"system": f"AIS-{i:06d}", "version": VERSION},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200, r.text
            allowed += r.json()["allowed"]
        assert httpx.get(base + baseline[1]).status_code == 200
        r = httpx.get(
            f"{base}/bench/statement",
            params={"system": f"AIS-{sample[0]:06d}", "version": VERSION},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200 and r.json()["rows"] == 1, r.text
        print(f"[{backend}] sanity: {allowed}/{len(sample)} sampled releases allowed")
        for run in range(args.runs):
            for name, path in (baseline, ("statement", "statement"), ("release", "release")):
                if args.use_wrk:
                    figures = run_wrk(base, path, env, args, args.pin)
                else:
                    figures = asyncio.run(_httpx_load(base, path, token, args.systems, args))
                results[name].append(figures)
                print(
                    f"  run {run + 1} {name:<8} {figures['rps']:9,.0f} req/s"
                    f"   p50 {figures['p50_ms']:6.2f} ms"
                    f"   p99 {figures['p99_ms']:6.2f} ms   errors {figures['errors']:.0f}"
                )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    if any(r["errors"] for rs in results.values() for r in rs):
        print(f"[{backend}] WARNING: some requests failed (see errors above)")
    medians = {}
    for name, runs in results.items():
        medians[name] = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_ms", "p99_ms")}
    for name in ("statement", "release"):
        pairs = zip(results[name], results[baseline[0]], strict=True)
        medians[name]["paired_ratio"] = statistics.median(r["rps"] / b["rps"] for r, b in pairs)
    return medians


def _line(label: str, m: dict[str, float]) -> str:
    return f"{label:<46}{m['rps']:9,.0f} req/s   p50 {m['p50_ms']:6.2f} ms   p99 {m['p99_ms']:6.2f} ms"


def _reference(label: str, m: dict[str, float], baseline: dict[str, float]) -> str:
    """A ratio without a target: how much of the gate's cost its fixed part takes."""
    ratio = m["rps"] / baseline["rps"]
    return f"{label:<46}{ratio:.2f}   (median of per-run ratios {m['paired_ratio']:.2f}; the gate's ceiling)"


def _ratio(label: str, ratio: float, paired: float, target: float) -> str:
    met = "met" if ratio >= target else "NOT met"
    return f"{label:<46}{ratio:.2f}   (median of per-run ratios {paired:.2f}; target >= {target:.2f}: {met})"


def main() -> None:
    """Build the data, start the server, run the load, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--systems", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--runs", type=int, default=5, help="runs of each endpoint (alternating)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--client", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--postgres", metavar="URL", help="also measure on PostgreSQL (a throw-away schema)")
    parser.add_argument("--skip-sqlite", action="store_true", help="measure PostgreSQL only")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args()
    if args.serve:
        serve("127.0.0.1", args.serve)
        return
    args.tmp = tempfile.mkdtemp(prefix="aireg-bench-release-")
    os.environ.pop("AIREG_WEBHOOK_URL", None)
    os.environ["AIREG_STATE_DIR"] = str(Path(args.tmp) / "state")
    os.environ["AIREG_LOG_LEVEL"] = "warning"
    args.use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    args.pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    client = (
        "wrk (1 thread" + (", CPU 1; server on CPU 0)" if args.pin else ")")
        if args.use_wrk
        else "asyncio httpx"
    )
    print(f"load: {args.connections} concurrent clients, {args.duration} s per run, client {client}")
    lines: list[str] = []
    try:
        if not args.skip_sqlite:
            m = measure(
                "SQLite", f"sqlite:///{Path(args.tmp) / 'bench.db'}", None, ("bare", "/bench/constant"), args
            )
            ratio = m["release"]["rps"] / m["bare"]["rps"]
            lines += [
                _line("SQLite      bare /bench/constant", m["bare"]),
                _line("SQLite      statement only /bench/statement", m["statement"]),
                _line("SQLite      GET /release-permission", m["release"]),
                _reference("SQLite      ratio statement only/bare", m["statement"], m["bare"]),
                _ratio("SQLite      ratio gate/bare", ratio, m["release"]["paired_ratio"], 0.5),
            ]
        if args.postgres:
            schema = f"aireg_bench_{os.getpid()}"
            _pg(args.postgres, f'CREATE SCHEMA "{schema}"')
            try:
                m = measure("PostgreSQL", args.postgres, schema, ("floor", "/bench/floor"), args)
            finally:
                from app.db import dispose_engines

                dispose_engines()
                _pg(args.postgres, f'DROP SCHEMA "{schema}" CASCADE')
            ratio = m["release"]["rps"] / m["floor"]["rps"]
            p99 = m["release"]["p99_ms"]
            lines += [
                _line("PostgreSQL  floor /bench/floor", m["floor"]),
                _line("PostgreSQL  statement only /bench/statement", m["statement"]),
                _line("PostgreSQL  GET /release-permission", m["release"]),
                _reference("PostgreSQL  ratio statement only/floor", m["statement"], m["floor"]),
                _ratio("PostgreSQL  ratio gate/floor", ratio, m["release"]["paired_ratio"], 0.8),
                f"PostgreSQL  gate p99 at {args.connections} connections  {p99:.2f} ms"
                f" (target < 50 ms: {'met' if p99 < 50 else 'NOT met'})",
            ]
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
