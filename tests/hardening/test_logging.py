"""Structured request logs with request id and user; nothing secret in them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from app.logging import JsonFormatter, RedactingFilter, redact


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Capture what the app logs, formatted exactly as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("aireg")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logging.getLogger("aireg.access").setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old)


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_each_request_logs_one_json_line_with_id_user_status_and_duration(
    client: Any, admin: dict[str, str], log_lines: io.StringIO
) -> None:
    r = client.get("/api/v1/users/me", headers={**admin, "X-Request-ID": "trace-123"})
    assert r.status_code == 200
    lines = [
        x for x in _records(log_lines) if x.get("request_id") == "trace-123" and x["logger"] == "aireg.access"
    ]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET" and line["path"] == "/api/v1/users/me" and line["status"] == 200
    assert line["username"] == "admin"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "info" and line["pid"] > 0 and line["ts"].endswith("+00:00")


def test_anonymous_and_failed_requests_log_without_user(client: Any, log_lines: io.StringIO) -> None:
    client.get("/api/v1/users/me", headers={"X-Request-ID": "anon-1"})
    (line,) = [x for x in _records(log_lines) if x.get("request_id") == "anon-1"]
    assert line["status"] == 401
    assert line.get("username") is None


def test_tokens_and_authorization_headers_never_reach_the_logs(
    client: Any, admin: dict[str, str], log_lines: io.StringIO
) -> None:
    secret = "aireg_ThisIsASecretTokenValue0123456789abcdefghi"
    client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    client.get("/api/v1/users/me", headers=admin)
    logging.getLogger("aireg").warning(
        "oops, got header Authorization: Bearer %s and password=hunter2", secret
    )
    text = log_lines.getvalue()
    assert secret not in text
    assert admin["Authorization"].split()[1] not in text
    assert "hunter2" not in text
    assert "[redacted]" in text


def test_redact_covers_the_usual_shapes() -> None:
    assert "abc.def" not in redact("Authorization: Bearer abc.def")
    assert "s3cret" not in redact('{"password": "s3cret"}')
    assert "s3cret" not in redact("login user=bob password=s3cret&next=/")
    assert "XYZ" not in redact("token aireg_XYZXYZXYZXYZXYZ leaked")
    assert redact("GET /api/v1/systems 200") == "GET /api/v1/systems 200"


def test_exceptions_in_the_log_are_redacted_too(log_lines: io.StringIO) -> None:
    try:
        raise ValueError("bad token aireg_ABCDEFGHIJKLMNOP")
    except ValueError:
        logging.getLogger("aireg").exception("failed")
    (line,) = _records(log_lines)
    assert "ABCDEFGHIJKLMNOP" not in line["exc"] and "ValueError" in line["exc"]


def test_the_uvicorn_logging_config_is_json_and_silences_uvicorns_access_log() -> None:
    from app.logging import logging_config

    cfg = logging_config("info", access_log=False)
    assert cfg["loggers"]["uvicorn.access"]["handlers"] == []
    assert cfg["loggers"]["aireg.access"]["level"] == "WARNING"
    assert logging_config("debug")["loggers"]["aireg.access"]["level"] == "DEBUG"
    logging.config.dictConfig(cfg)  # it is a valid dictConfig
