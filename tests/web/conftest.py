"""Page-test fixtures: people with passwords and roles, a browser-like client per person, a system."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.web.helpers import DIGEST, PASSWORD, WebClient

# username -> role grants; every one signs in with PASSWORD
PEOPLE: dict[str, tuple[tuple[str, str], ...]] = {
    "bob": (("business_owner", "STR"),),
    "berta": (("business_owner", "STR"),),
    "clara": (("compliance_officer", "*"),),
    "rita": (("risk_officer", "*"),),
    "otto": (("ot_security", "STR"),),
    "dora": (("dpo", "*"),),
    "audrey": (("auditor", "*"),),
    "leo": (("business_owner", "LYO"),),
    "pipe": (("mlops", "*"),),
}


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with small cost parameters: page tests sign in dozens of times (the check is the same)."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from app.identity import service

    monkeypatch.setattr(
        service, "_password_hash", PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024),))
    )


@pytest.fixture
def people(make_user: Callable[..., dict[str, str]], plant: dict[str, object]) -> dict[str, dict[str, str]]:
    """Everyone in PEOPLE, with bearer headers for API calls (the plant STR/LYO exists)."""
    return {name: make_user(name, *grants, password=PASSWORD) for name, grants in PEOPLE.items()}


@pytest.fixture
def web(client: TestClient, people: dict[str, dict[str, str]]) -> Callable[[str | None], WebClient]:
    """``web("bob")``: a separate cookie jar signed in as bob (``web(None)`` stays anonymous)."""

    def factory(username: str | None = None) -> WebClient:
        browser = WebClient(TestClient(client.app, raise_server_exceptions=False))
        if username is not None:
            browser.login(username)
        return browser

    return factory


@pytest.fixture
def make_system(
    client: TestClient, admin: dict[str, str], people: dict[str, dict[str, str]]
) -> Callable[..., dict[str, Any]]:
    """Create a system through the API (as the admin) owned by bob in STR; keyword arguments override."""

    def factory(**overrides: Any) -> dict[str, Any]:
        body = {
            "name": "Weld seam inspection",
            "purpose": "Camera-based detection of weld seam defects",
            "site": "STR",
            "line": "BODY1",
            "business_owner": "bob",
            "zone": "STR-ENT",
            "sl_achieved": {f"FR{i}": 2 for i in range(1, 8)},
        } | overrides
        r = client.post("/api/v1/systems", json=body, headers=admin)
        assert r.status_code == 201, r.text
        return r.json()

    return factory


@pytest.fixture
def ready(
    make_system: Callable[..., dict[str, Any]], client: TestClient, people: dict[str, dict[str, str]]
) -> Callable[..., str]:
    """A system of bob's, classified by clara, with version 1.0.0: ready for an approval request."""

    def factory(answers: dict[str, Any] | None = None, **overrides: Any) -> str:
        sid = make_system(**overrides)["id"]
        r = client.post(
            f"/api/v1/systems/{sid}/classification",
            json={"answers": answers if answers is not None else {"transparency": ["art50.4"]}},
            headers=people["clara"],
        )
        assert r.status_code == 201, r.text
        r = client.post(
            f"/api/v1/systems/{sid}/versions",
            json={"version": "1.0.0", "artifact_digest": DIGEST, "metrics": {"recall": 0.98}},
            headers=people["clara"],
        )
        assert r.status_code == 201, r.text
        return sid

    return factory
