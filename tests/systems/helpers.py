"""Helpers for the registry tests: a valid system body, problem-details checks, audit reads."""

from __future__ import annotations

from typing import Any

DIGEST = "sha256:" + "ab" * 32


def system_body(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /systems`` body on site STR, owned by ``bob``; keyword arguments replace fields."""
    body: dict[str, Any] = {
        "name": "Weld inspection",
        "purpose": "Detect weld seam defects on car bodies",
        "site": "STR",
        "line": "BODY1",
        "business_owner": "bob",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def set_columns(system_id: str, **values: Any) -> None:
    """Set read-only columns (``ai_act_class``, ``risk_tier``) the way the classification domain would."""
    import sqlalchemy as sa

    from app.db import session_scope
    from app.systems.models import AISystem

    with session_scope() as session:
        session.execute(sa.update(AISystem).where(AISystem.id == system_id).values(**values))


def audit_events(client: Any, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    """Every audit event matching ``params`` (read through the API)."""
    r = client.get("/api/v1/audit-events", params={"limit": 500, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def assert_problem(r: Any, status: int, *, field: str | None = None) -> dict[str, Any]:
    """Check an RFC 9457 body with ``status``; with ``field``, one of its ``errors`` must name that field."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    if field is not None:
        locs = [e["loc"] for e in body.get("errors", [])]
        assert any((loc and loc[-1] == field) or field in loc for loc in locs), body
    return body
