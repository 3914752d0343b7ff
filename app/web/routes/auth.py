"""Signing in with username and password or with single sign-on (OpenID Connect), and signing out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from app.audit import service as audit
from app.db import session_scope
from app.errors import Forbidden, NotFound
from app.identity import oidc
from app.identity import service as identity
from app.identity.models import User
from app.security import ratelimit
from app.settings import get_settings
from app.web.forms import FormDep, text
from app.web.nav import anywhere, signer_roles
from app.web.paths import path_for
from app.web.session import require_csrf, sign_in, sign_out, web_principal
from app.web.templating import render

router = APIRouter(dependencies=[Depends(require_csrf)], include_in_schema=False)

MAX_PASSWORD = 256


def safe_next(target: str | None) -> str | None:
    """Only a path on this site may follow a login (no ``//host`` or ``https://...``: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ch <= " " or ch == "\x7f" for ch in target):  # browsers drop tabs and newlines: "/\t/evil"
        return None
    return target


@router.get("/", name="home")
def home(request: Request) -> Response:
    """Send each user to the page their work starts on."""
    principal = web_principal(request)
    if principal is None:
        return RedirectResponse(path_for(request, "login_form"), status_code=303)
    if anywhere(principal, "kpi", "read"):
        target = "dashboard"
    elif signer_roles(principal):
        target = "inbox"
    elif anywhere(principal, "system", "read"):
        target = "inventory"
    else:
        return render(request, "no_roles.html")
    return RedirectResponse(path_for(request, target), status_code=303)


@router.get("/login", name="login_form")
def login_form(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    if web_principal(request) is not None:
        return RedirectResponse(safe_next(next) or path_for(request, "home"), status_code=303)
    return render(request, "login.html", _login_context(safe_next(next) or "", "", None))


def _login_context(next_path: str, username: str, error: str | None) -> dict[str, object]:
    settings = get_settings()
    return {
        "next": next_path,
        "username": username,
        "error": error,
        "local_passwords": settings.local_passwords,
        "oidc_name": settings.oidc_display_name if oidc.enabled() else None,
    }


@router.post("/login", name="login")
def login(request: Request, form: FormDep) -> Response:
    """Check the password (argon2, constant cost for unknown users) and start a new session.

    Failed attempts count against the client IP and the username; past the limit the answer is 429. With
    ``AIREG_LOCAL_PASSWORDS=false`` every password sign-in is refused (403), whatever the page shows.
    """
    if not get_settings().local_passwords:
        raise Forbidden("Signing in with a password is switched off here; use single sign-on.")
    username = text(form, "username", 40).lower()
    password = text(form, "password", MAX_PASSWORD, strip=False)
    next_path = safe_next(text(form, "next", 2000))
    client_ip = request.client.host if request.client else None
    ratelimit.guard_login(client_ip, username)
    with session_scope(write=False) as session:
        user = session.exec(select(User).where(User.username == username)).first() if username else None
    valid = identity.verify_password(password, user.password_hash if user else None)
    if user is None or not valid or not user.is_active:
        ratelimit.login_failed(client_ip, username)
        context = _login_context(next_path or "", username, "Wrong username or password.")
        return render(request, "login.html", context, status=400)
    ratelimit.login_succeeded(username)
    sign_in(request, user)
    return RedirectResponse(next_path or path_for(request, "home"), status_code=303)


OIDC_ATTEMPT = "oidc"  # the session-cookie key holding the attempt's state, nonce and PKCE verifier


@router.get("/login/oidc", name="oidc_login")
def oidc_login(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    """Start single sign-on: a fresh state, nonce and PKCE verifier, then off to the provider."""
    if not oidc.enabled():
        raise NotFound("single sign-on is not configured")
    try:
        url, attempt = oidc.begin(str(request.url_for("oidc_callback")), safe_next(next))
    except oidc.OidcError as error:
        return _oidc_refused(request, error)
    request.session[OIDC_ATTEMPT] = attempt
    return RedirectResponse(url, status_code=303)


@router.get("/login/oidc/callback", name="oidc_callback")
def oidc_callback(request: Request) -> Response:
    """Finish single sign-on: check the answer and the ID token, find the registry user, start a session.

    The attempt is used once (taken from the cookie first); every refusal is an HTML page and an audit event
    ``session.sign_in_failed`` with its reason, and nobody is signed in.
    """
    if not oidc.enabled():
        raise NotFound("single sign-on is not configured")
    attempt = request.session.pop(OIDC_ATTEMPT, None)
    params = {key: value[:4000] for key, value in request.query_params.items()}
    claims: dict[str, object] = {}
    try:
        claims = oidc.finish(attempt, params, str(request.url_for("oidc_callback")))
        with session_scope() as session:
            user = oidc.match_user(session, claims, create=get_settings().oidc_create_users)
    except oidc.OidcError as error:
        return _oidc_refused(request, error, oidc.verified_email(claims) or str(claims.get("sub") or "-"))
    sign_in(request, user, method="oidc")
    return RedirectResponse(safe_next(attempt.get("next")) or path_for(request, "home"), status_code=303)


def _oidc_refused(request: Request, error: oidc.OidcError, who: str = "-") -> Response:
    """The page for a refused single sign-on, after auditing it in its own transaction."""
    with session_scope() as session:
        audit.record(
            session,
            actor="anonymous",
            action="session.sign_in_failed",
            entity_type="user",
            entity_id=who[:64],
            after={
                "method": "oidc",
                "reason": error.reason,
                "ip": request.client.host if request.client else None,
            },
        )
    no_account = error.reason == "no_account"
    context = {
        "status": error.status,
        "heading": "No registry account" if no_account else "Single sign-on did not work",
        "advice": (
            "Signing in worked at the provider, but the registry does not know you. An administrator creates "
            "your account with your username or e-mail and grants your roles."
            if no_account
            else "Nobody was signed in. Start again from the sign-in page; if it keeps failing, tell an "
            "administrator what the details below say."
        ),
        "detail": error.detail,
    }
    return render(request, "error.html", context, status=error.status)


@router.post("/logout", name="logout")
def logout(request: Request) -> Response:
    sign_out(request)
    return RedirectResponse(path_for(request, "login_form"), status_code=303)
