"""The audit pack: one ZIP with everything an auditor needs about a system, reproducible byte for byte.

The pack covers the system's audit trail up to its latest event that is not itself a document download
(see ``service.coverage``). Every timestamp inside it (ZIP entries, DOCX properties, the manifest) is the
time of that event, files come in a fixed order, and JSON is written with sorted keys, so building the pack
again from the same data gives the same bytes. The download is recorded in the trail *after* the pack is
built, with the pack's SHA-256, so a copy can be checked against the trail later.

``manifest.json`` lists every other file with its SHA-256 and is signed (Ed25519, deterministic, so the
property above holds) by the instance key of app/security/signing.py, kept outside the database; the pack
carries ``verify.py`` (document_templates/audit_pack_verify.py, standard library only) that checks it all.
Evidence files are copied into the ZIP a chunk at a time; the pack itself is spooled to a temporary file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.classification import service as classification
from app.classification.catalog import get_catalog
from app.classification.models import Classification, RiskAssessment
from app.compliance import evidence as evidence_files
from app.compliance import service as compliance
from app.compliance.models import Evidence, RequirementEvidence
from app.db import session_scope
from app.documents import render, service
from app.documents.models import (
    ChainCheck,
    Coverage,
    DocumentKind,
    ManifestFile,
    PackManifest,
)
from app.errors import Conflict, StoredDataDamaged
from app.incidents import service as incidents
from app.incidents.models import Incident
from app.monitoring import service as monitoring
from app.monitoring.models import Deployment, MonitoringReport
from app.security import signing
from app.settings import get_settings
from app.systems import service as systems
from app.systems.models import AISystem
from app.technical_file import service as technical_file

log = logging.getLogger("aireg.documents")
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
            .where(condition, col(AuditEvent.seq) > last, col(AuditEvent.seq) <= until_seq)
            .order_by(col(AuditEvent.seq))
            .limit(EVENT_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            yield dict(zip(EVENT_FIELDS, row, strict=True))
        last = rows[-1][0]


PACK_FORMAT_SIGNED = "aireg-audit-pack/2"
VERIFY_SCRIPT = "audit_pack_verify.py"
# evidence of these kinds is compressed already: stored as is (deflating it again costs time, gains nothing)
_STORED_TYPES = ("application/pdf", "application/zip", "application/vnd.openxmlformats", "image/")


class CheckpointCheck(BaseModel):
    """Whether the instance's head checkpoint vouched for the covered event when the pack was built."""

    kind: str = "audit-head"
    vouched: bool
    reason: str | None = None


class AuditSegment(BaseModel):
    """The part of the audit chain the pack covers: events ``first_seq`` to ``last_seq`` (the covered event,
    hash ``head_hash``), of which ``events_in_pack`` (the system's) are in ``events_file``."""

    first_seq: int
    last_seq: int
    head_hash: str
    events_file: str
    events_in_pack: int
    first_event_in_pack: int | None
    checkpoint: CheckpointCheck


class SignatureInfo(BaseModel):
    """The key ``manifest.sig`` is made with: base64 of the raw 32-byte Ed25519 public key and its id."""

    algorithm: str
    public_key: str
    key_id: str
    signature_file: str = "manifest.sig"


class SignedPackManifest(PackManifest):
    """``manifest.json`` of a signed pack: also the audit segment it covers and the key that signs it."""

    format: str = PACK_FORMAT_SIGNED
    audit_segment: AuditSegment
    signature: SignatureInfo


def evidence_member(item: Evidence) -> str:
    """``evidence/<sha256>-<file name>``: the name keeps letters, digits, ``.``, ``-`` and ``_``."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in item.filename)
    return f"evidence/{item.sha256}-{safe.lstrip('.')[:100] or 'evidence'}"


def pack_evidence(session: Session, system: AISystem) -> list[Evidence]:
    """The evidence the pack covers: owned by the system or linked to one of its requirements, by id."""
    linked = sa.select(col(RequirementEvidence.evidence_id)).where(
        col(RequirementEvidence.scope) == system.id
    )
    return list(
        session.exec(
            select(Evidence)
            .where(sa.or_(col(Evidence.system_id) == system.id, col(Evidence.id).in_(linked)))
            .order_by(col(Evidence.id))
        ).all()
    )


def evidence_chunks(session: Session, sha256: str) -> Iterator[bytes]:
    """The stored bytes of an evidence file, a chunk (<= 1 MiB) at a time, from the store that holds them (the
    database ones in the pack's snapshot)."""
    return evidence_files.open_content(session, sha256, streamed=False)


def check_segment(session: Session, cover: Coverage) -> tuple[ChainCheck, CheckpointCheck]:
    """The keyed chain up to the covered event, and whether the head checkpoint vouches for it.

    One walk of the whole chain (to the head, compared with the checkpoints kept outside the database) answers
    both when it holds; only when it fails is the chain walked again to the covered event, to tell whether the
    fault lies before the covered event or after it. The checkpoint's own ``seq`` is not recorded: every
    append moves it (this pack's download too), and the pack must stay the same for the same data.
    """
    full = audit.verify_chain(session, batch=EVENT_BATCH)
    if full.valid and full.events >= cover.seq:
        check = ChainCheck(valid=True, events=cover.seq, head=cover.head_hash, first_bad_seq=None)
        if full.checkpoint_seq is None or full.notice:
            return check, CheckpointCheck(vouched=False, reason="no head checkpoint to compare with")
        if full.checkpoint_seq < cover.seq:
            return check, CheckpointCheck(vouched=False, reason="the checkpoint is behind the covered event")
        return check, CheckpointCheck(vouched=True)
    return verify_until(session, cover.seq), CheckpointCheck(vouched=False, reason=full.reason)


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

    def add_stream(self, name: str, chunks: Iterator[bytes], description: str, *, stored: bool) -> str:
        """A member written a chunk at a time (``stored``: not compressed again); returns its SHA-256."""
        info = self._info(name)
        if stored:
            info.compress_type = zipfile.ZIP_STORED
        digest, size = hashlib.sha256(), 0
        with self.zip.open(info, mode="w") as fh:
            for chunk in chunks:
                fh.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        self.files.append(
            ManifestFile(path=name, sha256=digest.hexdigest(), bytes=size, description=description)
        )
        return digest.hexdigest()

    def add_unlisted(self, name: str, data: bytes) -> None:
        """An entry the manifest does not list (the manifest itself)."""
        self.zip.writestr(self._info(name), data, compresslevel=6)

    def close(self) -> None:
        """Finish the archive (idempotent; also called when building failed half-way)."""
        self.zip.close()


def _as_of(cover: Coverage) -> datetime:
    """The moment the pack describes: states computed against the clock are computed at the covered event."""
    return cover.at or datetime(1970, 1, 1, tzinfo=UTC)


def _add_records(
    session: Session,
    writer: _PackWriter,
    name: str,
    model: Any,
    system: AISystem,
    read: Callable[[Any], BaseModel],
    description: str,
) -> None:
    """A JSON list of the system's rows of ``model``, oldest (lowest id) first, as ``read`` shows each."""
    rows = session.exec(select(model).where(model.system_id == system.id).order_by(model.id)).all()
    writer.add(name, _json([read(r).model_dump(mode="json") for r in rows]), description)


def _add_operations(session: Session, writer: _PackWriter, system: AISystem, cover: Coverage) -> None:
    """``incidents.json``, ``deployments.json``, ``monitoring.json``: the system's records, by id."""
    for name, model, read, description in (
        (
            "incidents.json",
            Incident,
            lambda r: incidents.incident_read(r, _as_of(cover)),
            "Incidents (AI Act Art. 73) with deadlines and their state as of the covered event, by id",
        ),
        (
            "deployments.json",
            Deployment,
            monitoring.deployment_read,
            "Deployments of model versions to environments, with line and zone at the time, by id",
        ),
        (
            "monitoring.json",
            MonitoringReport,
            monitoring.monitoring_read,
            "Post-market monitoring reports (AI Act Art. 72), by id",
        ),
    ):
        _add_records(session, writer, name, model, system, read, description)


def _add_requirements(
    session: Session, writer: _PackWriter, system: AISystem, rows: list[Any], cover: Coverage
) -> None:
    """``requirements.json`` (as the API shows them, as of the covered event) and the evidence files."""
    today = _as_of(cover).date()
    links = compliance.evidence_links(session, system.id, today)
    items = pack_evidence(session, system)
    writer.add(
        "requirements.json",
        _json(
            {
                "as_of": today,
                "requirements": [
                    compliance.requirement_read(r, links, today).model_dump(mode="json") for r in rows
                ],
                "evidence": [
                    {
                        **evidence_files.evidence_read(session, e, today).model_dump(mode="json"),
                        "file": evidence_member(e),
                    }
                    for e in items
                ],
            }
        ),
        "Requirements with status as of the covered event and linked evidence ids; the evidence items",
    )
    written: set[str] = set()
    for item in items:
        name = evidence_member(item)
        if name in written:  # the same bytes under the same name: one file
            continue
        written.add(name)
        stored = item.media_type.startswith(_STORED_TYPES)
        digest = writer.add_stream(
            name, evidence_chunks(session, item.sha256), f"Evidence {item.id}: {item.title}", stored=stored
        )
        if digest != item.sha256:  # a pack known to be wrong is never handed out
            log.error("evidence %s: stored bytes hash to %s, recorded %s", item.id, digest, item.sha256)
            raise StoredDataDamaged(
                f"evidence {item.id}: its stored bytes hash to {digest}, not to the recorded {item.sha256}; "
                "restore the evidence from a backup before making an audit pack"
            )


def build_audit_pack(session: Session, system: AISystem) -> AuditPack:
    """Build the audit pack of a system from the session's (snapshot) view of the registry."""
    # first: bringing the requirements in step may commit them in a transaction of its own and start the
    # snapshot again, so it comes before anything else the pack reads
    requirement_rows = compliance.read_system_requirements(session, system)
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
        writer.add(
            "technical-file.json",
            _json(technical_file.read_file(session, system).model_dump(mode="json")),
            "The technical file's Annex IV sections as recorded in the registry, with their evidence ids",
        )
        _add_records(
            session,
            writer,
            "classification-history.json",
            Classification,
            system,
            classification.classification_read,
            "Every AI Act classification with answers, basis, obligations and rationale, oldest first",
        )
        assessments = session.exec(
            select(RiskAssessment)
            .where(RiskAssessment.system_id == system.id)
            .order_by(col(RiskAssessment.id))
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
        _add_operations(session, writer, system, cover)
        _add_requirements(session, writer, system, requirement_rows, cover)
        first_seqs: list[int] = []

        def lines() -> Iterator[bytes]:
            for e in system_events(session, system, approvals, cover.seq):
                if not first_seqs:
                    first_seqs.append(e["seq"])
                yield event_line(e)

        events = writer.add_lines(
            "audit-events.jsonl",
            lines(),
            "The system's audit events up to the covered event, one JSON object per line",
        )
        check, vouched = check_segment(session, cover)
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
        writer.add(
            "verify.py",
            (get_settings().document_templates_dir / VERIFY_SCRIPT).read_bytes(),
            "Checks this pack (manifest hashes, Ed25519 signature): python3 verify.py [--public-key KEY]",
        )
        key = signing.get_signing_key()
        manifest = SignedPackManifest(
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
            audit_segment=AuditSegment(
                first_seq=1 if cover.seq else 0,
                last_seq=cover.seq,
                head_hash=cover.head_hash,
                events_file="audit-events.jsonl",
                events_in_pack=events,
                first_event_in_pack=first_seqs[0] if first_seqs else None,
                checkpoint=vouched,
            ),
            signature=SignatureInfo(
                algorithm=signing.ALGORITHM,
                public_key=base64.b64encode(key.public).decode("ascii"),
                key_id=key.key_id,
            ),
        )
        manifest_bytes = _json(manifest.model_dump(mode="json"))
        writer.add_unlisted("manifest.json", manifest_bytes)
        writer.add_unlisted("manifest.sig", base64.b64encode(signing.sign(manifest_bytes)) + b"\n")
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
