"""Who is calling, and may they: the one dependency every endpoint asks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from app.errors import Forbidden, NotFound, Unauthorized
from app.identity import service
from app.identity.authz import ANY_SITE, Authorizer, authorizer_for
from app.logging import set_request_user
from app.security import ratelimit


@dataclass
class Principal:
    """An authenticated caller and the Casbin enforcer that decides for them."""

    user_id: int
    username: str
    authorizer: Authorizer
    token_id: str | None = None

    @property
    def grants(self) -> list[tuple[str, str]]:
        return self.authorizer.grants_of(self.username)

    def holds_role_in(self, site: str | None) -> bool:
        """Whether the caller holds any role in ``site`` (objects elsewhere are answered 404)."""
        return any(s in (ANY_SITE, site) for _, s in self.grants)

    def roles_in(self, site: str | None) -> set[str]:
        return {r for r, s in self.grants if s in (ANY_SITE, site)}

    def can(self, obj: str, act: str, site: str | None = None) -> bool:
        """Casbin's decision for ``act`` on ``obj`` in ``site`` (``None``: a site-less resource)."""
        return self.authorizer.allowed(self.username, site or ANY_SITE, obj, act)

    def sites_for(self, obj: str, act: str) -> set[str] | None:
        """The sites where the caller may ``act`` on ``obj``; ``None`` means every site."""
        if self.authorizer.allowed(self.username, ANY_SITE, obj, act):
            return None
        return {s for _, s in self.grants if s != ANY_SITE and self.can(obj, act, s)}

    def require(
        self,
        obj: str,
        act: str,
        site: str | None = None,
        *,
        entity_id: str | None = None,
        entity_type: str | None = None,
        alternatives: tuple[str, ...] = (),
    ) -> str:
        """Allow, or raise: 404 for an object in a site the caller holds no role in, else 403.

        ``alternatives`` are further actions that would also do (e.g. ``update_own`` next to ``update``);
        the first allowed one is returned so the service can apply its record-level rule.
        ``entity_type`` names the loaded object in the 404 (default ``obj``); pass the word the loader's own
        "does not exist" uses (``system`` for a system's versions), so the two answers cannot be told apart.
        A denied attempt is written to the audit trail in a transaction of its own.
        """
        if site is not None and entity_id is not None and not self.holds_role_in(site):
            raise NotFound(
                f"{entity_type or obj} {entity_id!r} does not exist",
                denial=self.denial(obj, act, site, entity_id),
            )
        for action in (act, *alternatives):
            if self.can(obj, action, site):
                return action
        where = f" in site {site}" if site else ""
        raise self.forbidden(f"{self.username} may not {act} {obj}{where}", obj, act, site, entity_id)

    def require_anywhere(self, obj: str, act: str) -> set[str] | None:
        """Allow when the caller may ``act`` on ``obj`` in at least one site; returns those sites."""
        sites = self.sites_for(obj, act)
        if sites is not None and not sites:
            raise self.forbidden(f"{self.username} may not {act} {obj} in any site", obj, act, None, None)
        return sites

    def denial(self, obj: str, act: str, site: str | None, entity_id: str | None) -> dict[str, object]:
        """What the trail records of a denied attempt (written after the request's transaction ends)."""
        return {"actor": self.username, "obj": obj, "act": act, "site": site, "entity_id": entity_id}

    def forbidden(
        self, detail: str, obj: str, act: str, site: str | None, entity_id: str | None
    ) -> Forbidden:
        return Forbidden(detail, denial=self.denial(obj, act, site, entity_id))


def bearer(request: Request) -> str | None:
    """The bearer token of the request (None without an ``Authorization`` header), or 401 for another
    scheme; the one reading of the header (API dependencies and the release gate)."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("expected 'Authorization: Bearer <token>'")
    return value.strip()


def authenticate(token: str, client_ip: str | None = None) -> Principal:
    """Resolve a bearer token in a short read of its own, before the request's transaction begins.

    A token that does not authenticate is counted against the client IP and the token's prefix; past the
    limit the answer is 429 with ``Retry-After`` (app/security/ratelimit.py). A valid token is never limited.
    """
    try:
        owner = service.lookup_token(token)
    except Unauthorized as exc:
        ratelimit.token_failed(client_ip, token, exc.detail)
        raise
    authorizer = authorizer_for(owner.authz_revision)
    if service.needs_touch(owner.last_used_at):
        service.touch_token(owner.token_id)
    return Principal(
        user_id=owner.user_id, username=owner.username, authorizer=authorizer, token_id=owner.token_id
    )


def get_principal(request: Request) -> Principal:
    """The authenticated caller, from a bearer token (or the web session, when pages set one)."""
    token = bearer(request)
    if token is None:
        web_user = getattr(request.state, "web_principal", None)
        if isinstance(web_user, Principal):
            return web_user
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    principal = authenticate(token, request.client.host if request.client else None)
    set_request_user(principal.username)
    return principal


async def inline_principal(request: Request) -> Principal:
    """``get_principal`` without the thread-pool hop for the common case, for cheap hot endpoints.

    A valid bearer token whose ``last_used_at`` needs no write costs one indexed read, done on the event
    loop. Everything else (no or malformed header, a web session, a bad token to count against the rate
    limit, a due ``last_used_at`` write) goes through ``get_principal`` in the thread pool, so the answers
    (401, 429) and writes are exactly the regular ones.
    """
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    token = value.strip()
    if scheme.lower() == "bearer" and token:
        try:
            owner = service.lookup_token(token)
        except Unauthorized:
            owner = None
        if owner is not None and not service.needs_touch(owner.last_used_at):
            set_request_user(owner.username)
            return Principal(
                user_id=owner.user_id,
                username=owner.username,
                authorizer=authorizer_for(owner.authz_revision),
                token_id=owner.token_id,
            )
    return await run_in_threadpool(get_principal, request)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
