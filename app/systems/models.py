"""Sites (plants) with their lines, AI systems and their model versions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AllowInfNan, Strict, StringConstraints, field_validator
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from app.classification.engine import AIActClass
from app.db import UTCDateTime, enum_column
from app.http import Page
from app.identity.models import SITE_PATTERN, USERNAME_PATTERN

LINE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{0,23}$"
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
SYSTEM_ID_PATTERN = r"^AIS-\d{6,}$"
FR_CODES = ("FR1", "FR2", "FR3", "FR4", "FR5", "FR6", "FR7")

# The facts that decide who must sign a release (policies/signoff_rules.yaml). Each belongs to the role
# that owns it: changing one needs the permission ``system.<field>`` / ``update`` (policies/policy.csv),
# and every change bumps ``AISystem.facts_revision``, which voids approvals granted before it
# (CHANGED_SINCE_APPROVAL at the release gate).
SIGNOFF_FACTS = ("personal_data", "ai_act_role", "business_owner", "technical_owner", "zone", "sl_achieved")

SiteCode = Annotated[str, StringConstraints(pattern=SITE_PATTERN)]
LineCode = Annotated[str, StringConstraints(pattern=LINE_PATTERN)]
UsernameRef = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
ShortText = Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)]
LongText = Annotated[str, StringConstraints(max_length=5000)]
ArtifactDigest = Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)]
VersionString = Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
# A metric is a finite JSON number: no true/false/"1.5" coerced, no NaN/Infinity (PostgreSQL refuses them).
MetricValue = Annotated[float, Strict(), AllowInfNan(False)]
MetricKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]


class AIActRole(StrEnum):
    """The operator role under the AI Act: Art. 3(3)-(7), and the product manufacturer of Art. 25(3)."""

    provider = "provider"
    deployer = "deployer"
    importer = "importer"
    distributor = "distributor"
    authorised_representative = "authorised_representative"
    product_manufacturer = "product_manufacturer"


class LifecycleStage(StrEnum):
    idea = "idea"
    pilot = "pilot"
    production = "production"
    retired = "retired"


class RiskTier(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class SLVector(SQLModel):
    """An IEC 62443 security-level vector: one level 0-4 for each foundational requirement FR1-FR7."""

    model_config = {"extra": "forbid"}

    FR1: int = Field(default=0, ge=0, le=4)
    FR2: int = Field(default=0, ge=0, le=4)
    FR3: int = Field(default=0, ge=0, le=4)
    FR4: int = Field(default=0, ge=0, le=4)
    FR5: int = Field(default=0, ge=0, le=4)
    FR6: int = Field(default=0, ge=0, le=4)
    FR7: int = Field(default=0, ge=0, le=4)


class SLAchieved(SQLModel):
    """An achieved security-level vector (SL-A): a level 0-4 per FR, or ``null`` where that FR has not been
    assessed yet. An FR left out is not assessed either: ``{"FR1": 3}`` says nothing about FR2-FR7. An
    unassessed FR is never counted as SL 0 (see ``sl_gap`` and ``sl_unassessed``)."""

    model_config = {"extra": "forbid"}

    FR1: int | None = Field(default=None, ge=0, le=4)
    FR2: int | None = Field(default=None, ge=0, le=4)
    FR3: int | None = Field(default=None, ge=0, le=4)
    FR4: int | None = Field(default=None, ge=0, le=4)
    FR5: int | None = Field(default=None, ge=0, le=4)
    FR6: int | None = Field(default=None, ge=0, le=4)
    FR7: int | None = Field(default=None, ge=0, le=4)


SLValues = dict[str, int | None]


def sl_gap(target: dict[str, int] | None, achieved: SLValues | None) -> list[str]:
    """The FRs assessed below the zone's target (IEC 62443-3-3 SL-A < SL-T).

    An FR whose achieved level is not assessed (``null``, left out, or no vector at all) is no gap that
    anyone could accept: it is reported by ``sl_unassessed`` instead, never counted as SL 0.
    """
    if not target:
        return []
    achieved = achieved or {}
    return [
        fr for fr in FR_CODES if (level := achieved.get(fr)) is not None and level < (target.get(fr) or 0)
    ]


def sl_unassessed(target: dict[str, int] | None, achieved: SLValues | None) -> list[str]:
    """The FRs the zone sets a target above SL 0 for whose achieved level is not assessed.

    Without a zone (no target) nothing is reported: an unassessed FR matters only where a target applies.
    The release gate refuses production while this list is not empty.
    """
    if not target:
        return []
    achieved = achieved or {}
    return [fr for fr in FR_CODES if (target.get(fr) or 0) > 0 and achieved.get(fr) is None]


# --- tables --------------------------------------------------------------------------------------------


class Site(SQLModel, table=True):
    code: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revision: int = 1


class Line(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("site", "code", name="uq_line_site_code"),)

    id: int | None = Field(default=None, primary_key=True)
    site: str = Field(foreign_key="site.code", max_length=16)
    code: str = Field(max_length=24)
    name: str = Field(max_length=200)


class IdCounter(SQLModel, table=True):
    """Server-made identifiers (``AIS-000123``): one counter row per kind, advanced in the transaction."""

    __tablename__ = "id_counter"

    kind: str = Field(primary_key=True, max_length=32)
    value: int = 0


class AISystem(SQLModel, table=True):
    __tablename__ = "ai_system"
    # Every list filters live systems (archived_at IS NULL) and pages in id order: with archived_at ahead of
    # id, a filtered count is answered from the index alone and a page is read in order without a sort.
    __table_args__ = (
        sa.Index("ix_ai_system_live", "archived_at", "id"),
        sa.Index("ix_ai_system_site", "site", "archived_at", "id"),
        sa.Index("ix_ai_system_site_class", "site", "ai_act_class", "archived_at", "id"),
        sa.Index("ix_ai_system_site_stage", "site", "lifecycle_stage", "archived_at", "id"),
        sa.Index("ix_ai_system_site_line", "site", "line", "archived_at", "id"),
        sa.Index("ix_ai_system_class", "ai_act_class", "archived_at", "id"),
        sa.Index("ix_ai_system_owner", "business_owner", "archived_at", "id"),
        sa.Index("ix_ai_system_zone", "zone", "archived_at", "id"),
        sa.Index("ix_ai_system_tier", "risk_tier", "archived_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=200)
    purpose: str = Field(max_length=5000)
    site: str = Field(foreign_key="site.code", max_length=16)
    line: str | None = Field(default=None, max_length=24)
    business_owner: str = Field(max_length=40)
    technical_owner: str | None = Field(default=None, max_length=40)
    vendor: str | None = Field(default=None, max_length=200)
    ai_act_role: AIActRole = Field(default=AIActRole.deployer, sa_type=enum_column(AIActRole, 32))
    lifecycle_stage: LifecycleStage = Field(default=LifecycleStage.idea, sa_type=enum_column(LifecycleStage))
    personal_data: bool = False
    zone: str | None = Field(default=None, foreign_key="zone.code", max_length=24)
    sl_achieved: dict[str, int | None] | None = Field(default=None, sa_type=sa.JSON)
    ai_act_class: AIActClass | None = Field(default=None, sa_type=enum_column(AIActClass))
    risk_tier: RiskTier | None = Field(default=None, sa_type=enum_column(RiskTier))
    intended_use: str | None = Field(default=None, max_length=5000)
    out_of_scope_uses: str | None = Field(default=None, max_length=5000)
    human_oversight: str | None = Field(default=None, max_length=5000)
    limitations: str | None = Field(default=None, max_length=5000)
    training_data: str | None = Field(default=None, max_length=5000)
    license: str | None = Field(default=None, max_length=64)
    monitoring_interval_hours: int | None = None
    replicated_from: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revision: int = 1
    # bumped by every change of a SIGNOFF_FACTS field; an approval remembers the value it was requested at
    facts_revision: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_version"
    __table_args__ = (
        sa.UniqueConstraint("system_id", "version", name="uq_model_version_system_version"),
        sa.Index("ix_model_version_digest", "system_id", "artifact_digest"),
    )

    id: int | None = Field(default=None, primary_key=True)
    system_id: str = Field(foreign_key="ai_system.id", max_length=16)
    version: str = Field(max_length=64)
    artifact_digest: str = Field(max_length=71)
    notes: str | None = Field(default=None, max_length=5000)
    metrics: dict[str, float] | None = Field(default=None, sa_type=sa.JSON)
    created_by: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime)


# --- API schemas ---------------------------------------------------------------------------------------


class LineIn(SQLModel):
    model_config = {"extra": "forbid"}
    code: LineCode
    name: Name


class SiteCreate(SQLModel):
    model_config = {"extra": "forbid"}
    code: SiteCode
    name: Name
    lines: list[LineIn] = Field(default_factory=list, max_length=200)


class SiteUpdate(SQLModel):
    model_config = {"extra": "forbid"}
    name: Name | None = None
    lines: list[LineIn] | None = Field(default=None, max_length=200)
    revision: int | None = None


class SiteRead(SQLModel):
    code: str
    name: str
    lines: list[LineIn]
    created_at: datetime
    revision: int


class _OptionalSystemFields(SQLModel):
    """The fields a create and an update both take, each optional (``null`` = not set)."""

    model_config = {"extra": "forbid"}

    line: LineCode | None = None
    technical_owner: UsernameRef | None = None
    vendor: ShortText | None = None
    zone: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_.-]{0,23}$")] | None = None
    sl_achieved: SLAchieved | None = None
    intended_use: LongText | None = None
    out_of_scope_uses: LongText | None = None
    human_oversight: LongText | None = None
    limitations: LongText | None = None
    training_data: LongText | None = None
    license: Annotated[str, StringConstraints(max_length=64)] | None = None
    monitoring_interval_hours: int | None = Field(default=None, ge=1, le=24 * 366)


Purpose = Annotated[str, StringConstraints(min_length=1, max_length=5000)]


class SystemCreate(_OptionalSystemFields):
    name: Name
    purpose: Purpose
    site: SiteCode
    business_owner: UsernameRef
    ai_act_role: AIActRole = AIActRole.deployer
    lifecycle_stage: LifecycleStage = LifecycleStage.idea
    personal_data: bool = False


class SystemUpdate(_OptionalSystemFields):
    """A partial update; ``revision`` (or ``If-Match``) must name the revision the change was based on."""

    name: Name | None = None
    purpose: Purpose | None = None
    business_owner: UsernameRef | None = None
    ai_act_role: AIActRole | None = None
    lifecycle_stage: LifecycleStage | None = None
    personal_data: bool | None = None
    revision: int | None = None

    @field_validator("name", "purpose", "business_owner", "ai_act_role", "lifecycle_stage", "personal_data")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class SystemRead(SQLModel):
    id: str
    name: str
    purpose: str
    site: str
    line: str | None
    business_owner: str
    technical_owner: str | None
    vendor: str | None
    ai_act_role: AIActRole
    lifecycle_stage: LifecycleStage
    personal_data: bool
    zone: str | None
    sl_achieved: dict[str, int | None] | None = Field(
        description="achieved level per FR; null = not assessed (never counted as SL 0)"
    )
    ai_act_class: AIActClass | None
    risk_tier: RiskTier | None
    sl_gap: list[str] = Field(description="FRs assessed below the zone's target (SL-A < SL-T)")
    sl_unassessed: list[str] = Field(
        default_factory=list,
        description="FRs the zone sets a target above SL 0 for whose achieved level is not assessed (null)",
    )
    ot_system: bool = Field(description="placed in a zone at Purdue level 0-3 (operational technology)")
    intended_use: str | None
    out_of_scope_uses: str | None
    human_oversight: str | None
    limitations: str | None
    training_data: str | None
    license: str | None
    monitoring_interval_hours: int | None
    monitoring: str | None = Field(
        default=None,
        description="monitoring state: active | lapsed | missing | not_required (see app.monitoring.service)",
    )
    replicated_from: str | None
    created_at: datetime
    updated_at: datetime
    revision: int


class SystemPage(Page[SystemRead]):
    """A page of systems. ``total`` counts matching systems up to ``offset`` + 1000; past that it is that
    number, and ``total_exact`` is false (there are more)."""

    total_exact: bool = PydanticField(
        default=True, description="false when more systems match than total says (counting stopped there)"
    )


class VersionCreate(SQLModel):
    model_config = {"extra": "forbid"}

    version: VersionString
    artifact_digest: ArtifactDigest
    notes: LongText | None = None
    metrics: dict[MetricKey, MetricValue] | None = Field(default=None, max_length=100)


class VersionRead(SQLModel):
    version: str
    artifact_digest: str
    notes: str | None
    metrics: dict[str, float] | None
    created_by: str
    created_at: datetime


class SystemOrder(StrEnum):
    id = "id"
    name = "name"
    site = "site"
    lifecycle_stage = "lifecycle_stage"
    ai_act_class = "ai_act_class"
    risk_tier = "risk_tier"
    updated_at = "updated_at"
    created_at = "created_at"
