"""The technical-file page (issue 15): every Annex IV section with a form to record it, refusals as sentences.
TestClient for the rules of the page; real Chromium for editing one section."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server import serve
from tests.web.helpers import WebClient
from tests.web.test_browser import CHROMIUM, Person, chromium  # noqa: F401 (the browser fixtures)

URL = "/systems/{}/technical-file"
CHROMIUM_SKIP = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="needs /usr/bin/chromium (apt-get install chromium); in CI these tests always run",
)


def _api(client: TestClient, headers: dict[str, str], sid: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/systems/{sid}/technical-file", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_owner_records_a_section_and_a_stale_form_is_refused(
    web: Callable[..., WebClient],
    ready: Callable[..., str],
    client: TestClient,
    people: dict[str, dict[str, str]],
) -> None:
    sid = ready()
    bob = web("bob")
    system_page = bob.get(f"/systems/{sid}")
    assert URL.format(sid) in system_page.links()
    page = bob.get(URL.format(sid))
    assert page.status == 200
    assert "[annex4" not in page.text() and "Not recorded. To supply: the system architecture" in page.text()
    assert len([f for f in page.forms() if f.get("action", "").endswith("/technical-file")]) == 23
    page = bob.post(URL.format(sid), {"section": "annex4.2.c", "text": "Two GPUs\nper line", "revision": "0"})
    assert page.status == 200
    assert "Section annex4.2.c of the technical file is recorded." in page.text()
    assert page.texts("//section[@id='sec-annex4-2-c']//div[@class='tf-text']") == ["Two GPUsper line"]
    assert _api(client, people["audrey"], sid)["sections"][10]["text"] == "Two GPUs\nper line"
    # the same form again, read at revision 0: refused in a sentence, nothing changed
    page = bob.post(URL.format(sid), {"section": "annex4.2.c", "text": "Older", "revision": "0"})
    assert page.status == 409
    assert "Nothing was changed in annex4.2.c" in page.text() and "stale revision 0" in page.text().lower()
    assert _api(client, people["audrey"], sid)["revision"] == 1
    page = bob.post(URL.format(sid), {"section": "annex4.99", "text": "x", "revision": "1"})
    assert page.status == 422 and "no Annex IV section" in page.text()


def test_auditor_reads_without_forms_and_another_owner_is_refused(
    web: Callable[..., WebClient], ready: Callable[..., str]
) -> None:
    sid = ready()
    page = web("audrey").get(URL.format(sid))
    assert page.status == 200 and not [f for f in page.forms() if "technical-file" in f.get("action", "")]
    berta = web("berta")  # a business owner of the same site, not of this system
    page = berta.get(URL.format(sid))
    assert page.status == 200 and not [f for f in page.forms() if "technical-file" in f.get("action", "")]
    refused = berta.post(URL.format(sid), {"section": "annex4.2.c", "text": "x", "revision": "0"})
    assert refused.status == 403
    assert web("leo").get(URL.format(sid)).status == 404  # another site


@pytest.fixture
def served(ready: Callable[..., str], database: tuple[str, str | None], tmp_path: Path) -> Iterator[str]:
    """A real ``aireg serve`` over the test database, once bob's system exists."""
    with serve(database, tmp_path / "serve.log", AIREG_LOG_LEVEL="warning") as base:
        yield base


@pytest.mark.browser
@CHROMIUM_SKIP
def test_edit_one_section_in_chromium(
    chromium: Any,  # noqa: F811
    served: str,
    ready: Callable[..., str],
    make_user: Callable[..., dict[str, str]],
    client: TestClient,
) -> None:
    from playwright.sync_api import expect

    from app.demo import DEMO_PASSWORD

    sid = ready()
    headers = make_user("tf.clara", ("compliance_officer", "*"), password=DEMO_PASSWORD)
    clara = Person(chromium, served, "tf.clara")
    clara.goto(f"/systems/{sid}")
    clara.page.locator(".section-nav").get_by_role("link", name="Technical file").click()
    section = clara.page.locator("#sec-annex4-2-c")
    expect(section).to_contain_text("Not recorded. To supply:")
    section.get_by_text("Edit").click()
    section.get_by_label("Text of annex4.2.c").fill(
        "Edge server per line, 2 GPUs; training on the plant cluster"
    )
    section.get_by_role("button", name="Save").click()
    expect(clara.page.get_by_role("status")).to_contain_text(
        "Section annex4.2.c of the technical file is recorded"
    )
    section = clara.page.locator("#sec-annex4-2-c")
    expect(section.locator(".tf-text")).to_have_text(
        "Edge server per line, 2 GPUs; training on the plant cluster"
    )
    expect(clara.page.locator("#file-revision")).to_have_text("1")
    assert clara.errors == []
    body = _api(client, headers, sid)
    assert body["revision"] == 1
    assert next(s for s in body["sections"] if s["id"] == "annex4.2.c")["text"].startswith(
        "Edge server per line"
    )
    clara.close()
