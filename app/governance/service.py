"""The governance pack: the organisation's AI policy and a RACI matrix, built from ``policies/`` (no HTTP).

What the pack states is read, on every pack, from the files that decide it: the policy statements from
``ai_policy.yaml``, the roles and their permissions from ``policy.csv`` (the loader the Casbin enforcer
uses), who signs what from the sign-off rule table in force (``app.approvals.rules``), the adopted
frameworks from the catalogue in force, and how permissions become R, A, C and I from ``raci.yaml``. So
the pack changes when the rules do. The output holds no wall-clock time (the DOCX is stamped with the
policy's effective date), so the same files always give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from app.approvals.rules import When, add_months, get_rules
from app.audit import service as audit
from app.classification.catalog import CatalogError, _display, _duplicates, _parse, _read_yaml
from app.compliance.frameworks import get_frameworks
from app.compliance.service import ORGANISATION
from app.db import session_scope
from app.documents import pdf, render
from app.documents.models import DOWNLOAD_ACTION
from app.errors import AppError
from app.governance.models import (
    DOCUMENT,
    AIPolicy,
    FrameworkEntry,
    GovernancePack,
    PackDocument,
    PackFormat,
    RaciAssignment,
    RaciRow,
    RaciSpec,
    RoleEntry,
    RuleEntry,
    SignoffRight,
    SourceFile,
)
from app.identity.authz import PolicyError, read_policy_lines
from app.identity.models import Role
from app.settings import get_settings

POLICY_FILE = "ai_policy.yaml"
RACI_FILE = "raci.yaml"
PERMISSIONS_FILE = "policy.csv"
TEMPLATE = "governance_pack.md.j2"
HTML_TEMPLATE = "governance_pack.html.j2"  # printed to PDF
LEGEND = [
    ("R", "responsible: policy.csv grants the role the permission to take the decision (or to sign it)"),
    ("A", "accountable: the role raci.yaml names as owner of the decision"),
    ("C", "consulted: policy.csv grants the role a permission raci.yaml lists as consulted"),
    ("I", "informed: policy.csv grants the role a permission raci.yaml lists as informed"),
]


class GovernanceError(AppError):
    """A file of ``policies/`` the pack reads cannot be used; each line names the file and the key."""

    status, title, type_slug = 500, "Governance policy error", "governance-policy-error"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid governance policy:\n" + "\n".join(problems))
        self.problems = problems


# --- loading -------------------------------------------------------------------------------------------

_Spec = TypeVar("_Spec", bound=BaseModel)


def _load(model: type[_Spec], path: Path, list_key: str) -> _Spec:
    """Read and validate one YAML file of ``policies/``; ids in ``list_key`` must be unique."""
    name = _display(path)
    try:
        data = _read_yaml(path, name)
    except CatalogError as exc:
        raise GovernanceError(exc.problems) from None
    problems: list[str] = []
    spec = _parse(model, data, name, problems)
    if spec is not None:
        problems.extend(_duplicates(name, list_key, (item.id for item in getattr(spec, list_key)), {}))
    if problems or spec is None:  # no spec without a problem that says why
        raise GovernanceError(problems)
    return spec


def load_ai_policy(path: Path) -> AIPolicy:
    """The AI policy (``ai_policy.yaml``), validated; problems raise ``GovernanceError``."""
    return _load(AIPolicy, path, "sections")


def load_raci(path: Path) -> RaciSpec:
    """The RACI mapping (``raci.yaml``), validated; problems raise ``GovernanceError``."""
    return _load(RaciSpec, path, "decisions")


# --- permissions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grants:
    """The permissions of policy.csv as ``(role, resource, action)``, and its roles in order of appearance."""

    roles: tuple[str, ...]
    lines: tuple[tuple[str, str, str], ...]

    @classmethod
    def read(cls, path: Path) -> Grants:
        """policy.csv through the enforcer's own loader (the site column is left out: any site counts)."""
        try:
            rows = read_policy_lines(path)
        except PolicyError as exc:
            raise GovernanceError([str(exc)]) from None
        lines = tuple((role, resource, action) for _p, role, _site, resource, action in rows)
        return cls(roles=tuple(dict.fromkeys(role for role, _, _ in lines)), lines=lines)

    def holders(self, permission: str) -> set[str]:
        """The roles granted ``"resource, action"`` (a resource ending in ``.*`` matches its prefix)."""
        resource, _, action = (part.strip() for part in permission.partition(","))
        prefix = resource[:-1] if resource.endswith(".*") else None
        return {
            role
            for role, res, act in self.lines
            if act == action and (res.startswith(prefix) if prefix else res == resource)
        }

    def permissions_of(self, role: str) -> list[str]:
        """``"resource: action, action"`` per resource the role holds, in policy.csv order."""
        by_resource: dict[str, list[str]] = {}
        for holder, resource, action in self.lines:
            if holder == role and action not in by_resource.setdefault(resource, []):
                by_resource[resource].append(action)
        return [f"{resource}: {', '.join(actions)}" for resource, actions in by_resource.items()]


def _holders(grants: Grants, permissions: Iterable[str], where: str, gaps: list[str]) -> set[str]:
    """Roles granted any of ``permissions``; a permission no role holds is a gap naming ``where``."""
    roles: set[str] = set()
    for permission in permissions:
        found = grants.holders(permission)
        if not found:
            gaps.append(f"{where}: no role in {PERMISSIONS_FILE} is granted {permission.strip()!r}")
        roles |= found
    return roles


def _cells(grants: Grants, r: set[str], a: str, c: set[str], i: set[str]) -> list[str]:
    """One letter set per role column: R and/or A, else C, else I, else blank."""
    cells = []
    for role in grants.roles:
        letters = [x for x, held in (("R", role in r), ("A", role == a)) if held]
        if not letters:
            letters = ["C"] if role in c else ["I"] if role in i else []
        cells.append("/".join(letters))
    return cells


def _row(
    grants: Grants,
    *,
    row_id: str,
    title: str,
    source: str,
    responsible: set[str],
    assignment: RaciAssignment,
    gaps: list[str],
) -> RaciRow:
    accountable = assignment.accountable.value
    consulted = _holders(grants, assignment.consulted, f"{source} consulted", gaps)
    informed = _holders(grants, assignment.informed, f"{source} informed", gaps)
    if accountable not in grants.roles:
        gaps.append(f"{title}: the accountable role {accountable} holds no permission in {PERMISSIONS_FILE}")
    return RaciRow(
        id=row_id,
        title=title,
        source=source,
        cells=_cells(grants, responsible, accountable, consulted, informed),
    )


def raci_rows(grants: Grants, raci: RaciSpec, gaps: list[str]) -> list[RaciRow]:
    """A row per sign-off rule in force, then a row per core decision of ``raci.yaml``."""
    rows = []
    for n, rule in enumerate(get_rules().table.rules):
        source = f"signoff_rules.yaml rules[{n}]"
        signoffs = [f"signoff.{role.value}, sign" for role in rule.require]
        responsible = _holders(grants, signoffs, source, gaps)
        if not responsible:
            gaps.append(f"sign-off rule {rule.id}: nobody may sign it")
        title = f"Sign off a release under rule {rule.id}: {rule.description or rule.id}"
        rows.append(
            _row(
                grants,
                row_id=f"signoff:{rule.id}",
                title=title,
                source=source,
                responsible=responsible,
                assignment=raci.signoff_rules,
                gaps=gaps,
            )
        )
    for n, decision in enumerate(raci.decisions):
        source = f"{RACI_FILE} decisions[{n}]"
        responsible = _holders(grants, decision.responsible, f"{source} responsible", gaps)
        rows.append(
            _row(
                grants,
                row_id=decision.id,
                title=decision.title,
                source=source,
                responsible=responsible,
                assignment=decision,
                gaps=gaps,
            )
        )
    return rows


# --- the sign-off rules in words -----------------------------------------------------------------------


def _when(when: When) -> str:
    """``ai_act_class: high_risk; environment: production``, or ``always``."""
    parts = []
    for key, value in when.model_dump(exclude_none=True, mode="json").items():
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value).lower()
        parts.append(f"{key}: {shown}")
    return "; ".join(parts) or "always"


def _rules(grants: Grants) -> tuple[list[SignoffRight], list[RuleEntry], list[RuleEntry]]:
    """Who may sign each sign-off the rules require, the rules in words, the prerequisites in words."""
    table = get_rules().table
    required_by: dict[str, list[str]] = {}
    rules = []
    for rule in table.rules:
        for role in rule.require:
            required_by.setdefault(role.value, []).append(rule.id)
        comment = (rule.comment_hint or "a comment is required") if rule.comment_required else None
        rules.append(
            RuleEntry(
                id=rule.id,
                description=rule.description,
                when=_when(rule.when),
                requires=", ".join(r.value for r in rule.require),
                comment=comment,
            )
        )
    rights = [
        SignoffRight(
            signoff=role,
            signers=[r for r in grants.roles if r in grants.holders(f"signoff.{role}, sign")],
            required_by=ids,
        )
        for role, ids in required_by.items()
    ]
    prerequisites = [
        RuleEntry(
            id=p.id,
            description=p.description,
            when=_when(p.when),
            requires=f"an approved {p.requires_approved} of the same version",
        )
        for p in table.prerequisites
    ]
    return rights, rules, prerequisites


# --- the pack ------------------------------------------------------------------------------------------


def _source(path: Path) -> SourceFile:
    return SourceFile(file=path.name, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def build_pack() -> GovernancePack:
    """The AI policy, roles, decision rights, adopted frameworks and RACI matrix from ``policies/``."""
    directory = get_settings().policies_dir
    policy = load_ai_policy(directory / POLICY_FILE)
    raci = load_raci(directory / RACI_FILE)
    grants = Grants.read(directory / PERMISSIONS_FILE)
    rules = get_rules()
    gaps: list[str] = []
    rights, rule_entries, prerequisites = _rules(grants)
    frameworks = get_frameworks()
    effective = datetime.combine(policy.effective_date, time(), tzinfo=UTC)
    return GovernancePack(
        policy=policy,
        next_review=add_months(effective, policy.review_every_months).date(),
        roles=[
            RoleEntry(
                id=role, description=policy.roles.get(Role(role)), permissions=grants.permissions_of(role)
            )
            for role in grants.roles
        ],
        signoff_rights=rights,
        rules=rule_entries,
        prerequisites=prerequisites,
        validity_months=dict(rules.table.validity_months),
        reject_requires_comment=rules.reject_requires_comment,
        frameworks=[
            FrameworkEntry(id=fid, title=frameworks.by_id[fid].title, version=frameworks.by_id[fid].version)
            for fid in frameworks.adopted
        ],
        legend=LEGEND,
        raci=raci_rows(grants, raci, gaps),
        gaps=gaps,
        sources=[
            _source(directory / POLICY_FILE),
            _source(directory / RACI_FILE),
            _source(directory / PERMISSIONS_FILE),
            _source(rules.source),
        ],
    )


def _context(pack: GovernancePack) -> dict[str, Any]:
    return {"pack": pack.model_dump(mode="python"), "role_ids": pack.role_ids, "validity": _validity(pack)}


def render_markdown(pack: GovernancePack) -> bytes:
    """The pack as Markdown (``document_templates/governance_pack.md.j2``; every value escaped)."""
    return render.render_text(TEMPLATE, _context(pack)).encode("utf-8")


def _table(doc: Any, header: list[str], rows: Iterable[Iterable[Any]]) -> Any:
    table = doc.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for row in rows:
        for cell, value in zip(table.add_row().cells, row, strict=True):
            cell.text = render._clean(str(value))
    return table


def render_docx(pack: GovernancePack) -> bytes:
    """The pack as a Word document built with python-docx (a table per list, one for the RACI matrix)."""
    import docx
    from docx.enum.section import WD_ORIENT

    policy = pack.policy
    doc = docx.Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = section.page_height, section.page_width
    doc.add_heading(render._clean(policy.title), level=0)
    doc.add_paragraph(
        f"Version {policy.version}, owned by {policy.owner_role.value}, effective "
        f"{policy.effective_date.isoformat()}; next review by {pack.next_review.isoformat()}."
    )
    doc.add_heading("AI policy", level=1)
    for part in policy.sections:
        doc.add_heading(render._clean(part.title), level=2)
        if part.refs:
            doc.add_paragraph(render._clean("; ".join(part.refs))).runs[0].italic = True
        for statement in part.statements:
            doc.add_paragraph(render._clean(statement), style="List Bullet")
    doc.add_heading("Roles and responsibilities", level=1)
    _table(
        doc,
        ["Role", "Responsibility", "Permissions (policy.csv)"],
        ([r.id, r.description or "not described", "; ".join(r.permissions)] for r in pack.roles),
    )
    doc.add_heading("Decision rights", level=1)
    doc.add_heading("Who may sign", level=2)
    _table(
        doc,
        ["Sign-off", "May be signed by", "Required by rules"],
        (
            [s.signoff, ", ".join(s.signers) or "nobody", ", ".join(s.required_by)]
            for s in pack.signoff_rights
        ),
    )
    doc.add_heading("Sign-off rules", level=2)
    _table(
        doc,
        ["Rule", "Applies when", "Requires", "Description"],
        (
            [r.id, r.when, r.requires, r.description + (f" ({r.comment})" if r.comment else "")]
            for r in pack.rules
        ),
    )
    for p in pack.prerequisites:
        doc.add_paragraph(f"Prerequisite {p.id}: when {p.when}, {p.requires} ({p.description}).")
    doc.add_paragraph(_validity(pack))
    doc.add_heading("Adopted frameworks", level=1)
    _table(doc, ["Framework", "Title", "Version"], ([f.id, f.title, f.version] for f in pack.frameworks))
    doc.add_heading("RACI matrix", level=1)
    _table(doc, ["Decision", *pack.role_ids], ([row.title, *row.cells] for row in pack.raci))
    for letter, meaning in pack.legend:
        doc.add_paragraph(f"{letter}: {meaning}")
    if pack.gaps:
        doc.add_heading("Gaps", level=1)
        for gap in pack.gaps:
            doc.add_paragraph(render._clean(gap), style="List Bullet")
    doc.add_heading("Sources", level=1)
    _table(doc, ["File", "SHA-256"], ([s.file, s.sha256] for s in pack.sources))
    moment = datetime.combine(policy.effective_date, time(), tzinfo=UTC)
    props = doc.core_properties
    props.title = render._clean(policy.title)
    props.created = props.modified = props.last_printed = moment
    props.author = props.last_modified_by = "aireg"
    props.revision = 1
    buffer = io.BytesIO()
    doc.save(buffer)
    return render.normalize_docx(buffer.getvalue(), moment)


def _validity(pack: GovernancePack) -> str:
    months = ", ".join(f"{key}: {value}" for key, value in pack.validity_months.items())
    reject = "must" if pack.reject_requires_comment else "need not"
    return f"An approval holds for (months, by AI Act class) {months}. A rejection {reject} say why."


def render_pdf(pack: GovernancePack) -> bytes:
    """The pack as PDF: ``governance_pack.html.j2`` printed, dated by the policy's effective date (the same
    sources give the same bytes)."""
    moment = datetime.combine(pack.policy.effective_date, time(), tzinfo=UTC)
    return pdf.html_to_pdf(render.render_text(HTML_TEMPLATE, _context(pack)), when=moment)


_RENDERERS: dict[PackFormat, Callable[[GovernancePack], bytes]] = {
    PackFormat.md: render_markdown,
    PackFormat.docx: render_docx,
    PackFormat.pdf: render_pdf,
}


def render_pack(pack: GovernancePack, fmt: PackFormat) -> PackDocument:
    """The pack in the given format."""
    content = _RENDERERS[fmt](pack)
    return PackDocument(
        extension=fmt.value,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        sources=pack.sources,
    )


def download_pack(fmt: PackFormat, *, actor: str) -> PackDocument:
    """Build and render the pack, then record its download in the audit trail (a transaction of its own)."""
    document = render_pack(build_pack(), fmt)
    with session_scope() as session:
        audit.record(
            session,
            actor=actor,
            action=DOWNLOAD_ACTION,
            entity_type=ORGANISATION,
            entity_id=ORGANISATION,
            after={
                "document": DOCUMENT,
                "format": fmt.value,
                "sha256": document.sha256,
                "bytes": len(document.content),
                "sources": {s.file: s.sha256 for s in document.sources},
            },
        )
    return document
