"""Approval requests for rolling a model version out, and the sign-offs they collect."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime
from app.identity.models import Role
from app.systems.models import ArtifactDigest, VersionString

APPROVAL_ID_PATTERN = r"^APR-\d{6,}$"
# "recall >= 0.97": a go/no-go criterion on one of the version's recorded metrics.
CONDITION_PATTERN = (
    r"^\s*[A-Za-z][A-Za-z0-9_.-]{0,63}\s*(>=|<=|==|!=|>|<)\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
)


class Environment(StrEnum):
    pilot = "pilot"
    production = "production"


class ApprovalState(StrEnum):
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"
    revoked = "revoked"
    expired = "expired"


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


class ApprovalRequest(SQLModel, table=True):
    """A request to run one version (by artifact digest) of one system in one environment."""

    __tablename__ = "approval_request"
    __table_args__ = (
        sa.Index("ix_approval_release", "system_id", "version", "environment", "id"),
        sa.Index("ix_approval_state_site", "state", "site", "id"),
        sa.Index("ix_approval_valid_until", "state", "valid_until"),
        # At most one open request per system, version and environment (the service checks first and
        # answers 409; this index is the last line of defence).
        sa.Index(
            "uq_approval_open",
            "system_id",
            "version",
            "environment",
            unique=True,
            sqlite_where=sa.text("state = 'submitted'"),
            postgresql_where=sa.text("state = 'submitted'"),
        ),
    )

    id: str = Field(primary_key=True, max_length=16)
    system_id: str = Field(foreign_key="ai_system.id", max_length=16)
    site: str = Field(max_length=16)
    version: str = Field(max_length=64)
    artifact_digest: str = Field(max_length=71)
    environment: Environment = Field(sa_type=sa.String(16))
    requester: str = Field(max_length=40)
    justification: str = Field(max_length=5000)
    state: ApprovalState = Field(sa_type=sa.String(16))
    required_signoffs: list[str] = Field(sa_type=sa.JSON)
    # role -> ids of the rules in policies/signoff_rules.yaml that require it
    required_because: dict[str, list[str]] = Field(default_factory=dict, sa_type=sa.JSON)
    # The classification the request was judged under; a later class change invalidates the approval.
    classification_id: int | None = Field(default=None, foreign_key="classification.id")
    ai_act_class: str = Field(max_length=16)
    # IEC 62443 FRs below the zone's target at submission: what the OT security sign-off accepts.
    sl_gap: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    validity_months: int = 12
    supersedes: str | None = Field(default=None, max_length=16)
    conditions: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    content_hash: str = Field(max_length=64)
    # The system's ``facts_revision`` when the request was made: a later change of a fact that decides who
    # must sign (owner, personal data, zone, SL, AI Act role) voids the request and its approval.
    facts_revision: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    valid_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=40)
    close_reason: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    revision: int = 1


class SignOff(SQLModel, table=True):
    """One signer's decision for one required role; ``hash`` binds it to the request's content."""

    __tablename__ = "sign_off"
    __table_args__ = (sa.UniqueConstraint("approval_id", "role", name="uq_sign_off_role"),)

    id: int | None = Field(default=None, primary_key=True)
    approval_id: str = Field(foreign_key="approval_request.id", max_length=16, index=True)
    role: Role = Field(sa_type=sa.String(32))
    signer: str = Field(max_length=40)
    decision: Decision = Field(sa_type=sa.String(16))
    comment: str | None = Field(default=None, max_length=5000)
    conditions: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    # The origin's approval this sign-off was carried over from when a replica reuses it (issue 8).
    carried_over_from: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(sa_type=UTCDateTime)
    hash: str = Field(max_length=64)


class WebhookOutbox(SQLModel, table=True):
    """An approval event waiting for (or done with) delivery to ``AIREG_WEBHOOK_URL``.

    Written in the transaction that changed the approval, delivered by a background thread after commit.
    """

    __tablename__ = "webhook_outbox"
    __table_args__ = (sa.Index("ix_webhook_outbox_due", "delivered_at", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    event: str = Field(max_length=64)
    approval_id: str | None = Field(default=None, max_length=16)
    payload: dict[str, Any] = Field(sa_type=sa.JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    gave_up_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=500)


# --- API schemas ---------------------------------------------------------------------------------------

Comment = Annotated[str, StringConstraints(max_length=5000)]
ConditionText = Annotated[str, StringConstraints(pattern=CONDITION_PATTERN, max_length=200)]


class ApprovalCreate(SQLModel):
    model_config = {"extra": "forbid"}

    version: VersionString
    environment: Environment
    justification: Annotated[str, StringConstraints(min_length=1, max_length=5000)]
    artifact_digest: ArtifactDigest | None = Field(
        default=None, description="optional: must equal the version's recorded digest"
    )


class SignOffCreate(SQLModel):
    model_config = {"extra": "forbid"}

    role: Role
    decision: Decision
    comment: Comment | None = None
    conditions: list[ConditionText] = Field(
        default_factory=list,
        max_length=20,
        description='go/no-go criteria on the version\'s metrics, e.g. ["recall >= 0.97"] (approve only)',
    )


class RevokeRequest(SQLModel):
    model_config = {"extra": "forbid"}

    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]


class WithdrawRequest(SQLModel):
    model_config = {"extra": "forbid"}

    reason: Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)] | None = None


class ConditionRead(SQLModel):
    metric: str
    op: str
    value: float
    expression: str
    role: str | None = None
    signer: str | None = None


class SignOffRead(SQLModel):
    role: str
    signer: str
    decision: Decision
    comment: str | None
    conditions: list[ConditionRead]
    created_at: datetime
    hash: str
    hash_valid: bool
    carried_over_from: str | None = None


class ApprovalRead(SQLModel):
    id: str
    system_id: str
    site: str
    version: str
    artifact_digest: str
    environment: Environment
    requester: str
    justification: str
    state: ApprovalState
    required_signoffs: list[str]
    required_because: dict[str, list[str]]
    pending_signoffs: list[str]
    signoffs: list[SignOffRead]
    conditions: list[ConditionRead]
    ai_act_class: str
    classification_id: int | None
    reclassified_since_approval: bool
    changed_since_approval: bool = False
    sl_gap: list[str]
    validity_months: int
    valid_until: datetime | None
    review_due: bool
    supersedes: str | None
    decided_at: datetime | None
    closed_by: str | None
    close_reason: str | None
    content_hash: str
    created_at: datetime
    updated_at: datetime
    revision: int


class SignOffVerification(SQLModel):
    role: str
    signer: str
    hash_valid: bool


class ApprovalVerification(SQLModel):
    id: str
    valid: bool
    content_valid: bool
    conditions_valid: bool
    validity_valid: bool
    signoffs: list[SignOffVerification]


class ReleaseReason(SQLModel):
    code: str
    message: str
    severity: Literal["error", "warning"] = "error"


class ReleasePermission(SQLModel):
    """The release gate's answer; warnings (e.g. ``SL_GAP_ACCEPTED``) ride in ``reasons`` with
    ``severity: "warning"`` and never deny."""

    allowed: bool
    system: str
    version: str
    environment: Environment
    approval_id: str | None
    valid_until: datetime | None
    reasons: list[ReleaseReason]
    checked_at: datetime
