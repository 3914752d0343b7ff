"""HTTP endpoints: approval requests, sign-offs, the signer's inbox, and the release gate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.approvals import flows, release, service, webhooks
from app.approvals.models import (
    APPROVAL_ID_PATTERN,
    ApprovalCreate,
    ApprovalRead,
    ApprovalState,
    ApprovalVerification,
    Environment,
    ReleasePermission,
    RevokeRequest,
    SignOffCreate,
    WithdrawRequest,
)
from app.approvals.rules import get_rules
from app.db import SessionDep, get_engine, utcnow
from app.errors import AppError, Unauthorized
from app.http import IfMatchDep, Page, PageDep
from app.identity import authz
from app.identity import service as identity
from app.identity.dependencies import CurrentPrincipal, Principal
from app.identity.models import SITE_PATTERN, USERNAME_PATTERN, Role
from app.logging import set_request_user
from app.security import ratelimit
from app.systems.dependencies import system_access
from app.systems.models import DIGEST_PATTERN, SYSTEM_ID_PATTERN, VERSION_PATTERN, AISystem


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    get_rules()  # a broken policies/signoff_rules.yaml stops the service here, naming file and key
    webhooks.check_config()
    worker = webhooks.start_worker(sweep=flows.sweep_expired)
    try:
        yield
    finally:
        worker.stop()


router = APIRouter(prefix="/api/v1", tags=["approvals"], lifespan=lifespan)

ApprovalId = Annotated[str, Path(pattern=APPROVAL_ID_PATTERN, description="e.g. APR-000042")]


def _read(session: Session, approval_id: str, principal: Principal) -> ApprovalRead:
    a = service.get_approval(session, approval_id)
    principal.require("approval", "read", a.site, entity_id=a.id)
    return service.approval_read(session, a)


@router.post(
    "/systems/{system_id}/approvals", status_code=status.HTTP_201_CREATED, response_model=ApprovalRead
)
def submit_approval(
    data: ApprovalCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("approval", "request", for_update=True))],
) -> ApprovalRead:
    """Ask to run one version in one environment; ``required_signoffs`` come from the rule table.

    A prohibited or unclassified system is refused with 422 and ``code`` naming why; a second open
    request for the same system, version and environment is 409.
    """
    a = flows.submit(session, system, data, actor=principal.username)
    return service.approval_read(session, a)


@router.get("/systems/{system_id}/approvals", response_model=Page[ApprovalRead])
def list_system_approvals(
    session: SessionDep,
    page: PageDep,
    system: Annotated[AISystem, Depends(system_access("approval", "read"))],
    state: ApprovalState | None = None,
    environment: Environment | None = None,
) -> Page[ApprovalRead]:
    filters = service.ApprovalFilters(state=state, system_id=system.id, environment=environment)
    items, total = service.list_approvals(session, filters, read_sites={system.site}, page=page)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/approvals", response_model=Page[ApprovalRead])
def list_approvals(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    state: ApprovalState | None = None,
    site: Annotated[str | None, Query(pattern=SITE_PATTERN)] = None,
    awaiting_role: Annotated[
        Role | None, Query(description="the inbox for one role: requests the caller may sign for it now")
    ] = None,
    inbox: Annotated[bool, Query(description="the caller's inbox over every role they may sign")] = False,
    system: Annotated[str | None, Query(pattern=SYSTEM_ID_PATTERN)] = None,
    environment: Environment | None = None,
    requester: Annotated[str | None, Query(pattern=USERNAME_PATTERN)] = None,
) -> Page[ApprovalRead]:
    """Approval requests the caller may read, newest first.

    With ``awaiting_role`` (or ``inbox=true``) this is the signer's inbox: open requests in sites where the
    caller may sign that role, not requested by the caller, not signed by them for any role, and not yet
    signed for that role.
    """
    read_sites = principal.require_anywhere("approval", "read")
    sign_sites = None
    if awaiting_role is not None or inbox:
        roles = [awaiting_role.value] if awaiting_role is not None else service.signable_roles()
        sign_sites = {r: principal.sites_for(f"signoff.{r}", "sign") for r in roles}
    filters = service.ApprovalFilters(
        state=state, site=site, system_id=system, environment=environment, requester=requester
    )
    items, total = service.list_approvals(
        session, filters, read_sites=read_sites, page=page, username=principal.username, sign_sites=sign_sites
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/approvals/{approval_id}", response_model=ApprovalRead)
def get_approval(approval_id: ApprovalId, session: SessionDep, principal: CurrentPrincipal) -> ApprovalRead:
    """One request with its sign-offs; each sign-off carries ``hash_valid`` (its hash recomputed now)."""
    return _read(session, approval_id, principal)


@router.get("/approvals/{approval_id}/verify", response_model=ApprovalVerification)
def verify_approval(
    approval_id: ApprovalId, session: SessionDep, principal: CurrentPrincipal
) -> ApprovalVerification:
    """Recompute the request's content hash and every sign-off's hash; ``valid`` is false after any edit."""
    a = service.get_approval(session, approval_id)
    principal.require("approval", "read", a.site, entity_id=a.id)
    return service.verify(session, a)


@router.post(
    "/approvals/{approval_id}/signoffs", status_code=status.HTTP_201_CREATED, response_model=ApprovalRead
)
def sign_approval(
    approval_id: ApprovalId,
    data: SignOffCreate,
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> ApprovalRead:
    """Sign for one required role: ``approve`` (optionally with go/no-go ``conditions``) or ``reject``."""
    a = flows.sign(session, approval_id, data, principal=principal, if_match=if_match)
    return service.approval_read(session, a)


@router.post("/approvals/{approval_id}/withdraw", response_model=ApprovalRead)
def withdraw_approval(
    approval_id: ApprovalId,
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    data: WithdrawRequest | None = None,
) -> ApprovalRead:
    """The requester takes back an open request."""
    a = flows.withdraw(
        session, approval_id, principal=principal, reason=data.reason if data else None, if_match=if_match
    )
    return service.approval_read(session, a)


@router.post("/approvals/{approval_id}/revoke", response_model=ApprovalRead)
def revoke_approval(
    approval_id: ApprovalId,
    data: RevokeRequest,
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> ApprovalRead:
    """Revoke a granted approval; ``reason`` is required."""
    a = flows.revoke(session, approval_id, principal=principal, reason=data.reason, if_match=if_match)
    return service.approval_read(session, a)


# --- the release gate ----------------------------------------------------------------------------------


class ServiceUnavailable(AppError):
    status, title, type_slug = 503, "Service unavailable", "service-unavailable"


class _SessionOnDemand:
    """Stands in for a Session and opens a real one only if it is used (i.e. when Casbin must be rebuilt)."""

    def __init__(self) -> None:
        self._session: Session | None = None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = Session(get_engine())
        return getattr(self._session, name)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


def _authorizer(revision: int) -> authz.Authorizer:
    """The process's Casbin enforcer for ``revision``, without ORM cost while it is current."""
    session = _SessionOnDemand()
    try:
        return authz.get_authorizer(session, revision)  # type: ignore[arg-type]
    finally:
        session.close()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("expected 'Authorization: Bearer <token>'")
    return value.strip()


@router.get(
    "/release-permission",
    response_model=ReleasePermission,
    responses={404: {"description": "unknown system, or one in a site the caller holds no role in"}},
)
async def release_permission(
    request: Request,
    system: Annotated[str, Query(pattern=SYSTEM_ID_PATTERN, description="system id, e.g. AIS-000123")],
    version: Annotated[str, Query(pattern=VERSION_PATTERN, description="the version string")],
    environment: Environment = Environment.production,
    artifact_digest: Annotated[
        str | None, Query(pattern=DIGEST_PATTERN, description="optional: the artifact about to ship")
    ] = None,
) -> Response:
    """May this version run in this environment now? 200 with ``allowed`` and every reason that applies.

    Reasons have ``severity``: ``error`` denies; ``warning`` (``SL_GAP_ACCEPTED``) may come with an allow.
    With ``artifact_digest`` the answer also requires that digest to be the version's recorded one.
    """
    token = _bearer(request)
    web_principal = getattr(request.state, "web_principal", None) if token is None else None
    try:
        answer, principal, touch = _decide(
            token,
            web_principal,
            system_id=system,
            version=version,
            environment=environment.value,
            artifact_digest=artifact_digest,
        )
    except Unauthorized:
        if token is not None:  # a failed token counts like on every other endpoint (429 past the limit)
            client_ip = request.client.host if request.client else None
            await run_in_threadpool(ratelimit.token_failed, client_ip, token)
        raise
    if touch and principal.token_id:
        await run_in_threadpool(identity.touch_token, principal.token_id)
    return Response(release.dumps(answer), media_type="application/json")


def _decide(
    token: str | None, web_principal: Principal | None, **query: Any
) -> tuple[dict[str, Any], Principal, bool]:
    """Authenticate and decide inside one read snapshot (a lost connection is retried once)."""
    engine = get_engine()
    for attempt in (1, 2):
        try:
            with release.raw_reader(engine) as db:
                touch = False
                if web_principal is not None:
                    principal = web_principal
                else:
                    principal, touch = release.authenticate(db, token, _authorizer)
                set_request_user(principal.username)
                answer = release.decide(db, principal, rules=get_rules(), now=utcnow(), **query)
                return answer, principal, touch
        except (release.ConnectionLost, sa.exc.OperationalError):
            if attempt == 2:
                raise ServiceUnavailable("the registry database is unreachable; try again") from None
    raise AssertionError("unreachable")
