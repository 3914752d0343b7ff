"""The browser session: a signed cookie, the server-side session behind it, and CSRF tokens.

The cookie is Starlette's signed session (itsdangerous, keyed by ``AIREG_SECRET_KEY`` or the instance's own
random key, app/security/instance.py): HttpOnly, SameSite=Lax, and Secure whenever the request came over
HTTPS. It carries the token of a ``web_session`` row and a per-session CSRF token. The row decides: signing
out, a password change, deactivation and a role revocation end it, and the cookie is refused from then on.
Requests without an ``Authorization`` header get the session's user as ``request.state.web_principal``,
which ``app.identity.dependencies.get_principal`` honours, so pages and API downloads decide with the same
Casbin rules.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.db import session_scope
from app.errors import Forbidden
from app.identity import service as identity
from app.identity.authz import get_authorizer
from app.identity.dependencies import Principal
from app.identity.models import User
from app.logging import set_request_user
from app.problems import problem
from app.security.instance import session_signing_key

SESSION_COOKIE = "aireg_session"
SESSION_MAX_AGE = int(identity.WEB_SESSION_LIFETIME.total_seconds())  # the cookie lives as long as the row
SESSION_KEY, CSRF_KEY, FLASH_KEY = "sid", "csrf", "flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class BrowserSessionMiddleware:
    """Starlette's signed-cookie session, with the Secure flag set exactly when the request is HTTPS.

    The signing key is read on the first HTTP request (after the lifespan has migrated the database, where
    an instance without ``AIREG_SECRET_KEY`` keeps its random key).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.plain: SessionMiddleware | None = None
        self.secure: SessionMiddleware | None = None

    def _build(self) -> None:
        options: dict[str, Any] = {
            "secret_key": session_signing_key(),
            "session_cookie": SESSION_COOKIE,
            "max_age": SESSION_MAX_AGE,
            "same_site": "lax",
        }
        self.secure = SessionMiddleware(self.app, https_only=True, **options)
        self.plain = SessionMiddleware(self.app, https_only=False, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.plain is None:
            await run_in_threadpool(self._build)
        https = scope.get("scheme") in ("https", "wss")
        await (self.secure if https else self.plain)(scope, receive, send)  # type: ignore[misc]


@dataclass(frozen=True)
class WebUser:
    """What pages show about the signed-in user."""

    username: str
    display_name: str


def load_web_principal(token: str) -> tuple[Principal, WebUser] | None:
    """The principal of a live session, or None when it ended, expired, or its user may no longer sign in."""
    if not isinstance(token, str) or len(token) > 100:
        return None
    with session_scope(write=False) as session:
        user = identity.resolve_web_session(session, token)
        if user is None:
            return None
        authorizer = get_authorizer(session)
    principal = Principal(user_id=identity.stored_id(user), username=user.username, authorizer=authorizer)
    return principal, WebUser(username=user.username, display_name=user.display_name or user.username)


class WebPrincipalMiddleware:
    """Resolve the session's user for requests that bring no bearer token.

    An API request that changes something (POST, PUT, PATCH, DELETE) on the strength of the cookie alone must
    also send the session's CSRF token in ``X-CSRF-Token``; otherwise it is refused with 403.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        session = scope.get("session")
        has_bearer = any(name == b"authorization" for name, _ in scope.get("headers", ()))
        if session and SESSION_KEY in session and not has_bearer:
            loaded = await run_in_threadpool(load_web_principal, session[SESSION_KEY])
            if loaded is None:
                session.clear()
            else:
                if scope["path"].startswith("/api/") and scope["method"] not in SAFE_METHODS:
                    sent = dict(scope.get("headers", ())).get(CSRF_HEADER.encode(), b"").decode("latin-1")
                    if not csrf_matches(session, sent):
                        response = problem(403, "send the page's CSRF token in the X-CSRF-Token header")
                        await response(scope, receive, send)
                        return
                state = scope.setdefault("state", {})
                state["web_principal"], state["web_user"] = loaded
                set_request_user(loaded[0].username)
        await self.app(scope, receive, send)


# --- CSRF ----------------------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get(CSRF_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_KEY] = token
    return token


def csrf_matches(session: dict[str, Any], sent: str | None) -> bool:
    expected = session.get(CSRF_KEY)
    return bool(expected) and bool(sent) and hmac.compare_digest(str(expected), str(sent))


async def require_csrf(request: Request) -> None:
    """Router dependency: every request that changes something must carry the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    form: FormData = await request.form()
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not csrf_matches(request.session, sent if isinstance(sent, str) else None):
        raise Forbidden(
            "This form has expired or did not come from this site (CSRF check failed). "
            "Go back, reload the page and submit it again."
        )


# --- signing in and out --------------------------------------------------------------------------------


def sign_in(request: Request, user: User, *, method: str = "password") -> None:
    """Start a fresh session for ``user`` (a new CSRF token too, so nothing from before carries over).

    The session row and its audit event are committed before the answer (the cookie) goes out.
    """
    with session_scope() as session:
        token = identity.start_web_session(session, user, method=method)
    request.session.clear()
    request.session[SESSION_KEY] = token
    request.session[CSRF_KEY] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    """End the session on the server (the same cookie is refused from now on) and clear the cookie."""
    token = request.session.get(SESSION_KEY)
    if isinstance(token, str):
        with session_scope() as session:
            identity.end_web_session(session, token)
    request.session.clear()


def flash(request: Request, message: str, kind: str = "success") -> None:
    """A message shown once on the next page."""
    request.session[FLASH_KEY] = [*request.session.get(FLASH_KEY, []), {"kind": kind, "message": message}]


def pop_flashes(request: Request) -> list[dict[str, str]]:
    if FLASH_KEY not in request.session:
        return []
    return list(request.session.pop(FLASH_KEY))


def web_user(request: Request) -> WebUser | None:
    return getattr(request.state, "web_user", None)


def web_principal(request: Request) -> Principal | None:
    return getattr(request.state, "web_principal", None)
