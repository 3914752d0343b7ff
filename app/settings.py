"""Typed settings read from the environment (prefix ``AIREG_``) and from ``.env``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of the service; defaults give a working embedded registry."""

    model_config = SettingsConfigDict(env_prefix="AIREG_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./aireg.db"
    database_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Signs session cookies. Unset: a random key made at first start and kept in the database
    # (app/security/instance.py); there is no default in the source.
    secret_key: SecretStr | None = Field(default=None, min_length=16)
    url: str = "http://127.0.0.1:8000"
    token: str | None = None
    risk_catalog_dir: Path = PROJECT_ROOT / "risk_catalog"
    # compliance frameworks the organisation adopts: comma-separated ids of files in
    # <risk_catalog_dir>/frameworks/, checked against the loaded files at start (app/compliance/frameworks.py)
    adopted_frameworks: str = Field(
        default="ai_act,iso42001,nist_ai_rmf",
        pattern=r"^\s*[a-z][a-z0-9_]*\s*(,\s*[a-z][a-z0-9_]*\s*)*$",
    )
    policies_dir: Path = PROJECT_ROOT / "policies"
    document_templates_dir: Path = PROJECT_ROOT / "document_templates"
    # the organisation running the registry: the provider of systems built in-house, the deployer of the
    # others (AI Act Annex V declaration of conformity, Annex VIII registration data); unset = "not recorded"
    organisation_name: str | None = Field(default=None, max_length=200)
    organisation_address: str | None = Field(default=None, max_length=500)
    token_default_expires_days: int = Field(default=90, ge=1, le=3650)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # evidence files (multipart uploads) are streamed to a temporary file and into the evidence store in
    # chunks, never held whole in memory; this caps one upload
    max_upload_bytes: int = Field(default=52_428_800, ge=1024)
    # where new evidence files are stored (app/compliance/blob_store.py): "database" (in every backup of it)
    # or "s3", an S3-compatible object store: one object per file, named by its SHA-256, in s3_bucket at
    # s3_endpoint (http(s)://host[:port]). s3 without endpoint, bucket and keys stops the service at start.
    # Files already stored stay where they are and are read from there (S3 ones need the s3_* settings).
    evidence_store: Literal["database", "s3"] = "database"
    s3_endpoint: str | None = Field(default=None, pattern=r"^https?://[^\s/?#@]+/?$")
    s3_bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    s3_region: str | None = Field(default=None, max_length=64)  # unset: asked of the store
    s3_access_key: str | None = Field(default=None, max_length=256)
    s3_secret_key: SecretStr | None = None
    max_json_depth: int = Field(default=32, ge=2, le=512)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    auth_failure_limit: int = Field(default=10, ge=1, le=10_000)
    auth_failure_window_seconds: int = Field(default=300, ge=1, le=86_400)
    webhook_url: str | None = None
    # Standard Webhooks secrets (whsec_<base64>, checked at start by app/approvals/webhooks.py); during a
    # rotation the previous one also signs every delivery until it is unset
    webhook_secret: str | None = None
    webhook_secret_previous: str | None = None
    # MLflow registry webhooks in (app/integrations/mlflow/webhook.py): the receiver answers 404 until both
    # are set. The secret is the one given to MLflow (`aireg mlflow webhook register`); versions are read
    # from the tracking server.
    mlflow_tracking_uri: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    mlflow_webhook_secret: SecretStr | None = Field(default=None, min_length=16)
    log_level: str = "info"
    # the release gate's own PostgreSQL connections (app/approvals/gate_db.py): an async pool per worker of
    # up to gate_pool_size connections; connecting gives up after gate_connect_timeout seconds, one
    # statement after gate_statement_timeout_ms (the gate then answers 503)
    gate_pool_size: int = Field(default=10, ge=1, le=200)
    gate_connect_timeout: float = Field(default=5.0, gt=0, le=120)
    gate_statement_timeout_ms: int = Field(default=5000, ge=10, le=600_000)
    # audit trail keys (app/audit/keys.py). AIREG_AUDIT_KEY: hex or base64 of >= 32 random bytes, the same on
    # every machine; unset, a keyring file <state_dir>/audit-keys is made at first use. AIREG_AUDIT_OLD_KEYS:
    # comma-separated keys retired by a rotation, kept to verify older events. state_dir also holds the
    # checkpoints of the trail's head; none of these is ever stored in the database.
    audit_key: SecretStr | None = None
    audit_old_keys: SecretStr | None = None
    # Ed25519 seed (base64 or hex of 32 bytes) signing audit packs (app/security/signing.py); unset, the key
    # file <state_dir>/signing-key is made at first use. Never stored in the database.
    signing_key: SecretStr | None = None
    state_dir: Path = Path("aireg-state")
    # Single sign-on with OpenID Connect (app/identity/oidc.py): on when issuer and client id are set. The
    # issuer's /.well-known/openid-configuration is read at the first sign-in. A signed-in OIDC user is
    # matched to a registry user by preferred_username, else by verified e-mail; oidc_create_users makes an
    # unknown one an account with no roles. local_passwords=false refuses every password sign-in.
    oidc_issuer: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    oidc_client_id: str | None = Field(default=None, max_length=200)
    oidc_client_secret: SecretStr | None = None
    oidc_display_name: str = Field(default="single sign-on", min_length=1, max_length=60)
    oidc_scopes: str = Field(default="openid email profile", pattern=r"^(\S+ )*openid( \S+)*$")
    oidc_create_users: bool = False
    local_passwords: bool = True

    @field_validator("audit_key", "audit_old_keys")
    @classmethod
    def _audit_keys_are_keys(cls, value: SecretStr | None) -> SecretStr | None:
        """A malformed audit key stops the service at start, not at its first write."""
        if value is not None:
            from app.audit.keys import parse_key_list

            parse_key_list(value.get_secret_value())
        return value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache when they change the environment)."""
    return Settings()
