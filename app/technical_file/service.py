"""A system's technical file (AI Act Art. 11, Annex IV): read, change and list the history of its sections.

No HTTP here. Every accepted change of a section is an audit event (``technical_file.update`` on the
system) carrying the SHA-256 of the text before and after and the new text itself, so the trail alone
holds every version; the history is read back from it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.compliance import service as compliance
from app.compliance.models import Evidence
from app.db import utcnow
from app.errors import field_error
from app.http import check_revision
from app.systems.models import AISystem
from app.technical_file.annex4 import Annex4, get_annex4
from app.technical_file.models import (
    UPDATE_ACTION,
    SectionRead,
    TechnicalFile,
    TechnicalFileChange,
    TechnicalFileRead,
    TechnicalFileSection,
    TechnicalFileUpdate,
)


def text_sha256(text: str) -> str | None:
    """SHA-256 of a section's text; None for a section with no text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None


def _normalize(text: str) -> str:
    """Line breaks as ``\\n``; a text of only blanks is no text (the section counts as not recorded)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.strip() else ""


def recorded_sections(session: Session, system_id: str) -> dict[str, TechnicalFileSection]:
    """The stored sections of a system by section id."""
    rows = session.exec(select(TechnicalFileSection).where(TechnicalFileSection.system_id == system_id))
    return {r.section_id: r for r in rows.all()}


def file_row(session: Session, system_id: str) -> TechnicalFile | None:
    """The file's revision row, or None before its first change."""
    return session.get(TechnicalFile, system_id)


def read_file(session: Session, system: AISystem) -> TechnicalFileRead:
    """Every Annex IV section of the system in Annex IV order (unrecorded ones with empty text)."""
    annex4 = get_annex4()
    rows = recorded_sections(session, system.id)
    head = file_row(session, system.id)
    sections = []
    for section in annex4.sections:
        row = rows.get(section.id)
        sections.append(
            SectionRead(
                id=section.id,
                title=section.title,
                text=row.text if row else "",
                evidence=list(row.evidence) if row else [],
                what_to_supply=section.what_to_supply,
                provider_supplies=section.provider_supplies,
                revision=row.revision if row else 0,
                updated_by=row.updated_by if row else None,
                updated_at=row.updated_at if row else None,
            )
        )
    return TechnicalFileRead(system_id=system.id, sections=sections, revision=head.revision if head else 0)


def _check_ids(annex4: Annex4, data: TechnicalFileUpdate) -> None:
    seen: dict[str, int] = {}
    for n, item in enumerate(data.sections):
        if item.id not in annex4.section_by_id:
            raise field_error(
                ["body", "sections", n, "id"],
                f"{item.id!r} is no Annex IV section; sections are annex4.1.a ... annex4.9",
            )
        if item.id in seen:
            raise field_error(
                ["body", "sections", n, "id"], f"{item.id} is given twice (first at sections.{seen[item.id]})"
            )
        seen[item.id] = n


def update_file(
    session: Session,
    system: AISystem,
    data: TechnicalFileUpdate,
    *,
    if_match: int | None,
    actor: str,
) -> TechnicalFileRead:
    """Record the given sections (any subset); every changed section is one audit event.

    The rules, in the order a person would ask: the change names the file's current revision (409 if
    stale); every id is an Annex IV section, once (422 naming ``sections.N.id``); linked evidence exists
    and is evidence of this system (422 naming ``sections.N.evidence.M``). A section given without
    ``evidence`` keeps its links; one given with the text and evidence it already has is no change, and a
    request changing nothing keeps the revision.
    """
    annex4 = get_annex4()
    head = file_row(session, system.id)
    check_revision(head.revision if head else 0, if_match, data.revision)
    _check_ids(annex4, data)
    for n, item in enumerate(data.sections):
        ids = list(dict.fromkeys(item.evidence or []))
        if ids:
            compliance.check_evidence(session, system.id, ids, ("body", "sections", n, "evidence"))
    rows = recorded_sections(session, system.id)
    now = utcnow()
    changes: list[tuple[str, TechnicalFileSection | None, str, list[str]]] = []
    for item in data.sections:
        row = rows.get(item.id)
        current = (row.text, list(row.evidence)) if row else ("", [])
        text = _normalize(item.text)
        evidence = current[1] if item.evidence is None else list(dict.fromkeys(item.evidence))
        if current == (text, evidence):
            continue
        changes.append((item.id, row, text, evidence))
    if not changes:
        return read_file(session, system)
    if head is None:
        head = TechnicalFile(system_id=system.id, revision=0, updated_by=actor, updated_at=now)
    head.revision += 1
    head.updated_by, head.updated_at = actor, now
    session.add(head)
    events = []
    for section_id, row, text, evidence in changes:
        before = {
            "section": section_id,
            "revision": row.revision if row else 0,
            "text_sha256": text_sha256(row.text) if row else None,
            "evidence": list(row.evidence) if row else [],
        }
        if row is None:
            row = TechnicalFileSection(
                system_id=system.id, section_id=section_id, revision=0, updated_by=actor, updated_at=now
            )
        row.text, row.evidence = text, evidence
        row.revision += 1
        row.updated_by, row.updated_at = actor, now
        session.add(row)
        events.append(
            {
                "actor": actor,
                "action": UPDATE_ACTION,
                "entity_type": "system",
                "entity_id": system.id,
                "site": system.site,
                "before": before,
                "after": {
                    "section": section_id,
                    "revision": row.revision,
                    "file_revision": head.revision,
                    "text_sha256": text_sha256(text),
                    "text": text,
                    "evidence": evidence,
                },
            }
        )
    session.flush()
    audit.record_many(session, events)
    return read_file(session, system)


def history(session: Session, system: AISystem) -> list[TechnicalFileChange]:
    """Every recorded change of the system's technical file, newest first (from the audit trail)."""
    events = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.entity_type == "system",
            AuditEvent.entity_id == system.id,
            AuditEvent.action == UPDATE_ACTION,
        )
        .order_by(col(AuditEvent.seq).desc())
    ).all()
    out = []
    for event in events:
        before: dict[str, Any] = event.before or {}
        after: dict[str, Any] = event.after or {}
        out.append(
            TechnicalFileChange(
                seq=event.seq,
                at=event.ts,
                actor=event.actor,
                section=after["section"],
                revision=after["file_revision"],
                before_sha256=before.get("text_sha256"),
                after_sha256=after.get("text_sha256"),
                text=after.get("text", ""),
                evidence_before=before.get("evidence", []),
                evidence=after.get("evidence", []),
            )
        )
    return out


def evidence_of(session: Session, ids: list[str]) -> dict[str, Evidence]:
    """Evidence rows by id (those that exist)."""
    if not ids:
        return {}
    return {e.id: e for e in session.exec(select(Evidence).where(col(Evidence.id).in_(ids))).all()}


def system_evidence(session: Session, system_id: str) -> list[Evidence]:
    """The evidence items of a system, newest first (what a section may link)."""
    return list(
        session.exec(
            select(Evidence)
            .where(Evidence.system_id == system_id)
            .order_by(col(Evidence.created_at).desc(), col(Evidence.id).desc())
        ).all()
    )
