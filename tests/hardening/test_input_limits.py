"""Input limits: body size (declared and streamed), slow bodies, JSON depth, media types, schema bounds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from app.middleware import InputLimitsMiddleware, is_json_media_type, json_depth_exceeds
from app.settings import get_settings
from tests.systems.helpers import assert_problem, system_body


@pytest.fixture
def small_body_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(get_settings(), "max_body_bytes", 4096)
    return 4096


def test_declared_content_length_over_the_cap_is_413_before_reading(
    client: Any, admin: dict[str, str], small_body_limit: int
) -> None:
    body = json.dumps({"answers": {}, "pad": "x" * 5000})
    r = client.post("/api/v1/classify", content=body, headers={**admin, "content-type": "application/json"})
    problem = assert_problem(r, 413)
    assert problem["max_bytes"] == small_body_limit
    assert "4096" in problem["detail"]


def test_streamed_chunked_body_over_the_cap_is_413(
    client: Any, admin: dict[str, str], small_body_limit: int
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"answers": {}, "pad": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    r = client.post(
        "/api/v1/classify", content=chunks(), headers={**admin, "content-type": "application/json"}
    )
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert_problem(r, 413)


def test_streamed_body_under_the_cap_reaches_the_endpoint(
    client: Any, admin: dict[str, str], small_body_limit: int
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"answers": {"annex3_uses": '
        yield b'["annex3.4.a"]}}'

    r = client.post(
        "/api/v1/classify", content=chunks(), headers={**admin, "content-type": "application/json"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["ai_act_class"] == "high_risk"


def test_body_at_exactly_the_cap_is_accepted(
    client: Any, admin: dict[str, str], small_body_limit: int
) -> None:
    head, tail = b'{"answers": {}', b"}"
    body = head + b" " * (small_body_limit - len(head) - len(tail)) + tail
    assert len(body) == small_body_limit
    r = client.post("/api/v1/classify", content=body, headers={**admin, "content-type": "application/json"})
    assert r.status_code == 200, r.text


def test_a_bad_content_length_is_400(client: Any, admin: dict[str, str]) -> None:
    scope_headers = [(b"content-length", b"12abc"), (b"content-type", b"application/json")]
    status, _ = _call_middleware(scope_headers, [b"{}"])
    assert status == 400


def _call_middleware(
    headers: list[tuple[bytes, bytes]], chunks: list[bytes], delay: float = 0.0, timeout: float | None = None
) -> tuple[int, bytes]:
    """Drive InputLimitsMiddleware directly with a receive that can be slow; returns (status, body)."""
    reached: list[bytes] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        reached.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def run() -> tuple[int, bytes]:
        pending = list(chunks)

        async def receive() -> dict[str, Any]:
            if delay:
                await asyncio.sleep(delay)
            if not pending:
                return {"type": "http.disconnect"}
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/api/v1/classify", "headers": headers}
        await InputLimitsMiddleware(inner)(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], body

    settings = get_settings()
    old = settings.body_timeout_seconds
    if timeout is not None:
        settings.body_timeout_seconds = timeout
    try:
        return asyncio.run(run())
    finally:
        settings.body_timeout_seconds = old


def test_a_body_that_arrives_too_slowly_is_408_and_never_reaches_the_app(db: None) -> None:
    headers = [(b"transfer-encoding", b"chunked"), (b"content-type", b"application/json")]
    status, body = _call_middleware(headers, [b"{", b'"a"', b":1}"], delay=0.2, timeout=0.3)
    assert status == 408
    problem = json.loads(body)
    assert problem["status"] == 408 and "did not arrive" in problem["detail"]


def test_a_body_within_the_time_limit_is_replayed_whole(db: None) -> None:
    headers = [(b"transfer-encoding", b"chunked"), (b"content-type", b"application/json")]
    status, body = _call_middleware(headers, [b"{", b'"a"', b":1}"], delay=0.01, timeout=5)
    assert (status, body) == (200, b"ok")


def test_json_nested_deeper_than_the_limit_is_422(client: Any, admin: dict[str, str]) -> None:
    limit = get_settings().max_json_depth
    deep: Any = 1.0
    for _ in range(limit + 5):
        deep = {"k": deep}
    body = {"version": "1.0.0", "artifact_digest": "sha256:" + "a" * 64, "metrics": deep}
    r = client.post("/api/v1/classify", json=body, headers=admin)
    problem = assert_problem(r, 422, field="body")
    assert f"deeper than {limit}" in problem["detail"]


def test_a_hundred_thousand_levels_of_nesting_is_a_422_not_a_crash(
    client: Any, admin: dict[str, str]
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    r = client.post("/api/v1/classify", content=body, headers={**admin, "content-type": "application/json"})
    assert_problem(r, 422)


def test_nesting_within_the_limit_is_left_to_the_endpoint(client: Any, admin: dict[str, str]) -> None:
    r = client.post("/api/v1/classify", json={"answers": {"annex1": {"legislation": None}}}, headers=admin)
    assert r.status_code == 200, r.text


def test_depth_scanner_ignores_brackets_inside_strings() -> None:
    tricky = json.dumps({"s": "[" * 100 + '\\"{' * 50, "t": ["]" * 10]}).encode()
    assert not json_depth_exceeds(tricky, 3)
    assert json_depth_exceeds(json.dumps([[[[1]]]]).encode(), 3)
    assert not json_depth_exceeds(json.dumps([[[1]]]).encode(), 3)
    assert not json_depth_exceeds(b"]]]][[[[", 2)  # malformed: left to the JSON parser


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/plain", b'{"answers": {}}'), ("application/x-www-form-urlencoded", b"answers=1"), (None, b"{}")],
)
def test_a_non_json_body_on_a_json_endpoint_is_415(
    client: Any, admin: dict[str, str], content_type: str | None, body: bytes
) -> None:
    headers = dict(admin)
    if content_type:
        headers["content-type"] = content_type
    r = client.post("/api/v1/classify", content=body, headers=headers)
    problem = assert_problem(r, 415)
    assert "application/json" in problem["detail"]


def test_415_also_covers_endpoints_with_path_parameters(
    client: Any, admin: dict[str, str], plant: Any
) -> None:
    r = client.patch(
        "/api/v1/systems/AIS-000001", content=b"<xml/>", headers={**admin, "content-type": "text/xml"}
    )
    assert_problem(r, 415)


def test_json_suffix_media_types_are_json() -> None:
    assert is_json_media_type("application/json; charset=utf-8")
    assert is_json_media_type("application/merge-patch+json")
    assert not is_json_media_type("text/json")
    assert not is_json_media_type(None)


def test_oversized_fields_are_422_naming_the_field(client: Any, admin: dict[str, str], plant: Any) -> None:
    r = client.post(
        "/api/v1/systems", json=system_body(name="n" * 201, business_owner="admin"), headers=admin
    )
    assert_problem(r, 422, field="name")
    r = client.post(
        "/api/v1/classify", json={"answers": {"annex3_uses": ["annex3.4.a"] * 1000}}, headers=admin
    )
    assert_problem(r, 422)


def _unbounded(schema: dict[str, Any], components: dict[str, Any], path: str, seen: set[str]) -> list[str]:
    """Strings without a length/pattern/enum bound, arrays without maxItems, maps without maxProperties."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _unbounded(components[name], components, f"{path}<{name}>", seen | {name})
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            found += _unbounded(sub, components, f"{path}|{i}", seen)
    kind = schema.get("type")
    if kind == "string" and not (
        {"maxLength", "pattern", "enum", "const"} & schema.keys()
        or schema.get("format") in {"date-time", "date", "email"}  # parsers with their own length bounds
        # an uploaded file: multipart bodies are counted against AIREG_MAX_UPLOAD_BYTES as they stream in
        # (InputLimitsMiddleware; tests/compliance/test_evidence.py::test_too_big_is_413_and_stores_nothing)
        or ("contentMediaType" in schema and "multipart/form-data" in path)
    ):
        found.append(path)
    if kind == "array":
        if "maxItems" not in schema:
            found.append(path)
        found += _unbounded(schema.get("items", {}), components, f"{path}[]", seen)
    if kind == "object":
        for name, sub in schema.get("properties", {}).items():
            found += _unbounded(sub, components, f"{path}.{name}", seen)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if "maxProperties" not in schema:
                found.append(f"{path}{{}}")
            found += _unbounded(extra, components, f"{path}{{}}", seen)
    return found


def test_every_request_body_field_is_bounded(client: Any) -> None:
    """The request schemas bound every string, list and map, so no field can carry an unbounded payload."""
    spec = client.get("/openapi.json").json()
    components = spec.get("components", {}).get("schemas", {})
    problems: list[str] = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for media, content in (op.get("requestBody") or {}).get("content", {}).items():
                problems += _unbounded(
                    content.get("schema", {}), components, f"{method.upper()} {path} {media}:", set()
                )
    assert not problems, "unbounded request fields:\n" + "\n".join(problems)


def test_metrics_must_be_finite_json_numbers(client: Any, admin: dict[str, str], plant: Any) -> None:
    r = client.post("/api/v1/systems", json=system_body(business_owner="admin"), headers=admin)
    sid = r.json()["id"]
    digest = "sha256:" + "e" * 64
    for bad in (b"NaN", b"Infinity", b"true", b'"0.9"'):
        body = b'{"version": "1.0.0", "artifact_digest": "%s", "metrics": {"recall": %s}}' % (
            digest.encode(),
            bad,
        )
        r = client.post(
            f"/api/v1/systems/{sid}/versions",
            content=body,
            headers={**admin, "content-type": "application/json"},
        )
        assert_problem(r, 422, field="recall")
    ok = {"version": "1.0.0", "artifact_digest": digest, "metrics": {"recall": 1, "f1": 0.5}}
    r = client.post(f"/api/v1/systems/{sid}/versions", json=ok, headers=admin)
    assert r.status_code == 201 and r.json()["metrics"] == {"recall": 1.0, "f1": 0.5}


@pytest.mark.parametrize("value", ["0", "1700000000", "0.5", "-1e3"])
def test_times_are_iso_8601_never_bare_numbers(client: Any, admin: dict[str, str], value: str) -> None:
    assert_problem(
        client.get("/api/v1/audit-events", params={"since": value}, headers=admin), 422, field="since"
    )


def test_an_iso_8601_time_is_accepted(client: Any, admin: dict[str, str]) -> None:
    r = client.get("/api/v1/audit-events", params={"since": "2026-01-01T00:00:00Z"}, headers=admin)
    assert r.status_code == 200, r.text


def test_integer_ids_beyond_the_database_range_are_422(client: Any, admin: dict[str, str]) -> None:
    assert_problem(client.get("/api/v1/conduits/871980937699882434560", headers=admin), 422)
    assert_problem(client.get("/api/v1/conduits/2147483647", headers=admin), 404)
