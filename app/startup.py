"""What must hold before the service answers anything: every data file (the AI Act catalogue, frameworks,
questionnaires, Annex IV/V/VIII, sign-off rules) valid, every configured secret usable, every cross-domain
hook wired. One list, run by ``create_app()``'s lifespan and by ``aireg serve`` before it binds (a mistake
is one line, no traceback).
"""

from __future__ import annotations

from app.approvals import webhooks
from app.approvals.rules import RulesError, get_rules
from app.classification.catalog import CatalogError, get_catalog
from app.compliance import blob_store
from app.compliance.frameworks import get_frameworks
from app.compliance.questionnaires import get_questionnaires
from app.documents.annexes import check_annexes
from app.security import signing
from app.settings import get_settings
from app.technical_file.annex4 import get_annex4
from app.wiring import WiringError, check_wiring


class ConfigError(Exception):
    """Settings that cannot work together."""


# What ``check_startup`` raises; each names the file and key, or the setting, that is wrong.
STARTUP_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    CatalogError,
    RulesError,
    webhooks.WebhookConfigError,
    signing.SigningKeyError,
    blob_store.EvidenceStoreConfigError,
    WiringError,
)


def check_startup() -> None:
    """Load and validate everything the service reads at start (raises one of ``STARTUP_ERRORS``)."""
    get_catalog()  # risk_catalog/*.yaml
    get_frameworks()  # risk_catalog/frameworks/, and AIREG_ADOPTED_FRAMEWORKS
    get_questionnaires()  # risk_catalog/questionnaires/
    get_annex4()  # risk_catalog/annex4.yaml (the technical file's sections)
    check_annexes()  # risk_catalog/annex5.yaml, annex8.yaml (declaration, registration)
    get_rules()  # policies/signoff_rules.yaml
    check_wiring()  # every cross-domain hook registered (app/wiring.py)
    webhooks.check_config()  # AIREG_WEBHOOK_SECRET(_PREVIOUS): whsec_ secrets
    blob_store.check_config()  # AIREG_EVIDENCE_STORE=s3: AIREG_S3_ENDPOINT, _BUCKET, _ACCESS_KEY, _SECRET_KEY
    settings = get_settings()
    if not settings.local_passwords and not settings.oidc_issuer:
        raise ConfigError(
            "AIREG_LOCAL_PASSWORDS=false needs single sign-on (AIREG_OIDC_ISSUER, AIREG_OIDC_CLIENT_ID, "
            "AIREG_OIDC_CLIENT_SECRET): otherwise nobody could sign in to the pages"
        )
    configured = settings.signing_key
    if configured is not None:
        try:
            signing.parse_seed(configured.get_secret_value())
        except signing.SigningKeyError as exc:
            raise signing.SigningKeyError(f"AIREG_SIGNING_KEY: {exc}") from exc
