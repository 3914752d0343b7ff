"""IEC 62443 zones and conduits of a site, with target security-level vectors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import StringConstraints, field_validator
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime
from app.systems.models import FR_CODES, Name, SiteCode, SLVector

ZONE_PATTERN = r"^[A-Z0-9][A-Z0-9_.-]{0,23}$"
ZoneCode = Annotated[str, StringConstraints(pattern=ZONE_PATTERN)]

# Purdue model (ISA-95 / IEC 62443-1-1 reference model): levels 0-3 are operational technology; 3.5 is the
# industrial DMZ and 4-5 the enterprise side.
OT_MAX_PURDUE_LEVEL = 3.0


def is_ot_level(purdue_level: float) -> bool:
    """Whether a zone at this Purdue level holds operational technology (levels 0-3)."""
    return purdue_level <= OT_MAX_PURDUE_LEVEL


@dataclass(frozen=True, slots=True)
class ZoneFacts:
    """What a system's read view needs of its zone: the SL-T vector and the Purdue level."""

    sl_target: dict[str, int]
    purdue_level: float

    @property
    def ot(self) -> bool:
        """A system in this zone is an OT system."""
        return is_ot_level(self.purdue_level)


def _complete_vector(value: Any) -> Any:
    """A target SL vector names every FR explicitly (IEC 62443-3-2 ZCR 5: one SL-T per FR)."""
    if isinstance(value, dict):
        missing = [fr for fr in FR_CODES if fr not in value]
        if missing:
            raise ValueError(f"a target vector names every FR; missing {', '.join(missing)}")
        unset = [fr for fr in FR_CODES if value[fr] is None]
        if unset:
            # A target is decided for every FR (0 = no requirement); only an achieved level (SL-A) may be
            # left unassessed (null).
            raise ValueError(f"a target vector sets a level 0-4 for every FR; null in {', '.join(unset)}")
    return value


class Zone(SQLModel, table=True):
    """A zone of one site: a Purdue level and a target security-level vector (SL-T)."""

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


# --- API schemas ---------------------------------------------------------------------------------------


class ZoneCreate(SQLModel):
    """A new zone; ``purdue_level`` must be one the catalogue lists (0, 1, 2, 3, 3.5, 4, 5)."""

    model_config = {"extra": "forbid"}
    code: ZoneCode
    name: Name
    site: SiteCode
    purdue_level: float = Field(ge=0, le=5, description="Purdue level 0-5 (3.5 for an industrial DMZ)")
    sl_target: SLVector

    _full_target = field_validator("sl_target", mode="before")(_complete_vector)


class ZoneUpdate(SQLModel):
    """A partial zone update carrying the revision it was based on (or ``If-Match``)."""

    model_config = {"extra": "forbid"}
    name: Name | None = None
    purdue_level: float | None = Field(default=None, ge=0, le=5)
    sl_target: SLVector | None = None
    revision: int | None = None

    _full_target = field_validator("sl_target", mode="before")(_complete_vector)


class ZoneRead(SQLModel):
    """A zone; ``is_ot`` is true at Purdue levels 0-3."""

    code: str
    name: str
    site: str
    purdue_level: float
    is_ot: bool
    sl_target: dict[str, int]
    created_at: datetime
    revision: int


class ConduitCreate(SQLModel):
    """A conduit from one zone to another zone of the same site."""

    model_config = {"extra": "forbid"}
    name: Name
    from_zone: ZoneCode
    to_zone: ZoneCode
    sl_target: SLVector

    _full_target = field_validator("sl_target", mode="before")(_complete_vector)


class ConduitRead(SQLModel):
    """A conduit and the site its zones are in."""

    id: int
    name: str
    site: str
    from_zone: str
    to_zone: str
    sl_target: dict[str, int]
    created_at: datetime
