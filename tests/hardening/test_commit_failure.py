"""A write whose commit fails is answered with an error, never with the 2xx of a write that did not happen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session


class CommitRefused(Exception):
    pass


@pytest.fixture
def failing_commits() -> Iterator[dict[str, bool]]:
    """While ``state["fail"]`` is true, every ORM commit fails (as a full disk or a lost server would)."""
    state = {"fail": False}

    def refuse(_session: Any) -> None:
        if state["fail"]:
            raise CommitRefused("the database refused the commit")

    event.listen(Session, "before_commit", refuse)
    try:
        yield state
    finally:
        event.remove(Session, "before_commit", refuse)


def test_a_write_that_cannot_commit_is_an_error_and_nothing_is_stored(
    client: Any, admin: dict[str, str], plant: Any, failing_commits: dict[str, bool]
) -> None:
    body = {"name": "Spot weld check", "purpose": "weld check", "site": "STR", "business_owner": "admin"}
    failing_commits["fail"] = True
    r = client.post("/api/v1/systems", json=body, headers=admin)
    failing_commits["fail"] = False
    assert r.status_code == 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/systems", headers=admin).json()["total"] == 0
    r = client.post("/api/v1/systems", json=body, headers=admin)
    assert r.status_code == 201
