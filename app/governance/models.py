"""Schemas of the governance pack: the policy files as written (``policies/ai_policy.yaml``,
``policies/raci.yaml``) and the pack built from them, policy.csv and the sign-off rules (no tables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from app.classification.catalog import _Entry
from app.documents.models import MEDIA_TYPES
from app.identity.models import Role

DOCUMENT = "governance-pack"  # the ``document`` of its download events, and the file name
SectionId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
# "resource, action" as in policy.csv; the resource may end in ".*" (every resource with that prefix)
Permission = Annotated[
    str, StringConstraints(pattern=r"^\s*[a-z][a-z0-9_.]*?(\.\*)?\s*,\s*[a-z][a-z0-9_]*\s*$")
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class PackFormat(StrEnum):
    md = "md"
    docx = "docx"
    pdf = "pdf"


# --- policies/ai_policy.yaml ---------------------------------------------------------------------------


class PolicySection(_Entry):
    """One section of the AI policy: a heading, its citations and its statements."""

    id: SectionId
    title: Text
    refs: list[Text] = Field(default_factory=list)
    statements: list[Text] = Field(min_length=1)


class AIPolicy(_Entry):
    """``policies/ai_policy.yaml``: the organisation's AI policy as data."""

    format: Literal[1]
    title: Text
    version: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    owner_role: Role
    effective_date: date
    review_every_months: int = Field(ge=1, le=60)
    roles: dict[Role, Text] = Field(default_factory=dict)
    sections: list[PolicySection] = Field(min_length=1)


# --- policies/raci.yaml --------------------------------------------------------------------------------


class RaciAssignment(_Entry):
    """Who is accountable for a kind of decision, and which permissions make a role consulted or informed."""

    accountable: Role
    consulted: list[Permission] = Field(default_factory=list)
    informed: list[Permission] = Field(default_factory=list)


class RaciDecision(RaciAssignment):
    """A core decision: the permissions that make a role responsible for it."""

    id: SectionId
    title: Text
    responsible: list[Permission] = Field(min_length=1)


class RaciSpec(_Entry):
    """``policies/raci.yaml``: how permissions and sign-off rules become RACI cells."""

    format: Literal[1]
    signoff_rules: RaciAssignment
    decisions: list[RaciDecision] = Field(default_factory=list)


# --- the pack ------------------------------------------------------------------------------------------


class RoleEntry(BaseModel):
    """A role of policy.csv: what it is for (ai_policy.yaml) and what policy.csv lets it do."""

    id: str
    description: str | None
    permissions: list[str]  # "resource: action, action", one per resource, in policy.csv order


class SignoffRight(BaseModel):
    """A kind of sign-off the rules require, and the roles policy.csv lets sign it."""

    signoff: str
    signers: list[str]
    required_by: list[str]  # rule ids


class RuleEntry(BaseModel):
    """A rule or prerequisite of ``signoff_rules.yaml``, in words."""

    id: str
    description: str
    when: str
    requires: str
    comment: str | None = None


class FrameworkEntry(BaseModel):
    id: str
    title: str
    version: str


class RaciRow(BaseModel):
    """One decision of the matrix; ``cells`` line up with the pack's ``roles``."""

    id: str
    title: str
    source: str
    cells: list[str]


class SourceFile(BaseModel):
    file: str
    sha256: str


class GovernancePack(BaseModel):
    """Everything the pack shows, derived from ``policies/`` and the adopted frameworks."""

    policy: AIPolicy
    next_review: date
    roles: list[RoleEntry]
    signoff_rights: list[SignoffRight]
    rules: list[RuleEntry]
    prerequisites: list[RuleEntry]
    validity_months: dict[str, int]
    reject_requires_comment: bool
    frameworks: list[FrameworkEntry]
    legend: list[tuple[str, str]]
    raci: list[RaciRow]
    gaps: list[str]
    sources: list[SourceFile]

    @property
    def role_ids(self) -> list[str]:
        """The matrix's columns: every role of policy.csv, in the order it first appears there."""
        return [r.id for r in self.roles]


@dataclass
class PackDocument:
    """A rendered pack, with what its download event records."""

    extension: str
    content: bytes
    sha256: str
    sources: list[SourceFile] = field(default_factory=list)

    @property
    def media_type(self) -> str:
        """The Content-Type of the file."""
        return MEDIA_TYPES[self.extension]

    @property
    def filename(self) -> str:
        """``governance-pack.md`` or ``governance-pack.docx``."""
        return f"{DOCUMENT}.{self.extension}"
