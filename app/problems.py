"""Render every error as RFC 9457 problem details; never let a stack trace reach a client."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.audit import service as audit
from app.errors import AppError

log = logging.getLogger("aireg")

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def problem(
    status: int, detail: str, *, title: str | None = None, slug: str | None = None, **extra: Any
) -> JSONResponse:
    title = title or _TITLES.get(status, "Error")
    body: dict[str, Any] = {
        "type": f"https://aireg.dev/problems/{slug or title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": 'Bearer realm="aireg"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_NOT_PAGES = ("/api", "/healthz", "/readyz", "/openapi.json", "/docs")  # JSON for machines, always


PageErrorRenderer = Callable[[Request, int, str, str], Response]
"""Renders an error as an HTML page: ``(request, status, title, detail)``."""


def _page_error(request: Request, status: int, title: str, detail: str) -> Response | None:
    """Paths outside ``/api`` are pages: the web package renders their errors as HTML (``app.state``)."""
    renderer: PageErrorRenderer | None = getattr(request.app.state, "page_error_renderer", None)
    if renderer is None or request.url.path.startswith(_NOT_PAGES):
        return None
    return renderer(request, status, title, detail)


def _clean_loc(loc: Any) -> list[Any]:
    return [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]


def _jsonable_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"loc": _clean_loc(e.get("loc", [])), "msg": str(e.get("msg", ""))} for e in errors]


async def app_error_handler(request: Request, exc: AppError) -> Response:
    if exc.denial is not None:
        await run_in_threadpool(audit.record_denial, exc.denial)
    response = _page_error(request, exc.status, exc.title, exc.detail) or problem(
        exc.status,
        exc.detail,
        title=exc.title,
        slug=exc.type_slug,
        errors=_jsonable_errors(exc.errors) if exc.errors else None,
        **exc.extra,
    )
    if exc.extra.get("retry_after") is not None:  # 429 (and 503) tell the client when to come back
        response.headers["Retry-After"] = str(exc.extra["retry_after"])
    return response


async def validation_handler(request: Request, exc: RequestValidationError) -> Response:
    errors = _jsonable_errors(list(exc.errors()))
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    if (page := _page_error(request, 422, _TITLES[422], detail)) is not None:
        return page
    return problem(422, detail, slug="validation-error", errors=errors)


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    if (
        page := _page_error(request, exc.status_code, _TITLES.get(exc.status_code, "Error"), detail)
    ) is not None:
        return page
    response = problem(exc.status_code, detail)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        response.headers["Allow"] = allowed
    return response


def _allowed_methods(request: Request) -> str:
    """Every method served at this path (Starlette names only the first route's; RFC 9110 15.5.6)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


async def unhandled_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    if (page := _page_error(request, 500, _TITLES[500], "")) is not None:
        return page
    return problem(500, "the service failed to handle this request; it has been logged")


def install(app: FastAPI) -> None:
    # Starlette types every handler as taking any Exception; it calls each only with the class it is
    # registered for, so the narrower parameters below are safe.
    app.add_exception_handler(AppError, app_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unhandled_handler)
