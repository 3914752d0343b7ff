"""Audit-chain verification throughput (events/s) and peak memory over 1,000,000 events.

Fills a fresh database (SQLite file by default; ``--database-url postgresql+psycopg://...`` uses a throw-away
schema there) with valid chained events: HMAC-SHA256 hashes under the audit key of a throw-away state
directory (``app.audit.keys``), rows bulk-inserted with the driver's executemany in batches. Then
``verify_chain`` runs in a fresh process, so its peak RSS (``resource.getrusage``) covers the walk alone; the
same process first reports its RSS before the walk, and the walk is repeated over the first tenth of the
chain to show memory does not grow with length.

Run: ``.venv/bin/python bench/bench_audit_verify.py [--events 1000000] [--batch 5000] [--database-url URL]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ACTIONS = ["system.update", "system.create", "classification.create", "version.create", "access.denied"]
SITES = [f"S{n:02d}" for n in range(20)]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def populate(events: int, batch: int) -> None:
    """Insert ``events`` valid chained events, ``batch`` rows per DBAPI ``executemany``."""
    from app.audit.keys import get_keyring
    from app.audit.models import AuditEvent
    from app.audit.service import GENESIS_HASH, event_payload, to_jsonable
    from app.db import get_engine

    engine = get_engine()
    sqlite = engine.dialect.name == "sqlite"
    columns = [c.name for c in AuditEvent.__table__.columns]
    mark, json_mark = ("?", "?") if sqlite else ("%s", "%s::json")
    values = ", ".join(json_mark if c in ("before", "after") else mark for c in columns)
    sql = f"INSERT INTO audit_event ({', '.join(columns)}) VALUES ({values})"
    prev = GENESIS_HASH
    ring = get_keyring()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for first in range(1, events + 1, batch):
            rows = []
            for seq in range(first, min(first + batch, events + 1)):
                ts = start + timedelta(seconds=seq, microseconds=seq % 997)
                action = ACTIONS[seq % len(ACTIONS)]
                fields = {
                    "seq": seq,
                    "ts": ts,
                    "actor": f"user{seq % 1000:04d}",
                    "action": action,
                    "entity_type": action.split(".")[0],
                    "entity_id": f"AIS-{seq % 100000:06d}",
                    "site": SITES[seq % len(SITES)],
                    "before": to_jsonable({"name": f"System {seq - 1}", "rev": seq % 50, "pd": False}),
                    "after": to_jsonable({"name": f"System {seq}", "rev": seq % 50 + 1, "sl": {"FR1": 3}}),
                    "prev_hash": prev,
                }
                prev = ring.sign(event_payload(**fields))
                fields["hash"] = prev
                fields["key_id"] = ring.current
                # as UTCDateTime stores it: naive UTC text on SQLite, timestamptz on PostgreSQL
                fields["ts"] = ts.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else ts
                fields["before"], fields["after"] = json.dumps(fields["before"]), json.dumps(fields["after"])
                rows.append(tuple(fields[c] for c in columns))
            if sqlite:
                cursor.execute("BEGIN")
            cursor.executemany(sql, rows)
            raw.commit() if not sqlite else cursor.execute("COMMIT")
            done = min(first + batch - 1, events)
            if done % 100_000 < batch:
                rate = done / (time.perf_counter() - t0)
                print(f"  inserted {done:>9,} events ({rate:,.0f}/s)", flush=True)
    finally:
        raw.close()
    print(f"populated {events:,} events in {time.perf_counter() - t0:.1f} s; head {prev[:16]}…", flush=True)


def verify(batch: int, limit: int | None) -> dict[str, object]:
    """Time ``verify_chain`` (optionally over the first ``limit`` events only) in this process."""
    import sqlalchemy as sa

    from app.audit.models import AuditEvent
    from app.audit.service import verify_chain
    from app.db import session_scope

    with session_scope(write=False) as session:
        # warm the connection
        session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one()
        rss_before = _rss_mb()
        t0 = time.perf_counter()
        result = verify_chain(session, batch=batch, upto=limit)
        elapsed = time.perf_counter() - t0
    return {
        "valid": result.valid,
        "events": result.events,
        "seconds": round(elapsed, 2),
        "events_per_s": round(result.events / elapsed),
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
    }


def _child(args: argparse.Namespace, limit: int | None) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--phase", "verify", "--batch", str(args.batch)]
    if limit:
        cmd += ["--limit", str(limit)]
    out = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000, help="rows per insert and per verify read")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--phase", choices=["all", "verify"], default="all", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("AIREG_SECRET_KEY", "bench-secret-key-0123456789")
    os.environ.setdefault("AIREG_LOG_LEVEL", "warning")

    if args.phase == "verify":  # the child: settings come from the parent's environment
        print(json.dumps(verify(args.batch, args.limit)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="aireg-bench-"))
    os.environ["AIREG_STATE_DIR"] = str(tmp / "state")  # a keyring of its own (inherited by the child)
    os.environ.pop("AIREG_AUDIT_KEY", None)
    schema: str | None = None
    if args.database_url is None:
        url = f"sqlite:///{tmp / 'audit.db'}"
    else:
        import sqlalchemy as sa

        url, schema = args.database_url, f"aireg_bench_{uuid.uuid4().hex[:8]}"
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        engine.dispose()
        os.environ["AIREG_DATABASE_SCHEMA"] = schema
    os.environ["AIREG_DATABASE_URL"] = url
    from app.db import dispose_engines, migrate

    try:
        migrate()
        populate(args.events, args.batch)
        dispose_engines()
        backend = "PostgreSQL" if schema else "SQLite"
        for limit in (args.events // 10, None):
            r = _child(args, limit)
            print(
                f"{backend} verify_chain over {r['events']:>9,} events: valid={r['valid']}  "
                f"{r['seconds']} s  "
                f"{r['events_per_s']:,} events/s  RSS before walk {r['rss_before_mb']} MB, "
                f"peak {r['peak_rss_mb']} MB"
            )
    finally:
        dispose_engines()
        if schema:
            import sqlalchemy as sa

            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
