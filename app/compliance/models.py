"""Compliance work: the API's view of frameworks and their controls (no tables yet)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel


class FrameworkSummary(BaseModel):
    """A framework in the list: ``controls`` is how many; ``adopted``: named in AIREG_ADOPTED_FRAMEWORKS."""

    id: str
    title: str
    version: str
    controls: int
    adopted: bool


class ControlRead(BaseModel):
    """A control and the controls of other frameworks the same evidence counts for (``framework:control``)."""

    id: str
    title: str
    maps_to: list[str]
    group: str | None
    organisation_wide: bool
    applies_from: date | None
    binds: list[str]


class GroupRead(BaseModel):
    """A heading controls are filed under."""

    id: str
    title: str


class FrameworkRead(BaseModel):
    """A framework with every control, in the framework's order."""

    id: str
    title: str
    version: str
    adopted: bool
    groups: list[GroupRead]
    controls: list[ControlRead]
