"""Users, API tokens and per-site role grants."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from pydantic import EmailStr, StringConstraints
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime

USERNAME_PATTERN = r"^[a-z][a-z0-9._-]{1,39}$"
SITE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{1,15}$"

Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
SiteScope = Annotated[str, StringConstraints(pattern=r"^(\*|[A-Z0-9][A-Z0-9_-]{1,15})$")]


class Role(StrEnum):
    admin = "admin"
    compliance_officer = "compliance_officer"
    risk_officer = "risk_officer"
    ot_security = "ot_security"
    safety_engineer = "safety_engineer"
    dpo = "dpo"
    business_owner = "business_owner"
    auditor = "auditor"
    mlops = "mlops"


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=40, unique=True)
    display_name: str = Field(default="", max_length=120)
    email: str | None = Field(default=None, max_length=254)
    password_hash: str | None = Field(default=None, max_length=255)
    is_active: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)
    revision: int = 1


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 is stored, the token itself is shown once at issue."""

    __tablename__ = "api_token"

    id: str = Field(primary_key=True, max_length=32)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    name: str = Field(max_length=80)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RoleGrant(SQLModel, table=True):
    """A role held by a user in one site, or in every site (``*``)."""

    __tablename__ = "role_grant"
    __table_args__ = (sa.UniqueConstraint("user_id", "role", "site", name="uq_role_grant"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    role: Role = Field(sa_type=sa.String(32))
    site: str = Field(max_length=16)
    granted_by: str = Field(max_length=40)
    granted_at: datetime = Field(sa_type=UTCDateTime)


class WebSession(SQLModel, table=True):
    """A browser session, kept on the server: the cookie carries only its random token (stored as SHA-256).

    Signing out, a password change, deactivation and a role revocation end the session here, so the same
    cookie is refused afterwards even though its signature is still good.
    """

    __tablename__ = "web_session"

    id: str = Field(primary_key=True, max_length=32)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_reason: str | None = Field(default=None, max_length=40)


class AuthzRevision(SQLModel, table=True):
    """A counter bumped with every grant change, so each worker knows when to reload its Casbin roles."""

    __tablename__ = "authz_revision"

    id: int = Field(default=1, primary_key=True)
    revision: int = 0


# --- API schemas -------------------------------------------------------------------------------------


class UserCreate(SQLModel):
    username: Username
    display_name: Annotated[str, StringConstraints(max_length=120)] = ""
    email: EmailStr | None = None
    password: Annotated[str, StringConstraints(min_length=12, max_length=256)] | None = None


class PasswordChange(SQLModel):
    """A new password; users changing their own also give the current one (an admin resetting needs not)."""

    current_password: Annotated[str, StringConstraints(max_length=256)] | None = None
    new_password: Annotated[str, StringConstraints(min_length=12, max_length=256)]


class GrantRead(SQLModel):
    role: Role
    site: str


class UserRead(SQLModel):
    username: str
    display_name: str
    email: str | None
    is_active: bool
    created_at: datetime
    roles: list[GrantRead] = []
    revision: int


class GrantCreate(SQLModel):
    role: Role
    site: SiteScope


class TokenCreate(SQLModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)] = "api"
    expires_days: int = Field(default=90, ge=1, le=3650)


class TokenIssued(SQLModel):
    id: str
    token: str
    name: str
    expires_at: datetime


class TokenRead(SQLModel):
    id: str
    username: str
    name: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
