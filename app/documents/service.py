"""Gathering what the registry knows about a system into plain context dicts for the document templates.

Nothing here invents a value: a field the registry does not hold stays ``None`` (or an empty list), and
the templates print it as "not recorded" (or "to be completed by the provider" in Annex IV documents).
Every document is stamped with its *coverage*, the latest audit event it describes, never the wall clock,
so the same data always renders to the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.approvals.models import ApprovalRequest, SignOff
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.classification import service as classification
from app.classification.catalog import Catalog, cite, get_catalog
from app.classification.models import Classification, RiskAssessment
from app.db import get_engine, session_scope
from app.documents import annex4, card, pdf, render
from app.documents.models import (
    DOWNLOAD_ACTION,
    Coverage,
    DocumentKind,
    ModelCardFormat,
    RenderedDocument,
)
from app.errors import Conflict, NotFound
from app.identity.models import User
from app.incidents.models import Incident
from app.systems import service as systems
from app.systems.models import AISystem, Line, ModelVersion, Site, sl_gap, sl_unassessed
from app.zones.models import Zone
from app.zones.service import is_ot

GENERATOR = "aireg"
HIGH_RISK = "high_risk"
# Art. 6(4): a provider relying on the Art. 6(3) derogation documents that assessment.
DEROGATION_OBLIGATION = "art6.4"

TEMPLATES = {
    (DocumentKind.model_card, "md"): "model_card.md.j2",
    (DocumentKind.model_card, "html"): "model_card.html.j2",
    (DocumentKind.model_card, "docx"): "model_card.docx",
    (DocumentKind.model_card, "pdf"): "model_card.html.j2",
    (DocumentKind.technical_documentation, "docx"): "technical_documentation.docx",
    (DocumentKind.technical_documentation, "md"): "technical_documentation.md.j2",
    (DocumentKind.technical_documentation, "pdf"): "technical_documentation.html.j2",
    (DocumentKind.art6_4_assessment, "docx"): "art6_4_assessment.docx",
    (DocumentKind.art6_4_assessment, "md"): "art6_4_assessment.md.j2",
    (DocumentKind.art6_4_assessment, "pdf"): "art6_4_assessment.html.j2",
}


# --- the audit trail behind a system's documents -------------------------------------------------------


def approval_ids(session: Session, system_id: str) -> list[str]:
    """Ids of every approval request of a system, oldest first."""
    return list(
        session.exec(
            select(col(ApprovalRequest.id))
            .where(col(ApprovalRequest.system_id) == system_id)
            .order_by(col(ApprovalRequest.created_at), col(ApprovalRequest.id))
        ).all()
    )


def trail_filter(system: AISystem, approvals: Iterable[str]) -> sa.ColumnElement[bool]:
    """Events that change what a system's documents show: the system itself (with its monitoring reports
    and deployments, recorded on the system), its approvals, its incidents, zone and site."""
    conditions: list[sa.ColumnElement[bool]] = [col(AuditEvent.entity_id) == system.id]
    ids = sorted(set(approvals))
    if ids:
        conditions.append(col(AuditEvent.entity_id).in_(ids))
    # AI Act Art. 72/73: post-market monitoring and serious incidents belong to the system's record.
    conditions.append(
        sa.and_(
            col(AuditEvent.entity_type) == "incident",
            col(AuditEvent.entity_id).in_(
                sa.select(col(Incident.id)).where(col(Incident.system_id) == system.id)
            ),
        )
    )
    if system.zone:
        conditions.append(
            sa.and_(col(AuditEvent.entity_type) == "zone", col(AuditEvent.entity_id) == system.zone)
        )
    conditions.append(
        sa.and_(col(AuditEvent.entity_type) == "site", col(AuditEvent.entity_id) == system.site)
    )
    return sa.or_(*conditions)


def coverage(session: Session, system: AISystem, approvals: Iterable[str] | None = None) -> Coverage:
    """The latest event the system's documents cover; downloads of documents themselves are not covered.

    A download is recorded after its document is built, so leaving downloads out of the coverage is what
    lets two downloads with no change in between produce byte-identical files.
    """
    ids = approval_ids(session, system.id) if approvals is None else list(approvals)
    row = session.execute(
        sa.select(col(AuditEvent.seq), col(AuditEvent.ts), col(AuditEvent.hash))
        .where(trail_filter(system, ids), col(AuditEvent.action) != DOWNLOAD_ACTION)
        .order_by(col(AuditEvent.seq).desc())
        .limit(1)
    ).first()
    if row is None:
        return Coverage(seq=0, at=None, head_hash=audit.GENESIS_HASH)
    return Coverage(seq=row[0], at=row[1], head_hash=row[2])


def record_download(
    session: Session,
    *,
    system_id: str,
    site: str,
    actor: str,
    document: DocumentKind,
    fmt: str,
    version: str | None,
    sha256: str,
    size: int,
    cover: Coverage,
) -> AuditEvent:
    """Write the download of a document to the trail (after it was built, so it never covers itself)."""
    return audit.record(
        session,
        actor=actor,
        action=DOWNLOAD_ACTION,
        entity_type="system",
        entity_id=system_id,
        site=site,
        after={
            "document": document.value,
            "format": fmt,
            "version": version,
            "sha256": sha256,
            "bytes": size,
            "covered_seq": cover.seq,
        },
    )


@contextmanager
def snapshot() -> Iterator[Session]:
    """A read-only session that sees one consistent state of the database for the whole document.

    SQLite's deferred read transaction already is a snapshot; PostgreSQL needs REPEATABLE READ for it.
    """
    engine = get_engine()
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.rollback()


def produce(
    system_id: str, build: Callable[[Session, AISystem], RenderedDocument], *, actor: str, fmt: str
) -> RenderedDocument:
    """Build a document from one snapshot, then record its download in a transaction of its own."""
    with snapshot() as session:
        system = systems.get_system(session, system_id)
        site = system.site
        document = build(session, system)
    with session_scope() as session:
        record_download(
            session,
            system_id=system_id,
            site=site,
            actor=actor,
            document=document.kind,
            fmt=fmt,
            version=document.version,
            sha256=document.sha256,
            size=len(document.content),
            cover=document.coverage,
        )
    return document


# --- context pieces ------------------------------------------------------------------------------------


def _text(value: str | None) -> str | None:
    """Free text as stored, or None when blank (so the template says "not recorded")."""
    if value is None or not value.strip():
        return None
    return value


def _user(session: Session, username: str | None) -> dict[str, Any] | None:
    if not username:
        return None
    user = session.exec(select(User).where(User.username == username)).first()
    return {
        "username": username,
        "display_name": _text(user.display_name) if user and user.display_name != username else None,
        "email": user.email if user else None,
    }


# The articles a classification names as its basis that are no catalogue entry of their own: the route
# the article opens says what it means (Art. 6(1): Annex I products, Art. 6(2): Annex III uses).
_ARTICLE_ROUTES = {"art6.1": ("annex1.a", "annex1.b"), "art6.2": ("annex3",)}


def _identifier(catalog: Catalog, identifier: str, context: Iterable[str] = ()) -> dict[str, Any]:
    """An AI Act identifier with its citation and its meaning (a title; never blank).

    ``context``: the other identifiers of the same basis, which tell an article's route (Art. 6(1) through
    Annex I Section A or B). An identifier the catalogue has no title for is described by its kind.
    """
    ai = catalog.ai_act
    title = None
    for lookup in (
        ai.practice_by_id,
        ai.annex3_by_id,
        ai.legislation_by_id,
        ai.condition_by_id,
        ai.transparency_by_id,
        ai.obligation_by_id,
        ai.gpai_by_id,
        ai.route_by_id,
        ai.scope_rule_by_id,
        ai.exclusion_by_id,
        ai.role_change_by_id,
    ):
        entry = lookup.get(identifier)
        if entry is not None:
            title = entry.title
            break
    if title is None and identifier in _ARTICLE_ROUTES:
        routes = _ARTICLE_ROUTES[identifier]
        section_b = any(other.startswith("annex1.b") for other in context)
        route = routes[-1] if section_b and len(routes) > 1 else routes[0]
        entry = ai.route_by_id.get(route)
        title = entry.title if entry is not None else None
    if title is None:
        kind = ai.kind_of(identifier)
        title = f"{kind} (see {cite(identifier)})" if kind else f"see {cite(identifier)}"
    return {"id": identifier, "cite": cite(identifier), "title": title}


def _applies(applies_from: str | date, as_of: datetime | None) -> bool | None:
    if as_of is None:
        return None
    day = applies_from if isinstance(applies_from, date) else date.fromisoformat(str(applies_from))
    return day <= as_of.date()


def classification_context(
    row: Classification | None, catalog: Catalog, as_of: datetime | None
) -> dict[str, Any] | None:
    """The current AI Act classification with citations, or None when the system was never classified."""
    if row is None:
        return None
    result = row.result
    answers = row.answers or {}
    obligations = [
        {
            **_identifier(catalog, o["id"]),
            "title": o["title"],
            "applies_from": date.fromisoformat(str(o["applies_from"])),
            "in_force": _applies(o["applies_from"], as_of),
            "condition": o.get("condition"),
        }
        for o in result.get("obligations", [])
    ]
    return {
        "id": row.id,
        "ai_act_class": str(row.ai_act_class),
        "ai_act_role": row.ai_act_role,
        # the role whose duties apply: "provider" after an Art. 25 role change
        "effective_role": row.effective_role,
        "basis": [_identifier(catalog, b, row.basis) for b in row.basis],
        "rationale": result.get("rationale"),
        "obligations": obligations,
        "transparency_obligations": [
            _identifier(catalog, t) for t in result.get("transparency_obligations", [])
        ],
        "gpai_obligations": [_identifier(catalog, g) for g in result.get("gpai_obligations", [])],
        "annex3_uses": [_identifier(catalog, u) for u in answers.get("annex3_uses", [])],
        "art6_3_conditions": [_identifier(catalog, c) for c in answers.get("art6_3_conditions", [])],
        "profiling": bool(answers.get("profiling", False)),
        "derogated": any(o["id"] == DEROGATION_OBLIGATION for o in obligations),
        "answers": answers,
        "assessor": row.assessor,
        "created_at": row.created_at,
        "catalog_version": row.catalog_version,
    }


def risk_context(row: RiskAssessment | None, catalog: Catalog) -> dict[str, Any] | None:
    """The current NIST AI RMF risk assessment with subcategory titles, or None."""
    if row is None:
        return None
    nist = catalog.nist
    risks = []
    for risk in row.risks:
        refs = []
        for ref in risk.get("nist_refs", []):
            sub = nist.subcategory_by_id.get(ref)
            refs.append({"id": ref, "title": sub.title if sub else None})
        risks.append(
            {
                "title": risk.get("title"),
                "nist_refs": refs,
                "mitigation": _text(risk.get("mitigation")),
                "characteristic": risk.get("characteristic"),
            }
        )
    matrix = nist.risk_matrix
    return {
        "id": row.id,
        "tier": str(row.risk_tier),
        "impact": row.impact,
        "impact_label": matrix.impact_levels.get(row.impact),
        "likelihood": row.likelihood,
        "likelihood_label": matrix.likelihood_levels.get(row.likelihood),
        "risks": risks,
        "assessor": row.assessor,
        "created_at": row.created_at,
        "catalog_version": row.catalog_version,
    }


def security_context(session: Session, system: AISystem, catalog: Catalog) -> dict[str, Any]:
    """IEC 62443: the system's zone, its SL-T, the recorded SL-A and the gap per foundational requirement.

    A row's ``achieved`` is None where that FR is not assessed (``assessed`` false): templates print
    ``labels.not_assessed`` there, never SL 0; ``unassessed`` lists those the zone sets a target for.
    """
    zone = session.get(Zone, system.zone) if system.zone else None
    iec = catalog.iec62443
    target = zone.sl_target if zone else None
    achieved = system.sl_achieved
    gap = sl_gap(target, achieved) if zone else []
    unassessed = sl_unassessed(target, achieved) if zone else []
    rows = [
        {
            "fr": fr.id,
            "abbreviation": fr.abbreviation,
            "name": fr.name,
            "target": target.get(fr.id) if target else None,
            "achieved": achieved.get(fr.id) if achieved else None,
            "assessed": achieved is not None and achieved.get(fr.id) is not None,
            "gap": fr.id in gap,
        }
        for fr in iec.foundational_requirements
    ]
    purdue = iec.purdue_by_level.get(float(zone.purdue_level)) if zone else None
    return {
        "zone": (
            {
                "code": zone.code,
                "name": zone.name,
                "purdue_level": zone.purdue_level,
                "purdue_title": purdue.title if purdue else None,
                "is_ot": is_ot(zone),
            }
            if zone
            else None
        ),
        "sl_achieved_recorded": achieved is not None,
        "rows": rows,
        "gap": gap,
        "unassessed": unassessed,
        "standard": iec.standard,
    }


def version_context(row: ModelVersion) -> dict[str, Any]:
    """One model version; metrics as an ordered list of name/value pairs."""
    return {
        "version": row.version,
        "artifact_digest": row.artifact_digest,
        "notes": _text(row.notes),
        "metrics": [{"name": k, "value": v} for k, v in sorted((row.metrics or {}).items())],
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


def versions(session: Session, system_id: str) -> list[ModelVersion]:
    """Every model version of a system, newest first."""
    return list(
        session.exec(
            select(ModelVersion)
            .where(ModelVersion.system_id == system_id)
            .order_by(col(ModelVersion.created_at).desc(), col(ModelVersion.id).desc())
        ).all()
    )


def select_version(rows: list[ModelVersion], system_id: str, wanted: str | None) -> ModelVersion | None:
    """The named version, or the newest (None when the system has no version yet); 404 for an unknown one."""
    if wanted is None:
        return rows[0] if rows else None
    for row in rows:
        if row.version == wanted:
            return row
    raise NotFound(f"system {system_id} has no version {wanted!r}")


def approvals_context(session: Session, system_id: str) -> list[dict[str, Any]]:
    """Every approval request of a system with its sign-offs and their hashes, oldest first."""
    requests = list(
        session.exec(
            select(ApprovalRequest)
            .where(ApprovalRequest.system_id == system_id)
            .order_by(col(ApprovalRequest.created_at), col(ApprovalRequest.id))
        ).all()
    )
    signoffs: dict[str, list[SignOff]] = {r.id: [] for r in requests}
    if requests:
        for s in session.exec(
            select(SignOff).where(col(SignOff.approval_id).in_(list(signoffs))).order_by(col(SignOff.id))
        ).all():
            signoffs[s.approval_id].append(s)
    out = []
    for r in requests:
        signed = [
            {
                "role": str(s.role),
                "signer": s.signer,
                "decision": str(s.decision),
                "comment": _text(s.comment),
                "conditions": s.conditions,
                "created_at": s.created_at,
                "hash": s.hash,
            }
            for s in signoffs[r.id]
        ]
        done = {s["role"] for s in signed}
        out.append(
            {
                "id": r.id,
                "version": r.version,
                "artifact_digest": r.artifact_digest,
                "environment": str(r.environment),
                "state": str(r.state),
                "requester": r.requester,
                "justification": r.justification,
                "required_signoffs": list(r.required_signoffs),
                "missing_signoffs": [role for role in r.required_signoffs if role not in done],
                "signoffs": signed,
                "classification_id": r.classification_id,
                "ai_act_class": r.ai_act_class,
                "conditions": r.conditions,
                "content_hash": r.content_hash,
                "valid_until": r.valid_until,
                "decided_at": r.decided_at,
                "closed_by": r.closed_by,
                "close_reason": r.close_reason,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
            }
        )
    return out


def system_context(session: Session, system: AISystem) -> dict[str, Any]:
    """The registry record of a system, free-text fields blank-to-None."""
    site = session.get(Site, system.site)
    line = (
        session.exec(select(Line).where(Line.site == system.site, Line.code == system.line)).first()
        if system.line
        else None
    )
    return {
        "id": system.id,
        "name": system.name,
        "purpose": system.purpose,
        "site": system.site,
        "site_name": site.name if site else None,
        "line": system.line,
        "line_name": line.name if line else None,
        "vendor": _text(system.vendor),
        "built_in_house": system.vendor is None,
        "ai_act_role": str(system.ai_act_role),
        "lifecycle_stage": str(system.lifecycle_stage),
        "personal_data": system.personal_data,
        "license": _text(system.license),
        "intended_use": _text(system.intended_use),
        "out_of_scope_uses": _text(system.out_of_scope_uses),
        "human_oversight": _text(system.human_oversight),
        "limitations": _text(system.limitations),
        "training_data": _text(system.training_data),
        "monitoring_interval_hours": system.monitoring_interval_hours,
        "replicated_from": system.replicated_from,
        "ai_act_class": str(system.ai_act_class) if system.ai_act_class else None,
        "risk_tier": str(system.risk_tier) if system.risk_tier else None,
        "created_at": system.created_at,
        "updated_at": system.updated_at,
        "revision": system.revision,
    }


def document_context(
    session: Session,
    system: AISystem,
    *,
    version: str | None = None,
    cover: Coverage | None = None,
) -> dict[str, Any]:
    """Everything a system's documents show, as plain data (the template decides the layout)."""
    catalog = get_catalog()
    rows = versions(session, system.id)
    selected = select_version(rows, system.id, version)
    approvals = approvals_context(session, system.id)
    cover = cover or coverage(session, system, [a["id"] for a in approvals])
    classification_row = classification.current_classification(session, system.id)
    risk_row = classification.current_risk_assessment(session, system.id)
    selected_ctx = version_context(selected) if selected else None
    ctx: dict[str, Any] = {
        "labels": render.labels(),
        "document": {
            "generator": GENERATOR,
            "covered_until": cover.at,
            "covered_seq": cover.seq,
            "audit_head_hash": cover.head_hash,
            "catalog_version": catalog.catalog_version,
            "legal_basis": catalog.legal_basis,
        },
        "system": system_context(session, system),
        "owners": {
            "business": _user(session, system.business_owner),
            "technical": _user(session, system.technical_owner),
        },
        "classification": classification_context(classification_row, catalog, cover.at),
        "classification_history": [
            classification_context(r, catalog, cover.at)
            for r in session.exec(
                select(Classification)
                .where(Classification.system_id == system.id)
                .order_by(col(Classification.id).desc())
            ).all()
        ],
        "risk": risk_context(risk_row, catalog),
        "nist_checklist": classification.checklist(session, system.id).model_dump(mode="python"),
        "security": security_context(session, system, catalog),
        "version": selected_ctx,
        "versions": [version_context(r) for r in rows],
        "approvals": approvals,
        "version_approvals": [a for a in approvals if selected and a["version"] == selected.version],
    }
    # the model card's content, built once for Markdown, HTML, Word and PDF
    ctx["hf_metadata"] = card.hf_metadata(ctx)
    ctx["card"] = card.card_context(session, ctx)
    # the Annex IV content, built once for the Word and the Markdown technical documentation
    ctx["technical"] = annex4.technical_context(session, ctx)
    return ctx


# --- documents -----------------------------------------------------------------------------------------


def technical_documentation_kind(ctx: dict[str, Any]) -> DocumentKind:
    """Annex IV technical documentation for a high-risk system, the Art. 6(4) record for a derogated one.

    Art. 11 requires Annex IV documentation of high-risk systems only; Art. 6(4) requires a provider that
    relies on Art. 6(3) to document that assessment instead. Anything else is a 409 saying why.
    """
    system, cls = ctx["system"], ctx["classification"]
    if cls is None:
        raise Conflict(
            f"system {system['id']} has not been classified; Annex IV technical documentation (Art. 11) "
            "applies only to high-risk systems, so classify it first"
        )
    if cls["ai_act_class"] == HIGH_RISK:
        return DocumentKind.technical_documentation
    if cls["derogated"]:
        return DocumentKind.art6_4_assessment
    basis = ", ".join(b["cite"] for b in cls["basis"]) or "no high-risk route"
    raise Conflict(
        f"system {system['id']} is classified {cls['ai_act_class']} ({basis}); Annex IV technical "
        "documentation (Art. 11) applies only to high-risk systems, and no Art. 6(3) assessment "
        "(Art. 6(4)) is recorded for it"
    )


def render_document(kind: DocumentKind, fmt: str, ctx: dict[str, Any]) -> RenderedDocument:
    """Render one document from its template in ``document_templates/``."""
    template = TEMPLATES[(kind, fmt)]
    cover = Coverage(
        seq=ctx["document"]["covered_seq"],
        at=ctx["document"]["covered_until"],
        head_hash=ctx["document"]["audit_head_hash"],
    )
    ctx = {**ctx, "document": {**ctx["document"], "kind": kind.value, "format": fmt}}
    if fmt == "docx":
        content = render.render_docx(template, ctx, timestamp=cover.at)
    elif fmt == "pdf":  # the HTML layout, printed
        content = pdf.html_to_pdf(render.render_text(template, ctx), when=cover.at)
    else:
        content = render.render_text(template, ctx).encode("utf-8")
    version = ctx["version"]["version"] if ctx["version"] else None
    return RenderedDocument(
        kind=kind,
        extension=fmt,
        content=content,
        system_id=ctx["system"]["id"],
        version=version,
        coverage=cover,
    )


def model_card(
    session: Session, system: AISystem, fmt: ModelCardFormat, *, version: str | None = None
) -> RenderedDocument:
    """The model card of a system and version (default: the newest) in Markdown, HTML, DOCX or PDF."""
    return render_document(
        DocumentKind.model_card, fmt.value, document_context(session, system, version=version)
    )


def technical_documentation(
    session: Session, system: AISystem, *, version: str | None = None, fmt: str = "docx"
) -> RenderedDocument:
    """Annex IV technical documentation (high-risk) or the Art. 6(4) assessment record (derogated), each
    as DOCX, Markdown or PDF with the same content."""
    ctx = document_context(session, system, version=version)
    kind = technical_documentation_kind(ctx)
    if (kind, fmt) not in TEMPLATES:
        raise Conflict(f"system {system.id} gets the {kind.value} document, which is made as docx only")
    return render_document(kind, fmt, ctx)
