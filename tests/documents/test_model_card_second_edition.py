"""The model card on the Hugging Face template (with Mitchell et al.), the same content in Markdown, HTML,
Word and PDF, and PDF for the technical documentation: every format is opened and its content checked."""

from __future__ import annotations

import io
import re
from typing import Any

import pypdf
import pytest

from app.documents import card, pdf
from tests.documents.test_model_card import _Html, docx_text, markdown_sections, markdown_text
from tests.factories import DIGEST_OLD, NAME, api, past_deployment

URL = "/api/v1/systems/{}/documents/model-card"
DIGEST = "sha256:" + "3" * 64
INCIDENT = "Porosity missed on 40 bodies of line BODY1"
CLOSED_INCIDENT = "Camera lens fogged, closed after cleaning"
METRICS = {"recall": 0.951, "precision": 0.902, "recall__line__BODY1": 0.967, "recall__line__BODY2": 0.914}
FORBIDDEN = re.compile(r"to be completed|todo|placeholder|tbd", re.IGNORECASE)
HF_SECTIONS = [
    "Model Details",
    "Uses",
    "Direct Use",
    "Downstream Use",
    "Out-of-Scope Use",
    "Bias, Risks, and Limitations",
    "Recommendations",
    "Training Details",
    "Training Data",
    "Training Procedure",
    "Evaluation",
    "Testing Data, Factors & Metrics",
    "Results",
    "Results by group",
    "Environmental Impact",
    "Technical Specifications",
    "Compute Infrastructure",
    "EU AI Act Classification",
    "Open Serious Incidents",
    "Factors, Ethical Considerations, Caveats (Mitchell et al.)",
    "Factors",
    "Ethical Considerations",
    "Caveats and Recommendations",
    "Approval Status and Sign-offs",
    "Model Card Contact",
]


@pytest.fixture
def rich(client: Any, documented: dict[str, Any]) -> dict[str, Any]:
    """The documented system with a newer version whose metrics carry groups, a deployment of the oldest
    version and two serious incidents, one of them closed."""
    sid, admin = documented["id"], documented["admin"]
    past_deployment(sid, "1.0.0", DIGEST_OLD)
    api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/versions",
        admin,
        201,
        json={"version": "1.2.0", "artifact_digest": DIGEST, "metrics": METRICS},
    )
    incident = {
        "description": "Found in the weekly audit",
        "kind": "property_environment",
        "occurred_at": "2026-11-02T08:00:00Z",
        "aware_at": "2026-11-03T09:00:00Z",
    }
    api(client, "POST", f"/api/v1/systems/{sid}/incidents", documented["carol"], 201,
        json={**incident, "title": INCIDENT, "serious": True})  # fmt: skip
    closed = api(client, "POST", f"/api/v1/systems/{sid}/incidents", documented["carol"], 201,
                 json={**incident, "title": CLOSED_INCIDENT, "serious": True}).json()  # fmt: skip
    api(client, "POST", f"/api/v1/incidents/{closed['id']}/close", documented["carol"], 200,
        json={"root_cause": "fog", "corrective_action": "cleaning schedule"})  # fmt: skip
    return documented


def get(client: Any, sid: str, headers: dict[str, str], fmt: str, url: str = URL) -> Any:
    r = client.get(url.format(sid), params={"format": fmt}, headers=headers)
    assert r.status_code == 200, r.text
    return r


def pdf_text(content: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


def squeeze(text: str) -> str:
    """Text without any whitespace: a PDF wraps long values (a digest) across lines."""
    return re.sub(r"\s+", "", text)


def texts(client: Any, sid: str, headers: dict[str, str]) -> dict[str, str]:
    """What a reader sees of the card in each format."""
    md = get(client, sid, headers, "md").text
    page = _Html()
    page.feed(get(client, sid, headers, "html").text)
    _, paragraphs, tables, _ = docx_text(get(client, sid, headers, "docx").content)
    word = "\n".join(t for _, t in paragraphs) + "\n" + "\n".join(c for t in tables for row in t for c in row)
    return {
        "md": markdown_text(md) + "\n" + "\n".join(c for t in markdown_sections(md)[1] for r in t for c in r),
        "html": "".join(page.text),
        "docx": word,
        "pdf": pdf_text(get(client, sid, headers, "pdf").content),
    }


def test_markdown_card_is_a_huggingface_card(client: Any, rich: dict[str, Any]) -> None:
    from huggingface_hub import ModelCard

    content = get(client, rich["id"], rich["audrey"], "md").text
    hf = ModelCard(content)
    data = hf.data.to_dict()
    assert data["license"] == "apache-2.0"
    assert "pipeline_tag" not in data  # the registry names no task
    assert {"ai-act-high-risk", "nist-risk-high", "iec-62443"} <= set(data["tags"])
    assert data["aireg"]["artifact_digest"] == DIGEST and data["aireg"]["version"] == "1.2.0"
    results = {(e.metric_type, e.dataset_config, e.metric_value) for e in hf.data.eval_results}
    assert results == {
        ("precision", None, 0.902),
        ("recall", None, 0.951),
        ("recall", "line=BODY1", 0.967),
        ("recall", "line=BODY2", 0.914),
    }
    assert {e.task_type for e in hf.data.eval_results} == {"other"}
    front_matter = content.split("\n---\n", 1)[0]
    assert not FORBIDDEN.search(front_matter) and "not recorded" not in front_matter.lower()
    headings, tables = markdown_sections(content)
    assert headings[0] == "Model card: " + NAME
    assert headings[1:] == [h for h in HF_SECTIONS if h in headings[1:]]  # in the template's order
    assert set(HF_SECTIONS) <= set(headings)
    by_group = next(t for t in tables if t[0] == ["Metric", "Factor", "Group", "Value"])
    assert by_group[1:] == [["recall", "line", "BODY1", "0.967"], ["recall", "line", "BODY2", "0.914"]]
    incidents = next(t for t in tables if t[0][0] == "Incident")
    assert [row[1] for row in incidents[1:]] == [INCIDENT]  # the closed one is not open
    risks = next(t for t in tables if t[0][0] == "Risk")
    assert len(risks) == 7 and risks[1][3] == "review 1"  # every risk, with its mitigation


@pytest.mark.parametrize("fmt", ["md", "html", "docx", "pdf"])
def test_every_format_carries_the_same_facts(client: Any, rich: dict[str, Any], fmt: str) -> None:
    text = texts(client, rich["id"], rich["audrey"])[fmt]
    flat = squeeze(text)
    for fact in (
        f"Model card: {NAME}",
        rich["id"],
        "1.2.0",
        DIGEST,
        DIGEST_OLD,  # downstream use: the deployment of 1.0.0
        "0.967",  # a result by group
        "0.951",
        "review 1",  # a risk mitigation (a recommendation)
        INCIDENT,
        "Out-of-Scope Use",
        "Releasing bodies without human inspection",
        "Art. 5(1)(a)",  # prohibited practices are out of scope
        "Environmental Impact",
        "Not recorded in the registry.",
        "{3, 3, 3, 3, 3, 3, 3}",  # the IEC 62443 SL-T vector
        "High-risk (Art. 6(2), Annex III point 2)",
        "Model Card Contact",
        "Ethical Considerations",
    ):
        assert squeeze(fact) in flat, (fmt, fact)
    assert CLOSED_INCIDENT not in text
    assert not FORBIDDEN.search(text), FORBIDDEN.search(text)


def test_pdf_is_deterministic(client: Any, rich: dict[str, Any]) -> None:
    first = get(client, rich["id"], rich["audrey"], "pdf")
    assert first.headers["content-type"] == "application/pdf"
    assert first.headers["content-disposition"] == f'attachment; filename="{rich["id"]}-model-card-1.2.0.pdf"'
    second = get(client, rich["id"], rich["audrey"], "pdf")
    assert first.content == second.content  # downloads are not covered: nothing changed in between
    assert first.headers["etag"] == second.headers["etag"]
    reader = pypdf.PdfReader(io.BytesIO(first.content))
    covered = first.headers["x-aireg-covered-seq"]
    events = client.get("/api/v1/audit-events", params={"limit": 500}, headers=rich["admin"]).json()["items"]
    ts = next(e["ts"] for e in events if str(e["seq"]) == covered)
    stamp = "D:" + re.sub(r"[-T:]", "", ts[:19])
    assert reader.metadata["/CreationDate"].startswith(stamp)  # the covered time, not the clock
    assert reader.metadata["/ModDate"] == reader.metadata["/CreationDate"]
    assert reader.metadata["/Title"].startswith("Model card: ")
    html = "<html><head><title>x</title></head><body><p>Same input, same bytes</p></body></html>"
    assert pdf.html_to_pdf(html) == pdf.html_to_pdf(html)


def test_bare_system_says_not_recorded_and_claims_nothing(client: Any, bare: dict[str, Any]) -> None:
    from huggingface_hub import ModelCard

    md = get(client, bare["id"], bare["audrey"], "md").text
    data = ModelCard(md).data.to_dict()
    assert "license" not in data and "model-index" not in data and data["tags"] == ["aireg", "eu-ai-act"]
    for fmt, text in texts(client, bare["id"], bare["audrey"]).items():
        assert not FORBIDDEN.search(text), fmt
        for phrase in (
            "Not recorded in the registry.",
            "the system has not been classified under the AI Act",
            "no NIST AI RMF risk assessment",
            "Approvals: not recorded for this version.",
            "Open serious incidents: none recorded",
        ):
            assert squeeze(phrase) in squeeze(text), (fmt, phrase)


def test_group_metric_convention() -> None:
    assert card.split_metric("recall__line__BODY1") == ("recall", "line", "BODY1")
    assert card.split_metric("f1_macro") is None
    assert card.split_metric("recall__line") is None


def test_technical_documentation_pdf_has_the_markdown_content(client: Any, rich: dict[str, Any]) -> None:
    url = "/api/v1/systems/{}/documents/technical-documentation"
    md = get(client, rich["id"], rich["audrey"], "md", url).text
    r = get(client, rich["id"], rich["audrey"], "pdf", url)
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].endswith('-technical-documentation-1.2.0.pdf"')
    flat = squeeze(pdf_text(r.content))
    headings, _ = markdown_sections("\n---\n" + md)  # no front matter
    assert len(headings) > 5
    for heading in headings:
        assert squeeze(heading) in flat, heading
    assert squeeze(DIGEST) in flat
    assert get(client, rich["id"], rich["audrey"], "pdf", url).content == r.content


def test_cli_writes_the_same_pdf(client: Any, rich: dict[str, Any], tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from app.cli import app

    out = tmp_path / "card.pdf"
    result = CliRunner().invoke(app, ["docs", "model-card", rich["id"], "--format", "pdf", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == get(client, rich["id"], rich["audrey"], "pdf").content
    result = CliRunner().invoke(app, ["docs", "model-card", rich["id"], "--format", "pdf"])
    assert result.exit_code == 2 and "pdf is binary" in result.output
