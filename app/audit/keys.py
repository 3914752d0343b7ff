"""The audit trail's keys, kept outside the database: who can write the database cannot re-key the chain.

Two sources, never both for new events:

- ``AIREG_AUDIT_KEY`` (hex or base64 of >= 32 random bytes, the same value on every machine) keys new events;
  ``AIREG_AUDIT_OLD_KEYS`` (comma-separated) holds the keys it replaced, kept to verify older events.
  Rotating means: the current key moves to ``AIREG_AUDIT_OLD_KEYS``, a new one goes in ``AIREG_AUDIT_KEY``.
- Otherwise the keyring file ``<state_dir>/audit-keys`` (mode 0600, one hex key per line, newest last), made
  with one random key at first use; ``aireg audit rotate-key`` appends a key and new events use it.

Keys in the keyring file also verify when ``AIREG_AUDIT_KEY`` is set (a switch from the file to the
environment keeps the older events verifiable). A key is named by its ``key_id``: the first 16 hex digits of
its SHA-256, recorded with every event. There is no default key.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.settings import get_settings

KEYRING_FILE = "audit-keys"
log = logging.getLogger("aireg.audit")
MIN_KEY_BYTES = 32
_HEX = re.compile(r"[0-9a-fA-F]+")


class AuditKeyError(ValueError):
    """A key or keyring that cannot be used, with what to do about it."""


def parse_key(text: str) -> bytes:
    """The key bytes of ``text``: hex (64 or more digits) or base64 (standard or URL-safe) of >= 32 bytes."""
    text = text.strip()
    raw: bytes | None = None
    if _HEX.fullmatch(text) and len(text) % 2 == 0:
        raw = bytes.fromhex(text)
    else:
        try:
            raw = base64.b64decode(
                text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
            )
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) < MIN_KEY_BYTES:
        raise AuditKeyError(
            f"an audit key must be hex or base64 of at least {MIN_KEY_BYTES} random bytes "
            '(make one with: python -c "import secrets; print(secrets.token_hex(32))")'
        )
    return raw


def parse_key_list(text: str) -> list[bytes]:
    """The keys of a comma-separated list (blank items ignored)."""
    return [parse_key(item) for item in text.split(",") if item.strip()]


def key_id_of(key: bytes) -> str:
    """A key's public name: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


class KeyedHash:
    """HMAC-SHA256 (RFC 2104) under one key, its inner and outer hash states computed once.

    Per message it costs two ``hashlib`` copies, about what a plain SHA-256 costs, where ``hmac.HMAC.copy()``
    costs about twice as much again; a long walk of the chain is mostly this. The construction is checked
    against the standard library's ``hmac`` for every key, so it can never key a chain differently.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        probe = b"aireg audit key self-check"
        if self.hexdigest(probe) != hmac.new(key, probe, "sha256").hexdigest():
            raise AssertionError("HMAC-SHA256 construction differs from the standard library")

    def hexdigest(self, message: bytes) -> str:
        """HMAC-SHA256 of ``message``, in hex."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


@dataclass
class Keyring:
    """The keys that verify (by ``key_id``) and the one that keys new events."""

    keys: dict[str, bytes]
    current: str
    source: str
    _macs: dict[str, KeyedHash] = field(default_factory=dict, repr=False)

    def mac(self, key_id: str) -> KeyedHash | None:
        """The HMAC-SHA256 of key ``key_id`` (None for a key not in the keyring)."""
        keyed = self._macs.get(key_id)
        if keyed is None:
            key = self.keys.get(key_id)
            if key is None:
                return None
            keyed = self._macs[key_id] = KeyedHash(key)
        return keyed

    def sign(self, message: bytes, key_id: str | None = None) -> str:
        """HMAC-SHA256 of ``message`` (hex) under ``key_id`` (default: the current key)."""
        keyed = self.mac(key_id or self.current)
        if keyed is None:
            raise AuditKeyError(f"audit key {key_id or self.current} is not in the keyring ({self.source})")
        return keyed.hexdigest(message)


def keyring_path() -> Path:
    return Path(get_settings().state_dir) / KEYRING_FILE


def state_dir() -> Path:
    """The state directory (made, private to the service's user, on first use)."""
    path = Path(get_settings().state_dir)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _read_keyring_file(path: Path) -> list[bytes]:
    if path.stat().st_mode & 0o077:
        log.warning("the audit keyring %s can be read by other users: chmod 600 it", path)
    lines = [line.strip() for line in path.read_text(encoding="ascii").splitlines()]
    keys = [parse_key(line) for line in lines if line and not line.startswith("#")]
    if not keys:
        raise AuditKeyError(f"the audit keyring {path} holds no key")
    return keys


def create_secret_file(path: Path) -> None:
    """Make a secret file holding one random 32-byte key in hex (the audit keyring, the signing key's seed),
    atomically: of several processes at once, exactly one wins.

    The key is written to a private temporary file first and then hard-linked to the final name, which fails
    if the name exists; so the keyring is never seen half-written and never replaced once it exists.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_bytes(MIN_KEY_BYTES).hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process made it first: theirs is the keyring
    finally:
        os.unlink(tmp)


_cache: dict[tuple[Any, ...], Keyring] = {}


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def get_keyring(*, create: bool = True) -> Keyring:
    """The keyring in force (re-read when the keyring file changes, e.g. after a rotation elsewhere)."""
    settings = get_settings()
    path = Path(settings.state_dir) / KEYRING_FILE
    env_key = settings.audit_key.get_secret_value() if settings.audit_key else None
    old = settings.audit_old_keys.get_secret_value() if settings.audit_old_keys else ""
    signature = _file_signature(path)
    if signature is None and env_key is None:
        if not create:
            raise AuditKeyError(
                f"no audit key: AIREG_AUDIT_KEY is unset and {path} does not exist, but the trail already "
                "has events; restore the keyring from the state directory's backup (or set AIREG_AUDIT_KEY "
                "and AIREG_AUDIT_OLD_KEYS): a new key would leave the existing events unverifiable"
            )
        state_dir()
        create_secret_file(path)
        signature = _file_signature(path)
    cache_key = (str(path), env_key, old, signature)
    ring = _cache.get(cache_key)
    if ring is not None:
        return ring
    file_keys = _read_keyring_file(path) if signature is not None else []
    keys = {key_id_of(k): k for k in file_keys}
    if env_key is not None:
        for k in parse_key_list(old):
            keys[key_id_of(k)] = k
        current_key = parse_key(env_key)
        current = key_id_of(current_key)
        keys[current] = current_key
        source = "AIREG_AUDIT_KEY" + (f" and {path}" if file_keys else "")
    else:
        current = key_id_of(file_keys[-1])
        source = str(path)
    ring = Keyring(keys=keys, current=current, source=source)
    _cache.clear()  # one live entry: settings and files change rarely (tests, rotation)
    _cache[cache_key] = ring
    return ring


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (``flock``) on ``path`` for the block, across processes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def rotate_key() -> Keyring:
    """Append a new random key to the keyring file; new events use it, older keys keep verifying.

    Refused when ``AIREG_AUDIT_KEY`` is set: that key is rotated in the environment of every machine.
    """
    if get_settings().audit_key is not None:
        raise AuditKeyError(
            "AIREG_AUDIT_KEY is set, so the key is rotated in the environment of every machine: add the "
            "current key to AIREG_AUDIT_OLD_KEYS (comma-separated), put a new key in AIREG_AUDIT_KEY "
            '(python -c "import secrets; print(secrets.token_hex(32))") and restart the service'
        )
    path = keyring_path()
    get_keyring()  # makes the keyring if it does not exist yet
    with locked(path.with_name(path.name + ".lock")):
        lines = path.read_text(encoding="ascii")
        if lines and not lines.endswith("\n"):
            lines += "\n"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (lines + secrets.token_bytes(MIN_KEY_BYTES).hex() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    return get_keyring()
