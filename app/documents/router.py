"""Document downloads: model cards, AI Act technical documentation and audit packs (each one audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse

from app.documents import pack, service
from app.documents.models import MEDIA_TYPES, ModelCardFormat, RenderedDocument, TechDocFormat
from app.identity.dependencies import CurrentPrincipal
from app.systems.dependencies import system_access
from app.systems.models import VERSION_PATTERN, AISystem

router = APIRouter(prefix="/api/v1", tags=["documents"])

DocumentReader = Annotated[AISystem, Depends(system_access("document", "read"))]
VersionQuery = Annotated[
    str | None,
    Query(pattern=VERSION_PATTERN, description="model version to document (default: the newest)"),
]

_HEADERS = {
    "Content-Disposition": {"description": "attachment; filename=...", "schema": {"type": "string"}},
    "ETag": {"description": "the SHA-256 of the body, quoted", "schema": {"type": "string"}},
    "X-Aireg-Covered-Seq": {
        "description": "sequence number of the latest audit event the document covers (downloads excluded)",
        "schema": {"type": "integer"},
    },
}
_FILE = {"description": "The document, as an attachment", "content": {}, "headers": _HEADERS}


def _headers(filename: str, sha256: str, covered_seq: int) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "ETag": f'"{sha256}"',
        "X-Aireg-Covered-Seq": str(covered_seq),
    }


def _response(document: RenderedDocument) -> Response:
    return Response(
        content=document.content,
        media_type=document.media_type,
        headers=_headers(document.filename, document.sha256, document.coverage.seq),
    )


@router.get(
    "/systems/{system_id}/documents/model-card",
    response_class=Response,
    responses={200: {**_FILE, "content": {MEDIA_TYPES[f]: {} for f in ("md", "html", "docx", "pdf")}}},
)
def model_card(
    system: DocumentReader,
    principal: CurrentPrincipal,
    fmt: Annotated[
        ModelCardFormat, Query(alias="format", description="md, html, docx or pdf")
    ] = ModelCardFormat.md,
    version: VersionQuery = None,
) -> Response:
    """The model card of a system and version, the same content in every format (the PDF is the HTML
    printed); Markdown opens with Hugging Face model-card metadata."""
    document = service.produce(
        system.id,
        lambda session, s: service.model_card(session, s, fmt, version=version),
        actor=principal.username,
        fmt=fmt.value,
    )
    return _response(document)


@router.get(
    "/systems/{system_id}/documents/technical-documentation",
    response_class=Response,
    responses={
        200: {
            **_FILE,
            "content": {MEDIA_TYPES["docx"]: {}, MEDIA_TYPES["md"]: {}, MEDIA_TYPES["pdf"]: {}},
            "headers": {
                **_HEADERS,
                "X-Aireg-Document": {
                    "description": "technical-documentation, or art6-4-assessment for a derogated system",
                    "schema": {"type": "string"},
                },
            },
        },
        409: {"description": "The system is not high-risk (nor a derogated Annex III system): no Annex IV"},
    },
)
def technical_documentation(
    system: DocumentReader,
    principal: CurrentPrincipal,
    fmt: Annotated[TechDocFormat, Query(alias="format", description="docx, md or pdf")] = TechDocFormat.docx,
    version: VersionQuery = None,
) -> Response:
    """AI Act Annex IV technical documentation of a high-risk system (Art. 11), Word, Markdown or PDF (the
    same content): every section's recorded text and evidence from the technical file, the registry's
    facts, and for an item not recorded a placeholder naming the section and what to supply.

    A derogated Annex III system (its classification carries the Art. 6(4) obligation) gets its Art. 6(3)
    assessment record instead (Word only); any other system is answered 409 with the reason.
    """
    document = service.produce(
        system.id,
        lambda session, s: service.technical_documentation(session, s, version=version, fmt=fmt.value),
        actor=principal.username,
        fmt=fmt.value,
    )
    response = _response(document)
    response.headers["X-Aireg-Document"] = document.kind.value
    return response


@router.get(
    "/systems/{system_id}/documents/audit-pack",
    response_class=StreamingResponse,
    responses={200: {**_FILE, "content": {MEDIA_TYPES["zip"]: {}}}},
)
def audit_pack(system: DocumentReader, principal: CurrentPrincipal) -> StreamingResponse:
    """A ZIP with model cards, technical documentation, classification history, risk assessment, approvals,
    the system's audit events with the chain verification, and ``manifest.json`` (SHA-256 of every file).

    Two downloads with no new event of the system in between are byte-identical; each download is recorded
    in the audit trail after the pack is built, with the pack's SHA-256.
    """
    built = pack.download_audit_pack(system.id, actor=principal.username)
    headers = _headers(built.filename, built.sha256, built.coverage.seq)
    headers["Content-Length"] = str(built.size)
    return StreamingResponse(built.chunks(), media_type=MEDIA_TYPES["zip"], headers=headers)
