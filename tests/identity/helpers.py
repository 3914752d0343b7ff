"""Small helpers shared by the identity and audit tests (everything goes through the HTTP API)."""

from __future__ import annotations

from typing import Any

DIGEST = "sha256:" + "ab" * 32


def token_of(headers: dict[str, str]) -> str:
    """The bare token in an ``Authorization: Bearer`` header."""
    return headers["Authorization"].split(" ", 1)[1]


def create_system(
    client: Any, headers: dict[str, str], site: str, owner: str, name: str = "Vision QA"
) -> dict:
    """Create a system through the API and return its body (fails the test on anything but 201)."""
    line = {"STR": "BODY1", "LYO": "SMT1"}[site]
    r = client.post(
        "/api/v1/systems",
        json={
            "name": name,
            "purpose": "inspect parts",
            "site": site,
            "line": line,
            "business_owner": owner,
            "zone": f"{site}-CTL",
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


def audit_events(client: Any, headers: dict[str, str], **params: Any) -> list[dict]:
    """Every audit event the caller may see that matches ``params`` (all pages)."""
    items: list[dict] = []
    while True:
        r = client.get(
            "/api/v1/audit-events", params={**params, "limit": 500, "offset": len(items)}, headers=headers
        )
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        if len(items) >= body["total"] or not body["items"]:
            return items
