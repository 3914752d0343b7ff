"""The EU declaration of conformity (AI Act Art. 47, Annex V) and the EU database registration data (Art. 49,
Annex VIII) of a system, from the registry alone (no HTTP here).

Which items exist and which registry fact fills each is data (``risk_catalog/annex5.yaml``,
``annex8.yaml``, loaded by ``app/documents/annexes.py``); this module builds the facts. Nothing is
invented: an Annex V item the registry cannot fill is printed as a placeholder naming the item and what to
supply, an Annex VIII field it cannot fill is ``null``. Whether a document exists at all follows the
system's current classification: its class, its effective role (Art. 25) and the obligations it carries
(``art47``; ``art49``, ``art49.2``, ``art49.3``, ``art49.5``), so the catalogue, not this code, says who
declares and who registers.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from app.classification import service as classification
from app.classification.catalog import cite, get_catalog
from app.classification.models import Classification
from app.compliance.models import QuestionnaireResponse, QuestionnaireStatus
from app.documents import render
from app.documents import service as documents
from app.documents.annexes import Annex5Item, Registration, get_annex5, get_annex8, prefix_match
from app.documents.models import Coverage, DocumentKind, RenderedDocument
from app.documents.pdf import html_to_pdf
from app.errors import Conflict
from app.settings import get_settings
from app.systems.models import AISystem
from app.technical_file import service as technical_file

HIGH_RISK = "high_risk"
PROVIDER = "provider"
DECLARATION_OBLIGATION = "art47"  # Art. 47: the provider draws up the EU declaration of conformity
STANDARDS_SECTION = "annex4.7"  # the technical file's harmonised standards (Annex IV point 7)
LOGIC_SECTION = "annex4.2.b"  # the technical file's design specifications (logic, algorithms)
FRIA_QUESTIONNAIRE = "fria"  # risk_catalog/questionnaires/fria.yaml
TEMPLATES = {"docx": "declaration_of_conformity.docx", "pdf": "declaration_of_conformity.html.j2"}


# --- the classification that decides ---------------------------------------------------------------------


def _basis_text(row: Classification) -> str:
    return ", ".join(cite(b) for b in row.basis) or "no basis"


def _obligations(row: Classification) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in row.result.get("obligations", [])}


def _uses(row: Classification) -> list[str]:
    return [str(u) for u in (row.answers or {}).get("annex3_uses", [])]


def declaration_refusal(system: AISystem, row: Classification | None) -> str | None:
    """Why the system gets no EU declaration of conformity (the 409's sentence), or None when it gets one.

    Art. 47 binds the provider of a high-risk system: the classification must be high-risk, its effective
    role (after any Art. 25 change) the provider, and its obligations must hold Art. 47 (an Annex I Section B
    product has none under Art. 2(2): its sectoral act provides the declaration).
    """
    if row is None:
        return (
            f"system {system.id} has not been classified; the EU declaration of conformity "
            "(Art. 47, Annex V) is drawn up for high-risk systems only, so classify it first"
        )
    if row.ai_act_class != HIGH_RISK:
        return (
            f"system {system.id} is classified {row.ai_act_class} ({_basis_text(row)}); the EU "
            "declaration of conformity (Art. 47, Annex V) is drawn up for high-risk systems only"
        )
    if row.effective_role != PROVIDER:
        return (
            f"system {system.id} is high-risk but its effective AI Act role is {row.effective_role}; the EU "
            "declaration of conformity (Art. 47, Annex V) is drawn up by the provider (Art. 16(g)), not by a "
            f"{row.effective_role}"
        )
    if DECLARATION_OBLIGATION not in _obligations(row):
        return (
            f"system {system.id} is high-risk ({_basis_text(row)}) but its classification carries no Art. 47 "
            "duty: an Annex I Section B product gets its declaration under its sectoral act (Art. 2(2))"
        )
    return None


# --- registry facts --------------------------------------------------------------------------------------


def _text(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


def _party(name: str | None, address: str | None) -> dict[str, str | None] | None:
    """A name and an address; None when the registry holds neither."""
    name, address = _text(name), _text(address)
    return {"name": name, "address": address} if name or address else None


def _organisation() -> dict[str, str | None] | None:
    settings = get_settings()
    return _party(settings.organisation_name, settings.organisation_address)


def provider_fact(system: AISystem, row: Classification | None) -> dict[str, str | None] | None:
    """The provider: this organisation when it became the provider (Art. 25) or built the system in-house,
    otherwise the vendor (whose address the registry does not hold)."""
    role_changed = row is not None and row.effective_role == PROVIDER and str(row.ai_act_role) != PROVIDER
    if system.vendor and not role_changed:
        return _party(system.vendor, None)
    return _organisation()


def system_reference(system: AISystem, version: dict[str, Any] | None) -> dict[str, str | None]:
    """Name, registry id, model version and artifact digest: what identifies the system and traces it."""
    return {
        "name": system.name,
        "system_id": system.id,
        "version": version["version"] if version else None,
        "artifact_digest": version["artifact_digest"] if version else None,
    }


def intended_purpose(system: AISystem) -> str:
    """The purpose, with the intended use where one is recorded."""
    use = _text(system.intended_use)
    return f"{system.purpose}\n\nIntended use: {use}" if use else system.purpose


def _section_text(sections: dict[str, Any], section_id: str) -> str | None:
    row = sections.get(section_id)
    return _text(row.text) if row is not None else None


def data_and_logic(system: AISystem, sections: dict[str, Any]) -> str | None:
    """The data the system uses (training data) and its operating logic (technical file, Annex IV 2(b))."""
    parts = []
    if data := _text(system.training_data):
        parts.append(f"Data: {data}")
    if logic := _section_text(sections, LOGIC_SECTION):
        parts.append(f"Operating logic: {logic}")
    return "\n\n".join(parts) or None


def art6_3_conditions(row: Classification) -> list[dict[str, str]] | None:
    """The Art. 6(3) conditions the classification relied on, per Annex III use where answered so."""
    conditions = (row.answers or {}).get("art6_3_conditions") or []
    titles = get_catalog().ai_act.condition_by_id
    if isinstance(conditions, dict):
        pairs = [(use, c) for use, ids in conditions.items() for c in ids]
    else:
        pairs = [(None, c) for c in conditions]
    out = []
    for use, c in pairs:
        entry = {"id": c, "cite": cite(c), "title": titles[c].title if c in titles else cite(c)}
        if use is not None:
            entry["use"] = cite(use)
        out.append(entry)
    return out or None


def fria_summary(session: Session, system: AISystem) -> dict[str, Any] | None:
    """The newest completed fundamental rights impact assessment (Art. 27) questionnaire, or None."""
    row = session.exec(
        select(QuestionnaireResponse)
        .where(
            QuestionnaireResponse.system_id == system.id,
            QuestionnaireResponse.questionnaire == FRIA_QUESTIONNAIRE,
            QuestionnaireResponse.status == QuestionnaireStatus.completed,
        )
        .order_by(col(QuestionnaireResponse.completed_at).desc(), col(QuestionnaireResponse.id).desc())
    ).first()
    if row is None:
        return None
    return {
        "response_id": row.id,
        "completed_at": row.completed_at.isoformat() if row.completed_at else None,
        "evidence_id": row.evidence_id,
        "outcome": row.outcome,
    }


def declaration_url(system: AISystem) -> str:
    """Where the registry serves the system's EU declaration of conformity."""
    base = get_settings().url.rstrip("/")
    return f"{base}/api/v1/systems/{system.id}/documents/declaration-of-conformity?format=pdf"


def _newest_version(session: Session, system: AISystem, wanted: str | None) -> dict[str, Any] | None:
    rows = documents.versions(session, system.id)
    selected = documents.select_version(rows, system.id, wanted)
    return documents.version_context(selected) if selected else None


# --- Annex V: the declaration of conformity -------------------------------------------------------------


def _placeholder(item: Annex5Item) -> str:
    return f"[{item.id} not recorded: {item.what_to_supply}]"


def _item_lines(item: Annex5Item, facts: dict[str, Any]) -> list[str]:
    """What the declaration prints for one Annex V item: recorded values, placeholders where missing."""
    missing = _placeholder(item)
    source = item.source
    if source is None:
        return [missing]
    if source == "statement":
        return [str(item.statement).replace("{legal_basis}", facts["legal_basis"])]
    if source == "personal_data":
        if facts["personal_data"]:
            return [str(item.statement)]
        return ["Not applicable: the registry records no processing of personal data by the system."]
    if source == "system_reference":
        ref, cls = facts["system_reference"], facts["classification"]
        return [
            f"Name: {ref['name']}",
            f"Type: high-risk AI system ({cls['basis']})",
            f"Registry id: {ref['system_id']}",
            f"Model version: {ref['version'] or missing}",
            f"Artifact digest: {ref['artifact_digest'] or missing}",
            f"Intended purpose: {facts['intended_purpose']}",
        ]
    if source == "provider":
        party = facts["provider"]
        if party is None:
            return [missing]
        return [party["name"] or missing, party["address"] or missing]
    if source == "standards":
        text = facts["standards"]
        return text.splitlines() if text else [missing]
    # conformity_procedure
    procedure = facts["procedure"]
    if procedure is None:
        return [missing]
    lines = [f"Conformity assessment procedure ({procedure.cite}): {procedure.procedure}."]
    if procedure.notified_body == "none":
        lines.append("Notified body: not applicable.")
    else:
        lines.append(missing)
    return lines


def declaration_context(
    session: Session, system: AISystem, row: Classification, *, version: str | None, cover: Coverage
) -> dict[str, Any]:
    """Everything the declaration prints, as plain data: each Annex V item with its lines."""
    catalog = get_catalog()
    annex5 = get_annex5()
    selected = _newest_version(session, system, version)
    sections = technical_file.recorded_sections(session, system.id)
    basis = [{"id": b, "cite": cite(b)} for b in row.basis]
    facts = {
        "legal_basis": catalog.legal_basis,
        "personal_data": system.personal_data,
        "system_reference": system_reference(system, selected),
        "intended_purpose": intended_purpose(system),
        "classification": {"basis": ", ".join(b["cite"] for b in basis)},
        "provider": provider_fact(system, row),
        "standards": _section_text(sections, STANDARDS_SECTION),
        "procedure": annex5.procedure_for([*row.basis, *_uses(row)]),
    }
    items = [
        {
            "id": item.id,
            "number": item.id.split(".")[1],
            "title": item.title,
            "lines": _item_lines(item, facts),
        }
        for item in annex5.items
    ]
    return {
        "labels": render.labels(),
        "document": {
            "generator": documents.GENERATOR,
            "covered_until": cover.at,
            "covered_seq": cover.seq,
            "audit_head_hash": cover.head_hash,
            "catalog_version": catalog.catalog_version,
            "legal_basis": catalog.legal_basis,
            "kind": DocumentKind.declaration_of_conformity.value,
        },
        "system": {"id": system.id, "name": system.name},
        "version": selected,
        "classification": {
            "id": row.id,
            "basis": basis,
            "effective_role": row.effective_role,
            "catalog_version": row.catalog_version,
        },
        "items": items,
    }


def declaration_of_conformity(
    session: Session, system: AISystem, *, fmt: str, version: str | None = None
) -> RenderedDocument:
    """The EU declaration of conformity (Annex V) as Word or PDF; 409 when Art. 47 does not apply."""
    row = classification.current_classification(session, system.id)
    refusal = declaration_refusal(system, row)
    if refusal is not None or row is None:
        raise Conflict(refusal or "")
    cover = documents.coverage(session, system)
    ctx = declaration_context(session, system, row, version=version, cover=cover)
    ctx["document"]["format"] = fmt
    if fmt == "docx":
        content = render.render_docx(TEMPLATES["docx"], ctx, timestamp=cover.at)
    else:
        content = html_to_pdf(render.render_text(TEMPLATES["pdf"], ctx), when=cover.at)
    return RenderedDocument(
        kind=DocumentKind.declaration_of_conformity,
        extension=fmt,
        content=content,
        system_id=system.id,
        version=ctx["version"]["version"] if ctx["version"] else None,
        coverage=cover,
    )


# --- Annex VIII: the registration data ------------------------------------------------------------------


def registration_route(row: Classification) -> tuple[Registration, dict[str, Any]] | None:
    """The first registration (annex8.yaml order) whose obligation the classification carries, with it."""
    obligations = _obligations(row)
    for reg in get_annex8().registrations:
        if reg.obligation in obligations:
            return reg, obligations[reg.obligation]
    return None


def _no_registration(system: AISystem, row: Classification | None) -> str:
    if row is None:
        return (
            f"system {system.id} has not been classified; the EU database registration (Art. 49, Annex VIII) "
            "follows from its classification, so classify it first"
        )
    cites = ", ".join(sorted({r.cite for r in get_annex8().registrations}))
    reason = (
        f"system {system.id} is classified {row.ai_act_class} ({_basis_text(row)}) for the "
        f"{row.effective_role} role, and none of its obligations is a registration ({cites})"
    )
    if row.effective_role != PROVIDER and any(prefix_match(u, ["annex3.2"]) for u in _uses(row)):
        reason += (
            "; an Annex III point 2 system (critical infrastructure) is registered at national level by its "
            "provider (Art. 49(5)), and its deployers register nothing (Art. 49(3))"
        )
    return reason + ": there is nothing to register"


def _field_value(source: str | None, facts: dict[str, Any]) -> Any:
    return None if source is None else facts[source]


def registration_data(session: Session, system: AISystem, cover: Coverage | None = None) -> dict[str, Any]:
    """The Annex VIII section of the system's route with every field filled from the registry or None.

    ``required``: true when the obligation binds without condition, null when it binds only under a fact the
    registry does not record (Art. 49(3): whether the deployer is a public authority); ``why`` says which.
    """
    row = classification.current_classification(session, system.id)
    route = registration_route(row) if row is not None else None
    if row is None or route is None:
        raise Conflict(_no_registration(system, row))
    reg, obligation = route
    annex8 = get_annex8()
    section = annex8.section(reg.section)
    sections = technical_file.recorded_sections(session, system.id)
    version = _newest_version(session, system, None)
    uses = _uses(row)
    facts: dict[str, Any] = {
        "provider": provider_fact(system, row),
        "deployer": _organisation(),
        "system_reference": system_reference(system, version),
        "intended_purpose": intended_purpose(system),
        "data_and_logic": data_and_logic(system, sections),
        "status": annex8.status[system.lifecycle_stage],
        "declaration_of_conformity": (
            declaration_url(system) if declaration_refusal(system, row) is None else None
        ),
        "art6_3_conditions": art6_3_conditions(row),
        "art6_3_grounds": _text(row.result.get("rationale")),
        "fria_summary": fria_summary(session, system),
    }
    condition = obligation.get("condition")
    why = f"{reg.cite}: {reg.why}"
    if condition:
        why += (
            f" {condition} The registry does not record whether the deployer is such a body, so whether this "
            "registration is required depends on it."
        )
    cover = cover or documents.coverage(session, system)
    return {
        "system_id": system.id,
        "section": section.id,
        "section_title": section.title,
        "register_in": reg.register_in,
        "legal_basis": reg.cite,
        "required": None if condition else True,
        "why": why,
        "obligation": {
            "id": obligation["id"],
            "title": obligation["title"],
            "applies_from": str(obligation["applies_from"]),
            "in_force": obligation.get("in_force"),
            "condition": condition,
        },
        # Art. 49(4): Annex III points 1, 6 and 7 in law enforcement, migration, asylum and border control
        "non_public_section": any(prefix_match(u, annex8.non_public_uses) for u in uses),
        "classification": {
            "id": row.id,
            "ai_act_class": str(row.ai_act_class),
            "effective_role": row.effective_role,
            "basis": [cite(b) for b in row.basis],
            "annex3_uses": [cite(u) for u in uses],
            "catalog_version": row.catalog_version,
        },
        "fields": {f.id: _field_value(f.source, facts) for f in section.fields},
        "field_titles": {f.id: f.title for f in section.fields},
        "covered_seq": cover.seq,
    }


def registration_document(session: Session, system: AISystem) -> RenderedDocument:
    """The registration data as a JSON document (what the download records and serves)."""
    cover = documents.coverage(session, system)
    data = registration_data(session, system, cover)
    content = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8") + b"\n"
    version = data["fields"].get(f"annex8.{data['section'].lower()}.4")
    return RenderedDocument(
        kind=DocumentKind.eu_database_registration,
        extension="json",
        content=content,
        system_id=system.id,
        version=version["version"] if isinstance(version, dict) else None,
        coverage=cover,
    )
