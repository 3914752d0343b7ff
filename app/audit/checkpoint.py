"""Checkpoints of the audit trail, kept outside the database beside the keys.

``<state_dir>/audit-head`` records the newest event this instance has committed: ``{seq, hash, key_id, mac}``
where ``mac`` is an HMAC over the kind, ``seq`` and ``hash`` under the key ``key_id``. It is written after
every commit that appended events (a session ``after_commit`` hook), under an ``flock`` and by
write-then-rename, and it never goes back: a lower ``seq`` never replaces a higher one. Verification then
finds removal of the newest events (the database ends before the checkpoint) and a rewritten chain (the event
at the checkpoint's ``seq`` has another hash). ``<state_dir>/audit-verified`` records the last event a full
walk found valid, so a quick verification can start after it.

The checkpoint is a lower bound: a transaction that rolled back a savepoint after appending, or a crash
between the commit and the write, leaves it one commit behind, never ahead. A checkpoint that does not carry
a valid MAC is evidence of tampering and is never overwritten by a write; only an explicit reset (after a
restore, ``aireg audit reset-checkpoint``) replaces it.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.audit.keys import get_keyring, locked, state_dir
from app.settings import get_settings

HEAD = "audit-head"
VERIFIED = "audit-verified"
KINDS = (HEAD, VERIFIED)
_HASH = re.compile(r"[0-9a-f]{64}")
_PENDING = "aireg.audit.pending_head"
_WATCHED = "aireg.audit.watched"

log = logging.getLogger("aireg.audit")


class CheckpointError(ValueError):
    """A checkpoint file that exists but cannot be trusted (unreadable, unknown key, wrong MAC)."""


@dataclass(frozen=True)
class Checkpoint:
    """A MAC-checked checkpoint: event ``seq`` had hash ``hash``."""

    kind: str
    seq: int
    hash: str
    key_id: str
    path: Path


def checkpoint_path(kind: str) -> Path:
    return Path(get_settings().state_dir) / kind


def _message(kind: str, seq: int, digest: str) -> bytes:
    return f"aireg {kind}\n{seq}\n{digest}".encode("ascii")


def read_checkpoint(kind: str) -> Checkpoint | None:
    """The checkpoint of ``kind`` (None if there is none); ``CheckpointError`` if it cannot be trusted."""
    path = checkpoint_path(kind)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        seq, digest, key_id, mac = data["seq"], data["hash"], data["key_id"], data["mac"]
        if not (isinstance(seq, int) and seq >= 0 and isinstance(digest, str) and _HASH.fullmatch(digest)):
            raise ValueError("seq or hash out of range")
        if not (isinstance(key_id, str) and isinstance(mac, str)):
            raise ValueError("key_id or mac missing")
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"the checkpoint {path} is unreadable ({exc})") from None
    ring = get_keyring()
    if key_id not in ring.keys:
        raise CheckpointError(
            f"the checkpoint {path} is keyed with audit key {key_id}, which is not in the keyring"
        )
    if not hmac.compare_digest(ring.sign(_message(kind, seq, digest), key_id), mac):
        raise CheckpointError(
            f"the checkpoint {path} does not carry a valid MAC (it was not written by aireg)"
        )
    return Checkpoint(kind=kind, seq=seq, hash=digest, key_id=key_id, path=path)


def write_checkpoint(kind: str, seq: int, digest: str, *, reset: bool = False) -> bool:
    """Record that event ``seq`` has hash ``digest``; returns whether the file changed.

    Without ``reset`` the checkpoint only moves forward, and one that cannot be trusted is left in place (it
    is the evidence). Safe across processes: an ``flock`` serializes writers, readers see the old file or the
    new one whole (write to a temporary file, then rename over).
    """
    directory = state_dir()
    path = directory / kind
    with locked(directory / f"{kind}.lock"):
        if not reset:
            try:
                current = read_checkpoint(kind)
            except CheckpointError as exc:
                log.error("audit checkpoint not moved to event %s: %s", seq, exc)
                return False
            if current is not None and current.seq >= seq:
                return False
        ring = get_keyring()
        body = {
            "seq": seq,
            "hash": digest,
            "key_id": ring.current,
            "mac": ring.sign(_message(kind, seq, digest)),
        }
        tmp = directory / f".{kind}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(body).encode("ascii") + b"\n")
        finally:
            os.close(fd)
        os.replace(tmp, path)
    return True


def remove_checkpoints() -> None:
    """Delete both checkpoint files (a fresh start; the next append writes the head again)."""
    for kind in KINDS:
        checkpoint_path(kind).unlink(missing_ok=True)


# --- writing the head after a commit -------------------------------------------------------------------


def note_append(session: Session, seq: int, digest: str) -> None:
    """Remember the newest event appended in ``session``; the head checkpoint follows once it commits."""
    info = session.info
    if not info.get(_WATCHED):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_soft_rollback", _after_soft_rollback)
        event.listen(session, "after_transaction_end", _after_transaction_end)
        info[_WATCHED] = True
    info[_PENDING] = (seq, digest)


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the transaction may still roll back
        return
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    try:
        write_checkpoint(HEAD, *pending)
    except Exception:  # the events are committed: report, never turn a committed write into an error
        log.exception("audit head checkpoint not written after event %s", pending[0])


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    # a savepoint rolled back may have held the noted event: skip this checkpoint (it stays behind, not ahead)
    session.info.pop(_PENDING, None)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> Any:
    if transaction.parent is None:  # the outermost transaction ended without a commit writing the note
        session.info.pop(_PENDING, None)
