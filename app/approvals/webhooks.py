"""Outbound webhooks on approval state changes: an outbox written in the changing transaction, delivered
by a background thread after commit, so a slow or dead receiver never holds up the request that caused it.

Deliveries follow the Standard Webhooks specification (https://www.standardwebhooks.com), so the stock
``standardwebhooks`` library of any language verifies them: ``POST AIREG_WEBHOOK_URL`` with the JSON body
``{"type": "approval.approved", "timestamp": <ISO 8601>, "data": {"approval": {...}}}`` and the headers
``webhook-id`` (``msg_<outbox id>``, the same on every retry), ``webhook-timestamp`` (Unix seconds of this
attempt) and ``webhook-signature: v1,<base64>``, the HMAC-SHA256 over ``<id>.<timestamp>.<raw body>`` keyed
with the base64-decoded part of ``AIREG_WEBHOOK_SECRET`` (``whsec_<base64>``). While
``AIREG_WEBHOOK_SECRET_PREVIOUS`` is set (a rotation), every delivery carries a second signature made with it
(``v1,<new> v1,<old>``), so receivers holding either secret verify; unset it once they all have the new one.
Any 2xx is a delivery; anything else (or no answer) is retried with exponential backoff
(``BACKOFF_BASE * 2**(attempt-1)``, at most ``BACKOFF_MAX``) until ``MAX_ATTEMPTS``, then given up (kept in
``webhook_outbox`` with the last error). Retries can reorder events of one approval; the id grows with time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, col, select

from app.approvals.models import WebhookOutbox
from app.db import session_scope, utcnow
from app.settings import get_settings

log = logging.getLogger("aireg.webhooks")

BACKOFF_BASE = timedelta(seconds=5)
BACKOFF_MAX = timedelta(hours=1)
MAX_ATTEMPTS = 10
CLAIM_FOR = timedelta(seconds=60)  # a delivery claimed by a worker that died is retried after this
POLL_SECONDS = 1.0  # how often due retries (and rows written by other processes) are looked for
TIMEOUT_SECONDS = 10.0
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the Standard Webhooks specification asks for 24 to 64 random bytes
NEW_SECRET_HINT = (
    'make one with: python -c "import base64, secrets; '
    "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
)


class WebhookConfigError(RuntimeError):
    """``AIREG_WEBHOOK_URL`` is set without a usable ``AIREG_WEBHOOK_SECRET``, or a secret is malformed."""


def configured() -> bool:
    return bool(get_settings().webhook_url)


def secret_key(secret: str, name: str = "AIREG_WEBHOOK_SECRET") -> bytes:
    """The HMAC key inside a ``whsec_<base64>`` secret; ``WebhookConfigError`` naming ``name`` otherwise."""
    encoded = secret.strip()
    if not encoded.startswith(SECRET_PREFIX):
        raise WebhookConfigError(
            f"{name} must be a Standard Webhooks secret, whsec_<base64 of {MIN_SECRET_BYTES} to 64 random "
            f"bytes>; {NEW_SECRET_HINT}"
        )
    encoded = encoded.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookConfigError(f"{name}: the part after whsec_ is not base64; {NEW_SECRET_HINT}") from None
    if len(key) < MIN_SECRET_BYTES:
        raise WebhookConfigError(
            f"{name} holds {len(key)} bytes, at least {MIN_SECRET_BYTES} are needed; {NEW_SECRET_HINT}"
        )
    return key


def signing_keys() -> list[bytes]:
    """The keys every delivery is signed with: the current secret, then the previous one during a rotation."""
    settings = get_settings()
    if not settings.webhook_url or not settings.webhook_secret:
        raise WebhookConfigError(
            "AIREG_WEBHOOK_URL is set, so AIREG_WEBHOOK_SECRET must be set too (a whsec_ secret) to sign "
            f"the deliveries; {NEW_SECRET_HINT}"
        )
    keys = [secret_key(settings.webhook_secret)]
    if settings.webhook_secret_previous:
        keys.append(secret_key(settings.webhook_secret_previous, "AIREG_WEBHOOK_SECRET_PREVIOUS"))
    return keys


def check_config() -> None:
    """Refuse to start with a webhook URL and no usable signing secret (unsigned events can be forged)."""
    if configured():
        signing_keys()


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature, ``v1,<base64 HMAC-SHA256 of "<msg_id>.<timestamp>.<body>">``."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def enqueue(
    session: Session,
    event_name: str,
    approval: dict[str, Any],
    *,
    approval_id: str | None,
    subject: str = "approval",
) -> None:
    """Queue one event in the caller's transaction; it is sent once that transaction commits.

    The outbox keeps the body as sent, ``{"type", "timestamp", "data": {subject: ...}}`` (``subject`` is
    ``approval`` for approval events)."""
    if not configured():
        return
    now = utcnow()
    row = WebhookOutbox(
        event=event_name,
        approval_id=approval_id,
        payload={"type": event_name, "timestamp": now, "data": {subject: approval}},
        created_at=now,
        next_attempt_at=now,
    )
    row.payload = orjson.loads(orjson.dumps(row.payload, option=orjson.OPT_UTC_Z))
    session.add(row)
    session.flush()
    event.listen(session, "after_commit", _kick_after_commit, once=True)


def _kick_after_commit(_session: Session) -> None:
    worker = _worker
    if worker is not None:
        worker.kick()


def _backoff(attempts: int) -> timedelta:
    return min(BACKOFF_BASE * (1 << max(attempts - 1, 0)), BACKOFF_MAX)


def _due(now: datetime) -> sa.ColumnElement[bool]:
    claimed_until = col(WebhookOutbox.claimed_until)
    return sa.and_(
        col(WebhookOutbox.delivered_at).is_(None),
        col(WebhookOutbox.gave_up_at).is_(None),
        col(WebhookOutbox.next_attempt_at) <= now,
        sa.or_(claimed_until.is_(None), claimed_until < now),
    )


def _claim(row_id: int) -> WebhookOutbox | None:
    now = utcnow()
    with session_scope() as session:
        # An UPDATE's result is a CursorResult (which has rowcount); Session.execute is typed as any Result.
        result = session.execute(
            sa.update(WebhookOutbox)
            .where(col(WebhookOutbox.id) == row_id, _due(now))
            .values(claimed_until=now + CLAIM_FOR)
        )
        claimed = cast("CursorResult[Any]", result).rowcount
        return session.get(WebhookOutbox, row_id) if claimed else None


def _body(row: WebhookOutbox) -> bytes:
    payload = row.payload
    if "type" not in payload:  # queued before the Standard Webhooks format (2026-12): same data, new shape
        data = {k: v for k, v in payload.items() if k not in ("event", "occurred_at")}
        payload = {"type": row.event, "timestamp": payload.get("occurred_at"), "data": data}
    return orjson.dumps(payload)


def _send(client: httpx.Client, row: WebhookOutbox) -> tuple[int | None, str | None]:
    body = _body(row)
    msg_id = f"msg_{row.id}"
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "aireg-webhooks/2",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(key, msg_id, timestamp, body) for key in signing_keys()),
    }
    try:
        response = client.post(str(get_settings().webhook_url), content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def _record_attempt(row_id: int, status: int | None, error: str | None) -> None:
    now = utcnow()
    with session_scope() as session:
        row = session.get(WebhookOutbox, row_id)
        if row is None:
            return
        row.attempts += 1
        row.last_status = status
        row.last_error = error
        row.claimed_until = None
        if error is None:
            row.delivered_at = now
        elif row.attempts >= MAX_ATTEMPTS:
            row.gave_up_at = now
            log.error(
                "webhook %s (%s) given up after %d attempts: %s", row.id, row.event, row.attempts, error
            )
        else:
            row.next_attempt_at = now + _backoff(row.attempts)
        session.add(row)


def deliver_due(client: httpx.Client, *, limit: int = 50) -> int:
    """Send every due delivery once (never inside a database transaction); returns how many were tried."""
    if not configured():
        return 0
    with session_scope(write=False) as session:
        ids = session.exec(
            select(col(WebhookOutbox.id)).where(_due(utcnow())).order_by(col(WebhookOutbox.id)).limit(limit)
        ).all()
    tried = 0
    for row_id in ids:
        assert row_id is not None  # a stored row always has its primary key
        row = _claim(row_id)
        if row is None:
            continue  # another worker has it
        status, error = _send(client, row)
        _record_attempt(row_id, status, error)
        tried += 1
    return tried


class Worker(threading.Thread):
    """The approvals background thread: webhook deliveries, and the periodic ``sweep`` (expiry)."""

    def __init__(self, sweep: Callable[[], Any] | None, sweep_seconds: float) -> None:
        super().__init__(name="aireg-approvals-worker", daemon=True)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._sweep = sweep
        self._sweep_seconds = sweep_seconds

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        self.join(timeout)

    def run(self) -> None:
        next_sweep = time.monotonic()
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
            while not self._stopping.is_set():
                try:
                    if self._sweep is not None and time.monotonic() >= next_sweep:
                        next_sweep = time.monotonic() + self._sweep_seconds
                        self._sweep()
                    while deliver_due(client) and not self._stopping.is_set():
                        pass
                except Exception:  # keep the worker alive; the next round retries
                    log.exception("approvals background worker round failed")
                self._wake.wait(POLL_SECONDS if configured() else self._sweep_seconds)
                self._wake.clear()


_worker: Worker | None = None
_worker_lock = threading.Lock()


def start_worker(sweep: Callable[[], Any] | None = None, sweep_seconds: float = 60.0) -> Worker:
    """Start this process's background worker (replacing a stopped one)."""
    global _worker
    with _worker_lock:
        if _worker is not None and _worker.is_alive():
            _worker.stop()
        _worker = Worker(sweep, sweep_seconds)
        _worker.start()
        return _worker


def stop_worker() -> None:
    global _worker
    with _worker_lock:
        if _worker is not None:
            _worker.stop()
            _worker = None
