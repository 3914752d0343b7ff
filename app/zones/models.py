"""IEC 62443 zones and conduits of a site, with target security-level vectors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime
from app.systems.models import Name, SiteCode, SLVector

ZONE_PATTERN = r"^[A-Z0-9][A-Z0-9_.-]{0,23}$"
ZoneCode = Annotated[str, StringConstraints(pattern=ZONE_PATTERN)]


class Zone(SQLModel, table=True):
    code: str = Field(primary_key=True, max_length=24)
    name: str = Field(max_length=200)
    site: str = Field(foreign_key="site.code", max_length=16, index=True)
    purdue_level: float = Field(ge=0, le=5)
    sl_target: dict[str, int] = Field(sa_type=sa.JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revision: int = 1


class Conduit(SQLModel, table=True):
    """A communication channel between two zones, with its own target security levels."""

    __table_args__ = (sa.UniqueConstraint("from_zone", "to_zone", name="uq_conduit_zones"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    from_zone: str = Field(foreign_key="zone.code", max_length=24)
    to_zone: str = Field(foreign_key="zone.code", max_length=24)
    sl_target: dict[str, int] = Field(sa_type=sa.JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ZoneCreate(SQLModel):
    model_config = {"extra": "forbid"}
    code: ZoneCode
    name: Name
    site: SiteCode
    purdue_level: float = Field(ge=0, le=5, description="Purdue level 0-5 (3.5 for an industrial DMZ)")
    sl_target: SLVector


class ZoneUpdate(SQLModel):
    model_config = {"extra": "forbid"}
    name: Name | None = None
    purdue_level: float | None = Field(default=None, ge=0, le=5)
    sl_target: SLVector | None = None
    revision: int | None = None


class ZoneRead(SQLModel):
    code: str
    name: str
    site: str
    purdue_level: float
    is_ot: bool
    sl_target: dict[str, int]
    revision: int


class ConduitCreate(SQLModel):
    model_config = {"extra": "forbid"}
    name: Name
    from_zone: ZoneCode
    to_zone: ZoneCode
    sl_target: SLVector


class ConduitRead(SQLModel):
    id: int
    name: str
    from_zone: str
    to_zone: str
    sl_target: dict[str, int]
