"""Documents follow the effective role: a deployer that became provider under Art. 25 is shown as such."""

from __future__ import annotations

from typing import Any


def test_model_card_names_the_art25_role_change(client: Any, admin: dict[str, str], plant: Any) -> None:
    body = {
        "name": "Rebranded vision check",
        "purpose": "weld inspection",
        "site": "STR",
        "business_owner": "admin",
    }
    system = client.post("/api/v1/systems", json=body, headers=admin).json()
    assert system["ai_act_role"] == "deployer"
    answers = {"annex3_uses": ["annex3.4.a"], "role_change": ["art25.1.a"]}
    r = client.post(
        f"/api/v1/systems/{system['id']}/classification", json={"answers": answers}, headers=admin
    )
    assert r.status_code == 201, r.text
    assert r.json()["effective_role"] == "provider"
    for fmt in ("md", "html"):
        r = client.get(
            f"/api/v1/systems/{system['id']}/documents/model-card", params={"format": fmt}, headers=admin
        )
        assert r.status_code == 200, r.text
        assert "acting as provider (AI Act Art. 25)" in r.text, fmt
    plain = {
        "name": "Own vision check",
        "purpose": "weld inspection",
        "site": "STR",
        "business_owner": "admin",
    }
    other = client.post("/api/v1/systems", json=plain, headers=admin).json()
    client.post(f"/api/v1/systems/{other['id']}/classification", json={"answers": {}}, headers=admin)
    md = client.get(
        f"/api/v1/systems/{other['id']}/documents/model-card", params={"format": "md"}, headers=admin
    )
    assert "acting as" not in md.text


def test_technical_documentation_names_the_art25_role_change(
    client: Any, admin: dict[str, str], plant: Any
) -> None:
    import io

    from docx import Document

    body = {
        "name": "Rebranded vision check",
        "purpose": "weld inspection",
        "site": "STR",
        "business_owner": "admin",
    }
    system = client.post("/api/v1/systems", json=body, headers=admin).json()
    answers = {"annex3_uses": ["annex3.4.a"], "role_change": ["art25.1.a"]}
    client.post(f"/api/v1/systems/{system['id']}/classification", json={"answers": answers}, headers=admin)
    r = client.get(
        f"/api/v1/systems/{system['id']}/documents/technical-documentation",
        params={"format": "docx"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    document = Document(io.BytesIO(r.content))
    cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
    assert any("acting as provider (AI Act Art. 25)" in c for c in cells)
    r = client.get(
        f"/api/v1/systems/{system['id']}/documents/model-card", params={"format": "docx"}, headers=admin
    )
    assert r.status_code == 200, r.text
    paragraphs = [p.text for p in Document(io.BytesIO(r.content)).paragraphs]
    assert any("acting as provider (AI Act Art. 25)" in p for p in paragraphs)
