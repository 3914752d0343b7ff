"""Compliance work: frameworks and their controls (files), requirements of systems and the organisation."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, StringConstraints
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime
from app.identity.models import Role


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


# --- requirements --------------------------------------------------------------------------------------


class RequirementStatus(StrEnum):
    """Progress of one requirement: ``met`` needs current evidence, ``not_applicable`` a note."""

    open = "open"
    in_progress = "in_progress"
    met = "met"
    not_applicable = "not_applicable"


class _RequirementBase(SQLModel):
    """What a requirement row holds, per system or for the organisation.

    Rows are made when the requirements are first read and kept in step with the classification and the
    adopted frameworks on every read: a requirement no longer derived keeps its row (``derived`` false), so
    its status and history stay. ``title`` and ``applies_from`` are copied from the derivation each time.
    """

    framework: str = Field(max_length=32)
    control: str = Field(max_length=64)
    title: str = Field(max_length=300)
    status: RequirementStatus = Field(default=RequirementStatus.open, sa_type=sa.String(16))
    note: str | None = Field(default=None, max_length=2000)
    owner_role: str = Field(max_length=32)
    applies_from: date | None = None
    derived: bool = True
    revision: int = 1
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    updated_by: str | None = Field(default=None, max_length=40)  # None until a person changes it


class Requirement(_RequirementBase, table=True):
    """A requirement of one system: one row per (system, framework, control)."""

    __tablename__ = "requirement"
    __table_args__ = (sa.UniqueConstraint("system_id", "framework", "control", name="uq_requirement"),)

    id: int | None = Field(default=None, primary_key=True)
    system_id: str = Field(foreign_key="ai_system.id", max_length=16)


class OrganisationRequirement(_RequirementBase, table=True):
    """A requirement tracked once for the whole organisation (AI literacy, management-system clauses)."""

    __tablename__ = "organisation_requirement"
    __table_args__ = (sa.UniqueConstraint("framework", "control", name="uq_organisation_requirement"),)

    id: int | None = Field(default=None, primary_key=True)


RequirementRef = Annotated[
    str,
    StringConstraints(max_length=100, pattern=r"^[a-z][a-z0-9_]{0,31}:[A-Za-z0-9][A-Za-z0-9 ._()-]{0,63}$"),
]


class RequirementRead(BaseModel):
    """A requirement as the API shows it; ``id`` is ``framework:control``.

    ``binding``: it binds on today's date (the framework binds and ``applies_from`` is reached) and is still
    derived. ``evidence`` stays empty until evidence can be linked (the next slice).
    """

    id: str
    framework: str
    control: str
    title: str
    status: RequirementStatus
    applies_from: date | None
    binding: bool
    derived: bool
    owner_role: str
    note: str | None
    evidence: list[str]
    revision: int
    updated_at: datetime
    updated_by: str | None


class RequirementUpdate(BaseModel):
    """A change of status, note or owner role, based on ``revision`` (or If-Match)."""

    model_config = {"extra": "forbid"}

    status: RequirementStatus | None = None
    note: Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)] | None = None
    owner_role: Role | None = None
    revision: int | None = None
