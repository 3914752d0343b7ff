"""The content of the model card, built once for every format (Markdown, HTML, Word and PDF).

``card_context`` turns the registry (the document context of ``service.document_context``) into *parts*, as
``annex4`` does for the technical documentation: a heading and its blocks, each a paragraph (an optional
bold label and a text) or a table of text cells. The templates only lay the parts out, so every format
prints the same content by construction.

The sections follow the Hugging Face model card template (Model Details, Uses, Bias, Risks, and
Limitations, Training Details, Evaluation, Environmental Impact, Technical Specifications, Model Card
Contact) and add Mitchell et al. (2019) factors, ethical considerations and caveats, the AI Act
classification, open serious incidents and the approvals. Nothing is made up: what the registry does not
hold reads "not recorded" (a whole section: "Not recorded in the registry.").

Results by group: a metric named ``<metric>__<factor>__<group>`` (for example ``recall__line__BODY1``) is
the metric measured on one group of an evaluation factor; any other name is a result on the whole
evaluation data.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from app.classification.catalog import cite, get_catalog
from app.documents import render
from app.documents.annex4 import (
    Block,
    Part,
    approvals_parts,
    classification_part,
    para,
    part,
    provider_name,
    table,
)
from app.incidents.models import Incident, IncidentStatus
from app.monitoring.models import Deployment

GROUP_SEPARATOR = "__"
NOT_IN_REGISTRY = "Not recorded in the registry."
# Hugging Face task for a system whose task the registry does not name (the Hub's own "Other" task).
OTHER_TASK = "other"


def _nr() -> str:
    return str(render.labels()["not_recorded"])


def _value(value: Any) -> str:
    """The value as text, or "not recorded"."""
    return str(render.recorded(value))


def _person(user: dict[str, Any] | None) -> str:
    if user is None:
        return _nr()
    name = f"{user['display_name']} ({user['username']})" if user["display_name"] else user["username"]
    return f"{name}, {user['email']}" if user["email"] else str(name)


def _named(code: str, name: str | None) -> str:
    """``BODY1 (Body shop 1)``; the code alone when the name is missing or the same."""
    return f"{code} ({name})" if name and name != code else code


def split_metric(name: str) -> tuple[str, str, str] | None:
    """``recall__line__BODY1`` -> (``recall``, ``line``, ``BODY1``); None for a metric on all the data."""
    pieces = name.split(GROUP_SEPARATOR)
    if len(pieces) == 3 and all(pieces):
        return pieces[0], pieces[1], pieces[2]
    return None


def metrics(version: dict[str, Any] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The version's metrics: those on the whole evaluation data, and those by group."""
    overall, grouped = [], []
    for m in version["metrics"] if version else []:
        split = split_metric(m["name"])
        if split is None:
            overall.append(m)
        else:
            grouped.append({"metric": split[0], "factor": split[1], "group": split[2], "value": m["value"]})
    return overall, grouped


def _class_text(cls: dict[str, Any]) -> str:
    text = str(render.label(cls["ai_act_class"], "ai_act_class"))
    return f"{text} ({render.join_cites(cls['basis'])})" if cls["basis"] else text


def _rows_of(session: Session, system_id: str) -> tuple[list[Deployment], list[Incident]]:
    """The latest deployment per environment, site and line (newest first), and the open incidents."""
    deployments = session.exec(
        select(Deployment)
        .where(Deployment.system_id == system_id)
        .order_by(col(Deployment.deployed_at).desc(), col(Deployment.id).desc())
    ).all()
    latest: dict[tuple[str, str, str | None], Deployment] = {}
    for d in deployments:
        latest.setdefault((str(d.environment), d.site, d.line), d)
    incidents = session.exec(
        select(Incident)
        .where(Incident.system_id == system_id, Incident.status == IncidentStatus.open)
        .order_by(col(Incident.aware_at), col(Incident.id))
    ).all()
    return list(latest.values()), list(incidents)


# --- the sections --------------------------------------------------------------------------------------


def details_part(ctx: dict[str, Any]) -> Part:
    """Model Details: who made it, what it is, which version (Hugging Face; Mitchell et al. 4.1)."""
    system, version = ctx["system"], ctx["version"]
    where = _named(system["site"], system["site_name"])
    rows = [
        ["System ID", system["id"]],
        ["Name", system["name"]],
        ["Developed by (provider)", provider_name(ctx)],
        ["Model type (from the intended purpose)", system["purpose"]],
        ["License", _value(system["license"])],
        ["Model version", version["version"] if version else _nr()],
        ["Artifact digest", version["artifact_digest"] if version else _nr()],
        [
            "Version registered",
            f"{render.fmt_datetime(version['created_at'])} by {version['created_by']}" if version else _nr(),
        ],
        ["Version notes", _value(version["notes"] if version else None)],
        ["Site", where],
        ["Line", _value(system["line"])],
        ["AI Act role", str(render.label(system["ai_act_role"], "ai_act_role"))],
        ["Lifecycle stage", str(render.label(system["lifecycle_stage"], "lifecycle_stage"))],
        ["Processes personal data", str(render.yes_no(system["personal_data"]))],
        ["Business owner", _person(ctx["owners"]["business"])],
        ["Technical owner", _person(ctx["owners"]["technical"])],
    ]
    return part("Model Details", 1, [para(system["purpose"]), table(["Field", "Value"], rows)])


def out_of_scope(ctx: dict[str, Any]) -> list[Block]:
    """What the card rules out: the recorded uses, a use beyond the purpose, and the Art. 5 practices."""
    system, cls = ctx["system"], ctx["classification"]
    blocks = [para(_value(system["out_of_scope_uses"]), label="Recorded out-of-scope uses:")]
    if cls is None:
        beyond = (
            f"Any use other than the intended purpose ({system['purpose']}). The system has not been "
            "classified under the AI Act, so no use of it is cleared under the Act yet."
        )
    else:
        beyond = (
            f"Any use other than the intended purpose ({system['purpose']}). The AI Act classification, "
            f"{_class_text(cls)}, holds for that purpose only; another use is a new intended purpose and "
            "needs a new classification first (and can make its operator a provider, Art. 25(1)(c))."
        )
    blocks.append(para(beyond, label="Beyond the intended purpose:"))
    practices = get_catalog().ai_act.prohibited_practices
    blocks.append(
        para(
            "Any use that is a practice prohibited by AI Act Art. 5(1): "
            + "; ".join(f"{cite(p.id)} {p.title}" for p in practices)
            + ".",
            label="Prohibited practices:",
        )
    )
    return blocks


def uses_part(ctx: dict[str, Any], deployments: list[Deployment]) -> list[Part]:
    """Uses: direct (the intended purpose), downstream (deployments and the line), out-of-scope."""
    system = ctx["system"]
    direct = [
        para(system["purpose"], label="Intended purpose:"),
        para(_value(system["intended_use"]), label="Intended use:"),
    ]
    line = _named(system["line"], system["line_name"]) if system["line"] else None
    downstream = [para(_value(line), label="Production line:")]
    if deployments:
        downstream.append(
            table(
                ["Environment", "Site", "Line", "Zone", "Version", "Artifact digest", "Deployed"],
                [
                    [
                        str(d.environment),
                        d.site,
                        _value(d.line),
                        _value(d.zone),
                        d.version,
                        d.artifact_digest,
                        render.fmt_datetime(d.deployed_at),
                    ]
                    for d in deployments
                ],
            )
        )
    else:
        downstream.append(para(_nr(), label="Deployments:"))
    return [
        part("Uses", 1, []),
        part("Direct Use", 2, direct),
        part("Downstream Use", 2, downstream),
        part("Out-of-Scope Use", 2, out_of_scope(ctx)),
    ]


def risks_parts(ctx: dict[str, Any]) -> list[Part]:
    """Bias, Risks, and Limitations with the NIST AI RMF risks; Recommendations are their mitigations."""
    system, risk = ctx["system"], ctx["risk"]
    blocks = [para(_value(system["limitations"]), label="Known limitations:")]
    recommendations: list[Block] = []
    if risk is None:
        blocks.append(para(f"{_nr()}: no NIST AI RMF risk assessment.", label="Risks:"))
    else:
        blocks.append(
            para(
                f"{render.label(risk['tier'], 'risk_tier')} (impact {risk['impact']} "
                f"{_value(risk['impact_label'])}, likelihood {risk['likelihood']} "
                f"{_value(risk['likelihood_label'])}); assessed {render.fmt_datetime(risk['created_at'])} "
                f"by {risk['assessor']}",
                label="NIST AI RMF risk tier:",
            )
        )
        if risk["risks"]:
            blocks.append(
                table(
                    ["Risk", "Characteristic", "NIST AI RMF", "Mitigation"],
                    [
                        [
                            str(r["title"]),
                            _value(r["characteristic"]),
                            _value(", ".join(ref["id"] for ref in r["nist_refs"])),
                            _value(r["mitigation"]),
                        ]
                        for r in risk["risks"]
                    ],
                )
            )
            recommendations = [
                para(str(r["mitigation"]), label=f"{r['title']}:") for r in risk["risks"] if r["mitigation"]
            ]
        else:
            blocks.append(para(_nr(), label="Risks:"))
    recommendations.append(para(_value(system["human_oversight"]), label="Human oversight:"))
    return [part("Bias, Risks, and Limitations", 1, blocks), part("Recommendations", 2, recommendations)]


def training_parts(ctx: dict[str, Any]) -> list[Part]:
    """Training Details: the recorded training data and what the version notes say."""
    system, version = ctx["system"], ctx["version"]
    return [
        part("Training Details", 1, []),
        part("Training Data", 2, [para(_value(system["training_data"]))]),
        part(
            "Training Procedure",
            2,
            [
                para(_value(version["notes"] if version else None), label="Version notes:"),
                para(NOT_IN_REGISTRY, label="Preprocessing, hyperparameters, speeds and sizes:"),
            ],
        ),
    ]


def evaluation_parts(ctx: dict[str, Any]) -> list[Part]:
    """Evaluation: testing data, factors, metrics and results overall and by group."""
    overall, grouped = metrics(ctx["version"])
    names = sorted({m["name"] for m in overall} | {g["metric"] for g in grouped})
    factors = sorted({g["factor"] for g in grouped})
    testing = [
        para(NOT_IN_REGISTRY, label="Testing data:"),
        para(
            ", ".join(factors) if factors else "none recorded (no metric of this version is by group)",
            label="Factors:",
        ),
        para(_value(", ".join(names)), label="Metrics:"),
    ]
    results: list[Block] = (
        [table(["Metric", "Value"], [[m["name"], str(m["value"])] for m in overall])]
        if overall
        else [para(_nr() if not grouped else "none on the whole evaluation data", label="Metrics:")]
    )
    parts = [
        part("Evaluation", 1, []),
        part("Testing Data, Factors & Metrics", 2, testing),
        part("Results", 2, results),
    ]
    if grouped:
        parts.append(
            part(
                "Results by group",
                2,
                [
                    table(
                        ["Metric", "Factor", "Group", "Value"],
                        [[g["metric"], g["factor"], g["group"], str(g["value"])] for g in grouped],
                    )
                ],
            )
        )
    return parts


def environment_part() -> Part:
    """Environmental Impact: the registry holds no compute or emissions figures, and none are invented."""
    return part(
        "Environmental Impact",
        1,
        [
            para(
                NOT_IN_REGISTRY + " Hardware type, hours used, cloud provider, compute region and carbon "
                "emitted are not held by the registry, so none are stated."
            )
        ],
    )


def _sl_vector(rows: list[dict[str, Any]], key: str) -> str:
    values = [row[key] for row in rows]
    if all(v is None for v in values):
        return _nr()
    return (
        "{"
        + ", ".join("-" if v is None else str(v) for v in values)
        + "} ("
        + ", ".join(row["fr"] for row in rows)
        + ")"
    )


def technical_part(ctx: dict[str, Any]) -> list[Part]:
    """Technical Specifications: the artifact, its IEC 62443 zone and security-level vectors."""
    version, security = ctx["version"], ctx["security"]
    blocks = [
        para(version["artifact_digest"] if version else _nr(), label="Artifact digest:"),
        para(NOT_IN_REGISTRY, label="Model architecture and objective:"),
    ]
    zone = security["zone"]
    if zone is None:
        infra = [para(_nr(), label="Zone:")]
    else:
        gap = ", ".join(security["gap"]) if security["gap"] else "none"
        if security["unassessed"]:
            gap += "; not assessed where the zone sets a target: " + ", ".join(security["unassessed"])
        rows = security["rows"]
        infra = [
            para(
                f"{_named(zone['code'], zone['name'])}, Purdue level {zone['purdue_level']}"
                + (f": {zone['purdue_title']}" if zone["purdue_title"] else ""),
                label="Zone:",
            ),
            para(_sl_vector(rows, "target"), label="IEC 62443 SL-T vector:"),
            para(_sl_vector(rows, "achieved"), label="IEC 62443 SL-A vector:"),
            para(gap, label="Security-level gap:"),
            table(
                ["FR", "Requirement", "SL-T", "SL-A", "Gap"],
                [
                    [
                        row["fr"],
                        row["name"],
                        _value(row["target"]),
                        str(render.labels()["not_assessed"])
                        if row["achieved"] is None
                        else str(row["achieved"]),
                        "yes" if row["gap"] else "",
                    ]
                    for row in rows
                ],
            ),
        ]
    return [part("Technical Specifications", 1, blocks), part("Compute Infrastructure", 2, infra)]


def ai_act_part(ctx: dict[str, Any]) -> Part:
    """The AI Act class, its basis and rationale, and the obligations (as the technical documentation)."""
    title = "EU AI Act Classification"
    if ctx["classification"] is None:
        return part(title, 1, [para(f"{_nr()}: the system has not been classified under the AI Act.")])
    return {**classification_part(ctx), "title": title}


def incidents_part(incidents: list[Incident]) -> Part:
    """Open serious incidents (AI Act Art. 73), and how many open incidents are not serious."""
    serious = [i for i in incidents if i.serious]
    blocks: list[Block] = []
    if serious:
        blocks.append(
            table(
                ["Incident", "Title", "Kind", "Aware since", "Report deadline", "Reported"],
                [
                    [
                        i.id,
                        i.title,
                        i.kind.value,
                        render.fmt_datetime(i.aware_at),
                        render.fmt_datetime(i.report_deadline, "none set"),
                        render.fmt_datetime(i.reported_at, "not yet"),
                    ]
                    for i in serious
                ],
            )
        )
    else:
        blocks.append(para("none recorded", label="Open serious incidents:"))
    blocks.append(para(str(len(incidents) - len(serious)), label="Other open incidents:"))
    return part("Open Serious Incidents", 1, blocks)


def mitchell_parts(ctx: dict[str, Any]) -> list[Part]:
    """Mitchell et al. (2019) factors, ethical considerations, caveats and recommendations."""
    system, cls, risk = ctx["system"], ctx["classification"], ctx["risk"]
    _, grouped = metrics(ctx["version"])
    zone = ctx["security"]["zone"]
    relevant = [f"site {system['site']}"]
    if system["line"]:
        relevant.append(f"line {system['line']}")
    if zone:
        relevant.append(f"zone {zone['code']} (Purdue level {zone['purdue_level']})")
    evaluated = sorted({f"{g['factor']} ({g['group']})" for g in grouped})
    factors = [
        para(", ".join(relevant), label="Relevant factors (where the system runs):"),
        para(", ".join(evaluated) if evaluated else "none recorded", label="Evaluation factors:"),
    ]
    ethics = [para(str(render.yes_no(system["personal_data"])), label="Processes personal data:")]
    if cls is not None:
        ethics.append(para(str(render.yes_no(cls["profiling"])), label="Profiling of natural persons:"))
        if cls["annex3_uses"]:
            ethics.append(
                para(
                    "; ".join(f"{u['cite']} {u['title']}" for u in cls["annex3_uses"]),
                    label="Annex III uses:",
                )
            )
    ethics.append(para(_value(system["human_oversight"]), label="Human oversight:"))
    caveats = [para(_value(system["limitations"]), label="Caveats:")]
    mitigations = [r for r in (risk["risks"] if risk else []) if r["mitigation"]]
    caveats.append(
        para(
            f"{len(mitigations)} mitigations of the NIST AI RMF risks, listed under Recommendations."
            if mitigations
            else _nr(),
            label="Recommendations:",
        )
    )
    return [
        part("Factors, Ethical Considerations, Caveats (Mitchell et al.)", 1, []),
        part("Factors", 2, factors),
        part("Ethical Considerations", 2, ethics),
        part("Caveats and Recommendations", 2, caveats),
    ]


def approval_parts(ctx: dict[str, Any]) -> list[Part]:
    """The approvals of the documented version with their sign-offs."""
    if not ctx["version_approvals"]:
        return [part("Approval Status and Sign-offs", 1, [para(f"Approvals: {_nr()} for this version.")])]
    parts = approvals_parts({**ctx, "approvals": ctx["version_approvals"]})
    return [part("Approval Status and Sign-offs", 1, []), *parts[1:]]


def contact_part(ctx: dict[str, Any]) -> Part:
    """Model Card Contact: the technical owner first, then the business owner."""
    return part(
        "Model Card Contact",
        1,
        [
            para(_person(ctx["owners"]["technical"]), label="Technical owner:"),
            para(_person(ctx["owners"]["business"]), label="Business owner:"),
        ],
    )


# --- metadata ------------------------------------------------------------------------------------------


def hf_metadata(ctx: dict[str, Any]) -> dict[str, Any]:
    """Hugging Face model-card metadata (README front matter) from the registry, omitting what it lacks.

    ``license`` only when recorded and no ``pipeline_tag`` (the registry names no task); ``model-index``
    when the version has metrics, under the Hub's ``other`` task, the evaluation data named by system and
    version (typed text stays out of the front matter but for the name), each group as a dataset ``config``.
    """
    system, version = ctx["system"], ctx["version"]
    meta: dict[str, Any] = {}
    if system["license"]:
        meta["license"] = system["license"]
    tags = ["aireg", "eu-ai-act"]
    if ctx["classification"]:
        tags.append(f"ai-act-{ctx['classification']['ai_act_class'].replace('_', '-')}")
    if ctx["risk"]:
        tags.append(f"nist-risk-{ctx['risk']['tier']}")
    if ctx["security"]["zone"]:
        tags.append("iec-62443")
    meta["tags"] = tags
    overall, grouped = metrics(version)
    if version and (overall or grouped):
        slices: dict[str | None, list[dict[str, Any]]] = {}
        if overall:
            slices[None] = [{"type": m["name"], "name": m["name"], "value": m["value"]} for m in overall]
        for g in grouped:
            config = f"{g['factor']}={g['group']}"
            slices.setdefault(config, []).append(
                {"type": g["metric"], "name": f"{g['metric']} ({config})", "value": g["value"]}
            )
        dataset = f"{system['name']} {version['version']} evaluation data"
        # a fresh mapping per result: YAML would otherwise write anchors, and its "&" is escaped in Markdown
        results = [
            {
                "task": {"type": OTHER_TASK},
                "dataset": {"type": system["id"], "name": dataset, **({"config": config} if config else {})},
                "metrics": entries,
            }
            for config, entries in sorted(slices.items(), key=lambda item: item[0] or "")
        ]
        meta["model-index"] = [
            {"name": f"{system['id']} {system['name']} {version['version']}", "results": results}
        ]
    aireg: dict[str, Any] = {"system_id": system["id"], "site": system["site"]}
    if version:
        aireg["version"] = version["version"]
        aireg["artifact_digest"] = version["artifact_digest"]
    if ctx["classification"]:
        aireg["ai_act_class"] = ctx["classification"]["ai_act_class"]
    if ctx["risk"]:
        aireg["risk_tier"] = ctx["risk"]["tier"]
    aireg["covered_seq"] = ctx["document"]["covered_seq"]
    meta["aireg"] = aireg
    return meta


def card_context(session: Session, ctx: dict[str, Any]) -> dict[str, Any]:
    """Everything the model card prints, as parts every format lays out the same way."""
    deployments, incidents = _rows_of(session, ctx["system"]["id"])
    parts = [
        details_part(ctx),
        *uses_part(ctx, deployments),
        *risks_parts(ctx),
        *training_parts(ctx),
        *evaluation_parts(ctx),
        environment_part(),
        *technical_part(ctx),
        ai_act_part(ctx),
        incidents_part(incidents),
        *mitchell_parts(ctx),
        *approval_parts(ctx),
        contact_part(ctx),
    ]
    return {"parts": parts}
