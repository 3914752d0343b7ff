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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, Unpack, cast

import orjson
import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.audit import checkpoint
from app.audit.checkpoint import HEAD, VERIFIED, Checkpoint, CheckpointError
from app.audit.keys import KeyedHash, Keyring, get_keyring
from app.audit.models import AuditEvent, ChainVerification
from app.db import WRITE_LOCK_KEY, utcnow

GENESIS_HASH = "0" * 64
INSERT_BATCH = 2000

_TABLE = cast(sa.Table, AuditEvent.__table__)  # type: ignore[attr-defined]  # SQLModel sets it at class creation


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


class EventFields(TypedDict):
    """What an event's hash covers besides the key: its content and its predecessor's hash."""

    # in the order the canonical form writes them
    action: str
    actor: str
    after: Any
    before: Any
    entity_id: str
    entity_type: str
    prev_hash: str
    seq: int
    site: str | None
    ts: datetime


def event_payload(**fields: Unpack[EventFields]) -> bytes:
    """The bytes an event's hash covers: the canonical JSON of its content and its predecessor's hash.

    This is the one definition of the signed form; the verification walk computes the same bytes faster
    (``_walk``) but accepts them only where they reproduce the stored keyed hash, and checks every other
    event against this function.
    """
    return _CANONICAL.encode({**fields, "ts": fields["ts"].isoformat(timespec="microseconds")}).encode()


def event_hash(*, key_id: str | None = None, **fields: Unpack[EventFields]) -> str:
    """HMAC-SHA256 (hex) of one event's payload under audit key ``key_id`` (default: the current key)."""
    return get_keyring().sign(event_payload(**fields), key_id)


def lock_chain(session: Session) -> None:
    """Take the chain-head lock for the rest of the transaction (re-entrant; a no-op on SQLite).

    ``record()`` takes it anyway. A transaction that also locks rows (``FOR UPDATE``) or inserts under a
    unique key that another writer may contend for should call this first, so every writer takes its locks
    in the same order (chain head, then rows) and two of them can never deadlock on PostgreSQL.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})


def _chain_head(session: Session) -> tuple[int, str]:
    seq, digest = col(AuditEvent.seq), col(AuditEvent.hash)
    head = session.execute(sa.select(seq, digest).order_by(seq.desc()).limit(1)).first()
    return (head[0], head[1]) if head else (0, GENESIS_HASH)


def _append(session: Session, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that append ``events`` to the chain (linked, hashed, all at one time stamp), not yet stored.

    Takes the chain-head lock; the caller inserts the rows and then calls ``checkpoint.note_append``.
    """
    lock_chain(session)
    seq, prev = _chain_head(session)
    ts = utcnow()
    # A new keyring is made only for an empty trail: a lost keyring must be restored (or the key set in
    # AIREG_AUDIT_KEY), never silently replaced by a fresh key that would fork the chain's keys.
    ring = get_keyring(create=seq == 0)
    rows = []
    for e in events:
        seq += 1
        fields = EventFields(
            seq=seq,
            ts=ts,
            actor=e["actor"],
            action=e["action"],
            entity_type=e["entity_type"],
            entity_id=e["entity_id"],
            site=e.get("site"),
            before=to_jsonable(e.get("before")),
            after=to_jsonable(e.get("after")),
            prev_hash=prev,
        )
        prev = ring.sign(event_payload(**fields))
        rows.append({**fields, "hash": prev, "key_id": ring.current})
    return rows


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
    content = {"actor": actor, "action": action, "entity_type": entity_type, "entity_id": entity_id}
    (row,) = _append(session, [{**content, "site": site, "before": before, "after": after}])
    event = AuditEvent(**row)
    session.add(event)
    session.flush()
    checkpoint.note_append(session, event.seq, event.hash)
    return event


def record_many(session: Session, events: list[dict[str, Any]]) -> None:
    """Append many events at once, in the caller's transaction (same links and hashes as ``record``).

    Each item holds ``actor``, ``action``, ``entity_type``, ``entity_id``, ``site`` and optionally
    ``before`` and ``after``; all share one time stamp. Rows go in by batched executemany.
    """
    if not events:
        return
    rows = _append(session, events)
    connection = session.connection()
    for i in range(0, len(rows), INSERT_BATCH):
        connection.execute(_TABLE.insert(), rows[i : i + INSERT_BATCH])
    checkpoint.note_append(session, rows[-1]["seq"], rows[-1]["hash"])


def head_hash(session: Session) -> str:
    """The hash of the newest event (the genesis hash on an empty trail)."""
    return _chain_head(session)[1]


def iter_events(session: Session, *, batch: int = 5000, **filters: Any) -> Iterator[AuditEvent]:
    """Every event in sequence order, read in keyset-paged batches (bounded memory)."""
    last = 0
    while True:
        stmt = select(AuditEvent).where(col(AuditEvent.seq) > last)
        for name, value in filters.items():
            if value is not None:
                stmt = stmt.where(_TABLE.c[name] == value)
        rows = session.exec(stmt.order_by(col(AuditEvent.seq)).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def _load_json(text: str | None) -> Any:
    """Decode a stored JSON column with the standard decoder, the counterpart of the canonical encoder.

    (orjson, which the walk's fast path uses, turns integers beyond 64 bits into floats; ``json`` keeps them.)
    """
    return None if text is None else json.loads(text)


# --- verification --------------------------------------------------------------------------------------


@dataclass
class _Walk:
    events: int  # events that verified (including those before the starting point)
    last_seq: int  # the last of them
    head: str  # its hash
    first_bad_seq: int | None = None
    reason: str | None = None

    def verification(self, **more: Any) -> ChainVerification:
        """What the walk found, as the answer of a verification (``more``: its other fields)."""
        return ChainVerification(
            valid=self.first_bad_seq is None,
            events=self.events,
            head=self.head,
            first_bad_seq=self.first_bad_seq,
            reason=self.reason,
            **more,
        )


_SORT_KEYS = orjson.OPT_SORT_KEYS


def _walk_columns(dialect: str) -> list[sa.ColumnElement[Any]]:
    """The columns the walk reads, by position, with no result processing in Python.

    ``ts`` comes as the text ``event_payload`` puts in the payload (ISO 8601, microseconds, ``+00:00``),
    formatted by the database from how it stores the column (SQLite: naive UTC text as ``UTCDateTime``
    writes it); the JSON columns come as their stored text (``null`` for SQL NULL).
    """
    c = _TABLE.c
    ts: sa.ColumnElement[Any]
    if dialect == "postgresql":
        ts = sa.func.to_char(
            sa.func.timezone("UTC", c.ts), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"', type_=sa.Text
        )
    else:
        ts = sa.func.replace(sa.cast(c.ts, sa.Text), " ", "T", type_=sa.Text).concat("+00:00")
    before = sa.func.coalesce(sa.cast(c.before, sa.Text), "null")
    after = sa.func.coalesce(sa.cast(c.after, sa.Text), "null")
    return [c.seq, ts, c.actor, c.action, c.entity_type, c.entity_id, c.site, before, after]


def _walk(
    conn: sa.Connection, ring: Keyring, *, after: int, prev: str, batch: int, upto: int | None
) -> _Walk:
    """Check every event after ``after`` (whose hash is ``prev``), in batches of plain rows (``_batches``).

    The fast path rebuilds each event's payload with orjson from the row as read (one decode of the JSON
    columns, one encode of the whole payload, one keyed hash) and accepts the event when its keyed hash
    matches the stored one: then these bytes are the signed ones. orjson reads or writes a few values
    differently from the canonical encoder (floats below 1e-4, NaN, integers beyond 64 bits); such events,
    and unusual rows (an unkeyed event, a broken link, an unknown key, a tampered one), take the slow path,
    ``_check_event``, which decides with ``event_payload`` itself. An event without
    ``key_id`` (a plain SHA-256 hash left from before the keyed chain) never verifies; the walk goes on
    through such events only to name where that old chain breaks, if it does.
    """
    expected = after + 1
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

    macs = _Macs(ring)
    key_id_now, mac = ring.current, ring.mac(ring.current)
    dumps, loads = orjson.dumps, orjson.loads
    for rows in _batches(conn, after=after, upto=upto, batch=batch):
        for seq, ts, actor, action, etype, eid, site, before, after_text, prev_hash, digest, key_id in rows:
            if seq == expected and prev_hash == prev and key_id is not None:
                if key_id != key_id_now:
                    key_id_now, mac = key_id, macs.get(key_id)
                try:
                    payload = dumps(
                        {
                            "action": action,
                            "actor": actor,
                            "after": loads(after_text),
                            "before": loads(before),
                            "entity_id": eid,
                            "entity_type": etype,
                            "prev_hash": prev,
                            "seq": seq,
                            "site": site,
                            "ts": ts,
                        },
                        option=_SORT_KEYS,
                    )
                except (orjson.JSONDecodeError, orjson.JSONEncodeError):
                    payload = b""
                if mac is not None and not _big_float(payload) and mac.hexdigest(payload) == digest:
                    prev = digest
                    expected += 1
                    continue
            reason, is_unkeyed = _check_event(conn, macs, seq, expected, prev)
            if is_unkeyed and unkeyed is None:
                unkeyed = (seq, prev)
            if reason:
                return stop(reason)
            prev = digest
            expected += 1
    if unkeyed is not None:
        return stop(None)
    return _Walk(events=expected - 1, last_seq=expected - 1, head=prev)


def _big_float(payload: bytes) -> bool:
    """Whether orjson wrote a float of 1e16 or more (``e+``), which is also what it makes of an integer beyond
    64 bits: a signed float could then be swapped for an integer that rounds to it without changing the fast
    path's bytes, so such events are decided by the canonical slow path. (A ``+`` is rare outside the time
    stamp's offset, so this looks at each one instead of searching for the pair.)"""
    plus = payload.find(b"+")
    while plus != -1:
        if payload[plus - 1] == 0x65:  # b"e"
            return True
        plus = payload.find(b"+", plus + 1)
    return False


class _Macs:
    """The keyed hashes of the keys the walk meets (a key unknown to ``ring`` may come from a rotation in
    another process, so the current keyring is asked too)."""

    def __init__(self, ring: Keyring) -> None:
        self._ring = ring
        self._found: dict[str, KeyedHash | None] = {}

    def get(self, key_id: str) -> KeyedHash | None:
        if key_id not in self._found:
            self._found[key_id] = self._ring.mac(key_id) or get_keyring().mac(key_id)
        return self._found[key_id]


def _batches(conn: sa.Connection, *, after: int, upto: int | None, batch: int) -> Iterator[Sequence[Any]]:
    """The rows of events after ``after`` (to ``upto``) as plain tuples, by windows of ``batch`` numbers.

    Each read asks for a range of ``seq`` with both bounds, which the primary key answers in time proportional
    to the window even before PostgreSQL has statistics of the table (``seq > n ORDER BY seq LIMIT k`` may
    then be planned as a scan and sort of the whole table, every batch). An empty window ends the walk unless
    events follow further on (a gap, which the walk reports). The Core statement is compiled once and run on
    the DBAPI cursor of the caller's connection (in its transaction): a ``Row`` per event would cost about
    as much as checking it.
    """
    c = _TABLE.c
    window = (c.seq > sa.bindparam("first")) & (c.seq <= sa.bindparam("stop"))
    stmt = sa.select(*_walk_columns(conn.dialect.name), c.prev_hash, c.hash, c.key_id).where(window)
    compiled = stmt.order_by(c.seq).compile(dialect=conn.dialect)
    cursor = conn.connection.cursor()
    try:
        last = after
        while upto is None or last < upto:
            stop = last + batch if upto is None else min(last + batch, upto)
            params = compiled.construct_params({"first": last, "stop": stop})
            if compiled.positiontup is not None:
                cursor.execute(compiled.string, tuple(params[name] for name in compiled.positiontup))
            else:
                cursor.execute(compiled.string, params)
            rows = cursor.fetchall()
            if rows:
                yield rows
                del rows
                last = stop
                continue
            after_gap = sa.select(sa.func.min(c.seq)).where(c.seq > last)
            if upto is not None:
                after_gap = after_gap.where(c.seq <= upto)
            found = conn.execute(after_gap).scalar()
            if found is None:
                return
            last = found - 1
    finally:
        cursor.close()


def _check_event(
    conn: sa.Connection, macs: _Macs, seq: int, expected: int, prev: str
) -> tuple[str | None, bool]:
    """Why event ``seq`` (expected: event ``expected``, after hash ``prev``) does not verify (None if it
    does), and whether it is an unkeyed event.

    The slow path of ``_walk``: the event read again with its typed columns and hashed over ``event_payload``.
    """
    if seq != expected:
        return f"sequence gap: expected {expected}, found {seq}", False
    c = _TABLE.c
    row = conn.execute(
        sa.select(c.ts, c.actor, c.action, c.entity_type, c.entity_id, c.site)
        .add_columns(sa.cast(c.before, sa.Text), sa.cast(c.after, sa.Text), c.prev_hash, c.hash, c.key_id)
        .where(c.seq == seq)
    ).one()
    ts, actor, action, entity_type, entity_id, site, before, after, prev_hash, digest, key_id = row
    if prev_hash != prev:
        return "previous-hash link does not match the preceding event", False
    try:
        before_j, after_j = _load_json(before), _load_json(after)
    except ValueError:
        return "event content is not valid JSON", False
    payload = event_payload(
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
    mismatch = "event content does not match its hash"
    if key_id is None:
        return (None if hashlib.sha256(payload).hexdigest() == digest else mismatch), True
    keyed = macs.get(key_id)
    if keyed is None:
        return f"event is keyed with audit key {key_id}, which is not in the keyring", False
    return (None if keyed.hexdigest(payload) == digest else mismatch), False


def _hash_at(conn: sa.Connection, seq: int) -> str | None:
    if seq == 0:
        return GENESIS_HASH
    return conn.execute(sa.select(col(AuditEvent.hash)).where(col(AuditEvent.seq) == seq)).scalar()


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
    result = walk.verification(checkpoint_seq=checkpoint_seq, from_seq=after + 1)
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
    result = walk.verification()
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
