"""A real ``aireg serve`` in a subprocess, for tests where timing between requests or processes matters."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.settings import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(database: tuple[str, str | None], log: Path, workers: int = 1, **env: str) -> Iterator[str]:
    """Run ``aireg serve`` in a subprocess on a free port; yields its base URL; stops it at the end."""
    url, schema = database
    port = free_port()
    environ = {**os.environ, "AIREG_DATABASE_URL": url, **env}
    if schema:
        environ["AIREG_DATABASE_SCHEMA"] = schema
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--access-log",
    ]
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=err)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the server did not become ready"
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
