"""Model cards in Markdown (Hugging Face metadata), HTML and DOCX, from registry data only."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import docx
import pytest
from markdown_it import MarkdownIt

from tests.factories import DIGEST_NEW, DIGEST_OLD, NAME

URL = "/api/v1/systems/{}/documents/model-card"


def get_card(client: Any, sid: str, headers: dict[str, str], **params: str) -> Any:
    r = client.get(URL.format(sid), params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r


BREAKS = ("<br>", "<br/>", "<br />")


def inline_text(token: Any) -> str:
    """What a reader sees of an inline token: escapes and entities resolved, ``<br>`` as a line break, code
    spans in backticks, any other markup left out."""
    out = []
    for child in token.children or []:
        if child.type == "text":
            out.append(child.content)
        elif child.type == "code_inline":
            out.append(f"`{child.content}`")
        elif child.type in ("softbreak", "hardbreak") or (
            child.type == "html_inline" and child.content.lower() in BREAKS
        ):
            out.append("\n")
    return "".join(out)


def markdown_tokens(text: str) -> list[Any]:
    """The tokens of a Markdown document after its front matter, as GitHub-flavoured renderers see it."""
    body = text.split("\n---\n", 1)[1]
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(body)


def markdown_text(text: str) -> str:
    """The text of a Markdown document as rendered, one block a line."""
    return "\n".join(inline_text(t) for t in markdown_tokens(text) if t.type == "inline")


def markdown_sections(text: str) -> tuple[list[str], list[list[list[str]]]]:
    """Headings and tables (rows of cell texts) of a Markdown document, parsed with markdown-it."""
    tokens = markdown_tokens(text)
    headings, tables, row, table = [], [], None, None
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            headings.append(inline_text(tokens[i + 1]))
        elif tok.type == "table_open":
            table = []
        elif tok.type == "tr_open":
            row = []
        elif tok.type in ("td_open", "th_open"):
            row.append(inline_text(tokens[i + 1]))
        elif tok.type == "tr_close":
            table.append(row)
        elif tok.type == "table_close":
            tables.append(table)
    return headings, tables


def test_markdown_card_loads_as_huggingface_model_card(
    client: Any, documented: dict[str, Any], tmp_path: Path
) -> None:
    from huggingface_hub import ModelCard

    r = get_card(client, documented["id"], documented["audrey"], format="md")
    assert r.headers["content-type"].startswith("text/markdown")
    assert (
        r.headers["content-disposition"] == f'attachment; filename="{documented["id"]}-model-card-1.1.0.md"'
    )
    path = tmp_path / "README.md"
    path.write_bytes(r.content)
    card = ModelCard.load(path)  # a local file: parsed and validated, nothing fetched
    assert card.data.license == "apache-2.0"
    assert {"aireg", "eu-ai-act", "ai-act-high-risk", "nist-risk-high", "iec-62443"} <= set(card.data.tags)
    metrics = {(e.metric_type, e.metric_value) for e in card.data.eval_results}
    assert metrics == {("recall", 0.973), ("precision", 0.88)}
    assert card.data.to_dict()["aireg"]["artifact_digest"] == DIGEST_NEW
    assert card.text.lstrip().startswith("# Model card: ")
    # the name is text, not markup: escaped in the file, as typed once rendered
    assert markdown_sections(r.text)[0][0] == "Model card: " + NAME


def test_markdown_card_sections_and_values(client: Any, documented: dict[str, Any]) -> None:
    text = get_card(client, documented["id"], documented["audrey"]).text  # md is the default
    headings, tables = markdown_sections(text)
    assert headings[0] == "Model card: " + NAME
    for section in (
        "Model Details",
        "Uses",
        "Direct Use",
        "Out-of-Scope Use",
        "EU AI Act Classification",
        "Bias, Risks, and Limitations",
        "Compute Infrastructure",
        "Evaluation",
        "Training Data",
        "Recommendations",
        "Approval Status and Sign-offs",
        "Model Card Contact",
    ):
        assert section in headings
    details = {row[0]: row[1] for row in tables[0][1:]}
    assert details["System ID"] == documented["id"]
    assert (details["Business owner"], details["Technical owner"]) == ("bob", "ops")
    assert details["Artifact digest"] == DIGEST_NEW
    assert details["Version notes"] == "retrained with 2025 data"
    assert details["Developed by (provider)"] == "this organisation, built in-house (no vendor)"
    # a pipe in free text does not break the table
    assert "Releasing bodies without human inspection" in text
    assert "An inspector confirms every flag | rejects with one click" in markdown_text(text)
    assert "**Class:** High-risk (Art. 6(2), Annex III point 2)" in text
    obligations = next(t for t in tables if t[0][0] == "Article")
    art9 = next(row for row in obligations if row[0] == "Art. 9")
    assert art9[1] == "Run a risk management system over the whole lifecycle"
    risks = next(t for t in tables if t[0][0] == "Risk")  # every risk, with its mitigation
    assert [r[0] for r in risks[1:]] == [f"Risk {i}: missed porosity class {i}" for i in range(1, 7)]
    assert [r[3] for r in risks[1:]] == [f"review {i}" for i in range(1, 7)]
    sl = next(t for t in tables if t[0][0] == "FR")
    assert [r[0] for r in sl[1:] if r[4] == "yes"] == ["FR3"]
    assert "**Security-level gap:** FR3" in text
    metrics = next(t for t in tables if t[0][0] == "Metric")
    assert metrics[1:] == [["precision", "0.88"], ["recall", "0.973"]]
    signoffs = next(t for t in tables if t[0][0] == "Role")
    signoff = documented["approval"]["signoffs"][0]
    assert signoffs[1][:3] == ["compliance_officer", "carol", "Approved"]
    assert signoffs[1][4] == signoff["hash"]
    assert f"{documented['approval']['id']}: version 1.1.0, pilot" in text


def test_card_documents_the_requested_version(client: Any, documented: dict[str, Any]) -> None:
    text = get_card(client, documented["id"], documented["audrey"], version="1.0.0").text
    assert DIGEST_OLD in text and DIGEST_NEW not in text
    assert "| recall | 0.91 |" in text
    assert "Approvals: not recorded for this version." in text  # the approval is for 1.1.0
    r = client.get(URL.format(documented["id"]), params={"version": "9.9"}, headers=documented["audrey"])
    assert r.status_code == 404 and "no version '9.9'" in r.json()["detail"]
    r = client.get(
        URL.format(documented["id"]), params={"version": "bad version!"}, headers=documented["audrey"]
    )
    assert r.status_code == 422
    r = client.get(URL.format(documented["id"]), params={"format": "odt"}, headers=documented["audrey"])
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.h2: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag: str) -> None:
        self._in_h2 = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_h2:
            self.h2.append(data)


def test_html_card_is_escaped_and_complete(client: Any, documented: dict[str, Any]) -> None:
    r = get_card(client, documented["id"], documented["audrey"], format="html")
    assert r.headers["content-type"].startswith("text/html")
    assert "<inspector>" not in r.text and "&lt;inspector&gt;" in r.text
    page = _Html()
    page.feed(r.text)
    assert "inspector" not in page.tags  # the name did not become markup
    text = "".join(page.text)
    assert f"Model card: {NAME}" in text
    assert page.h2 == [
        "Model Details",
        "Uses",
        "Bias, Risks, and Limitations",
        "Training Details",
        "Evaluation",
        "Environmental Impact",
        "Technical Specifications",
        "EU AI Act Classification",
        "Open Serious Incidents",
        "Factors, Ethical Considerations, Caveats (Mitchell et al.)",
        "Approval Status and Sign-offs",
        "Model Card Contact",
    ]
    for value in (
        DIGEST_NEW,
        "48,000 labelled seam images",
        documented["approval"]["signoffs"][0]["hash"],
        "0.973",
    ):
        assert value in text


def docx_text(content: bytes) -> tuple[Any, list[tuple[str, str]], list[list[list[str]]], str]:
    document = docx.Document(io.BytesIO(content))
    paragraphs = [(p.style.name, p.text) for p in document.paragraphs if p.text.strip()]
    tables = [[[c.text for c in row.cells] for row in t.rows] for t in document.tables]
    footer = document.sections[0].footer.paragraphs[0].text
    return document, paragraphs, tables, footer


def test_docx_card_opens_with_headings_tables_and_values(client: Any, documented: dict[str, Any]) -> None:
    r = get_card(client, documented["id"], documented["audrey"], format="docx")
    assert r.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    document, paragraphs, tables, footer = docx_text(r.content)
    headings = [text for style, text in paragraphs if style.startswith("Heading")]
    assert headings[:3] == ["Model Details", "Uses", "Direct Use"]
    assert "Approval Status and Sign-offs" in headings
    assert ("Title", f"Model card: {NAME}") in paragraphs
    details = {row[0]: row[1] for row in tables[0]}
    assert details["Artifact digest"] == DIGEST_NEW
    assert details["License"] == "apache-2.0"
    sl = next(t for t in tables if t[0][0] == "FR")
    assert [row[0] for row in sl[1:] if row[4] == "yes"] == ["FR3"]
    risks = next(t for t in tables if t[0][0] == "Risk")
    assert len(risks) == 7  # header + every risk
    signoffs = next(t for t in tables if t[0][0] == "Role")
    assert signoffs[1][4] == documented["approval"]["signoffs"][0]["hash"]
    assert "{{" not in "".join(t for _, t in paragraphs) and "{%" not in "".join(t for _, t in paragraphs)
    assert documented["id"] in footer
    # the document's own times are the covered event's, not the clock's
    # (the system's events and its approvals' events: the newest of them all, by sequence)
    events = [
        e
        for entity in (documented["id"], documented["approval"]["id"])
        for e in client.get(
            "/api/v1/audit-events",
            params={"entity_id": entity, "limit": 500},
            headers=documented["admin"],
        ).json()["items"]
    ]
    covered = max((e for e in events if e["action"] != "document.download"), key=lambda e: e["seq"])
    assert document.core_properties.modified.isoformat()[:19] == covered["ts"][:19]
    assert document.core_properties.created == document.core_properties.modified


@pytest.mark.parametrize("fmt", ["md", "html", "docx"])
def test_missing_data_reads_not_recorded(client: Any, bare: dict[str, Any], fmt: str, tmp_path: Path) -> None:
    r = get_card(client, bare["id"], bare["audrey"], format=fmt)
    if fmt == "docx":
        _, paragraphs, tables, _ = docx_text(r.content)
        text = (
            "\n".join(t for _, t in paragraphs)
            + "\n"
            + "\n".join(c for t in tables for row in t for c in row)
        )
    elif fmt == "html":
        page = _Html()
        page.feed(r.text)
        text = "".join(page.text)
    else:
        text = markdown_text(r.text)
    assert "not recorded" in text
    for phrase in (
        "the system has not been classified",
        "no NIST AI RMF risk assessment",
        "Zone: not recorded",
        "Metrics: not recorded",
        "Approvals: not recorded",
    ):
        assert phrase in text, phrase
    if fmt == "md":
        from huggingface_hub import ModelCard

        path = tmp_path / "README.md"
        path.write_bytes(r.content)
        card = ModelCard.load(path)
        assert card.data.license is None  # not recorded, so not claimed
        assert card.data.eval_results is None
        assert card.data.tags == ["aireg", "eu-ai-act"]
        details = {row[0]: row[1] for row in markdown_sections(r.text)[1][0][1:]}
        for field in (
            "Line",
            "Technical owner",
            "License",
            "Model version",
            "Artifact digest",
            "Version notes",
        ):
            assert details[field] == "not recorded", field
