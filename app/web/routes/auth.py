"""Signing in with username and password, and signing out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from app.db import session_scope
from app.identity import service as identity
from app.identity.models import User
from app.security import ratelimit
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
    return render(request, "login.html", {"next": safe_next(next) or "", "username": "", "error": None})


@router.post("/login", name="login")
def login(request: Request, form: FormDep) -> Response:
    """Check the password (argon2, constant cost for unknown users) and start a new session.

    Failed attempts count against the client IP and the username; past the limit the answer is 429.
    """
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
        context = {"next": next_path or "", "username": username, "error": "Wrong username or password."}
        return render(request, "login.html", context, status=400)
    ratelimit.login_succeeded(username)
    sign_in(request, user)
    return RedirectResponse(next_path or path_for(request, "home"), status_code=303)


@router.post("/logout", name="logout")
def logout(request: Request) -> Response:
    sign_out(request)
    return RedirectResponse(path_for(request, "login_form"), status_code=303)
