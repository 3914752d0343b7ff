"""Reading and verifying the audit trail (no endpoint writes or deletes events)."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from sqlmodel import col, select

from app.audit import service
from app.audit.models import AuditEvent, AuditEventRead, ChainVerification
from app.db import SessionDep, paginate
from app.http import IsoDateTime, Page, PageDep
from app.identity.dependencies import CurrentPrincipal

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit-events", response_model=Page[AuditEventRead])
def list_events(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    entity_type: Annotated[str | None, Query(max_length=40)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    since: IsoDateTime | None = None,
) -> Page[AuditEventRead]:
    """Events in sequence order; a caller sees the events of the sites they may read the trail of."""
    sites = principal.require_anywhere("audit", "read")
    conditions: list[sa.ColumnElement[bool]] = []
    if sites is not None:
        conditions.append(col(AuditEvent.site).in_(sorted(sites)))
    for column, value in (
        (col(AuditEvent.entity_type), entity_type),
        (col(AuditEvent.entity_id), entity_id),
        (col(AuditEvent.actor), actor),
    ):
        if value is not None:
            conditions.append(column == value)
    if since is not None:
        conditions.append(col(AuditEvent.ts) >= since)
    rows, total = paginate(session, select(AuditEvent).where(*conditions), page, col(AuditEvent.seq))
    return Page(
        items=[AuditEventRead.model_validate(r.model_dump()) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/audit-events/verify", response_model=ChainVerification)
def verify(
    session: SessionDep,
    principal: CurrentPrincipal,
    full: Annotated[
        bool,
        Query(description="walk from the first event (default); false starts after the last verified one"),
    ] = True,
) -> ChainVerification:
    """Walk the chain, compare it with the checkpoints kept outside the database, name the first fault."""
    principal.require_anywhere("audit", "verify")
    return service.verify_chain(session, full=full)
