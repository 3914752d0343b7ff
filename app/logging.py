"""Structured JSON logs for the service and uvicorn, with the request id and caller of every line.

Each log line is one JSON object: ``ts``, ``level``, ``logger``, ``msg``, ``pid``, and when inside a request
``request_id`` and ``username``; extra fields given as ``log.info(..., extra={"fields": {...}})`` are merged
in. A redacting filter removes bearer tokens, aireg API tokens and password values from every message, so
nothing secret reaches the logs even by mistake.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson


@dataclass
class RequestContext:
    """What the logs say about the request being served; the authentication step fills in ``username``."""

    request_id: str
    username: str | None = None


_request: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "aireg_request", default=None
)


def bind_request(request_id: str) -> contextvars.Token[RequestContext | None]:
    """Start a request's logging context (the middleware calls this)."""
    return _request.set(RequestContext(request_id=request_id))


def unbind_request(token: contextvars.Token[RequestContext | None]) -> None:
    _request.reset(token)


def current_request() -> RequestContext | None:
    """The logging context of the request being served, if any."""
    return _request.get()


def set_request_user(username: str) -> None:
    """Name the authenticated caller in the request's log lines (works from the threadpool too)."""
    ctx = _request.get()
    if ctx is not None:
        ctx.username = username


_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1[redacted]"),
    (re.compile(r"aireg_[A-Za-z0-9_\-]{8,}"), "aireg_[redacted]"),
    (
        # key=value / "key": "value" for any key naming a password, secret, token or authorization
        re.compile(
            r"""(?i)((?:password|passwd|secret|token|authorization)\w*["']?\s*[:=]\s*["']?)[^\s"',;&}]+"""
        ),
        r"\1[redacted]",
    ),
)


def redact(text: str) -> str:
    """``text`` with bearer tokens, API tokens and password/secret/token values replaced."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Render the message once, redact it, and attach the request context."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        ctx = _request.get()
        if ctx is not None:
            record.request_id = ctx.request_id
            if ctx.username and not hasattr(record, "username"):
                record.username = ctx.username
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process or os.getpid(),
        }
        for key in ("request_id", "username"):
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info:
            data["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(data, default=str).decode()


def logging_config(level: str = "info", *, access_log: bool = True) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the app and uvicorn (also given to ``uvicorn.run``).

    ``access_log`` turns the one-line-per-request log (``aireg.access``) on; failed requests (5xx) are
    logged either way.
    """
    lvl = level.upper()
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "filters": ["redact"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactingFilter}},
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": "WARNING"},
        "loggers": {
            "aireg": {"level": lvl},
            "aireg.access": {"level": lvl if access_log else "WARNING"},
            "uvicorn": {"handlers": [], "level": lvl, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": lvl, "propagate": True},
            # request lines come from aireg.access (method, path, status, duration, request id, user)
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def configure_logging(level: str = "info", *, force: bool = False) -> None:
    """Install the JSON logging config unless the process already has it (``aireg serve`` sets it up)."""
    if not force and any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers):
        return
    logging.config.dictConfig(logging_config(level))
