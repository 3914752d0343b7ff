"""Outbound webhooks: signed with HMAC-SHA256, retried with backoff, never holding up the request."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from app.approvals import webhooks
from app.approvals.models import WebhookOutbox
from app.db import session_scope
from app.settings import get_settings
from tests.approvals.helpers import MINIMAL, sign, submit

SECRET = "webhook-test-secret-0123456789"


class Receiver:
    """A real HTTP receiver on 127.0.0.1 that fails the first ``fail_first`` deliveries with 500."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.delay = delay
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.received.append(
                        {"headers": dict(self.headers), "body": body, "at": time.monotonic()}
                    )
                    failing = len(receiver.received) <= receiver.fail_first
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/aireg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} deliveries, got {len(self.received)}")


@pytest.fixture
def receiver(db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """Requested before ``client``: the app starts with the webhook configured and fast retries."""
    r = Receiver(fail_first=1)
    monkeypatch.setenv("AIREG_WEBHOOK_URL", r.url)
    monkeypatch.setenv("AIREG_WEBHOOK_SECRET", SECRET)
    monkeypatch.setattr(webhooks, "BACKOFF_BASE", timedelta(milliseconds=300))
    monkeypatch.setattr(webhooks, "POLL_SECONDS", 0.1)
    get_settings.cache_clear()
    yield r
    r.close()
    monkeypatch.undo()
    get_settings.cache_clear()


def _verify(delivery: dict[str, Any]) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    expected = hmac.new(
        SECRET.encode(), headers["x-aireg-timestamp"].encode() + b"." + delivery["body"], hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(headers["x-aireg-signature"], f"sha256={expected}")
    payload = json.loads(delivery["body"])
    assert headers["x-aireg-event"] == payload["event"] and headers["x-aireg-delivery"] == str(payload["id"])
    return payload


def test_events_are_signed_and_retried(receiver: Receiver, client: Any, team: dict, make_system: Any) -> None:
    system = make_system(MINIMAL)
    a = submit(client, team["bob"], system, "v1", "production")["id"]
    first, retry = receiver.wait_for(2)
    assert first["body"] == retry["body"]  # the same delivery, again after the 500
    assert retry["at"] - first["at"] >= 0.25  # backoff
    payload = _verify(retry)
    assert payload["event"] == "approval.submitted" and payload["approval"]["id"] == a
    assert payload["approval"]["state"] == "submitted" and payload["approval"]["system_id"] == system

    sign(client, team["clara"], a, "compliance_officer")  # not a state change: no event
    sign(client, team["berta"], a, "business_owner")
    deliveries = receiver.wait_for(3)
    payload = _verify(deliveries[2])
    assert payload["event"] == "approval.approved" and payload["approval"]["valid_until"]
    r = client.post(f"/api/v1/approvals/{a}/revoke", json={"reason": "test"}, headers=team["clara"])
    assert r.status_code == 200
    payload = _verify(receiver.wait_for(4)[3])
    assert payload["event"] == "approval.revoked" and payload["approval"]["close_reason"] == "test"
    time.sleep(0.3)
    assert len(receiver.received) == 4
    with session_scope() as session:
        rows = session.execute(sa.select(WebhookOutbox).order_by(WebhookOutbox.id)).scalars().all()
        assert [(r.event, r.attempts, r.delivered_at is not None) for r in rows] == [
            ("approval.submitted", 2, True),
            ("approval.approved", 1, True),
            ("approval.revoked", 1, True),
        ]


def test_a_slow_receiver_does_not_block_requests(
    receiver: Receiver, client: Any, team: dict, make_system: Any
) -> None:
    receiver.fail_first = 0
    receiver.delay = 2.0
    system = make_system(MINIMAL)
    started = time.monotonic()
    a = submit(client, team["bob"], system, "v1", "production")["id"]
    w = client.post(f"/api/v1/approvals/{a}/withdraw", headers=team["bob"])
    assert w.status_code == 200
    assert time.monotonic() - started < 1.5  # the 2 s receiver is not in the request's path
    events = [_verify(d)["event"] for d in receiver.wait_for(2)]
    assert events == ["approval.submitted", "approval.withdrawn"]


def test_dead_receiver_is_given_up(monkeypatch: pytest.MonkeyPatch, db: None) -> None:
    monkeypatch.setenv("AIREG_WEBHOOK_URL", "http://127.0.0.1:9/nobody")
    monkeypatch.setenv("AIREG_WEBHOOK_SECRET", SECRET)
    monkeypatch.setattr(webhooks, "BACKOFF_BASE", timedelta(0))
    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 3)
    get_settings.cache_clear()
    try:
        with session_scope() as session:
            webhooks.enqueue(session, "approval.test", {"id": "APR-000001"}, approval_id="APR-000001")
        import httpx

        with httpx.Client(timeout=2) as http:
            for _ in range(5):
                webhooks.deliver_due(http)
        with session_scope() as session:
            row = session.execute(sa.select(WebhookOutbox)).scalar_one()
            assert row.attempts == 3 and row.gave_up_at is not None and row.delivered_at is None
            assert row.last_error and "Connect" in row.last_error
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_url_without_secret_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIREG_WEBHOOK_URL", "http://127.0.0.1:9/x")
    monkeypatch.delenv("AIREG_WEBHOOK_SECRET", raising=False)
    get_settings.cache_clear()
    try:
        with pytest.raises(webhooks.WebhookConfigError, match="AIREG_WEBHOOK_SECRET"):
            webhooks.check_config()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
