"""MLflow's REST API, as the bridge needs it: registered models, model versions, runs, tags and artifacts.

aireg talks to MLflow over HTTP only (httpx); the ``mlflow`` package is never imported (it pins its own
SQLAlchemy and Alembic). Authentication as MLflow's own client: ``MLFLOW_TRACKING_TOKEN`` (bearer) or
``MLFLOW_TRACKING_USERNAME`` + ``MLFLOW_TRACKING_PASSWORD`` (basic); ``MLFLOW_TRACKING_INSECURE_TLS=true``
skips certificate checks.

The artifact digest of a model version (``artifact_digest``), the recipe a pipeline can repeat:

1. ``GET /api/2.0/mlflow/model-versions/get-download-uri?name=N&version=V`` gives the version's artifact URI;
   it must be an ``mlflow-artifacts:`` URI (the server proxies its artifact store, ``mlflow server
   --artifacts-destination``); its path P is relative to the artifact root.
2. List P recursively (``GET /api/2.0/mlflow-artifacts/artifacts?path=P``) and download every file
   (``GET /api/2.0/mlflow-artifacts/artifacts/P/<file>``).
3. One line per file, ``<path>\\t<size in bytes>\\t<sha256 hex of the content>\\n``, path relative to P with
   ``/`` separators, lines sorted by path (UTF-8 byte order); the digest is ``sha256:`` + the sha256 hex of
   those lines, concatenated and UTF-8 encoded (``artifact_listing_digest``).

A directory with no file has no digest (nothing identifies the model): the version is skipped, never given
an invented digest.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from app.http_retry import RetryPolicy, send_with_retries

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
PAGE_SIZE = 1000
MAX_FILES = 10_000  # per model version: a listing beyond this is not a model, and would never end


class MlflowError(Exception):
    """MLflow answered with an error, or could not be reached; ``status`` is the HTTP status (0: none)."""

    def __init__(self, message: str, status: int = 0, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class ArtifactsUnreadable(Exception):
    """The version's artifacts cannot be read through the tracking server (the message says why)."""


@dataclass(frozen=True)
class ArtifactFile:
    path: str  # relative to the version's artifact directory, ``/``-separated
    size: int
    sha256: str


def artifact_listing_digest(files: Iterable[ArtifactFile]) -> str:
    """``sha256:<hex>`` of the canonical listing: ``path\\tsize\\tsha256\\n`` per file, sorted by path."""
    lines = sorted(f"{f.path}\t{f.size}\t{f.sha256}\n".encode() for f in files)
    return "sha256:" + hashlib.sha256(b"".join(lines)).hexdigest()


def _auth_from_env() -> dict[str, Any]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"headers": {"Authorization": f"Bearer {token}"}}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"auth": httpx.BasicAuth(user, password)}
    return {}


class MlflowClient:
    """A thread-safe client of one MLflow tracking server (share it between the worker threads)."""

    def __init__(self, tracking_uri: str, *, timeout: float = 30.0, connections: int = 8) -> None:
        if urlsplit(tracking_uri).scheme not in ("http", "https"):
            raise MlflowError(f"tracking URI must be http(s)://..., not {tracking_uri!r}")
        self.base = tracking_uri.rstrip("/")
        insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("1", "true")
        auth = _auth_from_env()
        self.http = httpx.Client(
            base_url=self.base,
            timeout=timeout,
            verify=not insecure,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            headers={"Accept": "application/json", **auth.get("headers", {})},
            auth=auth.get("auth"),
        )
        self.retry = RetryPolicy(retries=3, backoff=0.5)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> MlflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response, _ = send_with_retries(lambda: self.http.request(method, path, **kwargs), self.retry)
        except httpx.HTTPError as exc:
            raise MlflowError(f"MLflow at {self.base} could not be reached: {exc}") from exc
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            code, message = None, response.text[:300]
            try:
                body = response.json()
                code, message = body.get("error_code"), body.get("message", message)
            except ValueError:
                pass
            raise MlflowError(
                f"MLflow {method} {path}: {response.status_code} {code or ''} {message}".strip(),
                response.status_code,
                code,
            )
        return response.json() if response.content else {}

    def _all_pages(self, path: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The ``key`` items of every page of a GET listing (MLflow's ``next_page_token`` paging)."""
        params, items = dict(params), []
        while True:
            body = self._json("GET", path, params=params)
            items.extend(body.get(key, []))
            token = body.get("next_page_token")
            if not token:
                return items
            params["page_token"] = token

    # --- the model registry --------------------------------------------------------------------------

    def get_registered_model(self, name: str) -> dict[str, Any]:
        """The registered model, or ``MlflowError`` (``RESOURCE_DOES_NOT_EXIST`` when there is none)."""
        model: dict[str, Any] = self._json("GET", f"{API}/registered-models/get", params={"name": name})[
            "registered_model"
        ]
        return model

    def search_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of the registered model (all pages), in MLflow's order."""
        escaped = name.replace("\\", "\\\\").replace("'", "\\'")
        params = {"filter": f"name='{escaped}'", "max_results": PAGE_SIZE}
        return self._all_pages(f"{API}/model-versions/search", "model_versions", params)

    def get_version(self, name: str, version: str) -> dict[str, Any]:
        mv: dict[str, Any] = self._json(
            "GET", f"{API}/model-versions/get", params={"name": name, "version": version}
        )["model_version"]
        return mv

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": version, "key": key, "value": value}
        self._json("POST", f"{API}/model-versions/set-tag", json=body)

    def get_run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self._json("GET", f"{API}/runs/get", params={"run_id": run_id})["run"]
        return run

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        """The run's latest value of each metric (MLflow's ``run.data.metrics``)."""
        metrics = self.get_run(run_id).get("data", {}).get("metrics", [])
        return {m["key"]: m["value"] for m in metrics if "key" in m and "value" in m}

    # --- registry webhooks (MLflow 3.3+, SQL backend store) -------------------------------------------

    def list_webhooks(self) -> list[dict[str, Any]]:
        """Every webhook of the server (all pages)."""
        return self._all_pages(f"{API}/webhooks", "webhooks", {"max_results": 100})

    def save_webhook(self, name: str, url: str, events: list[dict[str, str]], secret: str) -> dict[str, Any]:
        """Create the webhook sending ``events`` to ``url``, or update the one there (active, new secret)."""
        body = {"name": name, "url": url, "events": events, "secret": secret, "status": "ACTIVE"}
        for hook in self.list_webhooks():
            if hook.get("url") == url:
                path = f"{API}/webhooks/{quote(hook['webhook_id'], safe='')}"
                updated: dict[str, Any] = self._json("PATCH", path, json=body)["webhook"]
                return updated
        created: dict[str, Any] = self._json("POST", f"{API}/webhooks", json=body)["webhook"]
        return created

    def test_webhook(self, webhook_id: str) -> dict[str, Any]:
        """Have MLflow send its example payload of the webhook's first event; its ``result`` (success...)."""
        path = f"{API}/webhooks/{quote(webhook_id, safe='')}/test"
        result: dict[str, Any] = self._json("POST", path, json={}).get("result", {})
        return result

    # --- artifacts -----------------------------------------------------------------------------------

    def artifact_path(self, name: str, version: str) -> str:
        """The version's artifact directory, relative to the proxied artifact root."""
        uri: str = self._json(
            "GET", f"{API}/model-versions/get-download-uri", params={"name": name, "version": version}
        ).get("artifact_uri", "")
        parts = urlsplit(uri)
        if parts.scheme != "mlflow-artifacts":
            raise ArtifactsUnreadable(
                f"its artifacts are at {uri or '(no URI)'}, which the tracking server does not proxy "
                "(serve artifacts with --artifacts-destination: aireg reads mlflow-artifacts:/ URIs only)"
            )
        path = posixpath.normpath(parts.path.lstrip("/"))
        if path in ("", ".") or path.startswith(".."):
            raise ArtifactsUnreadable(f"its artifact URI {uri} names no directory")
        return path

    def _list(self, path: str) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = self._json("GET", ARTIFACTS, params={"path": path}).get("files", [])
        return files

    def _hash_file(self, path: str) -> tuple[int, str]:
        digest, size = hashlib.sha256(), 0
        try:
            with self.http.stream("GET", f"{ARTIFACTS}/{quote(path)}") as response:
                if response.status_code >= 400:
                    raise ArtifactsUnreadable(f"downloading {path} answered {response.status_code}")
                for chunk in response.iter_bytes(1 << 16):
                    digest.update(chunk)
                    size += len(chunk)
        except httpx.HTTPError as exc:
            raise ArtifactsUnreadable(f"downloading {path} failed: {exc}") from exc
        return size, digest.hexdigest()

    def artifact_files(self, root: str) -> list[ArtifactFile]:
        """Every file under ``root`` (recursively) with its size and sha256, read through the proxy."""
        files: list[ArtifactFile] = []
        pending = [""]
        while pending:
            relative = pending.pop()
            try:
                entries = self._list(posixpath.join(root, relative) if relative else root)
            except MlflowError as exc:
                raise ArtifactsUnreadable(f"listing {root}/{relative} failed: {exc}") from exc
            for entry in entries:
                child = posixpath.join(relative, entry["path"]) if relative else entry["path"]
                if entry.get("is_dir"):
                    pending.append(child)
                    continue
                size, sha = self._hash_file(posixpath.join(root, child))
                files.append(ArtifactFile(child, size, sha))
                if len(files) > MAX_FILES:
                    raise ArtifactsUnreadable(f"more than {MAX_FILES} files under {root}")
        return files

    def artifact_digest(self, name: str, version: str) -> str:
        """The version's artifact digest (module docstring), or ``ArtifactsUnreadable``."""
        root = self.artifact_path(name, version)
        files = self.artifact_files(root)
        if not files:
            raise ArtifactsUnreadable(f"its artifact directory {root} holds no file")
        return artifact_listing_digest(files)
