"""audit trail: keyed chain, append-only triggers

Revision ID: b7e1a0c5d201
Revises: eaa662cac373
Create Date: 2026-12-06 05:00:00

Adds ``audit_event.key_id``. A first-edition trail (plain SHA-256 hashes) is verified as it was and, if it
holds, re-keyed with the current audit key (HMAC-SHA256, app/audit/keys.py); a trail that was already broken
is left exactly as it is, and verification reports it. Then the table is made append-only (app/audit/guard.py).
The downgrade removes the guard, turns a keyed chain that verifies back into plain SHA-256 hashes (so the
first edition verifies it again) and drops the column.
"""

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.db
from app.audit import guard

revision: str = "b7e1a0c5d201"
down_revision: str | None = "eaa662cac373"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")
BATCH = 5000
GENESIS = "0" * 64

# The payload every edition hashes, frozen here as of this revision: the canonical JSON of the event.


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return str(value)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable)

_events = sa.table(
    "audit_event",
    sa.column("seq", sa.Integer()),
    sa.column("ts", app.db.UTCDateTime()),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("entity_type", sa.String()),
    sa.column("entity_id", sa.String()),
    sa.column("site", sa.String()),
    sa.column("before", sa.JSON()),
    sa.column("after", sa.JSON()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
    sa.column("key_id", sa.String()),
)

Digest = Callable[[bytes, str | None], str | None]  # (payload, the row's key_id) -> hex, None if no key


def _rows(conn: sa.Connection) -> Iterator[list[sa.Row[Any]]]:
    c = _events.c
    columns = (c.seq, c.ts, c.actor, c.action, c.entity_type, c.entity_id, c.site)
    json_columns = (sa.cast(c.before, sa.Text), sa.cast(c.after, sa.Text))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(*columns, *json_columns, c.prev_hash, c.hash, c.key_id)
            .where(c.seq > last)
            .order_by(c.seq)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _payload(row: sa.Row[Any], prev_hash: str) -> bytes:
    seq, ts, actor, action, entity_type, entity_id, site, before, after = row[:9]
    return _CANONICAL.encode(
        {
            "seq": seq,
            "ts": ts.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "site": site,
            "before": None if before is None else json.loads(before),
            "after": None if after is None else json.loads(after),
            "prev_hash": prev_hash,
        }
    ).encode()


def _first_break(conn: sa.Connection, digest: Digest) -> int | None:
    """The first event whose sequence, link or hash (as ``digest`` computes it) fails; None if all hold."""
    expected, prev = 1, GENESIS
    for rows in _rows(conn):
        for row in rows:
            stored_prev, stored_hash, key_id = row[9], row[10], row[11]
            try:
                ok = (
                    row[0] == expected
                    and stored_prev == prev
                    and digest(_payload(row, prev), key_id) == stored_hash
                )
            except ValueError:  # unreadable JSON
                ok = False
            if not ok:
                return expected
            prev = stored_hash
            expected += 1
    return None


def _rehash(conn: sa.Connection, digest: Callable[[bytes], str], key_id: str | None) -> int:
    """Recompute every link and hash in order with ``digest``, recording ``key_id``; returns the count."""
    prev, count = GENESIS, 0
    update = (
        _events.update()
        .where(_events.c.seq == sa.bindparam("b_seq"))
        .values(prev_hash=sa.bindparam("b_prev"), hash=sa.bindparam("b_hash"), key_id=sa.bindparam("b_key"))
    )
    for rows in _rows(conn):
        params = []
        for row in rows:
            new = digest(_payload(row, prev))
            params.append({"b_seq": row[0], "b_prev": prev, "b_hash": new, "b_key": key_id})
            prev = new
        conn.execute(update, params)
        count += len(params)
    return count


def _has_events(conn: sa.Connection) -> bool:
    return conn.execute(sa.select(_events.c.seq).limit(1)).first() is not None


def _sha256(payload: bytes, _key_id: str | None = None) -> str:
    return hashlib.sha256(payload).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    conn = op.get_bind()
    if _has_events(conn):
        broken = _first_break(conn, _sha256)
        if broken is None:
            from app.audit.keys import get_keyring

            ring = get_keyring()
            count = _rehash(conn, lambda payload: ring.sign(payload), ring.current)
            log.info("audit trail: %d events re-keyed with audit key %s", count, ring.current)
        else:
            log.warning(
                "audit trail: the unkeyed chain is broken at event %d; left as it is (verify reports it)",
                broken,
            )
    guard.install(conn)


def downgrade() -> None:
    conn = op.get_bind()
    guard.uninstall(conn)
    if _has_events(conn):
        from app.audit.keys import AuditKeyError, get_keyring

        try:
            ring = get_keyring(create=False)
        except AuditKeyError as exc:
            log.warning("audit trail: keyed hashes kept (%s)", exc)
        else:

            def keyed(payload: bytes, key_id: str | None) -> str | None:
                return ring.sign(payload, key_id) if key_id in ring.keys else None

            broken = _first_break(conn, keyed)
            if broken is None:
                count = _rehash(conn, _sha256, None)
                log.info("audit trail: %d events turned back into plain SHA-256 hashes", count)
            else:
                log.warning("audit trail: the keyed chain is broken at event %d; left as it is", broken)
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("key_id")
