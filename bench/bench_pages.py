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
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import OFFICER, Figures, add_user, bench_database, seed_portfolio, time_calls

PASSWORD = "bench-password-0123"
OWNER = "owner1.lyo"  # business owner of AIS-000001 (site LYO) in the seed below
DIGEST = "sha256:" + "ab" * 32


def _seed_systems(rows: int) -> None:
    """The portfolio of ``seed_portfolio``, where ``clara`` (a global compliance officer, also signing for
    risk) and the owner of AIS-000001 sign in, and ``berta``, a business owner of every site."""
    from app.db import session_scope
    from app.identity import service as identity
    from app.identity.models import Role

    seed_portfolio(rows, passwords={OFFICER: PASSWORD, OWNER: PASSWORD})
    with session_scope() as session:
        identity.grant_role(session, OFFICER, Role.risk_officer, "*", actor="bench")
        add_user(session, "berta", [("business_owner", "*")])


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
                session, system, {"transparency": ["art50.4"]}, actor=OFFICER
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


def _time(client: Any, path: str, runs: int) -> tuple[Figures, int]:
    """The timings of ``runs`` requests (after a warm-up), and the page size in bytes."""
    size = 0

    def get() -> None:
        nonlocal size
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        size = len(r.content)

    return time_calls(get, runs), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--approvals", type=int, default=200)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--url", help="an empty database to bench instead of a temporary SQLite file")
    args = parser.parse_args()

    with bench_database(args.url) as db:
        _measure(db.label, args)


def _measure(database: str, args: argparse.Namespace) -> None:
    """Seed, sign in, time every page."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    t0 = time.perf_counter()
    _seed_systems(args.rows)
    waiting, made = _seed_approvals(args.approvals)
    print(
        f"database: {database}; seeded {args.rows:,} systems and {made} approval "
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
        _login(client, OFFICER)
        _login(owner, OWNER)
        print(f"{'page':<38} {'median ms':>10} {'p95 ms':>10} {'KiB':>8}")
        for label, path in pages:
            timed, size = _time(owner if "as owner" in label else client, path, args.runs)
            results.append((label, timed.ms()))
            print(f"{label:<38} {timed.ms():>10.2f} {timed.ms('p95'):>10.2f} {size / 1024:>8.1f}")
    slow = [label for label, median in results if median >= 100 and "CSV" not in label]
    print("target: median < 100 ms per page -", "met" if not slow else f"missed by: {', '.join(slow)}")


if __name__ == "__main__":
    main()
