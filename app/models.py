"""Every table of the service, imported in one place for Alembic and the test database."""

from __future__ import annotations

from sqlmodel import SQLModel

from app.audit.models import AuditEvent
from app.identity.models import ApiToken, AuthzRevision, RoleGrant, User
from app.systems.models import AISystem, IdCounter, Line, ModelVersion, Site
from app.zones.models import Conduit, Zone

metadata = SQLModel.metadata

__all__ = [
    "AISystem",
    "ApiToken",
    "AuditEvent",
    "AuthzRevision",
    "Conduit",
    "IdCounter",
    "Line",
    "ModelVersion",
    "RoleGrant",
    "Site",
    "User",
    "Zone",
    "metadata",
]
