"""A system's technical file (AI Act Art. 11, Annex IV): its recorded sections and its revision."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic import Field as SchemaField
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime

MAX_TEXT = 20_000
MAX_EVIDENCE = 50
UPDATE_ACTION = "technical_file.update"


class TechnicalFile(SQLModel, table=True):
    """The revision of a system's technical file: every accepted change to any section raises it by one."""

    __tablename__ = "technical_file"

    system_id: str = Field(foreign_key="ai_system.id", primary_key=True, max_length=16)
    revision: int = 0
    updated_by: str = Field(max_length=40)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class TechnicalFileSection(SQLModel, table=True):
    """The recorded text of one Annex IV section of a system, with the evidence it links."""

    __tablename__ = "technical_file_section"

    system_id: str = Field(foreign_key="ai_system.id", primary_key=True, max_length=16)
    section_id: str = Field(primary_key=True, max_length=16)
    text: str = Field(default="", sa_type=sa.Text)
    evidence: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    revision: int = 1  # the section's own count of changes
    updated_by: str = Field(max_length=40)
    updated_at: datetime = Field(sa_type=UTCDateTime)


# --- schemas -------------------------------------------------------------------------------------------

EvidenceId = Annotated[str, StringConstraints(min_length=1, max_length=16)]


class SectionRead(BaseModel):
    """One Annex IV section: its recorded text (empty when not recorded) and linked evidence ids."""

    id: str
    title: str
    text: str
    evidence: list[str]
    what_to_supply: str
    provider_supplies: bool
    revision: int
    updated_by: str | None
    updated_at: datetime | None


class TechnicalFileRead(BaseModel):
    """Every Annex IV section of a system, in Annex IV order, and the file's revision."""

    system_id: str
    sections: list[SectionRead]
    revision: int


class SectionUpdate(BaseModel):
    """The new content of one section: its whole text (an empty text clears it) and, if given, its whole
    evidence list (left out: the links stay as they are)."""

    model_config = ConfigDict(extra="forbid")

    id: str = SchemaField(max_length=16)
    text: str = SchemaField(max_length=MAX_TEXT)
    evidence: list[EvidenceId] | None = SchemaField(default=None, max_length=MAX_EVIDENCE)


class TechnicalFileUpdate(BaseModel):
    """Any subset of the sections, with the file revision the change was based on."""

    model_config = ConfigDict(extra="forbid")

    sections: list[SectionUpdate] = SchemaField(min_length=1, max_length=64)
    revision: int | None = None


class TechnicalFileChange(BaseModel):
    """One recorded change of one section, from the audit trail."""

    seq: int
    at: datetime
    actor: str
    section: str
    revision: int
    before_sha256: str | None
    after_sha256: str | None
    text: str
    evidence_before: list[str]
    evidence: list[str]
