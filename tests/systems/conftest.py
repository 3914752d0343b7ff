"""Fixtures for the registry tests: a business owner and a factory creating systems through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.systems.helpers import system_body


@pytest.fixture
def bob(make_user: Callable[..., dict[str, str]], plant: dict[str, object]) -> dict[str, str]:
    """A business owner in STR (the plant exists)."""
    return make_user("bob", ("business_owner", "STR"))


@pytest.fixture
def new_system(client: Any, admin: dict[str, str], bob: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Create a system through the API as the admin (a global compliance officer) and return its body."""

    def factory(**overrides: Any) -> dict[str, Any]:
        r = client.post("/api/v1/systems", json=system_body(**overrides), headers=admin)
        assert r.status_code == 201, r.text
        return r.json()

    return factory
