"""AI Act Annex IV technical documentation (high-risk) and the Art. 6(4) record (derogated Annex III)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.documents.test_model_card import docx_text
from tests.factories import DIGEST_NEW, api

URL = "/api/v1/systems/{}/documents/technical-documentation"
TBC = "To be completed by the provider."


def test_annex_iv_sections_filled_from_the_registry(client: Any, documented: dict[str, Any]) -> None:
    r = client.get(URL.format(documented["id"]), headers=documented["audrey"])
    assert r.status_code == 200, r.text
    assert r.headers["x-aireg-document"] == "technical-documentation"
    assert r.headers["content-disposition"].endswith('-technical-documentation-1.1.0.docx"')
    _, paragraphs, tables, _ = docx_text(r.content)
    h1 = [t for s, t in paragraphs if s == "Heading 1"]
    assert h1 == [
        "AI Act classification",
        "1. General description of the AI system",
        "2. Elements of the AI system and its development process",
        "3. Monitoring, functioning and control",
        "4. Appropriateness of the performance metrics",
        "5. Risk management system (Art. 9)",
        "6. Relevant changes made through the lifecycle",
        "7. Harmonised standards applied",
        "8. EU declaration of conformity (Art. 47)",
        "9. Post-market monitoring (Art. 72)",
        "Registry records: release approvals and sign-offs",
    ]
    h2 = [t for s, t in paragraphs if s == "Heading 2"]
    assert [h[:3] for h in h2[:8]] == ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)", "(g)", "(h)"]
    general = {row[0]: row[1] for t in tables if t[0] == ["Field", "Value"] for row in t[1:]}
    assert general["Intended purpose"] == "Detect porosity in weld seams of car bodies"
    assert general["Artifact digest"] == DIGEST_NEW
    # the provider is a registry fact (no vendor: built in-house by this organisation), never a placeholder
    assert general["Provider"] == "this organisation, built in-house (no vendor)"
    text = "\n".join(t for _, t in paragraphs)
    cells = "\n".join(c for t in tables for row in t for c in row)
    assert "48,000 labelled seam images" in text  # 2(d) training data
    assert "An inspector confirms every flag | rejects with one click" in text  # 2(e), 3
    assert "Zone model: IEC 62443; zone STR-CTL" in text and "security-level gap: FR3" in text  # 2(h)
    assert TBC not in text  # an item not recorded names its section and what to supply instead
    assert text.count(" not recorded: ") >= 10 and "[annex4.2.c not recorded: " in text
    versions = next(t for t in tables if t[0][0] == "Version")
    assert [row[0] for row in versions[1:]] == ["1.1.0", "1.0.0"]  # 1(c) and 6
    history = next(t for t in tables if t[0][0] == "Date")
    assert history[1][1] == "High-risk" and "Annex III point 2" in history[1][2]
    coverage = next(t for t in tables if t[0][0] == "Function")
    assert [row[0] for row in coverage[1:]] == ["GOVERN", "MAP", "MEASURE", "MANAGE"]
    assert "Risk 6: missed porosity class 6" in cells  # section 3 and 5 list every risk
    assert documented["approval"]["signoffs"][0]["hash"] in cells
    assert "Art. 11" in text and "{{" not in text + cells


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (None, "has not been classified"),
        ({}, "classified minimal_risk (no high-risk route)"),
        ({"transparency": ["art50.1"]}, "classified limited_risk (Art. 50(1))"),
    ],
)
def test_not_high_risk_is_409_with_the_reason(
    client: Any, bare: dict[str, Any], answers: dict[str, Any] | None, expected: str
) -> None:
    if answers is not None:
        api(
            client,
            "POST",
            f"/api/v1/systems/{bare['id']}/classification",
            bare["admin"],
            201,
            json={"answers": answers},
        )
    r = client.get(URL.format(bare["id"]), headers=bare["audrey"])
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert expected in r.json()["detail"] and "Art. 11" in r.json()["detail"]
    events = client.get(
        "/api/v1/audit-events", params={"entity_id": bare["id"]}, headers=bare["admin"]
    ).json()["items"]
    assert not [e for e in events if e["action"] == "document.download"]  # nothing was delivered


@pytest.fixture
def derogated(client: Any, bare: dict[str, Any]) -> str:
    """The bare system as a provider's Annex III system relying on Art. 6(3)(d): its id."""
    sid = bare["id"]
    api(
        client,
        "PATCH",
        f"/api/v1/systems/{sid}",
        bare["admin"],
        json={"ai_act_role": "provider", "revision": 1},
    )
    api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/classification",
        bare["admin"],
        201,
        json={"answers": {"annex3_uses": ["annex3.4.a"], "art6_3_conditions": ["art6.3.d"]}},
    )
    return sid


def test_derogated_annex_iii_system_gets_its_art_6_4_record(
    client: Any, bare: dict[str, Any], derogated: str
) -> None:
    sid = derogated
    r = client.get(URL.format(sid), headers=bare["audrey"])
    assert r.status_code == 200, r.text
    assert r.headers["x-aireg-document"] == "art6-4-assessment"
    assert "art6-4-assessment" in r.headers["content-disposition"]
    _, paragraphs, tables, _ = docx_text(r.content)
    assert paragraphs[0] == ("Title", "Art. 6(3) assessment: Bare")
    h1 = [t for s, t in paragraphs if s == "Heading 1"]
    assert h1[:4] == [
        "1. The system",
        "2. Annex III use",
        "3. Art. 6(3) conditions relied on",
        "4. Outcome and rationale",
    ]
    uses = next(t for t in tables if t[0][0] == "Use")
    assert uses[1][0] == "Annex III point 4(a)"
    conditions = next(t for t in tables if t[0][0] == "Condition")
    assert conditions[1][0] == "Art. 6(3)(d)"
    obligations = next(t for t in tables if t[0][0] == "Article")
    assert {"Art. 6(4)", "Art. 49(2)"} <= {row[0] for row in obligations[1:]}
    text = "\n".join(t for _, t in paragraphs)
    assert "Profiling of natural persons: no" in text
    assert "Registration number and date: To be completed by the provider." in text
    assert "Class: Minimal risk (Art. 6(3), Art. 6(3)(d))" in text


def test_art_6_4_record_in_markdown_and_pdf_says_what_the_docx_says(
    client: Any, bare: dict[str, Any], derogated: str
) -> None:
    import io

    import pypdf

    sid = derogated
    md = client.get(URL.format(sid), params={"format": "md"}, headers=bare["audrey"])
    pdf = client.get(URL.format(sid), params={"format": "pdf"}, headers=bare["audrey"])
    docx = client.get(URL.format(sid), headers=bare["audrey"])
    for r in (md, pdf, docx):
        assert r.status_code == 200, r.text
        assert r.headers["x-aireg-document"] == "art6-4-assessment"
    assert md.headers["content-type"].startswith("text/markdown")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].endswith('.pdf"')
    markdown = md.text
    pdf_text = " ".join(
        " ".join((page.extract_text() or "").split())
        for page in pypdf.PdfReader(io.BytesIO(pdf.content)).pages
    )
    _, paragraphs, _, _ = docx_text(docx.content)
    headings = [t for s, t in paragraphs if s == "Heading 1"]
    assert len(headings) == 8
    for heading in headings:  # every section of the Word record, in both other formats
        assert f"## {heading}" in markdown
        assert heading in pdf_text
    for needle in ("Annex III point 4(a)", "Art. 6(3)(d)", "Art. 49(2)", "Minimal risk"):
        assert needle in markdown and needle in pdf_text
    assert "**Profiling of natural persons:** no" in markdown
    assert "\n\n**Rationale:** " in markdown  # a paragraph of its own, not glued to the class
    assert "Registration number and date: To be completed by the provider." in pdf_text
    assert pdf_text.count("To be completed by the provider.") == 2  # registration and signature only
    # the PDF is deterministic: the same record prints the same bytes
    again = client.get(URL.format(sid), params={"format": "pdf"}, headers=bare["audrey"])
    assert again.content == pdf.content
