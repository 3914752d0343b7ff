"""Evidence (issue 14): files uploaded once (multipart, size limit, type check), stored content-addressed in
the database, read back byte for byte, linked to requirements (directly and through the crosswalk), counted
only while current; expired evidence reopens the requirement it alone supported (sweep, audit, webhook).
Bad uploads get a 4xx and store nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.db import session_scope, set_clock_offset
from app.settings import get_settings
from tests.compliance.test_requirements import HIGH_RISK_HR, classify
from tests.systems.helpers import assert_problem, audit_events, system_body

Headers = dict[str, str]
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
TODAY = date.today()


@pytest.fixture
def people(make_user: Callable[..., Headers], plant: dict[str, Any], admin: Headers) -> dict[str, Headers]:
    return {
        "admin": admin,
        "officer": make_user("cora", ("compliance_officer", "STR")),
        "lyon": make_user("leo", ("compliance_officer", "LYO")),
        "bob": make_user("bob", ("business_owner", "STR")),
        "audrey": make_user("audrey", ("auditor", "STR")),
    }


@pytest.fixture
def system(client: Any, people: dict[str, Headers]) -> str:
    """A provider's Annex III system in STR."""
    r = client.post("/api/v1/systems", json=system_body(ai_act_role="provider"), headers=people["admin"])
    assert r.status_code == 201, r.text
    system_id = str(r.json()["id"])
    classify(client, people["officer"], system_id, HIGH_RISK_HR)
    return system_id


@pytest.fixture
def clock() -> Iterator[Callable[[date], None]]:
    def travel(day: date) -> None:
        set_clock_offset(
            datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12) - datetime.now(UTC)
        )

    yield travel
    set_clock_offset(None)


def upload(
    client: Any,
    headers: Headers,
    system_id: str | None,
    content: bytes = PDF,
    *,
    filename: str = "risk-plan.pdf",
    media_type: str = "application/pdf",
    title: str = "Risk management plan",
    valid_until: date | None = None,
) -> Any:
    url = f"/api/v1/systems/{system_id}/evidence" if system_id else "/api/v1/organisation/evidence"
    data = {"title": title}
    if valid_until is not None:
        data["valid_until"] = valid_until.isoformat()
    return client.post(url, files={"file": (filename, content, media_type)}, data=data, headers=headers)


def stored() -> tuple[int, int, int]:
    """Rows of evidence, blobs and chunks."""
    with session_scope(write=False) as session:
        return tuple(  # type: ignore[return-value]
            session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("evidence", "evidence_blob", "evidence_chunk")
        )


def requirement(client: Any, headers: Headers, system_id: str, ref: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/systems/{system_id}/requirements", params={"limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    return next(i for i in r.json()["items"] if i["id"] == ref)


def patch(client: Any, headers: Headers, system_id: str, ref: str, **body: Any) -> Any:
    revision = requirement(client, headers, system_id, ref)["revision"]
    return client.patch(
        f"/api/v1/systems/{system_id}/requirements/{ref}",
        json={**body, "revision": revision},
        headers=headers,
    )


def test_upload_stores_the_bytes_once_and_reads_them_back(
    client: Any, people: dict[str, Headers], system: str
) -> None:
    r = upload(client, people["bob"], system, valid_until=TODAY + timedelta(days=30))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("EVD-") and body["title"] == "Risk management plan"
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest() and body["size"] == len(PDF)
    assert body["media_type"] == "application/pdf" and body["created_by"] == "bob" and body["current"] is True
    assert body["valid_until"] == (TODAY + timedelta(days=30)).isoformat() and body["requirements"] == []

    content = client.get(f"/api/v1/evidence/{body['id']}/content", headers=people["audrey"])
    assert content.status_code == 200 and content.content == PDF
    assert content.headers["content-type"].startswith("application/pdf")
    assert content.headers["etag"] == f'"{body["sha256"]}"'
    assert 'filename="risk-plan.pdf"' in content.headers["content-disposition"]
    assert client.get(f"/api/v1/evidence/{body['id']}", headers=people["audrey"]).json() == body

    # the same bytes again: a second evidence item, the bytes stored once
    again = upload(client, people["officer"], system, title="Same plan, filed again")
    assert again.status_code == 201 and again.json()["sha256"] == body["sha256"]
    assert stored() == (2, 1, 1)
    listed = client.get(f"/api/v1/systems/{system}/evidence", headers=people["audrey"]).json()["items"]
    assert [e["id"] for e in listed] == [again.json()["id"], body["id"]]
    events = [
        e for e in audit_events(client, people["admin"], entity_id=system) if e["action"] == "evidence.upload"
    ]
    assert len(events) == 2 and events[0]["after"]["sha256"] == body["sha256"]


def test_a_file_of_several_chunks_round_trips(client: Any, people: dict[str, Headers], system: str) -> None:
    content = b"%PDF-1.7\n" + bytes(range(256)) * 10_000  # 2.5 MB: three chunks
    r = upload(client, people["bob"], system, content)
    assert r.status_code == 201, r.text
    assert stored() == (1, 1, 3)
    back = client.get(f"/api/v1/evidence/{r.json()['id']}/content", headers=people["bob"])
    assert back.content == content and back.headers["content-length"] == str(len(content))


@pytest.mark.parametrize(
    ("content", "filename", "media_type", "status", "words"),
    [
        (b"", "empty.pdf", "application/pdf", 422, "empty"),
        (b"MZ\x90\x00 an executable", "tool.exe", "application/x-msdownload", 415, "not a kind of file"),
        (b"just text, not a PDF", "fake.pdf", "application/pdf", 415, "does not start as a PDF"),
        (b"PK\x03\x04 zip", "plan.docx", "application/octet-stream", 201, ""),  # type from the name
        (b"\xff\xfe not utf-8 \xff", "notes.txt", "text/plain", 415, "not UTF-8"),
        (b"a\x00b", "notes.csv", "text/csv", 415, "NUL"),
        (b"anything", "no-extension", "application/octet-stream", 415, "not a kind of file"),
    ],
)
def test_bad_uploads_are_refused_and_store_nothing(
    client: Any,
    people: dict[str, Headers],
    system: str,
    content: bytes,
    filename: str,
    media_type: str,
    status: int,
    words: str,
) -> None:
    r = upload(client, people["bob"], system, content, filename=filename, media_type=media_type)
    assert r.status_code == status, r.text
    if status == 201:
        assert r.json()["media_type"].endswith("wordprocessingml.document")
        return
    assert words in assert_problem(r, status)["detail"]
    assert stored() == (0, 0, 0)


def test_missing_fields_and_past_validity_are_422(
    client: Any, people: dict[str, Headers], system: str
) -> None:
    url = f"/api/v1/systems/{system}/evidence"
    no_title = client.post(url, files={"file": ("a.pdf", PDF, "application/pdf")}, headers=people["bob"])
    assert_problem(no_title, 422, field="title")
    no_file = client.post(url, data={"title": "x"}, headers=people["bob"])
    assert_problem(no_file, 422, field="file")
    past = upload(client, people["bob"], system, valid_until=TODAY - timedelta(days=1))
    assert "in the past" in assert_problem(past, 422)["detail"]
    assert stored() == (0, 0, 0)


def test_too_big_is_413_and_stores_nothing(
    client: Any, people: dict[str, Headers], system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 100_000)
    big = b"%PDF-1.7\n" + b"x" * 200_000
    r = upload(client, people["bob"], system, big)
    assert r.status_code == 413 and r.json()["max_bytes"] == 100_000
    # sent without a Content-Length (chunked): refused as it passes the limit

    def body() -> Iterator[bytes]:
        boundary = b"--b0undary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="title"\r\n\r\nbig\r\n'
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        yield b"Content-Type: application/pdf\r\n\r\n"
        for _ in range(40):
            yield b"%PDF" + b"y" * 10_000
        yield b"\r\n" + boundary + b"--\r\n"

    chunked = client.post(
        f"/api/v1/systems/{system}/evidence",
        content=body(),
        headers={**people["bob"], "Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert chunked.status_code == 413, chunked.text
    assert stored() == (0, 0, 0)
    # under the limit it passes
    assert upload(client, people["bob"], system, PDF).status_code == 201


def test_who_may_upload_and_read(client: Any, people: dict[str, Headers], system: str) -> None:
    refused = upload(client, people["audrey"], system)
    assert refused.status_code == 403
    assert upload(client, people["lyon"], system).status_code == 404  # no role in STR: no existence leak
    evidence_id = upload(client, people["bob"], system).json()["id"]
    assert client.get(f"/api/v1/evidence/{evidence_id}", headers=people["lyon"]).status_code == 404
    assert client.get(f"/api/v1/evidence/{evidence_id}/content", headers=people["lyon"]).status_code == 404
    assert client.get("/api/v1/evidence/EVD-999999", headers=people["audrey"]).status_code == 404
    assert client.get(f"/api/v1/evidence/{evidence_id}/content").status_code == 401


def test_met_needs_current_evidence_of_the_same_system(
    client: Any, people: dict[str, Headers], system: str
) -> None:
    officer = people["officer"]
    no_evidence = patch(client, officer, system, "ai_act:art9", status="met")
    assert assert_problem(no_evidence, 409)["code"] == "EVIDENCE_REQUIRED"
    # another system's evidence cannot be linked
    r = client.post("/api/v1/systems", json=system_body(ai_act_role="provider"), headers=people["admin"])
    other = upload(client, officer, r.json()["id"]).json()["id"]
    foreign = patch(client, officer, system, "ai_act:art9", status="met", evidence=[other])
    assert "belongs to system" in assert_problem(foreign, 422, field="evidence")["detail"]
    missing = patch(client, officer, system, "ai_act:art9", evidence=["EVD-999999"])
    assert "does not exist" in assert_problem(missing, 422)["detail"]

    plan = upload(client, officer, system).json()["id"]
    met = patch(client, officer, system, "ai_act:art9", status="met", evidence=[plan])
    assert met.status_code == 200, met.text
    body = met.json()
    assert body["status"] == "met" and body["evidence"] == [plan] and body["evidence_current"] is True
    assert client.get(f"/api/v1/evidence/{plan}", headers=officer).json()["requirements"] == ["ai_act:art9"]
    # unlinking the only evidence of a met requirement is refused: it would be met without proof
    unlinked = patch(client, officer, system, "ai_act:art9", evidence=[])
    assert assert_problem(unlinked, 409)["code"] == "EVIDENCE_REQUIRED"
    event = [
        e
        for e in audit_events(client, people["admin"], entity_id=system)
        if e["action"] == "requirement.update"
    ]
    assert event[-1]["before"]["evidence"] == [] and event[-1]["after"]["evidence"] == [plan]


def test_evidence_counts_across_the_crosswalk(client: Any, people: dict[str, Headers], system: str) -> None:
    """Evidence linked to an AI Act duty counts for the ISO/IEC 42001 and NIST AI RMF controls it maps to."""
    officer = people["officer"]
    framework = client.get("/api/v1/frameworks/ai_act", headers=officer).json()
    art9 = next(c for c in framework["controls"] if c["id"] == "art9")
    listed = client.get(f"/api/v1/systems/{system}/requirements", params={"limit": 500}, headers=officer)
    own = {i["id"] for i in listed.json()["items"]}
    mapped = [m for m in art9["maps_to"] if m.startswith("iso42001:") and m in own]
    assert mapped, art9
    plan = upload(client, officer, system).json()["id"]
    assert patch(client, officer, system, "ai_act:art9", status="met", evidence=[plan]).status_code == 200
    iso = requirement(client, officer, system, mapped[0])
    assert iso["evidence"] == [] and iso["crosswalk_evidence"] == [plan] and iso["evidence_current"] is True
    r = patch(client, officer, system, mapped[0], status="met")
    assert r.status_code == 200 and r.json()["status"] == "met"


def test_expired_evidence_reopens_what_it_alone_supported(
    client: Any,
    people: dict[str, Headers],
    system: str,
    clock: Callable[[date], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.approvals.models import WebhookOutbox
    from app.compliance import service

    monkeypatch.setattr(get_settings(), "webhook_url", "http://127.0.0.1:9/hook")
    monkeypatch.setattr(get_settings(), "webhook_secret", "whsec_" + "c" * 44)
    officer = people["officer"]
    short = upload(
        client, officer, system, title="Test report", valid_until=TODAY + timedelta(days=5)
    ).json()["id"]
    lasting = upload(client, officer, system, PDF + b"%v2", title="Design record").json()["id"]
    assert patch(client, officer, system, "ai_act:art9", status="met", evidence=[short]).status_code == 200
    assert (
        patch(client, officer, system, "ai_act:art11", status="met", evidence=[short, lasting]).status_code
        == 200
    )

    clock(TODAY + timedelta(days=6))
    art9 = requirement(client, officer, system, "ai_act:art9")
    assert art9["status"] == "open" and art9["evidence_current"] is False  # at once, before the sweep
    assert client.get(f"/api/v1/evidence/{short}", headers=officer).json()["current"] is False
    assert service.sweep_requirements() == 1
    assert service.sweep_requirements() == 0  # recorded once
    assert requirement(client, officer, system, "ai_act:art11")["status"] == "met"  # other evidence holds it
    events = [
        e
        for e in audit_events(client, people["admin"], entity_id=system)
        if e["action"] == "requirement.reopened"
    ]
    assert len(events) == 1 and events[0]["actor"] == "system:evidence"
    assert events[0]["before"]["status"] == "met" and events[0]["after"]["expired_evidence"] == [short]
    with session_scope(write=False) as session:
        hooks = session.exec(
            sa.select(WebhookOutbox).where(WebhookOutbox.event == "requirement.reopened")
        ).all()
    assert len(hooks) == 1
    payload = hooks[0][0].payload
    assert payload["type"] == "requirement.reopened"
    reopened = payload["data"]["requirement"]
    assert reopened["requirement"] == "ai_act:art9" and reopened["system"] == system


def test_organisation_evidence_meets_ai_literacy(client: Any, people: dict[str, Headers]) -> None:
    officer = people["officer"]
    programme = upload(
        client,
        officer,
        None,
        title="AI literacy programme 2026",
        filename="programme.md",
        media_type="text/markdown",
        content=b"# AI literacy\n\nWho, what, when.\n",
    ).json()
    assert programme["system_id"] is None
    rows = client.get("/api/v1/organisation/requirements", params={"limit": 500}, headers=officer).json()[
        "items"
    ]
    art4 = next(r for r in rows if r["id"] == "ai_act:art4")
    r = client.patch(
        "/api/v1/organisation/requirements/ai_act:art4",
        json={"status": "met", "evidence": [programme["id"]], "revision": art4["revision"]},
        headers=officer,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "met" and r.json()["evidence"] == [programme["id"]]
    assert (
        upload(client, people["bob"], None).status_code == 403
    )  # organisation evidence: compliance officers
    listed = client.get("/api/v1/organisation/evidence", headers=people["audrey"]).json()["items"]
    assert [e["id"] for e in listed] == [programme["id"]]


def test_cli_uploads_and_links_evidence(
    client: Any, people: dict[str, Headers], system: str, tmp_path: Any
) -> None:
    runner = CliRunner()
    path = tmp_path / "plan.pdf"
    path.write_bytes(PDF)
    added = runner.invoke(cli_app, ["requirements", "evidence", system, str(path), "--title", "Risk plan"])
    assert added.exit_code == 0, added.output
    evidence_id = added.output.split(":")[0].strip()
    assert evidence_id.startswith("EVD-") and hashlib.sha256(PDF).hexdigest() in added.output
    met = runner.invoke(
        cli_app, ["requirements", "set", system, "ai_act:art9", "met", "--evidence", evidence_id]
    )
    assert met.exit_code == 0, met.output
    assert requirement(client, people["officer"], system, "ai_act:art9")["evidence"] == [evidence_id]
    bad = tmp_path / "tool.exe"
    bad.write_bytes(b"MZ")
    refused = runner.invoke(cli_app, ["requirements", "evidence", system, str(bad), "--title", "x"])
    assert refused.exit_code == 1 and "not a kind of file" in refused.output


def test_a_note_on_a_lapsed_met_requirement_records_it_open(
    client: Any, people: dict[str, Headers], system: str, clock: Callable[[date], None]
) -> None:
    """A change that keeps the status records the status as of now: ``met`` whose evidence expired is not
    written back as ``met``, and the change is not refused for it."""
    officer = people["officer"]
    short = upload(client, officer, system, valid_until=TODAY + timedelta(days=1)).json()["id"]
    assert patch(client, officer, system, "ai_act:art9", status="met", evidence=[short]).status_code == 200
    clock(TODAY + timedelta(days=3))
    r = patch(client, officer, system, "ai_act:art9", note="renewal of the test report ordered")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open" and r.json()["note"] == "renewal of the test report ordered"
    events = [
        e
        for e in audit_events(client, people["admin"], entity_id=system)
        if e["action"] == "requirement.update"
    ]
    assert events[-1]["before"]["status"] == "met" and events[-1]["after"]["status"] == "open"


def test_the_sweep_reaches_every_system_however_many_hold_lapsed_evidence(
    client: Any,
    people: dict[str, Headers],
    system: str,
    clock: Callable[[date], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Systems whose met requirements still hold (other current evidence) are not visited round after
    round, so the system that needs it is reached in the first round, wherever it is in the list."""
    from app.compliance import service

    monkeypatch.setattr(service, "SWEEP_SCOPES_PER_ROUND", 2)
    officer = people["officer"]

    def new_system() -> str:
        r = client.post("/api/v1/systems", json=system_body(ai_act_role="provider"), headers=people["admin"])
        classify(client, officer, r.json()["id"], HIGH_RISK_HR)
        return str(r.json()["id"])

    holding = [system, new_system(), new_system()]  # met with a lapsing and a lasting item: they hold
    for n, sid in enumerate(holding):
        lapsing = upload(client, officer, sid, PDF + b"%" + bytes([n]), valid_until=TODAY).json()["id"]
        lasting = upload(client, officer, sid, PDF + b"%%" + bytes([n])).json()["id"]
        r = patch(client, officer, sid, "ai_act:art9", status="met", evidence=[lapsing, lasting])
        assert r.status_code == 200, r.text
    last = new_system()  # its only evidence lapses; it sorts after the three that hold
    lapsed = upload(client, officer, last, valid_until=TODAY).json()["id"]
    assert patch(client, officer, last, "ai_act:art9", status="met", evidence=[lapsed]).status_code == 200
    clock(TODAY + timedelta(days=2))
    assert service.sweep_requirements() == 1
    assert requirement(client, officer, last, "ai_act:art9")["status"] == "open"
    assert all(requirement(client, officer, sid, "ai_act:art9")["status"] == "met" for sid in holding)


def test_damaged_stored_evidence_is_never_packed(
    client: Any, people: dict[str, Headers], system: str
) -> None:
    """Bytes that no longer hash to the recorded SHA-256 stop the audit pack with a clear problem."""
    evidence = upload(client, people["officer"], system).json()
    with session_scope() as session:
        session.execute(
            sa.text("UPDATE evidence_chunk SET data = :data WHERE sha256 = :sha"),
            {"data": b"%PDF-1.7 tampered", "sha": evidence["sha256"]},
        )
    r = client.get(f"/api/v1/systems/{system}/documents/audit-pack", headers=people["audrey"])
    problem = assert_problem(r, 500)
    assert evidence["id"] in problem["detail"] and "restore the evidence" in problem["detail"]
