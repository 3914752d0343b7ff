"""Property-based fuzzing of the whole HTTP API from its own OpenAPI schema (schemathesis).

Every operation is called with generated valid and invalid data, as an admin, a business owner, an auditor
and an MLOps pipeline in turn, half the time on real objects (a seeded system, approval, incident, user).
Seeded and bounded: ``derandomize`` makes the run repeatable and ``AIREG_FUZZ_EXAMPLES`` (default 10) caps
the generated examples per operation (after the schema-driven coverage cases). Every answer must be a
non-5xx that conforms to the schema (status code, media type, headers, body), every error must be RFC 9457
problem+json, and schema-invalid input must be refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import empty_tables

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("AIREG_FUZZ_EXAMPLES", "10"))
ROLES = ("admin", "owner", "auditor", "mlops")
DIGEST = "sha256:" + "cd" * 32


def problem_json_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx is ``application/problem+json`` with type, title, status (the response's) and detail."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} answered as {content_type!r}: {response.text[:300]}"
    )
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == response.status_code, body
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    problem_json_errors,
]


@pytest.fixture(scope="module")
def world(database: tuple[str, str | None]) -> Iterator[dict[str, Any]]:
    """One seeded registry for the whole module: a plant, four callers and real objects to aim at."""
    from app.settings import get_settings

    settings = get_settings()
    saved_limit = settings.auth_failure_limit
    settings.auth_failure_limit = 10_000  # generated bad tokens must not turn the run into 429s
    from fastapi.testclient import TestClient

    from app.db import session_scope
    from app.identity import service
    from app.identity.models import Role, UserCreate

    empty_tables()
    app = APP
    headers: dict[str, dict[str, str]] = {}
    grants = {
        "admin": [("admin", "*"), ("compliance_officer", "*")],
        "owner": [("business_owner", "STR")],
        "auditor": [("auditor", "*")],
        "mlops": [("mlops", "*")],
    }
    token_ids: dict[str, str] = {}
    with session_scope() as session:
        for name in (*ROLES, "spare"):
            service.create_user(session, UserCreate(username=name), actor="fuzz")
        for role, site in grants["admin"]:
            service.grant_role(session, "admin", Role(role), site, actor="fuzz")
        issued = service.issue_token(session, "admin", name="fuzz", expires_days=30, actor="fuzz")
        headers["admin"] = {"Authorization": f"Bearer {issued.token}"}
        token_ids["admin"] = issued.id
    admin = headers["admin"]
    with TestClient(app) as client:
        for code, lines in (("STR", ["BODY1"]), ("LYO", ["SMT1"])):
            r = client.post(
                "/api/v1/sites",
                json={"code": code, "name": code, "lines": [{"code": c, "name": c} for c in lines]},
                headers=admin,
            )
            assert r.status_code == 201, r.text
        with session_scope() as session:
            for name in ROLES[1:]:
                for role, site in grants[name]:
                    service.grant_role(session, name, Role(role), site, actor="fuzz")
                issued = service.issue_token(session, name, name="fuzz", expires_days=30, actor="fuzz")
                headers[name] = {"Authorization": f"Bearer {issued.token}"}
                token_ids[name] = issued.id
            # objects the fuzzer may revoke or strip without locking the four callers out
            service.grant_role(session, "spare", Role.auditor, "STR", actor="fuzz")
            token_ids["spare"] = service.issue_token(
                session, "spare", name="x", expires_days=30, actor="fuzz"
            ).id
        client.post(
            "/api/v1/zones",
            json={
                "code": "STR-CTL",
                "name": "ctl",
                "site": "STR",
                "purdue_level": 2,
                "sl_target": {f"FR{i}": 2 for i in range(1, 8)},
            },
            headers=admin,
        )
        r = client.post(
            "/api/v1/systems",
            json={
                "name": "Weld AI",
                "purpose": "weld seams",
                "site": "STR",
                "line": "BODY1",
                "business_owner": "owner",
                "zone": "STR-CTL",
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        system_id = r.json()["id"]
        client.post(
            f"/api/v1/systems/{system_id}/versions",
            json={"version": "1.0.0", "artifact_digest": DIGEST},
            headers=admin,
        )
        client.post(
            f"/api/v1/systems/{system_id}/classification",
            json={"answers": {"annex3_uses": ["annex3.4.a"]}},
            headers=admin,
        )
        r = client.post(
            f"/api/v1/systems/{system_id}/approvals",
            json={"version": "1.0.0", "environment": "production", "justification": "go"},
            headers=headers["owner"],
        )
        approval_id = r.json().get("id", "APR-000001") if r.status_code == 201 else "APR-000001"
        from app.db import utcnow

        now = utcnow()
        r = client.post(
            f"/api/v1/systems/{system_id}/incidents",
            json={
                "title": "drift",
                "description": "d",
                "serious": False,
                "kind": "other",
                "occurred_at": (now - timedelta(days=1)).isoformat(),
                "aware_at": now.isoformat(),
            },
            headers=admin,
        )
        incident_id = r.json().get("id", "INC-000001") if r.status_code == 201 else "INC-000001"
    real = {
        "system_id": system_id,
        "approval_id": approval_id,
        "incident_id": incident_id,
        "username": "spare",
        "code": "STR",
        "version": "1.0.0",
        "token_id": token_ids["spare"],
        "role": "auditor",
        "subcategory": "MAP 1.1",
    }
    yield {"app": app, "headers": headers, "real": real}
    settings.auth_failure_limit = saved_limit
    empty_tables()


def _make_app() -> Any:
    from app.main import create_app

    return create_app()


APP = _make_app()  # the schema is read from the app itself (no database is touched to build it)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def _pick(case: Any, n: int) -> int:
    """A stable choice for a case (the same data always gets the same role and target)."""
    key = f"{case.method} {case.path} {case.path_parameters} {case.query} {case.body!r}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % n


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_conforms_and_never_fails(case: Any, world: dict[str, Any]) -> None:
    choice = _pick(case, 8)
    role = ROLES[choice % 4]
    if choice >= 4 and case.path_parameters:  # half the time aim at objects that exist
        for name in list(case.path_parameters):
            if name in world["real"]:
                case.path_parameters[name] = world["real"][name]
    case.call_and_validate(headers=world["headers"][role], checks=CHECKS)
