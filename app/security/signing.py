"""The instance signing key (Ed25519): it signs what the registry hands out, e.g. an audit pack's manifest.

Kept outside the database, like the audit keys (app/audit/keys.py), so whoever can change the database cannot
re-sign a document:

- ``AIREG_SIGNING_KEY``: base64 of the 32-byte Ed25519 private seed, the same on every machine; or, unset,
- the key file ``<state_dir>/signing-key`` (mode 0600, the seed in hex on one line), made at first use the
  way the audit keyring is (app/audit/keys.py: atomically, never replaced once it exists).

A key is named by its ``key_id``: the first 16 hex digits of the SHA-256 of its raw 32-byte public key.
Rotating means a new seed (a new ``AIREG_SIGNING_KEY``, or deleting the key file); documents signed before
verify only with the old public key, so keep it (``aireg signing-key show`` prints the current one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit.keys import create_secret_file, state_dir
from app.settings import get_settings

KEY_FILE = "signing-key"
SEED_BYTES = 32
ALGORITHM = "Ed25519"
_HEX_SEED = re.compile(r"[0-9a-fA-F]{64}")
log = logging.getLogger("aireg.security")


class SigningKeyError(ValueError):
    """A signing key that cannot be used, with what to do about it."""


def parse_seed(text: str) -> bytes:
    """The 32-byte private seed of ``text``: base64 (standard or URL-safe) or 64 hex digits (the key file)."""
    text = text.strip()
    if _HEX_SEED.fullmatch(text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != SEED_BYTES:
        raise SigningKeyError(
            f"a signing key must be base64 of a {SEED_BYTES}-byte Ed25519 seed (make one with: "
            'python -c "import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())")'
        )
    return raw


@dataclass(frozen=True)
class SigningKey:
    """The instance's Ed25519 key pair and where it came from."""

    private: Ed25519PrivateKey
    public: bytes  # raw 32 bytes
    source: str

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)


def key_id_of(public: bytes) -> str:
    """A public key's name: the first 16 hex digits of the SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(public).hexdigest()[:16]


def key_path() -> Path:
    return Path(get_settings().state_dir) / KEY_FILE


_cache: dict[tuple[object, ...], SigningKey] = {}


def get_signing_key() -> SigningKey:
    """The key in force: ``AIREG_SIGNING_KEY``, else the key file (made on first use)."""
    settings = get_settings()
    configured = settings.signing_key.get_secret_value() if settings.signing_key else None
    path = Path(settings.state_dir) / KEY_FILE
    if configured is None and not path.exists():
        state_dir()
        create_secret_file(path)  # 32 random bytes in hex, made atomically: the seed
    stamp = None if configured is not None else (path.stat().st_ino, path.stat().st_mtime_ns)
    cache_key = (configured, str(path), stamp)
    key = _cache.get(cache_key)
    if key is not None:
        return key
    if configured is not None:
        seed, source = parse_seed(configured), "AIREG_SIGNING_KEY"
    else:
        if path.stat().st_mode & 0o077:
            log.warning("the signing key %s can be read by other users: chmod 600 it", path)
        seed, source = parse_seed(path.read_text(encoding="ascii")), str(path)
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key = SigningKey(private=private, public=public, source=source)
    _cache.clear()
    _cache[cache_key] = key
    return key


def sign(message: bytes) -> bytes:
    """The Ed25519 signature (64 bytes, deterministic) of ``message`` under the instance key."""
    return get_signing_key().private.sign(message)


def public_key_bytes() -> bytes:
    """The instance's raw 32-byte Ed25519 public key."""
    return get_signing_key().public


def public_key_pem() -> str:
    """The instance's public key as a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo) block."""
    return (
        get_signing_key()
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def public_key_info() -> dict[str, str]:
    """``{algorithm, public_key (base64 of the raw 32 bytes), key_id, pem}``."""
    key = get_signing_key()
    return {
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(key.public).decode("ascii"),
        "key_id": key.key_id,
        "pem": public_key_pem(),
    }
