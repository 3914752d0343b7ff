"""A real MLflow tracking server for the bridge's tests and bench, and a REST driver to fill it.

The server runs from its own venv (``.venv-mlflow``, made from tests/integrations/mlflow/requirements.lock):
SQLite backend store, proxied local artifact root. Nothing here imports ``mlflow``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.server import free_port

ROOT = Path(__file__).resolve().parents[2]
MLFLOW = ROOT / ".venv-mlflow" / "bin" / "mlflow"
API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@contextmanager
def mlflow_server(workdir: Path, workers: int = 2, **extra_env: str) -> Iterator[str]:
    """``mlflow server`` on a free port (SQLite, artifacts under ``workdir``); yields its URL."""
    port = free_port()
    log = (workdir / "mlflow-server.log").open("wb")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **extra_env}
    process = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--backend-store-uri",
            f"sqlite:///{workdir / 'mlflow.db'}",
            "--artifacts-destination",
            str(workdir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited: {(workdir / 'mlflow-server.log').read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not answer /health within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class Mlflow:
    """Fills an MLflow server through its REST API, as a training pipeline with MLflow's client would."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = self.http.request(method, f"{API}/{path}", **kwargs)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else {}

    def experiment(self, name: str) -> str:
        return self.call("POST", "experiments/create", json={"name": name})["experiment_id"]

    def run(self, experiment_id: str, metrics: dict[str, float]) -> dict[str, Any]:
        info = self.call("POST", "runs/create", json={"experiment_id": experiment_id})["run"]["info"]
        now = int(time.time() * 1000)
        batch = [{"key": k, "value": v, "timestamp": now, "step": 0} for k, v in metrics.items()]
        if batch:
            self.call("POST", "runs/log-batch", json={"run_id": info["run_id"], "metrics": batch})
        return info

    def upload(self, artifact_uri: str, path: str, content: bytes) -> None:
        """Put one file under an ``mlflow-artifacts:/...`` URI, through the server's artifact proxy."""
        assert artifact_uri.startswith("mlflow-artifacts:"), artifact_uri
        relative = artifact_uri.split(":", 1)[1].lstrip("/")
        r = self.http.put(f"{ARTIFACTS}/{relative}/{path}", content=content)
        assert r.status_code == 200, r.text

    def model(self, name: str) -> None:
        self.call("POST", "registered-models/create", json={"name": name})

    def version(self, model: str, run: dict[str, Any], files: dict[str, bytes]) -> str:
        """A model version whose artifacts are ``files`` under the run's ``model/`` directory."""
        for path, content in files.items():
            self.upload(run["artifact_uri"], f"model/{path}", content)
        body = {"name": model, "source": f"{run['artifact_uri']}/model", "run_id": run["run_id"]}
        return self.call("POST", "model-versions/create", json=body)["model_version"]["version"]

    def tags(self, model: str, version: str) -> dict[str, str]:
        mv = self.call("GET", "model-versions/get", params={"name": model, "version": version})[
            "model_version"
        ]
        return {t["key"]: t["value"] for t in mv.get("tags", [])}
