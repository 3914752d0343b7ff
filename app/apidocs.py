"""Interactive API docs (Swagger UI) served from local files: the registry runs offline, without a CDN.

The Swagger UI bundle ships in the ``fastapi-offline`` package; the page has no inline script, so it runs
under the strict ``script-src 'self'`` policy (only ``style-src`` is relaxed for /docs: app/middleware.py).
"""

from __future__ import annotations

import html
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from app.problems import PROBLEM_JSON

ASSETS_URL = "/docs/assets"


def swagger_assets_dir() -> Path:
    """The folder holding ``swagger-ui-bundle.js`` and ``swagger-ui.css``."""
    return Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI, docs_url: str = "/docs") -> None:
    """Serve Swagger UI at ``docs_url`` (create the app with ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=swagger_assets_dir()), name="docs-assets")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        title = html.escape(f"{app.title} - API docs")
        return HTMLResponse(
            f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{root}{ASSETS_URL}/swagger-ui.css">
<link rel="icon" href="{root}{ASSETS_URL}/favicon.png"></head>
<body><div id="swagger-ui"></div>
<script src="{root}{ASSETS_URL}/swagger-ui-bundle.js"></script>
<script src="{root}{docs_url}/init.js"></script>
</body></html>"""
        )

    @app.get(f"{docs_url}/init.js", include_in_schema=False)
    async def swagger_init(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        config = {
            "url": f"{root}{app.openapi_url}",
            "dom_id": "#swagger-ui",
            "deepLinking": True,
            "persistAuthorization": False,
            "showExtensions": True,
        }
        script = f"window.ui = SwaggerUIBundle({json.dumps(config)});\n"
        return Response(script, media_type="text/javascript")


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; validation errors add `errors`.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI schema say what the service does: every error is ``application/problem+json``.

    Each operation gets a ``default`` problem response, and every 4xx/5xx it lists (FastAPI's 422 included)
    is documented with the Problem schema instead of ``application/json``.
    """
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code, response in responses.items():
                if code[:1] in ("4", "5"):
                    response["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
                    if code == "422":
                        response["description"] = "Validation error (problem details naming each field)"
            responses.setdefault(
                "default",
                {
                    "description": "Error (problem details)",
                    "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
                },
            )
    components = schema["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in components and unused not in json.dumps(schema["paths"]):
            del components[unused]
    return schema


def install_problem_docs(app: FastAPI) -> None:
    """Wrap ``app.openapi`` so the generated (and cached) schema documents problem responses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        if not schema.get("x-problem-responses"):
            document_problems(schema)
            schema["x-problem-responses"] = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
