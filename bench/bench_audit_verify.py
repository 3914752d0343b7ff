"""Audit-chain verification throughput (events/s) and peak memory: the per-event path vs ``verify_chain``.

Fills a fresh database (SQLite file by default; ``--database-url postgresql+psycopg://...`` uses a throw-away
schema there) with a valid chain through ``app.audit.service.record_many`` (the append rules themselves, Core
executemany inserts, HMAC-SHA256 under the audit key of a throw-away state directory). Then, each in a fresh
process so its peak RSS (``resource.getrusage``) covers one walk alone:

- ``per-event``: the path before issue 17, kept here as the baseline: typed Core rows, each event's payload
  built by the canonical encoder (``event_payload``) and its keyed hash checked one by one;
- ``verify_chain``: the walk the service uses (raw batched rows, orjson, one hashing pass), over the first
  tenth of the chain and over all of it, to show memory does not grow with length.

Rates are per wall-clock second and per CPU second of the walking process (the latter is what to compare on a
busy machine).

Run: ``.venv/bin/python bench/bench_audit_verify.py [--events 300000] [--batch 5000] [--database-url URL]``
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ACTIONS = ["system.update", "system.create", "classification.create", "version.create", "access.denied"]
SITES = [f"S{n:02d}" for n in range(20)]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def populate(events: int, batch: int) -> None:
    """Append ``events`` valid chained events, ``batch`` per ``record_many`` call and transaction."""
    from app.audit.service import record_many
    from app.db import session_scope

    t0 = time.perf_counter()
    for first in range(1, events + 1, batch):
        chunk = [
            {
                "actor": f"user{seq % 1000:04d}",
                "action": ACTIONS[seq % len(ACTIONS)],
                "entity_type": ACTIONS[seq % len(ACTIONS)].split(".")[0],
                "entity_id": f"AIS-{seq % 100000:06d}",
                "site": SITES[seq % len(SITES)],
                "before": {"name": f"System {seq - 1}", "rev": seq % 50, "pd": False},
                "after": {
                    "name": f"Système {seq}",
                    "rev": seq % 50 + 1,
                    "sl": {"FR1": 3},
                    "ratio": seq / 7,
                    # one event in 10,000 holds a float orjson writes differently (the walk's slow path)
                    "drift": 1e-05 if seq % 10_000 == 0 else 0.5,
                },
            }
            for seq in range(first, min(first + batch, events + 1))
        ]
        with session_scope() as session:
            record_many(session, chunk)
        done = min(first + batch - 1, events)
        if done % 100_000 < batch:
            rate = done / (time.perf_counter() - t0)
            print(f"  appended {done:>9,} events ({rate:,.0f}/s)", flush=True)
    print(f"populated {events:,} events in {time.perf_counter() - t0:.1f} s", flush=True)


def per_event_walk(batch: int) -> tuple[int, str | None]:
    """The baseline: every event read as a typed Core row and checked through ``event_payload`` alone."""
    import orjson
    import sqlalchemy as sa

    from app.audit.keys import get_keyring
    from app.audit.models import AuditEvent
    from app.audit.service import GENESIS_HASH, event_payload
    from app.db import session_scope

    table = AuditEvent.__table__  # type: ignore[attr-defined]
    columns = [c for c in table.columns if c.name not in ("before", "after")]
    ring, prev, last, events = get_keyring(), GENESIS_HASH, 0, 0
    with session_scope(write=False) as session:
        conn = session.connection()
        while True:
            stmt = sa.select(*columns, sa.cast(table.c.before, sa.Text), sa.cast(table.c.after, sa.Text))
            rows = conn.execute(stmt.where(table.c.seq > last).order_by(table.c.seq).limit(batch)).all()
            if not rows:
                return events, None
            for seq, ts, actor, action, etype, eid, site, prev_hash, digest, key_id, before, after in rows:
                payload = event_payload(
                    seq=seq,
                    ts=ts,
                    actor=actor,
                    action=action,
                    entity_type=etype,
                    entity_id=eid,
                    site=site,
                    before=orjson.loads(before) if before else None,
                    after=orjson.loads(after) if after else None,
                    prev_hash=prev_hash,
                )
                keyed = ring.mac(key_id)
                if (
                    seq != events + 1
                    or prev_hash != prev
                    or keyed is None
                    or keyed.hexdigest(payload) != digest
                ):
                    return events, f"event {seq} fails"
                prev, events = digest, seq
            last = rows[-1][0]


def verify(batch: int, limit: int | None, path: str) -> dict[str, object]:
    """Time one walk (``verify_chain``, optionally over the first ``limit`` events, or the baseline)."""
    import sqlalchemy as sa

    from app.audit.models import AuditEvent
    from app.audit.service import verify_chain
    from app.db import session_scope

    with session_scope(write=False) as session:
        # warm the connection
        session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one()
    rss_before = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    if path == "per-event":
        events, reason = per_event_walk(batch)
        valid = reason is None
    else:
        with session_scope(write=False) as session:
            result = verify_chain(session, batch=batch, upto=limit)
        events, valid = result.events, result.valid
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "valid": valid,
        "events": events,
        "seconds": round(elapsed, 2),
        "events_per_s": round(events / elapsed),
        "events_per_cpu_s": round(events / cpu),
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
    }


def _child(args: argparse.Namespace, limit: int | None, path: str) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--phase", "verify", "--batch", str(args.batch), "--path", path]
    if limit:
        cmd += ["--limit", str(limit)]
    out = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=5000, help="rows per insert and per verify read")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--phase", choices=["all", "verify"], default="all", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", default="verify_chain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("AIREG_SECRET_KEY", "bench-secret-key-0123456789")
    os.environ.setdefault("AIREG_LOG_LEVEL", "warning")

    if args.phase == "verify":  # the child: settings come from the parent's environment
        print(json.dumps(verify(args.batch, args.limit, args.path)))
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
        for path, limit in (("per-event", None), ("verify_chain", args.events // 10), ("verify_chain", None)):
            r = _child(args, limit, path)
            print(
                f"{backend} {path:>12} over {r['events']:>9,} events: valid={r['valid']}  {r['seconds']} s  "
                f"{r['events_per_s']:,} events/s ({r['events_per_cpu_s']:,} per CPU-s)  "
                f"RSS before walk {r['rss_before_mb']} MB, peak {r['peak_rss_mb']} MB",
                flush=True,
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
