"""MLflow registry webhooks in: check a delivery's signature, and sync a newly created model version.

MLflow (3.3+, SQL backend store; ``mlflow/webhooks/delivery.py``) POSTs ``{"entity", "action",
"timestamp", "data"}`` as JSON with three headers: ``X-MLflow-Delivery-Id`` (a UUID),
``X-MLflow-Timestamp`` (Unix seconds) and ``X-MLflow-Signature``: ``v1,`` + base64 of
HMAC-SHA256(secret, ``<delivery id>.<timestamp>.<body>``).
MLflow itself sets no freshness rule; the receiver refuses a timestamp more than ``TOLERANCE_SECONDS`` away
from its clock, so a captured delivery cannot be replayed later. A replay inside the window changes
nothing: syncing a version already registered with the same digest leaves it alone.

``model_version.created`` runs the same two steps as ``aireg mlflow sync`` for that one version:
``service.snapshot`` (artifact digest and run metrics, over HTTP, outside any transaction), then
``service.apply_sync`` into every system the model is linked to (one transaction, audited).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from app.errors import AppError, NotFound, ServiceUnavailable, Unauthorized, Unprocessable
from app.integrations.mlflow.service import SyncReport

log = logging.getLogger("aireg.mlflow")

ACTOR = "system:mlflow-webhook"
TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_ID_HEADER = "x-mlflow-delivery-id"
VERSION_CREATED = "model_version.created"
# the event ``aireg mlflow webhook register`` subscribes to, as MLflow's REST API spells it
SUBSCRIBED_EVENTS = [{"entity": "MODEL_VERSION", "action": "CREATED"}]


class NotConfigured(NotFound):
    """The receiver is off (no secret or tracking URI): 404, as for any endpoint this service lacks."""


class MlflowUnavailable(ServiceUnavailable):
    """MLflow could not be read: a 503, which MLflow's delivery retries."""

    type_slug = "mlflow-unavailable"


class BadDelivery(AppError):
    status, title, type_slug = 400, "Bad request", "bad-request"


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's ``v1,<base64>`` signature of one delivery (``_generate_hmac_signature``)."""
    signed = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None) -> str:
    """The delivery id of a genuine, fresh delivery; ``Unauthorized`` (saying why) for any other."""
    delivery_id = headers.get(DELIVERY_ID_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    sent = headers.get(SIGNATURE_HEADER, "")
    if not (delivery_id and timestamp and sent):
        raise Unauthorized(
            "an MLflow webhook delivery carries X-MLflow-Delivery-Id, X-MLflow-Timestamp and "
            "X-MLflow-Signature; register the webhook with its secret (`aireg mlflow webhook register`)"
        )
    expected = signature(secret, delivery_id, timestamp, body)
    # a space-separated list is accepted, so a sender may sign with an old and a new secret at once
    if not any(hmac.compare_digest(expected.encode(), s.encode()) for s in sent.split()):
        raise Unauthorized("X-MLflow-Signature does not match this delivery and the configured secret")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Unauthorized("X-MLflow-Timestamp is not a Unix time in seconds") from None
    skew = abs((time.time() if now is None else now) - sent_at)
    if skew > TOLERANCE_SECONDS:
        raise Unauthorized(
            f"X-MLflow-Timestamp is {int(skew)} s away from this server's clock (more than "
            f"{TOLERANCE_SECONDS} s): a replayed delivery, or a clock to fix"
        )
    return delivery_id


@dataclass(frozen=True)
class Delivery:
    event: str  # "<entity>.<action>", e.g. model_version.created
    data: dict[str, Any]


def parse(body: bytes) -> Delivery:
    """The event and its data; ``BadDelivery`` when the body is not MLflow's JSON envelope."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadDelivery("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadDelivery("the body is not a JSON object")
    entity, action, data = payload.get("entity"), payload.get("action"), payload.get("data")
    if not (isinstance(entity, str) and isinstance(action, str) and isinstance(data, dict)):
        raise BadDelivery('the body lacks "entity", "action" (strings) or "data" (an object)')
    return Delivery(f"{entity}.{action}", data)


def created_version(delivery: Delivery) -> tuple[str, str]:
    """``(registered model name, version)`` of a ``model_version.created`` delivery."""
    name, version = delivery.data.get("name"), delivery.data.get("version")
    errors = [
        {"loc": ["body", "data", key], "msg": "a non-empty string is required"}
        for key, value in (("name", name), ("version", version))
        if not (isinstance(value, str) and value.strip())
    ]
    if errors:
        raise Unprocessable(f"data.{errors[0]['loc'][2]}: a non-empty string is required", errors=errors)
    return str(name), str(version)


@dataclass
class SyncOutcome:
    """What one delivery did: ``ignored`` (with the reason) or ``synced`` (one result per linked system)."""

    status: str
    model: str | None = None
    version: str | None = None
    reason: str | None = None
    systems: list[dict[str, str]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}


def sync_created_version(tracking_uri: str, model: str, version: str) -> SyncOutcome:
    """Sync one new MLflow version into every system linked to its model (blocking: call off the loop)."""
    from app.db import session_scope
    from app.integrations.mlflow import service
    from app.integrations.mlflow.client import MlflowClient, MlflowError

    with session_scope(write=False) as session:
        systems = service.linked_systems(session, model)
    if not systems:
        reason = f"registered model {model!r} is linked to no system (run `aireg mlflow sync` once)"
        log.info("MLflow webhook for %s version %s ignored: %s", model, version, reason)
        return SyncOutcome("ignored", model, version, reason)
    try:
        with MlflowClient(tracking_uri) as client:
            try:
                mv = client.get_version(model, version)
            except MlflowError as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                reason = f"MLflow has no version {version} of {model!r} (deleted since?)"
                log.warning("MLflow webhook for %s version %s ignored: %s", model, version, reason)
                return SyncOutcome("ignored", model, version, reason)
            snap = service.snapshot(client, model, mv, with_metrics=True)
    except MlflowError as exc:
        raise MlflowUnavailable(f"MLflow at {tracking_uri} could not be read: {exc}") from exc
    outcome = SyncOutcome("synced", model, version)
    with session_scope(write=True) as session:
        for system_id in systems:
            try:
                report = service.apply_sync(session, system_id, model, tracking_uri, [snap], [], actor=ACTOR)
            except NotFound as exc:  # archived since it was linked: checked before anything is written
                outcome.systems.append({"system": system_id, "result": "skipped", "detail": exc.detail})
                continue
            outcome.systems.append(_result(system_id, report))
    for result in outcome.systems:
        if result["result"] in ("conflict", "skipped"):
            log.warning(
                "MLflow webhook, %s version %s -> %s: %s", model, version, result["system"], result["detail"]
            )
    return outcome


def _result(system_id: str, report: SyncReport) -> dict[str, str]:
    if report.created:
        return {"system": system_id, "result": "registered"}
    if report.unchanged:
        return {"system": system_id, "result": "unchanged"}
    if report.conflicts:
        return {"system": system_id, "result": "conflict", "detail": report.conflicts[0]}
    return {"system": system_id, "result": "skipped", "detail": "; ".join(report.skipped)}
