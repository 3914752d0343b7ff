"""Text users typed never becomes markup in generated documents (Markdown, HTML, DOCX, the audit pack)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.documents.test_audit_pack import download
from tests.documents.test_model_card import (
    BREAKS,
    docx_text,
    markdown_sections,
    markdown_text,
    markdown_tokens,
)
from tests.documents.test_model_card_second_edition import HF_SECTIONS
from tests.factories import api

FORGED = "# Approved by the EU"
SCRIPT = "<script>alert(1)</script>"
LINK = "[x](javascript:alert(1))"
# One payload per way Markdown and HTML make markup out of text; each field below carries several.
NAME = f"Weld {SCRIPT} | cell\n{FORGED}"
TEXT = {
    "purpose": f"{LINK}\n{FORGED}\n<img src=x onerror=alert(1)>",
    "intended_use": "| forged | row |\n|---|---|\n| a | b |",
    "out_of_scope_uses": "intro\n===\n- list item\n1. ordered\n    indented code\n```\nfenced\n```",
    "limitations": '**bold** _em_ ~~gone~~ `code` ![i](http://evil.example/i.png) <a href="javascript:x">',
    "human_oversight": "> quoted\n&lt;script&gt; stays an entity\n[ref]: javascript:alert(1)",
    "training_data": "{{ 7*7 }} {% if true %}jinja{% endif %} {%p if true %} </w:t></w:r><w:r><w:t>x",
    "vendor": LINK,
}
NOTES = f"{LINK}\n{FORGED}"
JUSTIFICATION = f"{FORGED}\n{SCRIPT}"
RISK = {"title": f"{SCRIPT} | {LINK}", "nist_refs": ["MEASURE 2.11"], "mitigation": f"{FORGED}\n- item"}
SITE_NAME = f"Plant {SCRIPT}"
ZONE_NAME = f"Cell {LINK}"
DISPLAY_NAME = f"Eve {LINK} {SCRIPT}"
EVERY_TEXT = [
    NAME,
    *TEXT.values(),
    NOTES,
    RISK["title"],
    RISK["mitigation"],
    SITE_NAME,
    ZONE_NAME,
    DISPLAY_NAME,
]

# The headings the model card template itself writes (nothing a user typed may add one).
CARD_HEADINGS = set(HF_SECTIONS) - {"Results by group"}  # its metrics carry no group
MARKUP_TOKENS = {
    "link_open",
    "image",
    "html_block",
    "code_block",
    "fence",
    "s_open",
    "em_open",
    "blockquote_open",
}


@pytest.fixture
def hostile(client: Any, plant: Any, make_user: Callable[..., dict[str, str]], admin: dict[str, str]) -> dict:
    """A high-risk system on its own site whose every free-text field carries markup, made through the API."""
    api(client, "POST", "/api/v1/sites", admin, 201, json={"code": "EVL", "name": SITE_NAME, "lines": []})
    api(
        client,
        "POST",
        "/api/v1/zones",
        admin,
        201,
        json={
            "code": "EVL-CTL",
            "name": ZONE_NAME,
            "site": "EVL",
            "purdue_level": 2,
            "sl_target": {f"FR{i}": 2 for i in range(1, 8)},
        },
    )
    api(client, "POST", "/api/v1/users", admin, 201, json={"username": "eve", "display_name": DISPLAY_NAME})
    bob = make_user("bob", ("business_owner", "EVL"))
    audrey = make_user("audrey", ("auditor", "EVL"))
    system = api(
        client,
        "POST",
        "/api/v1/systems",
        admin,
        201,
        json={
            "name": NAME,
            **TEXT,
            "site": "EVL",
            "business_owner": "bob",
            "technical_owner": "eve",
            "ai_act_role": "provider",
            "zone": "EVL-CTL",
            "sl_achieved": {f"FR{i}": 2 for i in range(1, 8)},
        },
    ).json()
    sid = system["id"]
    digest = "sha256:" + "3" * 64
    body = {"version": "1.0.0", "artifact_digest": digest, "notes": NOTES, "metrics": {"recall": 0.9}}
    api(client, "POST", f"/api/v1/systems/{sid}/versions", admin, 201, json=body)
    answers = {"answers": {"annex3_uses": ["annex3.2"]}}
    api(client, "POST", f"/api/v1/systems/{sid}/classification", admin, 201, json=answers)
    risk = {"impact": 4, "likelihood": 3, "risks": [RISK]}
    api(client, "POST", f"/api/v1/systems/{sid}/risk-assessment", admin, 201, json=risk)
    request = {"version": "1.0.0", "environment": "pilot", "justification": JUSTIFICATION}
    approval = api(client, "POST", f"/api/v1/systems/{sid}/approvals", bob, 201, json=request).json()
    signoff = {"role": "compliance_officer", "decision": "approve", "comment": f"{FORGED} {LINK}"}
    api(client, "POST", f"/api/v1/approvals/{approval['id']}/signoffs", admin, 201, json=signoff)
    return {"id": sid, "audrey": audrey}


def assert_markdown_is_text(md: str, typed: list[str]) -> list[str]:
    """No typed text became markup in ``md``, and each is still there, readable; returns the headings."""
    assert not re.search(r"<(script|img|a)\b", md, re.IGNORECASE)
    assert "](javascript:" not in md
    assert not any(line.startswith("# Approved") for line in md.splitlines())
    tokens = markdown_tokens(md)
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}
    assert not kinds & MARKUP_TOKENS, kinds & MARKUP_TOKENS
    html = [c.content for t in tokens for c in t.children or [] if c.type == "html_inline"]
    assert set(html) <= set(BREAKS), html
    rendered = markdown_text(md)
    for text in typed:
        for line in text.splitlines():
            assert line.strip() in rendered, line  # as typed, once rendered
    headings, tables = markdown_sections(md)
    for table in tables:  # a pipe or a line break in a cell broke no table
        assert {len(row) for row in table} == {len(table[0])}, table
    return headings


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_html_is_text(html: str, typed: list[str]) -> None:
    page = _Html()
    page.feed(html)
    assert not page.tags & {"script", "img", "a", "w:t"}, page.tags
    assert "<script" not in html.lower() and "<img" not in html.lower()
    text = "".join(page.text)
    for value in typed:
        for line in value.splitlines():
            assert line in text, line


def test_markdown_model_card(client: Any, hostile: dict[str, Any]) -> None:
    url = f"/api/v1/systems/{hostile['id']}/documents/model-card"
    md = api(client, "GET", url, hostile["audrey"], params={"format": "md"}).text
    headings = assert_markdown_is_text(md, EVERY_TEXT)
    assert headings[0] == "Model card: " + NAME  # the whole name, one heading
    assert set(headings[1:]) - {h for h in headings[1:] if h.startswith("APR-")} == CARD_HEADINGS
    _, tables = markdown_sections(md)
    details = {row[0]: row[1] for row in tables[0][1:]}
    assert (
        details["Name"] == NAME
        and details["Developed by (provider)"] == LINK
        and details["Version notes"] == NOTES
    )
    assert details["Technical owner"] == f"{DISPLAY_NAME} (eve)"
    assert "&lt;script&gt;" in md and r"\[x\]\(javascript:alert(1))" in md  # escaped, still readable


def test_html_model_card(client: Any, hostile: dict[str, Any]) -> None:
    url = f"/api/v1/systems/{hostile['id']}/documents/model-card"
    html = api(client, "GET", url, hostile["audrey"], params={"format": "html"}).text
    assert_html_is_text(html, EVERY_TEXT)


def test_docx_documents_print_text_as_typed(client: Any, hostile: dict[str, Any]) -> None:
    base = f"/api/v1/systems/{hostile['id']}/documents"
    for url, params in ((f"{base}/model-card", {"format": "docx"}), (f"{base}/technical-documentation", {})):
        content = api(client, "GET", url, hostile["audrey"], params=params).content
        _, paragraphs, tables, _ = docx_text(content)
        text = "\n".join(t for _, t in paragraphs) + "\n".join(c for t in tables for row in t for c in row)
        assert TEXT["training_data"] in text  # Jinja and XML in user text are printed, never run
        assert JUSTIFICATION in text and NAME in text
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            xml = zf.read("word/document.xml").decode()
        assert "&lt;/w:t&gt;&lt;/w:r&gt;" in xml and "&lt;script&gt;" in xml


def test_audit_pack_readme_and_cards(client: Any, hostile: dict[str, Any]) -> None:
    data = download(client, hostile["id"], hostile["audrey"])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    readme = files["README.md"].decode()
    headings = assert_markdown_is_text("\n---\n" + readme, [NAME, SITE_NAME])  # (no front matter)
    assert headings[0] == f"Audit pack: {NAME} ({hostile['id']})"
    assert not any(h.startswith("Approved") for h in headings)
    assert_markdown_is_text(files["model-card.md"].decode(), [NAME, *TEXT.values(), NOTES])
    assert_html_is_text(files["model-card.html"].decode(), [NAME, *TEXT.values(), NOTES])
    for name, content in files.items():  # no Markdown or JSON file of the pack starts a forged heading
        if name.endswith((".md", ".json", ".jsonl")):
            lines = content.decode().splitlines()
            assert not any(line.startswith("# Approved") for line in lines), name
