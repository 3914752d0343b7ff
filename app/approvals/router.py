"""HTTP endpoints: approval requests, sign-offs, the signer's inbox, and the release gate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import psycopg
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.approvals import flows, gate_db, release, service, webhooks
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
from app.errors import ServiceUnavailable, Unauthorized
from app.http import IfMatchDep, Page, PageDep, query_model, query_parameters
from app.identity import service as identity
from app.identity.dependencies import CurrentPrincipal, Principal, bearer
from app.identity.models import SITE_PATTERN, USERNAME_PATTERN, Role
from app.logging import set_request_user
from app.security import ratelimit
from app.settings import get_settings
from app.systems.dependencies import system_access
from app.systems.models import DIGEST_PATTERN, SYSTEM_ID_PATTERN, VERSION_PATTERN, AISystem


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    worker = webhooks.start_worker(sweep=flows.sweep_expired)
    try:
        yield
    finally:
        worker.stop()


router = APIRouter(prefix="/api/v1", tags=["approvals"], lifespan=lifespan)


# The release gate alone, included ahead of every other router: routes are matched in order, and this is
# the endpoint pipelines call on every deployment.
@asynccontextmanager
async def release_lifespan(_app: FastAPI) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await gate_db.close()  # the gate's PostgreSQL pool of this event loop, if it was opened


release_router = APIRouter(prefix="/api/v1", tags=["release"], lifespan=release_lifespan)

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


class ReleaseQuery(BaseModel):
    """The release asked about."""

    system: str = Field(pattern=SYSTEM_ID_PATTERN, description="system id, e.g. AIS-000123")
    version: str = Field(pattern=VERSION_PATTERN, description="the version string")
    environment: Environment = Environment.production
    artifact_digest: str | None = Field(
        default=None,
        pattern=DIGEST_PATTERN,
        description="optional: the artifact about to ship; it must be the version's recorded digest",
    )


@release_router.get(
    "/release-permission",
    response_model=ReleasePermission,
    responses={
        401: {"description": "missing or bad token"},
        404: {"description": "unknown system, or one in a site the caller holds no role in"},
        422: {"description": "a missing or malformed query parameter"},
        503: {"description": "the registry database did not answer in time; try again"},
    },
    openapi_extra={"parameters": query_parameters(ReleaseQuery)},
)
async def release_permission(
    request: Request, query: Annotated[ReleaseQuery, Depends(query_model(ReleaseQuery))]
) -> Response:
    """May this version run in this environment now? 200 with ``allowed`` and every reason that applies.

    Reasons have ``severity``: ``error`` denies; ``warning`` (``SL_GAP_ACCEPTED``) may come with an allow.
    With ``artifact_digest`` the answer also requires that digest to be the version's recorded one.
    An unknown version is 200 with ``UNKNOWN_VERSION``; an archived (retired, deleted) system answers
    ``SYSTEM_RETIRED``; an unknown system, or one in a site the caller holds no role in, is 404.
    """
    token = bearer(request)
    web = getattr(request.state, "web_principal", None) if token is None else None
    web_principal = web if isinstance(web, Principal) else None  # as in get_principal
    if web_principal is None:
        if token is None:
            raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
        try:
            identity.check_token_format(token)
        except Unauthorized as exc:
            await _count_failure(request, token, exc)
            raise
    release_query = release.Release(
        query.system, query.version, query.environment.value, query.artifact_digest
    )
    try:
        if get_engine().dialect.name == "postgresql":
            answer, principal, touch = await _decide_async(token, web_principal, release_query)
        else:
            answer, principal, touch = _decide(token, web_principal, release_query)
    except Unauthorized as exc:
        if token is not None:
            await _count_failure(request, token, exc)
        raise
    if touch and principal.token_id:
        await run_in_threadpool(identity.touch_token, principal.token_id)
    return Response(release.dumps(answer), media_type="application/json")


async def _count_failure(request: Request, token: str, exc: Unauthorized) -> None:
    """A failed token counts like on every other endpoint (429 past the limit)."""
    client_ip = request.client.host if request.client else None
    await run_in_threadpool(ratelimit.token_failed, client_ip, token, exc.detail)


def _caller(
    rows: list[release.Row], web_principal: Principal | None, now: datetime
) -> tuple[Principal, bool]:
    principal, touch = (web_principal, False) if web_principal else release.authenticate(rows, now)
    set_request_user(principal.username)
    return principal, touch


def _decide(
    token: str | None, web_principal: Principal | None, q: release.Release
) -> tuple[dict[str, Any], Principal, bool]:
    """SQLite: authenticate and decide on the connection this thread keeps (local file: no network wait);
    a lost connection is retried once."""
    engine = get_engine()
    params = release.gate_params(q.system_id, q.version, q.environment, None if web_principal else token)
    query, checks = release.gate_query(q.environment, with_token=web_principal is None)
    for attempt in (1, 2):
        try:
            with release.raw_reader(engine) as db:
                now = utcnow()
                rows = db.rows(query, params)
            break
        except (release.ConnectionLost, sa.exc.OperationalError):
            if attempt == 2:
                raise ServiceUnavailable("the registry database is unreachable; try again") from None
    else:
        raise AssertionError("unreachable")
    principal, touch = _caller(rows, web_principal, now)
    return release.conclude(principal, rows, checks, q, rules=get_rules(), now=now), principal, touch


async def _decide_async(
    token: str | None, web_principal: Principal | None, q: release.Release
) -> tuple[dict[str, Any], Principal, bool]:
    """PostgreSQL: the same statement and rules on a connection of the gate's async pool."""
    params = release.gate_params(q.system_id, q.version, q.environment, None if web_principal else token)
    query, checks = release.gate_query(q.environment, with_token=web_principal is None)
    settings = get_settings()
    # the server cancels a slow statement; this deadline also covers a network that stopped answering
    deadline = settings.gate_connect_timeout + settings.gate_statement_timeout_ms / 1000
    for attempt in (1, 2):
        try:
            async with asyncio.timeout(deadline), gate_db.connection() as conn:
                now = utcnow()
                rows = await gate_db.rows(conn, query, params)
            break
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            # pooled connections the server ended (restart, failover): drop them and retry once on a fresh
            # one, as the SQLite path does; a cancelled (timed-out) statement is not retried
            if attempt == 2 or isinstance(exc, psycopg.errors.QueryCanceled):
                raise ServiceUnavailable("the registry database is unreachable; try again") from None
            try:
                await gate_db.drop_broken()
            except (psycopg.Error, PoolTimeout):
                raise ServiceUnavailable("the registry database is unreachable; try again") from None
        except (PoolTimeout, TimeoutError):
            raise ServiceUnavailable("the registry database is unreachable; try again") from None
    else:
        raise AssertionError("unreachable")
    principal, touch = _caller(rows, web_principal, now)
    return release.conclude(principal, rows, checks, q, rules=get_rules(), now=now), principal, touch
