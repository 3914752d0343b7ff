"""AI Act Annex V declaration of conformity and Annex VIII registration data (issue 15)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from docx import Document
from pypdf import PdfReader

from tests.factories import NAME, api

ORG = "Acme Body Works SE"
ADDRESS = "1 Rue de l'Industrie, 67000 Strasbourg, France"
DOC = "documents/declaration-of-conformity"
REG = "documents/eu-database-registration"


@pytest.fixture
def organisation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from app.settings import get_settings

    monkeypatch.setenv("AIREG_ORGANISATION_NAME", ORG)
    monkeypatch.setenv("AIREG_ORGANISATION_ADDRESS", ADDRESS)
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("AIREG_ORGANISATION_NAME")
    monkeypatch.delenv("AIREG_ORGANISATION_ADDRESS")
    get_settings.cache_clear()


def make_system(client: Any, admin: dict[str, str], role: str, answers: dict[str, Any], **extra: Any) -> str:
    body = {
        "name": f"{role} system",
        "purpose": "Score applicants for assembly jobs",
        "site": "STR",
        "business_owner": "bob",
        "ai_act_role": role,
        "lifecycle_stage": "pilot",
        **extra,
    }
    sid = api(client, "POST", "/api/v1/systems", admin, 201, json=body).json()["id"]
    api(client, "POST", f"/api/v1/systems/{sid}/classification", admin, 201, json={"answers": answers})
    return str(sid)


def docx_text(content: bytes) -> str:
    doc = Document(io.BytesIO(content))
    return "\n".join(p.text for p in doc.paragraphs)


def test_declaration_docx_prints_registry_facts_and_placeholders(
    client: Any, documented: dict[str, Any], organisation: None
) -> None:
    sid = documented["id"]
    r = api(client, "GET", f"/api/v1/systems/{sid}/{DOC}?format=docx", documented["audrey"])
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert (
        r.headers["content-disposition"]
        == f'attachment; filename="{sid}-declaration-of-conformity-1.1.0.docx"'
    )
    text = docx_text(r.content)
    for expected in (
        f"Name: {NAME}",
        f"Registry id: {sid}",
        "Model version: 1.1.0",
        "Artifact digest: sha256:" + "2" * 64,
        ORG,
        ADDRESS,
        "Annex III point 2",
        "sole responsibility of the provider",
        "Art. 43(2)",
        "Notified body: not applicable.",
        "Not applicable: the registry records no processing of personal data",
        "[annex5.6 not recorded: harmonised standards applied",
        "[annex5.8 not recorded: place and date of issue",
    ):
        assert expected in text, expected
    assert "{{" not in text and "{%" not in text
    # the same data gives the same bytes
    again = api(client, "GET", f"/api/v1/systems/{sid}/{DOC}?format=docx", documented["audrey"])
    assert again.content == r.content


def test_declaration_prints_recorded_standards_and_names_the_vendor(
    client: Any, documented: dict[str, Any]
) -> None:
    sid, admin = documented["id"], documented["admin"]
    api(
        client,
        "PATCH",
        f"/api/v1/systems/{sid}/technical-file",
        admin,
        json={
            "sections": [{"id": "annex4.7", "text": "EN ISO/IEC 42001:2023", "evidence": []}],
            "revision": 0,
        },
    )
    system = api(client, "GET", f"/api/v1/systems/{sid}", admin).json()
    api(
        client,
        "PATCH",
        f"/api/v1/systems/{sid}",
        admin,
        json={"vendor": "Vision Vendor GmbH", "revision": system["revision"]},
    )
    text = docx_text(api(client, "GET", f"/api/v1/systems/{sid}/{DOC}", documented["audrey"]).content)
    assert "EN ISO/IEC 42001:2023" in text and "annex5.6 not recorded" not in text
    assert "Vision Vendor GmbH" in text
    assert "[annex5.2 not recorded" in text  # the vendor's address is not recorded


def test_declaration_pdf(client: Any, documented: dict[str, Any], organisation: None) -> None:
    sid = documented["id"]
    r = api(client, "GET", f"/api/v1/systems/{sid}/{DOC}?format=pdf", documented["audrey"])
    assert r.headers["content-type"] == "application/pdf"
    text = " ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(r.content)).pages)
    text = " ".join(text.split())
    for expected in (
        "EU declaration of conformity",
        NAME,
        "1.1.0",
        ORG,
        "Annex III point 2",
        "annex5.8 not recorded",
    ):
        assert expected in text, expected


def test_declaration_409_for_a_deployer_and_a_minimal_risk_system(
    client: Any, plant: Any, people: dict[str, dict[str, str]]
) -> None:
    admin = people["admin"]
    deployer = make_system(client, admin, "deployer", {"annex3_uses": ["annex3.4.a"]})
    r = api(client, "GET", f"/api/v1/systems/{deployer}/{DOC}", admin, 409)
    assert "effective AI Act role is deployer" in r.json()["detail"]
    minimal = make_system(client, admin, "provider", {})
    r = api(client, "GET", f"/api/v1/systems/{minimal}/{DOC}?format=pdf", admin, 409)
    assert "minimal_risk" in r.json()["detail"] and "high-risk systems only" in r.json()["detail"]
    r = api(client, "GET", f"/api/v1/systems/{minimal}/{REG}", admin, 409)
    assert "nothing to register" in r.json()["detail"]
    unclassified = api(
        client,
        "POST",
        "/api/v1/systems",
        admin,
        201,
        json={"name": "New", "purpose": "x", "site": "STR", "business_owner": "bob"},
    ).json()["id"]
    for doc in (DOC, REG):
        assert (
            "not been classified"
            in api(client, "GET", f"/api/v1/systems/{unclassified}/{doc}", admin, 409).json()["detail"]
        )


def test_registration_section_a_for_a_provider(
    client: Any, plant: Any, people: dict[str, dict[str, str]], organisation: None
) -> None:
    admin = people["admin"]
    sid = make_system(
        client, admin, "provider", {"annex3_uses": ["annex3.4.a"]}, training_data="CVs of 2020-2025"
    )
    api(
        client,
        "POST",
        f"/api/v1/systems/{sid}/versions",
        admin,
        201,
        json={"version": "2.0.0", "artifact_digest": "sha256:" + "3" * 64},
    )
    r = api(client, "GET", f"/api/v1/systems/{sid}/{REG}", admin)
    assert r.headers["content-type"].startswith("application/json")
    data = r.json()
    assert data["section"] == "A" and data["register_in"] == "eu_database" and data["required"] is True
    assert data["legal_basis"] == "Art. 49(1)" and data["non_public_section"] is False
    assert data["obligation"]["id"] == "art49"
    fields = data["fields"]
    assert list(fields) == [f"annex8.a.{n}" for n in range(1, 14)] == list(data["field_titles"])
    assert fields["annex8.a.1"] == {"name": ORG, "address": ADDRESS}
    assert fields["annex8.a.4"] == {
        "name": "provider system",
        "system_id": sid,
        "version": "2.0.0",
        "artifact_digest": "sha256:" + "3" * 64,
    }
    assert fields["annex8.a.5"] == "Score applicants for assembly jobs"
    assert fields["annex8.a.6"] == "Data: CVs of 2020-2025"
    assert fields["annex8.a.7"] == "put into service (pilot use)"
    assert fields["annex8.a.11"].endswith(
        f"/api/v1/systems/{sid}/documents/declaration-of-conformity?format=pdf"
    )
    for empty in (2, 3, 8, 9, 10, 12, 13):
        assert fields[f"annex8.a.{empty}"] is None


def test_registration_of_critical_infrastructure_is_national(client: Any, documented: dict[str, Any]) -> None:
    data = api(client, "GET", f"/api/v1/systems/{documented['id']}/{REG}", documented["audrey"]).json()
    assert (
        data["section"] == "A" and data["register_in"] == "national" and data["legal_basis"] == "Art. 49(5)"
    )
    assert "national level" in data["why"]
    assert data["fields"]["annex8.a.1"] is None  # built in-house, no organisation name set


def test_registration_section_c_for_a_deployer(
    client: Any, plant: Any, people: dict[str, dict[str, str]], organisation: None
) -> None:
    admin = people["admin"]
    sid = make_system(client, admin, "deployer", {"annex3_uses": ["annex3.4.a"]})
    data = api(client, "GET", f"/api/v1/systems/{sid}/{REG}", admin).json()
    assert data["section"] == "C" and data["required"] is None and data["legal_basis"] == "Art. 49(3)"
    assert "public authority" in data["why"]
    assert list(data["fields"]) == [f"annex8.c.{n}" for n in range(1, 6)]
    assert data["fields"]["annex8.c.1"] == {"name": ORG, "address": ADDRESS}
    assert all(data["fields"][f"annex8.c.{n}"] is None for n in (2, 3, 4, 5))
    public = make_system(client, admin, "deployer", {"annex3_uses": ["annex3.6.a"]})
    data = api(client, "GET", f"/api/v1/systems/{public}/{REG}", admin).json()
    assert data["section"] == "C" and data["required"] is True and data["non_public_section"] is True
    point2 = make_system(client, admin, "deployer", {"annex3_uses": ["annex3.2"]})
    detail = api(client, "GET", f"/api/v1/systems/{point2}/{REG}", admin, 409).json()["detail"]
    assert "Art. 49(5)" in detail


def test_registration_section_b_for_an_art6_3_provider(
    client: Any, plant: Any, people: dict[str, dict[str, str]]
) -> None:
    admin = people["admin"]
    sid = make_system(
        client,
        admin,
        "provider",
        {"annex3_uses": ["annex3.4.a"], "art6_3_conditions": ["art6.3.a"]},
        vendor="HR Tools AG",
    )
    data = api(client, "GET", f"/api/v1/systems/{sid}/{REG}", admin).json()
    assert data["section"] == "B" and data["legal_basis"] == "Art. 49(2)" and data["required"] is True
    fields = data["fields"]
    assert list(fields) == [f"annex8.b.{n}" for n in range(1, 10)]
    assert fields["annex8.b.1"] == {"name": "HR Tools AG", "address": None}
    assert [c["cite"] for c in fields["annex8.b.6"]] == ["Art. 6(3)(a)"]
    assert fields["annex8.b.7"]
    api(client, "GET", f"/api/v1/systems/{sid}/{DOC}", admin, 409)


@pytest.mark.parametrize("doc", [f"{DOC}?format=docx", f"{DOC}?format=pdf", REG])
def test_access_and_audit(client: Any, documented: dict[str, Any], doc: str) -> None:
    sid = documented["id"]
    url = f"/api/v1/systems/{sid}/{doc}"
    assert client.get(url, headers=documented["lyo_auditor"]).status_code == 404
    assert client.get(url, headers=documented["ops"]).status_code == 403
    assert client.get(url).status_code == 401
    for user in ("audrey", "carol"):
        api(client, "GET", url, documented[user])
    events = client.get(
        "/api/v1/audit-events", params={"entity_id": sid, "limit": 500}, headers=documented["admin"]
    ).json()["items"]
    downloads = [e for e in events if e["action"] == "document.download"]
    assert [e["actor"] for e in downloads] == ["audrey", "carol"]
    assert {e["after"]["document"] for e in downloads} == {doc.split("/")[1].split("?")[0]}


def test_broken_annex_files_name_the_file_and_key(tmp_path: Any, db: None) -> None:
    from pathlib import Path

    from app.classification.catalog import CatalogError
    from app.documents.annexes import load_annex5, load_annex8

    root = Path(__file__).resolve().parents[2] / "risk_catalog"
    annex8 = (root / "annex8.yaml").read_text().replace("obligation: art49.2", "obligation: art99")
    annex8 = annex8.replace("source: fria_summary", "source: horoscope")
    (tmp_path / "annex8.yaml").write_text(annex8)
    with pytest.raises(CatalogError) as caught:
        load_annex8(tmp_path / "annex8.yaml")
    problems = "\n".join(caught.value.problems)
    assert "annex8.yaml: sections[2].fields[3].source" in problems
    annex5 = (root / "annex5.yaml").read_text().replace("    source: statement\n", "    source: null\n", 1)
    (tmp_path / "annex5.yaml").write_text(annex5)
    with pytest.raises(CatalogError) as caught:
        load_annex5(tmp_path / "annex5.yaml")
    assert "annex5.yaml: items[2].statement: required exactly when source is" in str(caught.value)
    (tmp_path / "annex8.yaml").write_text(annex8.replace("source: horoscope", "source: fria_summary"))
    with pytest.raises(CatalogError) as caught:
        load_annex8(tmp_path / "annex8.yaml")
    assert "annex8.yaml: registrations[2].obligation: 'art99' is no AI Act obligation" in str(caught.value)


def test_the_shipped_word_template_is_what_its_builder_makes(tmp_path: Any) -> None:
    import importlib.util
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "document_templates"
    spec = importlib.util.spec_from_file_location("build_doc", folder / "build_declaration_template.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path)]) == 0
    built = (tmp_path / "declaration_of_conformity.docx").read_bytes()
    assert built == (folder / "declaration_of_conformity.docx").read_bytes()
