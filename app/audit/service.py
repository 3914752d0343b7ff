"""Appending to and verifying the audit trail.

Every event is hashed over a canonical JSON encoding of its content and the previous event's hash, so any
later edit, insertion or deletion breaks the chain at that point. Appends are serialized: on SQLite the
write transaction (``BEGIN IMMEDIATE``) already is; on PostgreSQL a transaction-scoped advisory lock guards
the chain head, so several workers never fork it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, select

from app.audit.models import AuditEvent, ChainVerification
from app.db import WRITE_LOCK_KEY, utcnow

GENESIS_HASH = "0" * 64


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
) -> str:
    """SHA-256 over the canonical encoding of one event's content and its predecessor's hash."""
    payload = {
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
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def lock_chain(session: Session) -> None:
    """Take the chain-head lock for the rest of the transaction (re-entrant; a no-op on SQLite).

    ``record()`` takes it anyway. A transaction that also locks rows (``FOR UPDATE``) or inserts under a
    unique key that another writer may contend for should call this first, so every writer takes its locks
    in the same order (chain head, then rows) and two of them can never deadlock on PostgreSQL.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})


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
    head = session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    ts = utcnow()
    before_j, after_j = to_jsonable(before), to_jsonable(after)
    digest = event_hash(
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
    )
    session.add(event)
    session.flush()
    return event


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


def verify_chain(session: Session, *, batch: int = 5000, upto: int | None = None) -> ChainVerification:
    """Walk the chain (to event ``upto``, default the end) and report the first link or hash that fails.

    Reads keyset-paged batches of plain rows (bounded memory); the JSON columns are fetched as text and
    decoded here, which is most of the cost of a walk.
    """
    prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    cols = (
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
    )
    conn = session.connection()
    last = 0
    while True:
        stmt = sa.select(*cols).where(AuditEvent.seq > last)
        if upto is not None:
            stmt = stmt.where(AuditEvent.seq <= upto)
        rows = conn.execute(stmt.order_by(AuditEvent.seq).limit(batch)).all()
        if not rows:
            break
        for seq, ts, actor, action, etype, eid, site, before, after, prev_hash, digest in rows:
            reason = None
            if seq != expected_seq:
                reason = f"sequence gap: expected {expected_seq}, found {seq}"
            elif prev_hash != prev:
                reason = "previous-hash link does not match the preceding event"
            else:
                try:
                    before_j, after_j = _load_json(before), _load_json(after)
                except ValueError:
                    reason = "event content is not valid JSON"
                else:
                    recomputed = event_hash(
                        seq=seq,
                        ts=ts,
                        actor=actor,
                        action=action,
                        entity_type=etype,
                        entity_id=eid,
                        site=site,
                        before=before_j,
                        after=after_j,
                        prev_hash=prev_hash,
                    )
                    if recomputed != digest:
                        reason = "event content does not match its hash"
            if reason:
                return ChainVerification(
                    valid=False, events=count, head=prev, first_bad_seq=expected_seq, reason=reason
                )
            prev = digest
            expected_seq += 1
            count += 1
        last = rows[-1][0]
        del rows
    return ChainVerification(valid=True, events=count, head=prev, first_bad_seq=None)


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
