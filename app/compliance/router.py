"""HTTP endpoints of compliance work: the frameworks and their crosswalk, requirements of systems and of
the organisation."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile
from fastapi.responses import StreamingResponse

from app.compliance import evidence as evidence_service
from app.compliance import service
from app.compliance.models import (
    ORGANISATION_SCOPE,
    Evidence,
    EvidenceRead,
    FrameworkRead,
    FrameworkSummary,
    RequirementRead,
    RequirementUpdate,
)
from app.compliance.service import R
from app.db import SessionDep, utcnow
from app.http import IfMatchDep, Page, PageDep, PageParams, content_disposition, page_from_list, page_of
from app.identity.dependencies import CurrentPrincipal
from app.systems.dependencies import system_access
from app.systems.models import AISystem

router = APIRouter(prefix="/api/v1", tags=["compliance"])

FrameworkId = Annotated[str, Path(max_length=64, description="e.g. iso42001", examples=["iso42001"])]


@router.get("/frameworks", response_model=list[FrameworkSummary])
def frameworks_index(principal: CurrentPrincipal) -> list[FrameworkSummary]:
    """The compliance frameworks loaded from the catalogue, with their number of controls."""
    principal.require_anywhere("framework", "read")
    return service.list_frameworks()


@router.get("/frameworks/{framework_id}", response_model=FrameworkRead)
def framework_detail(framework_id: FrameworkId, principal: CurrentPrincipal) -> FrameworkRead:
    """One framework, every control with the controls of other frameworks it maps to; 404 if unknown."""
    principal.require_anywhere("framework", "read")
    return service.framework_read(service.require_framework(framework_id))


# --- requirements --------------------------------------------------------------------------------------

RequirementId = Annotated[
    str, Path(max_length=100, description="framework:control", examples=["ai_act:art9", "iso42001:A.6.2.4"])
]
# the system of the path, for a caller who may do this with its requirements or evidence (404 otherwise)
RequirementReader = Annotated[AISystem, Depends(system_access("requirement", "read"))]
RequirementUpdater = Annotated[AISystem, Depends(system_access("requirement", "update"))]
EvidenceCreator = Annotated[AISystem, Depends(system_access("evidence", "create"))]
EvidenceReader = Annotated[AISystem, Depends(system_access("evidence", "read"))]
_PATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "stale revision, or `met` without current evidence (`code: EVIDENCE_REQUIRED`)"},
    422: {"description": "`not_applicable` without a note, or no revision"},
}


@router.get("/systems/{system_id}/requirements", response_model=Page[RequirementRead])
def system_requirements(
    session: SessionDep, page: PageDep, system: RequirementReader
) -> Page[RequirementRead]:
    """The system's requirements from its current classification and the adopted frameworks."""
    today = utcnow().date()
    rows = service.read_system_requirements(session, system)
    links = service.evidence_links(session, system.id, today)
    return page_from_list([service.requirement_read(r, links, today) for r in rows], page)


@router.patch(
    "/systems/{system_id}/requirements/{requirement_id}",
    response_model=RequirementRead,
    responses=_PATCH_RESPONSES,
)
def update_system_requirement(
    requirement_id: RequirementId,
    data: RequirementUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatchDep,
    system: RequirementUpdater,
) -> RequirementRead:
    """Record progress on one requirement of the system (status, note, owner role)."""
    rows = service.system_requirements(session, system)
    where = (f"system {system.id}", system.id, ("system", system.id, system.site))
    return _record_progress(session, rows, requirement_id, where, data, if_match, principal.username)


@router.get("/organisation/requirements", response_model=Page[RequirementRead])
def organisation_requirements(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep
) -> Page[RequirementRead]:
    """Requirements tracked once for the organisation (AI literacy, management-system clauses)."""
    principal.require_anywhere("requirement", "read")
    today = utcnow().date()
    rows = service.read_organisation_requirements(session)
    links = service.evidence_links(session, ORGANISATION_SCOPE, today)
    return page_from_list([service.requirement_read(r, links, today) for r in rows], page)


@router.patch(
    "/organisation/requirements/{requirement_id}", response_model=RequirementRead, responses=_PATCH_RESPONSES
)
def update_organisation_requirement(
    requirement_id: RequirementId,
    data: RequirementUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatchDep,
) -> RequirementRead:
    """Record progress on an organisation-wide requirement (a compliance officer of any site may)."""
    principal.require_anywhere("requirement", "update")
    rows = service.organisation_requirements(session)
    where = ("the organisation", ORGANISATION_SCOPE, (service.ORGANISATION, service.ORGANISATION, None))
    return _record_progress(session, rows, requirement_id, where, data, if_match, principal.username)


def _record_progress(
    session: SessionDep,
    rows: list[R],
    requirement_id: str,
    where: tuple[str, str, tuple[str, str, str | None]],
    data: RequirementUpdate,
    if_match: int | None,
    actor: str,
) -> RequirementRead:
    """Find ``requirement_id`` among ``rows`` and record the change. ``where``: how the scope is named in
    a 404, the evidence scope, and the audit event's entity."""
    named, scope, entity = where
    row = service.find_requirement(rows, requirement_id, named)
    row = service.update_requirement(session, row, data, if_match=if_match, actor=actor, entity=entity)
    return service.requirement_read(row, service.evidence_links(session, scope, utcnow().date()))


# --- evidence ------------------------------------------------------------------------------------------

_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "the file is larger than AIREG_MAX_UPLOAD_BYTES"},
    415: {
        "description": f"not an accepted kind of file ({evidence_service.accepted_types()}), or its "
        "content is not what its type says"
    },
    422: {"description": "empty file, missing title, valid_until in the past"},
}
Title = Annotated[str, Form(min_length=1, max_length=200, description="what the file shows")]
ValidUntil = Annotated[
    date | None, Form(description="the last day the evidence counts (e.g. a certificate's expiry)")
]
EvidenceFile = Annotated[
    UploadFile, File(description="the evidence file; streamed, never held whole in memory")
]


@router.post(
    "/systems/{system_id}/evidence", response_model=EvidenceRead, status_code=201, responses=_UPLOAD_RESPONSES
)
def upload_system_evidence(
    file: EvidenceFile,
    title: Title,
    session: SessionDep,
    principal: CurrentPrincipal,
    system: EvidenceCreator,
    valid_until: ValidUntil = None,
) -> EvidenceRead:
    """Upload an evidence file of the system (multipart: ``file``, ``title``, optional ``valid_until``)."""
    return _store_upload(session, file, title, valid_until, principal.username, system)


@router.post(
    "/organisation/evidence", response_model=EvidenceRead, status_code=201, responses=_UPLOAD_RESPONSES
)
def upload_organisation_evidence(
    file: EvidenceFile,
    title: Title,
    session: SessionDep,
    principal: CurrentPrincipal,
    valid_until: ValidUntil = None,
) -> EvidenceRead:
    """Upload an evidence file of the organisation (for organisation-wide duties such as AI literacy)."""
    principal.require_anywhere("requirement", "update")
    return _store_upload(session, file, title, valid_until, principal.username, None)


def _store_upload(
    session: SessionDep,
    file: UploadFile,
    title: str,
    valid_until: date | None,
    actor: str,
    system: AISystem | None,
) -> EvidenceRead:
    """Store an uploaded evidence file of ``system`` (None: of the organisation); its API view."""
    evidence = evidence_service.store_evidence(
        session,
        system_id=system.id if system is not None else None,
        site=system.site if system is not None else None,
        title=title,
        filename=file.filename,
        declared_type=file.content_type,
        stream=file.file,
        valid_until=valid_until,
        actor=actor,
    )
    return evidence_service.evidence_read(session, evidence)


@router.get("/systems/{system_id}/evidence", response_model=Page[EvidenceRead])
def system_evidence(session: SessionDep, page: PageDep, system: EvidenceReader) -> Page[EvidenceRead]:
    """The system's evidence, newest first."""
    return _evidence_page(session, system.id, page)


def _evidence_page(session: SessionDep, system_id: str | None, page: PageParams) -> Page[EvidenceRead]:
    """One page of the evidence of a system (None: of the organisation), newest first."""
    today = utcnow().date()
    rows, total = evidence_service.evidence_page(session, system_id, page)
    return page_of([evidence_service.evidence_read(session, e, today) for e in rows], total, page)


@router.get("/organisation/evidence", response_model=Page[EvidenceRead])
def organisation_evidence(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep
) -> Page[EvidenceRead]:
    """The organisation's evidence, newest first."""
    principal.require_anywhere("requirement", "read")
    return _evidence_page(session, None, page)


EvidenceIdPath = Annotated[str, Path(max_length=40, examples=["EVD-000001"])]


def _readable_evidence(
    session: SessionDep, evidence_id: EvidenceIdPath, principal: CurrentPrincipal
) -> Evidence:
    """The evidence in the path, if the caller may read evidence where it belongs (404 otherwise: no leak)."""
    evidence = evidence_service.get_evidence(session, evidence_id)
    if evidence.system_id is None:
        principal.require_anywhere("requirement", "read")
    else:
        system = session.get(AISystem, evidence.system_id)
        site = system.site if system is not None else None
        principal.require("evidence", "read", site, entity_id=evidence.id, entity_type="evidence")
    return evidence


@router.get("/evidence/{evidence_id}", response_model=EvidenceRead)
def evidence_detail(
    session: SessionDep, evidence: Annotated[Evidence, Depends(_readable_evidence)]
) -> EvidenceRead:
    """One evidence item and the requirements it is linked to."""
    return evidence_service.evidence_read(session, evidence)


@router.get(
    "/evidence/{evidence_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the stored bytes"}},
)
def evidence_content(
    session: SessionDep, evidence: Annotated[Evidence, Depends(_readable_evidence)]
) -> StreamingResponse:
    """The file's bytes, streamed (their SHA-256 is the evidence's ``sha256``, also sent as the ETag)."""
    return StreamingResponse(
        evidence_service.open_content(session, evidence.sha256, streamed=True),
        media_type=evidence.media_type,
        headers={
            "Content-Length": str(evidence.size),
            "ETag": f'"{evidence.sha256}"',
            "Content-Disposition": content_disposition(evidence.filename),
            "Cache-Control": "private, no-store",
        },
    )
