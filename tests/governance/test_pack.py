"""The governance pack (issue 14): the AI policy and a RACI matrix generated from ``policies/`` as Markdown
and DOCX, through the API and the CLI; it changes when policy.csv or the sign-off rules change, refuses a
broken policy file by name, is audited, and only the roles policy.csv names may read it."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docx
import pytest
import yaml
from typer.testing import CliRunner

from app.approvals.rules import get_rules
from app.cli import app as cli_app
from app.governance.service import RACI_FILE, load_raci
from app.identity.authz import read_policy_lines, reset_authorizer
from app.identity.models import Role
from app.settings import get_settings
from tests.systems.helpers import assert_problem, audit_events

Headers = dict[str, str]
URL = "/api/v1/governance/pack"
READERS = tuple(r.value for r in Role if r is not Role.mlops)  # policy.csv: governance, read


@pytest.fixture
def people(make_user: Callable[..., Headers], plant: dict[str, Any]) -> dict[str, Headers]:
    """One user per role, each holding it in STR only (a grant in any one site is enough to read the pack)."""
    return {role: make_user(f"u-{role.replace('_', '-')}", (role, "STR")) for role in (*READERS, "mlops")}


def _reload() -> None:
    get_settings.cache_clear()
    get_rules.cache_clear()
    reset_authorizer()


@pytest.fixture
def policies_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of ``policies/`` made the one in force (AIREG_POLICIES_DIR); restored after."""
    saved = os.environ.get("AIREG_POLICIES_DIR")
    target = tmp_path / "policies"
    shutil.copytree(get_settings().policies_dir, target)
    os.environ["AIREG_POLICIES_DIR"] = str(target)
    _reload()
    yield target
    if saved is None:
        os.environ.pop("AIREG_POLICIES_DIR", None)
    else:
        os.environ["AIREG_POLICIES_DIR"] = saved
    _reload()


def roles_of_policy() -> list[str]:
    lines = read_policy_lines(get_settings().policies_dir / "policy.csv")
    return list(dict.fromkeys(role for _, role, _, _, _ in lines))


def decisions() -> list[str]:
    """Every rule of the sign-off rules in force, then every core decision of raci.yaml."""
    raci = load_raci(get_settings().policies_dir / RACI_FILE)
    return [*(rule.id for rule in get_rules().table.rules), *(d.id for d in raci.decisions)]


def md_matrix(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """The RACI table of a Markdown pack: its role columns, and the cells of each row by decision title."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Decision |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return header[1:], rows


def docx_matrix(content: bytes) -> tuple[list[str], list[list[str]]]:
    document = docx.Document(io.BytesIO(content))
    table = next(t for t in document.tables if t.rows[0].cells[0].text == "Decision")
    rows = [[c.text for c in row.cells] for row in table.rows]
    return rows[0][1:], rows[1:]


def row(rows: dict[str, list[str]], prefix: str) -> list[str]:
    return next(cells for title, cells in rows.items() if title.startswith(prefix))


def test_markdown_pack_has_the_policy_every_role_and_every_decision(
    client: Any, people: dict[str, Headers]
) -> None:
    r = client.get(URL, params={"format": "md"}, headers=people["auditor"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/markdown")
    assert r.headers["content-disposition"] == 'attachment; filename="governance-pack.md"'
    text = r.text
    assert text.startswith("# Policy for the development and use of AI systems")
    for heading in ("Classification before use", "Human oversight", "Incidents", "AI literacy"):
        assert f" {heading}\n" in text
    columns, rows = md_matrix(text)
    assert columns == roles_of_policy()
    assert len(rows) == len(decisions())
    for rule in get_rules().table.rules:
        assert any(f"rule {rule.id}:" in title for title in rows)
    assert all(len(cells) == len(columns) for cells in rows.values())
    # who signs, derived: baseline is signed by the business owner (R) and compliance (R, and accountable)
    baseline = dict(zip(columns, row(rows, "Sign off a release under rule baseline"), strict=True))
    assert baseline["business_owner"] == "R"
    assert baseline["compliance_officer"] == "R/A"
    assert baseline["mlops"] == ""
    for framework in ("ai_act", "iso42001", "nist_ai_rmf"):
        assert f"| {framework} |" in text
    # the default format is Markdown, and the same files give the same bytes
    again = client.get(URL, headers=people["auditor"])
    assert again.status_code == 200 and again.content == r.content
    assert again.headers["etag"] == r.headers["etag"]


def test_docx_pack_has_a_row_per_decision_and_a_column_per_role(
    client: Any, people: dict[str, Headers]
) -> None:
    r = client.get(URL, params={"format": "docx"}, headers=people["compliance_officer"])
    assert r.status_code == 200, r.text
    assert (
        r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert r.headers["content-disposition"] == 'attachment; filename="governance-pack.docx"'
    columns, rows = docx_matrix(r.content)
    assert columns == roles_of_policy()
    assert len(rows) == len(decisions())
    assert all(len(cells) == len(columns) + 1 for cells in rows)
    classify = next(cells for cells in rows if cells[0].startswith("Classify an AI system"))
    assert dict(zip(columns, classify[1:], strict=True))["compliance_officer"] == "R/A"
    document = docx.Document(io.BytesIO(r.content))
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert "RACI matrix" in headings and "Human oversight" in headings
    assert client.get(URL, params={"format": "docx"}, headers=people["auditor"]).content == r.content


def test_pdf_pack_says_what_the_markdown_says(client: Any, people: dict[str, Headers]) -> None:
    import pypdf

    r = client.get(URL, params={"format": "pdf"}, headers=people["risk_officer"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == 'attachment; filename="governance-pack.pdf"'
    reader = pypdf.PdfReader(io.BytesIO(r.content))
    text = " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)
    markdown = client.get(URL, headers=people["risk_officer"]).text
    headings = [line.lstrip("#").strip() for line in markdown.splitlines() if line.startswith("#")]
    assert len(headings) > 10
    for heading in headings:  # every section of the Markdown pack, in the PDF too
        assert heading in text, heading
    for role in roles_of_policy():  # a RACI column per role
        assert role in text
    _, rows = md_matrix(markdown)
    assert len(rows) == len(decisions())
    for title in rows:  # every row of the RACI matrix (a long title may wrap: its first words)
        assert " ".join(title.split()[:3]) in text, title
    # the same policies print the same bytes
    assert client.get(URL, params={"format": "pdf"}, headers=people["auditor"]).content == r.content


def test_the_pack_changes_when_the_policies_change(
    client: Any, people: dict[str, Headers], policies_copy: Path
) -> None:
    before = client.get(URL, headers=people["auditor"]).text
    rules_file = policies_copy / "signoff_rules.yaml"
    rules = yaml.safe_load(rules_file.read_text())
    rules["rules"].append(
        {
            "id": "critical_tier",
            "description": "critical NIST risk tier",
            "when": {"risk_tier": ["critical"]},
            "require": ["safety_engineer"],
        }
    )
    rules_file.write_text(yaml.safe_dump(rules, sort_keys=False))
    csv_file = policies_copy / "policy.csv"
    lines = csv_file.read_text().splitlines()
    lines.remove("p, compliance_officer, *, incident, report")
    lines.append("p, dpo, *, signoff.safety_engineer, sign")
    csv_file.write_text("\n".join(lines) + "\n")
    _reload()

    after = client.get(URL, headers=people["auditor"])
    assert after.status_code == 200, after.text
    assert after.text != before
    columns, rows = md_matrix(after.text)
    assert len(rows) == len(md_matrix(before)[1]) + 1
    critical = dict(zip(columns, row(rows, "Sign off a release under rule critical_tier"), strict=True))
    assert critical["safety_engineer"] == "R" and critical["dpo"] == "R"
    report = dict(zip(columns, row(rows, "Report a serious incident"), strict=True))
    assert report["compliance_officer"] == "A"  # still accountable, no longer holds the permission
    assert "no role in policy.csv is granted 'incident, report'" in after.text
    assert "| safety_engineer | safety_engineer, dpo |" in after.text
    docx_columns, docx_rows = docx_matrix(
        client.get(URL, params={"format": "docx"}, headers=people["dpo"]).content
    )
    assert len(docx_rows) == len(rows) and docx_columns == columns


def test_a_broken_policy_file_is_named(client: Any, people: dict[str, Headers], policies_copy: Path) -> None:
    policy = policies_copy / "ai_policy.yaml"
    data = yaml.safe_load(policy.read_text())
    data["owner_role"] = "chief_ai_officer"
    data["sections"][1]["colour"] = "blue"
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    r = client.get(URL, headers=people["admin"])
    body = assert_problem(r, 500)
    assert "ai_policy.yaml" in body["detail"]
    assert "owner_role" in body["detail"] and "sections[1].colour: unknown key" in body["detail"]

    raci = policies_copy / "raci.yaml"
    spec = yaml.safe_load(raci.read_text())
    spec["decisions"].append(dict(spec["decisions"][0]))
    raci.write_text(yaml.safe_dump(spec, sort_keys=False))
    policy.write_text(
        yaml.safe_dump({**data, "owner_role": "compliance_officer", "sections": data["sections"][:1]})
    )
    body = assert_problem(client.get(URL, headers=people["admin"]), 500)
    assert "raci.yaml" in body["detail"] and "duplicate id 'classify_system'" in body["detail"]


@pytest.mark.parametrize("role", ["mlops", None])
def test_roles_without_the_permission_are_refused(
    client: Any, people: dict[str, Headers], make_user: Callable[..., Headers], role: str | None
) -> None:
    headers = people["mlops"] if role else make_user("nobody")
    assert_problem(client.get(URL, headers=headers), 403)
    assert_problem(client.get(URL), 401)


def test_every_reader_role_may_read_it(client: Any, people: dict[str, Headers]) -> None:
    for role in READERS:
        assert client.get(URL, headers=people[role]).status_code == 200, role


def test_unknown_format_is_422(client: Any, people: dict[str, Headers]) -> None:
    assert_problem(client.get(URL, params={"format": "xlsx"}, headers=people["auditor"]), 422, field="format")


def test_a_download_is_audited(client: Any, people: dict[str, Headers], admin: Headers) -> None:
    r = client.get(URL, params={"format": "docx"}, headers=people["dpo"])
    assert r.status_code == 200
    events = [
        e
        for e in audit_events(client, admin, action="document.download")  # held in every site
        if (e.get("after") or {}).get("document") == "governance-pack"
    ]
    assert len(events) == 1
    event = events[0]
    assert event["actor"] == "u-dpo" and event["after"]["format"] == "docx"
    assert event["after"]["sha256"] == r.headers["etag"].strip('"')
    assert set(event["after"]["sources"]) == {
        "ai_policy.yaml",
        "raci.yaml",
        "policy.csv",
        "signoff_rules.yaml",
    }


def test_cli_writes_the_pack(db: None, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "pack.docx"
    result = runner.invoke(cli_app, ["governance", "pack", "--format", "docx", "--output", str(out)])
    assert result.exit_code == 0, result.output
    columns, rows = docx_matrix(out.read_bytes())
    assert columns == roles_of_policy() and len(rows) == len(decisions())
    md = tmp_path / "pack.md"
    result = runner.invoke(cli_app, ["governance", "pack", "-o", str(md)])
    assert result.exit_code == 0, result.output
    assert md.read_text().startswith("# Policy for the development and use of AI systems")
    result = runner.invoke(cli_app, ["governance", "pack", "--format", "docx"])
    assert result.exit_code == 2
    result = runner.invoke(cli_app, ["governance", "pack", "--format", "xlsx", "-o", str(md)])
    assert result.exit_code == 2
    result = runner.invoke(cli_app, ["governance", "pack", "--format", "pdf"])
    assert result.exit_code == 2 and "pdf is binary" in result.output
    pdf_file = tmp_path / "pack.pdf"
    result = runner.invoke(cli_app, ["governance", "pack", "--format", "pdf", "-o", str(pdf_file)])
    assert result.exit_code == 0, result.output
    assert pdf_file.read_bytes().startswith(b"%PDF-")
