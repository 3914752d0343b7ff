#!/usr/bin/env python3
"""Check an aireg audit pack without trusting the server: standard library only, Python 3.6 or newer.

    python3 verify.py [PACK_FOLDER] [--public-key BASE64 | --key-file FILE]

PACK_FOLDER is the unpacked pack (default: the folder this file is in). The checks:

1. ``manifest.sig`` is a valid Ed25519 signature (RFC 8032) of the exact bytes of ``manifest.json`` by the
   public key the manifest names (``signature.public_key``), and, when pinned with ``--public-key`` or
   ``--key-file``, that key is the one pinned (get it out of band: ``GET /api/v1/instance/public-key``).
2. Every file the manifest lists is there with its SHA-256 and size; no other file is in the folder (but
   ``manifest.json`` and ``manifest.sig``); each ``evidence/<sha256>-<name>`` file hashes to its name.
3. ``audit-events.jsonl`` agrees with the signed audit segment: sequence numbers rise and end at the covered
   event, whose hash is the signed ``audit_head_hash``, and each event whose predecessor is in the file links
   to its hash (``prev_hash``). The keyed hashes (HMAC-SHA256) need the registry's audit key, which no pack
   holds: the server checked them when it built the pack (``audit_chain`` in the manifest).

Exit status: 0 every check holds, 1 a check failed (each failure is printed), 2 bad usage or a missing
``manifest.json`` / ``manifest.sig``. This file is copied byte for byte from aireg's
``document_templates/audit_pack_verify.py``: a careful auditor runs their own copy of it against the folder.
"""

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import sys

# --- Ed25519 signature verification (RFC 8032, section 5.1.7; after the reference code of section 6) -------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _recover_x(y, sign):
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _add(p, q):
    """Point addition in extended homogeneous coordinates (X, Y, Z, T)."""
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s, p):
    q = (0, 1, 1, 0)  # the neutral element
    while s > 0:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _equal(p, q):
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _decompress(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify(public, message, signature):
    """True when ``signature`` (64 bytes) is a valid Ed25519 signature of ``message`` by ``public`` (32)."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decompress(public)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    return _equal(_mul(s, _G), _add(r, _mul(h, a)))


# --- the pack -------------------------------------------------------------------------------------------

_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")  # DER of an Ed25519 SubjectPublicKeyInfo
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_UNLISTED = ("manifest.json", "manifest.sig")
CHUNK = 1 << 20


class UsageError(Exception):
    pass


def _key_id(public):
    return hashlib.sha256(public).hexdigest()[:16]


def _b64(text, what):
    text = text.strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{what} is not base64") from None


def parse_public_key(text, what):
    """The 32 raw bytes of a key given as base64, as a PEM ``PUBLIC KEY`` block, or as the JSON of
    ``GET /api/v1/instance/public-key``."""
    text = text.strip()
    if text.startswith("{"):
        try:
            text = json.loads(text)["public_key"]
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{what} is JSON without a public_key") from None
    elif "-----BEGIN PUBLIC KEY-----" in text:
        body = text.split("-----BEGIN PUBLIC KEY-----", 1)[1].split("-----END PUBLIC KEY-----", 1)[0]
        der = _b64("".join(body.split()), what)
        if not der.startswith(_SPKI_PREFIX):
            raise UsageError(f"{what} is not an Ed25519 public key")
        text = base64.b64encode(der[len(_SPKI_PREFIX) :]).decode("ascii")
    raw = _b64(text, what)
    if len(raw) != 32:
        raise UsageError(f"{what} is not a 32-byte Ed25519 public key")
    return raw


def _file_digest(path):
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(CHUNK)
            if not block:
                break
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _files_in(folder):
    found = set()
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), folder)
            found.add(rel.replace(os.sep, "/"))
    return found


def _safe(path):
    parts = path.split("/")
    return not path.startswith("/") and "\\" not in path and ".." not in parts and "" not in parts


def check_signature(manifest_bytes, manifest, sig_text, pinned, failures):
    info = manifest.get("signature") if isinstance(manifest, dict) else None
    if not isinstance(info, dict) or info.get("algorithm") != "Ed25519":
        failures.append("manifest.json names no Ed25519 signing key (signature.algorithm)")
        return None
    try:
        public = parse_public_key(str(info.get("public_key", "")), "the manifest's signature.public_key")
    except UsageError as exc:
        failures.append(str(exc))
        return None
    key_id = _key_id(public)
    if info.get("key_id") != key_id:
        failures.append(f"the manifest's signature.key_id is not the id of its public key ({key_id})")
    if pinned is not None and pinned != public:
        failures.append(
            f"signature: the pack is signed by key {key_id}, not by the pinned key {_key_id(pinned)}"
        )
        public = pinned
    try:
        signature = base64.b64decode(sig_text.strip(), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if not ed25519_verify(public, manifest_bytes, signature):
        failures.append(
            f"signature: manifest.sig is not a valid Ed25519 signature of manifest.json by {_key_id(public)}"
        )
        return None
    return _key_id(public)


def check_files(folder, manifest, failures):
    entries = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(entries, list):
        failures.append("manifest.json lists no files")
        return 0
    listed = set()
    for entry in entries:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not _safe(path) or path in _UNLISTED or path in listed:
            failures.append(f"manifest.json lists a file name that is not allowed: {path!r}")
            continue
        listed.add(path)
        full = os.path.join(folder, *path.split("/"))
        if not os.path.isfile(full):
            failures.append(f"{path}: listed in the manifest but missing")
            continue
        digest, size = _file_digest(full)
        if digest != entry.get("sha256"):
            failures.append(f"{path}: SHA-256 {digest}, the manifest says {entry.get('sha256')}")
        if size != entry.get("bytes"):
            failures.append(f"{path}: {size} bytes, the manifest says {entry.get('bytes')}")
        if path.startswith("evidence/"):
            named = path[len("evidence/") :].split("-", 1)[0]
            if digest != named:
                failures.append(f"{path}: its content does not hash to the SHA-256 in its name")
    for extra in sorted(_files_in(folder) - listed - set(_UNLISTED)):
        failures.append(f"{extra}: in the folder but not in the manifest")
    return len(listed)


def check_events(folder, manifest, failures):
    segment = manifest.get("audit_segment") if isinstance(manifest, dict) else None
    if not isinstance(segment, dict):
        failures.append("manifest.json has no audit_segment")
        return
    path = os.path.join(folder, segment.get("events_file") or "audit-events.jsonl")
    if not os.path.isfile(path):
        return  # reported by the file check
    covered, head = manifest.get("covered_seq"), manifest.get("audit_head_hash")
    previous = None
    count = 0
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                event = json.loads(raw.decode("utf-8"))
                seq, digest, prev_hash = event["seq"], event["hash"], event["prev_hash"]
            except (ValueError, KeyError, TypeError):
                failures.append(f"audit-events.jsonl line {number}: not an audit event")
                return
            if not (isinstance(seq, int) and _HEX64.match(str(digest)) and _HEX64.match(str(prev_hash))):
                failures.append(f"audit-events.jsonl line {number}: seq or hashes malformed")
                return
            if previous is not None and seq <= previous[0]:
                failures.append(f"audit-events.jsonl line {number}: event {seq} out of order")
            if previous is not None and seq == previous[0] + 1 and prev_hash != previous[1]:
                failures.append(f"audit-events.jsonl: event {seq} does not link to event {previous[0]}")
            if isinstance(covered, int) and seq > covered:
                failures.append(f"audit-events.jsonl: event {seq} is after the covered event {covered}")
            previous = (seq, digest)
            count += 1
    if count != segment.get("events_in_pack"):
        failures.append(
            f"audit-events.jsonl holds {count} events, the manifest says {segment.get('events_in_pack')}"
        )
    if previous is not None and (previous[0] != covered or previous[1] != head):
        failures.append(
            f"audit-events.jsonl ends at event {previous[0]}, not at the covered event {covered} with the "
            "signed head hash"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check an aireg audit pack (manifest hashes and signature).")
    parser.add_argument("folder", nargs="?", default=os.path.dirname(os.path.abspath(__file__)))
    pin = parser.add_mutually_exclusive_group()
    pin.add_argument("--public-key", help="the instance key, base64 (GET /api/v1/instance/public-key)")
    pin.add_argument("--key-file", help="a file with the key: base64, PEM, or the JSON of that endpoint")
    args = parser.parse_args(argv)
    try:
        pinned = None
        if args.public_key is not None:
            pinned = parse_public_key(args.public_key, "--public-key")
        elif args.key_file is not None:
            try:
                with open(args.key_file, encoding="utf-8") as fh:
                    pinned = parse_public_key(fh.read(), args.key_file)
            except OSError as exc:
                raise UsageError(f"cannot read {args.key_file}: {exc}") from None
        folder = args.folder
        try:
            with open(os.path.join(folder, "manifest.json"), "rb") as fh:
                manifest_bytes = fh.read()
            with open(os.path.join(folder, "manifest.sig"), encoding="ascii") as fh:
                sig_text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"not an audit pack folder: {exc}") from None
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures = []
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except ValueError:
        manifest = None
        failures.append("manifest.json is not JSON")
    key_id = check_signature(manifest_bytes, manifest, sig_text, pinned, failures)
    files = check_files(folder, manifest, failures)
    check_events(folder, manifest, failures)
    for failure in failures:
        print(f"FAIL: {failure}")
    if failures:
        print(f"the pack does NOT verify: {len(failures)} check(s) failed")
        return 1
    print(f"OK: manifest.json is signed by Ed25519 key {key_id}; {files} files match their SHA-256 and size")
    if pinned is None:
        print(
            "WARNING: the signing key was not pinned: this shows the pack is unchanged since the holder of "
            f"the key it carries signed it, not who that is. Compare key {key_id} with GET "
            "/api/v1/instance/public-key and run again with --public-key."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
