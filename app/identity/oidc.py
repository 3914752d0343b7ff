"""Single sign-on with OpenID Connect: the authorization code flow with PKCE, and matching the registry user.

The provider is found by discovery (``<issuer>/.well-known/openid-configuration``, cached for an hour,
fetched with a timeout). Each sign-in attempt gets its own ``state``, ``nonce`` and PKCE ``code_verifier``
(S256); they stay in the browser's signed session cookie (only the verifier goes to the provider, at the
code exchange) and are used once. The ID token's signature is checked against the provider's JWKS, and its
``iss``, ``aud``, ``exp``, ``iat`` and ``nonce`` are checked before anything in it is believed.

The registry, not the provider, decides what a person may do: a signed-in OIDC user is matched to a registry
user by ``preferred_username`` first, else by a *verified* e-mail, and keeps that user's role grants. Nobody
is created unless ``AIREG_OIDC_CREATE_USERS`` is on, and then with no roles.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlmodel import Session, func, select

from app.identity import service as identity
from app.identity.models import USERNAME_PATTERN, User, UserCreate
from app.settings import get_settings

HTTP_TIMEOUT = 10.0  # seconds, for discovery, JWKS, the code exchange and userinfo
DISCOVERY_TTL = 3600.0  # seconds a discovery document and its JWKS are reused
ATTEMPT_TTL = 600  # seconds between "Sign in with ..." and the callback
CLOCK_LEEWAY = 60  # seconds of clock skew allowed on exp / iat
ID_TOKEN_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


class OidcError(Exception):
    """A sign-in that must not go on: ``reason`` is a code for the audit trail, ``detail`` for the page."""

    def __init__(self, reason: str, detail: str, *, status: int = 400) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.status = reason, detail, status


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the provider's discovery document the flow uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None


def enabled() -> bool:
    """Whether single sign-on is configured (issuer and client id set)."""
    settings = get_settings()
    return bool(settings.oidc_issuer and settings.oidc_client_id)


# --- discovery and keys (cached per process) -------------------------------------------------------------

_lock = threading.Lock()
_metadata: dict[str, tuple[float, ProviderMetadata]] = {}
_keys: dict[str, tuple[float, KeySet]] = {}


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"})
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcError(
            "provider_unreachable", f"the sign-in provider did not answer {url}: {exc}", status=502
        ) from exc
    if not isinstance(body, dict):
        raise OidcError(
            "provider_unreachable", f"the sign-in provider answered {url} with no JSON object", status=502
        )
    return body


def discover() -> ProviderMetadata:
    """The provider's metadata from ``<issuer>/.well-known/openid-configuration`` (cached for an hour)."""
    issuer = (get_settings().oidc_issuer or "").rstrip("/")
    with _lock:
        cached = _metadata.get(issuer)
    if cached and time.monotonic() - cached[0] < DISCOVERY_TTL:
        return cached[1]
    doc = _get_json(f"{issuer}/.well-known/openid-configuration")
    if str(doc.get("issuer", "")).rstrip("/") != issuer:  # OpenID Connect Discovery 1.0, section 4.3
        raise OidcError(
            "discovery_mismatch",
            f"the discovery document names issuer {doc.get('issuer')!r}, not {issuer!r}",
            status=502,
        )
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(k)]
    if missing:
        raise OidcError(
            "discovery_incomplete", f"the discovery document lacks {', '.join(missing)}", status=502
        )
    metadata = ProviderMetadata(
        issuer=str(doc["issuer"]),
        authorization_endpoint=str(doc["authorization_endpoint"]),
        token_endpoint=str(doc["token_endpoint"]),
        jwks_uri=str(doc["jwks_uri"]),
        userinfo_endpoint=str(doc["userinfo_endpoint"]) if doc.get("userinfo_endpoint") else None,
    )
    with _lock:
        _metadata[issuer] = (time.monotonic(), metadata)
    return metadata


def _key_set(jwks_uri: str, *, refresh: bool = False) -> KeySet:
    with _lock:
        cached = _keys.get(jwks_uri)
    if cached and not refresh and time.monotonic() - cached[0] < DISCOVERY_TTL:
        return cached[1]
    try:
        keys = KeySet.import_key_set(_get_json(jwks_uri))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise OidcError("bad_jwks", f"the provider's key set cannot be read: {exc}", status=502) from exc
    with _lock:
        _keys[jwks_uri] = (time.monotonic(), keys)
    return keys


def forget_provider() -> None:
    """Drop the cached discovery documents and key sets (tests; a provider that rotated its keys)."""
    with _lock:
        _metadata.clear()
        _keys.clear()


# --- the flow ------------------------------------------------------------------------------------------


def _client(redirect_uri: str) -> OAuth2Client:
    settings = get_settings()
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    return OAuth2Client(
        client_id=settings.oidc_client_id,
        client_secret=secret,
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
        scope=settings.oidc_scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT,
    )


def begin(redirect_uri: str, next_path: str | None) -> tuple[str, dict[str, Any]]:
    """The provider's authorization URL for a new attempt, and the attempt to keep until the callback."""
    attempt = {
        "state": secrets.token_urlsafe(32),
        "nonce": secrets.token_urlsafe(32),
        "verifier": secrets.token_urlsafe(48),  # 64 characters (RFC 7636: 43 to 128)
        "next": next_path or "",
        "at": int(time.time()),
    }
    with _client(redirect_uri) as client:
        url, _ = client.create_authorization_url(
            discover().authorization_endpoint,
            state=attempt["state"],
            code_verifier=attempt["verifier"],
            nonce=attempt["nonce"],
        )
    return url, attempt


def finish(attempt: dict[str, Any] | None, params: dict[str, str], redirect_uri: str) -> dict[str, Any]:
    """Check the provider's answer against the attempt, exchange the code, and return the verified claims.

    Refused (``OidcError``), in the order a person would ask: no attempt in this browser, a ``state`` that is
    not this attempt's, an attempt older than ten minutes, an error sent by the provider, no code, a failed
    code exchange, an ID token whose signature, issuer, audience, expiry or nonce is wrong, and a userinfo
    answer about someone else.
    """
    if not attempt or not isinstance(attempt.get("state"), str):
        raise OidcError("no_attempt", "no sign-in was started in this browser (or it was already used)")
    if not secrets.compare_digest(str(params.get("state", "")), attempt["state"]):
        raise OidcError(
            "state_mismatch",
            "the answer does not belong to the sign-in started in this browser (state mismatch)",
        )
    if time.time() - float(attempt.get("at", 0)) > ATTEMPT_TTL:
        raise OidcError("expired", "the sign-in took longer than ten minutes; start it again")
    if params.get("error"):
        description = params.get("error_description") or params["error"]
        raise OidcError(
            f"provider_error:{params['error'][:40]}",
            f"the sign-in provider refused: {description[:200]}",
            status=403,
        )
    metadata = discover()
    if params.get("iss") and params["iss"].rstrip("/") != metadata.issuer.rstrip(
        "/"
    ):  # RFC 9207 mix-up check
        raise OidcError("issuer_mismatch", "the answer comes from another issuer than the one configured")
    if not params.get("code"):
        raise OidcError("no_code", "the sign-in provider sent no authorization code")
    with _client(redirect_uri) as client:
        try:
            token = client.fetch_token(
                metadata.token_endpoint,
                grant_type="authorization_code",
                code=params["code"],
                code_verifier=attempt["verifier"],
            )
        except Exception as exc:  # authlib raises OAuthError, httpx its own; both mean no sign-in
            raise OidcError("code_exchange_failed", f"the code exchange failed: {exc}") from exc
    claims = validate_id_token(token.get("id_token"), metadata, attempt["nonce"])
    access_token = token.get("access_token")
    if metadata.userinfo_endpoint and access_token:
        claims = {**claims, **_userinfo(metadata.userinfo_endpoint, access_token, claims["sub"])}
    return claims


def validate_id_token(id_token: object, metadata: ProviderMetadata, nonce: str) -> dict[str, Any]:
    """The ID token's claims once its signature (the provider's JWKS) and iss/aud/exp/iat/nonce check out."""
    if not isinstance(id_token, str):
        raise OidcError("no_id_token", "the provider sent no ID token (is the 'openid' scope requested?)")
    settings = get_settings()
    try:
        try:
            decoded = jwt.decode(id_token, _key_set(metadata.jwks_uri), algorithms=ID_TOKEN_ALGORITHMS)
        except JoseError:  # a key rotated since we cached the set: fetch it once more
            decoded = jwt.decode(
                id_token, _key_set(metadata.jwks_uri, refresh=True), algorithms=ID_TOKEN_ALGORITHMS
            )
        registry = jwt.JWTClaimsRegistry(
            leeway=CLOCK_LEEWAY,
            iss={"essential": True, "value": metadata.issuer},
            aud={"essential": True, "value": settings.oidc_client_id or ""},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        registry.validate(decoded.claims)
    except JoseError as exc:
        reason = "nonce_mismatch" if "nonce" in str(exc) else "bad_id_token"
        raise OidcError(reason, f"the ID token was refused: {exc}") from exc
    claims = dict(decoded.claims)
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != settings.oidc_client_id:
        raise OidcError(
            "bad_id_token", "the ID token is meant for several parties and not authorised for us (azp)"
        )
    return claims


def _userinfo(endpoint: str, access_token: str, sub: str) -> dict[str, Any]:
    try:
        response = httpx.get(
            endpoint, timeout=HTTP_TIMEOUT, headers={"Authorization": f"Bearer {access_token}"}
        )
        response.raise_for_status()
        info = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcError(
            "userinfo_failed", f"the provider's userinfo endpoint failed: {exc}", status=502
        ) from exc
    if not isinstance(info, dict) or info.get("sub") != sub:  # OpenID Connect Core 1.0, section 5.3.2
        raise OidcError("userinfo_mismatch", "the userinfo answer is about someone else than the ID token")
    return info


# --- the registry user ---------------------------------------------------------------------------------


def verified_email(claims: dict[str, Any]) -> str | None:
    """The e-mail the provider vouches for (``email_verified`` true), lower-cased; None otherwise."""
    email = claims.get("email")
    if isinstance(email, str) and "@" in email and claims.get("email_verified") is True:
        return email.strip().lower()
    return None


def match_user(session: Session, claims: dict[str, Any], *, create: bool) -> User:
    """The registry user this OIDC sign-in is, by ``preferred_username`` first, else by verified e-mail.

    Security decision: the provider's ``preferred_username`` is trusted to equal the registry username, so the
    provider must not let people choose it freely. An e-mail counts only when the provider marks it verified,
    and only when exactly one registry user has it. A deactivated user and a service account (no password:
    tokens only) are refused. Nobody is created unless ``create`` (``AIREG_OIDC_CREATE_USERS``), and then
    with no roles; roles are granted in the registry as for everyone else.
    """
    username = claims.get("preferred_username")
    username = username.strip().lower() if isinstance(username, str) else ""
    email = verified_email(claims)
    user = session.exec(select(User).where(User.username == username)).first() if username else None
    if user is None and email:
        found = session.exec(select(User).where(func.lower(User.email) == email).limit(2)).all()
        if len(found) > 1:
            raise OidcError(
                "ambiguous_email",
                f"several registry accounts have the e-mail {email}; ask an administrator",
                status=403,
            )
        user = found[0] if found else None
    if user is not None:
        if not user.is_active:
            raise OidcError("deactivated", f"the registry account {user.username} is deactivated", status=403)
        if not user.password_hash:
            raise OidcError(
                "service_account",
                f"{user.username} is a service account and cannot use the web pages",
                status=403,
            )
        return user
    who = email or username or str(claims.get("sub"))
    if not create:
        raise OidcError("no_account", f"no registry account for {who}; ask an administrator", status=403)
    return _create_user(session, claims, username, email, who)


def _create_user(
    session: Session, claims: dict[str, Any], username: str, email: str | None, who: str
) -> User:
    """A new registry user with no roles, named after the OIDC user (refused when the name is taken)."""
    if not re.match(USERNAME_PATTERN, username):
        local = re.sub(r"[^a-z0-9._-]", "", (email or "").split("@")[0])
        username = local if re.match(USERNAME_PATTERN, local) else ""
    if not username:
        raise OidcError("no_username", f"no usable username for {who}; ask an administrator", status=403)
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise OidcError(
            "username_taken", f"the username {username} is taken; ask an administrator", status=403
        )
    name = claims.get("name")
    data = UserCreate(
        username=username,
        display_name=name[:120] if isinstance(name, str) else "",
        email=email,
        # web sessions need a password hash (users without one are token-only service accounts); this one is
        # random and shown to nobody, so the account signs in through the provider only
        password=secrets.token_urlsafe(32),
    )
    return identity.create_user(session, data, actor="oidc")
