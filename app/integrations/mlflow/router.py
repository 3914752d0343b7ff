"""The MLflow registry webhook receiver: ``POST /api/v1/integrations/mlflow/webhook``.

No login: a delivery proves itself by its HMAC signature (``webhook.verify``). A 2xx only after the sync
committed; MLflow retries a delivery only on 429 and 5xx, so a version aireg will never take (no linked
system, a conflict) is answered 2xx with the reason, and a transient failure (MLflow unreadable) 503.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.integrations.mlflow import webhook
from app.settings import get_settings

router = APIRouter(prefix="/api/v1/integrations/mlflow", tags=["integrations"])

_ENVELOPE: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "MLflow's webhook payload",
                    "required": ["entity", "action", "data"],
                    "properties": {
                        "entity": {"type": "string", "maxLength": 64, "example": "model_version"},
                        "action": {"type": "string", "maxLength": 64, "example": "created"},
                        "timestamp": {"type": "string", "maxLength": 64},
                        "data": {"type": "object", "maxProperties": 100},
                    },
                }
            }
        },
    }
}


@router.post(
    "/webhook",
    status_code=200,
    openapi_extra=_ENVELOPE,
    responses={
        202: {"description": "acknowledged and ignored (another event, or a model linked to no system)"},
        400: {"description": "the body is not MLflow's JSON envelope"},
        401: {"description": "missing or wrong signature, or a timestamp outside the window"},
        404: {"description": "MLflow webhooks are not configured on this service"},
        503: {"description": "MLflow could not be read (MLflow retries the delivery)"},
    },
)
async def receive_mlflow_webhook(request: Request) -> JSONResponse:
    """Take one MLflow registry webhook delivery; on ``model_version.created``, sync that version."""
    settings = get_settings()
    if settings.mlflow_webhook_secret is None or settings.mlflow_tracking_uri is None:
        raise webhook.NotConfigured(
            "MLflow webhooks are not configured here: set AIREG_MLFLOW_WEBHOOK_SECRET and "
            "AIREG_MLFLOW_TRACKING_URI"
        )
    body = await request.body()
    secret = settings.mlflow_webhook_secret.get_secret_value()
    webhook.verify(secret, {k.lower(): v for k, v in request.headers.items()}, body)
    delivery = webhook.parse(body)
    if delivery.event != webhook.VERSION_CREATED:
        reason = f"event {delivery.event} is not one aireg acts on"
        return JSONResponse(webhook.SyncOutcome("ignored", reason=reason).body(), status_code=202)
    model, version = webhook.created_version(delivery)
    outcome = await run_in_threadpool(
        webhook.sync_created_version, settings.mlflow_tracking_uri, model, version
    )
    return JSONResponse(outcome.body(), status_code=200 if outcome.status == "synced" else 202)
