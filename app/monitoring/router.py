"""HTTP endpoints for monitoring reports and deployments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.approvals.models import Environment
from app.db import SessionDep, utcnow
from app.http import IsoDateTime, Page, PageDep
from app.identity.dependencies import CurrentPrincipal
from app.identity.models import SITE_PATTERN
from app.monitoring import service
from app.monitoring.models import (
    DeploymentCreate,
    DeploymentRead,
    MonitoringReportCreate,
    MonitoringReportRead,
    MonitoringState,
    MonitoringStatus,
    MonitoringStatusRead,
)
from app.systems.dependencies import system_access
from app.systems.models import LINE_PATTERN, AISystem

router = APIRouter(prefix="/api/v1", tags=["monitoring"])

SiteQuery = Annotated[str | None, Query(pattern=SITE_PATTERN)]
LineQuery = Annotated[str | None, Query(pattern=LINE_PATTERN)]


# --- monitoring ----------------------------------------------------------------------------------------


@router.post(
    "/systems/{system_id}/monitoring",
    status_code=status.HTTP_201_CREATED,
    response_model=MonitoringReportRead,
)
def report_monitoring(
    data: MonitoringReportCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("monitoring", "create"))],
) -> MonitoringReportRead:
    """A pipeline reports a monitoring run: version, metric values and ok | degraded | alert."""
    return service.monitoring_read(service.record_monitoring(session, system, data, actor=principal.username))


@router.get("/systems/{system_id}/monitoring", response_model=Page[MonitoringReportRead])
def list_monitoring(
    session: SessionDep,
    page: PageDep,
    system: Annotated[AISystem, Depends(system_access("monitoring", "read"))],
    status_: Annotated[MonitoringStatus | None, Query(alias="status")] = None,
    since: IsoDateTime | None = None,
) -> Page[MonitoringReportRead]:
    """The system's monitoring reports, newest first."""
    rows, total = service.list_monitoring(session, system.id, page, status=status_, since=since)
    return Page(
        items=[service.monitoring_read(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/systems/{system_id}/monitoring/status", response_model=MonitoringStatusRead)
def monitoring_status(
    session: SessionDep, system: Annotated[AISystem, Depends(system_access("monitoring", "read"))]
) -> MonitoringStatusRead:
    """Whether monitoring is active (a report within its interval), lapsed, missing or not required."""
    return service.monitoring_status(session, system)


@router.get("/monitoring/status", response_model=Page[MonitoringStatusRead])
def monitoring_overview(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    site: SiteQuery = None,
    line: LineQuery = None,
    state: MonitoringState | None = None,
) -> Page[MonitoringStatusRead]:
    """Monitoring state of every system expected to report (production, or pilot with an interval)."""
    rows, total = service.monitoring_overview(
        session,
        page,
        sites=principal.sites_for("monitoring", "read"),
        site=site,
        line=line,
        states={state} if state else None,
    )
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.get("/monitoring/lapsed", response_model=Page[MonitoringStatusRead])
def monitoring_lapsed(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    site: SiteQuery = None,
    line: LineQuery = None,
) -> Page[MonitoringStatusRead]:
    """Systems whose monitoring lapsed or never started although they are expected to report."""
    rows, total = service.lapsed_monitoring(
        session, page, sites=principal.sites_for("monitoring", "read"), site=site, line=line
    )
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


# --- deployments ---------------------------------------------------------------------------------------


@router.post(
    "/systems/{system_id}/deployments",
    status_code=status.HTTP_201_CREATED,
    response_model=DeploymentRead,
    responses={409: {"description": "the release gate denies this release; `reasons` lists why"}},
)
def report_deployment(
    data: DeploymentCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("deployment", "create"))],
) -> DeploymentRead:
    """A pipeline reports a rollout; refused with 409 and the release-permission reasons when not allowed."""
    return service.deployment_read(service.record_deployment(session, system, data, principal=principal))


@router.get("/systems/{system_id}/deployments", response_model=Page[DeploymentRead])
def list_deployments(
    session: SessionDep,
    page: PageDep,
    system: Annotated[AISystem, Depends(system_access("deployment", "read"))],
    at: Annotated[
        IsoDateTime | None, Query(description="only what ran at this time: one deployment per environment")
    ] = None,
    environment: Environment | None = None,
) -> Page[DeploymentRead]:
    """The deployment history (newest first), or with ``at`` the version running in each environment then."""
    env = environment.value if environment else None
    if at is None:
        rows, total = service.list_deployments(session, system.id, page, environment=env)
    else:
        rows, total = service.deployments_at(session, at, page, system_id=system.id, environment=env)
    return Page(
        items=[service.deployment_read(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/deployments", response_model=Page[DeploymentRead])
def deployments_at(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    site: SiteQuery = None,
    line: Annotated[
        str | None, Query(pattern=LINE_PATTERN, description="the line at deployment time")
    ] = None,
    environment: Environment | None = Environment.production,
    at: Annotated[IsoDateTime | None, Query(description="default: now")] = None,
) -> Page[DeploymentRead]:
    """Which version ran in an environment (default production) on a site or line at a time (default now)."""
    rows, total = service.deployments_at(
        session,
        at or utcnow(),
        page,
        sites=principal.sites_for("deployment", "read"),
        site=site,
        line=line,
        environment=environment.value if environment else None,
    )
    return Page(
        items=[service.deployment_read(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )
