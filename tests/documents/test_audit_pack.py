"""The audit pack: contents, manifest hashes, the audit chain, and byte-for-byte reproducibility."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from app.audit.service import event_hash
from app.db import set_clock_offset
from tests.documents.test_model_card import docx_text
from tests.factories import DIGEST_NEW, api

URL = "/api/v1/systems/{}/documents/audit-pack"


def download(client: Any, sid: str, headers: dict[str, str]) -> bytes:
    r = client.get(URL.format(sid), headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
    assert int(r.headers["content-length"]) == len(r.content)
    return r.content


def events_of(client: Any, sid: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    return client.get(
        "/api/v1/audit-events", params={"entity_id": sid, "limit": 500}, headers=headers
    ).json()["items"]


def test_pack_contents_and_manifest_hashes(client: Any, documented: dict[str, Any]) -> None:
    sid = documented["id"]
    data = download(client, sid, documented["audrey"])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        files = {name: zf.read(name) for name in names}
        stamps = {info.date_time for info in zf.infolist()}
    manifest = json.loads(files["manifest.json"])
    listed = [f["path"] for f in manifest["files"]]
    # every file but itself and its signature, nothing else
    assert sorted([*listed, "manifest.json", "manifest.sig"]) == sorted(names)
    for entry in manifest["files"]:
        assert hashlib.sha256(files[entry["path"]]).hexdigest() == entry["sha256"], entry["path"]
        assert len(files[entry["path"]]) == entry["bytes"]
    assert {
        "model-card.md",
        "model-card.html",
        "model-card.docx",
        "technical-documentation.docx",
        "classification-history.json",
        "risk-assessment.json",
        "approvals.json",
        "audit-events.jsonl",
        "audit-verification.json",
        "incidents.json",
        "deployments.json",
        "monitoring.json",
        "requirements.json",
        "technical-file.json",
        "verify.py",
    } <= set(listed)
    technical_file = json.loads(files["technical-file.json"])
    assert {s["id"] for s in technical_file["sections"]} >= {"annex4.1.a", "annex4.9"}
    assert manifest["technical_documentation"] == "technical-documentation.docx"
    assert manifest["model_version"] == "1.1.0"
    assert (
        manifest["catalog_version"]
        == client.get("/api/v1/catalog", headers=documented["admin"]).json()["catalog_version"]
    )

    # coverage: the latest event of the system's trail (system, its approvals, its zone), not the clock
    lines = [json.loads(line) for line in files["audit-events.jsonl"].decode().splitlines()]
    assert lines and all(e["seq"] <= manifest["covered_seq"] for e in lines)
    last = lines[-1]
    assert last["seq"] == manifest["covered_seq"] and last["action"] == "approval.signoff"
    assert manifest["audit_head_hash"] == last["hash"]
    assert datetime.fromisoformat(manifest["covered_until"]) == datetime.fromisoformat(last["ts"])
    covered = datetime.fromisoformat(last["ts"])
    # ZIP (DOS) times have a two-second resolution
    assert stamps == {
        (covered.year, covered.month, covered.day, covered.hour, covered.minute, covered.second // 2 * 2)
    }
    actions = {e["action"] for e in lines}
    assert {"system.create", "version.create", "system.classify", "system.risk_assessment"} <= actions
    # the system, its approval requests, and the zone and site whose data the documents show
    assert {(e["entity_type"], e["entity_id"]) for e in lines} == {
        ("system", sid),
        ("approval", documented["approval"]["id"]),
        ("zone", "STR-CTL"),
        ("site", "STR"),
    }

    # every event line recomputes to its hash, and the chain up to the covered event holds
    for e in lines:
        assert (
            event_hash(
                seq=e["seq"],
                ts=datetime.fromisoformat(e["ts"]),
                actor=e["actor"],
                action=e["action"],
                entity_type=e["entity_type"],
                entity_id=e["entity_id"],
                site=e["site"],
                before=e["before"],
                after=e["after"],
                prev_hash=e["prev_hash"],
            )
            == e["hash"]
        )
    verification = json.loads(files["audit-verification.json"])
    assert verification["chain"] == manifest["audit_chain"]
    assert verification["chain"]["valid"] is True
    assert verification["chain"]["events"] == manifest["covered_seq"]
    assert verification["chain"]["head"] == manifest["audit_head_hash"]
    assert verification["system_events"] == len(lines)

    history = json.loads(files["classification-history.json"])
    assert [c["ai_act_class"] for c in history] == ["high_risk"] and "Annex III point 2" in history[0][
        "rationale"
    ]
    risk = json.loads(files["risk-assessment.json"])
    assert risk["current"]["risk_tier"] == "high" and len(risk["current"]["risks"]) == 6
    assert len(risk["nist_checklist"]["items"]) > 50
    approvals = json.loads(files["approvals.json"])
    assert approvals[0]["id"] == documented["approval"]["id"]
    assert approvals[0]["content_hash"]
    assert [(s["role"], s["signer"], s["hash"]) for s in approvals[0]["signoffs"]] == [
        ("compliance_officer", "carol", documented["approval"]["signoffs"][0]["hash"])
    ]
    assert "compliance_officer" not in approvals[0]["missing_signoffs"]
    versions = json.loads(files["model-versions.json"])
    assert versions[0]["artifact_digest"] == DIGEST_NEW
    assert b"# Model card: " in files["model-card.md"]
    _, paragraphs, _, _ = docx_text(files["technical-documentation.docx"])
    assert paragraphs[0][0] == "Title"
    readme = files["README.md"].decode()
    assert f"audit event {manifest['covered_seq']}" in readme


def test_two_downloads_are_byte_identical_until_a_new_event(client: Any, documented: dict[str, Any]) -> None:
    sid = documented["id"]
    first = download(client, sid, documented["audrey"])
    set_clock_offset(timedelta(days=20))  # weeks later, by another reader: still the same bytes
    second = download(client, sid, documented["admin"])
    assert first == second
    # both downloads are in the trail, after the pack was built, with what was delivered
    downloads = [e for e in events_of(client, sid, documented["admin"]) if e["action"] == "document.download"]
    assert [(e["actor"], e["after"]["document"], e["after"]["sha256"]) for e in downloads] == [
        ("audrey", "audit-pack", hashlib.sha256(first).hexdigest()),
        ("admin", "audit-pack", hashlib.sha256(first).hexdigest()),
    ]
    covered = json.loads(zipfile.ZipFile(io.BytesIO(first)).read("manifest.json"))["covered_seq"]
    assert all(e["seq"] > covered and e["after"]["covered_seq"] == covered for e in downloads)

    # a change of the system is a new event: a new pack, covering it
    revision = api(client, "GET", f"/api/v1/systems/{sid}", documented["admin"]).json()["revision"]
    api(
        client,
        "PATCH",
        f"/api/v1/systems/{sid}",
        documented["admin"],
        json={"limitations": "Steel only", "revision": revision},
    )
    third = download(client, sid, documented["audrey"])
    assert third != first
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(third)).read("manifest.json"))
    assert manifest["covered_seq"] > downloads[-1]["seq"]
    assert b"Steel only" in zipfile.ZipFile(io.BytesIO(third)).read("model-card.md")


def test_cli_writes_the_same_pack_and_audits_it(
    client: Any, documented: dict[str, Any], tmp_path: Path
) -> None:
    from app.cli import app

    sid = documented["id"]
    via_http = download(client, sid, documented["audrey"])
    out = tmp_path / "pack.zip"
    result = CliRunner().invoke(app, ["docs", "audit-pack", sid, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == via_http
    downloads = [e for e in events_of(client, sid, documented["admin"]) if e["action"] == "document.download"]
    assert downloads[-1]["actor"].startswith("cli") and downloads[-1]["after"]["format"] == "zip"

    card = tmp_path / "card.md"
    result = CliRunner().invoke(app, ["docs", "model-card", sid, "--format", "md", "-o", str(card)])
    assert result.exit_code == 0, result.output
    assert card.read_bytes() == zipfile.ZipFile(io.BytesIO(via_http)).read("model-card.md")
    result = CliRunner().invoke(app, ["docs", "model-card", sid, "--format", "html"])
    assert result.exit_code == 0 and "<h1>Model card: " in result.stdout
    result = CliRunner().invoke(app, ["docs", "model-card", sid, "--format", "docx"])
    assert result.exit_code == 2 and "-o" in result.output
    result = CliRunner().invoke(app, ["docs", "model-card", sid, "--format", "odt", "-o", str(card)])
    assert result.exit_code == 2
    # the technical documentation in each format, the same document the API gives
    tech = tmp_path / "tech.docx"
    result = CliRunner().invoke(app, ["docs", "technical-documentation", sid, "-o", str(tech)])
    assert result.exit_code == 0, result.output
    assert tech.read_bytes() == zipfile.ZipFile(io.BytesIO(via_http)).read("technical-documentation.docx")
    result = CliRunner().invoke(app, ["docs", "technical-documentation", sid, "--format", "md"])
    api_md = client.get(
        f"/api/v1/systems/{sid}/documents/technical-documentation",
        params={"format": "md"},
        headers=documented["audrey"],
    )
    assert result.exit_code == 0 and result.stdout == api_md.text
    pdf = tmp_path / "tech.pdf"
    result = CliRunner().invoke(
        app, ["docs", "technical-documentation", sid, "--format", "pdf", "-o", str(pdf)]
    )
    assert result.exit_code == 0 and pdf.read_bytes().startswith(b"%PDF-")
    result = CliRunner().invoke(app, ["docs", "technical-documentation", sid, "--format", "pdf"])
    assert result.exit_code == 2 and "-o" in result.output
    result = CliRunner().invoke(app, ["docs", "audit-pack", "AIS-999999", "-o", str(tmp_path / "x.zip")])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert not (tmp_path / "x.zip").exists()


def test_pack_of_a_bare_system(client: Any, bare: dict[str, Any]) -> None:
    data = download(client, bare["id"], bare["audrey"])
    zf = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["technical_documentation"].startswith("not applicable: system")
    assert "technical-documentation.docx" not in zf.namelist()
    assert manifest["model_version"] is None
    assert json.loads(zf.read("approvals.json")) == []
    assert json.loads(zf.read("risk-assessment.json"))["current"] is None
    assert "not recorded" in zf.read("model-card.md").decode()


def test_another_process_rebuilds_the_same_pack(
    client: Any, documented: dict[str, Any], tmp_path: Path
) -> None:
    """A later, separate ``aireg`` process (other hash seed, nothing else imported) gives the same bytes."""
    sid = documented["id"]
    via_http = download(client, sid, documented["audrey"])
    out = tmp_path / "rebuilt.zip"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "AIREG_LOG_LEVEL": "warning"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "docs", "audit-pack", sid, "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == via_http


def test_incidents_are_on_the_system_trail(client: Any, documented: dict[str, Any]) -> None:
    """An incident of the system (AI Act Art. 73) is a new event the pack covers; another system's is not."""
    sid = documented["id"]
    admin = documented["admin"]
    first = download(client, sid, documented["audrey"])
    other = api(
        client,
        "POST",
        "/api/v1/systems",
        admin,
        201,
        json={"name": "Other", "purpose": "Predict demand", "site": "STR", "business_owner": "bob"},
    ).json()
    now = datetime.now().astimezone()
    body = {
        "title": "Robot cell stopped",
        "description": "Every part flagged",
        "serious": False,
        "kind": "other",
        "occurred_at": (now - timedelta(hours=2)).isoformat(),
        "aware_at": (now - timedelta(hours=1)).isoformat(),
    }
    api(client, "POST", f"/api/v1/systems/{other['id']}/incidents", admin, 201, json=body)
    assert download(client, sid, documented["audrey"]) == first  # someone else's incident changes nothing
    incident = api(client, "POST", f"/api/v1/systems/{sid}/incidents", admin, 201, json=body).json()
    pack = zipfile.ZipFile(io.BytesIO(download(client, sid, documented["audrey"])))
    lines = [json.loads(line) for line in pack.read("audit-events.jsonl").decode().splitlines()]
    assert [e["action"] for e in lines if e["entity_id"] == incident["id"]] == ["incident.create"]
    manifest = json.loads(pack.read("manifest.json"))
    assert manifest["covered_seq"] == lines[-1]["seq"] and manifest["audit_chain"]["valid"] is True
    assert manifest["audit_chain"]["events"] == manifest["covered_seq"]
