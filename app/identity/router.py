"""HTTP endpoints for users, role grants and API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app.db import SessionDep
from app.errors import NotFound
from app.http import Page, PageDep
from app.identity import service
from app.identity.authz import ANY_SITE
from app.identity.dependencies import CurrentPrincipal, Principal
from app.identity.models import (
    USERNAME_PATTERN,
    GrantCreate,
    PasswordChange,
    Role,
    TokenCreate,
    TokenIssued,
    TokenRead,
    UserCreate,
    UserRead,
)

router = APIRouter(prefix="/api/v1", tags=["identity"])

UsernamePath = Annotated[str, Path(pattern=USERNAME_PATTERN)]


def _grant_scope(site: str) -> str | None:
    return None if site == ANY_SITE else site


def _visible_grants(principal: Principal, user: UserRead) -> UserRead:
    """A site admin sees only the grants in the sites they manage; a global admin sees them all."""
    sites = principal.sites_for("user", "manage")
    if sites is None:
        return user
    return user.model_copy(update={"roles": [g for g in user.roles if g.site in sites]})


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserRead)
def create_user(data: UserCreate, session: SessionDep, principal: CurrentPrincipal) -> UserRead:
    principal.require("user", "manage")
    return service.to_read(session, service.create_user(session, data, actor=principal.username))


@router.get("/users", response_model=Page[UserRead])
def list_users(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[UserRead]:
    principal.require("user", "read")
    users, total = service.list_users(session, limit=page.limit, offset=page.offset)
    return Page(
        items=[service.to_read(session, u) for u in users], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/users/me", response_model=UserRead)
def who_am_i(session: SessionDep, principal: CurrentPrincipal) -> UserRead:
    return service.to_read(session, service.get_user(session, principal.username))


@router.get("/users/{username}", response_model=UserRead)
def get_user(username: UsernamePath, session: SessionDep, principal: CurrentPrincipal) -> UserRead:
    if username != principal.username:
        principal.require("user", "read")
    return service.to_read(session, service.get_user(session, username))


@router.post("/users/{username}/roles", status_code=status.HTTP_201_CREATED, response_model=UserRead)
def grant_role(
    username: UsernamePath, data: GrantCreate, session: SessionDep, principal: CurrentPrincipal
) -> UserRead:
    """Grant a role in one site (a site admin) or in every site, ``*`` (a global admin)."""
    principal.require("user", "manage", _grant_scope(data.site))
    service.grant_role(session, username, data.role, data.site, actor=principal.username)
    return _visible_grants(principal, service.to_read(session, service.get_user(session, username)))


@router.delete("/users/{username}/roles/{role}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_role(
    username: UsernamePath,
    role: Role,
    session: SessionDep,
    principal: CurrentPrincipal,
    site: Annotated[str, Query(pattern=r"^(\*|[A-Z0-9][A-Z0-9_-]{1,15})$")],
) -> Response:
    principal.require("user", "manage", _grant_scope(site))
    service.revoke_role(session, username, role, site, actor=principal.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/users/{username}/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(
    username: UsernamePath, data: PasswordChange, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Set a password: your own (with ``current_password``), or anyone's as a global user admin.

    Every web session of the user ends (API tokens stay valid: revoke them separately).
    """
    if username != principal.username:
        principal.require("user", "manage")
    service.change_password(
        session,
        username,
        data.new_password,
        actor=principal.username,
        current_password=data.current_password,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/users/{username}/deactivate", response_model=UserRead)
def deactivate_user(username: UsernamePath, session: SessionDep, principal: CurrentPrincipal) -> UserRead:
    """Deactivate a user: their tokens are refused and their web sessions end at once."""
    principal.require("user", "manage")
    return service.to_read(session, service.set_active(session, username, False, actor=principal.username))


@router.post("/users/{username}/activate", response_model=UserRead)
def activate_user(username: UsernamePath, session: SessionDep, principal: CurrentPrincipal) -> UserRead:
    principal.require("user", "manage")
    return service.to_read(session, service.set_active(session, username, True, actor=principal.username))


def _require_token_admin(principal: Principal, username: str) -> None:
    """Anyone holding a role in some site may manage their own tokens (``token:self``).

    Others' tokens need ``user:manage`` in every site: a token carries all of its user's roles, in every site.
    """
    if username == principal.username:
        principal.require_anywhere("token", "self")
    else:
        principal.require("user", "manage")


@router.post("/users/{username}/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenIssued)
def issue_token(
    username: UsernamePath, data: TokenCreate, session: SessionDep, principal: CurrentPrincipal
) -> TokenIssued:
    """Issue a token; the response is the only time the token itself is shown."""
    _require_token_admin(principal, username)
    return service.issue_token(
        session, username, name=data.name, expires_days=data.expires_days, actor=principal.username
    )


@router.get("/users/{username}/tokens", response_model=list[TokenRead])
def list_tokens(username: UsernamePath, session: SessionDep, principal: CurrentPrincipal) -> list[TokenRead]:
    _require_token_admin(principal, username)
    service.get_user(session, username)
    return service.list_tokens(session, username)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(
    token_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")],
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    try:
        _token, owner = service.get_token(session, token_id)
    except NotFound:
        principal.require("user", "manage")
        raise
    _require_token_admin(principal, owner.username)
    service.revoke_token(session, token_id, actor=principal.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
