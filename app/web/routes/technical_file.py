"""A system's technical file on a page: every Annex IV section with its text and linked evidence, and (for
those who may) a form per section to record it.

Every rule is the technical-file service's (``app.technical_file.service``): the page only shows its answers
and passes on what people post, with its refusals as sentences next to the form that was posted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app.db import SessionDep
from app.errors import AppError
from app.identity.dependencies import CurrentPrincipal, Principal
from app.systems.dependencies import system_access
from app.systems.models import AISystem
from app.technical_file import service
from app.technical_file.annex4 import get_annex4
from app.technical_file.models import MAX_TEXT, TechnicalFileUpdate
from app.web.forms import FormDep, field_errors, text, values
from app.web.nav import permits
from app.web.paths import path_for
from app.web.session import flash, require_csrf
from app.web.templating import render

router = APIRouter(dependencies=[Depends(require_csrf)], include_in_schema=False)

FileReader = Annotated[AISystem, Depends(system_access("technical_file", "read"))]
FileEditor = Annotated[AISystem, Depends(system_access("technical_file", "update", for_update=True))]


@dataclass
class Refusal:
    """What the service refused, shown next to the section's form with what was posted."""

    section: str
    errors: list[str]
    values: dict[str, Any] = field(default_factory=dict)


def anchor(section_id: str) -> str:
    """An HTML id for a section (``annex4.2.c`` -> ``sec-annex4-2-c``)."""
    return "sec-" + section_id.replace(".", "-")


def _context(
    session: Session, principal: Principal, system: AISystem, refusal: Refusal | None = None
) -> dict[str, Any]:
    annex4 = get_annex4()
    current = service.read_file(session, system)
    reads_evidence = permits(principal, system, "evidence", "read")
    evidence = service.system_evidence(session, system.id) if reads_evidence else []
    sections = []
    for read in current.sections:
        section = annex4.section_by_id[read.id]
        sections.append(
            {
                "read": read,
                "anchor": anchor(read.id),
                "cite": section.cite,
                "heading": annex4.point_title(section.point),
            }
        )
    return {
        "system": system,
        "file": current,
        "sections": sections,
        "evidence": evidence,
        "evidence_by_id": {e.id: e for e in evidence},
        "reads_evidence": reads_evidence,
        "can_update": permits(principal, system, "technical_file", "update"),
        "refusal": refusal,
        "max_text": MAX_TEXT,
    }


@router.get("/systems/{system_id}/technical-file", name="technical_file_page")
def technical_file_page(
    request: Request, session: SessionDep, principal: CurrentPrincipal, system: FileReader
) -> Response:
    """Every Annex IV section of the system: recorded text, evidence, and the forms to record them."""
    return render(request, "technical_file.html", _context(session, principal, system))


def _messages(exc: ValidationError | AppError, section_id: str) -> list[str]:
    """The refusal as sentences; a text over the limit is said in words, not as a schema location."""
    if isinstance(exc, ValidationError):
        fields = {str(p) for e in exc.errors(include_url=False) for p in e.get("loc", ())}
        if "text" in fields:
            return [f"The text of {section_id} may hold at most {MAX_TEXT:,} characters."]
    return list(field_errors(exc).values())


@router.post("/systems/{system_id}/technical-file", name="technical_file_update")
def technical_file_update(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    form: FormDep,
    system: FileEditor,
) -> Response:
    """Record one section's text and evidence, naming the file revision the form was read at."""
    section_id = text(form, "section", 40)
    revision = text(form, "revision")
    posted = {"text": text(form, "text", MAX_TEXT + 1, strip=False), "evidence": values(form, "evidence")}
    body = {
        "sections": [{"id": section_id, **posted}],
        "revision": int(revision) if revision.isdigit() else None,
    }
    try:
        data = TechnicalFileUpdate.model_validate(body)
        service.update_file(session, system, data, if_match=None, actor=principal.username)
    except (ValidationError, AppError) as exc:
        session.rollback()
        refusal = Refusal(section_id, _messages(exc, section_id), posted)
        status = exc.status if isinstance(exc, AppError) else 422
        return render(
            request, "technical_file.html", _context(session, principal, system, refusal), status=status
        )
    flash(request, f"Section {section_id} of the technical file is recorded.")
    url = path_for(request, "technical_file_page", system_id=system.id)
    return RedirectResponse(f"{url}#{anchor(section_id)}", status_code=303)
