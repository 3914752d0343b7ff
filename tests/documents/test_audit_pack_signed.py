"""The signed audit pack (issue 15): operations records, requirements with their evidence files, an Ed25519
signature of the manifest by the instance key, and ``verify.py`` run on a good pack and on tampered ones."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from typer.testing import CliRunner

from app.approvals.models import Environment
from app.db import session_scope, utcnow
from app.monitoring.models import Deployment
from app.settings import PROJECT_ROOT, get_settings
from tests.documents.test_audit_pack import download
from tests.factories import DIGEST_OLD, api

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
TEXT = "Test log: recall 0.97 on 2,000 seams, 0 misses ≥ class 3\n".encode()
KEY_URL = "/api/v1/instance/public-key"
VERIFY = PROJECT_ROOT / "document_templates" / "audit_pack_verify.py"


def _verify_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aireg_pack_verify", VERIFY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_verify(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python verify.py ARGS`` from the unpacked folder, with a bare environment (standard library only)."""
    return subprocess.run(
        [sys.executable, "-I", "verify.py", *args],
        cwd=folder,
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def unpack(data: bytes, folder: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(folder)
    return folder


@pytest.fixture
def recorded(client: Any, documented: dict[str, Any]) -> dict[str, Any]:
    """The documented system with a monitoring report, a deployment, an incident and linked evidence."""
    sid, admin, ops, carol = documented["id"], documented["admin"], documented["ops"], documented["carol"]
    api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/monitoring",
        ops,
        201,
        json={"version": "1.1.0", "status": "ok", "metrics": {"recall": 0.97}},
    )
    # the release gate refuses a rollout while the approval awaits sign-offs: the deployment is one recorded
    # earlier, written as the service stores it
    with session_scope() as session:
        session.add(
            Deployment(
                system_id=sid,
                site="STR",
                line="BODY1",
                zone="STR-CTL",
                version="1.0.0",
                artifact_digest=DIGEST_OLD,
                environment=Environment.pilot,
                deployed_at=utcnow() - timedelta(days=1),
                reported_by="ops",
                created_at=utcnow(),
            )
        )
    now = datetime.now().astimezone()
    incident = api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/incidents",
        admin,
        201,
        json={
            "title": "Line stop",
            "description": "False alarms on every seam",
            "serious": False,
            "kind": "other",
            "occurred_at": (now - timedelta(hours=3)).isoformat(),
            "aware_at": (now - timedelta(hours=2)).isoformat(),
        },
    ).json()
    evidence = []
    for name, content, media_type in (
        ("risk plan (v2).pdf", PDF, "application/pdf"),
        ("test-log.txt", TEXT, "text/plain"),
    ):
        r = client.post(
            f"/api/v1/systems/{sid}/evidence",
            files={"file": (name, content, media_type)},
            data={"title": f"Evidence {name}"},
            headers=carol,
        )
        assert r.status_code == 201, r.text
        evidence.append(r.json())
    items = api(client, "GET", f"/api/v1/systems/{sid}/requirements?limit=500", carol).json()["items"]
    target = next(i for i in items if i["id"] == "ai_act:art9")
    api(
        client,
        "PATCH",
        f"/api/v1/systems/{sid}/requirements/ai_act:art9",
        carol,
        json={"evidence": [evidence[0]["id"]], "revision": target["revision"]},
    )
    return {
        **documented,
        "incident": incident,
        "evidence": evidence,
    }


@pytest.fixture
def pack(client: Any, recorded: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    data = download(client, recorded["id"], recorded["audrey"])
    return {**recorded, "zip": data, "folder": unpack(data, tmp_path / "pack")}


def test_public_key_endpoint(client: Any, documented: dict[str, Any]) -> None:
    assert client.get(KEY_URL).status_code == 401
    body = api(client, "GET", KEY_URL, documented["audrey"]).json()
    assert body["algorithm"] == "Ed25519"
    raw = base64.b64decode(body["public_key"])
    assert len(raw) == 32 and body["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    pem = serialization.load_pem_public_key(body["pem"].encode())
    assert isinstance(pem, Ed25519PublicKey)
    assert pem.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw
    key_file = Path(get_settings().state_dir) / "signing-key"
    assert key_file.stat().st_mode & 0o777 == 0o600  # made at first use, private, never in the database

    from app.cli import app

    result = CliRunner().invoke(app, ["signing-key", "show"])
    assert result.exit_code == 0 and body["public_key"] in result.output and body["key_id"] in result.output


def test_signing_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.security import signing

    seed = bytes(range(32))
    monkeypatch.setenv("AIREG_SIGNING_KEY", base64.b64encode(seed).decode())
    get_settings.cache_clear()
    try:
        expected = (
            Ed25519PrivateKey.from_private_bytes(seed)
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        assert signing.public_key_bytes() == expected
        Ed25519PublicKey.from_public_bytes(expected).verify(signing.sign(b"message"), b"message")
        monkeypatch.setenv("AIREG_SIGNING_KEY", "too-short")
        get_settings.cache_clear()
        with pytest.raises(signing.SigningKeyError, match="32-byte"):
            signing.public_key_bytes()
    finally:
        monkeypatch.delenv("AIREG_SIGNING_KEY")
        get_settings.cache_clear()


def test_pack_holds_operations_requirements_and_evidence(client: Any, pack: dict[str, Any]) -> None:
    folder: Path = pack["folder"]
    manifest_bytes = (folder / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    assert manifest["format"] == "aireg-audit-pack/2"
    listed = {f["path"] for f in manifest["files"]}
    pdf, text = pack["evidence"]
    pdf_member = f"evidence/{pdf['sha256']}-risk_plan__v2_.pdf"
    text_member = f"evidence/{text['sha256']}-test-log.txt"
    assert {
        "incidents.json",
        "deployments.json",
        "monitoring.json",
        "requirements.json",
        "verify.py",
        pdf_member,
        text_member,
    } <= listed
    assert (folder / pdf_member).read_bytes() == PDF and (folder / text_member).read_bytes() == TEXT
    assert (folder / "verify.py").read_bytes() == VERIFY.read_bytes()
    with zipfile.ZipFile(io.BytesIO(pack["zip"])) as zf:  # a PDF is stored as is, text is compressed
        assert zf.getinfo(pdf_member).compress_type == zipfile.ZIP_STORED
        assert zf.getinfo(text_member).compress_type == zipfile.ZIP_DEFLATED

    incidents = json.loads((folder / "incidents.json").read_text())
    assert [i["id"] for i in incidents] == [pack["incident"]["id"]]
    assert [m["metrics"] for m in json.loads((folder / "monitoring.json").read_text())] == [{"recall": 0.97}]
    deployments = json.loads((folder / "deployments.json").read_text())
    assert [(d["version"], d["environment"], d["zone"]) for d in deployments] == [
        ("1.0.0", "pilot", "STR-CTL")
    ]
    requirements = json.loads((folder / "requirements.json").read_text())
    art9 = next(r for r in requirements["requirements"] if r["id"] == "ai_act:art9")
    assert art9["evidence"] == [pdf["id"]]
    assert [(e["id"], e["file"]) for e in requirements["evidence"]] == [
        (pdf["id"], pdf_member),
        (text["id"], text_member),
    ]
    assert requirements["evidence"][0]["requirements"] == ["ai_act:art9"]

    # the signature: Ed25519 over the exact manifest bytes, by the key the endpoint publishes
    key = api(client, "GET", KEY_URL, pack["admin"]).json()
    assert manifest["signature"] == {
        "algorithm": "Ed25519",
        "public_key": key["public_key"],
        "key_id": key["key_id"],
        "signature_file": "manifest.sig",
    }
    Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"])).verify(
        base64.b64decode((folder / "manifest.sig").read_bytes()), manifest_bytes
    )
    segment = manifest["audit_segment"]
    assert (
        segment["last_seq"] == manifest["covered_seq"] and segment["head_hash"] == manifest["audit_head_hash"]
    )
    assert segment["checkpoint"] == {"kind": "audit-head", "vouched": True, "reason": None}
    lines = (folder / "audit-events.jsonl").read_text().splitlines()
    assert (
        segment["events_in_pack"] == len(lines)
        and segment["first_event_in_pack"] == json.loads(lines[0])["seq"]
    )
    assert "verify.py" in (folder / "README.md").read_text()


def test_verify_accepts_the_pack(client: Any, pack: dict[str, Any], tmp_path: Path) -> None:
    folder: Path = pack["folder"]
    result = run_verify(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(
        "OK: manifest.json is signed"
    ) and "WARNING: the signing key was not pinned" in (result.stdout)
    key = api(client, "GET", KEY_URL, pack["audrey"]).json()
    pinned = run_verify(folder, "--public-key", key["public_key"])
    assert pinned.returncode == 0 and "WARNING" not in pinned.stdout, pinned.stdout
    for name, content in (("key.json", json.dumps(key)), ("key.pem", key["pem"])):
        (tmp_path / name).write_text(content)
        assert run_verify(folder, "--key-file", str(tmp_path / name)).returncode == 0
    # the auditor's own copy of verify.py, run against the folder from elsewhere
    own = subprocess.run(
        [sys.executable, "-I", str(VERIFY), str(folder), "--public-key", key["public_key"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert own.returncode == 0, own.stdout


def _flip_byte(path: Path, at: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _resign(folder: Path) -> str:
    """Sign the manifest anew with another key (named in the manifest); returns that key, base64."""
    other = Ed25519PrivateKey.generate()
    raw = other.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    manifest = json.loads((folder / "manifest.json").read_bytes())
    manifest["signature"]["public_key"] = base64.b64encode(raw).decode()
    manifest["signature"]["key_id"] = hashlib.sha256(raw).hexdigest()[:16]
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (folder / "manifest.json").write_bytes(data)
    (folder / "manifest.sig").write_bytes(base64.b64encode(other.sign(data)) + b"\n")
    return base64.b64encode(raw).decode()


@pytest.fixture
def copy_of(pack: dict[str, Any], tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "tampered"
    shutil.copytree(pack["folder"], target)
    yield target


def test_verify_rejects_tampered_packs(client: Any, pack: dict[str, Any], copy_of: Path) -> None:
    key = api(client, "GET", KEY_URL, pack["audrey"]).json()["public_key"]
    pdf = pack["evidence"][0]
    member = f"evidence/{pdf['sha256']}-risk_plan__v2_.pdf"

    folder = copy_of
    _flip_byte(folder / member)
    result = run_verify(folder, "--public-key", key)
    assert result.returncode == 1
    assert f"FAIL: {member}: SHA-256" in result.stdout
    assert f"FAIL: {member}: its content does not hash to the SHA-256 in its name" in result.stdout
    assert "does NOT verify" in result.stdout

    shutil.rmtree(folder)
    shutil.copytree(pack["folder"], folder)
    requirements = json.loads((folder / "requirements.json").read_text())
    requirements["requirements"][0]["status"] = "met"
    (folder / "requirements.json").write_text(json.dumps(requirements))
    result = run_verify(folder)
    assert result.returncode == 1 and "FAIL: requirements.json: SHA-256" in result.stdout
    assert "FAIL: requirements.json:" in result.stdout and "bytes, the manifest says" in result.stdout

    # the manifest edited to match: the signature no longer holds
    manifest = json.loads((folder / "manifest.json").read_bytes())
    for entry in manifest["files"]:
        if entry["path"] == "requirements.json":
            entry["sha256"] = hashlib.sha256((folder / "requirements.json").read_bytes()).hexdigest()
            entry["bytes"] = (folder / "requirements.json").stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    result = run_verify(folder)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith("FAIL: signature: manifest.sig is not a valid Ed25519")

    # ... and signed anew with another key: self-consistent, so only the pinned key tells
    other = _resign(folder)
    unpinned = run_verify(folder)
    assert unpinned.returncode == 0 and "WARNING: the signing key was not pinned" in unpinned.stdout
    assert other not in unpinned.stdout
    pinned = run_verify(folder, "--public-key", key)
    assert pinned.returncode == 1
    assert (
        "FAIL: signature: the pack is signed by key " in pinned.stdout
        and "not by the pinned key" in pinned.stdout
    )

    shutil.rmtree(folder)
    shutil.copytree(pack["folder"], folder)
    (folder / "evidence" / "extra.pdf").write_bytes(PDF)
    (folder / "notes.txt").write_text("added later")
    result = run_verify(folder, "--public-key", key)
    assert result.returncode == 1
    assert "FAIL: evidence/extra.pdf: in the folder but not in the manifest" in result.stdout
    assert "FAIL: notes.txt: in the folder but not in the manifest" in result.stdout

    (folder / "evidence" / "extra.pdf").unlink()
    (folder / "notes.txt").unlink()
    (folder / "monitoring.json").unlink()
    result = run_verify(folder, "--public-key", key)
    assert (
        result.returncode == 1
        and "FAIL: monitoring.json: listed in the manifest but missing" in result.stdout
    )


def test_verify_usage_errors(pack: dict[str, Any], copy_of: Path) -> None:
    assert run_verify(copy_of, "--public-key", "not base64!").returncode == 2
    assert run_verify(copy_of, "--public-key", base64.b64encode(b"short").decode()).returncode == 2
    assert run_verify(copy_of, "--key-file", str(copy_of / "missing.pem")).returncode == 2
    (copy_of / "manifest.sig").unlink()
    result = run_verify(copy_of)
    assert result.returncode == 2 and "not an audit pack folder" in result.stderr


def test_pack_with_evidence_is_reproducible(client: Any, pack: dict[str, Any]) -> None:
    again = download(client, pack["id"], pack["admin"])
    assert again == pack["zip"]  # deterministic Ed25519 signature, same evidence bytes, same ZIP


def test_pure_python_ed25519_agrees_with_cryptography() -> None:
    """verify.py's RFC 8032 verification against OpenSSL's, on random keys and messages, good and altered."""
    verify = _verify_module()
    for n in range(60):
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        message = os.urandom(n * 13)
        signature = key.sign(message)
        assert verify.ed25519_verify(public, message, signature)
        altered_sig = bytearray(signature)
        altered_sig[n % 64] ^= 1 << (n % 8)
        altered_msg = message + b"\0"
        for msg, sig in ((message, bytes(altered_sig)), (altered_msg, signature)):
            try:
                key.public_key().verify(sig, msg)
                accepted = True
            except Exception:
                accepted = False
            assert verify.ed25519_verify(public, msg, sig) is accepted is False
    # RFC 8032 section 7.1, test 2: a one-byte message
    public = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    signature = bytes.fromhex(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    )
    assert verify.ed25519_verify(public, bytes.fromhex("72"), signature)
    assert not verify.ed25519_verify(public, bytes.fromhex("73"), signature)
