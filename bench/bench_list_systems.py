"""Time ``GET /api/v1/systems`` over a large portfolio through the full HTTP stack (TestClient, in process).

Builds a fresh SQLite database in a temporary directory (the real migrations), bulk-inserts ``--rows`` systems
across 3 sites / 6 lines with mixed classes, tiers, stages and zones, then times, as a global compliance
officer, a filtered first page, the same page at offset 5000, and a ``q=`` text search. Prints median and p95
in milliseconds. Target: median < 50 ms for the filtered first page.

Run: ``.venv/bin/python bench/bench_list_systems.py [--rows 100000] [--runs 200] [--url DATABASE_URL]``
(``--url`` benches another database, e.g. an empty PostgreSQL one, instead of the temporary SQLite file).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SITES = {"STR": ("BODY1", "ASM2"), "LYO": ("SMT1", "TEST"), "POZ": ("CNC3", "PACK")}
CLASSES = ("high_risk", "limited_risk", "minimal_risk", "minimal_risk", None, "prohibited")
TIERS = ("low", "medium", "high", "critical", None)
STAGES = ("idea", "pilot", "production", "production", "retired")
WORDS = (
    "weld",
    "paint",
    "press",
    "solder",
    "tool wear",
    "label",
    "forecast",
    "scheduler",
    "vision",
    "anomaly",
)


def _setup_environment(url: str | None) -> str:
    if url is None:
        tmp = tempfile.mkdtemp(prefix="aireg-bench-")
        url = f"sqlite:///{tmp}/bench.db"
    os.environ["AIREG_DATABASE_URL"] = url  # before any app module reads the settings
    os.environ.setdefault("AIREG_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    os.environ["AIREG_LOG_LEVEL"] = "warning"
    return url


def _seed(rows: int) -> str:
    """Sites, zones, owners and ``rows`` systems; returns a compliance officer's token."""
    import sqlalchemy as sa

    from app.db import get_engine, session_scope
    from app.identity import service as identity
    from app.identity.models import Role, UserCreate
    from app.systems import service as systems
    from app.systems.models import AISystem, IdCounter, LineIn, SiteCreate, SLVector
    from app.zones import service as zones
    from app.zones.models import ZoneCreate

    owners: list[str] = []
    with session_scope() as session:
        for site, lines in SITES.items():
            systems.create_site(
                session,
                SiteCreate(code=site, name=f"Plant {site}", lines=[LineIn(code=c, name=c) for c in lines]),
                actor="bench",
            )
            for suffix, level in (("CTL", 2), ("ENT", 4)):
                zones.create_zone(
                    session,
                    ZoneCreate(
                        code=f"{site}-{suffix}",
                        name=suffix,
                        site=site,
                        purdue_level=level,
                        sl_target=SLVector(**{f"FR{i}": 3 for i in range(1, 8)}),
                    ),
                    actor="bench",
                )
            for n in range(3):
                username = f"owner{n}.{site.lower()}"
                identity.create_user(session, UserCreate(username=username), actor="bench")
                identity.grant_role(session, username, Role.business_owner, site, actor="bench")
                owners.append(username)
        identity.create_user(session, UserCreate(username="clara"), actor="bench")
        identity.grant_role(session, "clara", Role.compliance_officer, "*", actor="bench")
        token = identity.issue_token(session, "clara", name="bench", expires_days=1, actor="bench").token

    site_codes = list(SITES)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    batch: list[dict[str, Any]] = []
    table = AISystem.__table__
    with get_engine().begin() as conn:
        for i in range(1, rows + 1):
            site = site_codes[i % 3]
            now = start + timedelta(minutes=i)
            batch.append(
                {
                    "id": f"AIS-{i:06d}",
                    "name": f"{WORDS[i % len(WORDS)].title()} system {i}",
                    "purpose": f"Detects {WORDS[(i * 7) % len(WORDS)]} issues on line {i % 97}",
                    "site": site,
                    "line": SITES[site][(i // 3) % 2],
                    "business_owner": owners[site_codes.index(site) * 3 + i % 3],
                    "technical_owner": None,
                    "vendor": None if i % 4 else "Vendor GmbH",
                    "ai_act_role": "provider" if i % 2 else "deployer",
                    "lifecycle_stage": STAGES[i % len(STAGES)],
                    "personal_data": i % 5 == 0,
                    "zone": f"{site}-{'CTL' if i % 2 else 'ENT'}",
                    "sl_achieved": {f"FR{k}": (i + k) % 4 for k in range(1, 8)},
                    "ai_act_class": CLASSES[i % len(CLASSES)],
                    "risk_tier": TIERS[i % len(TIERS)],
                    "created_at": now,
                    "updated_at": now,
                    "revision": 1,
                }
            )
            if len(batch) == 5000:
                conn.execute(table.insert(), batch)
                batch.clear()
        if batch:
            conn.execute(table.insert(), batch)
        conn.execute(sa.insert(IdCounter.__table__).values(kind="system", value=rows))
    # fresh statistics (and, on PostgreSQL, a visibility map for index-only counts), as a settled database has
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE" if conn.dialect.name == "sqlite" else "VACUUM ANALYZE ai_system")
    return token


def _time(
    client: Any, headers: dict[str, str], path: str, params: dict[str, Any], runs: int
) -> tuple[float, float, int | None]:
    """Median and p95 in ms over ``runs`` requests (after a warm-up); and the total the list reported."""
    total = None
    for _ in range(5):
        r = client.get(path, params=params, headers=headers)
        assert r.status_code == 200, r.text
        total = r.json().get("total")
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = client.get(path, params=params, headers=headers)
        samples.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)], total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--url", help="an empty database to bench instead of a temporary SQLite file")
    args = parser.parse_args()

    url = _setup_environment(args.url)
    from fastapi.testclient import TestClient

    from app.db import migrate
    from app.main import create_app

    migrate()
    t0 = time.perf_counter()
    token = _seed(args.rows)
    print(f"database: {url.split('@')[-1]}; seeded {args.rows:,} systems in {time.perf_counter() - t0:.1f} s")
    headers = {"Authorization": f"Bearer {token}"}
    systems = "/api/v1/systems"
    cases = [
        ("GET /api/v1/users/me (auth alone, for scale)", "/api/v1/users/me", {}),
        (
            "site=STR&ai_act_class=high_risk&limit=50",
            systems,
            {"site": "STR", "ai_act_class": "high_risk", "limit": 50},
        ),
        (
            "same at offset=5000",
            systems,
            {"site": "STR", "ai_act_class": "high_risk", "limit": 50, "offset": 5000},
        ),
        ("q=solder&limit=50", systems, {"q": "solder", "limit": 50}),
        ("q=solder&site=LYO&limit=50", systems, {"q": "solder", "site": "LYO", "limit": 50}),
    ]
    with TestClient(create_app()) as client:
        print(f"{'query':<45} {'median ms':>10} {'p95 ms':>10} {'total':>8}")
        for label, path, params in cases:
            median, p95, total = _time(client, headers, path, params, args.runs)
            print(f"{label:<45} {median:>10.2f} {p95:>10.2f} {'' if total is None else total:>8}")
    print("target: median < 50 ms for the filtered first page")


if __name__ == "__main__":
    main()
