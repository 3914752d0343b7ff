"""Time ``GET /api/v1/systems`` over a large portfolio through the full HTTP stack (TestClient, in process).

Builds a fresh SQLite database in a temporary directory (the real migrations), bulk-inserts ``--rows`` systems
(default 1,000,000) across 3 sites / 6 lines with mixed classes, tiers, stages and zones (Core batches;
``COPY`` on PostgreSQL), then times, as a global compliance officer, the first page unfiltered, a site and
class filter (also at offset 5000) and ``q=`` text searches (frequent, rare, 2 characters). Each query is
timed twice: as the service answers now, and as before issue 17 (exact counts, text matched row by row without
the search index). Prints median and p95 in milliseconds, and the serving process's RSS (seeding runs in a
child process, so this process is the worker). Target: median < 50 ms for every list; a worker stays under 250
MB.

Run: ``.venv/bin/python bench/bench_list_systems.py [--rows 1000000] [--runs 100] [--url DATABASE_URL
[--schema SCHEMA]]`` (``--url`` benches another, empty database, e.g. PostgreSQL, instead of a temporary
SQLite file; ``--schema`` an empty schema of it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import SITES, analyze, insert_batches, portfolio_rows, seed_portfolio  # noqa: E402


def _setup_environment(url: str | None) -> str:
    if url is None:
        tmp = tempfile.mkdtemp(prefix="aireg-bench-")
        url = f"sqlite:///{tmp}/bench.db"
    os.environ["AIREG_DATABASE_URL"] = url  # before any app module reads the settings
    os.environ.setdefault("AIREG_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    os.environ["AIREG_LOG_LEVEL"] = "warning"
    return url


def _seed(rows: int) -> str:
    """``bench._common.seed_portfolio``'s sites, zones and users, and ``rows`` systems inserted by
    ``_insert_systems``; returns the compliance officer's token."""
    import sqlalchemy as sa
    from sqlmodel import SQLModel

    from app.db import get_engine
    from app.systems.models import IdCounter

    token = seed_portfolio(0)
    owners = [f"owner{n}.{site.lower()}" for site in SITES for n in range(3)]
    with get_engine().begin() as conn:
        _insert_systems(conn, SQLModel.metadata.tables["ai_system"], portfolio_rows(rows, owners))
        conn.execute(sa.update(IdCounter).where(IdCounter.kind == "system").values(value=rows))
    analyze()
    return token


def _insert_systems(conn: Any, table: Any, rows: Iterator[dict[str, Any]]) -> None:
    """Bulk insert: ``COPY`` on PostgreSQL, Core batches of 5000 rows on SQLite."""
    if conn.dialect.name == "postgresql":
        first = next(rows, None)
        if first is None:
            return
        columns = list(first)
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY ai_system ({', '.join(columns)}) FROM STDIN") as copy:
            for row in itertools.chain([first], rows):
                row["sl_achieved"] = json.dumps(row["sl_achieved"])
                copy.write_row([row[c] for c in columns])
        return
    insert_batches(conn, table, rows)


def _time(
    client: Any, headers: dict[str, str], path: str, params: dict[str, Any], runs: int
) -> tuple[float, float, tuple[int, bool] | None]:
    """Median and p95 in ms over ``runs`` requests (after a warm-up); and the total the list reported."""
    total = None
    for _ in range(5):
        r = client.get(path, params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        total = (body["total"], body.get("total_exact", True)) if "total" in body else None
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = client.get(path, params=params, headers=headers)
        samples.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)], total


def _rss_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _Baseline:
    """The list as it was before issue 17: exact counts, text matched row by row without a search index."""

    def __init__(self) -> None:
        from app.db import get_engine

        self.engine = get_engine()

    @staticmethod
    def _no_trigram_index(conn: Any) -> None:
        # GIN indexes serve bitmap scans only: without them the planner cannot use the trigram indexes
        conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")

    def __enter__(self) -> None:
        from sqlalchemy import event

        from app.systems import service

        self.saved = service.COUNT_LIMIT, service.SEARCH_MIN_CHARS
        service.COUNT_LIMIT, service.SEARCH_MIN_CHARS = 10**12, 10**6
        if self.engine.dialect.name == "postgresql":
            event.listen(self.engine, "begin", self._no_trigram_index)

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event

        from app.systems import service

        service.COUNT_LIMIT, service.SEARCH_MIN_CHARS = self.saved
        if self.engine.dialect.name == "postgresql":
            event.remove(self.engine, "begin", self._no_trigram_index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--url", help="an empty database to bench instead of a temporary SQLite file")
    parser.add_argument("--schema", help="PostgreSQL: an empty schema of that database to work in")
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.schema:
        os.environ["AIREG_DATABASE_SCHEMA"] = args.schema
    url = _setup_environment(args.url)
    from app.db import migrate

    if args.seed_only:  # the child process that fills the database
        migrate()
        print(_seed(args.rows))
        return

    # Seeding runs in a child process: this one is then only the serving worker; its peak RSS is the worker's.
    t0 = time.perf_counter()
    command = [sys.executable, __file__, "--seed-only", "--rows", str(args.rows), "--url", url]
    seeded = subprocess.run(command, env=os.environ, capture_output=True, text=True, check=False)
    if seeded.returncode:
        sys.exit(seeded.stderr)
    token = seeded.stdout.strip().splitlines()[-1]
    print(f"database: {url.split('@')[-1]}; seeded {args.rows:,} systems in {time.perf_counter() - t0:.1f} s")

    from fastapi.testclient import TestClient

    from app.main import create_app

    headers = {"Authorization": f"Bearer {token}"}
    systems = "/api/v1/systems"
    cases = [
        ("GET /api/v1/users/me (auth alone, for scale)", "/api/v1/users/me", {}),
        ("first page, no filter", systems, {"limit": 50}),
        (
            "site=STR&ai_act_class=high_risk",
            systems,
            {"site": "STR", "ai_act_class": "high_risk", "limit": 50},
        ),
        ("same at offset=5000", systems, {"site": "STR", "ai_act_class": "high_risk", "offset": 5000}),
        ("q=solder (1 system in 5)", systems, {"q": "solder", "limit": 50}),
        ("q=solder&site=LYO", systems, {"q": "solder", "site": "LYO", "limit": 50}),
        ("q=System 99999 (11 of 1M)", systems, {"q": "System 99999", "limit": 50}),
        ("q=system 99 (11k of 1M)", systems, {"q": "system 99", "limit": 50}),
        ("q=ld (2 characters)", systems, {"q": "ld", "limit": 50}),
    ]
    with TestClient(create_app()) as client:
        rss_start = _rss_mb("VmRSS")
        now = [_time(client, headers, path, params, args.runs) for _label, path, params in cases]
        rss_end, rss_peak = _rss_mb("VmRSS"), _rss_mb("VmHWM")
        with _Baseline():
            before = [
                _time(client, headers, path, params, max(3, args.runs // 20)) for _l, path, params in cases
            ]
    print(
        f"{'query':<46} {'median ms':>9} {'p95 ms':>8} {'total':>7}  | {'before: median':>14} {'p95':>8}"
        f" {'total':>7}"
    )
    measured = zip(cases, now, before, strict=True)
    for (label, _p, _q), (median, p95, total), (b_median, b_p95, b_total) in measured:
        print(
            f"{label:<46} {median:>9.2f} {p95:>8.2f} {_total(total):>7}  | {b_median:>14.2f} {b_p95:>8.2f}"
            f" {_total(b_total):>7}"
        )
    print(
        f"worker RSS: {rss_start:.0f} MB before the runs, {rss_end:.0f} MB after, peak {rss_peak:.0f} MB"
        " (target < 250 MB)"
    )
    print("target: median < 50 ms for each list; before: exact counts, no search index (as before issue 17)")


def _total(total: Any) -> str:
    if total is None:
        return ""
    count, exact = total
    return f"{count}" if exact else f"{count}+"


if __name__ == "__main__":
    main()
