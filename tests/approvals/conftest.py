"""Fixtures for the approval tests: a team of signers in plant STR and systems made through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.approvals.helpers import DIGEST_V1, DIGEST_V2, classify

TEAM = {
    "bob": ("business_owner", "STR"),  # owns the systems and requests approvals
    "berta": ("business_owner", "STR"),  # another business owner in STR: signs for the business
    "clara": ("compliance_officer", "STR"),
    "rita": ("risk_officer", "STR"),
    "otto": ("ot_security", "STR"),
    "dora": ("dpo", "STR"),
    "sam": ("safety_engineer", "STR"),
    "ci": ("mlops", "STR"),
    "leo": ("business_owner", "LYO"),  # no role in STR
    "audrey": ("auditor", "STR"),
}


def long_lived_user(username: str, *grants: tuple[str, str]) -> dict[str, str]:
    """A user with a ten-year token (the tests travel months ahead in time)."""
    from app.db import session_scope
    from app.identity import service
    from app.identity.models import Role, UserCreate

    with session_scope() as session:
        service.create_user(session, UserCreate(username=username), actor="test")
        for role, site in grants:
            service.grant_role(session, username, Role(role), site, actor="test")
        token = service.issue_token(session, username, name="test", expires_days=3650, actor="test").token
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def team(client: Any, plant: dict[str, object]) -> dict[str, dict[str, str]]:
    """Auth headers per username; ``admin`` is the plant fixture's admin with a long-lived token."""
    headers = {name: long_lived_user(name, grant) for name, grant in TEAM.items()}
    headers["admin"] = _long_lived_token("admin")
    return headers


def _long_lived_token(username: str) -> dict[str, str]:
    from app.db import session_scope
    from app.identity import service

    with session_scope() as session:
        token = service.issue_token(session, username, name="long", expires_days=3650, actor="test").token
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_system(client: Any, team: dict[str, dict[str, str]]) -> Callable[..., str]:
    """Create a system owned by bob (with versions v1, v2) and optionally classify it; returns its id."""
    admin = team["admin"]

    def factory(
        answers: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        **fields: Any,
    ) -> str:
        body = {
            "name": "Weld seam inspection",
            "purpose": "camera-based weld seam defect detection",
            "site": "STR",
            "line": "BODY1",
            "business_owner": "bob",
            **fields,
        }
        r = client.post("/api/v1/systems", json=body, headers=admin)
        assert r.status_code == 201, r.text
        system_id = r.json()["id"]
        for version, digest in (("v1", DIGEST_V1), ("v2", DIGEST_V2)):
            r = client.post(
                f"/api/v1/systems/{system_id}/versions",
                json={
                    "version": version,
                    "artifact_digest": digest,
                    "metrics": metrics
                    if metrics is not None
                    else {"recall": 0.98, "false_reject_rate": 0.01},
                },
                headers=admin,
            )
            assert r.status_code == 201, r.text
        if answers is not None:
            classify(client, admin, system_id, answers)
        return system_id

    return factory
