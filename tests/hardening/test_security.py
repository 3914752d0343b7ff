"""Security headers, request ids, the offline API docs, and the last-resort 500."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from app.middleware import DOCS_CSP, PAGE_CSP
from tests.systems.helpers import assert_problem

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def _assert_secure(r: Any, csp: str = PAGE_CSP) -> None:
    for name, value in EXPECTED.items():
        assert r.headers.get(name) == value, (name, dict(r.headers))
    assert r.headers["content-security-policy"] == csp
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]) or r.headers["x-request-id"]


def test_every_kind_of_response_carries_the_security_headers(client: Any, admin: dict[str, str]) -> None:
    responses = [
        client.get("/api/v1/users/me", headers=admin),  # 200
        client.get("/api/v1/users/me"),  # 401
        client.get("/api/v1/nowhere", headers=admin),  # 404
        client.delete("/api/v1/users/me", headers=admin),  # 405
        client.post("/api/v1/classify", json={"answers": {"x": 1}}, headers=admin),  # 422
        client.get("/healthz"),
        client.get("/openapi.json"),
    ]
    for r in responses:
        _assert_secure(r)
    assert "frame-ancestors 'none'" in PAGE_CSP and "script-src 'self'" in PAGE_CSP
    assert "unsafe-inline" not in PAGE_CSP.split("style-src")[0]
    assert responses[0].headers["cache-control"] == "no-store"


def test_the_page_policy_is_exactly_the_one_specified() -> None:
    assert PAGE_CSP == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )


def test_https_responses_add_hsts(client: Any) -> None:
    r = client.get("https://testserver/healthz")
    assert r.headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in client.get("/healthz").headers


def test_request_id_is_echoed_or_made(client: Any) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "pipeline-42.run:7"})
    assert r.headers["x-request-id"] == "pipeline-42.run:7"
    made = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/healthz").headers["x-request-id"] != made
    # a header that could forge log lines is replaced, not echoed
    r = client.get("/healthz", headers={"X-Request-ID": 'x" injected=1'})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    r = client.get("/healthz", headers={"X-Request-ID": "a" * 200})
    assert len(r.headers["x-request-id"]) == 32


def test_docs_are_served_from_local_files_without_inline_script(client: Any) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    _assert_secure(r, DOCS_CSP)
    html = r.text
    assert "http://" not in html and "https://" not in html  # no CDN
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        asset = client.get(src)
        assert asset.status_code == 200, src
        assert len(asset.content) > 0
    init = client.get("/docs/init.js")
    assert "SwaggerUIBundle" in init.text and "/openapi.json" in init.text
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert len(bundle.content) > 500_000


def test_an_unhandled_error_is_a_problem_500_with_headers_and_no_trace(db: None) -> None:
    from app.main import create_app

    app = create_app()

    @app.get("/api/v1/boom-test")
    def boom() -> None:
        raise RuntimeError("secret internals aireg_abcdefghijklmnop")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/boom-test", headers={"X-Request-ID": "boom-1"})
    problem = assert_problem(r, 500)
    assert "secret internals" not in r.text and "Traceback" not in r.text
    assert problem["detail"]
    assert r.headers["x-request-id"] == "boom-1"
    assert r.headers["x-content-type-options"] == "nosniff"
