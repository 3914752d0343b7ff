"""Server-side render time of every web page with 10,000 systems in the database (TestClient, in process).

Builds a fresh SQLite database in a temporary directory (the real migrations), bulk-inserts ``--rows`` systems
across 3 sites / 6 lines with mixed classes, tiers, stages and zones, then records ``--approvals`` real
approval requests through the approvals flow (classification, version, submission; a third of them signed
off), signs in through the login form as a global compliance officer who also signs for risk, and times
each page: median and p95 in milliseconds over ``--runs`` requests after a warm-up. Target: median < 100 ms.

Run: ``.venv/bin/python bench/bench_pages.py [--rows 10000] [--approvals 200] [--runs 30] [--url URL]``
(``--url`` benches another, empty, database, e.g. PostgreSQL, instead of the temporary SQLite file).
"""

from __future__ import annotations

import argparse
import os
import re
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
PASSWORD = "bench-password-0123"
OWNER = "owner1.lyo"  # business owner of AIS-000001 (site LYO) in the seed below
DIGEST = "sha256:" + "ab" * 32


def _setup_environment(url: str | None) -> str:
    if url is None:
        tmp = tempfile.mkdtemp(prefix="aireg-bench-pages-")
        url = f"sqlite:///{tmp}/bench.db"
    os.environ["AIREG_DATABASE_URL"] = url  # before any app module reads the settings
    os.environ.setdefault("AIREG_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    os.environ["AIREG_LOG_LEVEL"] = "warning"
    return url


def _seed_systems(rows: int) -> None:
    """Sites, zones, owners, a compliance officer with a password, and ``rows`` systems (bulk insert)."""
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
                        sl_target=SLVector(**{f"FR{i}": 2 for i in range(1, 8)}),
                    ),
                    actor="bench",
                )
            for n in range(3):
                username = f"owner{n}.{site.lower()}"
                password = PASSWORD if username == OWNER else None  # the owner of AIS-000001 signs in
                identity.create_user(session, UserCreate(username=username, password=password), actor="bench")
                identity.grant_role(session, username, Role.business_owner, site, actor="bench")
                owners.append(username)
        identity.create_user(session, UserCreate(username="clara", password=PASSWORD), actor="bench")
        identity.grant_role(session, "clara", Role.compliance_officer, "*", actor="bench")
        identity.grant_role(session, "clara", Role.risk_officer, "*", actor="bench")
        identity.create_user(session, UserCreate(username="berta"), actor="bench")
        identity.grant_role(session, "berta", Role.business_owner, "*", actor="bench")

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
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")


def _seed_approvals(count: int) -> tuple[str, int]:
    """Up to ``count`` real requests (classify, version, submit; retired systems skipped); every third one
    signed by a business owner. Returns a request still waiting for the compliance officer, and how many."""
    import sqlalchemy as sa

    from app.approvals import flows
    from app.approvals.models import ApprovalCreate, SignOffCreate
    from app.classification import service as classification
    from app.db import session_scope
    from app.identity.authz import get_authorizer
    from app.identity.dependencies import Principal
    from app.identity.models import User
    from app.systems import service as systems
    from app.systems.models import VersionCreate

    waiting, made = "", 0
    with session_scope() as session:
        berta = session.exec(sa.select(User).where(User.username == "berta")).scalar_one()
        signer = Principal(user_id=berta.id, username="berta", authorizer=get_authorizer(session))
        for n in range(count):
            system = systems.get_system(session, f"AIS-{n * 37 % 9000 + 1:06d}", for_update=True)
            if system.lifecycle_stage.value == "retired":
                continue
            classification.record_classification(
                session, system, {"transparency": ["art50.4"]}, actor="clara"
            )
            systems.create_version(
                session, system, VersionCreate(version="1.0.0", artifact_digest=DIGEST), actor="ci"
            )
            request = flows.submit(
                session,
                system,
                ApprovalCreate(version="1.0.0", environment="pilot", justification="bench"),
                actor=system.business_owner,
            )
            if n % 3 == 0:
                flows.sign(
                    session,
                    request.id,
                    SignOffCreate(role="business_owner", decision="approve"),
                    principal=signer,
                )
            waiting, made = request.id, made + 1
    return waiting, made


def _login(client: Any, username: str) -> None:
    """Sign in through the login form, as a browser does."""
    page = client.get("/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    r = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def _time(client: Any, path: str, runs: int) -> tuple[float, float, int]:
    """Median and p95 in ms over ``runs`` requests (after a warm-up), and the page size in bytes."""
    size = 0
    for _ in range(3):
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        size = len(r.content)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = client.get(path)
        samples.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--approvals", type=int, default=200)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--url", help="an empty database to bench instead of a temporary SQLite file")
    args = parser.parse_args()

    url = _setup_environment(args.url)
    from fastapi.testclient import TestClient

    from app.db import migrate
    from app.main import create_app

    migrate()
    t0 = time.perf_counter()
    _seed_systems(args.rows)
    waiting, made = _seed_approvals(args.approvals)
    print(
        f"database: {url.split('@')[-1]}; seeded {args.rows:,} systems and {made} approval "
        f"requests in {time.perf_counter() - t0:.1f} s"
    )
    system = "AIS-000001"
    pages = [
        ("dashboard", "/dashboard"),
        ("inventory, first page", "/systems"),
        ("inventory, filtered + sorted", "/systems?site=STR&ai_act_class=high_risk&order_by=name&desc=1"),
        ("inventory, text search", "/systems?q=solder"),
        ("inventory, page 100", "/systems?page=100"),
        ("system page", f"/systems/{system}"),
        ("classification wizard", f"/systems/{system}/classify"),
        (
            "wizard with shared answers",
            f"/systems/{system}/classify?annex3_uses=annex3.4.b&transparency=art50.1",
        ),
        ("register a system (form)", "/systems/new"),
        ("approval request (form, as owner)", f"/systems/{system}/approvals/new"),
        ("sign-off inbox", "/inbox"),
        ("one approval", f"/approvals/{waiting}"),
        ("CSV export, one site (not a page)", "/systems/export.csv?site=LYO"),
    ]
    results = []
    with TestClient(create_app()) as client:
        owner = TestClient(client.app)  # a second browser session on the same app
        _login(client, "clara")
        _login(owner, OWNER)
        print(f"{'page':<38} {'median ms':>10} {'p95 ms':>10} {'KiB':>8}")
        for label, path in pages:
            median, p95, size = _time(owner if "as owner" in label else client, path, args.runs)
            results.append((label, median))
            print(f"{label:<38} {median:>10.2f} {p95:>10.2f} {size / 1024:>8.1f}")
    slow = [label for label, median in results if median >= 100 and "CSV" not in label]
    print("target: median < 100 ms per page -", "met" if not slow else f"missed by: {', '.join(slow)}")


if __name__ == "__main__":
    main()
