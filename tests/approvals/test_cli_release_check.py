"""``aireg release-check`` against a real service: uvicorn in a subprocess on 127.0.0.1, test database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app as cli
from app.settings import get_settings
from tests.approvals.helpers import MINIMAL, sign, submit
from tests.server import free_port, serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_server(client: Any, database: tuple[str, str | None], tmp_path: Path) -> Iterator[str]:
    """``aireg serve`` on a free port, against the test database; stopped at the end."""
    with serve(database, tmp_path / "serve.log", AIREG_LOG_LEVEL="warning") as base:
        yield base


def _check(*args: str) -> Any:
    return CliRunner().invoke(cli, ["release-check", *args])


def test_release_check_exit_statuses(
    live_server: str, client: Any, team: dict, make_system: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = make_system(MINIMAL)
    a = submit(client, team["bob"], allowed, "v1", "production")["id"]
    sign(client, team["clara"], a, "compliance_officer")
    sign(client, team["berta"], a, "business_owner")
    denied = make_system(MINIMAL)
    token = team["ci"]["Authorization"].removeprefix("Bearer ")
    common = ["--url", live_server, "--token", token]

    result = _check("--system", allowed, "--version", "v1", *common)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ALLOWED: {allowed} v1 in production (approval {a}")

    result = _check("--system", denied, "--version", "v1", "--environment", "pilot", *common)
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith(f"DENIED: {denied} v1 in pilot") and "error NO_APPROVAL:" in result.stdout

    result = _check("--system", allowed, "--version", "v1", "--json", *common)
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body["allowed"] is True and body["approval_id"] == a and body["reasons"] == []

    result = _check("--system", allowed, "--version", "v1", "--digest", "sha256:" + "0" * 64, *common)
    assert result.exit_code == 1 and "DIGEST_MISMATCH" in result.stdout

    # Defaults from AIREG_URL / AIREG_TOKEN.
    monkeypatch.setenv("AIREG_URL", live_server)
    monkeypatch.setenv("AIREG_TOKEN", token)
    get_settings.cache_clear()
    try:
        assert _check("--system", allowed, "--version", "v1").exit_code == 0
        assert _check("--system", denied, "--version", "v1").exit_code == 1
    finally:
        monkeypatch.delenv("AIREG_URL")
        monkeypatch.delenv("AIREG_TOKEN")
        get_settings.cache_clear()

    # Could not decide: exit 2.
    cases = [
        ("--system", allowed, "--version", "v1", "--url", live_server, "--token", "aireg_" + "x" * 43),  # 401
        ("--system", "AIS-999999", "--version", "v1", *common),  # unknown system: 404
        ("--system", "nonsense", "--version", "v1", *common),  # 422
        ("--system", allowed, "--version", "v1", "--environment", "staging", *common),
        ("--system", allowed, *common),  # --version missing
        (
            "--system",
            allowed,
            "--version",
            "v1",
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "--token",
            token,
        ),
        ("--system", allowed, "--version", "v1", "--url", "not a url", "--token", token),
    ]
    for args in cases:
        result = _check(*args)
        assert result.exit_code == 2, (args, result.output)
    result = _check("--system", "AIS-999999", "--version", "v1", "--json", *common)
    assert result.exit_code == 2 and json.loads(result.stdout)["status"] == 404
