"""MLflow registry webhooks into a real ``aireg serve``, sent by a real ``mlflow server``.

MLflow delivers to public https URLs only unless told otherwise: the test server allows http and private
addresses (``MLFLOW_WEBHOOK_ALLOWED_SCHEMES``, ``MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS``) and gets a fixed
``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY``, so every worker can read the stored secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.settings import get_settings
from tests.factories import Ops
from tests.integrations.mlflow_server import MLFLOW, Mlflow, mlflow_server
from tests.server import serve

pytestmark = pytest.mark.skipif(
    not MLFLOW.exists(),
    reason=f"no MLflow server venv: {MLFLOW} is missing (make it as .ci/run does, step 'MLflow server venv')",
)

SECRET = "whsec-test-" + "0123456789abcdef"
PATH = "/api/v1/integrations/mlflow/webhook"
FILES = {"MLmodel": b"flavor: onnx\n", "data/model.onnx": b"\x05" * 2048}


def expected_digest(files: dict[str, bytes]) -> str:
    lines = sorted(f"{p}\t{len(c)}\t{hashlib.sha256(c).hexdigest()}\n".encode() for p, c in files.items())
    return "sha256:" + hashlib.sha256(b"".join(lines)).hexdigest()


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mlflow]:
    env = {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
    }
    with mlflow_server(tmp_path_factory.mktemp("mlflow-hooks"), workers=1, **env) as url:
        driver = Mlflow(url)
        driver.url = url  # type: ignore[attr-defined]
        yield driver


@pytest.fixture(scope="module")
def aireg(
    mlflow: Mlflow, database: tuple[str, str | None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``aireg serve`` with the receiver configured, on the test database."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {
        "AIREG_MLFLOW_TRACKING_URI": mlflow.url,  # type: ignore[attr-defined]
        "AIREG_MLFLOW_WEBHOOK_SECRET": SECRET,
        "AIREG_LOG_LEVEL": "warning",
    }
    with serve(database, log, **env) as base:
        yield base


def cli(*args: str) -> Any:
    return CliRunner().invoke(cli_app, ["mlflow", *args])


def signed(
    body: dict[str, Any], *, secret: str = SECRET, at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A delivery as MLflow signs it (mlflow/webhooks/delivery.py), written out independently."""
    raw = json.dumps(body).encode()
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()) if at is None else at)
    mac = hmac.new(secret.encode(), f"{delivery}.{stamp}.".encode() + raw, hashlib.sha256).digest()
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": "v1," + base64.b64encode(mac).decode(),
    }
    return raw, headers


def created(name: str, version: str) -> dict[str, Any]:
    data = {"name": name, "version": version, "source": "x", "run_id": None, "tags": {}, "description": None}
    return {
        "entity": "model_version",
        "action": "created",
        "timestamp": "2026-12-06T12:00:00+00:00",
        "data": data,
    }


def versions(ops: Ops, sid: str) -> dict[str, dict[str, Any]]:
    items = ops.ok(ops.client.get(f"/api/v1/systems/{sid}/versions", headers=ops.carol))["items"]
    return {v["version"]: v for v in items}


def version_creates(ops: Ops, sid: str) -> list[dict[str, Any]]:
    trail = ops.ok(ops.client.get("/api/v1/audit-events", params={"entity_id": sid}, headers=ops.admin))
    return [e for e in trail["items"] if e["action"] == "version.create"]


def test_a_version_created_in_mlflow_arrives_in_the_linked_system(
    mlflow: Mlflow, aireg: str, ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    # registered first: MLflow caches its webhook list per event (MLFLOW_WEBHOOK_CACHE_TTL)
    url = mlflow.url  # type: ignore[attr-defined]
    monkeypatch.setenv("AIREG_MLFLOW_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    try:
        registered = cli("webhook", "register", "--tracking-uri", url, "--url", aireg + PATH)
        again = cli("webhook", "register", "--tracking-uri", url, "--url", aireg + PATH)  # updates, no twin
    finally:
        monkeypatch.delenv("AIREG_MLFLOW_WEBHOOK_SECRET")
        get_settings.cache_clear()
    assert registered.exit_code == 0, registered.output
    assert "test delivery: aireg answered 202" in registered.output  # MLflow's example model: not linked
    assert again.exit_code == 0, again.output
    assert len(mlflow.call("GET", "webhooks")["webhooks"]) == 1

    sid = ops.system()["id"]
    name = f"weld-{uuid.uuid4().hex[:8]}"
    experiment = mlflow.experiment(name)
    mlflow.model(name)
    synced = cli("sync", "--tracking-uri", url, "--model", name, "--system", sid)
    assert synced.exit_code == 0, synced.output
    assert f"{name} is now linked to {sid}" in synced.output
    assert "linked" not in cli("sync", "--tracking-uri", url, "--model", name, "--system", sid).output

    mlflow.version(name, mlflow.run(experiment, {"recall": 0.97, "precision": 0.91}), FILES)
    deadline = time.monotonic() + 20
    while "1" not in versions(ops, sid):
        assert time.monotonic() < deadline, "version 1 did not arrive by webhook within 20 s"
        time.sleep(0.2)
    v1 = versions(ops, sid)["1"]
    assert v1["artifact_digest"] == expected_digest(FILES)
    assert v1["metrics"] == {"precision": 0.91, "recall": 0.97}
    assert v1["created_by"] == "system:mlflow-webhook"
    events = version_creates(ops, sid)
    assert [(e["actor"], e["after"]["version"]) for e in events] == [("system:mlflow-webhook", "1")]

    # a redelivery of the same event (MLflow retries; anyone may replay within the window) changes nothing
    raw, headers = signed(created(name, "1"))
    for _ in range(2):
        r = httpx.post(aireg + PATH, content=raw, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["systems"] == [{"system": sid, "result": "unchanged"}]
    assert len(version_creates(ops, sid)) == len(events)


def test_forged_replayed_and_malformed_deliveries_store_nothing(mlflow: Mlflow, aireg: str, ops: Ops) -> None:
    sid = ops.system()["id"]
    name = f"press-{uuid.uuid4().hex[:8]}"
    experiment = mlflow.experiment(name)
    mlflow.model(name)
    url = mlflow.url  # type: ignore[attr-defined]
    assert (
        cli("sync", "--tracking-uri", url, "--model", name, "--system", sid).exit_code == 0
    )  # links, no version

    raw, headers = signed(created(name, "1"), secret="not-the-secret-0123456789")
    r = httpx.post(aireg + PATH, content=raw, headers=headers)
    assert r.status_code == 401 and "does not match" in r.json()["detail"], r.text
    raw, headers = signed(created(name, "1"))
    r = httpx.post(aireg + PATH, content=raw + b" ", headers=headers)  # body changed after signing
    assert r.status_code == 401, r.text
    r = httpx.post(aireg + PATH, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and "X-MLflow-Signature" in r.json()["detail"], r.text
    raw, headers = signed(created(name, "1"), at=int(time.time()) - 3600)  # a captured delivery, replayed
    r = httpx.post(aireg + PATH, content=raw, headers=headers)
    assert r.status_code == 401 and "replayed" in r.json()["detail"], r.text

    raw, headers = signed({"entity": "model_version"})  # type: ignore[arg-type]
    assert httpx.post(aireg + PATH, content=raw, headers=headers).status_code == 400
    raw, headers = signed({**created(name, "1"), "data": {"name": name}})
    r = httpx.post(aireg + PATH, content=raw, headers=headers)
    assert r.status_code == 422 and "data.version" in r.json()["detail"], r.text
    raw, headers = signed({"entity": "model_version_tag", "action": "set", "data": {"name": name}})
    r = httpx.post(aireg + PATH, content=raw, headers=headers)
    assert r.status_code == 202 and r.json()["status"] == "ignored", r.text
    raw, headers = signed(created("no-such-link", "1"))
    r = httpx.post(aireg + PATH, content=raw, headers=headers)
    assert r.status_code == 202 and "linked to no system" in r.json()["reason"], r.text
    assert versions(ops, sid) == {} and version_creates(ops, sid) == []

    # the version now exists in MLflow (delivered by MLflow too, if the other test registered the webhook)
    mlflow.version(name, mlflow.run(experiment, {"recall": 0.5}), {"MLmodel": b"press\n"})
    raw, headers = signed(created(name, "1"))
    r = httpx.post(aireg + PATH, content=raw, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["systems"][0]["result"] in ("registered", "unchanged")
    assert versions(ops, sid)["1"]["artifact_digest"] == expected_digest({"MLmodel": b"press\n"})


def test_the_receiver_answers_404_until_configured(client: Any) -> None:
    raw, headers = signed(created("m", "1"))
    r = client.post(PATH, content=raw, headers=headers)
    assert r.status_code == 404, r.text
    assert "AIREG_MLFLOW_WEBHOOK_SECRET" in r.json()["detail"]
