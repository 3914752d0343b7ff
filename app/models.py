"""Every table of the service, imported in one place for Alembic and the test database."""

from __future__ import annotations

from sqlmodel import SQLModel

from app.approvals.models import ApprovalRequest, SignOff, WebhookOutbox
from app.audit.models import AuditEvent
from app.classification.models import Classification, NistChecklistItem, RiskAssessment
from app.compliance.models import (
    Evidence,
    EvidenceBlob,
    EvidenceChunk,
    OrganisationRequirement,
    QuestionnaireResponse,
    Requirement,
    RequirementEvidence,
    RequirementTally,
    RequirementTallyState,
    TrainingRecord,
)
from app.identity.models import ApiToken, AuthzRevision, RoleGrant, User, WebSession
from app.incidents.models import Incident
from app.integrations.mlflow.models import MlflowLink
from app.monitoring.models import Deployment, MonitoringReport
from app.security.models import AuthFailure, InstanceSecret
from app.systems.models import AISystem, IdCounter, Line, ModelVersion, Site
from app.technical_file.models import TechnicalFile, TechnicalFileSection
from app.zones.models import Conduit, Zone

metadata = SQLModel.metadata

# Made by hand in migrations, outside the models: the systems text search (SQLite FTS5 table and its shadow
# tables, PostgreSQL trigram indexes); autogenerate (``alembic check``) must neither drop nor recreate them.
UNMODELLED_PREFIXES = ("ai_system_search",)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's filter: everything but the objects made by hand (``UNMODELLED_PREFIXES``)."""
    return not (name or "").startswith(UNMODELLED_PREFIXES)


__all__ = [
    "AISystem",
    "ApiToken",
    "ApprovalRequest",
    "AuditEvent",
    "AuthFailure",
    "AuthzRevision",
    "Classification",
    "Conduit",
    "Deployment",
    "Evidence",
    "EvidenceBlob",
    "EvidenceChunk",
    "IdCounter",
    "Incident",
    "InstanceSecret",
    "Line",
    "MlflowLink",
    "ModelVersion",
    "MonitoringReport",
    "NistChecklistItem",
    "OrganisationRequirement",
    "QuestionnaireResponse",
    "Requirement",
    "RequirementEvidence",
    "RequirementTally",
    "RequirementTallyState",
    "RiskAssessment",
    "RoleGrant",
    "SignOff",
    "Site",
    "TechnicalFile",
    "TechnicalFileSection",
    "TrainingRecord",
    "User",
    "WebSession",
    "WebhookOutbox",
    "Zone",
    "metadata",
]
