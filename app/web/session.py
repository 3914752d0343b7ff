"""The browser session: a signed cookie, the signed-in user behind it, and CSRF tokens.

The cookie is Starlette's signed session (itsdangerous, keyed by ``AIREG_SECRET_KEY``): HttpOnly,
SameSite=Lax, and Secure whenever the request came over HTTPS. It carries the user id, a fingerprint of the
user's password hash (changing the password ends every session) and a per-session CSRF token. Requests
without an ``Authorization`` header get the session's user as ``request.state.web_principal``, which
``app.identity.dependencies.get_principal`` honours, so pages and API downloads decide with the same Casbin
rules.
"""

from __future__ import annotations

import hashlib
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
from app.identity.authz import get_authorizer
from app.identity.dependencies import Principal
from app.identity.models import User
from app.logging import set_request_user
from app.problems import problem
from app.settings import get_settings

SESSION_COOKIE = "aireg_session"
SESSION_MAX_AGE = 12 * 60 * 60  # one working day; signing in again renews it
USER_KEY, AUTH_KEY, CSRF_KEY, FLASH_KEY = "uid", "auth", "csrf", "flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class BrowserSessionMiddleware:
    """Starlette's signed-cookie session, with the Secure flag set exactly when the request is HTTPS."""

    def __init__(self, app: ASGIApp, secret_key: str) -> None:
        options: dict[str, Any] = {
            "secret_key": secret_key,
            "session_cookie": SESSION_COOKIE,
            "max_age": SESSION_MAX_AGE,
            "same_site": "lax",
        }
        self.plain = SessionMiddleware(app, https_only=False, **options)
        self.secure = SessionMiddleware(app, https_only=True, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        https = scope.get("scheme") in ("https", "wss")
        await (self.secure if https else self.plain)(scope, receive, send)


@dataclass(frozen=True)
class WebUser:
    """What pages show about the signed-in user."""

    username: str
    display_name: str


def auth_fingerprint(user: User) -> str:
    """A keyed digest of the user's password hash; a new password makes older sessions invalid."""
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"{user.id}:{user.password_hash or ''}".encode(), hashlib.sha256).hexdigest()[:32]


def load_web_principal(user_id: int, fingerprint: str) -> tuple[Principal, WebUser] | None:
    """The principal of a session's user, or None when the user is gone, inactive or changed password."""
    with session_scope(write=False) as session:
        user = session.get(User, user_id)
        if user is None or not user.is_active or not hmac.compare_digest(auth_fingerprint(user), fingerprint):
            return None
        authorizer = get_authorizer(session)
    principal = Principal(user_id=user.id, username=user.username, authorizer=authorizer)
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
        if session and USER_KEY in session and not has_bearer:
            loaded = await run_in_threadpool(load_web_principal, session[USER_KEY], session.get(AUTH_KEY, ""))
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


def sign_in(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF token too, so nothing from before carries over)."""
    request.session.clear()
    request.session[USER_KEY] = user.id
    request.session[AUTH_KEY] = auth_fingerprint(user)
    request.session[CSRF_KEY] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
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
