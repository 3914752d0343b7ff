"""Asking for approval, the signer's inbox, one request's page, and signing, withdrawing or revoking it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app.approvals import flows
from app.approvals import service as approvals
from app.approvals.models import (
    APPROVAL_ID_PATTERN,
    ApprovalCreate,
    ApprovalRead,
    ApprovalRequest,
    ApprovalState,
    Decision,
    Environment,
    SignOffCreate,
)
from app.approvals.rules import get_rules
from app.db import SessionDep
from app.errors import AppError
from app.http import PageParams
from app.identity.dependencies import CurrentPrincipal, Principal
from app.systems import service as systems
from app.systems.dependencies import system_access
from app.systems.models import AISystem
from app.web import lookups
from app.web.forms import FormDep, field_errors, optional, text
from app.web.nav import signer_roles
from app.web.paths import path_for
from app.web.routes import compliance as compliance_pages
from app.web.routes.auth import safe_next
from app.web.session import flash, require_csrf
from app.web.templating import render, role_label

router = APIRouter(dependencies=[Depends(require_csrf)], include_in_schema=False)

ApprovalId = Annotated[str, Path(pattern=APPROVAL_ID_PATTERN, description="e.g. APR-000042")]
INBOX_SIZE = 40  # cards per inbox page, each with its sign form


# --- requesting approval -------------------------------------------------------------------------------


def _who_signs(session: Session, system: AISystem) -> dict[str, Any]:
    """Per environment: the roles the rule table will ask, and the prerequisites that will be checked."""
    rules = get_rules()
    out: dict[str, Any] = {}
    for env in Environment:
        facts = approvals.system_facts(session, system, env).facts
        requirement = rules.required(facts)
        out[env.value] = {
            "roles": requirement.roles,
            "because": requirement.because,
            "comment_required": requirement.comment_required,
            "prerequisites": rules.prerequisites(facts),
        }
    return out


def _request_context(
    session: Session, system: AISystem, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    versions, _ = systems.list_versions(session, system.id, PageParams(limit=100, offset=0))
    rules = {r.id: r for r in get_rules().table.rules}
    return {
        "system": system,
        "versions": versions,
        "values": values,
        "errors": errors,
        "who_signs": _who_signs(session, system) if system.ai_act_class else None,
        "risk_assessment_missing": approvals.risk_assessment_missing(session, system),
        "rules": rules,
        "environments": [e.value for e in Environment],
    }


@router.get("/systems/{system_id}/approvals/new", name="approval_new")
def approval_new(
    request: Request,
    session: SessionDep,
    system: Annotated[AISystem, Depends(system_access("approval", "request"))],
) -> Response:
    """The owner's form to ask for a release of one version in pilot or production."""
    values = {"environment": "pilot"}
    return render(request, "approval_new.html", _request_context(session, system, values, {}))


@router.post("/systems/{system_id}/approvals/new", name="approval_create")
def approval_create(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    form: FormDep,
    system: Annotated[AISystem, Depends(system_access("approval", "request", for_update=True))],
) -> Response:
    values = {
        "version": text(form, "version"),
        "environment": text(form, "environment"),
        "justification": text(form, "justification"),
    }
    try:
        created = flows.submit(
            session, system, ApprovalCreate.model_validate(values), actor=principal.username
        )
    except (ValidationError, AppError) as exc:
        errors = field_errors(exc)
        session.rollback()
        return render(
            request, "approval_new.html", _request_context(session, system, values, errors), status=422
        )
    roles = ", ".join(role_label(r) for r in created.required_signoffs)
    flash(request, f"Approval {created.id} is requested. It now waits for sign-off by: {roles}.")
    return RedirectResponse(path_for(request, "approval_detail", approval_id=created.id), status_code=303)


# --- the inbox -----------------------------------------------------------------------------------------


def sign_sites(principal: Principal) -> dict[str, set[str] | None]:
    """Role -> sites where the user may sign for it (``None`` = every site)."""
    return {role: principal.sites_for(f"signoff.{role}", "sign") for role in signer_roles(principal)}


def signable(principal: Principal, a: ApprovalRead) -> list[str]:
    """The pending roles of ``a`` this user may sign now (Casbin per site, and separation of duties)."""
    if a.state is not ApprovalState.submitted or a.requester == principal.username:
        return []
    if any(s.signer == principal.username for s in a.signoffs):
        return []
    return [r for r in a.pending_signoffs if principal.can(f"signoff.{r}", "sign", a.site)]


def comment_rules(a: ApprovalRead) -> dict[str, str]:
    """Role -> why the rule table wants a comment with that role's approval (the flow enforces it)."""
    rules = get_rules()
    hints = {role: flows.comment_hint(rules, a.required_because, role) for role in a.required_signoffs}
    return {role: hint for role, hint in hints.items() if hint}


def _cards(session: Session, principal: Principal, items: list[ApprovalRead]) -> list[dict[str, Any]]:
    """Each request with its system and what the user may do with it."""
    names = lookups.system_names(session, [a.system_id for a in items])
    rules = get_rules()
    return [
        {
            "approval": a,
            "system_name": names.get(a.system_id, a.system_id),
            "sl_gap": lookups.gap_status(a, rules),
            "signable": signable(principal, a),
            "comment_hints": comment_rules(a),
            "reject_needs_comment": rules.reject_requires_comment,
            "open_requirements": compliance_pages.open_requirements(session, principal, a),
        }
        for a in items
    ]


@router.get("/inbox", name="inbox")
def inbox(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """What awaits the user's signature, oldest first, and the requests the user is waiting on."""
    roles = signer_roles(principal)
    read_sites = principal.sites_for("approval", "read")
    awaiting: list[ApprovalRead] = []
    total = 0
    if roles:

        def waiting(limit: int, offset: int) -> tuple[list[ApprovalRead], int]:
            return approvals.list_approvals(
                session,
                approvals.ApprovalFilters(),
                read_sites=read_sites,
                page=PageParams(limit=limit, offset=offset),
                username=principal.username,
                sign_sites=sign_sites(principal),
            )

        # The approvals service lists newest first; the inbox shows the longest-waiting first.
        _, total = waiting(1, 0)
        end = max(0, total - (page - 1) * INBOX_SIZE)
        if end:
            awaiting, _ = waiting(min(INBOX_SIZE, end), max(0, end - INBOX_SIZE))
            awaiting.sort(key=approvals.approval_order)
    mine: list[ApprovalRead] = []
    if read_sites is None or read_sites:
        mine, _ = approvals.list_approvals(
            session,
            approvals.ApprovalFilters(state=ApprovalState.submitted, requester=principal.username),
            read_sites=read_sites,
            page=PageParams(limit=INBOX_SIZE, offset=0),
        )
    if not roles and not mine:
        principal.require_anywhere("approval", "read")
    context = {
        "cards": _cards(session, principal, awaiting),
        "total": total,
        "page": page,
        "pages": max(1, -(-total // INBOX_SIZE)),
        "mine": _cards(session, principal, mine),
        "roles": roles,
        "errors": {},
        "form_for": None,
        "values": {},
    }
    return render(request, "inbox.html", context)


# --- one request ---------------------------------------------------------------------------------------


def _load(session: Session, principal: Principal, approval_id: str) -> ApprovalRequest:
    a = approvals.get_approval(session, approval_id)
    principal.require("approval", "read", a.site, entity_id=a.id)
    return a


def _detail_context(
    session: Session, principal: Principal, a: ApprovalRequest, **extra: Any
) -> dict[str, Any]:
    read = approvals.approval_read(session, a)
    card = _cards(session, principal, [read])[0]
    state = read.state
    can_withdraw = state is ApprovalState.submitted and (
        principal.can("approval", "withdraw", a.site)
        or (principal.can("approval", "withdraw_own", a.site) and a.requester == principal.username)
    )
    can_revoke = state is ApprovalState.approved and principal.can("approval", "revoke", a.site)
    rules = {r.id: r for r in get_rules().table.rules}
    return {
        "card": card,
        "approval": read,
        "rules": rules,
        "can_withdraw": can_withdraw,
        "can_revoke": can_revoke,
        "errors": {},
        "values": {},
        **extra,
    }


@router.get("/approvals/{approval_id}", name="approval_detail")
def approval_detail(
    request: Request, approval_id: ApprovalId, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """One request: what is asked, why each role must sign, every sign-off with its hash check."""
    a = _load(session, principal, approval_id)
    return render(request, "approval.html", _detail_context(session, principal, a))


@router.post("/approvals/{approval_id}/signoffs", name="signoff_create")
def signoff_create(
    request: Request, approval_id: ApprovalId, session: SessionDep, principal: CurrentPrincipal, form: FormDep
) -> Response:
    """Approve or reject for one role; the approvals flow enforces comment rules and separation of duties."""
    values: dict[str, Any] = {
        "role": text(form, "role"),
        "decision": text(form, "decision"),
        "comment": optional(form, "comment"),
        "conditions": [line.strip() for line in text(form, "conditions").splitlines() if line.strip()],
    }
    return_to = safe_next(text(form, "return_to", 2000))
    try:
        data = SignOffCreate.model_validate(values)
        a = flows.sign(session, approval_id, data, principal=principal)
    except (ValidationError, AppError) as exc:
        errors = field_errors(exc)
        session.rollback()
        a = _load(session, principal, approval_id)
        values["conditions"] = "\n".join(values["conditions"])
        context = _detail_context(session, principal, a, errors=errors, values=values)
        return render(request, "approval.html", context, status=422)
    verdict = "approved" if data.decision is Decision.approve else "rejected"
    outcome = {
        ApprovalState.approved: " All sign-offs are in: the release is approved.",
        ApprovalState.rejected: " The request is rejected.",
    }.get(ApprovalState(a.state), "")
    flash(request, f"You {verdict} {a.id} as {role_label(data.role.value)}.{outcome}")
    target = return_to or path_for(request, "approval_detail", approval_id=a.id)
    return RedirectResponse(target, status_code=303)


@router.post("/approvals/{approval_id}/withdraw", name="approval_withdraw")
def approval_withdraw(
    request: Request, approval_id: ApprovalId, session: SessionDep, principal: CurrentPrincipal, form: FormDep
) -> Response:
    try:
        a = flows.withdraw(session, approval_id, principal=principal, reason=optional(form, "reason"))
    except AppError as exc:
        errors = field_errors(exc)
        session.rollback()
        a = _load(session, principal, approval_id)
        return render(
            request, "approval.html", _detail_context(session, principal, a, errors=errors), status=exc.status
        )
    flash(request, f"{a.id} is withdrawn.")
    return RedirectResponse(path_for(request, "approval_detail", approval_id=a.id), status_code=303)


@router.post("/approvals/{approval_id}/revoke", name="approval_revoke")
def approval_revoke(
    request: Request, approval_id: ApprovalId, session: SessionDep, principal: CurrentPrincipal, form: FormDep
) -> Response:
    try:
        a = flows.revoke(session, approval_id, principal=principal, reason=text(form, "reason"))
    except AppError as exc:
        errors = field_errors(exc)
        session.rollback()
        a = _load(session, principal, approval_id)
        values = {"reason": text(form, "reason")}
        context = _detail_context(session, principal, a, errors=errors, values=values)
        return render(request, "approval.html", context, status=exc.status)
    flash(request, f"{a.id} is revoked; the release gate now refuses it.")
    return RedirectResponse(path_for(request, "approval_detail", approval_id=a.id), status_code=303)
