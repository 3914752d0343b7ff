"""The technical file in the registry (issue 15): Annex IV sections edited through the API, versioned and
audited, and printed by the Annex IV documentation (Word and Markdown, the same content)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.classification.catalog import CatalogError
from app.technical_file.annex4 import get_annex4, load_annex4
from tests.documents.test_model_card import docx_text
from tests.factories import DIGEST_NEW, DIGEST_OLD, api
from tests.systems.helpers import assert_problem, audit_events

FILE = "/api/v1/systems/{}/technical-file"
DOC = "/api/v1/systems/{}/documents/technical-documentation"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
DESIGN = "Gradient-boosted trees over seam profiles.\n\nOptimised for recall; precision traded for it."


def upload(client: Any, headers: dict[str, str], system_id: str, title: str, content: bytes = PDF) -> dict:
    r = client.post(
        f"/api/v1/systems/{system_id}/evidence",
        files={"file": (f"{title}.pdf", content, "application/pdf")},
        data={"title": title},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


def read(client: Any, system_id: str, headers: dict[str, str]) -> dict[str, Any]:
    return api(client, "GET", FILE.format(system_id), headers).json()


def patch(client: Any, system_id: str, headers: dict[str, str], sections: list[dict], revision: Any) -> Any:
    return client.patch(
        FILE.format(system_id), json={"sections": sections, "revision": revision}, headers=headers
    )


def docx(client: Any, system_id: str, headers: dict[str, str]) -> tuple[str, list[list[list[str]]], list]:
    r = client.get(DOC.format(system_id), headers=headers)
    assert r.status_code == 200, r.text
    _, paragraphs, tables, _ = docx_text(r.content)
    return "\n".join(t for _, t in paragraphs), tables, paragraphs


def markdown(client: Any, system_id: str, headers: dict[str, str]) -> str:
    r = client.get(DOC.format(system_id), params={"format": "md"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/markdown")
    return r.text


def unescape(md: str) -> str:
    """Markdown back to its plain words (what the escaping of printed values added, removed)."""
    md = re.sub(r"(?<!\\)\*\*", "", md)  # the bold of labels (an escaped star stays)
    md = re.sub(r"\\(.)", r"\1", md).replace("<br>", "\n")
    return md.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# --- the API ---------------------------------------------------------------------------------------------


def test_every_annex_iv_section_in_order(client: Any, documented: dict[str, Any]) -> None:
    body = read(client, documented["id"], documented["audrey"])  # auditors read
    ids = [s["id"] for s in body["sections"]]
    assert ids[0] == "annex4.1.a" and ids[-1] == "annex4.9" and len(ids) == 23
    assert ids[:8] == [f"annex4.1.{c}" for c in "abcdefgh"]
    assert ids[8:16] == [f"annex4.2.{c}" for c in "abcdefgh"]
    assert ids[16:] == [f"annex4.{n}" for n in range(3, 10)]
    assert body["revision"] == 0
    assert all(s["text"] == "" and s["evidence"] == [] and s["title"] for s in body["sections"])


def test_round_trip_versioned_and_audited(client: Any, documented: dict[str, Any]) -> None:
    sid, carol = documented["id"], documented["carol"]
    report = upload(client, carol, sid, "Test report 2026-11")
    r = patch(
        client,
        sid,
        carol,
        [
            {"id": "annex4.2.b", "text": DESIGN},
            {"id": "annex4.2.g", "text": "Hold-out test", "evidence": [report["id"]]},
        ],
        0,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["revision"] == 1
    by_id = {s["id"]: s for s in body["sections"]}
    assert by_id["annex4.2.b"]["text"] == DESIGN and by_id["annex4.2.b"]["revision"] == 1
    assert by_id["annex4.2.g"]["evidence"] == [report["id"]]
    assert by_id["annex4.2.c"]["text"] == ""
    assert read(client, sid, documented["audrey"]) == body

    # a subset; giving a section what it already holds is no change
    r = patch(
        client,
        sid,
        carol,
        [
            {"id": "annex4.2.b", "text": "Rewritten"},
            {"id": "annex4.2.g", "text": "Hold-out test", "evidence": [report["id"]]},
        ],
        1,
    )
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 2

    events = [
        e
        for e in audit_events(client, documented["admin"], entity_id=sid)
        if e["action"] == "technical_file.update"
    ]
    assert len(events) == 3
    first_b = next(e for e in events if e["after"]["section"] == "annex4.2.b" and e["after"]["revision"] == 1)
    assert first_b["before"]["text_sha256"] is None
    assert first_b["after"]["text_sha256"] == hashlib.sha256(DESIGN.encode()).hexdigest()
    assert first_b["after"]["text"] == DESIGN and first_b["entity_type"] == "system"
    second_b = next(
        e for e in events if e["after"]["section"] == "annex4.2.b" and e["after"]["revision"] == 2
    )
    assert second_b["before"]["text_sha256"] == first_b["after"]["text_sha256"]
    assert second_b["after"]["text"] == "Rewritten" and second_b["after"]["file_revision"] == 2

    history = api(client, "GET", FILE.format(sid) + "/history", documented["audrey"]).json()
    # newest first; ``revision`` is the file's revision the change made
    assert [(h["section"], h["revision"]) for h in history] == [
        ("annex4.2.b", 2),
        ("annex4.2.g", 1),
        ("annex4.2.b", 1),
    ]
    assert (
        history[0]["text"] == "Rewritten" and history[0]["before_sha256"] == first_b["after"]["text_sha256"]
    )

    # a section given without evidence keeps its links
    r = patch(client, sid, carol, [{"id": "annex4.2.g", "text": "Hold-out test v2"}], 2)
    assert r.status_code == 200, r.text
    assert next(s for s in r.json()["sections"] if s["id"] == "annex4.2.g")["evidence"] == [report["id"]]


def test_stale_revision_is_409_and_changes_nothing(client: Any, documented: dict[str, Any]) -> None:
    sid, carol = documented["id"], documented["carol"]
    assert patch(client, sid, carol, [{"id": "annex4.1.e", "text": "Edge PC"}], 0).status_code == 200
    r = patch(client, sid, carol, [{"id": "annex4.1.e", "text": "Other"}], 0)
    body = assert_problem(r, 409)
    assert "stale revision 0" in body["detail"]
    assert read(client, sid, carol)["sections"][4]["text"] == "Edge PC"
    assert_problem(
        patch(client, sid, carol, [{"id": "annex4.1.e", "text": "x"}], None), 422, field="revision"
    )


def test_bad_section_id_and_foreign_evidence_are_422(
    client: Any, documented: dict[str, Any], bare: dict[str, Any]
) -> None:
    sid, carol = documented["id"], documented["carol"]
    body = assert_problem(
        patch(client, sid, carol, [{"id": "annex4.1.a", "text": "a"}, {"id": "annex4.10", "text": "b"}], 0),
        422,
    )
    assert body["errors"][0]["loc"] == ["body", "sections", 1, "id"]
    body = assert_problem(
        patch(client, sid, carol, [{"id": "annex4.3", "text": "a"}, {"id": "annex4.3", "text": "b"}], 0), 422
    )
    assert body["errors"][0]["loc"] == ["body", "sections", 1, "id"]
    foreign = upload(client, carol, bare["id"], "Other system's report")
    body = assert_problem(
        patch(client, sid, carol, [{"id": "annex4.2.g", "text": "t", "evidence": [foreign["id"]]}], 0), 422
    )
    assert body["errors"][0]["loc"] == ["body", "sections", 0, "evidence", 0]
    assert f"belongs to system {bare['id']}" in body["detail"]
    body = assert_problem(
        patch(client, sid, carol, [{"id": "annex4.2.g", "text": "t", "evidence": ["EVD-999999"]}], 0), 422
    )
    assert "does not exist" in body["detail"]
    assert_problem(patch(client, sid, carol, [{"id": "annex4.2.g", "text": "x" * 20_001}], 0), 422)
    assert read(client, sid, carol)["revision"] == 0  # nothing was stored


def test_who_may_edit(
    client: Any, documented: dict[str, Any], make_user: Callable[..., dict[str, str]]
) -> None:
    sid = documented["id"]
    other_owner = make_user("olga", ("business_owner", "STR"))
    assert (
        patch(client, sid, documented["bob"], [{"id": "annex4.1.g", "text": "HMI"}], 0).status_code == 200
    )  # owner
    assert_problem(patch(client, sid, other_owner, [{"id": "annex4.1.g", "text": "x"}], 1), 403)
    assert_problem(patch(client, sid, documented["audrey"], [{"id": "annex4.1.g", "text": "x"}], 1), 403)
    assert_problem(patch(client, sid, documented["ops"], [{"id": "annex4.1.g", "text": "x"}], 1), 403)
    assert client.get(FILE.format(sid), headers=documented["ops"]).status_code == 403  # pipelines do not read
    assert client.get(FILE.format(sid), headers=documented["lyo_auditor"]).status_code == 404  # other site
    assert read(client, sid, documented["audrey"])["revision"] == 1


def test_a_broken_annex4_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "annex4.yaml"
    path.write_text(
        "points: [{point: '1', title: General}]\n"
        "sections:\n"
        "  - {id: annex4.1.a, title: T, what_to_supply: W, provider_supplies: false,\n"
        "     from_registry: [versions, gossip]}\n"
        "  - {id: annex4.1.a, title: T, what_to_supply: W, provider_supplies: false}\n"
    )
    with pytest.raises(CatalogError) as exc:
        load_annex4(path)
    text = str(exc.value)
    assert "annex4.yaml: sections[0].from_registry[1]" in text
    path.write_text(
        "points: [{point: '1', title: General}]\n"
        "sections:\n"
        "  - {id: annex4.1.a, title: T, what_to_supply: W, provider_supplies: false}\n"
        "  - {id: annex4.1.a, title: T, what_to_supply: W, provider_supplies: false}\n"
        "  - {id: annex4.2.a, title: T, what_to_supply: W, provider_supplies: false}\n"
    )
    with pytest.raises(CatalogError) as exc:
        load_annex4(path)
    assert "sections[1].id: duplicate id 'annex4.1.a'" in str(exc.value)
    assert "sections[2].id: point 2 has no entry in points" in str(exc.value)
    assert len(get_annex4().sections) == 23  # the shipped file is valid


# --- the documents ---------------------------------------------------------------------------------------


def test_docx_prints_recorded_text_evidence_facts_and_placeholders(
    client: Any, documented: dict[str, Any]
) -> None:
    sid, carol = documented["id"], documented["carol"]
    report = upload(client, carol, sid, "Signed test log", PDF + b"log")
    sections = [
        {"id": "annex4.2.b", "text": DESIGN},
        {"id": "annex4.2.g", "text": "Hold-out test on 4,000 seams", "evidence": [report["id"]]},
    ]
    assert patch(client, sid, carol, sections, 0).status_code == 200
    text, tables, _ = docx(client, sid, documented["audrey"])
    cells = [c for t in tables for row in t for c in row]
    # recorded text, paragraph by paragraph, and its evidence with title and SHA-256
    assert (
        "Gradient-boosted trees over seam profiles." in text
        and "Optimised for recall; precision traded for it." in text
    )
    assert "Hold-out test on 4,000 seams" in text
    evidence = next(t for t in tables if t[0][0] == "Evidence")
    assert evidence[1] == [report["id"], "Signed test log", "Signed test log.pdf", report["sha256"]]
    # facts the registry knows: versions and digests, metrics, risk assessment, approvals
    versions = next(t for t in tables if t[0][0] == "Version")
    assert [row[:2] for row in versions[1:]] == [["1.1.0", DIGEST_NEW], ["1.0.0", DIGEST_OLD]]
    metrics = next(t for t in tables if t[0][0] == "Metric")
    assert ["recall", "0.973"] in metrics
    assert DIGEST_NEW in cells
    assert "Risk 6: missed porosity class 6" in cells
    # an empty section names itself and what to supply
    assert "[annex4.2.c not recorded: the system architecture" in text
    assert "[annex4.2.b not recorded" not in text and "[annex4.2.g not recorded" not in text
    assert "Section: annex4.2.c (Annex IV point 2(c))" in text


def test_markdown_has_the_same_content(client: Any, documented: dict[str, Any]) -> None:
    sid, carol = documented["id"], documented["carol"]
    report = upload(client, carol, sid, "Signed test log")
    sections = [
        {"id": "annex4.2.b", "text": DESIGN},
        {"id": "annex4.9", "text": "PMM plan v2", "evidence": [report["id"]]},
    ]
    assert patch(client, sid, carol, sections, 0).status_code == 200
    _, tables, paragraphs = docx(client, sid, documented["audrey"])
    md = unescape(markdown(client, sid, documented["audrey"]))
    for style, line in paragraphs:
        if style == "Title":
            assert f"# {line}" in md
        else:
            assert line in md, line
    for t in tables:
        for row in t:
            assert "| " + " | ".join(row) + " |" in md, row
    headings = [t for s, t in paragraphs if s == "Heading 1"]
    assert [h for h in re.findall(r"^## (.+)$", md, re.M)] == headings


def test_deployer_gets_provider_items_and_its_own_duties(
    client: Any, plant: Any, documented: dict[str, Any]
) -> None:
    admin = documented["admin"]
    system = api(
        client,
        "POST",
        "/api/v1/systems",
        admin,
        201,
        json={
            "name": "Applicant screening",
            "purpose": "Rank job applications",
            "site": "STR",
            "business_owner": "bob",
            "ai_act_role": "deployer",
            "vendor": "Acme Hiring GmbH",
        },
    ).json()
    sid = system["id"]
    api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/classification",
        admin,
        201,
        json={"answers": {"annex3_uses": ["annex3.4.a"]}},
    )
    assert (
        patch(
            client, sid, documented["carol"], [{"id": "annex4.1.e", "text": "Runs on the HR cloud tenant"}], 0
        ).status_code
        == 200
    )
    text, tables, paragraphs = docx(client, sid, documented["audrey"])
    assert "Source: supplied by the provider (Acme Hiring GmbH)" in text
    assert "[annex4.2.c not recorded" not in text  # the provider supplies it; no placeholder for the deployer
    assert "[annex4.1.b not recorded" in text  # the deployer's own item
    assert "Runs on the HR cloud tenant" in text
    assert "Drawn up under Art. 11" not in text and "drawn up by the provider (Acme Hiring GmbH)" in text
    headings = [t for s, t in paragraphs if s == "Heading 1"]
    assert "Deployer's own duties (Art. 26, Art. 27)" in headings
    duties = next(t for t in tables if t[0][:2] == ["Article", "Duty"])
    articles = {row[0]: row for row in duties[1:]}
    assert "Art. 26" in articles and "Art. 27" in articles
    assert articles["Art. 27"][2].startswith("Only if the deployer is a body governed by public law")
    general = {row[0]: row[1] for t in tables if t[0] == ["Field", "Value"] for row in t[1:]}
    assert general["Provider"] == "Acme Hiring GmbH"
    md = unescape(markdown(client, sid, documented["audrey"]))
    assert "supplied by the provider (Acme Hiring GmbH)" in md and "Deployer's own duties" in md


# --- the review's findings -------------------------------------------------------------------------------


def test_obligation_conditions_are_printed(client: Any, documented: dict[str, Any], plant: Any) -> None:
    admin = documented["admin"]
    sid = api(
        client,
        "POST",
        "/api/v1/systems",
        admin,
        201,
        json={
            "name": "Credit check",
            "purpose": "Score",
            "site": "STR",
            "business_owner": "bob",
            "ai_act_role": "deployer",
        },
    ).json()["id"]
    api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/classification",
        admin,
        201,
        json={"answers": {"annex3_uses": ["annex3.4.a"]}},
    )
    _, tables, _ = docx(client, sid, admin)
    obligations = next(t for t in tables if t[0][:3] == ["Article", "Obligation", "Condition"])
    rows = {row[0]: row[2] for row in obligations[1:]}
    assert rows["Art. 73"].startswith("Report to the provider first")
    assert rows["Art. 26"] == "none (binds without condition)"
    md = unescape(markdown(client, sid, admin))
    assert "| Art. 73 | " in md and "Report to the provider first" in md


def test_basis_meaning_is_never_empty(client: Any, documented: dict[str, Any]) -> None:
    sid = documented["id"]
    _, tables, _ = docx(client, sid, documented["audrey"])
    basis = next(t for t in tables if t[0] == ["Basis", "Meaning"])
    assert [row[0] for row in basis[1:]] == ["Art. 6(2)", "Annex III point 2"]
    assert all(row[1].strip() for row in basis[1:])
    assert "Art. 6(2)" in basis[1][0] and "Annex III" in basis[1][1]
    md = client.get(f"/api/v1/systems/{sid}/documents/model-card", headers=documented["audrey"]).text
    meaning = re.findall(r"^\| (Art\. 6\(2\)|Annex III point 2) \| (.*) \|$", md, re.M)
    assert len(meaning) == 2 and all(m[1].strip() for m in meaning)


def test_no_versions_is_said_plainly(client: Any, bare: dict[str, Any]) -> None:
    sid, admin = bare["id"], bare["admin"]
    api(client, "PATCH", f"/api/v1/systems/{sid}", admin, json={"ai_act_role": "provider", "revision": 1})
    api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/classification",
        admin,
        201,
        json={"answers": {"annex3_uses": ["annex3.4.a"]}},
    )
    text, _, paragraphs = docx(client, sid, admin)
    assert f"{sid} · no model version registered ·" in paragraphs[1][1]
    assert "version To be completed" not in text and "To be completed by the provider." not in text
    assert "Model versions: no model version registered" in text
    assert "Metrics: no model version registered" in text
    assert "no model version registered" in unescape(markdown(client, sid, admin))


def test_annex_i_section_b_is_not_drawn_up_under_art_11(client: Any, bare: dict[str, Any]) -> None:
    sid, admin = bare["id"], bare["admin"]
    api(client, "PATCH", f"/api/v1/systems/{sid}", admin, json={"ai_act_role": "provider", "revision": 1})
    answers = {
        "annex1": {
            "legislation": "annex1.b.21",
            "safety_component": True,
            "third_party_conformity_assessment": True,
        }
    }
    api(client, "POST", f"/api/v1/systems/{sid}/classification", admin, 201, json={"answers": answers})
    text, tables, _ = docx(client, sid, admin)
    assert "Drawn up under Art. 11" not in text
    assert (
        "Annex I Section B product" in text
        and "Art. 11 of Regulation (EU) 2024/1689 therefore does not apply" in text
    )
    basis = next(t for t in tables if t[0] == ["Basis", "Meaning"])
    assert all(row[1].strip() for row in basis[1:])  # Art. 6(1) and Art. 2(2) have their meaning too
    md = unescape(markdown(client, sid, admin))
    assert "Drawn up under Art. 11" not in md and "therefore does not apply" in md


def test_provider_system_says_art_11(client: Any, documented: dict[str, Any]) -> None:
    text, _, _ = docx(client, documented["id"], documented["audrey"])
    assert "Drawn up under Art. 11 of Regulation (EU) 2024/1689" in text
