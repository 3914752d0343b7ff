"""HTTP endpoints for monitoring, deployments, incidents, replication, reviews and portfolio figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from app.approvals import service as approvals
from app.approvals.models import APPROVAL_ID_PATTERN, Environment
from app.db import SessionDep, utcnow
from app.http import IfMatchDep, IsoDateTime, Page, PageDep, PageParams
from app.identity.dependencies import CurrentPrincipal
from app.identity.models import SITE_PATTERN
from app.operations import incidents, kpis, replication, reviews, service
from app.operations.models import (
    DeploymentCreate,
    DeploymentRead,
    Incident,
    IncidentClose,
    IncidentCreate,
    IncidentKind,
    IncidentLift,
    IncidentRead,
    IncidentReport,
    IncidentStatus,
    MonitoringReportCreate,
    MonitoringReportRead,
    MonitoringState,
    MonitoringStatus,
    MonitoringStatusRead,
    RenewalRead,
    RenewRequest,
    ReplicatedSystemRead,
    ReplicateRequest,
    ReviewDue,
)
from app.systems import service as systems
from app.systems.dependencies import check_ownership, system_access
from app.systems.models import LINE_PATTERN, AISystem

router = APIRouter(prefix="/api/v1", tags=["operations"])

SiteQuery = Annotated[str | None, Query(pattern=SITE_PATTERN)]
LineQuery = Annotated[str | None, Query(pattern=LINE_PATTERN)]
IncidentId = Annotated[str, Path(pattern=r"^INC-\d{6,}$", description="e.g. INC-000042")]


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
    return Page(items=rows, total=total, **_page(page))


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
    return Page(items=rows, total=total, **_page(page))


def _page(page: PageParams) -> dict[str, int]:
    return {"limit": page.limit, "offset": page.offset}


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
    return Page(items=[service.deployment_read(r) for r in rows], total=total, **_page(page))


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
    return Page(items=[service.deployment_read(r) for r in rows], total=total, **_page(page))


# --- incidents -----------------------------------------------------------------------------------------


def incident_access(act: str, *, for_update: bool = False) -> Callable[..., Incident]:
    """A dependency loading the incident in the path and checking ``act`` on incidents in its site."""

    def dependency(incident_id: IncidentId, session: SessionDep, principal: CurrentPrincipal) -> Incident:
        incident = incidents.get_incident(session, incident_id, for_update=for_update)
        principal.require("incident", act, incident.site, entity_id=incident.id)
        return incident

    return dependency


@router.post(
    "/systems/{system_id}/incidents", status_code=status.HTTP_201_CREATED, response_model=IncidentRead
)
def create_incident(
    data: IncidentCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: Annotated[AISystem, Depends(system_access("incident", "create"))],
) -> IncidentRead:
    """Record an incident; a serious one of a high-risk system gets its Art. 73 report deadline."""
    return incidents.incident_read(incidents.create_incident(session, system, data, actor=principal.username))


@router.get("/systems/{system_id}/incidents", response_model=Page[IncidentRead])
def list_system_incidents(
    session: SessionDep,
    page: PageDep,
    system: Annotated[AISystem, Depends(system_access("incident", "read"))],
    status_: Annotated[IncidentStatus | None, Query(alias="status")] = None,
) -> Page[IncidentRead]:
    """The system's incidents, newest first."""
    rows, total = incidents.list_incidents(
        session, sites=None, page=page, system_id=system.id, status=status_
    )
    return Page(items=[incidents.incident_read(r) for r in rows], total=total, **_page(page))


@router.get("/incidents", response_model=Page[IncidentRead])
def list_incidents(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    site: SiteQuery = None,
    status_: Annotated[IncidentStatus | None, Query(alias="status")] = None,
    serious: bool | None = None,
    kind: IncidentKind | None = None,
    suspending: Annotated[bool | None, Query(description="only those that suspend releases")] = None,
) -> Page[IncidentRead]:
    """Incidents across the sites the caller may read, newest first."""
    rows, total = incidents.list_incidents(
        session,
        sites=principal.sites_for("incident", "read"),
        page=page,
        site=site,
        status=status_,
        serious=serious,
        kind=kind,
        suspending=suspending,
    )
    return Page(items=[incidents.incident_read(r) for r in rows], total=total, **_page(page))


@router.get("/incidents/{incident_id}", response_model=IncidentRead)
def get_incident(incident: Annotated[Incident, Depends(incident_access("read"))]) -> IncidentRead:
    return incidents.incident_read(incident)


@router.post("/incidents/{incident_id}/close", response_model=IncidentRead)
def close_incident(
    data: IncidentClose,
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    incident: Annotated[Incident, Depends(incident_access("close", for_update=True))],
) -> IncidentRead:
    """Close with root cause and corrective action; an open serious incident stops suspending releases."""
    incidents.close_incident(session, incident, data, if_match=if_match, actor=principal.username)
    return incidents.incident_read(incident)


@router.post("/incidents/{incident_id}/lift", response_model=IncidentRead)
def lift_suspension(
    data: IncidentLift,
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    incident: Annotated[Incident, Depends(incident_access("lift", for_update=True))],
) -> IncidentRead:
    """A compliance officer lifts the release suspension of an open serious incident, giving a reason."""
    incidents.lift_suspension(session, incident, data, if_match=if_match, actor=principal.username)
    return incidents.incident_read(incident)


@router.post("/incidents/{incident_id}/report", response_model=IncidentRead)
def record_report(
    data: IncidentReport,
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    incident: Annotated[Incident, Depends(incident_access("report", for_update=True))],
) -> IncidentRead:
    """Record when the incident was reported to the market surveillance authority (Art. 73)."""
    incidents.record_report(session, incident, data, if_match=if_match, actor=principal.username)
    return incidents.incident_read(incident)


# --- replication ---------------------------------------------------------------------------------------


@router.post(
    "/systems/{system_id}/replicate", status_code=status.HTTP_201_CREATED, response_model=ReplicatedSystemRead
)
def replicate_system(
    data: ReplicateRequest,
    session: SessionDep,
    principal: CurrentPrincipal,
    origin: Annotated[AISystem, Depends(system_access("system", "replicate"))],
) -> ReplicatedSystemRead:
    """Copy a system to another line or site, reusing its evidence; placement sign-offs are asked again."""
    if not principal.holds_role_in(data.site):
        systems.ensure_site_exists(session, data.site, ["body", "site"])
    principal.require("system", "create", data.site)
    return replication.replicate(session, origin, data, actor=principal.username)


# --- reviews -------------------------------------------------------------------------------------------


@router.get("/reviews/due", response_model=Page[ReviewDue])
def reviews_due(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    days: Annotated[int, Query(ge=0, le=3650, description="approvals expiring within this many days")] = 30,
    site: SiteQuery = None,
) -> Page[ReviewDue]:
    """Approvals whose validity ends within ``days`` (or ended) and that no newer approval replaced."""
    rows = reviews.reviews_due(session, days=days, sites=principal.sites_for("approval", "read"), site=site)
    return Page(items=rows[page.offset : page.offset + page.limit], total=len(rows), **_page(page))


@router.post(
    "/approvals/{approval_id}/renew", status_code=status.HTTP_201_CREATED, response_model=RenewalRead
)
def renew_approval(
    approval_id: Annotated[str, Path(pattern=APPROVAL_ID_PATTERN, description="e.g. APR-000042")],
    session: SessionDep,
    principal: CurrentPrincipal,
    data: RenewRequest | None = None,
) -> RenewalRead:
    """Re-approval for the periodic review: a new request for the same version and environment, every sign-off
    asked again, with the evidence that is unchanged since the approval it renews listed."""
    old = approvals.get_approval(session, approval_id)
    principal.require("approval", "read", old.site, entity_id=old.id)
    system = systems.get_system(session, old.system_id, for_update=True)
    granted = principal.require(
        "approval", "request", system.site, entity_id=system.id, alternatives=("request_own",)
    )
    check_ownership(principal, system, granted, "approval")
    new, evidence = reviews.renew(
        session, old, system, justification=data.justification if data else None, actor=principal.username
    )
    return RenewalRead(renews=old.id, approval=approvals.approval_read(session, new), evidence=evidence)


@router.post("/reviews/remind", response_model=Page[ReviewDue])
def remind_reviews(
    session: SessionDep,
    principal: CurrentPrincipal,
    days: Annotated[int, Query(ge=0, le=3650)] = 30,
) -> Page[ReviewDue]:
    """Queue an ``approval.review_due`` webhook for each due review not reminded of in the last week."""
    sites = principal.require_anywhere("review", "remind")
    rows = reviews.send_reminders(session, days=days, sites=sites)
    return Page(items=rows, total=len(rows), limit=max(len(rows), 1), offset=0)


# --- portfolio figures ---------------------------------------------------------------------------------


@router.get("/kpis", response_model=kpis.KpiRead)
def portfolio_kpis(
    session: SessionDep,
    principal: CurrentPrincipal,
    site: SiteQuery = None,
    quarters: Annotated[int, Query(ge=1, le=20, description="how many quarters back, this one included")] = 4,
) -> kpis.KpiRead:
    """Portfolio figures for the sites the caller may read (or one site)."""
    if site is not None:
        principal.require("kpi", "read", site, entity_id=site)
        sites: set[str] | None = {site}
    else:
        sites = principal.require_anywhere("kpi", "read")
    return kpis.portfolio_kpis(session, sites=sites, quarters=quarters)
