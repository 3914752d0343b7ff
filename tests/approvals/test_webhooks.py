"""Outbound webhooks: Standard Webhooks deliveries verified with the stock ``standardwebhooks`` library,
secret rotation, retries with backoff, never holding up the request."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.approvals import webhooks
from app.approvals.models import WebhookOutbox
from app.db import session_scope
from app.settings import PROJECT_ROOT, get_settings
from tests.approvals.helpers import MINIMAL, sign, submit
from tests.server import free_port

SECRET = "whsec_" + base64.b64encode(b"aireg webhook test secret, 32 B").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"the secret being rotated out, 32").decode()


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
                        {
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "at": time.monotonic(),
                        }
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


def _verify(delivery: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    """The stock Standard Webhooks verifier, as a receiver would run it on the raw body and headers."""
    payload: dict[str, Any] = Webhook(secret).verify(delivery["body"], delivery["headers"])
    assert set(payload) == {"type", "timestamp", "data"}
    return payload


def test_events_are_signed_and_retried(receiver: Receiver, client: Any, team: dict, make_system: Any) -> None:
    system = make_system(MINIMAL)
    a = submit(client, team["bob"], system, "v1", "production")["id"]
    first, retry = receiver.wait_for(2)
    assert first["body"] == retry["body"]  # the same delivery, again after the 500
    assert first["headers"]["webhook-id"] == retry["headers"]["webhook-id"]  # a receiver can deduplicate
    assert retry["at"] - first["at"] >= 0.25  # backoff
    assert _verify(first) == _verify(retry)
    payload = _verify(retry)
    assert payload["type"] == "approval.submitted" and payload["data"]["approval"]["id"] == a
    approval = payload["data"]["approval"]
    assert approval["state"] == "submitted" and approval["system_id"] == system
    assert payload["timestamp"].endswith("Z")
    assert (
        retry["headers"]["webhook-signature"].startswith("v1,")
        and " " not in retry["headers"]["webhook-signature"]
    )  # one secret, one signature

    sign(client, team["clara"], a, "compliance_officer")  # not a state change: no event
    sign(client, team["berta"], a, "business_owner")
    deliveries = receiver.wait_for(3)
    payload = _verify(deliveries[2])
    assert payload["type"] == "approval.approved" and payload["data"]["approval"]["valid_until"]
    r = client.post(f"/api/v1/approvals/{a}/revoke", json={"reason": "test"}, headers=team["clara"])
    assert r.status_code == 200
    payload = _verify(receiver.wait_for(4)[3])
    assert payload["type"] == "approval.revoked" and payload["data"]["approval"]["close_reason"] == "test"
    assert len({d["headers"]["webhook-id"] for d in receiver.received}) == 3
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
    events = [_verify(d)["type"] for d in receiver.wait_for(2)]
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


@pytest.mark.parametrize(
    ("name", "secret", "message"),
    [
        ("AIREG_WEBHOOK_SECRET", "webhook-test-secret-0123456789", "must be a Standard Webhooks secret"),
        ("AIREG_WEBHOOK_SECRET", "whsec_not base64!", "not base64"),
        ("AIREG_WEBHOOK_SECRET", "whsec_" + base64.b64encode(b"16 bytes only...").decode(), "at least 24"),
        ("AIREG_WEBHOOK_SECRET_PREVIOUS", "s3cret-s3cret-s3cret", "AIREG_WEBHOOK_SECRET_PREVIOUS must be"),
    ],
)
def test_a_secret_that_is_not_whsec_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, name: str, secret: str, message: str
) -> None:
    monkeypatch.setenv("AIREG_WEBHOOK_URL", "http://127.0.0.1:9/x")
    monkeypatch.setenv("AIREG_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv(name, secret)
    get_settings.cache_clear()
    try:
        with pytest.raises(webhooks.WebhookConfigError, match=message) as refused:
            webhooks.check_config()
        assert name in str(refused.value) and "whsec_" in str(refused.value)
        assert secret not in str(refused.value)  # the refusal does not print the secret
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    monkeypatch.delenv("AIREG_WEBHOOK_URL", raising=False)
    get_settings.cache_clear()
    webhooks.check_config()  # no receiver configured: nothing to sign, nothing refused


@pytest.fixture
def outbox(db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A receiver configured with ``SECRET``; the test queues and delivers by hand (no app, no worker)."""
    r = Receiver()
    monkeypatch.setenv("AIREG_WEBHOOK_URL", r.url)
    monkeypatch.setenv("AIREG_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    yield r
    r.close()
    monkeypatch.undo()
    get_settings.cache_clear()


def _deliver(event: str, data: dict[str, Any]) -> None:
    with session_scope() as session:
        webhooks.enqueue(session, event, data, approval_id=data.get("id"))
    with httpx.Client(timeout=5) as http:
        assert webhooks.deliver_due(http) == 1


def test_rotation_signs_with_both_secrets(outbox: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """While AIREG_WEBHOOK_SECRET_PREVIOUS is set, receivers holding either secret verify every delivery."""
    _deliver("approval.submitted", {"id": "APR-000001"})
    (before,) = outbox.wait_for(1)
    assert _verify(before, SECRET)["data"] == {"approval": {"id": "APR-000001"}}
    with pytest.raises(WebhookVerificationError):
        _verify(before, OLD_SECRET)  # not rotating: the old secret signs nothing

    # the rotation: the new secret becomes current, the old one stays as previous for a while
    new_secret = "whsec_" + base64.b64encode(b"the secret rotated in, 32 bytes.").decode()
    monkeypatch.setenv("AIREG_WEBHOOK_SECRET", new_secret)
    monkeypatch.setenv("AIREG_WEBHOOK_SECRET_PREVIOUS", SECRET)
    get_settings.cache_clear()
    webhooks.check_config()
    _deliver("approval.approved", {"id": "APR-000001"})
    during = outbox.wait_for(2)[1]
    signatures = during["headers"]["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert _verify(during, new_secret)["type"] == "approval.approved"  # a receiver already moved on
    assert _verify(during, SECRET)["type"] == "approval.approved"  # a receiver not yet updated
    with pytest.raises(WebhookVerificationError):
        _verify(during, OLD_SECRET)

    # a tampered body (or id, or timestamp) verifies with neither secret
    tampered = {**during, "body": during["body"].replace(b"approved", b"revoked!")}
    other_id = {**during, "headers": {**during["headers"], "webhook-id": "msg_999999"}}
    later = {**during, "headers": {**during["headers"], "webhook-timestamp": str(int(time.time()) + 1)}}
    for forged in (tampered, other_id, later):
        for secret in (new_secret, SECRET):
            with pytest.raises(WebhookVerificationError):
                _verify(forged, secret)

    # the rotation ends: only the new secret signs
    monkeypatch.delenv("AIREG_WEBHOOK_SECRET_PREVIOUS")
    get_settings.cache_clear()
    _deliver("approval.revoked", {"id": "APR-000001"})
    after = outbox.wait_for(3)[2]
    assert " " not in after["headers"]["webhook-signature"]
    assert _verify(after, new_secret)["type"] == "approval.revoked"
    with pytest.raises(WebhookVerificationError):
        _verify(after, SECRET)


def test_a_delivery_queued_in_the_old_format_goes_out_in_the_new_one(outbox: Receiver) -> None:
    """Rows queued before the upgrade (``{"event", "occurred_at", "approval"}``) go out in the new shape."""
    with session_scope() as session:
        session.add(
            WebhookOutbox(
                event="approval.approved",
                approval_id="APR-000007",
                payload={
                    "event": "approval.approved",
                    "occurred_at": "2026-12-01T08:00:00Z",
                    "approval": {"id": "APR-000007"},
                },
                created_at=datetime(2026, 12, 1, 8, tzinfo=UTC),
                next_attempt_at=datetime(2026, 12, 1, 8, tzinfo=UTC),
            )
        )
    with httpx.Client(timeout=5) as http:
        assert webhooks.deliver_due(http) == 1
    assert _verify(outbox.wait_for(1)[0]) == {
        "type": "approval.approved",
        "timestamp": "2026-12-01T08:00:00Z",
        "data": {"approval": {"id": "APR-000007"}},
    }


def test_serve_refuses_to_start_with_a_secret_that_is_not_whsec(database: tuple[str, str | None]) -> None:
    """The real ``aireg serve`` stops at startup, naming the variable, before serving a single request."""
    url, schema = database
    env = {**os.environ, "AIREG_DATABASE_URL": url, "AIREG_WEBHOOK_URL": "http://127.0.0.1:9/x"}
    env["AIREG_WEBHOOK_SECRET"] = "webhook-test-secret-0123456789"  # the pre-Standard Webhooks kind
    if schema:
        env["AIREG_DATABASE_SCHEMA"] = schema
    cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(free_port())]
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr  # one line, before binding
    assert "AIREG_WEBHOOK_SECRET must be a Standard Webhooks secret" in done.stderr
