"""Errors on page routes as friendly HTML pages (``/api`` keeps RFC 9457 problem details)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.paths import path_for
from app.web.templating import render, role_words

log = logging.getLogger("aireg")

# What a reader should understand and do, per status; the error's own detail is shown under it.
ERROR_PAGES: dict[int, tuple[str, str]] = {
    400: ("Something in the request was not right", "Go back, check what you entered and try again."),
    403: (
        "You cannot do this",
        "Your roles do not allow this action. Ask a compliance officer if you need it.",
    ),
    404: ("Page not found", "The page or record does not exist, or it is in a site you have no role in."),
    405: ("Not possible here", "This address does not accept that kind of request."),
    409: ("Someone changed this in the meantime", "Reload the page to see the latest state and try again."),
    413: ("Too much data", "What you sent is larger than the registry accepts."),
    422: ("Some values are not valid", "Go back, correct the values named below and try again."),
    429: ("Too many attempts", "Wait a minute and try again."),
    500: ("Something went wrong on our side", "The error has been logged. Try again in a moment."),
}


def render_error(request: Request, status: int, title: str, detail: str) -> Response:
    """The HTML answer for an error on a page route; an anonymous visitor is sent to the login page."""
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = urlencode({"next": target}) if request.method == "GET" else ""
        login = path_for(request, "login_form")
        return RedirectResponse(f"{login}?{query}" if query else login, status_code=303)
    heading, advice = ERROR_PAGES.get(status, (title, "Go back and try again."))
    context = {
        "status": status,
        "heading": heading,
        "advice": advice,
        "title": title,
        "detail": role_words(detail),
    }
    if status >= 500:
        context["detail"] = ""
    return render(request, "error.html", context, status=status)


class PageErrorMiddleware:
    """A crash on a page route answers the HTML error page (the API keeps its problem+json 500).

    The exception is logged with its stack trace here; the reader sees only that something went wrong.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(("/api/", "/static/", "/docs")):
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if started:
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), scope["path"])
            response = render_error(Request(scope, receive), 500, "Internal server error", "")
            await response(scope, receive, send)
