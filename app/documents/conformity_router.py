"""Downloads of the EU declaration of conformity (AI Act Annex V) and the EU database registration data
(Annex VIII); each download is audited like every other document."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.documents import conformity, service
from app.documents.models import MEDIA_TYPES, RenderedDocument
from app.identity.dependencies import CurrentPrincipal
from app.systems.dependencies import system_access
from app.systems.models import VERSION_PATTERN, AISystem

router = APIRouter(prefix="/api/v1", tags=["documents"])

DocumentReader = Annotated[AISystem, Depends(system_access("document", "read"))]


class DeclarationFormat(StrEnum):
    docx = "docx"
    pdf = "pdf"


def _response(document: RenderedDocument, *, attachment: bool = True) -> Response:
    headers = {
        "ETag": f'"{document.sha256}"',
        "X-Aireg-Covered-Seq": str(document.coverage.seq),
    }
    if attachment:
        headers["Content-Disposition"] = f'attachment; filename="{document.filename}"'
    return Response(content=document.content, media_type=document.media_type, headers=headers)


@router.get(
    "/systems/{system_id}/documents/declaration-of-conformity",
    response_class=Response,
    responses={
        200: {
            "description": "The declaration, as an attachment",
            "content": {MEDIA_TYPES["docx"]: {}, MEDIA_TYPES["pdf"]: {}},
        },
        409: {"description": "Not a high-risk system whose effective AI Act role is provider (Art. 47)"},
    },
)
def declaration_of_conformity(
    system: DocumentReader,
    principal: CurrentPrincipal,
    fmt: Annotated[
        DeclarationFormat, Query(alias="format", description="docx or pdf")
    ] = DeclarationFormat.docx,
    version: Annotated[
        str | None,
        Query(pattern=VERSION_PATTERN, description="model version to declare (default: the newest)"),
    ] = None,
) -> Response:
    """The EU declaration of conformity of a high-risk system whose effective role is provider (AI Act
    Art. 47, Annex V): every Annex V item with the registry's value, or a placeholder naming the item and what
    to supply. Any other system is answered 409 with the reason."""
    document = service.produce(
        system.id,
        lambda session, s: conformity.declaration_of_conformity(session, s, fmt=fmt.value, version=version),
        actor=principal.username,
        fmt=fmt.value,
    )
    return _response(document)


@router.get(
    "/systems/{system_id}/documents/eu-database-registration",
    response_class=Response,
    responses={
        200: {
            "description": "The Annex VIII section of the system's route; every field filled or null",
            "content": {MEDIA_TYPES["json"]: {}},
        },
        409: {"description": "The system's classification carries no registration duty (Art. 49)"},
    },
)
def eu_database_registration(system: DocumentReader, principal: CurrentPrincipal) -> Response:
    """The AI Act Annex VIII registration data of a system, ready to paste: Section A for a provider of a
    high-risk Annex III system (Art. 49(1); point 2 registered nationally, Art. 49(5)), Section B for a
    provider relying on Art. 6(3) (Art. 49(2)), Section C for a deployer (Art. 49(3)), with ``required``
    null where the duty depends on whether the deployer is a public authority, a fact the registry does not
    hold. ``fields`` maps each Annex VIII field id to its value or null; ``field_titles`` names them."""
    document = service.produce(
        system.id,
        conformity.registration_document,
        actor=principal.username,
        fmt="json",
    )
    return _response(document, attachment=False)
