"""The inventory (filter, sort, page, CSV export), registering a system, the system page and new versions."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app.approvals import service as approvals
from app.approvals.models import ApprovalRead
from app.classification import service as classification
from app.classification.catalog import get_catalog
from app.classification.engine import AIActClass
from app.classification.models import Classification
from app.db import SessionDep, utcnow
from app.documents import service as documents
from app.errors import AppError, field_error
from app.http import PageParams
from app.identity.dependencies import CurrentPrincipal, Principal
from app.identity.models import SITE_PATTERN
from app.inventory.service import spreadsheet_safe
from app.systems import service as systems
from app.systems.dependencies import require_may_register, system_access
from app.systems.models import (
    FR_CODES,
    LINE_PATTERN,
    AIActRole,
    AISystem,
    LifecycleStage,
    RiskTier,
    SystemCreate,
    SystemOrder,
    VersionCreate,
)
from app.web import charts, lookups
from app.web.forms import FormDep, checked, field_errors, optional, text
from app.web.nav import anywhere, permits
from app.web.paths import path_for
from app.web.routes.wizard import identifier_titles
from app.web.session import flash, require_csrf
from app.web.templating import render
from app.zones import service as zones

router = APIRouter(dependencies=[Depends(require_csrf)], include_in_schema=False)

PAGE_SIZES = (25, 50, 100)
CSV_BATCH = 2000
# Columns the inventory can sort on (the keys the systems service orders by), in table order.
SORTABLE = {"id", "name", "site", "ai_act_class", "risk_tier", "lifecycle_stage", "updated_at"}


def _choice(enum: type[StrEnum], value: str | None, name: str) -> Any:
    if not value:
        return None
    try:
        return enum(value)
    except ValueError:
        raise field_error(["query", name], f"expected one of {', '.join(e.value for e in enum)}") from None


@dataclass(frozen=True)
class InventoryQuery:
    """The inventory's filters, sort order and page, as read from (and written back to) the query string."""

    filters: systems.SystemFilters
    order: SystemOrder
    desc: bool
    page: int
    per_page: int

    def params(self, **changes: Any) -> dict[str, Any]:
        """Query parameters for a link to this view with ``changes`` applied (page resets unless given)."""
        f = self.filters
        values: dict[str, Any] = {
            "q": f.q,
            "site": f.site,
            "line": f.line,
            "ai_act_class": f.ai_act_class,
            "risk_tier": f.risk_tier,
            "lifecycle_stage": f.lifecycle_stage,
            "zone": f.zone,
            "business_owner": f.business_owner,
            "order_by": None if self.order is SystemOrder.id else self.order.value,
            "desc": "1" if self.desc else None,
            "per_page": None if self.per_page == 50 else self.per_page,
            "page": None,
        }
        values.update(changes)
        return {
            k: (v.value if isinstance(v, StrEnum) else v) for k, v in values.items() if v not in (None, "")
        }

    def sort_link(self, column: str) -> dict[str, Any]:
        """Sort by ``column``; a second click on the current column flips the direction."""
        flip = self.order.value == column and not self.desc
        return self.params(
            order_by=None if column == "id" and not flip else column, desc="1" if flip else None
        )

    def aria_sort(self, column: str) -> str | None:
        if self.order.value != column:
            return None
        return "descending" if self.desc else "ascending"

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in vars(self.filters).values())


def inventory_query(
    q: Annotated[str | None, Query(max_length=200)] = None,
    site: Annotated[str | None, Query(max_length=16)] = None,
    line: Annotated[str | None, Query(max_length=24)] = None,
    ai_act_class: Annotated[str | None, Query(max_length=16)] = None,
    risk_tier: Annotated[str | None, Query(max_length=16)] = None,
    lifecycle_stage: Annotated[str | None, Query(max_length=16)] = None,
    zone: Annotated[str | None, Query(max_length=24)] = None,
    business_owner: Annotated[str | None, Query(max_length=40)] = None,
    order_by: Annotated[str | None, Query(max_length=20)] = None,
    desc: Annotated[str | None, Query(max_length=5)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
) -> InventoryQuery:
    """Read the inventory's query string; empty fields (a GET form's "any") mean no filter."""
    for name, value, pattern in (("site", site, SITE_PATTERN), ("line", line, LINE_PATTERN)):
        if value and not re.match(pattern, value):
            raise field_error(["query", name], "not a valid code")
    order = _choice(SystemOrder, order_by, "order_by") or SystemOrder.id
    if order.value not in SORTABLE:
        raise field_error(["query", "order_by"], f"expected one of {', '.join(sorted(SORTABLE))}")
    filters = systems.SystemFilters(
        site=site or None,
        line=line or None,
        ai_act_class=_choice(AIActClass, ai_act_class, "ai_act_class"),
        risk_tier=_choice(RiskTier, risk_tier, "risk_tier"),
        lifecycle_stage=_choice(LifecycleStage, lifecycle_stage, "lifecycle_stage"),
        zone=zone or None,
        business_owner=(business_owner or "").strip().lower() or None,
        q=(q or "").strip() or None,
    )
    size = per_page if per_page in PAGE_SIZES else 50
    return InventoryQuery(filters=filters, order=order, desc=desc in ("1", "true"), page=page, per_page=size)


InventoryQueryDep = Annotated[InventoryQuery, Depends(inventory_query)]


@router.get("/systems", name="inventory")
def inventory(
    request: Request, session: SessionDep, principal: CurrentPrincipal, query: InventoryQueryDep
) -> Response:
    """Every system the user may read: filter, search, sort, page; the same filter exports to CSV."""
    sites = principal.require_anywhere("system", "read")
    page = PageParams(limit=query.per_page, offset=(query.page - 1) * query.per_page)
    items, total = systems.list_systems(
        session, query.filters, sites=sites, page=page, order=query.order, descending=query.desc
    )
    pages = max(1, -(-total // query.per_page))
    shows_approvals = anywhere(principal, "approval", "read")
    latest = lookups.latest_approvals(session, [s.id for s in items]) if shows_approvals else {}
    context = {
        "items": items,
        "total": total,
        "query": query,
        "pages": pages,
        "first": page.offset + 1 if items else 0,
        "last": page.offset + len(items),
        "latest": latest,
        "shows_approvals": shows_approvals,
        "sites": lookups.sites_with_lines(session, principal.sites_for("site", "read")),
        "zones": lookups.zones_by_site(session, principal.sites_for("zone", "read")),
        "owners": lookups.owners(session, sites),
        "enums": _enums(),
        "page_sizes": PAGE_SIZES,
    }
    return render(request, "inventory.html", context)


def _enums() -> dict[str, list[str]]:
    return {
        "ai_act_class": [e.value for e in AIActClass],
        "risk_tier": [e.value for e in RiskTier],
        "lifecycle_stage": [e.value for e in LifecycleStage],
        "ai_act_role": [e.value for e in AIActRole],
    }


CSV_COLUMNS = (
    "id",
    "name",
    "site",
    "line",
    "ai_act_class",
    "risk_tier",
    "lifecycle_stage",
    "zone",
    "sl_gap",
    "business_owner",
    "technical_owner",
    "vendor",
    "ai_act_role",
    "personal_data",
    "approval_state",
    "approval_environment",
    "updated_at",
)


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (the rule of ``aireg export`` too)."""
    return spreadsheet_safe("" if value is None else str(getattr(value, "value", value)))


@router.get("/systems/export.csv", name="inventory_csv")
def inventory_csv(session: SessionDep, principal: CurrentPrincipal, query: InventoryQueryDep) -> Response:
    """The inventory's current filter and order as CSV (every matching row, not just one page)."""
    sites = principal.require_anywhere("system", "read")
    shows_approvals = anywhere(principal, "approval", "read")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    offset = 0
    while True:
        batch, total = systems.list_systems(
            session,
            query.filters,
            sites=sites,
            page=PageParams(limit=CSV_BATCH, offset=offset),
            order=query.order,
            descending=query.desc,
        )
        latest = lookups.latest_approvals(session, [s.id for s in batch]) if shows_approvals else {}
        for s in batch:
            a = latest.get(s.id)
            row = s.model_dump()
            row["sl_gap"] = " ".join(s.sl_gap)
            row["personal_data"] = "yes" if s.personal_data else "no"
            row["approval_state"] = a.state if a else ""
            row["approval_environment"] = a.environment if a else ""
            row["updated_at"] = s.updated_at.isoformat()
            writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
        offset += CSV_BATCH
        if offset >= total or not batch:
            break
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return Response(
        out.getvalue().encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="aireg-systems-{stamp}.csv"'},
    )


# --- registering a system ------------------------------------------------------------------------------


def _system_values(form: Any) -> dict[str, Any]:
    """The posted form as a ``SystemCreate`` body (empty optional fields left out)."""
    values: dict[str, Any] = {
        "name": text(form, "name"),
        "purpose": text(form, "purpose"),
        "site": text(form, "site"),
        "business_owner": text(form, "business_owner").lower(),
        "ai_act_role": text(form, "ai_act_role") or AIActRole.deployer.value,
        "lifecycle_stage": text(form, "lifecycle_stage") or LifecycleStage.idea.value,
        "personal_data": checked(form, "personal_data"),
    }
    for name in (
        "line",
        "technical_owner",
        "vendor",
        "zone",
        "intended_use",
        "out_of_scope_uses",
        "human_oversight",
        "limitations",
        "training_data",
    ):
        value = optional(form, name)
        if value is not None:
            values[name] = value.lower() if name == "technical_owner" else value
    levels = {fr: text(form, f"sl_{fr}") for fr in FR_CODES}
    if any(levels.values()):  # a level left empty is not assessed (null), never SL 0
        values["sl_achieved"] = {fr: level or None for fr, level in levels.items()}
    return values


def _register_context(session: Session, principal: Principal, values: dict[str, Any]) -> dict[str, Any]:
    create_sites = principal.sites_for("system", "create")
    read_sites = principal.sites_for("site", "read")
    usable = create_sites if create_sites is not None else read_sites
    catalog = get_catalog()
    return {
        "values": values,
        "sites": lookups.sites_with_lines(session, usable),
        "zones": lookups.zones_by_site(session, usable),
        "enums": _enums(),
        "frs": catalog.iec62443.fr_by_id,
        "security_levels": catalog.iec62443.sl_by_level,
        "assigns_owner": anywhere(principal, "system", "assign_owner"),
        "errors": {},
    }


@router.get("/systems/new", name="system_new")
def system_new(request: Request, session: SessionDep, principal: CurrentPrincipal) -> Response:
    """The form to register an AI system (business owners and compliance officers)."""
    principal.require_anywhere("system", "create")
    values = {"business_owner": principal.username, "ai_act_role": "deployer", "lifecycle_stage": "idea"}
    return render(request, "system_new.html", _register_context(session, principal, values))


@router.post("/systems/new", name="system_create")
def system_create(
    request: Request, session: SessionDep, principal: CurrentPrincipal, form: FormDep
) -> Response:
    principal.require_anywhere("system", "create")
    values = _system_values(form)
    context = _register_context(session, principal, values)
    try:
        data = SystemCreate.model_validate(values)
        if not any(s.code == data.site for s in context["sites"]):
            raise field_error(["body", "site"], "choose one of the sites you may register systems in")
        require_may_register(principal, data.site, data.business_owner)
        system = systems.create_system(session, data, actor=principal.username)
    except (ValidationError, AppError) as exc:
        context["errors"] = field_errors(exc)
        session.rollback()
        return render(request, "system_new.html", context, status=422)
    flash(request, f"{system.id} “{system.name}” is registered. Next: its AI Act classification.")
    return RedirectResponse(path_for(request, "system_detail", system_id=system.id), status_code=303)


# --- the system page -----------------------------------------------------------------------------------

SystemForPage = Annotated[AISystem, Depends(system_access("system", "read"))]


@router.get("/systems/{system_id}", name="system_detail")
def system_detail(
    request: Request, system: SystemForPage, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Everything known about one system, with the actions the user may take on it."""
    return render(request, "system.html", system_context(session, principal, system))


@dataclass(frozen=True)
class Actions:
    """What the page offers on this system (each decided by the same rule the action itself applies)."""

    read_versions: bool
    add_version: bool
    read_classification: bool
    classify: bool
    read_risk: bool
    read_approvals: bool
    request_approval: bool
    read_documents: bool


def system_actions(principal: Principal, system: AISystem) -> Actions:
    def can(obj: str, act: str) -> bool:
        return permits(principal, system, obj, act)

    return Actions(
        read_versions=can("version", "read"),
        add_version=can("version", "create") and system.lifecycle_stage is not LifecycleStage.retired,
        read_classification=can("classification", "read"),
        classify=can("classification", "create"),
        read_risk=can("risk_assessment", "read"),
        read_approvals=can("approval", "read"),
        request_approval=can("approval", "request"),
        read_documents=can("document", "read"),
    )


def system_context(session: Session, principal: Principal, system: AISystem, **extra: Any) -> dict[str, Any]:
    """The system page's data: facts, versions, classifications, risk, security levels, approvals."""
    actions = system_actions(principal, system)
    catalog = get_catalog()
    read = systems.read_one(session, system)
    zone = zones.get_zone(session, system.zone) if system.zone else None
    fr_names = {fr.id: f"{fr.abbreviation}: {fr.name}" for fr in catalog.iec62443.foundational_requirements}
    first_page = PageParams(limit=50, offset=0)
    versions = systems.list_versions(session, system.id, first_page)[0] if actions.read_versions else []
    history = (
        [
            classification.classification_read(r)
            for r in classification.classification_history(
                session, system.id, PageParams(limit=20, offset=0)
            )[0]
        ]
        if actions.read_classification
        else []
    )
    risk = classification.current_risk_assessment(session, system.id) if actions.read_risk else None
    current = classification.current_classification(session, system.id) if actions.read_documents else None
    approval_list: list[ApprovalRead] = []
    if actions.read_approvals:
        approval_list, _ = approvals.list_approvals(
            session,
            approvals.ApprovalFilters(system_id=system.id),
            read_sites=principal.sites_for("approval", "read"),
            page=PageParams(limit=20, offset=0),
        )
    return {
        "system": read,
        "actions": actions,
        "zone": zone,
        "is_ot": zones.is_ot(zone) if zone else False,
        "sl": charts.sl_chart(zone.sl_target, system.sl_achieved or {}, fr_names) if zone else None,
        "fr_names": fr_names,
        "versions": versions,
        "classifications": history,
        "risk": risk,
        "nist": catalog.nist,
        "titles": identifier_titles(),
        "approvals": approval_list,
        "documents": documents_for(system, current) if actions.read_documents else [],
        "version_values": {},
        "version_errors": {},
        **extra,
    }


@dataclass(frozen=True)
class Document:
    """One downloadable document and its formats (links to the API's document endpoints)."""

    title: str
    description: str
    files: list[tuple[str, str]]


def documents_for(system: AISystem, current: Classification | None) -> list[Document]:
    """Download links to the API's document endpoints; the session cookie authorizes them.

    AI Act Art. 11 asks Annex IV technical documentation of high-risk systems only, and Art. 6(4) a record of
    the assessment for a derogated Annex III system; the link is offered only where one of them applies.
    """
    base = f"/api/v1/systems/{system.id}/documents"
    card = f"{base}/model-card"
    docs = [
        Document(
            "Model card",
            "Purpose, data, metrics, limits and oversight",
            [
                (label, f"{card}?format={fmt}")
                for label, fmt in (("HTML", "html"), ("DOCX", "docx"), ("Markdown", "md"), ("PDF", "pdf"))
            ],
        )
    ]
    obligations = {o.get("id") for o in (current.result.get("obligations", []) if current else [])}
    if current is not None and current.ai_act_class == documents.HIGH_RISK:
        docs.append(
            Document(
                "Technical documentation",
                "AI Act Annex IV, as a Word document or PDF",
                [
                    ("DOCX", f"{base}/technical-documentation?format=docx"),
                    ("PDF", f"{base}/technical-documentation?format=pdf"),
                ],
            )
        )
    elif documents.DEROGATION_OBLIGATION in obligations:
        docs.append(
            Document(
                "Art. 6(3) assessment record",
                "Why the Annex III use is not high-risk (Art. 6(4))",
                [("DOCX", f"{base}/technical-documentation?format=docx")],
            )
        )
    docs.append(
        Document(
            "Audit pack",
            "Every document and the audit trail, with a SHA-256 manifest",
            [("ZIP", f"{base}/audit-pack")],
        )
    )
    return docs


@router.post("/systems/{system_id}/versions", name="version_create")
def version_create(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    form: FormDep,
    system: Annotated[AISystem, Depends(system_access("version", "create"))],
) -> Response:
    """Register a model version (its artifact digest) from the system page."""
    values: dict[str, Any] = {
        "version": text(form, "version"),
        "artifact_digest": text(form, "artifact_digest").lower(),
    }
    if notes := optional(form, "notes"):
        values["notes"] = notes
    try:
        created = systems.create_version(
            session, system, VersionCreate.model_validate(values), actor=principal.username
        )
    except (ValidationError, AppError) as exc:
        errors = field_errors(exc)
        session.rollback()
        if isinstance(exc, AppError) and exc.status == 409:
            errors = {"version": exc.detail}
        context = system_context(session, principal, system, version_values=values, version_errors=errors)
        return render(request, "system.html", context, status=422)
    flash(request, f"Version {created.version} is registered.")
    url = path_for(request, "system_detail", system_id=system.id)
    return RedirectResponse(f"{url}#versions", status_code=303)
