"""Requirements at scale, and an evidence upload's memory (issue 14).

Builds a fresh SQLite database (the real migrations) with ``--systems`` systems (3 sites), each classified
as a provider's Annex III system, and AI Act + ISO/IEC 42001 adopted (about 60 requirements a system), their
requirement rows stored in mixed states with evidence linked to some. Then prints, median and p95 in ms:
- ``GET /api/v1/systems/{id}/requirements`` (TestClient, the full stack), target < 20 ms;
- the release gate's requirement check for one system (the ``REQUIREMENTS_OPEN`` hook, plain SQL);
- the portfolio counts (``portfolio_counts``): the first view, which counts every system once, and the
  views after it, target < 200 ms.
With ``--upload-mb N`` it also serves the app (``aireg serve``, one worker), streams an N MB PDF upload to it
from a generator and prints the server's peak RSS before and after (``VmHWM``): the upload must not be held
whole in memory.

Run: ``.venv/bin/python bench/bench_requirements.py [--systems 10000] [--runs 100] [--upload-mb 20]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    analyze,
    bench_database,
    insert_batches,
    memory_mb,
    seed_portfolio,
    serve,
    time_calls,
)

ANSWERS = {"annex3_uses": ["annex3.4.a"]}
STATUSES = ("open", "open", "in_progress", "met", "not_applicable")


def _seed(systems: int) -> str:
    """Systems, one classification each (copied from a real one), requirement rows and evidence links."""
    import sqlalchemy as sa

    from app.classification import service as classification
    from app.classification.models import Classification
    from app.compliance import service
    from app.compliance.models import Evidence, EvidenceBlob, Requirement, RequirementEvidence
    from app.db import get_engine, session_scope
    from app.systems.models import AISystem, IdCounter

    token = seed_portfolio(systems)
    with session_scope() as session:
        first = session.get(AISystem, "AIS-000001")
        assert first is not None
        first.ai_act_role = "provider"
        session.add(first)
        session.flush()
        model = classification.record_classification(session, first, ANSWERS, actor="bench")
        derived = service.derive_for_system(model, service.get_frameworks())
        template = {
            c: getattr(model, c)
            for c in (
                "answers",
                "ai_act_role",
                "effective_role",
                "ai_act_class",
                "basis",
                "result",
                "catalog_version",
                "assessor",
            )
        }
    now = datetime.now(UTC)
    with get_engine().begin() as conn:
        conn.execute(sa.update(AISystem.__table__).values(ai_act_role="provider", ai_act_class="high_risk"))
        conn.execute(sa.delete(Classification.__table__))
        insert_batches(
            conn,
            Classification.__table__,
            ({**template, "system_id": f"AIS-{i:06d}", "created_at": now} for i in range(1, systems + 1)),
        )
        conn.execute(
            sa.insert(EvidenceBlob.__table__).values(sha256="0" * 64, size=10, chunks=0, created_at=now)
        )
        evidence: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        requirements: list[dict[str, Any]] = []
        for i in range(1, systems + 1):
            sid = f"AIS-{i:06d}"
            eid = f"EVD-{i:06d}"
            evidence.append(
                {
                    "id": eid,
                    "system_id": sid,
                    "title": "plan",
                    "filename": "plan.pdf",
                    "sha256": "0" * 64,
                    "size": 10,
                    "media_type": "application/pdf",
                    "valid_until": date(2030 if i % 3 else 2026, 1, 1),
                    "created_by": "bench",
                    "created_at": now,
                }
            )
            for n, d in enumerate(derived):
                status = STATUSES[(i + n) % len(STATUSES)]
                requirements.append(
                    {
                        "system_id": sid,
                        "framework": d.framework,
                        "control": d.control,
                        "title": d.title,
                        "status": status,
                        "note": "n/a here" if status == "not_applicable" else None,
                        "owner_role": d.owner_role,
                        "applies_from": d.applies_from,
                        "derived": True,
                        "revision": 1,
                        "created_at": now,
                        "updated_at": now,
                        "updated_by": None,
                    }
                )
                if status == "met":
                    links.append(
                        {
                            "scope": sid,
                            "framework": d.framework,
                            "control": d.control,
                            "evidence_id": eid,
                            "linked_by": "bench",
                            "linked_at": now,
                        }
                    )
            if len(requirements) >= 20_000:
                conn.execute(Evidence.__table__.insert(), evidence)
                conn.execute(Requirement.__table__.insert(), requirements)
                conn.execute(RequirementEvidence.__table__.insert(), links)
                evidence.clear(), requirements.clear(), links.clear()
        if requirements:
            conn.execute(Evidence.__table__.insert(), evidence)
            conn.execute(Requirement.__table__.insert(), requirements)
            conn.execute(RequirementEvidence.__table__.insert(), links)
    with get_engine().begin() as conn:  # the next server-made evidence id follows the seeded ones
        conn.execute(sa.insert(IdCounter.__table__).values(kind="evidence", value=systems))
    analyze()
    print(f"requirements a system: {len(derived)}; rows: {systems * len(derived):,}")
    return token


def _timed(fn: Callable[[], object], runs: int) -> str:
    """``median ms  p95 ms`` columns of ``runs`` calls of ``fn`` after a warm-up."""
    timed = time_calls(fn, runs)
    return f"{timed.ms():>10.2f} {timed.ms('p95'):>10.2f}"


def _bench_reads(token: str, systems: int, runs: int) -> None:
    from fastapi.testclient import TestClient

    from app.approvals import release
    from app.compliance import service
    from app.db import get_engine, session_scope
    from app.main import create_app

    headers = {"Authorization": f"Bearer {token}"}
    sid = f"AIS-{systems // 2:06d}"
    print(f"{'measure':<60} {'median ms':>10} {'p95 ms':>10}")
    with TestClient(create_app()) as client:

        def system_requirements() -> None:
            r = client.get(f"/api/v1/systems/{sid}/requirements", params={"limit": 100}, headers=headers)
            assert r.status_code == 200 and r.json()["total"] > 40, r.text

        print(
            f"{'GET /api/v1/systems/{id}/requirements (limit=100)':<60} {_timed(system_requirements, runs)}"
        )

    # the gate's own path: its one statement (carrying every check's rows), then the checks' judgement
    query, checks = release.gate_query("production", with_token=False)
    asked = release.Release(sid, "v1", "production")
    params = release.gate_params(sid, "v1", "production")

    def gate_checks() -> None:
        with release.raw_reader(get_engine()) as db:
            rows = db.rows(query, params)
        release.other_domains_reasons(rows[0], checks, asked, datetime.now(UTC))

    print(f"{'release gate: statement + other domains checks of one system':<60} {_timed(gate_checks, runs)}")

    portfolio = service.portfolio_counts
    if portfolio is not None:
        today = datetime.now(UTC).date()

        def counts() -> None:
            with session_scope(write=False) as session:
                portfolio(session, None, today)

        t0 = time.perf_counter()
        counts()
        cold = (time.perf_counter() - t0) * 1000
        print(f"{'portfolio_counts, first view (every system counted once)':<60} {cold:>10.2f}")
        figures = _timed(counts, max(10, runs // 5))
        print(f"{'portfolio_counts (every site, every adopted framework)':<60} {figures}")
    print("targets: a system's requirements < 20 ms; the portfolio view < 200 ms")


def _bench_upload(token: str, megabytes: int) -> None:
    """Serve the app, stream an upload from a generator, read the server's peak RSS before and after."""
    import httpx

    with serve(workers=1) as server:
        base = server.base_url
        headers = {"Authorization": f"Bearer {token}"}
        httpx.get(f"{base}/api/v1/systems/AIS-000001/evidence", headers=headers)  # warm the code paths
        pid = server.worker_pids()[0]
        before = memory_mb(pid)[1]
        boundary = "aireg-bench-boundary"
        size = megabytes * 1024 * 1024

        def body() -> Iterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nbig\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
                "Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"
            ).encode()
            block = os.urandom(64 * 1024)
            for _ in range(size // len(block)):
                yield block
            yield f"\r\n--{boundary}--\r\n".encode()

        t0 = time.perf_counter()
        r = httpx.post(
            f"{base}/api/v1/systems/AIS-000001/evidence",
            content=body(),
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=120,
        )
        elapsed = time.perf_counter() - t0
        assert r.status_code == 201, r.text
        after = memory_mb(pid)[1]
        t0 = time.perf_counter()
        with httpx.stream("GET", f"{base}/api/v1/evidence/{r.json()['id']}/content", headers=headers) as s:
            got = sum(len(chunk) for chunk in s.iter_bytes())
        download = time.perf_counter() - t0
        print(
            f"upload {megabytes} MB: {elapsed:.2f} s; server peak RSS {before:.0f} MB before, "
            f"{after:.0f} MB after (+{after - before:.0f} MB); download {got / 1048576:.1f} MB in "
            f"{download:.2f} s, peak RSS {memory_mb(pid)[1]:.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--upload-mb", type=int, default=20, help="0: skip the upload")
    args = parser.parse_args()
    with bench_database(AIREG_ADOPTED_FRAMEWORKS="ai_act,iso42001") as db:
        t0 = time.perf_counter()
        token = _seed(args.systems)
        print(f"database: {db.label}; seeded {args.systems:,} systems in {time.perf_counter() - t0:.1f} s")
        _bench_reads(token, args.systems, args.runs)
        if args.upload_mb:
            _bench_upload(token, args.upload_mb)


if __name__ == "__main__":
    main()
