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
    derived. ``evidence``: the ids linked to it; ``crosswalk_evidence``: ids linked to the controls it maps
    to (``maps_to``) in the same system, which count for it too. ``status`` is as of now: ``met`` whose
    evidence has all expired reads ``open`` (``evidence_current`` false) before the sweep records it.
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
    crosswalk_evidence: list[str]
    evidence_current: bool
    revision: int
    updated_at: datetime
    updated_by: str | None


EvidenceId = Annotated[str, StringConstraints(max_length=16, pattern=r"^EVD-[0-9]{6,10}$")]


class RequirementUpdate(BaseModel):
    """A change of status, note, owner role or linked evidence (``evidence`` replaces the linked set),
    based on ``revision`` (or If-Match)."""

    model_config = {"extra": "forbid"}

    status: RequirementStatus | None = None
    evidence: list[EvidenceId] | None = Field(default=None, max_length=100)
    note: Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)] | None = None
    owner_role: Role | None = None
    revision: int | None = None


# --- evidence ------------------------------------------------------------------------------------------
#
# Evidence files are content-addressed: the bytes are stored once per SHA-256 (``evidence_blob`` and its
# ``evidence_chunk`` rows in the database, or an object in the S3 store), and each upload is an
# ``evidence`` row naming them, owned by a system or by the organisation (``system_id`` None).

ORGANISATION_SCOPE = "organisation"  # ``requirement_evidence.scope`` of organisation-wide requirements


class EvidenceBlob(SQLModel, table=True):
    """The bytes of one file, identified by their SHA-256 and kept as ``chunks`` rows of at most 1 MiB, or
    (``chunks`` 0) as one object in the S3 evidence store (app/compliance/blob_store.py)."""

    __tablename__ = "evidence_blob"

    sha256: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_type=sa.BigInteger)
    chunks: int
    created_at: datetime = Field(sa_type=UTCDateTime)


class EvidenceChunk(SQLModel, table=True):
    """One piece of a blob, in order of ``seq`` (0, 1, ...)."""

    __tablename__ = "evidence_chunk"

    sha256: str = Field(foreign_key="evidence_blob.sha256", primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)
    data: bytes = Field(sa_type=sa.LargeBinary)


class Evidence(SQLModel, table=True):
    """An uploaded evidence file of a system (or of the organisation), valid until ``valid_until`` if set."""

    __tablename__ = "evidence"

    id: str = Field(primary_key=True, max_length=16)
    system_id: str | None = Field(default=None, foreign_key="ai_system.id", max_length=16, index=True)
    title: str = Field(max_length=200)
    filename: str = Field(max_length=255)
    sha256: str = Field(foreign_key="evidence_blob.sha256", max_length=64, index=True)
    size: int = Field(sa_type=sa.BigInteger)
    media_type: str = Field(max_length=100)
    valid_until: date | None = None
    created_by: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime)


class RequirementEvidence(SQLModel, table=True):
    """Evidence linked to a requirement (``scope``: the system id, or ``organisation``)."""

    __tablename__ = "requirement_evidence"

    scope: str = Field(primary_key=True, max_length=16)
    framework: str = Field(primary_key=True, max_length=32)
    control: str = Field(primary_key=True, max_length=64)
    evidence_id: str = Field(foreign_key="evidence.id", primary_key=True, max_length=16, index=True)
    linked_by: str = Field(max_length=40)
    linked_at: datetime = Field(sa_type=UTCDateTime)


class EvidenceRead(BaseModel):
    """An evidence item as the API shows it; ``current``: not past ``valid_until`` today."""

    id: str
    system_id: str | None
    title: str
    filename: str
    sha256: str
    size: int
    media_type: str
    valid_until: date | None
    current: bool
    created_by: str
    created_at: datetime
    requirements: list[str]


# --- AI literacy training records ---
#
# AI Act Art. 4 asks providers and deployers to ensure a sufficient level of AI literacy of their staff: the
# register records who was trained, in what, when, and until when the training counts. A record is never
# deleted; a wrong or obsolete one is withdrawn (``removed_at``, ``removed_by``, the reason in the trail).


class TrainingRecord(SQLModel, table=True):
    """One completed AI literacy training of one person, current while ``valid_until`` is None or not past."""

    __tablename__ = "training_record"

    id: str = Field(primary_key=True, max_length=16)
    person: str = Field(max_length=200)
    username: str | None = Field(default=None, max_length=40, index=True)
    site: str | None = Field(default=None, foreign_key="site.code", max_length=16, index=True)
    course: str = Field(max_length=200)
    provider: str | None = Field(default=None, max_length=200)
    completed_on: date
    valid_until: date | None = None
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    removed_by: str | None = Field(default=None, max_length=64)


TrainingText = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
TrainingUsername = Annotated[str, StringConstraints(min_length=1, max_length=40, strip_whitespace=True)]
TrainingSite = Annotated[str, StringConstraints(min_length=1, max_length=16, strip_whitespace=True)]


class TrainingCreate(BaseModel):
    """A completed training to record: who (``person``, optionally a registry ``username`` and a ``site``
    code), what (``course``, ``provider``), when (``completed_on``, not in the future) and until when it
    counts (``valid_until``, not before ``completed_on``; None: it does not expire)."""

    model_config = {"extra": "forbid"}

    person: TrainingText
    username: TrainingUsername | None = None
    site: TrainingSite | None = None
    course: TrainingText
    provider: TrainingText | None = None
    completed_on: date
    valid_until: date | None = None


class TrainingWithdraw(BaseModel):
    """Why a training record is withdrawn (kept, no longer counted; the reason goes into the trail)."""

    model_config = {"extra": "forbid"}

    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]


class TrainingRead(BaseModel):
    """A training record as the API shows it; ``current``: not withdrawn, not past ``valid_until`` today."""

    id: str
    person: str
    username: str | None
    site: str | None
    course: str
    provider: str | None
    completed_on: date
    valid_until: date | None
    current: bool
    created_by: str
    created_at: datetime
    removed_at: datetime | None
    removed_by: str | None


class TrainingSiteFigures(BaseModel):
    """The figures of one site (``by_site`` key ``-``: records without a site)."""

    people_trained_current: int
    records_current: int
    records_expired: int
    expiring_within_30_days: int


class TrainingSummary(TrainingSiteFigures):
    """AI literacy across the organisation as of today, withdrawn records left out: people with at least one
    current record (by username, else by name), current and expired records, current records whose
    ``valid_until`` falls within the next 30 days, and the same figures per site."""

    by_site: dict[str, TrainingSiteFigures]


# --- questionnaires ---
#
# Guided forms defined as data (risk_catalog/questionnaires/: the FRIA of AI Act Art. 27, the DPIA screening
# of GDPR Art. 35). A response is a draft while answers are added; completing it renders the answers as a
# document, stores that as evidence and links it to the form's requirements. A completed response is
# read-only.


class QuestionnaireStatus(StrEnum):
    """``draft``: answers may change; ``completed``: rendered, stored as evidence, read-only."""

    draft = "draft"
    completed = "completed"


class QuestionnaireResponse(SQLModel, table=True):
    """The answers of one system to one questionnaire (``answers``: question id -> answer)."""

    __tablename__ = "questionnaire_response"

    id: str = Field(primary_key=True, max_length=16)
    system_id: str = Field(foreign_key="ai_system.id", max_length=16, index=True)
    questionnaire: str = Field(max_length=32)
    questionnaire_version: str = Field(max_length=64)
    answers: dict[str, object] = Field(default_factory=dict, sa_type=sa.JSON)
    outcome: dict[str, object] | None = Field(default=None, sa_type=sa.JSON)
    status: QuestionnaireStatus = Field(default=QuestionnaireStatus.draft, sa_type=sa.String(16))
    evidence_id: str | None = Field(default=None, foreign_key="evidence.id", max_length=16)
    created_by: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_by: str = Field(max_length=40)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    completed_by: str | None = Field(default=None, max_length=40)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revision: int = 1


class QuestionnaireStart(BaseModel):
    """A new draft, with any answers known so far (question id -> answer; partial answers are fine)."""

    model_config = {"extra": "forbid"}

    answers: dict[str, object] = Field(default_factory=dict, max_length=200)


class QuestionnaireAnswers(BaseModel):
    """Answers merged into a draft (``null`` removes an answer), based on ``revision`` (or If-Match)."""

    model_config = {"extra": "forbid"}

    answers: dict[str, object] = Field(max_length=200)
    revision: int | None = None


class QuestionnaireComplete(BaseModel):
    """Complete a draft: the document's evidence counts until ``valid_until`` (None: until replaced)."""

    model_config = {"extra": "forbid"}

    valid_until: date | None = None
    revision: int | None = None


class QuestionnaireSummary(BaseModel):
    """A questionnaire in the list: ``questions`` is how many."""

    id: str
    title: str
    version: str
    legal_basis: str
    evidence_for: list[str]
    questions: int


class QuestionnaireResponseRead(BaseModel):
    """A response as the API shows it.

    ``applies``: the form is a duty for this system (its ``applies_when`` rule; None: the form sets none).
    ``missing``: required questions not yet answered. ``outcome``: the form's rule on the answers (as of
    completion once completed). ``evidence_id``: the stored document, once completed; ``linked``: the
    requirements that evidence is linked to; ``skipped``: ``evidence_for`` requirements the system does not
    have (not linked).
    """

    id: str
    system_id: str
    questionnaire: str
    questionnaire_version: str
    title: str
    status: QuestionnaireStatus
    applies: bool | None
    answers: dict[str, object]
    missing: list[str]
    outcome: dict[str, object] | None
    evidence_for: list[str]
    evidence_id: str | None
    linked: list[str]
    skipped: list[str]
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    completed_by: str | None
    completed_at: datetime | None
    revision: int


# --- the portfolio tally -------------------------------------------------------------------------------


class RequirementTally(SQLModel, table=True):
    """A system's derived requirements of one framework counted by the rules of app/compliance/service.py as
    of the day it was computed (a cache for the portfolio view; ``requirement_tally_state`` says until when
    it holds)."""

    __tablename__ = "requirement_tally"

    system_id: str = Field(foreign_key="ai_system.id", primary_key=True, max_length=16)
    framework: str = Field(primary_key=True, max_length=32)
    met: int = 0
    open: int = 0
    overdue: int = 0
    not_applicable: int = 0


class RequirementTallyState(SQLModel, table=True):
    """What a system's tally was computed from, and the last day it holds (None: until a change). Any change
    to the system's requirements deletes this row, so the next portfolio view counts the system again."""

    __tablename__ = "requirement_tally_state"

    system_id: str = Field(foreign_key="ai_system.id", primary_key=True, max_length=16)
    classification_id: int
    frameworks_key: str = Field(max_length=64)
    fresh_until: date | None = None
    computed_at: datetime = Field(sa_type=UTCDateTime)
