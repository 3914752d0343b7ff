"""The content of the AI Act Annex IV technical documentation, built once for every format.

``technical_context`` turns the registry (the document context of ``service.document_context``) and the
system's technical file into a list of *parts*: a heading and its blocks, each block a paragraph (an
optional bold label and a text) or a table (headers and rows of text). The Word and Markdown templates only
lay those parts out, so both formats print the same content by construction.

What each section prints, in order: its recorded text (or, when nothing is recorded, the placeholder
``[annex4.2.c not recorded: <what to supply>]``; for a deployer, an item the provider supplies says so
instead), the evidence it links (title and SHA-256), then the registry facts its ``from_registry`` names.
Registry facts are never placeholders: a fact the registry lacks reads "not recorded".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from app.classification.catalog import get_catalog
from app.compliance.models import Requirement
from app.documents import render
from app.incidents.models import Incident
from app.monitoring.models import MonitoringReport
from app.technical_file import service as technical_file
from app.technical_file.annex4 import Annex4, Section, get_annex4

Block = dict[str, Any]
Part = dict[str, Any]
DEPLOYER = "deployer"
# Art. 2(2): for an Annex I Section B product the AI Act applies only Art. 6(1), Art. 60a and Arts. 102-112,
# so Art. 11 does not reach it; the catalogue's scope rule of route annex1.b says so.
SECTION_B_ROUTE = "annex1.b"


def para(text: str, label: str | None = None) -> Block:
    """A paragraph; ``label`` is printed bold in front of the text."""
    return {"table": False, "label": label, "text": text}


def table(headers: list[str], rows: list[list[str]]) -> Block:
    """A table of text cells (every row as long as the headers)."""
    return {"table": True, "headers": headers, "rows": rows, "label": None, "text": ""}


def part(title: str, level: int, blocks: list[Block], section: str | None = None) -> Part:
    """A heading (level 1 or 2) with its blocks."""
    return {"title": title, "level": level, "blocks": blocks, "section": section}


def placeholder(section: Section) -> str:
    """``[annex4.2.c not recorded: <what to supply>]``."""
    return f"[{section.id} not recorded: {section.what_to_supply}]"


def _nr() -> str:
    return str(render.labels()["not_recorded"])


def _value(value: Any) -> str:
    """A fact as text; "not recorded" when the registry holds none."""
    if value is None or (isinstance(value, str) and not value.strip()) or value == []:
        return _nr()
    return str(value)


def _paragraphs(text: str) -> list[Block]:
    """Recorded text as paragraphs (split at blank lines; single line breaks stay)."""
    chunks = [c.strip("\n") for c in text.replace("\r\n", "\n").split("\n\n")]
    return [para(c) for c in chunks if c.strip()]


def _person(user: dict[str, Any] | None) -> str:
    if user is None:
        return _nr()
    if user["display_name"]:
        return f"{user['display_name']} ({user['username']})"
    return str(user["username"])


# --- who the provider is, and what the document is drawn up under ---------------------------------------


def effective_role(ctx: dict[str, Any]) -> str:
    """The role whose duties apply: the classification's effective role, else the system's AI Act role."""
    cls = ctx["classification"]
    return str(cls["effective_role"]) if cls else str(ctx["system"]["ai_act_role"])


def provider_name(ctx: dict[str, Any]) -> str:
    """The provider as the registry knows it: the vendor, or this organisation for a system built in-house."""
    system = ctx["system"]
    if system["vendor"]:
        return str(system["vendor"])
    if effective_role(ctx) == DEPLOYER:
        return _nr()
    return "this organisation, " + str(render.labels()["built_in_house"])


def section_b_rule(ctx: dict[str, Any]) -> dict[str, Any] | None:
    """The Art. 2(2) scope rule when the system is high-risk only as an Annex I Section B product."""
    cls = ctx["classification"]
    if cls is None:
        return None
    rules = get_catalog().ai_act.scope_rule_by_id
    for basis in cls["basis"]:
        rule = rules.get(basis["id"])
        if rule is not None and rule.route == SECTION_B_ROUTE:
            return {"id": rule.id, "cite": basis["cite"], "title": rule.title, "note": rule.note}
    return None


def intro(ctx: dict[str, Any]) -> str:
    """What the document is drawn up under: Art. 11, or for an Annex I Section B product, its sectoral act."""
    legal = ctx["document"]["legal_basis"]
    rule = section_b_rule(ctx)
    if rule is not None:
        legislation = [
            b["title"] or b["cite"] for b in ctx["classification"]["basis"] if b["id"].startswith("annex1.b")
        ]
        sectoral = ", ".join(str(x) for x in legislation) or "its Annex I Section B act"
        return (
            f"The system is high-risk as an Annex I Section B product ({sectoral}). {rule['cite']}: "
            f"{rule['title']}. Art. 11 of Regulation (EU) 2024/1689 therefore does not apply to it: the "
            "high-risk requirements reach the product through its sectoral act. This record follows the "
            f"items of Annex IV for reference ({legal}). Items recorded in the registry are printed; every "
            "other item names what to supply."
        )
    if effective_role(ctx) == DEPLOYER:
        return (
            "The technical documentation of Art. 11 of Regulation (EU) 2024/1689 is drawn up by the provider "
            f"({provider_name(ctx)}). This record follows the items of its Annex IV ({legal}): items the "
            "provider supplies are marked so, what this organisation recorded is printed, and the deployer's "
            "own duties (Art. 26, Art. 27) are listed at the end."
        )
    return (
        "Drawn up under Art. 11 of Regulation (EU) 2024/1689 and following the items of its Annex IV "
        f"({legal}). Items recorded in the registry are printed; every other item names what to supply."
    )


def version_label(ctx: dict[str, Any]) -> str:
    """The documented version, or that the system has none registered (never a to-be-completed text)."""
    version = ctx["version"]
    return f"version {version['version']}" if version else "no model version registered"


# --- registry facts --------------------------------------------------------------------------------------


def _fact_purpose(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    system = ctx["system"]
    return [
        table(
            ["Field", "Value"],
            [
                ["Intended purpose", _value(system["purpose"])],
                ["Intended use", _value(system["intended_use"])],
                ["Out-of-scope uses", _value(system["out_of_scope_uses"])],
            ],
        )
    ]


def _role_text(ctx: dict[str, Any]) -> str:
    system, cls = ctx["system"], ctx["classification"]
    text = str(render.label(system["ai_act_role"], "ai_act_role"))
    if cls and cls["effective_role"] != cls["ai_act_role"]:
        text += f", acting as {cls['effective_role']} (AI Act Art. 25)"
    return text


def _fact_provider(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    system = ctx["system"]
    vendor = system["vendor"] if system["vendor"] else render.labels()["built_in_house"]
    return [
        table(
            ["Field", "Value"],
            [
                ["Provider", provider_name(ctx)],
                ["Vendor", str(vendor)],
                ["AI Act role of the organisation", _role_text(ctx)],
            ],
        )
    ]


def _fact_owners(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    owners = ctx["owners"]
    return [
        table(
            ["Field", "Value"],
            [
                ["Business owner", _person(owners["business"])],
                ["Technical owner", _person(owners["technical"])],
            ],
        )
    ]


def _fact_version(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    version = ctx["version"]
    if version is None:
        return [para("no model version registered", label="Model version:")]
    return [
        table(
            ["Field", "Value"],
            [
                ["Version", str(version["version"])],
                ["Artifact digest", str(version["artifact_digest"])],
                ["Registered", f"{render.fmt_datetime(version['created_at'])} by {version['created_by']}"],
                ["Notes", _value(version["notes"])],
            ],
        )
    ]


def _fact_versions(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    if not ctx["versions"]:
        return [para("no model version registered", label="Model versions:")]
    return [
        table(
            ["Version", "Artifact digest", "Registered", "By", "Notes"],
            [
                [
                    str(v["version"]),
                    str(v["artifact_digest"]),
                    render.fmt_datetime(v["created_at"]),
                    str(v["created_by"]),
                    _value(v["notes"]),
                ]
                for v in ctx["versions"]
            ],
        )
    ]


def _fact_lifecycle(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    stage = render.label(ctx["system"]["lifecycle_stage"], "lifecycle_stage")
    return [para(str(stage), label="Lifecycle stage:")]


def _fact_site(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    system, zone = ctx["system"], ctx["security"]["zone"]
    site = system["site"] + (f" ({system['site_name']})" if system["site_name"] else "")
    line = _value(system["line"]) + (f" ({system['line_name']})" if system["line_name"] else "")
    where = f"{zone['code']} ({zone['name']}), Purdue level {zone['purdue_level']}" if zone else _nr()
    return [table(["Field", "Value"], [["Site", site], ["Line", line], ["IEC 62443 zone", where]])]


def _fact_training_data(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    system = ctx["system"]
    return [
        para(_value(system["training_data"]), label="Training data (registry):"),
        para(str(render.yes_no(system["personal_data"])), label="Personal data processed:"),
    ]


def _fact_human_oversight(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    return [para(_value(ctx["system"]["human_oversight"]), label="Human oversight (registry):")]


def _fact_limitations(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    return [para(_value(ctx["system"]["limitations"]), label="Limitations (registry):")]


def _fact_metrics(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    version = ctx["version"]
    if version is None:
        return [para("no model version registered", label="Metrics:")]
    if not version["metrics"]:
        return [para(f"{_nr()} for version {version['version']}", label="Metrics:")]
    return [
        para(f"recorded for version {version['version']}:", label="Metrics"),
        table(["Metric", "Value"], [[str(m["name"]), str(m["value"])] for m in version["metrics"]]),
    ]


def _risk_table(risks: list[dict[str, Any]]) -> Block:
    return table(
        ["Risk", "NIST AI RMF", "Mitigation"],
        [
            [str(r["title"]), ", ".join(x["id"] for x in r["nist_refs"]) or _nr(), _value(r["mitigation"])]
            for r in risks
        ],
    )


def _fact_risk_assessment(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    risk = ctx["risk"]
    if risk is None:
        return [para(f"{_nr()}: no NIST AI RMF risk assessment", label="Risk assessment:")]
    blocks = [
        para(
            f"{render.label(risk['tier'], 'risk_tier')} "
            f"(impact {risk['impact']} {_value(risk['impact_label'])}, "
            f"likelihood {risk['likelihood']} {_value(risk['likelihood_label'])}), assessed "
            f"{render.fmt_datetime(risk['created_at'])} by {risk['assessor']} under the NIST AI RMF",
            label="Risk tier:",
        )
    ]
    if risk["risks"]:
        blocks.append(_risk_table(risk["risks"]))
    return blocks


def _fact_nist_checklist(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    return [
        para("AI RMF checklist coverage per function:"),
        table(
            ["Function", "Implemented", "In progress", "Not started", "Not applicable", "Coverage"],
            [
                [
                    str(f["function"]),
                    str(f["implemented"]),
                    str(f["in_progress"]),
                    str(f["not_started"]),
                    str(f["not_applicable"]),
                    f"{f['coverage'] * 100:.0f} %",
                ]
                for f in ctx["nist_checklist"]["coverage"]
            ],
        ),
    ]


def _fact_security(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    security = ctx["security"]
    zone = security["zone"]
    if zone is None:
        return [para(_nr(), label="IEC 62443 zone:")]
    gap = ", ".join(security["gap"]) if security["gap"] else "none"
    if security["unassessed"]:
        gap += "; not assessed where the zone sets a target: " + ", ".join(security["unassessed"])
    if not security["sl_achieved_recorded"]:
        gap += f" (achieved levels {_nr()})"
    not_assessed = str(render.labels()["not_assessed"])
    return [
        para(
            f"{security['standard']}; zone {zone['code']} ({zone['name']}), "
            f"Purdue level {zone['purdue_level']}; security-level gap: {gap}",
            label="Zone model:",
        ),
        table(
            ["FR", "Requirement", "SL-T", "SL-A", "Gap"],
            [
                [
                    str(row["fr"]),
                    str(row["name"]),
                    _value(row["target"]),
                    str(row["achieved"]) if row["achieved"] is not None else not_assessed,
                    "yes" if row["gap"] else "",
                ]
                for row in security["rows"]
            ],
        ),
    ]


def _fact_classification_history(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    history = ctx["classification_history"]
    if not history:
        return [para(_nr(), label="Classification history:")]
    return [
        table(
            ["Date", "Class", "Basis", "Catalogue", "Assessor"],
            [
                [
                    render.fmt_datetime(c["created_at"]),
                    str(render.label(c["ai_act_class"], "ai_act_class")),
                    render.join_cites(c["basis"]) or _nr(),
                    str(c["catalog_version"]),
                    str(c["assessor"]),
                ]
                for c in history
            ],
        )
    ]


def _fact_incidents(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    incidents = extra["incidents"]
    if not incidents:
        return [para("none recorded", label="Incidents:")]
    return [
        table(
            ["Incident", "Occurred", "Kind", "Serious", "Status", "Title"],
            [
                [
                    i.id,
                    render.fmt_datetime(i.occurred_at),
                    str(i.kind),
                    str(render.yes_no(i.serious)),
                    str(i.status),
                    i.title,
                ]
                for i in incidents
            ],
        )
    ]


def _fact_approvals(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    approvals = ctx["approvals"]
    if not approvals:
        return [para("none recorded", label="Release approvals:")]
    return [
        para("release approvals with their sign-offs (details under Registry records):", label="Sign-offs"),
        table(
            ["Approval", "Version", "Environment", "State", "Signed by"],
            [
                [
                    str(a["id"]),
                    str(a["version"]),
                    str(a["environment"]),
                    str(render.label(a["state"], "approval_state")),
                    ", ".join(f"{s['signer']} ({s['role']})" for s in a["signoffs"]) or "none yet",
                ]
                for a in approvals
            ],
        ),
    ]


def _fact_standards(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    used = []
    if ctx["security"]["zone"]:
        used.append(f"{ctx['security']['standard']} (zones and security levels, see 2(h))")
    if ctx["risk"]:
        used.append("NIST AI RMF 1.0 (risk assessment, see 5)")
    return [para("; ".join(used) if used else _nr(), label="Standards the registry applies:")]


def _fact_monitoring(ctx: dict[str, Any], extra: dict[str, Any]) -> list[Block]:
    hours = ctx["system"]["monitoring_interval_hours"]
    reports: list[MonitoringReport] = extra["monitoring"]
    latest = reports[0] if reports else None
    return [
        para(f"every {hours} hours" if hours else _nr(), label="Monitoring reports expected:"),
        para(
            f"{len(reports)}; latest {render.fmt_datetime(latest.observed_at)} ({latest.status}, version "
            f"{latest.version})"
            if latest
            else "none",
            label="Monitoring reports received:",
        ),
    ]


FACTS: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[Block]]] = {
    "purpose": _fact_purpose,
    "provider": _fact_provider,
    "owners": _fact_owners,
    "version": _fact_version,
    "versions": _fact_versions,
    "lifecycle": _fact_lifecycle,
    "site": _fact_site,
    "training_data": _fact_training_data,
    "human_oversight": _fact_human_oversight,
    "limitations": _fact_limitations,
    "metrics": _fact_metrics,
    "risk_assessment": _fact_risk_assessment,
    "nist_checklist": _fact_nist_checklist,
    "security": _fact_security,
    "classification_history": _fact_classification_history,
    "incidents": _fact_incidents,
    "approvals": _fact_approvals,
    "standards": _fact_standards,
    "monitoring": _fact_monitoring,
}


# --- the parts -------------------------------------------------------------------------------------------


def classification_part(ctx: dict[str, Any]) -> Part:
    """The AI Act classification: class, rationale, basis with its meaning, obligations with conditions."""
    cls = ctx["classification"]
    if cls is None:
        return part(
            "AI Act classification", 1, [para("The system has not been classified under the AI Act.")]
        )
    basis = render.join_cites(cls["basis"])
    classified = (
        f"{render.fmt_datetime(cls['created_at'])} by {cls['assessor']} for the {cls['ai_act_role']} role"
    )
    if cls["effective_role"] != cls["ai_act_role"]:
        classified += f", acting as {cls['effective_role']} (AI Act Art. 25)"
    classified += f", catalogue {cls['catalog_version']}"
    blocks = [
        para(
            str(render.label(cls["ai_act_class"], "ai_act_class")) + (f" ({basis})" if basis else ""),
            label="Class:",
        ),
        para(_value(cls["rationale"]), label="Rationale:"),
        para(classified, label="Classified:"),
    ]
    if cls["basis"]:
        blocks.append(table(["Basis", "Meaning"], [[b["cite"], str(b["title"])] for b in cls["basis"]]))
    if cls["obligations"]:
        as_of = render.fmt_date(ctx["document"]["covered_until"])
        blocks.append(
            table(
                ["Article", "Obligation", "Condition", "Applies from", f"In force on {as_of}"],
                [
                    [
                        o["cite"],
                        str(o["title"]),
                        o["condition"] or "none (binds without condition)",
                        render.fmt_date(o["applies_from"]),
                        str(render.yes_no(o["in_force"])),
                    ]
                    for o in cls["obligations"]
                ],
            )
        )
    return part("AI Act classification", 1, blocks)


def section_blocks(
    section: Section,
    ctx: dict[str, Any],
    extra: dict[str, Any],
    recorded: dict[str, Any] | None,
) -> list[Block]:
    """What one Annex IV section prints: recorded text or placeholder, evidence, registry facts."""
    blocks: list[Block] = [para(f"{section.id} ({section.cite})", label="Section:")]
    deployer = effective_role(ctx) == DEPLOYER
    text = recorded["text"] if recorded else ""
    if deployer and section.provider_supplies:
        blocks.append(para(f"supplied by the provider ({provider_name(ctx)})", label="Source:"))
    if text:
        blocks.extend(_paragraphs(text))
    elif not (deployer and section.provider_supplies):
        blocks.append(para(placeholder(section)))
    evidence = recorded["evidence"] if recorded else []
    if evidence:
        blocks.append(
            table(
                ["Evidence", "Title", "File", "SHA-256"],
                [[e["id"], e["title"], e["filename"], e["sha256"]] for e in evidence],
            )
        )
    for fact in section.from_registry:
        blocks.extend(FACTS[fact](ctx, extra))
    return blocks


def _recorded(session: Session, system_id: str) -> dict[str, dict[str, Any]]:
    rows = technical_file.recorded_sections(session, system_id)
    found = technical_file.evidence_of(session, sorted({e for r in rows.values() for e in r.evidence}))
    out = {}
    for sid, row in rows.items():
        items = [
            {"id": e, "title": found[e].title, "filename": found[e].filename, "sha256": found[e].sha256}
            if e in found
            else {"id": e, "title": _nr(), "filename": _nr(), "sha256": _nr()}
            for e in row.evidence
        ]
        out[sid] = {"text": row.text, "evidence": items}
    return out


def _requirement_status(session: Session, system_id: str, as_of: date) -> dict[str, str]:
    """Status on ``as_of`` (``effective_status``: ``met`` only while current evidence supports it) of the
    system's AI Act requirements by obligation id (no sync: the rows as stored)."""
    from app.compliance import service as compliance
    from app.compliance.frameworks import get_frameworks

    rows = session.exec(
        select(Requirement).where(Requirement.system_id == system_id, Requirement.framework == "ai_act")
    ).all()
    links = compliance.evidence_links(session, system_id, as_of)
    frameworks = get_frameworks()
    return {
        r.control: str(
            compliance.effective_status(r.status, links.current(f"{r.framework}:{r.control}", frameworks))
        )
        for r in rows
    }


def deployer_part(ctx: dict[str, Any], status: dict[str, str]) -> Part:
    """The deployer's own duties from its classification and requirements (Art. 26, Art. 27 FRIA)."""
    cls = ctx["classification"]
    obligations = cls["obligations"] if cls else []
    blocks = [
        para(
            "Art. 26 binds the deployer of a high-risk system (use per the instructions, human oversight, "
            "input data, monitoring, logs, informing workers and affected people); Art. 27 requires some "
            "deployers to assess the impact on fundamental rights before first use."
        )
    ]
    if obligations:
        blocks.append(
            table(
                ["Article", "Duty", "Condition", "Applies from", "Status"],
                [
                    [
                        o["cite"],
                        str(o["title"]),
                        o["condition"] or "none (binds without condition)",
                        render.fmt_date(o["applies_from"]),
                        status.get(o["id"], "open"),
                    ]
                    for o in obligations
                ],
            )
        )
    else:
        blocks.append(para(f"{_nr()}: the classification lists no duty for this deployer."))
    if not any(o["id"] == "art27" for o in obligations):
        blocks.append(
            para(
                "not among this system's duties (Art. 27(1): not for Annex III point 2, and otherwise for "
                "public bodies, private entities providing public services and deployers of Annex III "
                "5(b) and 5(c) systems)",
                label="Fundamental rights impact assessment (Art. 27):",
            )
        )
    return part("Deployer's own duties (Art. 26, Art. 27)", 1, blocks)


def approvals_parts(ctx: dict[str, Any]) -> list[Part]:
    """The release approvals with every sign-off and its hash."""
    approvals = ctx["approvals"]
    if not approvals:
        return [part("Registry records: release approvals and sign-offs", 1, [para(f"Approvals: {_nr()}.")])]
    parts = [part("Registry records: release approvals and sign-offs", 1, [])]
    for a in approvals:
        status = (
            f"requested {render.fmt_datetime(a['created_at'])} by {a['requester']}; valid until "
            f"{render.fmt_datetime(a['valid_until'])}; required sign-offs: "
            f"{', '.join(a['required_signoffs']) or _nr()}"
        )
        if a["missing_signoffs"]:
            status += "; missing: " + ", ".join(a["missing_signoffs"])
        blocks = [
            para(status, label="Status:"),
            para(str(a["justification"]), label="Justification:"),
            para(_value(a["content_hash"]), label="Request content hash:"),
        ]
        if a["signoffs"]:
            blocks.append(
                table(
                    ["Role", "Signer", "Decision", "Signed", "Hash"],
                    [
                        [
                            s["role"],
                            s["signer"],
                            str(render.label(s["decision"], "decision")),
                            render.fmt_datetime(s["created_at"]),
                            s["hash"],
                        ]
                        for s in a["signoffs"]
                    ],
                )
            )
        else:
            blocks.append(para("Sign-offs: none yet."))
        title = (
            f"{a['id']}: version {a['version']}, {a['environment']}, "
            f"{render.label(a['state'], 'approval_state')}"
        )
        parts.append(part(title, 2, blocks))
    return parts


def technical_context(session: Session, ctx: dict[str, Any], annex4: Annex4 | None = None) -> dict[str, Any]:
    """Everything the Annex IV documentation prints, as parts both formats lay out the same way."""
    annex4 = annex4 or get_annex4()
    system_id = ctx["system"]["id"]
    recorded = _recorded(session, system_id)
    extra = {
        "incidents": list(
            session.exec(
                select(Incident)
                .where(Incident.system_id == system_id)
                .order_by(col(Incident.occurred_at), col(Incident.id))
            ).all()
        ),
        "monitoring": list(
            session.exec(
                select(MonitoringReport)
                .where(MonitoringReport.system_id == system_id)
                .order_by(col(MonitoringReport.observed_at).desc(), col(MonitoringReport.id).desc())
            ).all()
        ),
    }
    parts = [classification_part(ctx)]
    for point in annex4.points:
        sections = [s for s in annex4.sections if s.point == point.point]
        if not sections:
            continue
        heading = f"{point.point}. {point.title}"
        if len(sections) == 1 and sections[0].letter is None:
            parts.append(
                part(
                    heading,
                    1,
                    section_blocks(sections[0], ctx, extra, recorded.get(sections[0].id)),
                    sections[0].id,
                )
            )
            continue
        parts.append(part(heading, 1, []))
        for s in sections:
            parts.append(
                part(f"({s.letter}) {s.title}", 2, section_blocks(s, ctx, extra, recorded.get(s.id)), s.id)
            )
    deployer = effective_role(ctx) == DEPLOYER
    if deployer:
        # as of the covered event (the same data gives the same document), not the clock
        as_of = ctx["document"]["covered_until"]
        as_of_day = as_of.date() if as_of is not None else date.today()
        parts.append(deployer_part(ctx, _requirement_status(session, system_id, as_of_day)))
    parts.extend(approvals_parts(ctx))
    recorded_ids = [s.id for s in annex4.sections if recorded.get(s.id, {}).get("text")]
    return {
        "intro": intro(ctx),
        "version_label": version_label(ctx),
        "deployer": deployer,
        "provider": provider_name(ctx),
        "section_b": section_b_rule(ctx) is not None,
        "parts": parts,
        "recorded": recorded_ids,
        "missing": [s.id for s in annex4.sections if s.id not in recorded_ids],
    }
