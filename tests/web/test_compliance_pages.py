"""The compliance pages of issue 14: a system's requirements tab with evidence upload, what is still open on
the approval page and in the inbox, and the portfolio's compliance by framework and site (with the
organisation-wide requirements). TestClient for the rules of each page; real Chromium for the workflow."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.compliance import service
from app.compliance.models import Evidence
from app.db import session_scope, utcnow
from tests.web.helpers import Page, WebClient
from tests.web.test_browser import (  # noqa: F401 (the browser fixtures)
    Person,
    _screenshot,
    chromium,
    demo,
    server,
)

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
HIGH_RISK = {"annex3_uses": ["annex3.4.a"]}  # Annex III 4(a): its AI Act duties bind from 2 Dec 2027
TRANSPARENCY = {"transparency": ["art50.4"]}  # limited risk: Art. 50(4) binds today


def _upload(
    browser: WebClient, path: str, title: str = "Risk management plan", content: bytes = PDF, **data: str
) -> Any:
    """Post the upload form as a browser does (multipart, with the page's CSRF token)."""
    return browser.client.post(
        path,
        data={"title": title, "csrf_token": browser.token, **data},
        files={"file": ("plan.pdf", content, "application/pdf")},
        follow_redirects=False,
    )


def _row(page: Any, ref: str) -> Any:
    return page.xpath(f"//tr[@data-requirement='{ref}']")[0]


def _status(page: Any, ref: str) -> str:
    return " ".join(_row(page, ref).xpath(".//td[@data-label='Status']")[0].text_content().split())


def _api_requirements(client: TestClient, headers: dict[str, str], sid: str) -> dict[str, dict[str, Any]]:
    r = client.get(f"/api/v1/systems/{sid}/requirements", params={"limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    return {i["id"]: i for i in r.json()["items"]}


# --- the requirements tab ------------------------------------------------------------------------------


def test_requirements_tab_records_progress_with_evidence(
    web: Callable[..., WebClient], ready: Callable[..., str], client: TestClient, people: Any
) -> None:
    sid = ready(HIGH_RISK, ai_act_role="provider")
    clara = web("clara")
    system_page = clara.get(f"/systems/{sid}")
    assert f"/systems/{sid}/requirements" in system_page.links()
    page = clara.get(f"/systems/{sid}/requirements")
    assert page.status == 200
    headings = page.texts("//section[contains(@class, 'req-group')]/h2")
    assert [h.split(" ")[0] for h in headings][:1] and len(headings) == 3, headings
    assert "binds from 2027-12-02" in _status(page, "ai_act:art9")
    assert _status(page, "ai_act:art9").startswith("Open")
    assert "No evidence uploaded yet." in page.text("//*[@id='evidence']")

    # met without evidence: the service's refusal, as a sentence next to that row's form
    refused = clara.post(
        f"/systems/{sid}/requirements", {"requirement": "ai_act:art9", "status": "met", "revision": "1"}
    )
    assert refused.status == 409
    alert = " ".join(_row(refused, "ai_act:art9").xpath(".//*[@role='alert']")[0].text_content().split())
    assert "ai_act:art9 cannot be marked met" in alert and "current evidence" in alert
    assert _row(refused, "ai_act:art9").xpath(".//details[@open]")
    # not applicable without a note
    refused = clara.post(
        f"/systems/{sid}/requirements",
        {"requirement": "ai_act:art9", "status": "not_applicable", "revision": "1"},
    )
    assert refused.status == 422 and "needs a note" in refused.text("//*[@role='alert']")

    # upload through the form, then link it and mark met
    clara.get(f"/systems/{sid}/requirements")
    posted = _upload(
        clara, f"/systems/{sid}/evidence", valid_until=(date.today() + timedelta(days=90)).isoformat()
    )
    assert posted.status_code == 303, posted.text[:1000]
    page = clara.get(posted.headers["location"])
    assert "is uploaded" in page.text("//*[@role='status']")
    evidence_id = page.xpath("//tr[@data-evidence]/@data-evidence")[0]
    row = " ".join(page.texts(f"//tr[@data-evidence='{evidence_id}']"))
    assert "Risk management plan" in row and "PDF document" in row and "Download" in row
    assert page.xpath(f"//a[@href='/api/v1/evidence/{evidence_id}/content']")
    content = clara.client.get(f"/api/v1/evidence/{evidence_id}/content")
    assert content.status_code == 200 and content.content == PDF  # the session cookie downloads it
    marked = clara.post(
        f"/systems/{sid}/requirements",
        [("requirement", "ai_act:art9"), ("status", "met"), ("evidence", evidence_id), ("revision", "1")],
        follow=False,
    )
    assert marked.status == 303 and marked.response.headers["location"].endswith("#req-ai-act-art9")
    page = clara.get(marked.response.headers["location"])
    assert "ai_act:art9 is now recorded as met." in page.text("//*[@role='status']")
    assert _status(page, "ai_act:art9").startswith("Met")
    mapped = [
        ref
        for ref, item in _api_requirements(client, people["clara"], sid).items()
        if item["crosswalk_evidence"] == [evidence_id]
    ]
    assert mapped and "through the crosswalk" in " ".join(_row(page, mapped[0]).xpath(".//text()"))
    api = _api_requirements(client, people["clara"], sid)["ai_act:art9"]
    assert api["status"] == "met" and api["evidence"] == [evidence_id]

    # a stale revision is refused as a sentence too
    stale = clara.post(
        f"/systems/{sid}/requirements", {"requirement": "ai_act:art9", "status": "open", "revision": "1"}
    )
    assert stale.status == 409 and stale.xpath("//tr[@data-requirement='ai_act:art9']//*[@role='alert']")
    # a file that is not what it says: said next to the file field, nothing stored
    clara.get(f"/systems/{sid}/requirements")
    bad = _upload(clara, f"/systems/{sid}/evidence", content=b"not a pdf")
    assert bad.status_code == 422
    assert "does not start as a PDF document does" in " ".join(Page(bad).texts("//*[@id='file-error']"))


def test_auditor_sees_no_forms_and_a_post_is_refused(
    web: Callable[..., WebClient], ready: Callable[..., str]
) -> None:
    sid = ready(HIGH_RISK, ai_act_role="provider")
    audrey = web("audrey")
    page = audrey.get(f"/systems/{sid}/requirements")
    assert page.status == 200 and page.xpath("//tr[@data-requirement='ai_act:art9']")
    assert [a for a in page.form_actions() if a != "/logout"] == []
    assert "Upload evidence" not in page.text()
    refused = audrey.post(
        f"/systems/{sid}/requirements",
        {"requirement": "ai_act:art9", "status": "in_progress", "revision": "1"},
    )
    assert refused.status == 403 and refused.texts("//h1") == ["You cannot do this"]
    refused = _upload(audrey, f"/systems/{sid}/evidence")
    assert refused.status_code == 403
    bob = web("bob")  # the owner may upload evidence, but not record progress
    page = bob.get(f"/systems/{sid}/requirements")
    assert f"/systems/{sid}/evidence" in page.form_actions()
    assert f"/systems/{sid}/requirements" not in page.form_actions()
    assert (
        bob.post(f"/systems/{sid}/requirements", {"requirement": "ai_act:art9", "status": "open"}).status
        == 403
    )
    with session_scope(write=False) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Evidence)).scalar_one() == 0


def test_a_user_of_another_site_gets_404(web: Callable[..., WebClient], ready: Callable[..., str]) -> None:
    sid = ready(HIGH_RISK)
    leo = web("leo")
    assert leo.get(f"/systems/{sid}/requirements").status == 404
    assert (
        leo.post(f"/systems/{sid}/requirements", {"requirement": "ai_act:art26", "status": "open"}).status
        == 404
    )
    assert _upload(leo, f"/systems/{sid}/evidence").status_code == 404
    assert f"/systems/{sid}/requirements" not in leo.get("/compliance").text()


# --- approval page and inbox ---------------------------------------------------------------------------


def test_approval_page_and_inbox_show_what_is_still_open(
    web: Callable[..., WebClient], ready: Callable[..., str], client: TestClient, people: Any
) -> None:
    sid = ready(TRANSPARENCY)  # Art. 50(4) binds today
    bob = web("bob")
    bob.get(f"/systems/{sid}/approvals/new")
    page = bob.post(
        f"/systems/{sid}/approvals/new",
        {"version": "1.0.0", "environment": "production", "justification": "Validated on line data"},
        follow=False,
    )
    assert page.status == 303, page.response.text[:2000]
    aid = page.response.headers["location"].rsplit("/", 1)[-1]
    outstanding = service_outstanding(sid)
    binding = [o for o in outstanding if o.binding]
    assert binding
    clara = web("clara")
    detail = clara.get(f"/approvals/{aid}")
    section = detail.text("//section[@id='open-requirements']")
    assert "Still open before production" in section
    assert f"{len(binding)} requirement" in section and "the release gate refuses production" in section
    for o in binding:
        assert o.ref in section
    later = len(outstanding) - len(binding)
    if later:
        assert f"{later} open that do" in section
    inbox = clara.get("/inbox")
    line = inbox.xpath("//p[@data-open-requirements]")
    assert line, inbox.text()
    text = " ".join(line[0].text_content().split())
    total = len(outstanding)
    assert text.startswith(f"{total} requirement{'' if total == 1 else 's'} open ({len(binding)} binding)")

    # once everything binding is done, the approval page says so
    evidence = client.post(
        f"/api/v1/systems/{sid}/evidence",
        files={"file": ("notice.pdf", PDF, "application/pdf")},
        data={"title": "Disclosure notice"},
        headers=people["clara"],
    ).json()["id"]
    items = _api_requirements(client, people["clara"], sid)
    for o in outstanding:
        r = client.patch(
            f"/api/v1/systems/{sid}/requirements/{o.ref}",
            json={"status": "met", "evidence": [evidence], "revision": items[o.ref]["revision"]},
            headers=people["clara"],
        )
        assert r.status_code == 200, r.text
    detail = clara.get(f"/approvals/{aid}")
    assert f"Every requirement of {sid} is met or not applicable." in detail.text(
        "//section[@id='open-requirements']"
    )
    leo = web("leo")  # no role in STR: no line about it anywhere
    assert leo.get("/inbox").xpath("//p[@data-open-requirements]") == []


def service_outstanding(sid: str) -> list[service.Outstanding]:
    with session_scope(write=False) as session:
        return service.system_outstanding(session, sid)


# --- the portfolio -------------------------------------------------------------------------------------


def _by_python(
    client: TestClient, headers: dict[str, str], system_ids: list[str]
) -> dict[tuple[str, str], Counter[str]]:
    """The portfolio counted from the API, one system at a time (the rules in their Python form)."""
    out: dict[tuple[str, str], Counter[str]] = {}
    for sid in system_ids:
        site = client.get(f"/api/v1/systems/{sid}", headers=headers).json()["site"]
        for item in _api_requirements(client, headers, sid).values():
            if not item["derived"]:
                continue
            if item["status"] in ("met", "not_applicable"):
                kind = item["status"]
            else:
                kind = "overdue" if item["binding"] else "open"
            out.setdefault((site, item["framework"]), Counter())[kind] += 1
    return out


def _by_sql(sites: set[str] | None) -> dict[tuple[str, str], Counter[str]]:
    with session_scope(write=False) as session:
        counts = service.portfolio_counts(session, sites)
    return {
        (c.site, c.framework): Counter(
            {k: getattr(c, k) for k in ("met", "open", "overdue", "not_applicable") if getattr(c, k)}
        )
        for c in counts
    }


def test_portfolio_counts_agree_with_the_per_system_rules(
    ready: Callable[..., str], make_system: Callable[..., dict[str, Any]], client: TestClient, people: Any
) -> None:
    """A mixed portfolio: met with current, expired and crosswalk evidence, not applicable, in progress,
    binding and not yet binding, a system never read (no rows yet), an unclassified one, two sites."""
    clara = people["clara"]
    high = ready(HIGH_RISK, ai_act_role="provider")
    limited = ready(TRANSPARENCY)
    lyon = ready(HIGH_RISK, site="LYO", line="SMT1", zone=None, business_owner="leo")
    unread = ready(TRANSPARENCY)  # classified, its requirements never read: no rows until the portfolio
    make_system(name="Not classified yet")

    def upload(sid: str, title: str) -> str:
        r = client.post(
            f"/api/v1/systems/{sid}/evidence",
            files={"file": ("e.pdf", PDF + title.encode(), "application/pdf")},
            data={"title": title},
            headers=clara,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def patch(sid: str, ref: str, **body: Any) -> None:
        revision = _api_requirements(client, clara, sid)[ref]["revision"]
        r = client.patch(
            f"/api/v1/systems/{sid}/requirements/{ref}", json={**body, "revision": revision}, headers=clara
        )
        assert r.status_code == 200, r.text

    plan, old = upload(high, "Risk plan"), upload(high, "Old test report")
    patch(high, "ai_act:art9", status="met", evidence=[plan])  # and its crosswalk controls may be met too
    crosswalked = [r for r, i in _api_requirements(client, clara, high).items() if i["crosswalk_evidence"]]
    patch(high, crosswalked[0], status="met")
    patch(high, "ai_act:art11", status="met", evidence=[old])
    patch(high, "ai_act:art12", status="not_applicable", note="No logging: no automatic recording here")
    patch(high, "ai_act:art13", status="in_progress")
    with session_scope() as session:  # the old report expired yesterday: art11 reads open again
        session.execute(
            sa.update(Evidence)
            .where(Evidence.id == old)
            .values(valid_until=utcnow().date() - timedelta(days=1))
        )
    notice = upload(limited, "Disclosure notice")
    binding = [r for r, i in _api_requirements(client, clara, limited).items() if i["binding"]]
    patch(limited, binding[0], status="met", evidence=[notice])
    _api_requirements(client, clara, lyon)
    with session_scope(write=False) as session:
        assert (
            session.execute(
                sa.text(f"SELECT count(*) FROM requirement WHERE system_id = '{unread}'")
            ).scalar_one()
            == 0
        )

    by_sql = _by_sql(None)
    with session_scope(write=False) as session:  # the portfolio brought the unread system in step
        assert (
            session.execute(
                sa.text(f"SELECT count(*) FROM requirement WHERE system_id = '{unread}'")
            ).scalar_one()
            > 0
        )
    expected = _by_python(client, clara, [high, limited, lyon, unread])
    assert by_sql == expected
    kinds = Counter()
    for c in expected.values():
        kinds.update(c)
    assert all(kinds[k] for k in ("met", "open", "overdue", "not_applicable")), kinds  # a mixed data set
    assert _by_sql({"LYO"}) == {k: v for k, v in expected.items() if k[0] == "LYO"}
    assert _by_sql(set()) == {}


def test_compliance_page_is_scoped_and_offers_organisation_work(
    web: Callable[..., WebClient], ready: Callable[..., str], client: TestClient, people: Any
) -> None:
    ready(TRANSPARENCY)
    ready(HIGH_RISK, site="LYO", line="SMT1", zone=None, business_owner="leo")
    clara = web("clara")
    page = clara.get("/compliance")
    assert page.status == 200
    assert "/compliance" in page.xpath("//nav[@aria-label='Main']//a/@href")
    assert page.xpath("//table[@data-framework='ai_act']//tr[@data-site='STR']")
    assert page.xpath("//table[@data-framework='ai_act']//tr[@data-site='LYO']")
    overdue = page.xpath("//table[@data-framework='ai_act']//tr[@data-site='STR']/td[@data-count='overdue']")
    assert int(overdue[0].text_content()) >= 1
    assert page.xpath("//tr[@data-requirement='ai_act:art4']")  # AI literacy, the organisation's
    assert "/compliance/organisation/evidence" in page.form_actions()

    # organisation evidence through the form, then AI literacy met
    posted = _upload(clara, "/compliance/organisation/evidence", title="AI literacy training records")
    assert posted.status_code == 303, posted.text[:1000]
    page = clara.get(posted.headers["location"])
    evidence_id = page.xpath("//tr[@data-evidence]/@data-evidence")[0]
    refused = clara.post(
        "/compliance/organisation/requirements",
        {"requirement": "ai_act:art4", "status": "met", "revision": "1"},
    )
    assert refused.status == 409 and "cannot be marked met" in refused.text(
        "//tr[@data-requirement='ai_act:art4']"
    )
    revision = _row(clara.get("/compliance"), "ai_act:art4").xpath(".//input[@name='revision']/@value")[0]
    done = clara.post(
        "/compliance/organisation/requirements",
        [
            ("requirement", "ai_act:art4"),
            ("status", "met"),
            ("evidence", evidence_id),
            ("revision", revision),
        ],
    )
    assert done.status == 200 and _status(done, "ai_act:art4").startswith("Met")
    api = client.get("/api/v1/organisation/requirements", params={"limit": 500}, headers=people["clara"])
    assert next(i for i in api.json()["items"] if i["id"] == "ai_act:art4")["status"] == "met"

    leo = web("leo")  # LYO only: no STR row; no organisation forms for a business owner
    page = leo.get("/compliance")
    assert page.status == 200
    assert page.xpath("//tr[@data-site='LYO']") and not page.xpath("//tr[@data-site='STR']")
    assert [a for a in page.form_actions() if a != "/logout"] == []
    assert (
        leo.post(
            "/compliance/organisation/requirements", {"requirement": "ai_act:art4", "status": "open"}
        ).status
        == 403
    )
    pipe = web("pipe")  # mlops reads requirements too; an anonymous visitor is sent to sign in
    assert pipe.get("/compliance").status == 200
    anonymous = web(None).get("/compliance", follow=False)
    assert anonymous.status == 303 and "/login" in anonymous.response.headers["location"]


# --- in a real browser ---------------------------------------------------------------------------------


@pytest.mark.browser
def test_evidence_upload_mark_met_and_portfolio_in_chromium(
    chromium: Any,  # noqa: F811
    server: str,  # noqa: F811
    demo: dict[str, str],  # noqa: F811
    client: TestClient,
) -> None:
    from playwright.sync_api import expect

    from tests.web.seed import tokens

    headers = tokens("clara.compliance")["clara.compliance"]
    sid = demo["Maintenance assistant chatbot"]
    r = client.post(f"/api/v1/systems/{sid}/classification", json={"answers": TRANSPARENCY}, headers=headers)
    assert r.status_code == 201, r.text
    ref = next(  # a requirement that binds today and is still open
        i["id"]
        for i in _api_requirements(client, headers, sid).values()
        if i["binding"] and i["status"] not in ("met", "not_applicable")
    )
    clara = Person(chromium, server, "clara.compliance")
    clara.goto(f"/systems/{sid}")
    clara.page.locator(".section-nav").get_by_role("link", name="Requirements").click()
    expect(clara.page.get_by_role("heading", level=1)).to_have_text("Maintenance assistant chatbot")
    row = clara.page.locator(f"tr[data-requirement='{ref}']")
    expect(row.locator(".req-status")).to_contain_text("Overdue")
    expect(clara.page.locator("#requirements-overdue")).to_contain_text("REQUIREMENTS_OPEN")

    # met without evidence: refused, in a sentence next to the form
    row.get_by_text("Record progress").click()
    row.get_by_label("Status").select_option("met")
    row.get_by_role("button", name="Save").click()
    row = clara.page.locator(f"tr[data-requirement='{ref}']")
    expect(row.get_by_role("alert")).to_contain_text(f"Requirement {ref} cannot be marked met")
    expect(row.locator(".req-status")).to_contain_text("Open")

    # upload evidence through the form
    clara.page.locator("#evidence summary").click()
    clara.page.get_by_label("File").set_input_files(
        files=[{"name": "chatbot-notice.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    clara.page.get_by_role("textbox", name="Title").fill("Chatbot disclosure notice")
    clara.page.get_by_label("Valid until").fill((date.today() + timedelta(days=365)).isoformat())
    clara.page.get_by_role("button", name="Upload evidence").click()
    expect(clara.page.get_by_role("status")).to_contain_text("“Chatbot disclosure notice” is uploaded")
    evidence = clara.page.locator("tr[data-evidence]").first
    expect(evidence).to_contain_text("Chatbot disclosure notice")
    expect(evidence).to_contain_text("PDF document")
    with clara.page.expect_download() as download_info:
        evidence.get_by_role("link", name="Download").click()
    assert download_info.value.path().read_bytes() == PDF

    # link it and mark the requirement met: the badge changes
    row = clara.page.locator(f"tr[data-requirement='{ref}']")
    row.get_by_text("Record progress").click()
    row.get_by_label("Status").select_option("met")
    row.get_by_label("Chatbot disclosure notice").check()
    row.get_by_role("button", name="Save").click()
    expect(clara.page.get_by_role("status")).to_contain_text(f"{ref} is now recorded as met")
    row = clara.page.locator(f"tr[data-requirement='{ref}']")
    expect(row.locator(".req-badge")).to_have_text("Met")
    expect(row.locator(".req-status")).not_to_contain_text("Overdue")

    # the portfolio page shows what the API says, site by site
    clara.page.get_by_role("link", name="Compliance", exact=True).click()
    expect(clara.page.get_by_role("heading", level=1)).to_have_text("Compliance")
    shown: dict[tuple[str, str], Counter[str]] = {}
    for table in clara.page.locator("table.portfolio-table").all():
        framework = table.get_attribute("data-framework")
        for tr in table.locator("tbody tr").all():
            site = tr.get_attribute("data-site")
            counts = Counter()
            for kind in ("met", "open", "overdue", "not_applicable"):
                n = int(tr.locator(f"td[data-count='{kind}']").inner_text())
                if n:
                    counts[kind] = n
            shown[(str(site), str(framework))] = counts
    listed = client.get("/api/v1/systems", params={"limit": 500}, headers=headers).json()["items"]
    expected = _by_python(client, headers, [s["id"] for s in listed])
    assert shown == {k: v for k, v in expected.items() if sum(v.values())}
    assert shown[("STR", "ai_act")]["met"] >= 1

    # an auditor sees the same tab without a single form
    audrey = Person(chromium, server, "audrey.auditor")
    audrey.goto(f"/systems/{sid}/requirements")
    expect(audrey.page.locator(f"tr[data-requirement='{ref}'] .req-badge")).to_have_text("Met")
    expect(audrey.page.get_by_text("Record progress")).to_have_count(0)
    expect(audrey.page.get_by_text("Upload evidence")).to_have_count(0)
    audrey.close()

    # nothing runs off the screen, at desktop or phone width
    for width in (1280, 390):
        viewer = clara if width == 1280 else Person(chromium, server, "clara.compliance", width=width)
        for name, path in (("compliance", "/compliance"), ("requirements", f"/systems/{sid}/requirements")):
            viewer.goto(path)
            overflow = viewer.page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, f"{path} is {overflow} px wide at {width} px"
            _screenshot(viewer, f"{name}-{width}")
        if viewer is not clara:
            viewer.close()
    clara.close()


def test_the_portfolio_tally_follows_every_change(
    ready: Callable[..., str], client: TestClient, people: Any
) -> None:
    """Counted once, the tallies are counted again exactly when what they rest on changes: a requirement
    recorded, evidence that expires (a date passing, nothing written), a new classification."""
    from app.db import set_clock_offset

    clara = people["clara"]
    sid = ready(TRANSPARENCY)
    assert _by_sql(None) == _by_python(client, clara, [sid])
    with session_scope(write=False) as session:
        assert service.stale_tallies(session, None, utcnow().date()) == []  # nothing to count again

    r = client.post(
        f"/api/v1/systems/{sid}/evidence",
        files={"file": ("notice.pdf", PDF, "application/pdf")},
        data={"title": "Notice", "valid_until": (date.today() + timedelta(days=3)).isoformat()},
        headers=clara,
    )
    evidence = r.json()["id"]
    ref = next(r for r, i in _api_requirements(client, clara, sid).items() if i["binding"])
    revision = _api_requirements(client, clara, sid)[ref]["revision"]
    r = client.patch(
        f"/api/v1/systems/{sid}/requirements/{ref}",
        json={"status": "met", "evidence": [evidence], "revision": revision},
        headers=clara,
    )
    assert r.status_code == 200, r.text
    met = _by_sql(None)
    assert met == _by_python(client, clara, [sid]) and sum(c["met"] for c in met.values()) == 1

    try:  # the evidence expires: the tally's last day has passed, so it is counted again
        set_clock_offset(timedelta(days=5))
        expired = _by_sql(None)
        assert sum(c["met"] for c in expired.values()) == 0
        assert expired == _by_python(client, clara, [sid])
    finally:
        set_clock_offset(None)

    r = client.post(f"/api/v1/systems/{sid}/classification", json={"answers": HIGH_RISK}, headers=clara)
    assert r.status_code == 201, r.text
    assert _by_sql(None) == _by_python(client, clara, [sid])  # the new classification's requirements
