"""The audit pack: one ZIP with everything an auditor needs about a system, reproducible byte for byte.

The pack covers the system's audit trail up to its latest event that is not itself a document download
(see ``service.coverage``). Every timestamp inside it (ZIP entries, DOCX properties, the manifest) is the
time of that event, files come in a fixed order, and JSON is written with sorted keys, so building the pack
again from the same data gives the same bytes. The download is recorded in the trail *after* the pack is
built, with the pack's SHA-256, so a copy can be checked against the trail later.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import sqlalchemy as sa
from sqlmodel import Session, select

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.classification import service as classification
from app.classification.catalog import get_catalog
from app.classification.models import Classification, RiskAssessment
from app.db import session_scope
from app.documents import render, service
from app.documents.models import (
    ChainCheck,
    Coverage,
    DocumentKind,
    ManifestFile,
    PackManifest,
)
from app.errors import Conflict
from app.systems import service as systems
from app.systems.models import AISystem

SPOOL_BYTES = 32 * 1024 * 1024  # packs larger than this are spooled to a temporary file
CHUNK = 64 * 1024
EVENT_BATCH = 5000


def _json(value: Any) -> bytes:
    """Pretty, deterministic JSON (sorted keys, ISO times, UTF-8)."""
    return (
        json.dumps(audit.to_jsonable(value), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()


def verify_until(session: Session, until_seq: int) -> ChainCheck:
    """Walk the hash chain from the genesis event to ``until_seq`` and report the first link that fails."""
    result = audit.verify_chain(session, batch=EVENT_BATCH, upto=until_seq)
    check = ChainCheck.model_validate(result.model_dump())
    if check.valid and check.events < until_seq:
        # verify_chain stops at the last stored event; the covered event itself must still be there.
        return ChainCheck(
            valid=False,
            events=check.events,
            head=check.head,
            first_bad_seq=check.events + 1,
            reason="events missing at the end",
        )
    return check


EVENT_FIELDS = (
    "seq",
    "ts",
    "actor",
    "action",
    "entity_type",
    "entity_id",
    "site",
    "before",
    "after",
    "prev_hash",
    "hash",
)


def event_line(event: dict[str, Any]) -> bytes:
    """One event as a JSON line whose fields are exactly the inputs of its hash (plus the hash)."""
    line = audit.canonical_json({**event, "ts": event["ts"].isoformat(timespec="microseconds")})
    return (line + "\n").encode()


def system_events(
    session: Session, system: AISystem, approvals: list[str], until_seq: int
) -> Iterator[dict[str, Any]]:
    """The system's trail (``service.trail_filter``) up to ``until_seq``, in sequence order, in batches."""
    last = 0
    condition = service.trail_filter(system, approvals)
    columns = [getattr(AuditEvent, name) for name in EVENT_FIELDS]
    while True:
        rows = session.execute(
            sa.select(*columns)
            .where(condition, AuditEvent.seq > last, AuditEvent.seq <= until_seq)
            .order_by(AuditEvent.seq)
            .limit(EVENT_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            yield dict(zip(EVENT_FIELDS, row, strict=True))
        last = rows[-1][0]


@dataclass
class AuditPack:
    """A built pack in a spooled file, with its hash and manifest."""

    file: IO[bytes]
    size: int
    sha256: str
    manifest: PackManifest
    coverage: Coverage
    system_id: str

    @property
    def filename(self) -> str:
        """``AIS-000123-audit-pack-<covered seq>.zip``."""
        return f"{self.system_id}-audit-pack-{self.coverage.seq}.zip"

    def read(self) -> bytes:
        """The whole pack (tests and small packs)."""
        self.file.seek(0)
        return self.file.read()

    def chunks(self) -> Iterator[bytes]:
        """The pack in chunks, closing the spool file at the end (for ``StreamingResponse``)."""
        try:
            self.file.seek(0)
            while chunk := self.file.read(CHUNK):
                yield chunk
        finally:
            self.file.close()

    def close(self) -> None:
        """Release the spool file."""
        self.file.close()


class _PackWriter:
    """Writes entries in a fixed order with fixed metadata and remembers each file's hash for the manifest."""

    def __init__(self, out: IO[bytes], cover: Coverage) -> None:
        self.zip = zipfile.ZipFile(out, "w")
        self.stamp = render.zip_time(cover.at)
        self.files: list[ManifestFile] = []

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.create_system = 0
        info.external_attr = 0
        return info

    def add(self, name: str, data: bytes, description: str) -> None:
        self.zip.writestr(self._info(name), data, compresslevel=6)
        self.files.append(
            ManifestFile(
                path=name, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), description=description
            )
        )

    def add_lines(self, name: str, lines: Iterator[bytes], description: str) -> int:
        digest, size, count = hashlib.sha256(), 0, 0
        with self.zip.open(self._info(name), mode="w") as fh:
            for line in lines:
                fh.write(line)
                digest.update(line)
                size += len(line)
                count += 1
        self.files.append(
            ManifestFile(path=name, sha256=digest.hexdigest(), bytes=size, description=description)
        )
        return count

    def add_unlisted(self, name: str, data: bytes) -> None:
        """An entry the manifest does not list (the manifest itself)."""
        self.zip.writestr(self._info(name), data, compresslevel=6)

    def close(self) -> None:
        """Finish the archive (idempotent; also called when building failed half-way)."""
        self.zip.close()


def build_audit_pack(session: Session, system: AISystem) -> AuditPack:
    """Build the audit pack of a system from the session's (snapshot) view of the registry."""
    ctx = service.document_context(session, system)
    approvals = [a["id"] for a in ctx["approvals"]]
    cover = Coverage(
        seq=ctx["document"]["covered_seq"],
        at=ctx["document"]["covered_until"],
        head_hash=ctx["document"]["audit_head_hash"],
    )
    catalog = get_catalog()
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by AuditPack
    writer = _PackWriter(spool, cover)
    try:
        writer.add(
            "README.md",
            render.render_text("audit_pack_readme.md.j2", ctx).encode(),
            "How to read and check this pack",
        )
        writer.add(
            "system.json",
            # the stored record only: fields other domains compute live against the clock (``monitoring``)
            # would make the same data give different packs from one hour to the next
            _json(
                systems.system_read(
                    system, systems.zone_targets(session, {system.zone} if system.zone else set())
                ).model_dump(mode="json", exclude={"monitoring"})
            ),
            "The registry record of the system",
        )
        for fmt, label in (("md", "Markdown"), ("html", "HTML"), ("docx", "Word")):
            doc = service.render_document(DocumentKind.model_card, fmt, ctx)
            writer.add(f"model-card.{fmt}", doc.content, f"Model card ({label})")
        try:
            kind = service.technical_documentation_kind(ctx)
        except Conflict as exc:
            technical = f"not applicable: {exc.detail}"
        else:
            doc = service.render_document(kind, "docx", ctx)
            technical = f"{kind.value}.docx"
            what = (
                "Technical documentation following AI Act Annex IV"
                if kind is DocumentKind.technical_documentation
                else "Art. 6(3) assessment record kept under AI Act Art. 6(4)"
            )
            writer.add(technical, doc.content, what)
        writer.add(
            "model-versions.json",
            _json(
                [
                    systems.version_read(v).model_dump(mode="json")
                    for v in service.versions(session, system.id)
                ]
            ),
            "Every model version with artifact digest and metrics, newest first",
        )
        history = session.exec(
            select(Classification).where(Classification.system_id == system.id).order_by(Classification.id)
        ).all()
        writer.add(
            "classification-history.json",
            _json([classification.classification_read(r).model_dump(mode="json") for r in history]),
            "Every AI Act classification with answers, basis, obligations and rationale, oldest first",
        )
        assessments = session.exec(
            select(RiskAssessment).where(RiskAssessment.system_id == system.id).order_by(RiskAssessment.id)
        ).all()
        writer.add(
            "risk-assessment.json",
            _json(
                {
                    "current": classification.risk_assessment_read(assessments[-1]).model_dump(mode="json")
                    if assessments
                    else None,
                    "history": [
                        classification.risk_assessment_read(r).model_dump(mode="json") for r in assessments
                    ],
                    "nist_checklist": classification.checklist(session, system.id).model_dump(mode="json"),
                }
            ),
            "NIST AI RMF risk assessments (current and history) and the AI RMF checklist",
        )
        writer.add(
            "approvals.json",
            _json(ctx["approvals"]),
            "Approval requests with their content hashes and sign-offs with their hashes",
        )
        events = writer.add_lines(
            "audit-events.jsonl",
            (event_line(e) for e in system_events(session, system, approvals, cover.seq)),
            "The system's audit events up to the covered event, one JSON object per line",
        )
        check = verify_until(session, cover.seq)
        writer.add(
            "audit-verification.json",
            _json(
                {
                    "chain": check.model_dump(),
                    "covered_seq": cover.seq,
                    "covered_until": cover.at,
                    "system_events": events,
                    "scope": "hash chain verified from the first event of the trail to the covered event",
                }
            ),
            "Result of verifying the hash chain up to the covered event",
        )
        manifest = PackManifest(
            system_id=system.id,
            system_name=system.name,
            site=system.site,
            model_version=ctx["version"]["version"] if ctx["version"] else None,
            covered_until=cover.at,
            covered_seq=cover.seq,
            audit_head_hash=cover.head_hash,
            audit_chain=check,
            catalog_version=catalog.catalog_version,
            legal_basis=catalog.legal_basis,
            technical_documentation=technical,
            files=writer.files,
        )
        writer.add_unlisted("manifest.json", _json(manifest.model_dump(mode="json")))
        writer.close()
        size = spool.tell()
        spool.seek(0)
        digest = hashlib.sha256()
        while chunk := spool.read(CHUNK):
            digest.update(chunk)
    except BaseException:
        writer.close()
        spool.close()
        raise
    return AuditPack(
        file=spool,
        size=size,
        sha256=digest.hexdigest(),
        manifest=manifest,
        coverage=cover,
        system_id=system.id,
    )


def download_audit_pack(system_id: str, *, actor: str) -> AuditPack:
    """Build a system's audit pack from one snapshot, then record the download (with the pack's hash)."""
    with service.snapshot() as session:
        system = systems.get_system(session, system_id)
        site = system.site
        pack = build_audit_pack(session, system)
    try:
        with session_scope() as session:
            service.record_download(
                session,
                system_id=system_id,
                site=site,
                actor=actor,
                document=DocumentKind.audit_pack,
                fmt="zip",
                version=pack.manifest.model_version,
                sha256=pack.sha256,
                size=pack.size,
                cover=pack.coverage,
            )
    except BaseException:
        pack.close()
        raise
    return pack
