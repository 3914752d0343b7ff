"""End to end in real headless Chromium against a real uvicorn server over the test database.

A business owner registers a system and runs the classification wizard, the compliance officer saves the
classification from the shared link, the owner registers a version and asks for approval, each signer
approves from their inbox, an auditor downloads the audit pack, and people without the rights see neither
the buttons nor, by URL, the pages. Screenshots of the dashboard and a system page at 1280 px and 390 px go
to ``artifacts/screenshots/``; with AIREG_UPDATE_README_SHOTS=1 two are copied to ``docs/screenshots/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server import serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
README_SHOTS = ROOT / "docs" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="needs /usr/bin/chromium (apt-get install chromium); in CI these tests always run",
    ),
]


@pytest.fixture
def demo(client: TestClient) -> dict[str, str]:
    """The demo portfolio with classifications, risk assessments and approvals on top."""
    from tests.web.seed import seed_portfolio

    return seed_portfolio(client)


@pytest.fixture
def server(demo: dict[str, str], database: tuple[str, str | None], tmp_path: Path) -> Iterator[str]:
    """A real ``aireg serve`` on a free 127.0.0.1 port, over the same test database."""
    with serve(database, tmp_path / "serve.log", AIREG_LOG_LEVEL="warning") as base:
        yield base


@pytest.fixture
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Person:
    """One signed-in browser context, collecting console errors (a CSP violation shows up there)."""

    def __init__(self, chromium: Any, base: str, username: str, width: int = 1280) -> None:
        from app.demo import DEMO_PASSWORD

        self.base = base
        self.context = chromium.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
        self.errors: list[str] = []
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(f"{base}/login")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(DEMO_PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(lambda url: "/login" not in url)

    def _console(self, message: Any) -> None:
        # A page answered 403/404 on purpose is logged as a failed load; scripts and CSP must stay silent.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def goto(self, path: str) -> Any:
        response = self.page.goto(f"{self.base}{path}")
        self.page.wait_for_load_state("networkidle")
        return response

    def close(self) -> None:
        assert self.errors == [], self.errors
        self.context.close()


def _screenshot(person: Person, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    person.page.screenshot(path=str(path), full_page=True)
    return path


def test_owner_to_signers_to_auditor_in_a_real_browser(
    chromium: Any, server: str, client: TestClient
) -> None:
    from playwright.sync_api import expect

    # --- a business owner registers a system ---------------------------------------------------------
    bob = Person(chromium, server, "bob.owner")
    bob.page.get_by_role("link", name="Register a system").first.click()
    expect(bob.page.get_by_role("heading", level=1)).to_have_text("Register an AI system")
    bob.page.get_by_role("textbox", name="Name", exact=True).fill("Line-side assistant chatbot")
    bob.page.get_by_role("textbox", name="Purpose", exact=True).fill(
        "Answers operators' questions on work instructions at the body shop line."
    )
    bob.page.get_by_label("Production line").select_option("BODY1")
    bob.page.get_by_label("Zone", exact=True).select_option("STR-OPS")
    for fr in range(1, 8):
        bob.page.locator(f"#f-sl_FR{fr}").select_option("2")
    bob.page.get_by_role("button", name="Register system").click()
    expect(bob.page.get_by_role("heading", level=1)).to_have_text("Line-side assistant chatbot")
    system_id = bob.page.url.rsplit("/", 1)[-1]
    expect(bob.page.get_by_role("status")).to_contain_text(
        f"{system_id} “Line-side assistant chatbot” is registered"
    )

    # --- ... and runs the wizard, one question at a time, with a live preview --------------------------
    bob.page.get_by_role("link", name="Try the classification questions").click()
    expect(bob.page.locator("#step-1")).to_be_visible()
    expect(bob.page.locator("#step-2")).to_be_hidden()
    expect(bob.page.get_by_role("button", name="Preview result")).to_be_hidden()  # the preview is live
    expect(bob.page.locator("#result-class")).to_have_text("Not yet answered")  # no verdict before answers
    for _ in range(5):
        bob.page.locator("fieldset.is-current").get_by_role("button", name="Next question").click()
    expect(bob.page.locator("#result-class")).to_have_text("Not yet answered")
    expect(bob.page.locator("#step-6")).to_be_visible()
    expect(bob.page.locator("#step-6 .step__article")).to_contain_text("Art. 50")
    bob.page.locator("input[value='art50.1']").check()
    expect(bob.page.locator("#result-class")).to_have_text("Limited risk")
    expect(bob.page.locator("#result-progress")).to_contain_text("questions 7, 8 not yet seen")
    expect(bob.page.locator("#result-basis")).to_contain_text("Art. 50(1)")
    expect(bob.page.locator("#result-obligations")).to_contain_text("Art. 4")
    expect(bob.page.locator("#wizard-form button", has_text="Save classification")).to_have_count(0)
    share = bob.page.locator("#share-link").get_attribute("href")
    assert share is not None and "transparency=art50.1" in share

    # --- the compliance officer opens the shared answers and saves the classification -----------------
    clara = Person(chromium, server, "clara.compliance")
    clara.goto(share)
    expect(clara.page.locator("input[value='art50.1']")).to_be_checked()
    expect(clara.page.locator("#result-class")).to_have_text("Limited risk")
    save = clara.page.get_by_role("button", name="Save classification")
    expect(save).to_be_disabled()  # not before every question has been seen
    for _ in range(7):
        expect(save).to_be_disabled()
        clara.page.locator("fieldset.is-current").get_by_role("button", name="Next question").click()
    expect(save).to_be_enabled()
    expect(clara.page.locator("#result-progress")).to_be_hidden()
    save.click()
    expect(clara.page.get_by_role("status")).to_contain_text(
        f"Classification saved: {system_id} is now limited risk"
    )

    # --- the owner registers the model version and asks for approval ----------------------------------
    bob.goto(f"/systems/{system_id}")
    bob.page.get_by_text("Register a new version").click()
    bob.page.get_by_role("textbox", name="Version", exact=True).fill("1.0.0")
    bob.page.get_by_role("textbox", name="Artifact digest (SHA-256)").fill("sha256:" + "c" * 64)
    bob.page.get_by_role("button", name="Register version").click()
    expect(bob.page.get_by_role("status")).to_contain_text("Version 1.0.0 is registered")
    bob.page.get_by_role("link", name="Request release approval").first.click()
    expect(bob.page.locator("aside")).to_contain_text("OT security")
    bob.page.get_by_label("Pilot").check()
    bob.page.get_by_role("textbox", name="Justification").fill(
        "Tested with 12 operators for two weeks; answers checked by the trainer."
    )
    bob.page.get_by_role("button", name="Submit for sign-off").click()
    expect(bob.page.get_by_role("status")).to_contain_text(
        "waits for sign-off by: Business owner, Compliance officer, OT security."
    )
    approval_id = bob.page.url.rsplit("/", 1)[-1]

    # --- every signer approves from their inbox -------------------------------------------------------
    for username in ("berta.owner", "otto.ot", "clara.compliance"):
        signer = clara if username == "clara.compliance" else Person(chromium, server, username)
        signer.goto("/")
        signer.page.get_by_role("link", name="Sign-off inbox").click()
        card = signer.page.locator("article", has=signer.page.locator(f"a[href='/approvals/{approval_id}']"))
        expect(card).to_contain_text("Line-side assistant chatbot")
        card.get_by_label("Comment").fill(f"Reviewed by {username}")
        card.get_by_role("button", name="Approve").click()
        expect(signer.page.get_by_role("status")).to_contain_text(f"You approved {approval_id}")
        expect(signer.page.locator(f"article a[href='/approvals/{approval_id}']")).to_have_count(0)
        if signer is not clara:
            signer.close()
    expect(clara.page.get_by_role("status")).to_contain_text("the release is approved")
    clara.goto(f"/approvals/{approval_id}")
    expect(clara.page.locator(".badges .badge").first).to_have_text("Approved")
    h = client.get(f"/api/v1/approvals/{approval_id}", headers=_token("audrey.auditor"))
    assert h.json()["state"] == "approved"

    # --- an auditor finds the system and downloads its audit pack --------------------------------------
    audrey = Person(chromium, server, "audrey.auditor")
    audrey.page.get_by_role("link", name="Systems", exact=True).click()
    audrey.page.get_by_label("Search name or purpose").fill("line-side")
    audrey.page.get_by_role("button", name="Apply filters").click()
    expect(audrey.page.locator("tbody tr")).to_have_count(1)
    audrey.page.get_by_role("link", name="Line-side assistant chatbot").click()
    with audrey.page.expect_download() as download_info:
        audrey.page.get_by_role("link", name="Download ZIP (Audit pack)").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(download.path()) as pack:
        manifest = json.loads(pack.read("manifest.json"))
        listed = {f["path"]: f["sha256"] for f in manifest["files"]}
        assert listed, manifest
        for path, digest in listed.items():
            assert hashlib.sha256(pack.read(path)).hexdigest() == digest, path
    for button in ("Classify under the AI Act", "Request release approval", "Register a new version"):
        expect(audrey.page.get_by_text(button)).to_have_count(0)
    audrey.close()

    # --- people without the rights see neither the button nor, by URL, the page -------------------------
    berta = Person(chromium, server, "berta.owner")  # a business owner in STR, but not of this system
    berta.goto(f"/systems/{system_id}")
    expect(berta.page.get_by_role("link", name="Request release approval")).to_have_count(0)
    response = berta.goto(f"/systems/{system_id}/approvals/new")
    assert response.status == 403
    expect(berta.page.get_by_role("heading", level=1)).to_have_text("You cannot do this")
    berta.close()
    leo = Person(chromium, server, "leo.owner")  # holds no role in STR
    response = leo.goto(f"/systems/{system_id}")
    assert response.status == 404
    expect(leo.page.get_by_role("heading", level=1)).to_have_text("Page not found")
    leo.goto("/systems?q=line-side")
    expect(leo.page.locator("tbody tr")).to_have_count(0)
    pack = leo.page.request.get(f"{server}/api/v1/systems/{system_id}/documents/audit-pack")
    assert pack.status == 404
    leo.close()

    # --- screenshots at desktop and phone widths ------------------------------------------------------
    shots: dict[str, Path] = {}
    for width in (1280, 390):
        viewer = clara if width == 1280 else Person(chromium, server, "clara.compliance", width=width)
        for name, path in (("dashboard", "/dashboard"), ("system", f"/systems/{system_id}")):
            viewer.goto(path)
            overflow = viewer.page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, f"{name} is {overflow} px wide at {width} px"
            shots[f"{name}-{width}"] = _screenshot(viewer, f"{name}-{width}")
        for path in (
            "/systems",
            f"/systems/{system_id}/classify",
            "/inbox",
            f"/approvals/{approval_id}",
            "/systems/new",
        ):
            viewer.goto(path)
            overflow = viewer.page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, f"{path} is {overflow} px wide at {width} px"
        if viewer is not clara:
            viewer.close()
    if os.environ.get("AIREG_UPDATE_README_SHOTS"):  # refresh the README's pictures on request
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        for name in ("dashboard-1280", "system-390"):
            shutil.copyfile(shots[name], README_SHOTS / f"{name}.png")
    clara.close()
    bob.close()


def test_the_wizard_result_panel_shows_a_long_obligation_list_whole(chromium: Any, server: str) -> None:
    """A deployer turned provider of a system on several routes has ~30 duties: none is cut off."""
    from playwright.sync_api import expect

    clara = Person(chromium, server, "clara.compliance", width=1280)
    clara.goto("/systems?q=chatbot")
    clara.page.get_by_role("link", name="Maintenance assistant chatbot").click()
    clara.page.get_by_role("link", name="Reclassify under the AI Act").click()
    clara.page.get_by_role("link", name="Regulated products").click()
    clara.page.locator("#annex1_legislation").select_option("annex1.a.11")
    clara.page.locator("input[name='annex1_safety_component']").check()
    clara.page.locator("input[name='annex1_third_party']").check()
    clara.page.get_by_role("link", name="High-risk uses").click()
    for use in ("annex3.1.a", "annex3.4.a", "annex3.5.b"):
        clara.page.locator(f"input[name='annex3_uses'][value='{use}']").check()
    clara.page.get_by_role("link", name="Role changes").click()
    clara.page.locator("input[name='role_change'][value='art25.1.b']").check()
    expect(clara.page.locator("#result-class")).to_have_text("High risk")
    items = clara.page.locator("#result-obligations li")
    expect(items.nth(24)).to_be_attached()  # waits for the preview of the last answer (a race under load)
    expect(items.last).to_contain_text("Art.")
    assert items.count() >= 25
    panel = clara.page.locator(".result-panel")
    # the panel is as tall as its content (nothing hidden behind an inner scroll) ...
    assert panel.evaluate("el => el.scrollHeight <= el.clientHeight + 1")
    # ... and its last duty can be scrolled into view and read
    items.last.scroll_into_view_if_needed()
    expect(items.last).to_be_in_viewport()
    clara.close()


def test_pages_work_without_javascript(chromium: Any, server: str) -> None:
    """The wizard falls back to all questions at once and a server-side preview."""
    from playwright.sync_api import expect

    from app.demo import DEMO_PASSWORD

    context = chromium.new_context(java_script_enabled=False, viewport={"width": 390, "height": 900})
    page = context.new_page()
    page.goto(f"{server}/login")
    page.get_by_label("Username").fill("clara.compliance")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{server}/systems?q=chatbot")
    page.get_by_role("link", name="Maintenance assistant chatbot").click()
    page.get_by_role("link", name="Reclassify under the AI Act").click()
    expect(page.locator("#step-6")).to_be_visible()  # every question on one page
    page.locator("input[value='art5.1.f']").check()
    page.get_by_role("button", name="Preview result").click()
    expect(page.locator("#result-class")).to_have_text("Prohibited")
    context.close()


# Every element of the header shows its whole content: nothing cut off ("Busi…") or clipped.
_HEADER_CLIPPED = """() => [...document.querySelectorAll('.topbar *')]
    .filter(el => el.offsetParent !== null && !el.classList.contains('visually-hidden'))
    .filter(el => el.scrollWidth > el.clientWidth + 1 || getComputedStyle(el).textOverflow === 'ellipsis')
    .map(el => el.className || el.tagName)"""


@pytest.mark.parametrize("width", [1280, 800])
def test_the_header_shows_every_role_label_whole(chromium: Any, server: str, width: int) -> None:
    """Issue 14: the signed-in role was cut to "Busi..."; now name and roles wrap, at desktop and narrow."""
    from playwright.sync_api import expect

    for username, roles in (
        ("bob.owner", "Business owner (STR)"),
        ("otto.ot", "OT security (POZ), OT security (STR)"),
        ("ci-pipeline", "MLOps"),
    ):
        person = Person(chromium, server, username, width=width)
        person.goto("/systems")
        account = person.page.locator(".account")
        expect(account).to_contain_text(roles)
        assert "_" not in account.inner_text() and "..." not in account.inner_text()
        assert person.page.evaluate(_HEADER_CLIPPED) == [], f"{username} at {width} px"
        box = account.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1
        assert person.page.evaluate("document.documentElement.scrollWidth") <= width
        # the roles line is laid out in the account block, fully inside the viewport
        roles_box = person.page.get_by_text(roles, exact=True).bounding_box()
        assert (
            roles_box is not None and roles_box["x"] >= 0 and roles_box["x"] + roles_box["width"] <= width + 1
        )
        if username == "otto.ot":
            _screenshot(person, f"header-{width}")
        person.close()


def test_pages_speak_in_sentences_and_labels(chromium: Any, server: str) -> None:
    """Issue 14: "just now ago", "SL gap accepted" before OT security signed, and pydantic's own words."""
    from playwright.sync_api import expect

    otto = Person(chromium, server, "otto.ot", width=1280)
    otto.goto("/inbox")
    main = otto.page.locator("main")
    expect(main).to_contain_text("Release requests waiting for your signature as OT security.")
    expect(main).to_contain_text("requested by berta.owner just now")
    expect(main).not_to_contain_text("just now ago")
    expect(main).not_to_contain_text("ot security")
    card = otto.page.locator("article", has_text="Security-level gap in FR3").first
    expect(card).to_contain_text("Security-level gap in FR3: awaiting OT security sign-off")
    card.locator("h3 a").click()
    facts = otto.page.locator("dl.facts")
    expect(facts).to_contain_text("Security-level gap in FR3: awaiting OT security sign-off")
    expect(facts).not_to_contain_text("SL gap accepted")
    # OT security accepts the gap with countermeasures: the page says so
    otto.page.locator("form[action$='/signoffs']").get_by_label("Comment").fill(
        "Zone firewall, weekly review"
    )
    otto.page.get_by_role("button", name="Approve").click()
    expect(otto.page.get_by_role("status")).to_contain_text("as OT security.")
    expect(facts).to_contain_text(
        "Security-level gap in FR3: accepted with compensating countermeasures by the OT security sign-off "
        "(otto.ot"
    )
    otto.close()

    bob = Person(chromium, server, "bob.owner", width=1280)
    bob.goto("/systems?q=weld")
    bob.page.get_by_role("link", name="Weld seam visual inspection").click()
    bob.page.get_by_text("Register a new version").click()
    bob.page.get_by_role("textbox", name="Version", exact=True).fill("not a version")
    bob.page.get_by_role("textbox", name="Artifact digest (SHA-256)").fill("md5:abc")
    bob.page.get_by_role("button", name="Register version").click()
    errors = bob.page.locator(".error-text")
    expect(errors.first).to_be_visible()
    expect(bob.page.locator("main")).to_contain_text(
        "Version must be a version such as 1.2.0 (letters, digits, dots, hyphens, plus signs)."
    )
    expect(bob.page.locator("main")).to_contain_text("Artifact digest must be “sha256:” followed by 64")
    expect(bob.page.locator("main")).not_to_contain_text("String should")
    bob.close()


def _token(username: str) -> dict[str, str]:
    from tests.web.seed import tokens

    return tokens(username)[username]
