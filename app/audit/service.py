"""Appending to and verifying the audit trail.

Every event's ``hash`` is an HMAC-SHA256, under an audit key kept outside the database (app/audit/keys.py),
of a canonical JSON encoding of its content and the previous event's hash: any later edit, insertion or
deletion breaks the chain at that point, and whoever can write the database but does not hold the key cannot
compute a chain that verifies again. Removal of the newest events leaves no broken link, so every commit that
appends also moves a checkpoint of the head outside the database (app/audit/checkpoint.py), and verification
compares the database with it. The database itself refuses UPDATE and DELETE (app/audit/guard.py).

Appends are serialized: on SQLite the write transaction (``BEGIN IMMEDIATE``) already is; on PostgreSQL a
transaction-scoped advisory lock guards the chain head, so several workers never fork it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, select

from app.audit import checkpoint
from app.audit.checkpoint import HEAD, VERIFIED, Checkpoint, CheckpointError
from app.audit.keys import KeyedHash, Keyring, get_keyring
from app.audit.models import AuditEvent, ChainVerification
from app.db import WRITE_LOCK_KEY, utcnow

GENESIS_HASH = "0" * 64
INSERT_BATCH = 2000


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    return str(value)


# json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable), built once
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable)


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8, datetimes and other objects as ISO strings."""
    return _CANONICAL.encode(value)


def to_jsonable(value: Any) -> Any:
    """The JSON value the trail stores for ``value`` (round-tripped through the canonical encoder)."""
    return None if value is None else json.loads(canonical_json(value))


def _payload(
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    site: str | None,
    before: Any,
    after: Any,
    prev_hash: str,
) -> bytes:
    return _CANONICAL.encode(
        {
            "seq": seq,
            "ts": ts.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "site": site,
            "before": before,
            "after": after,
            "prev_hash": prev_hash,
        }
    ).encode()


def event_payload(
    *,
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    site: str | None,
    before: Any,
    after: Any,
    prev_hash: str,
) -> bytes:
    """The bytes an event's hash covers: the canonical JSON of its content and its predecessor's hash."""
    return _payload(seq, ts, actor, action, entity_type, entity_id, site, before, after, prev_hash)


def event_hash(
    *,
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    site: str | None,
    before: Any,
    after: Any,
    prev_hash: str,
    key_id: str | None = None,
) -> str:
    """HMAC-SHA256 (hex) of one event's payload under audit key ``key_id`` (default: the current key)."""
    payload = _payload(seq, ts, actor, action, entity_type, entity_id, site, before, after, prev_hash)
    return get_keyring().sign(payload, key_id)


def lock_chain(session: Session) -> None:
    """Take the chain-head lock for the rest of the transaction (re-entrant; a no-op on SQLite).

    ``record()`` takes it anyway. A transaction that also locks rows (``FOR UPDATE``) or inserts under a
    unique key that another writer may contend for should call this first, so every writer takes its locks
    in the same order (chain head, then rows) and two of them can never deadlock on PostgreSQL.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})


def _chain_head(session: Session) -> tuple[int, str]:
    head = session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (head[0], head[1]) if head else (0, GENESIS_HASH)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    site: str | None = None,
    before: Any = None,
    after: Any = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (so the change and its record commit together)."""
    lock_chain(session)
    last, prev_hash = _chain_head(session)
    seq = last + 1
    ts = utcnow()
    before_j, after_j = to_jsonable(before), to_jsonable(after)
    # A new keyring is made only for an empty trail: a lost keyring must be restored (or the key set in
    # AIREG_AUDIT_KEY), never silently replaced by a fresh key that would fork the chain's keys.
    ring = get_keyring(create=last == 0)
    digest = ring.sign(
        _payload(seq, ts, actor, action, entity_type, entity_id, site, before_j, after_j, prev_hash)
    )
    event = AuditEvent(
        seq=seq,
        ts=ts,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        site=site,
        before=before_j,
        after=after_j,
        prev_hash=prev_hash,
        hash=digest,
        key_id=ring.current,
    )
    session.add(event)
    session.flush()
    checkpoint.note_append(session, seq, digest)
    return event


def record_many(session: Session, events: list[dict[str, Any]]) -> None:
    """Append many events at once, in the caller's transaction (same links and hashes as ``record``).

    Each item holds ``actor``, ``action``, ``entity_type``, ``entity_id``, ``site`` and optionally
    ``before`` and ``after``; all share one time stamp. Rows go in by batched executemany.
    """
    if not events:
        return
    lock_chain(session)
    seq, prev = _chain_head(session)
    ts = utcnow()
    ring = get_keyring(create=seq == 0)
    rows = []
    for e in events:
        seq += 1
        before, after = to_jsonable(e.get("before")), to_jsonable(e.get("after"))
        actor, action, etype, eid, site = e["actor"], e["action"], e["entity_type"], e["entity_id"], e["site"]
        digest = ring.sign(_payload(seq, ts, actor, action, etype, eid, site, before, after, prev))
        rows.append(
            {
                "seq": seq,
                "ts": ts,
                "actor": actor,
                "action": action,
                "entity_type": etype,
                "entity_id": eid,
                "site": site,
                "before": before,
                "after": after,
                "prev_hash": prev,
                "hash": digest,
                "key_id": ring.current,
            }
        )
        prev = digest
    connection = session.connection()
    for i in range(0, len(rows), INSERT_BATCH):
        connection.execute(AuditEvent.__table__.insert(), rows[i : i + INSERT_BATCH])
    checkpoint.note_append(session, seq, prev)


def head_hash(session: Session) -> str:
    """The hash of the newest event (the genesis hash on an empty trail)."""
    value = session.execute(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).scalar()
    return value or GENESIS_HASH


def iter_events(session: Session, *, batch: int = 5000, **filters: Any) -> Iterator[AuditEvent]:
    """Every event in sequence order, read in keyset-paged batches (bounded memory)."""
    last = 0
    while True:
        stmt = select(AuditEvent).where(AuditEvent.seq > last)
        for name, value in filters.items():
            if value is not None:
                stmt = stmt.where(getattr(AuditEvent, name) == value)
        rows = session.exec(stmt.order_by(AuditEvent.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def _load_json(text: str | bytes | None) -> Any:
    """Decode a stored JSON column: orjson for speed, the standard decoder for what orjson refuses.

    (orjson rejects integers beyond 64 bits, NaN and lone surrogates that ``json`` accepts; both give the same
    Python values otherwise, and the hash is always recomputed with ``json``.)
    """
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


# --- verification --------------------------------------------------------------------------------------


@dataclass
class _Walk:
    events: int  # events that verified (including those before the starting point)
    last_seq: int  # the last of them
    head: str  # its hash
    first_bad_seq: int | None = None
    reason: str | None = None


_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.ts,
    AuditEvent.actor,
    AuditEvent.action,
    AuditEvent.entity_type,
    AuditEvent.entity_id,
    AuditEvent.site,
    sa.cast(AuditEvent.before, sa.Text),
    sa.cast(AuditEvent.after, sa.Text),
    AuditEvent.prev_hash,
    AuditEvent.hash,
    AuditEvent.key_id,
)


def _walk(
    conn: sa.Connection, ring: Keyring, *, after: int, prev: str, batch: int, upto: int | None
) -> _Walk:
    """Check every event after ``after`` (whose hash is ``prev``), in keyset-paged batches of plain rows.

    The JSON columns are fetched as text and decoded here, which is most of the cost of a walk. An event
    without ``key_id`` (a plain SHA-256 hash left from before the keyed chain) never verifies; the walk goes
    on through such events only to name where that old chain breaks, if it does.
    """
    expected = after + 1
    macs: dict[str, KeyedHash | None] = {}
    unkeyed: tuple[int, str] | None = None  # the first unkeyed event, and the hash before it

    def stop(reason: str | None) -> _Walk:
        if unkeyed is None:
            assert reason is not None
            return _Walk(
                events=expected - 1, last_seq=expected - 1, head=prev, first_bad_seq=expected, reason=reason
            )
        detail = f"; the chain also breaks at event {expected}: {reason}" if reason else ""
        return _Walk(
            events=unkeyed[0] - 1,
            last_seq=unkeyed[0] - 1,
            head=unkeyed[1],
            first_bad_seq=unkeyed[0],
            reason=(
                f"event {unkeyed[0]} and later are not keyed (plain SHA-256 hashes from before the keyed "
                f"chain; the upgrade re-keys only a chain that verifies){detail}"
            ),
        )

    last = after
    while True:
        stmt = sa.select(*_COLUMNS).where(AuditEvent.seq > last)
        if upto is not None:
            stmt = stmt.where(AuditEvent.seq <= upto)
        rows = conn.execute(stmt.order_by(AuditEvent.seq).limit(batch)).all()
        if not rows:
            break
        for seq, ts, actor, action, etype, eid, site, before, after_text, prev_hash, digest, key_id in rows:
            reason = None
            if seq != expected:
                reason = f"sequence gap: expected {expected}, found {seq}"
            elif prev_hash != prev:
                reason = "previous-hash link does not match the preceding event"
            else:
                try:
                    before_j, after_j = _load_json(before), _load_json(after_text)
                except ValueError:
                    reason = "event content is not valid JSON"
                else:
                    payload = _payload(seq, ts, actor, action, etype, eid, site, before_j, after_j, prev_hash)
                    if key_id is None:
                        if unkeyed is None:
                            unkeyed = (seq, prev)
                        if hashlib.sha256(payload).hexdigest() != digest:
                            reason = "event content does not match its hash"
                    else:
                        keyed = macs.get(key_id)
                        if keyed is None:
                            # a key unknown here may have been added by a rotation in another process
                            keyed = macs[key_id] = ring.mac(key_id) or get_keyring().mac(key_id)
                        if keyed is None:
                            reason = f"event is keyed with audit key {key_id}, which is not in the keyring"
                        elif keyed.hexdigest(payload) != digest:
                            reason = "event content does not match its hash"
            if reason:
                return stop(reason)
            prev = digest
            expected += 1
        last = rows[-1][0]
        del rows
    if unkeyed is not None:
        return stop(None)
    return _Walk(events=expected - 1, last_seq=expected - 1, head=prev)


def _hash_at(conn: sa.Connection, seq: int) -> str | None:
    if seq == 0:
        return GENESIS_HASH
    return conn.execute(sa.select(AuditEvent.hash).where(AuditEvent.seq == seq)).scalar()


def _committed_hash(session: Session, seq: int) -> str | None:
    """The hash of event ``seq`` as committed now, read outside the caller's transaction.

    On SQLite a read transaction keeps the snapshot of its first read, which may be older than a checkpoint
    read afterwards; a fresh connection (never taking the write lock) sees the latest commit.
    """
    bind = session.get_bind()
    if not isinstance(bind, sa.Engine):
        return _hash_at(session.connection(), seq)
    fresh = bind.execution_options(sqlite_begin="DEFERRED", aireg_write_lock=False)
    with fresh.connect() as conn:
        return _hash_at(conn, seq)


def _read_checkpoints() -> tuple[list[Checkpoint], str | None]:
    found: list[Checkpoint] = []
    for kind in (HEAD, VERIFIED):
        try:
            cp = checkpoint.read_checkpoint(kind)
        except CheckpointError as exc:
            return found, str(exc)
        if cp is not None:
            found.append(cp)
    return found, None


def _against_checkpoints(
    session: Session, walk: _Walk, checkpoints: list[Checkpoint], upto: int | None
) -> tuple[int | None, str | None]:
    """``(first_bad_seq, reason)`` when the database contradicts a checkpoint, else ``(None, None)``."""
    conn = session.connection()
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if upto is not None and cp.seq > upto:
            continue  # beyond what was asked for
        if cp.seq <= walk.last_seq:
            if _hash_at(conn, cp.seq) != cp.hash:
                return cp.seq, _rewritten(cp)
            continue
        committed = _committed_hash(session, cp.seq)
        if committed is None:
            return walk.last_seq + 1, _missing(walk.last_seq, cp)
        if committed != cp.hash:
            return cp.seq, _rewritten(cp)
    return None, None


def _rewritten(cp: Checkpoint) -> str:
    return f"event {cp.seq} is not the one the checkpoint {cp.path} records: the chain was rewritten"


def _missing(last: int, cp: Checkpoint) -> str:
    return (
        f"the newest events are missing: the database ends at event {last} but the checkpoint {cp.path} "
        f"records event {cp.seq}"
    )


def verify_chain(
    session: Session, *, batch: int = 5000, upto: int | None = None, full: bool = True
) -> ChainVerification:
    """Walk the chain (to event ``upto``, default the end) and report the first event that fails.

    An event fails when its link, its sequence number or its keyed hash does not hold. The database then has
    to agree with the checkpoints kept outside it: it must still hold the event each one records, with the
    same hash, else the newest events were removed or the chain rewritten. With ``full=False`` the walk starts
    after the last event a full walk found valid (``audit-verified``), provided the database still holds it
    unchanged; that is quick on a long trail but does not re-check older events. A full walk that finds the
    whole chain valid moves that checkpoint to the head.

    Without a head checkpoint (a fresh state directory beside an existing database) the keyed chain can still
    be valid, but removal of the newest events cannot be seen: ``notice`` says so.
    """
    # Checkpoints first: one written before this read refers to events committed before it, so they are
    # visible to the walk below (or, on SQLite's older snapshot, confirmed on a fresh connection).
    checkpoints, cp_error = _read_checkpoints()
    ring = get_keyring()
    conn = session.connection()
    after, prev = 0, GENESIS_HASH
    if not full and cp_error is None:
        anchor = next((c for c in checkpoints if c.kind == VERIFIED), None)
        if anchor is not None and anchor.seq > 0 and (upto is None or anchor.seq <= upto):
            stored = _hash_at(conn, anchor.seq)
            if stored == anchor.hash:
                after, prev = anchor.seq, anchor.hash
            elif stored is not None:
                return ChainVerification(
                    valid=False,
                    events=anchor.seq - 1,
                    head=_hash_at(conn, anchor.seq - 1) or GENESIS_HASH,
                    first_bad_seq=anchor.seq,
                    reason=f"event {anchor.seq} is not the one the checkpoint {anchor.path} records",
                    checkpoint_seq=anchor.seq,
                )
    walk = _walk(conn, ring, after=after, prev=prev, batch=batch, upto=upto)
    checkpoint_seq = max((c.seq for c in checkpoints), default=None)
    result = ChainVerification(
        valid=walk.first_bad_seq is None,
        events=walk.events,
        head=walk.head,
        first_bad_seq=walk.first_bad_seq,
        reason=walk.reason,
        checkpoint_seq=checkpoint_seq,
        from_seq=after + 1,
    )
    if not result.valid:
        return result
    if cp_error is not None:
        return result.model_copy(update={"valid": False, "reason": cp_error})
    bad, reason = _against_checkpoints(session, walk, checkpoints, upto)
    if bad is not None:
        # events beyond the bad one are not vouched for: report the chain up to the event before it
        head = walk.head if bad > walk.last_seq else (_hash_at(conn, bad - 1) or GENESIS_HASH)
        return result.model_copy(
            update={
                "valid": False,
                "first_bad_seq": bad,
                "reason": reason,
                "events": min(walk.events, bad - 1),
                "head": head,
            }
        )
    if not any(c.kind == HEAD for c in checkpoints) and walk.events:
        result.notice = (
            f"no head checkpoint in {checkpoint.checkpoint_path(HEAD).parent}: removal of the newest events "
            "cannot be detected until the next appended event writes one"
        )
    if upto is None and walk.last_seq > 0:
        try:
            checkpoint.write_checkpoint(VERIFIED, walk.last_seq, walk.head)
        except OSError:  # the answer stands; the next quick walk just starts further back
            checkpoint.log.exception("audit-verified checkpoint not written")
    return result


def reset_checkpoints(session: Session) -> ChainVerification:
    """Verify the keyed chain alone (ignoring the checkpoints) and, if it holds, checkpoint its head anew.

    For the database owner after a deliberate rollback of the trail (a restore of an older backup): the
    checkpoints would otherwise report the events since the backup as removed.
    """
    walk = _walk(session.connection(), get_keyring(), after=0, prev=GENESIS_HASH, batch=5000, upto=None)
    result = ChainVerification(
        valid=walk.first_bad_seq is None,
        events=walk.events,
        head=walk.head,
        first_bad_seq=walk.first_bad_seq,
        reason=walk.reason,
    )
    if result.valid:
        checkpoint.remove_checkpoints()
        if walk.last_seq > 0:
            checkpoint.write_checkpoint(HEAD, walk.last_seq, walk.head, reset=True)
            checkpoint.write_checkpoint(VERIFIED, walk.last_seq, walk.head, reset=True)
        result.checkpoint_seq = walk.last_seq or None
    return result


def record_denial(denial: dict[str, Any]) -> None:
    """Write a denied attempt in a transaction of its own (the request that was denied changed nothing)."""
    from app.db import session_scope

    with session_scope() as session:
        record(
            session,
            actor=str(denial["actor"]),
            action="access.denied",
            entity_type=str(denial["obj"]),
            entity_id=str(denial.get("entity_id") or "-"),
            site=denial.get("site"),
            after={"attempted": denial["act"], "site": denial.get("site")},
        )
