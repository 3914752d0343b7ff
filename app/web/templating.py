"""The pages' Jinja environment (autoescaped), display labels and the one ``render`` every page calls."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from app.classification.catalog import cite
from app.db import utcnow
from app.web import session as web_session
from app.web.nav import navigation
from app.web.paths import path_for

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# Display labels for stored codes (words only; the codes themselves stay in the data).
LABELS: dict[str, dict[str, str]] = {
    "ai_act_class": {
        "prohibited": "Prohibited",
        "high_risk": "High risk",
        "limited_risk": "Limited risk",
        "minimal_risk": "Minimal risk",
        "out_of_scope": "Out of scope",
    },
    "risk_tier": {"low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"},
    "lifecycle_stage": {"idea": "Idea", "pilot": "Pilot", "production": "Production", "retired": "Retired"},
    "ai_act_role": {
        "provider": "Provider",
        "deployer": "Deployer",
        "importer": "Importer",
        "distributor": "Distributor",
        "authorised_representative": "Authorised representative",
        "product_manufacturer": "Product manufacturer",
    },
    "role": {
        "admin": "Admin",
        "compliance_officer": "Compliance officer",
        "risk_officer": "Risk officer",
        "ot_security": "OT security",
        "safety_engineer": "Safety engineer",
        "dpo": "Data protection officer",
        "business_owner": "Business owner",
        "auditor": "Auditor",
        "mlops": "MLOps",
    },
    "approval_state": {
        "submitted": "Awaiting sign-off",
        "approved": "Approved",
        "rejected": "Rejected",
        "withdrawn": "Withdrawn",
        "revoked": "Revoked",
        "expired": "Expired",
    },
    "decision": {"approve": "Approved", "reject": "Rejected"},
    "environment": {"pilot": "Pilot", "production": "Production"},
}


def label(value: Any, kind: str) -> str:
    """The display label of a stored code (``high_risk`` -> ``High risk``); unknown codes pass through."""
    if value is None or value == "":
        return "—"
    key = getattr(value, "value", value)
    return LABELS.get(kind, {}).get(str(key), str(key).replace("_", " "))


def format_time(value: datetime | None, with_time: bool = True) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M UTC" if with_time else "%Y-%m-%d")


def role_label(value: Any) -> str:
    """The display label of a role (``ot_security`` -> ``OT security``): the ``role`` filter of the pages."""
    return label(value, "role")


# Role codes as service messages spell them (``ot_security has already signed``, ``signoff.ot_security``):
# only the codes with an underscore (usernames never have one), so a username such as ``admin`` stays.
_CODES = sorted((code for code in LABELS["role"] if "_" in code), key=len, reverse=True)
_ROLE_CODES = re.compile(r"(?<![\w.-])(?:signoff\.)?(" + "|".join(_CODES) + r")(?![\w-])")


def role_words(message: str) -> str:
    """A message with every role code in it replaced by the role's label (for errors shown on pages)."""
    return _ROLE_CODES.sub(lambda m: LABELS["role"][m.group(1)], message)


_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"))


def _span(seconds: int) -> str:
    for size, unit in _UNITS:
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return ""


def age(value: datetime | None) -> str:
    """How long something has waited, in words a reader takes in at a glance (``3 days``, ``5 hours``)."""
    if value is None:
        return "—"
    return _span(max(0, int((utcnow() - value).total_seconds()))) or "just now"


def relative_time(value: datetime | None) -> str:
    """A moment relative to now: ``just now``, ``5 minutes ago``, ``in 3 days`` (the ``ago`` filter)."""
    if value is None:
        return "—"
    seconds = int((utcnow() - value).total_seconds())
    span = _span(abs(seconds))
    if not span:
        return "just now"
    return f"{span} ago" if seconds > 0 else f"in {span}"


@jinja2.pass_context
def url_for(
    context: Mapping[str, Any], name: str, /, _query: Mapping[str, Any] | None = None, **params: Any
) -> str:
    """The path of a named route (relative to the app's root path), with an optional query string."""
    request: Request = context["request"]
    path = path_for(request, name, **params)
    if _query:
        pairs = [
            (key, item)
            for key, value in _query.items()
            for item in (value if isinstance(value, list | tuple) else [value])
            if item is not None and item != ""
        ]
        if pairs:
            path += "?" + urlencode(pairs)
    return path


@jinja2.pass_context
def static_url(context: Mapping[str, Any], path: str) -> str:
    request: Request = context["request"]
    return path_for(request, "static", path=path)


environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=jinja2.select_autoescape(["html", "svg"], default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
environment.globals.update(url_for=url_for, static_url=static_url, cite=cite)
environment.filters.update(label=label, role=role_label, time=format_time, age=age, ago=relative_time)


def render(
    request: Request, template: str, context: Mapping[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """Render a page with what every page needs: the user, navigation, CSRF token and one-time messages."""
    principal = web_session.web_principal(request)
    page = {
        "request": request,
        "user": web_session.web_user(request),
        "principal": principal,
        "nav": navigation(principal) if principal is not None else None,
        "csrf_token": web_session.csrf_token(request) if "session" in request.scope else "",
        "flashes": web_session.pop_flashes(request) if "session" in request.scope else [],
        "current_path": request.url.path,
        **(context or {}),
    }
    html = environment.get_template(template).render(page)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
