"""The ID token checks of single sign-on (app/identity/oidc.py), one refusal per broken claim or signature.

The whole flow runs against a real provider in tests/web/test_oidc.py; these are the answers a well-behaved
provider never sends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from app.identity import oidc

ISSUER, CLIENT_ID, NONCE = "https://sso.example.com", "aireg", "n-0123456789"
METADATA = oidc.ProviderMetadata(
    issuer=ISSUER,
    authorization_endpoint=f"{ISSUER}/auth",
    token_endpoint=f"{ISSUER}/token",
    jwks_uri=f"{ISSUER}/jwks",
    userinfo_endpoint=None,
)
PROVIDER_KEY = RSAKey.generate_key(2048, parameters={"kid": "provider"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "provider"})  # same kid, another key


@pytest.fixture(autouse=True)
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from app.settings import get_settings

    monkeypatch.setenv("AIREG_OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("AIREG_OIDC_CLIENT_ID", CLIENT_ID)
    get_settings.cache_clear()
    public = KeySet([RSAKey.import_key(PROVIDER_KEY.as_dict(private=False))])
    monkeypatch.setattr(oidc, "_key_set", lambda uri, refresh=False: public)
    yield
    get_settings.cache_clear()


def id_token(key: RSAKey = PROVIDER_KEY, alg: str = "RS256", **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "u1", "iat": now, "exp": now + 300, "nonce": NONCE}
    claims = {k: v for k, v in (claims | overrides).items() if v is not None}
    return jwt.encode({"alg": alg, "kid": "provider"}, claims, key)


def test_a_good_id_token_gives_its_claims() -> None:
    assert oidc.validate_id_token(id_token(), METADATA, NONCE)["sub"] == "u1"


@pytest.mark.parametrize(
    ("token", "reason", "words"),
    [
        (lambda: id_token(nonce="replayed"), "nonce_mismatch", "nonce"),
        (lambda: id_token(nonce=None), "nonce_mismatch", "nonce"),
        (lambda: id_token(key=OTHER_KEY), "bad_id_token", "signature"),
        (lambda: id_token(iss="https://evil.example.com"), "bad_id_token", "iss"),
        (lambda: id_token(aud="someone-else"), "bad_id_token", "aud"),
        (lambda: id_token(exp=int(time.time()) - 3600), "bad_id_token", "expired"),
        (lambda: id_token(aud=[CLIENT_ID, "other"]), "bad_id_token", "azp"),
        (lambda: "not.a.token", "bad_id_token", ""),
        (lambda: None, "no_id_token", "no ID token"),
    ],
)
def test_a_broken_id_token_is_refused_with_its_reason(token: Any, reason: str, words: str) -> None:
    with pytest.raises(oidc.OidcError) as refused:
        oidc.validate_id_token(token(), METADATA, NONCE)
    assert refused.value.reason == reason
    assert words in refused.value.detail


def test_an_unsigned_or_symmetric_token_is_refused() -> None:
    from joserfc.jwk import OctKey

    forged = jwt.encode(
        {"alg": "HS256"}, {"iss": ISSUER, "aud": CLIENT_ID, "nonce": NONCE}, OctKey.import_key("k" * 32)
    )
    with pytest.raises(oidc.OidcError) as refused:
        oidc.validate_id_token(forged, METADATA, NONCE)
    assert refused.value.reason == "bad_id_token"


def _attempt() -> dict[str, Any]:
    return {"state": "s" * 43, "nonce": NONCE, "verifier": "v" * 64, "next": "", "at": int(time.time())}


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"state": "wrong", "code": "c"}, "state_mismatch"),
        ({"code": "c"}, "state_mismatch"),
        ({"state": "s" * 43, "error": "access_denied"}, "provider_error:access_denied"),
    ],
    ids=["wrong-state", "no-state", "provider-error"],
)
def test_state_is_checked_before_anything_else(params: dict[str, str], reason: str) -> None:
    with pytest.raises(oidc.OidcError) as refused:
        oidc.finish(_attempt(), params, "https://aireg.example.com/login/oidc/callback")
    assert refused.value.reason == reason


def test_an_expired_or_missing_attempt_is_refused() -> None:
    attempt = _attempt()
    with pytest.raises(oidc.OidcError) as refused:
        oidc.finish(attempt | {"at": int(time.time()) - 3600}, {"state": "s" * 43}, "https://x/cb")
    assert refused.value.reason == "expired"
    with pytest.raises(oidc.OidcError) as refused:
        oidc.finish(None, {"state": "s" * 43}, "https://x/cb")
    assert refused.value.reason == "no_attempt"
