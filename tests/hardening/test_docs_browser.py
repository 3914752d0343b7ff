"""The offline Swagger UI renders in a browser under its Content-Security-Policy: no CDN, no errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.hardening.test_scaleout import serve

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="needs /usr/bin/chromium (apt-get install chromium); in CI these tests always run",
    ),
]


def test_swagger_ui_renders_from_local_files_without_csp_violations(
    database: tuple[str, str | None], db: None, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    with serve(database, tmp_path / "docs.log") as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page()
            problems: list[str] = []
            outside: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            def note(request: Any) -> None:
                if not request.url.startswith(base) and not request.url.startswith("data:"):
                    outside.append(request.url)

            page.on("request", note)
            page.goto(f"{base}/docs", wait_until="networkidle")
            page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
            assert "aireg" in page.inner_text(".swagger-ui .info .title")
            assert page.locator(".opblock").count() > 20  # the operations are listed
            assert not outside, outside  # nothing fetched from a CDN
            assert not problems, problems  # no CSP violation, no script error
        finally:
            browser.close()
