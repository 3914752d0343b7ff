"""Stored classifications (AI Act), NIST AI RMF risk assessments and per-system AI RMF checklists."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import HttpUrl, StringConstraints
from sqlmodel import Field, SQLModel

from app.classification.engine import AIActClass, ClassificationAnswers, ClassificationResult
from app.db import UTCDateTime
from app.systems.models import AIActRole, RiskTier

NistRef = Annotated[str, StringConstraints(pattern=r"^(GOVERN|MAP|MEASURE|MANAGE) \d+\.\d+$")]


class Classification(SQLModel, table=True):
    """One AI Act classification of a system; history is kept, the newest is the system's class."""

    __table_args__ = (sa.Index("ix_classification_system", "system_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    system_id: str = Field(foreign_key="ai_system.id", max_length=16)
    answers: dict[str, Any] = Field(sa_type=sa.JSON)
    ai_act_role: str = Field(max_length=32)
    # The role the AI Act treats the operator in (Art. 25: a deployer, importer or distributor may become the
    # provider). Kept per classification, so requirements and documents follow the role it was made for.
    effective_role: str = Field(max_length=32)
    ai_act_class: AIActClass = Field(sa_type=sa.String(16))
    basis: list[str] = Field(sa_type=sa.JSON)
    result: dict[str, Any] = Field(sa_type=sa.JSON)
    catalog_version: str = Field(max_length=32)
    assessor: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime)


class RiskAssessment(SQLModel, table=True):
    """A NIST AI RMF risk assessment: impact x likelihood -> tier, with risks tied to subcategories."""

    __tablename__ = "risk_assessment"
    __table_args__ = (sa.Index("ix_risk_assessment_system", "system_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    system_id: str = Field(foreign_key="ai_system.id", max_length=16)
    impact: int
    likelihood: int
    risk_tier: RiskTier = Field(sa_type=sa.String(16))
    risks: list[dict[str, Any]] = Field(sa_type=sa.JSON)
    catalog_version: str = Field(max_length=32)
    assessor: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ChecklistStatus(StrEnum):
    """Progress of one AI RMF subcategory for one system."""

    not_started = "not_started"
    in_progress = "in_progress"
    implemented = "implemented"
    not_applicable = "not_applicable"


class NistChecklistItem(SQLModel, table=True):
    """The state of one AI RMF subcategory for one system (rows exist only once touched)."""

    __tablename__ = "nist_checklist_item"
    __table_args__ = (sa.UniqueConstraint("system_id", "subcategory", name="uq_nist_checklist_item"),)

    id: int | None = Field(default=None, primary_key=True)
    system_id: str = Field(foreign_key="ai_system.id", max_length=16)
    subcategory: str = Field(max_length=16)
    status: ChecklistStatus = Field(sa_type=sa.String(16))
    evidence: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    note: str | None = Field(default=None, max_length=2000)
    updated_by: str = Field(max_length=40)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    revision: int = 1


# --- API schemas ---------------------------------------------------------------------------------------


# The classification date: only what applies on it decides the class (default: the service's today).
AsOf = Annotated[
    date,
    Field(
        ge=date(2000, 1, 1),
        le=date(2999, 12, 31),
        description="Classify as of this date (default today): only what applies on it decides the class",
    ),
]


class ClassifyRequest(SQLModel):
    """Answers to classify without storing anything, for one operator role (default ``provider``)."""

    model_config = {"extra": "forbid"}

    answers: ClassificationAnswers
    ai_act_role: AIActRole = AIActRole.provider
    as_of: AsOf | None = None


class SystemClassifyRequest(SQLModel):
    """Answers for a stored system; the AI Act role is the system's own ``ai_act_role``."""

    model_config = {"extra": "forbid"}

    answers: ClassificationAnswers
    as_of: AsOf | None = None


class ClassificationRead(ClassificationResult):
    """A stored classification: the engine's result plus the answers, role, assessor and time."""

    id: int
    system_id: str
    answers: dict[str, Any]
    ai_act_role: str
    assessor: str
    created_at: datetime


class RiskIn(SQLModel):
    """One identified risk, tied to the AI RMF subcategories that address it."""

    model_config = {"extra": "forbid"}

    title: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    nist_refs: list[NistRef] = Field(min_length=1, max_length=30)
    mitigation: Annotated[str, StringConstraints(max_length=2000)] | None = None
    characteristic: Annotated[str, StringConstraints(max_length=64)] | None = None


class RiskAssessmentCreate(SQLModel):
    """Impact and likelihood (1-5 on the catalogue's matrix) and the risks behind them."""

    model_config = {"extra": "forbid"}

    impact: int = Field(ge=1, le=5)
    likelihood: int = Field(ge=1, le=5)
    risks: list[RiskIn] = Field(default_factory=list, max_length=100)


class RiskRead(SQLModel):
    """A stored risk."""

    title: str
    nist_refs: list[str]
    mitigation: str | None = None
    characteristic: str | None = None


class RiskAssessmentRead(SQLModel):
    """A stored risk assessment with the tier the matrix gave."""

    id: int
    system_id: str
    impact: int
    likelihood: int
    risk_tier: RiskTier
    risks: list[RiskRead]
    catalog_version: str
    assessor: str
    created_at: datetime


class ChecklistUpdate(SQLModel):
    """New state of one subcategory; ``revision`` is the item's (0 while never touched) or use If-Match."""

    model_config = {"extra": "forbid"}

    status: ChecklistStatus
    evidence: list[HttpUrl] = Field(default_factory=list, max_length=20)
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None
    revision: int | None = Field(default=None, ge=0)


class ChecklistItemRead(SQLModel):
    """One AI RMF subcategory and this system's status on it."""

    subcategory: str
    title: str
    function: str
    status: ChecklistStatus
    evidence: list[str]
    note: str | None
    updated_by: str | None
    updated_at: datetime | None
    revision: int


class FunctionCoverage(SQLModel):
    """Counts per status for one AI RMF function; ``coverage`` = implemented / applicable."""

    function: str
    total: int
    implemented: int
    not_applicable: int
    in_progress: int
    not_started: int
    coverage: float


class ChecklistRead(SQLModel):
    """The whole AI RMF checklist of a system, with coverage per function."""

    system_id: str
    catalog_version: str
    coverage: list[FunctionCoverage]
    items: list[ChecklistItemRead]
