"""Schemas of generated documents: formats, rendered files and the audit-pack manifest (no tables)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

DOWNLOAD_ACTION = "document.download"
PACK_FORMAT = "aireg-audit-pack/1"


class ModelCardFormat(StrEnum):
    md = "md"
    html = "html"
    docx = "docx"
    pdf = "pdf"


class TechDocFormat(StrEnum):
    docx = "docx"
    md = "md"
    pdf = "pdf"


class DocumentKind(StrEnum):
    model_card = "model-card"
    technical_documentation = "technical-documentation"
    art6_4_assessment = "art6-4-assessment"
    audit_pack = "audit-pack"
    declaration_of_conformity = "declaration-of-conformity"
    eu_database_registration = "eu-database-registration"


MEDIA_TYPES: dict[str, str] = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "json": "application/json",
}


@dataclass(frozen=True)
class Coverage:
    """The point of the audit trail a document describes: its latest covered event (downloads excluded)."""

    seq: int
    at: datetime | None
    head_hash: str


@dataclass
class RenderedDocument:
    """One generated file, with what the download event records about it."""

    kind: DocumentKind
    extension: str
    content: bytes
    system_id: str
    version: str | None
    coverage: Coverage
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.content).hexdigest()

    @property
    def media_type(self) -> str:
        """The Content-Type of the file."""
        return MEDIA_TYPES[self.extension]

    @property
    def filename(self) -> str:
        """``AIS-000123-model-card-1.2.0.md``."""
        suffix = f"-{self.version}" if self.version else ""
        return f"{self.system_id}-{self.kind.value}{suffix}.{self.extension}"


class ManifestFile(BaseModel):
    path: str
    sha256: str
    bytes: int
    description: str


class ChainCheck(BaseModel):
    """The hash chain verified from the genesis event up to the covered event."""

    valid: bool
    events: int
    head: str
    first_bad_seq: int | None
    reason: str | None = None


class PackManifest(BaseModel):
    """``manifest.json`` of an audit pack: every other file with its SHA-256, and what the pack covers."""

    format: str = PACK_FORMAT
    system_id: str
    system_name: str
    site: str
    model_version: str | None
    covered_until: datetime | None
    covered_seq: int
    audit_head_hash: str
    audit_chain: ChainCheck
    catalog_version: str
    legal_basis: str
    technical_documentation: str
    files: list[ManifestFile]
