"""Compliance frameworks for the API (no HTTP here): read from the validated files, never from a request."""

from __future__ import annotations

from app.compliance.frameworks import Framework, get_frameworks
from app.compliance.models import ControlRead, FrameworkRead, FrameworkSummary, GroupRead
from app.errors import NotFound


def list_frameworks() -> list[FrameworkSummary]:
    """Every loaded framework, in id order, with its number of controls and whether it is adopted."""
    frameworks = get_frameworks()
    return [
        FrameworkSummary(
            id=f.id,
            title=f.title,
            version=f.version,
            controls=len(f.controls),
            adopted=f.id in frameworks.adopted,
        )
        for f in frameworks.frameworks
    ]


def require_framework(framework_id: str) -> Framework:
    """The framework ``framework_id``, or 404."""
    framework = get_frameworks().by_id.get(framework_id)
    if framework is None:
        raise NotFound(f"framework {framework_id!r} does not exist")
    return framework


def framework_read(framework: Framework) -> FrameworkRead:
    """A framework with its controls and their crosswalk links."""
    return FrameworkRead(
        id=framework.id,
        title=framework.title,
        version=framework.version,
        adopted=framework.id in get_frameworks().adopted,
        groups=[GroupRead(id=g.id, title=g.title) for g in framework.groups],
        controls=[
            ControlRead(
                id=c.id,
                title=c.title,
                maps_to=list(c.maps_to),
                group=c.group,
                organisation_wide=c.organisation_wide,
                applies_from=c.applies_from,
                binds=list(c.binds),
            )
            for c in framework.controls
        ],
    )
