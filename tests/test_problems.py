"""Every error is RFC 9457 problem details, with field locations for validation errors and no stack traces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.systems.helpers import assert_problem, system_body


def test_validation_error_shape(client, admin, plant):
    r = client.post("/api/v1/systems", json={"name": "", "site": "STR", "colour": 1}, headers=admin)
    body = assert_problem(r, 422)
    assert body["type"].endswith("/validation-error")
    assert body["title"] == "Unprocessable content"
    assert isinstance(body["errors"], list) and len(body["errors"]) >= 4
    for error in body["errors"]:
        assert set(error) == {"loc", "msg"}
        assert isinstance(error["loc"], list) and error["loc"][0] == "body"
        assert isinstance(error["msg"], str) and error["msg"]
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert {("body", "name"), ("body", "purpose"), ("body", "business_owner"), ("body", "colour")} <= locs
    assert "(and " in body["detail"]  # the detail names the first error and counts the rest


def test_service_validation_error_has_the_same_shape(client, admin, plant):
    r = client.post("/api/v1/systems", json=system_body(business_owner="ghost"), headers=admin)
    body = assert_problem(r, 422)
    assert body["errors"] == [{"loc": ["body", "business_owner"], "msg": "unknown user 'ghost'"}]


def test_query_and_header_validation_errors(client, admin):
    body = assert_problem(client.get("/api/v1/systems", params={"limit": 501}, headers=admin), 422)
    assert body["errors"][0]["loc"] == ["query", "limit"]
    assert "limit" in body["detail"]


def test_unauthenticated_is_401_problem_with_challenge(client):
    r = client.get("/api/v1/systems")
    body = assert_problem(r, 401)
    assert body["title"] == "Unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = client.get("/api/v1/systems", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_problem(r, 401)


def test_forbidden_and_conflict_and_not_found(client, admin, plant, make_user):
    owner = make_user("olga", ("business_owner", "STR"))
    assert assert_problem(client.post("/api/v1/sites", json={"code": "X1", "name": "x"}, headers=owner), 403)[
        "type"
    ].endswith("/forbidden")
    r = client.post("/api/v1/sites", json={"code": "STR", "name": "again"}, headers=admin)
    assert assert_problem(r, 409)["type"].endswith("/conflict")
    assert assert_problem(client.get("/api/v1/systems/AIS-000404", headers=admin), 404)["type"].endswith(
        "/not-found"
    )


# (paths outside /api are web pages, whose errors are HTML pages)
@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v2/systems", "/api"])
def test_unknown_api_path_is_404_problem(client, admin, path):
    body = assert_problem(client.get(path, headers=admin), 404)
    assert path in body["detail"]


def test_wrong_method_is_405_problem(client, admin):
    r = client.put("/api/v1/systems", json={}, headers=admin)
    body = assert_problem(r, 405)
    assert body["title"] == "Method not allowed"
    assert "PUT" in body["detail"]
    assert "GET" in r.headers["allow"] and "POST" in r.headers["allow"]


def test_malformed_json_is_422_problem(client, admin):
    r = client.post(
        "/api/v1/sites", content=b'{"code": "X1",', headers={**admin, "Content-Type": "application/json"}
    )
    body = assert_problem(r, 422)
    assert body["errors"] and body["errors"][0]["loc"][0] == "body"


@pytest.fixture
def failing_client(db: None) -> Iterator[Any]:
    """The real application with one extra route that fails the way a bug would."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    app = create_app()

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2 at /srv/app/db.py line 42")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_unexpected_exception_is_500_problem_without_stack_trace(failing_client, caplog):
    with caplog.at_level("ERROR", logger="aireg"):
        r = failing_client.get("/api/v1/boom")
    body = assert_problem(r, 500)
    assert body["title"] == "Internal server error"
    assert set(body) == {"type", "title", "status", "detail"}
    for leak in ("Traceback", "RuntimeError", "hunter2", "db.py", "secret"):
        assert leak not in r.text
    # the failure is logged for operators, with its stack trace
    assert any(rec.exc_info and "hunter2" in str(rec.exc_info[1]) for rec in caplog.records)
