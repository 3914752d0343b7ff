"""HTTP endpoint of governance: the governance pack (AI policy and RACI matrix), audited like a document."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.documents.models import MEDIA_TYPES
from app.governance import service
from app.governance.models import PackFormat
from app.identity.dependencies import CurrentPrincipal

router = APIRouter(prefix="/api/v1", tags=["governance"])

_HEADERS = {
    "Content-Disposition": {
        "description": "attachment; filename=governance-pack.<format>",
        "schema": {"type": "string"},
    },
    "ETag": {"description": "the SHA-256 of the body, quoted", "schema": {"type": "string"}},
}


@router.get(
    "/governance/pack",
    response_class=Response,
    responses={
        200: {
            "description": "The governance pack, as an attachment",
            "content": {MEDIA_TYPES[f.value]: {} for f in PackFormat},
            "headers": _HEADERS,
        }
    },
)
def governance_pack(
    principal: CurrentPrincipal,
    fmt: Annotated[PackFormat, Query(alias="format", description="md, docx or pdf")] = PackFormat.md,
) -> Response:
    """The organisation's AI policy, roles, decision rights and a RACI matrix (every role of policy.csv
    against every decision of the sign-off rules and raci.yaml), generated from ``policies/``.

    Each download is recorded in the audit trail with the SHA-256 of the pack and of each source file.
    """
    principal.require_anywhere("governance", "read")
    document = service.download_pack(fmt, actor=principal.username)
    return Response(
        content=document.content,
        media_type=document.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{document.filename}"',
            "ETag": f'"{document.sha256}"',
        },
    )
