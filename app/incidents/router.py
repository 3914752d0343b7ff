"""HTTP endpoints for incidents (AI Act Art. 73) and the release suspension they cause."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from app.db import SessionDep
from app.http import IfMatchDep, Page, PageDep
from app.identity.dependencies import CurrentPrincipal
from app.identity.models import SITE_PATTERN
from app.incidents import models
from app.incidents import service as incidents
from app.incidents.models import Incident, IncidentKind, IncidentRead, IncidentStatus
from app.systems.dependencies import system_access
from app.systems.models import AISystem

router = APIRouter(prefix="/api/v1", tags=["incidents"])

SiteQuery = Annotated[str | None, Query(pattern=SITE_PATTERN)]
IncidentId = Annotated[str, Path(pattern=r"^INC-\d{6,}$", description="e.g. INC-000042")]


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
    data: models.IncidentCreate,
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
    return Page(
        items=[incidents.incident_read(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


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
    return Page(
        items=[incidents.incident_read(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/incidents/{incident_id}", response_model=IncidentRead)
def get_incident(incident: Annotated[Incident, Depends(incident_access("read"))]) -> IncidentRead:
    return incidents.incident_read(incident)


@router.post("/incidents/{incident_id}/close", response_model=IncidentRead)
def close_incident(
    data: models.IncidentClose,
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
    data: models.IncidentLift,
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
    data: models.IncidentReport,
    if_match: IfMatchDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    incident: Annotated[Incident, Depends(incident_access("report", for_update=True))],
) -> IncidentRead:
    """Record when the incident was reported to the market surveillance authority (Art. 73)."""
    incidents.record_report(session, incident, data, if_match=if_match, actor=principal.username)
    return incidents.incident_read(incident)
