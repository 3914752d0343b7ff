"""Pure ASGI middleware: request ids, access log, security headers, and limits on what a request may carry.

``RequestContextMiddleware`` (outermost) gives every request an id (``X-Request-ID`` in and out), logs one
structured line per request, adds the security headers to every response and turns a crash into a
problem+json 500. ``InputLimitsMiddleware`` answers before any endpoint runs: 413 for a body over
``AIREG_MAX_BODY_BYTES`` (declared or streamed), 408 for a body that arrives too slowly, 415 for a body
that is not JSON on a JSON endpoint, 422 for JSON nested deeper than ``AIREG_MAX_JSON_DEPTH``. A multipart
upload to an operation that takes a file (OpenAPI: ``multipart/form-data``) is streamed through instead,
counted against ``AIREG_MAX_UPLOAD_BYTES`` as it arrives (413 as soon as it passes it), never buffered here.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logging import bind_request, current_request, unbind_request
from app.problems import problem
from app.settings import get_settings

log = logging.getLogger("aireg.access")
error_log = logging.getLogger("aireg")

REQUEST_ID_HEADER = "x-request-id"
UPLOAD_OVERHEAD_BYTES = 65_536  # multipart boundaries, part headers and the small fields next to the file
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")

# Art. 15 (robustness, cybersecurity) in practice: no inline script anywhere, nothing framed, nothing sniffed.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# Swagger UI (served from local files, see app/apidocs.py) sets element styles from script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
DOCS_PREFIXES = ("/docs", "/redoc")
QUIET_PATHS = frozenset({"/healthz", "/readyz"})

_STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)


def content_security_policy(path: str) -> str:
    """The CSP for a path: the strict page policy, or the docs policy for the Swagger UI pages."""
    return DOCS_CSP if path.startswith(DOCS_PREFIXES) else PAGE_CSP


def _header(scope: Scope, name: bytes) -> str | None:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def request_id_from(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token, else a new one."""
    given = _header(scope, b"x-request-id")
    if given and _REQUEST_ID_RE.match(given):
        return given
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Request id, one access-log line per request, security headers, and a last-resort 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        token = bind_request(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope.get("path", "")
        started = time.perf_counter()
        status = 500
        response_started = False
        extra = _security_headers(scope, path, request_id)

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                present = {k.lower() for k, _ in message.get("headers", ())}
                headers = list(message.get("headers", ()))
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            error_log.exception("unhandled error on %s %s", scope.get("method"), path)
            if not response_started:
                response = problem(500, "the service failed to handle this request; it has been logged")
                await response(scope, receive, send_wrapper)
        finally:
            self._log(scope, path, status, started, request_id)
            unbind_request(token)

    @staticmethod
    def _log(scope: Scope, path: str, status: int, started: float, request_id: str) -> None:
        if status >= 500:
            level = logging.WARNING
        elif path in QUIET_PATHS and status < 400:
            level = logging.DEBUG
        else:
            level = logging.INFO
        if not log.isEnabledFor(level):
            return
        ctx = current_request()
        client = scope.get("client")
        log.log(
            level,
            "%s %s %s",
            scope.get("method"),
            path,
            status,
            extra={
                "fields": {
                    "method": scope.get("method"),
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "request_id": request_id,
                    "username": ctx.username if ctx else None,
                    "client": client[0] if client else None,
                }
            },
        )


def _security_headers(scope: Scope, path: str, request_id: str) -> list[tuple[bytes, bytes]]:
    headers = [
        *_STATIC_HEADERS,
        (b"content-security-policy", content_security_policy(path).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    if path.startswith("/api/"):
        headers.append((b"cache-control", b"no-store"))
    if scope.get("scheme") == "https":
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


# --- input limits --------------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


_ESCAPED = re.compile(rb"\\.", re.S)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(i for i in range(256) if i not in b"[]{}")


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays/objects deeper than ``limit`` (malformed text is left to the parser)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", _ESCAPED.sub(b"", body)).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
            if depth < 0:
                return False
    return False


def json_depth_problem(text: bytes) -> str | None:
    """Why JSON text is refused for nesting deeper than ``AIREG_MAX_JSON_DEPTH``, or None when it is not.

    The one limit on nesting for every JSON the service reads: request bodies here, imported files in
    ``app.inventory.service`` (Python's parser would otherwise recurse until it crashes).
    """
    limit = get_settings().max_json_depth
    if json_depth_exceeds(text, limit):
        return f"JSON nested deeper than {limit} levels (the limit, AIREG_MAX_JSON_DEPTH)"
    return None


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or any ``application/*+json``."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def json_body_operations(openapi: dict[str, Any]) -> list[tuple[re.Pattern[str], str]]:
    """``(path regex, METHOD)`` of every operation whose request body is JSON only (from OpenAPI)."""
    return body_operations(openapi, lambda content: all(is_json_media_type(ct) for ct in content))


def upload_operations(openapi: dict[str, Any]) -> list[tuple[re.Pattern[str], str]]:
    """``(path regex, METHOD)`` of every operation taking a multipart upload (from OpenAPI)."""
    return body_operations(openapi, lambda content: "multipart/form-data" in content)


def body_operations(
    openapi: dict[str, Any], takes: Callable[[dict[str, Any]], bool]
) -> list[tuple[re.Pattern[str], str]]:
    """``(path regex, METHOD)`` of every operation whose request body ``content`` map satisfies ``takes``."""
    found: list[tuple[re.Pattern[str], str]] = []
    for path, item in openapi.get("paths", {}).items():
        parts = re.split(r"\{[^}]+\}", path)
        pattern = re.compile("^" + "[^/]+".join(re.escape(p) for p in parts) + "$")
        for method, operation in item.items():
            content = (
                (operation.get("requestBody") or {}).get("content") if isinstance(operation, dict) else None
            )
            if content and takes(content):
                found.append((pattern, method.upper()))
    return found


class InputLimitsMiddleware:
    """Answer oversized, slow, too deeply nested or wrongly typed request bodies before any endpoint runs.

    A body is read into memory only up to the cap, then replayed to the application; requests without a
    body (every GET, the release-permission path) pass through untouched.
    """

    def __init__(self, app: ASGIApp, openapi: Callable[[], dict[str, Any]] | None = None) -> None:
        self.app = app
        self.openapi = openapi
        self._operations: tuple[int, list[tuple[re.Pattern[str], str]]] | None = None
        self._uploads: tuple[int, list[tuple[re.Pattern[str], str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        chunked = _header(scope, b"transfer-encoding")
        if not chunked and (length is None or length.strip() == "0"):
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        limit = settings.max_body_bytes
        if self._upload_endpoint(scope):
            await self._streamed(scope, receive, send, length)
            return
        if length is not None:
            if not length.strip().isdigit():
                await problem(400, "Content-Length is not a number")(scope, receive, send)
                return
            if int(length) > limit:
                await self._too_large(scope, receive, send, limit)
                return
        try:
            async with asyncio.timeout(settings.body_timeout_seconds):
                body = await _read_body(receive, limit)
        except _TooLarge:
            await self._too_large(scope, receive, send, limit)
            return
        except TimeoutError:
            await problem(
                408,
                f"the request body did not arrive within {settings.body_timeout_seconds:g} s",
                title="Request timeout",
            )(scope, receive, send)
            return
        except _Disconnected:
            return

        content_type = _header(scope, b"content-type")
        if is_json_media_type(content_type):
            msg = json_depth_problem(body)
            if msg is not None:
                await problem(
                    422, f"body: {msg}", slug="validation-error", errors=[{"loc": ["body"], "msg": msg}]
                )(scope, receive, send)
                return
        elif body and self._json_endpoint(scope):
            shown = (content_type or "none").split(";")[0].strip()[:80]
            await problem(415, f"this endpoint takes application/json; the request was sent as {shown}")(
                scope, receive, send
            )
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _upload_endpoint(self, scope: Scope) -> bool:
        """Whether the request is a multipart upload to an operation that takes one."""
        content_type = (_header(scope, b"content-type") or "").lower()
        if self.openapi is None or not content_type.startswith("multipart/form-data"):
            return False
        schema = self.openapi()
        if self._uploads is None or self._uploads[0] != id(schema):
            self._uploads = (id(schema), upload_operations(schema))
        path, method = scope.get("path", ""), scope.get("method", "")
        return any(m == method and p.match(path) for p, m in self._uploads[1])

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, length: str | None) -> None:
        """Pass an upload through as it arrives: counted against the upload limit (plus room for the
        multipart headers and the other fields), each piece awaited at most the body timeout."""
        settings = get_settings()
        limit = settings.max_upload_bytes + UPLOAD_OVERHEAD_BYTES
        if length is not None and (not length.strip().isdigit() or int(length) > limit):
            if not length.strip().isdigit():
                await problem(400, "Content-Length is not a number")(scope, receive, send)
            else:
                await self._too_large(scope, receive, send, settings.max_upload_bytes)
            return
        seen = 0
        refused: int | None = None  # the status this middleware answers with instead of the application
        started = False

        async def counted() -> Message:
            nonlocal seen, refused
            try:
                async with asyncio.timeout(settings.body_timeout_seconds):
                    message = await receive()
            except TimeoutError:
                refused = 408
                raise
            seen += len(message.get("body", b""))
            if seen > limit:
                refused = 413
                raise _TooLarge
            return message

        async def answer(message: Message) -> None:
            nonlocal started
            if refused is None:
                started = True
                await send(message)

        with contextlib.suppress(_TooLarge, TimeoutError):
            await self.app(scope, counted, answer)
        if refused is None or started:
            return
        if refused == 413:
            await self._too_large(scope, receive, send, settings.max_upload_bytes)
        else:
            await problem(
                408,
                f"the upload did not arrive within {settings.body_timeout_seconds:g} s of its last piece",
                title="Request timeout",
            )(scope, receive, send)

    def _json_endpoint(self, scope: Scope) -> bool:
        """Whether the request targets an operation taking a JSON body (asked only for non-JSON bodies)."""
        if self.openapi is None:
            return False
        schema = self.openapi()
        if self._operations is None or self._operations[0] != id(schema):
            self._operations = (id(schema), json_body_operations(schema))
        path, method = scope.get("path", ""), scope.get("method", "")
        return any(m == method and p.match(path) for p, m in self._operations[1])

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(
            413, f"the request body is larger than the limit of {limit} bytes", max_bytes=limit
        )
        response.headers["connection"] = "close"
        await response(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
