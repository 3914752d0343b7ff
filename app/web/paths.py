"""Paths of the named page routes, found in a dict instead of Starlette's walk over every route.

``app.url_path_for`` tries each route of the application in turn (about half a millisecond per call here);
a page with a 50-row table asks for dozens of links, so the pages resolve their own names from an index.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.routing import NoMatchFound, replace_params

STATIC_PREFIX = "/static"
_routes: dict[str, APIRoute] = {}


def register(routes: Iterable[Any]) -> None:
    """Index the page routes by name (called once, when the web package is imported)."""
    for route in routes:
        if isinstance(route, APIRoute):
            _routes[route.name] = route


def path_for(request: Request, name: str, /, **params: Any) -> str:
    """The path of a named route under the app's root path; other apps' routes fall back to Starlette."""
    root: str = request.scope.get("root_path", "")
    if name == "static":
        return f"{root}{STATIC_PREFIX}/{params['path']}"
    route = _routes.get(name)
    if route is None:
        return root + str(request.app.url_path_for(name, **params))
    if set(params) != set(route.param_convertors):
        raise NoMatchFound(name, params)
    path, _ = replace_params(route.path_format, route.param_convertors, dict(params))
    return root + path
