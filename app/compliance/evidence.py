"""Evidence files (no HTTP here): checked, stored content-addressed in chunks, read back in chunks, so a
file is never held whole in memory on the way in or out.

The bytes live where every worker and every backup sees them: ``evidence_blob`` (one row per SHA-256) and
the bytes in the database (``evidence_chunk`` rows of at most ``CHUNK_BYTES``) or in an S3-compatible store
(app/compliance/blob_store.py). The same bytes uploaded twice are stored once.
"""

from __future__ import annotations

import codecs
import hashlib
import mimetypes
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.compliance import blob_store
from app.compliance.models import (
    ORGANISATION_SCOPE,
    Evidence,
    EvidenceBlob,
    EvidenceRead,
    RequirementEvidence,
)
from app.db import PageWindow, paginate, utcnow
from app.errors import AppError, NotFound, field_error
from app.settings import get_settings
from app.systems.service import next_id

CHUNK_BYTES = blob_store.CHUNK_BYTES


class UnsupportedMediaType(AppError):
    status, title, type_slug = 415, "Unsupported media type", "unsupported-media-type"


class PayloadTooLarge(AppError):
    status, title, type_slug = 413, "Payload too large", "payload-too-large"


@dataclass(frozen=True)
class FileKind:
    """A kind of file accepted as evidence: its media type, file name endings and how its content starts
    (``magic``; None: UTF-8 text without NUL bytes)."""

    media_type: str
    extensions: tuple[str, ...]
    magic: bytes | None
    label: str


_ZIP = b"PK\x03\x04"
_OOXML = "application/vnd.openxmlformats-officedocument"
FILE_KINDS: tuple[FileKind, ...] = (
    FileKind("application/pdf", (".pdf",), b"%PDF-", "a PDF document"),
    FileKind(f"{_OOXML}.wordprocessingml.document", (".docx",), _ZIP, "a Word document"),
    FileKind(f"{_OOXML}.spreadsheetml.sheet", (".xlsx",), _ZIP, "an Excel workbook"),
    FileKind(f"{_OOXML}.presentationml.presentation", (".pptx",), _ZIP, "a PowerPoint presentation"),
    FileKind("application/zip", (".zip",), _ZIP, "a ZIP archive"),
    FileKind("image/png", (".png",), b"\x89PNG\r\n\x1a\n", "a PNG image"),
    FileKind("image/jpeg", (".jpg", ".jpeg"), b"\xff\xd8\xff", "a JPEG image"),
    FileKind("text/plain", (".txt", ".log"), None, "plain text"),
    FileKind("text/markdown", (".md",), None, "Markdown text"),
    FileKind("text/csv", (".csv",), None, "CSV text"),
    FileKind("application/json", (".json",), None, "JSON text"),
)
_BY_TYPE = {k.media_type: k for k in FILE_KINDS}
_BY_EXTENSION = {ext: k for k in FILE_KINDS for ext in k.extensions}
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}


def accepted_types() -> str:
    """The accepted media types, for messages and the API description."""
    return ", ".join(k.media_type for k in FILE_KINDS)


def file_kind(declared: str | None, filename: str) -> FileKind:
    """The kind a file is declared as: its part's Content-Type, or (sent as generic bytes) its name's ending.

    415 when neither names an accepted kind.
    """
    media_type = (declared or "").split(";")[0].strip().lower()
    if media_type in _BY_TYPE:
        return _BY_TYPE[media_type]
    if media_type in _GENERIC_TYPES or media_type == (mimetypes.guess_type(filename)[0] or ""):
        kind = _BY_EXTENSION.get(os.path.splitext(filename)[1].lower())
        if kind is not None:
            return kind
    shown = media_type or "no type"
    raise UnsupportedMediaType(
        f"file: {filename!r} sent as {shown} is not a kind of file accepted as evidence; accepted: "
        f"{accepted_types()}",
        accepted=[k.media_type for k in FILE_KINDS],
    )


def clean_filename(filename: str | None) -> str:
    """The last path component of a client's file name, without control characters, at most 255 long."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:255] or "evidence"


@dataclass(frozen=True)
class Scanned:
    sha256: str
    size: int
    chunks: int


def scan(stream: BinaryIO, kind: FileKind, limit: int) -> Scanned:
    """Read ``stream`` once, a chunk at a time: its SHA-256 and size, checked against ``kind`` and ``limit``.

    422 for an empty file, 413 past ``limit``, 415 when the content is not what the kind says.
    """
    digest = hashlib.sha256()
    size = chunks = 0
    text = codecs.getincrementaldecoder("utf-8")() if kind.magic is None else None
    head = b""
    while block := stream.read(CHUNK_BYTES):
        size += len(block)
        if size > limit:
            raise PayloadTooLarge(f"file: larger than the limit of {limit} bytes", max_bytes=limit)
        if len(head) < 16:
            head += block[: 16 - len(head)]
        if text is not None:
            try:
                text.decode(block)
            except UnicodeDecodeError:
                raise _not_kind(kind, "it is not UTF-8 text") from None
            if b"\x00" in block:
                raise _not_kind(kind, "it holds NUL bytes")
        digest.update(block)
        chunks += 1
    if size == 0:
        raise field_error(["body", "file"], "the file is empty")
    if text is not None:
        try:
            text.decode(b"", final=True)
        except UnicodeDecodeError:
            raise _not_kind(kind, "it ends inside a UTF-8 character") from None
    elif kind.magic is not None and not head.startswith(kind.magic):
        raise _not_kind(kind, f"it does not start as {kind.label} does")
    return Scanned(digest.hexdigest(), size, chunks)


def _not_kind(kind: FileKind, why: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(f"file: the content is not {kind.label} ({kind.media_type}): {why}")


def store_evidence(
    session: Session,
    *,
    system_id: str | None,
    site: str | None,
    title: str,
    filename: str | None,
    declared_type: str | None,
    stream: BinaryIO,
    valid_until: date | None,
    actor: str,
) -> Evidence:
    """Check and store an uploaded file as evidence of a system (``system_id``) or of the organisation (None).

    ``stream`` is read twice (hash and check, then store), a chunk at a time, so it must be seekable (a
    spooled upload file is). Bytes already stored under the same SHA-256 are not stored again. Audited.
    """
    title = title.strip()
    if not title:
        raise field_error(["body", "title"], "the title is empty: say what the file shows")
    name = clean_filename(filename)
    kind = file_kind(declared_type, name)
    scanned = scan(stream, kind, get_settings().max_upload_bytes)
    if valid_until is not None and valid_until < utcnow().date():
        raise field_error(
            ["body", "valid_until"], f"{valid_until} is in the past: the evidence would not count"
        )
    _store_blob(session, stream, scanned)
    now = utcnow()
    evidence = Evidence(
        id=next_id(session, "evidence", "EVD"),
        system_id=system_id,
        title=title,
        filename=name,
        sha256=scanned.sha256,
        size=scanned.size,
        media_type=kind.media_type,
        valid_until=valid_until,
        created_by=actor,
        created_at=now,
    )
    session.add(evidence)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="evidence.upload",
        entity_type="system" if system_id else ORGANISATION_SCOPE,
        entity_id=system_id or ORGANISATION_SCOPE,
        site=site,
        after=_audit_view(evidence),
    )
    return evidence


def _store_blob(session: Session, stream: BinaryIO, scanned: Scanned) -> None:
    """Store the bytes under their SHA-256 unless they are stored already: their ``evidence_blob`` row, then
    the bytes in the store new files go to (``AIREG_EVIDENCE_STORE``, app/compliance/blob_store.py), durable
    before the request's transaction commits the row."""
    if session.get(EvidenceBlob, scanned.sha256) is not None:
        return
    store = blob_store.for_new_files(session)
    stream.seek(0)
    try:
        with session.begin_nested():  # another upload of the same bytes may store them at the same moment
            session.execute(
                sa.insert(EvidenceBlob).values(
                    sha256=scanned.sha256,
                    size=scanned.size,
                    chunks=store.chunk_rows(scanned.size),
                    created_at=utcnow(),
                )
            )
            store.put(scanned.sha256, stream, scanned.size)
    except IntegrityError:
        if session.get(EvidenceBlob, scanned.sha256) is None:
            raise


def open_content(session: Session, sha256: str, *, streamed: bool) -> Iterator[bytes]:
    """The stored bytes of ``sha256``, a chunk (<= 1 MiB) at a time, from the store that holds them. Opened
    now: missing bytes are a 500 (``StoredDataDamaged``) before any is sent, never a short answer.

    ``streamed``: for a streamed response, read after ``session`` has ended (the database store reads each
    chunk in a short read transaction of its own) and checked against the recorded size and SHA-256 as they
    go; else read in ``session`` (an audit pack's snapshot, which checks the hash itself).
    """
    blob = session.get(EvidenceBlob, sha256)
    if blob is None:
        raise blob_store.damaged(sha256, "no stored bytes are recorded for it")
    if not streamed:
        return blob_store.holding(blob, session).open(sha256, blob.size)
    return blob_store.checked(blob_store.holding(blob, None).open(sha256, blob.size), sha256, blob.size)


def get_evidence(session: Session, evidence_id: str) -> Evidence:
    """The evidence item, or 404."""
    evidence = session.get(Evidence, evidence_id) if len(evidence_id) <= 16 else None
    if evidence is None:
        raise NotFound(f"evidence {evidence_id[:40]!r} does not exist")
    return evidence


def is_current(valid_until: date | None, today: date) -> bool:
    """Evidence counts through the day ``valid_until`` names (no date: until it is replaced)."""
    return valid_until is None or valid_until >= today


def evidence_read(session: Session, evidence: Evidence, today: date | None = None) -> EvidenceRead:
    """The API view, with the requirements (``framework:control``) it is linked to."""
    links = session.exec(
        select(RequirementEvidence.framework, RequirementEvidence.control)
        .where(RequirementEvidence.evidence_id == evidence.id)
        .order_by(RequirementEvidence.framework, RequirementEvidence.control)
    ).all()
    return EvidenceRead(
        id=evidence.id,
        system_id=evidence.system_id,
        title=evidence.title,
        filename=evidence.filename,
        sha256=evidence.sha256,
        size=evidence.size,
        media_type=evidence.media_type,
        valid_until=evidence.valid_until,
        current=is_current(evidence.valid_until, today or utcnow().date()),
        created_by=evidence.created_by,
        created_at=evidence.created_at,
        requirements=[f"{f}:{c}" for f, c in links],
    )


def _owned_by(system_id: str | None) -> sa.ColumnElement[bool]:
    return col(Evidence.system_id) == system_id if system_id else col(Evidence.system_id).is_(None)


_NEWEST_FIRST = (col(Evidence.created_at).desc(), col(Evidence.id).desc())


def list_evidence(session: Session, system_id: str | None) -> list[Evidence]:
    """The evidence of a system (or of the organisation, None), newest first."""
    return list(session.exec(select(Evidence).where(_owned_by(system_id)).order_by(*_NEWEST_FIRST)).all())


def evidence_page(session: Session, system_id: str | None, page: PageWindow) -> tuple[list[Evidence], int]:
    """One page of ``list_evidence``, and how many items it has in all."""
    return paginate(session, select(Evidence).where(_owned_by(system_id)), page, *_NEWEST_FIRST)


def _audit_view(evidence: Evidence) -> dict[str, Any]:
    return {
        "evidence": evidence.id,
        "title": evidence.title,
        "filename": evidence.filename,
        "sha256": evidence.sha256,
        "size": evidence.size,
        "media_type": evidence.media_type,
        "valid_until": evidence.valid_until.isoformat() if evidence.valid_until else None,
    }
