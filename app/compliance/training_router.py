"""HTTP endpoints of the AI literacy training register (AI Act Art. 4), kept once for the organisation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from app.compliance import training
from app.compliance.models import TrainingCreate, TrainingRead, TrainingSummary, TrainingWithdraw
from app.db import SessionDep
from app.http import Page, PageDep, page_of
from app.identity.dependencies import CurrentPrincipal

router = APIRouter(prefix="/api/v1/organisation/training", tags=["compliance"])

TrainingId = Annotated[str, Path(max_length=16, description="e.g. TRN-000001", examples=["TRN-000001"])]
_CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"description": "completed_on in the future, valid_until before completed_on, unknown user or site"},
}


@router.get("", response_model=Page[TrainingRead])
def training_index(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    current: Annotated[
        bool | None, Query(description="true: current records only; false: expired (or withdrawn) only")
    ] = None,
    site: Annotated[str | None, Query(max_length=16, description="records of this site code")] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="text in person, username or course")
    ] = None,
    include_withdrawn: Annotated[bool, Query(description="list withdrawn records too")] = False,
) -> Page[TrainingRead]:
    """The organisation's AI literacy training records, newest completion first."""
    principal.require_anywhere("training", "read")
    filters = training.TrainingFilters(current=current, site=site, q=q, include_withdrawn=include_withdrawn)
    items, total = training.list_training(session, filters, page=page)
    return page_of(items, total, page)


@router.get("/summary", response_model=TrainingSummary)
def training_summary(session: SessionDep, principal: CurrentPrincipal) -> TrainingSummary:
    """How many people are trained now, records current, expired and expiring within 30 days, per site."""
    principal.require_anywhere("training", "read")
    return training.training_summary(session)


@router.post("", response_model=TrainingRead, status_code=201, responses=_CREATE_RESPONSES)
def create_training(data: TrainingCreate, session: SessionDep, principal: CurrentPrincipal) -> TrainingRead:
    """Record a completed AI literacy training (a compliance officer of any site may)."""
    principal.require_anywhere("training", "create")
    return training.training_read(training.create_training(session, data, actor=principal.username))


@router.get("/{training_id}", response_model=TrainingRead)
def training_detail(
    training_id: TrainingId, session: SessionDep, principal: CurrentPrincipal
) -> TrainingRead:
    """One training record, withdrawn or not; 404 if unknown."""
    principal.require_anywhere("training", "read")
    return training.training_read(training.get_training(session, training_id))


@router.post(
    "/{training_id}/withdraw",
    response_model=TrainingRead,
    responses={409: {"description": "already withdrawn (`code: ALREADY_WITHDRAWN`)"}},
)
def withdraw_training(
    training_id: TrainingId, data: TrainingWithdraw, session: SessionDep, principal: CurrentPrincipal
) -> TrainingRead:
    """Withdraw a record with a reason: it is kept and audited, and no longer counts."""
    principal.require_anywhere("training", "update")
    record = training.get_training(session, training_id, for_update=True)
    return training.training_read(
        training.withdraw_training(session, record, data.reason, actor=principal.username)
    )
