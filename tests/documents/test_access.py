"""Who may download documents, and that every download is audited."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

DOCS = [
    "model-card?format=md",
    "model-card?format=html",
    "model-card?format=docx",
    "technical-documentation?format=docx",
    "audit-pack",
]


@pytest.mark.parametrize("doc", DOCS)
def test_readers_download_and_each_download_is_audited(
    client: Any, documented: dict[str, Any], doc: str
) -> None:
    sid = documented["id"]
    url = f"/api/v1/systems/{sid}/documents/{doc}"
    for user in ("audrey", "bob", "carol"):
        r = client.get(url, headers=documented[user])
        assert r.status_code == 200, (user, r.text)
        assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
    events = client.get(
        "/api/v1/audit-events",
        params={"entity_id": sid, "limit": 500},
        headers=documented["admin"],
    ).json()["items"]
    downloads = [e for e in events if e["action"] == "document.download"]
    assert [e["actor"] for e in downloads] == ["audrey", "bob", "carol"]
    kind = doc.split("?")[0]
    assert {e["after"]["document"] for e in downloads} == {kind}
    assert all(e["entity_type"] == "system" and e["site"] == "STR" for e in downloads)
    assert downloads[0]["after"]["sha256"] == r.headers["etag"].strip('"')


@pytest.mark.parametrize("doc", DOCS)
def test_other_sites_get_404_and_roles_without_document_read_get_403(
    client: Any, documented: dict[str, Any], doc: str
) -> None:
    sid = documented["id"]
    url = f"/api/v1/systems/{sid}/documents/{doc}"
    r = client.get(url, headers=documented["lyo_auditor"])
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert client.get(url, headers=documented["ops"]).status_code == 403  # mlops has no document read
    assert client.get(url).status_code == 401
    assert (
        client.get(f"/api/v1/systems/AIS-999999/documents/{doc}", headers=documented["audrey"]).status_code
        == 404
    )
    events = client.get(
        "/api/v1/audit-events", params={"entity_id": sid, "limit": 500}, headers=documented["admin"]
    ).json()["items"]
    assert not [e for e in events if e["action"] == "document.download"]
    denied = [e for e in events if e["action"] == "access.denied"]
    assert {e["actor"] for e in denied} == {"lyon", "ops"}
