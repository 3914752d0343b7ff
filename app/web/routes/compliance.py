"""Compliance work on the pages: a system's requirements tab with its evidence, the portfolio's compliance by
framework and site, and the organisation-wide requirements; what is still open on approvals and the inbox.

Every rule is the compliance service's (``app.compliance.service``, ``app.compliance.evidence``): the pages
only show its answers and pass on what people post, with its refusals as sentences next to the form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData, UploadFile

from app.approvals.models import ApprovalRead
from app.compliance import evidence as evidence_service
from app.compliance import service
from app.compliance.evidence import PayloadTooLarge, UnsupportedMediaType
from app.compliance.frameworks import get_frameworks
from app.compliance.models import (
    ORGANISATION_SCOPE,
    EvidenceRead,
    OrganisationRequirement,
    Requirement,
    RequirementRead,
    RequirementStatus,
    RequirementUpdate,
)
from app.db import SessionDep, utcnow
from app.errors import AppError, field_error
from app.identity.dependencies import CurrentPrincipal, Principal
from app.systems.dependencies import system_access
from app.systems.models import AISystem
from app.web.forms import FormDep, field_errors, optional, text, validation_message, values
from app.web.nav import anywhere, permits
from app.web.paths import path_for
from app.web.session import flash, require_csrf
from app.web.templating import render

router = APIRouter(dependencies=[Depends(require_csrf)], include_in_schema=False)

STATUS_LABELS = {
    RequirementStatus.open.value: "Open",
    RequirementStatus.in_progress.value: "In progress",
    RequirementStatus.met.value: "Met",
    RequirementStatus.not_applicable.value: "Not applicable",
}
# "a PDF document" -> "PDF document": the evidence list's Type column
TYPE_LABELS = {k.media_type: k.label.split(" ", 1)[1] for k in evidence_service.FILE_KINDS}


# --- what the pages show -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One requirement as a table row: the API's view of it, an anchor, and whether it is overdue."""

    read: RequirementRead
    anchor: str

    @property
    def overdue(self) -> bool:
        """Binds today and is not done (the release gate's blocking case)."""
        return service.is_overdue(self.read.status, self.read.evidence_current, self.read.binding)


@dataclass
class Group:
    framework: str
    title: str
    rows: list[Row] = field(default_factory=list)


def anchor(ref: str) -> str:
    """An HTML id for ``framework:control`` (letters, digits, hyphens)."""
    return "req-" + re.sub(r"[^A-Za-z0-9]+", "-", ref).strip("-")


def _groups(
    session: Session, scope: str, rows: list[Requirement] | list[OrganisationRequirement]
) -> list[Group]:
    """Rows in the service's order, grouped by framework, each as of today."""
    today = utcnow().date()
    links = service.evidence_links(session, scope, today)
    titles = {f.id: f.title for f in get_frameworks().frameworks}
    groups: dict[str, Group] = {}
    for row in rows:
        read = service.requirement_read(row, links, today)
        group = groups.setdefault(
            read.framework, Group(read.framework, titles.get(read.framework, read.framework))
        )
        group.rows.append(Row(read, anchor(read.id)))
    return list(groups.values())


def _evidence(session: Session, system_id: str | None) -> list[EvidenceRead]:
    today = utcnow().date()
    return [
        evidence_service.evidence_read(session, e, today)
        for e in evidence_service.list_evidence(session, system_id)
    ]


@dataclass
class Refusal:
    """What the service refused, shown next to the form that was posted (``target``: a row id or upload)."""

    target: str
    errors: dict[str, str]
    values: dict[str, Any] = field(default_factory=dict)


def _common(refusal: Refusal | None) -> dict[str, Any]:
    return {
        "status_labels": STATUS_LABELS,
        "statuses": list(STATUS_LABELS),
        "refusal": refusal,
        "accepted": ", ".join(ext for k in evidence_service.FILE_KINDS for ext in k.extensions),
        "today": utcnow().date(),
        "type_labels": TYPE_LABELS,
    }


# --- a system's requirements tab -----------------------------------------------------------------------

SystemRequirements = Annotated[AISystem, Depends(system_access("requirement", "read"))]


def _system_context(
    session: Session, principal: Principal, system: AISystem, refusal: Refusal | None = None
) -> dict[str, Any]:
    rows = service.read_system_requirements(session, system)
    reads_evidence = permits(principal, system, "evidence", "read")
    groups = _groups(session, system.id, rows)
    return {
        "system": system,
        "groups": groups,
        "overdue": sum(r.overdue for g in groups for r in g.rows),
        "evidence": _evidence(session, system.id) if reads_evidence else [],
        "reads_evidence": reads_evidence,
        "can_update": permits(principal, system, "requirement", "update"),
        "can_upload": permits(principal, system, "evidence", "create"),
        "classified": system.ai_act_class is not None,
        **_common(refusal),
    }


@router.get("/systems/{system_id}/requirements", name="system_requirements_page")
def system_requirements_page(
    request: Request, session: SessionDep, principal: CurrentPrincipal, system: SystemRequirements
) -> Response:
    """The system's requirements by framework, their evidence, and (for those who may) the forms to record
    progress and upload evidence."""
    return render(request, "system_requirements.html", _system_context(session, principal, system))


def _update(form: FormData) -> tuple[str, dict[str, Any]]:
    """The posted requirement form: its ``framework:control`` and a ``RequirementUpdate`` body."""
    body: dict[str, Any] = {
        "status": text(form, "status"),
        "note": text(form, "note", 2001),
        "evidence": values(form, "evidence"),
    }
    revision = text(form, "revision")
    body["revision"] = int(revision) if revision.isdigit() else None
    return text(form, "requirement", 200), body


_Requirement = TypeVar("_Requirement", Requirement, OrganisationRequirement)


def _record(
    session: Session,
    principal: Principal,
    rows: list[_Requirement],
    ref: str,
    body: dict[str, Any],
    where: str,
    entity: tuple[str, str, str | None],
) -> _Requirement:
    """Find the posted requirement and record the change through the service (its rules, its audit)."""
    row = service.find_requirement(rows, ref, where)
    return service.update_requirement(
        session,
        row,
        RequirementUpdate.model_validate(body),
        if_match=None,
        actor=principal.username,
        entity=entity,
    )


def _refusal(exc: ValidationError | AppError, ref: str, body: dict[str, Any]) -> Refusal:
    """The service's refusal as sentences; one that starts with the requirement's id names it as such (the
    sentence form would capitalise the id: ``Ai_act:art9 ...``)."""
    shown = ref[:1].upper() + ref[1:]
    errors = {
        key: f"Requirement {ref}{msg[len(shown) :]}" if ref and msg.startswith(shown) else msg
        for key, msg in field_errors(exc).items()
    }
    return Refusal(ref, errors, body)


def _recorded_message(row: Requirement | OrganisationRequirement) -> str:
    return f"{row.framework}:{row.control} is now recorded as {STATUS_LABELS[str(row.status)].lower()}."


@router.post("/systems/{system_id}/requirements", name="system_requirement_update")
def system_requirement_update(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    form: FormDep,
    system: Annotated[AISystem, Depends(system_access("requirement", "update"))],
) -> Response:
    """Record a requirement's status, note and linked evidence (``met`` without evidence is refused)."""
    ref, body = _update(form)
    try:
        row = _record(
            session,
            principal,
            service.system_requirements(session, system),
            ref,
            body,
            f"system {system.id}",
            ("system", system.id, system.site),
        )
    except (ValidationError, AppError) as exc:
        refusal = _refusal(exc, ref, body)
        session.rollback()
        context = _system_context(session, principal, system, refusal)
        return render(request, "system_requirements.html", context, status=_status(exc))
    flash(request, _recorded_message(row))
    url = path_for(request, "system_requirements_page", system_id=system.id)
    return RedirectResponse(f"{url}#{anchor(ref)}", status_code=303)


def _status(exc: ValidationError | AppError) -> int:
    return exc.status if isinstance(exc, AppError) else 422


def _store(session: Session, principal: Principal, form: FormData, system: AISystem | None) -> Any:
    """Store the posted file as evidence of ``system`` (None: the organisation) through the service."""
    upload = form.get("file")
    title = text(form, "title", 201)
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise field_error(["body", "file"], "choose a file to upload")
    if not title:
        raise field_error(["body", "title"], validation_message("title", "missing"))
    if len(title) > 200:
        raise field_error(
            ["body", "title"], validation_message("title", "string_too_long", {"max_length": 200})
        )
    until: date | None = None
    if raw := optional(form, "valid_until"):
        try:
            until = date.fromisoformat(raw)
        except ValueError:
            raise field_error(
                ["body", "valid_until"], validation_message("valid_until", "date_parsing")
            ) from None
    try:
        return evidence_service.store_evidence(
            session,
            system_id=system.id if system else None,
            site=system.site if system else None,
            title=title,
            filename=upload.filename,
            declared_type=upload.content_type,
            stream=upload.file,
            valid_until=until,
            actor=principal.username,
        )
    except (UnsupportedMediaType, PayloadTooLarge) as exc:  # the file itself: said next to the file field
        raise field_error(["body", "file"], exc.detail.removeprefix("file: ")) from exc


def _upload_values(form: FormData) -> dict[str, Any]:
    return {"title": text(form, "title", 200), "valid_until": text(form, "valid_until", 20)}


@router.post("/systems/{system_id}/evidence", name="system_evidence_upload")
def system_evidence_upload(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    form: FormDep,
    system: Annotated[AISystem, Depends(system_access("evidence", "create"))],
) -> Response:
    """Upload an evidence file of the system (checked and stored by the evidence service)."""
    try:
        item = _store(session, principal, form, system)
    except AppError as exc:
        errors = field_errors(exc)
        session.rollback()
        context = _system_context(session, principal, system, Refusal("upload", errors, _upload_values(form)))
        return render(request, "system_requirements.html", context, status=exc.status)
    flash(request, f"Evidence {item.id} “{item.title}” is uploaded. Link it to the requirements it supports.")
    url = path_for(request, "system_requirements_page", system_id=system.id)
    return RedirectResponse(f"{url}#evidence", status_code=303)


# --- the portfolio and the organisation --------------------------------------------------------------------


@dataclass
class FrameworkCounts:
    """One framework's counts per site, and their sum."""

    id: str
    title: str
    binding: bool
    sites: list[service.PortfolioCounts]
    total: service.PortfolioCounts


def portfolio(session: Session, sites: set[str] | None) -> list[FrameworkCounts]:
    """``service.portfolio_counts`` per adopted framework (every adopted one, even with nothing counted)."""
    counts = service.portfolio_counts(session, sites)
    frameworks = get_frameworks()
    out = []
    for fid in frameworks.adopted:
        framework = frameworks.by_id.get(fid)
        if framework is None:
            continue
        mine = [c for c in counts if c.framework == fid]
        total = service.PortfolioCounts("all", fid)
        for c in mine:
            total.met += c.met
            total.open += c.open
            total.overdue += c.overdue
            total.not_applicable += c.not_applicable
        out.append(FrameworkCounts(fid, framework.title, framework.binding, mine, total))
    return out


def _portfolio_context(
    session: Session, principal: Principal, sites: set[str] | None, refusal: Refusal | None = None
) -> dict[str, Any]:
    rows = service.read_organisation_requirements(session)
    return {
        "frameworks": portfolio(session, sites),
        "scope": "all sites" if sites is None else ", ".join(sorted(sites)),
        "groups": _groups(session, ORGANISATION_SCOPE, rows),
        "evidence": _evidence(session, None),
        "reads_evidence": True,
        "can_update": anywhere(principal, "requirement", "update"),
        "can_upload": anywhere(principal, "requirement", "update"),
        **_common(refusal),
    }


@router.get("/compliance", name="compliance")
def compliance(request: Request, session: SessionDep, principal: CurrentPrincipal) -> Response:
    """Per adopted framework: met, open, overdue and not applicable by site, over the systems the user may
    read; then the organisation-wide requirements and their evidence."""
    sites = principal.require_anywhere("requirement", "read")
    return render(request, "compliance.html", _portfolio_context(session, principal, sites))


def _organisation_work(principal: Principal) -> set[str] | None:
    """The sites whose portfolio the user sees, if the user may record organisation-wide work (as the API)."""
    sites = principal.require_anywhere("requirement", "read")
    principal.require_anywhere("requirement", "update")
    return sites


@router.post("/compliance/organisation/requirements", name="organisation_requirement_update")
def organisation_requirement_update(
    request: Request, session: SessionDep, principal: CurrentPrincipal, form: FormDep
) -> Response:
    """Record an organisation-wide requirement's status, note and evidence (as the API allows)."""
    sites = _organisation_work(principal)
    ref, body = _update(form)
    try:
        row = _record(
            session,
            principal,
            service.organisation_requirements(session),
            ref,
            body,
            "the organisation",
            (service.ORGANISATION, service.ORGANISATION, None),
        )
    except (ValidationError, AppError) as exc:
        refusal = _refusal(exc, ref, body)
        session.rollback()
        context = _portfolio_context(session, principal, sites, refusal)
        return render(request, "compliance.html", context, status=_status(exc))
    flash(request, _recorded_message(row))
    return RedirectResponse(f"{path_for(request, 'compliance')}#{anchor(ref)}", status_code=303)


@router.post("/compliance/organisation/evidence", name="organisation_evidence_upload")
def organisation_evidence_upload(
    request: Request, session: SessionDep, principal: CurrentPrincipal, form: FormDep
) -> Response:
    """Upload an evidence file of the organisation (AI literacy records, policies)."""
    sites = _organisation_work(principal)
    try:
        item = _store(session, principal, form, None)
    except AppError as exc:
        errors = field_errors(exc)
        session.rollback()
        context = _portfolio_context(
            session, principal, sites, Refusal("upload", errors, _upload_values(form))
        )
        return render(request, "compliance.html", context, status=exc.status)
    flash(request, f"Evidence {item.id} “{item.title}” is uploaded. Link it to the requirements it supports.")
    return RedirectResponse(f"{path_for(request, 'compliance')}#evidence", status_code=303)


# --- what is still open, on approvals and in the inbox ------------------------------------------------------


@dataclass(frozen=True)
class OpenRequirements:
    """A system's requirements not done: the binding ones hold a production release, the rest do not yet."""

    system_id: str
    binding: list[service.Outstanding]
    later: list[service.Outstanding]

    @property
    def total(self) -> int:
        return len(self.binding) + len(self.later)


def open_requirements(
    session: Session, principal: Principal, approval: ApprovalRead
) -> OpenRequirements | None:
    """What is still open for the approval's system (None when the user may not read its requirements)."""
    if not principal.can("requirement", "read", approval.site):
        return None
    pending = service.system_outstanding(session, approval.system_id)
    return OpenRequirements(
        approval.system_id, [o for o in pending if o.binding], [o for o in pending if not o.binding]
    )
