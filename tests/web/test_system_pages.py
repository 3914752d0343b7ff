"""Registering a system, the system page, model versions, and what each role is (not) offered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.web.helpers import DIGEST, WebClient

REGISTER = {
    "name": "Press predictive maintenance",
    "purpose": "Predicts bearing failures of the transfer press",
    "site": "STR",
    "line": "ASM2",
    "business_owner": "bob",
    "ai_act_role": "provider",
    "lifecycle_stage": "pilot",
    "zone": "STR-CTL",
    "sl_FR1": "3",
    "sl_FR3": "2",
}


def _audit_actions(client: TestClient, headers: dict[str, str], entity_id: str) -> list[str]:
    r = client.get("/api/v1/audit-events", params={"entity_id": entity_id, "limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["items"]]


def test_business_owner_registers_a_system_through_the_form(
    web: Callable[..., WebClient], client: TestClient, people: dict[str, Any]
) -> None:
    browser = web("bob")
    form = browser.get("/systems/new")
    assert form.status == 200
    for name in ("name", "purpose", "site", "line", "zone", "sl_FR1"):
        field_id = form.xpath(f"//*[@name='{name}']/@id")[0]
        assert form.xpath(f"//label[@for='{field_id}']") or form.xpath(
            f"//*[@id='{field_id}']/@aria-label"
        ), name
    assert form.xpath("//select[@name='site']/option/@value") == ["STR"]  # the only site bob may register in
    assert form.xpath("//input[@name='business_owner']/@value") == ["bob"]
    assert form.xpath("//input[@name='business_owner']/@type") == ["hidden"]  # owners register their own
    page = browser.post("/systems/new", {**REGISTER, "personal_data": "on"}, follow=False)
    assert page.status == 303
    location = page.response.headers["location"]
    system_id = location.rsplit("/", 1)[-1]
    detail = browser.get(location)
    assert detail.texts("//h1") == ["Press predictive maintenance"]
    assert f"{system_id} “Press predictive maintenance” is registered" in detail.text("//*[@role='status']")
    stored = client.get(f"/api/v1/systems/{system_id}", headers=people["clara"]).json()
    # a level left empty in the form is not assessed (null), never SL 0
    assert stored["sl_achieved"] == {
        "FR1": 3,
        "FR2": None,
        "FR3": 2,
        "FR4": None,
        "FR5": None,
        "FR6": None,
        "FR7": None,
    }
    assert stored["personal_data"] is True and stored["ai_act_role"] == "provider"
    assert stored["sl_gap"] == ["FR3"]
    assert stored["sl_unassessed"] == ["FR2", "FR4", "FR5", "FR6", "FR7"]
    assert "system.create" in _audit_actions(client, people["clara"], system_id)


def test_register_form_errors_are_shown_next_to_the_fields_and_values_kept(
    web: Callable[..., WebClient], client: TestClient, people: dict[str, Any]
) -> None:
    browser = web("clara")  # a compliance officer may name any owner
    browser.get("/systems/new")
    bad = {**REGISTER, "name": "", "line": "SMT1", "zone": "LYO-CTL", "business_owner": "ghost"}
    page = browser.post("/systems/new", bad)
    assert page.status == 422
    assert page.texts("//*[@id='name-error']") == ["Name is required."]
    page2 = browser.post("/systems/new", {**bad, "name": "Kept name"})
    assert page2.status == 422
    errors = " ".join(page2.texts("//p[@class='error-text']"))
    assert "Site STR has no line 'SMT1'." in errors
    assert "Unknown user 'ghost'." in errors
    assert "Zone 'LYO-CTL' belongs to site LYO." in errors
    assert page2.xpath("//input[@name='name']/@value") == ["Kept name"]
    assert page2.xpath("//input[@name='name']/@aria-invalid") == []
    assert page2.xpath("//select[@name='line']/@aria-invalid") == ["true"]
    assert client.get("/api/v1/systems", headers=people["clara"]).json()["total"] == 0


def test_an_owner_cannot_register_a_system_for_someone_else(
    web: Callable[..., WebClient], client: TestClient, people: Any
) -> None:
    browser = web("bob")
    browser.get("/systems/new")
    page = browser.post("/systems/new", {**REGISTER, "business_owner": "berta"})
    assert page.status == 403 and page.texts("//h1") == ["You cannot do this"]
    assert client.get("/api/v1/systems", headers=people["clara"]).json()["total"] == 0


def test_registering_in_a_site_without_a_role_is_refused(
    web: Callable[..., WebClient], client: TestClient, people: Any
) -> None:
    browser = web("bob")
    browser.get("/systems/new")
    page = browser.post("/systems/new", {**REGISTER, "site": "LYO", "line": "", "zone": ""})
    assert page.status == 422
    assert "Choose one of the sites you may register systems in." in page.text()
    assert client.get("/api/v1/systems", headers=people["clara"]).json()["total"] == 0


def test_auditor_is_offered_no_registration_and_cannot_reach_it_by_url(
    web: Callable[..., WebClient], client: TestClient, people: dict[str, Any]
) -> None:
    browser = web("audrey")
    inventory = browser.get("/systems")
    assert "/systems/new" not in inventory.links()
    page = browser.get("/systems/new")
    assert page.status == 403
    assert page.texts("//h1") == ["You cannot do this"]
    posted = browser.post("/systems/new", REGISTER)
    assert posted.status == 403
    denied = [
        e
        for e in client.get(
            "/api/v1/audit-events", params={"actor": "audrey"}, headers=people["clara"]
        ).json()["items"]
    ]
    assert {e["action"] for e in denied} == {"session.sign_in", "access.denied"}


def test_system_page_shows_everything_known(
    web: Callable[..., WebClient],
    make_system: Callable[..., dict[str, Any]],
    client: TestClient,
    people: dict[str, Any],
) -> None:
    system = make_system(
        zone="STR-CTL", sl_achieved={"FR1": 3, "FR2": 3, "FR3": 1, "FR4": 3, "FR5": 3, "FR6": 3, "FR7": 3}
    )
    sid = system["id"]
    r = client.post(
        f"/api/v1/systems/{sid}/versions",
        json={"version": "1.2.0", "artifact_digest": DIGEST, "metrics": {"recall": 0.97}},
        headers=people["clara"],
    )
    assert r.status_code == 201, r.text
    for answers in ({"transparency": ["art50.1"]}, {"annex3_uses": ["annex3.4.b"]}):
        r = client.post(
            f"/api/v1/systems/{sid}/classification", json={"answers": answers}, headers=people["clara"]
        )
        assert r.status_code == 201, r.text
    r = client.post(
        f"/api/v1/systems/{sid}/risk-assessment",
        json={
            "impact": 4,
            "likelihood": 3,
            "risks": [
                {"title": "Missed defects", "nist_refs": ["MEASURE 2.5"], "mitigation": "Second camera"}
            ],
        },
        headers=people["rita"],
    )
    assert r.status_code == 201, r.text
    page = web("audrey").get(f"/systems/{sid}")
    assert page.status == 200
    assert page.texts("//h1") == ["Weld seam inspection"]
    badges = page.texts("//div[@class='badges']/span")
    assert "High risk" in badges and "High risk tier" in badges and "SL gap in FR3" in badges
    # classification history with rationale, newest first
    classification = page.text("//section[@id='classification']")
    assert "Annex III point 4(b)" in classification and "Art. 6(2)" in classification
    assert page.texts("//section[@id='classification']//details/summary/span[contains(@class,'badge')]") == [
        "Limited risk"
    ]
    assert page.texts("//section[@id='classification']//p[@class='rationale']")[0].startswith("Art. 6(2)")
    # risk assessment
    assert "Missed defects" in page.text("//section[@id='risk']") and "MEASURE 2.5" in page.text(
        "//section[@id='risk']"
    )
    # versions
    assert page.texts("//section[@id='versions']//tbody/tr/td[1]/strong") == ["1.2.0"]
    # the SL chart: seven FR groups, the gap marked on FR3 only
    svg = page.xpath("//section[@id='security']//svg[@role='img']")[0]
    assert len(svg.xpath(".//rect[contains(@class,'sl-achieved')]")) == 7
    assert len(svg.xpath(".//rect[contains(@class,'sl-achieved--gap')]")) == 1
    assert "FR3: target SL 3, achieved SL 1 (gap)" in svg.xpath("string(.//desc)")
    # documents: every API endpoint, technical documentation because it is high-risk
    hrefs = page.xpath("//section[@id='documents']//a/@href")
    assert f"/api/v1/systems/{sid}/documents/audit-pack" in hrefs
    assert f"/api/v1/systems/{sid}/documents/technical-documentation?format=docx" in hrefs
    assert f"/api/v1/systems/{sid}/documents/model-card?format=md" in hrefs
    # an auditor changes nothing: no action is offered
    assert page.form_actions() == ["/logout"]
    assert f"/systems/{sid}/approvals/new" not in page.links()
    assert not page.xpath("//a[contains(., 'Classify')]")


def test_actions_follow_the_roles(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    sid = make_system()["id"]
    owner = web("bob").get(f"/systems/{sid}")
    assert f"/systems/{sid}/approvals/new" in owner.links()
    assert f"/systems/{sid}/versions" in owner.form_actions()  # version create_own
    assert owner.xpath("//a[normalize-space()='Try the classification questions']")  # may preview, not save
    other_owner = web("berta").get(f"/systems/{sid}")  # business owner of STR, but not of this system
    assert f"/systems/{sid}/approvals/new" not in other_owner.links()
    assert f"/systems/{sid}/versions" not in other_owner.form_actions()
    officer = web("clara").get(f"/systems/{sid}")
    assert officer.xpath("//a[normalize-space()='Classify under the AI Act']/@href") == [
        f"/systems/{sid}/classify"
    ]
    assert f"/systems/{sid}/approvals/new" not in officer.links()  # compliance signs, the owner requests
    assert officer.xpath("//section[@id='documents']")
    pipeline = web("pipe").get(f"/systems/{sid}")
    assert pipeline.status == 200
    assert not pipeline.xpath("//section[@id='classification']") and not pipeline.xpath(
        "//section[@id='documents']"
    )


def test_a_system_in_a_site_without_a_role_is_not_found(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    sid = make_system()["id"]
    browser = web("leo")
    for path in (f"/systems/{sid}", f"/systems/{sid}/classify", f"/systems/{sid}/approvals/new"):
        page = browser.get(path)
        assert page.status == 404, path
        assert page.texts("//h1") == ["Page not found"]
        assert "Weld seam" not in page.response.text
    api = browser.client.get(f"/api/v1/systems/{sid}/documents/audit-pack")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/problem+json")


def test_owner_registers_a_version_and_errors_stay_on_the_page(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]], client: TestClient, people: Any
) -> None:
    sid = make_system()["id"]
    browser = web("bob")
    browser.get(f"/systems/{sid}")
    page = browser.post(
        f"/systems/{sid}/versions",
        {"version": "2.0.0", "artifact_digest": DIGEST.upper().replace("SHA256", "sha256"), "notes": "first"},
    )
    assert page.status == 200 and page.response.url.path == f"/systems/{sid}"
    assert page.texts("//section[@id='versions']//tbody/tr/td[1]/strong") == ["2.0.0"]
    again = browser.post(f"/systems/{sid}/versions", {"version": "2.0.0", "artifact_digest": DIGEST})
    assert again.status == 422
    assert "already has version '2.0.0'" in again.text("//section[@id='versions']")
    assert again.xpath("//section[@id='versions']//details[@open]")
    bad = browser.post(f"/systems/{sid}/versions", {"version": "2.1.0", "artifact_digest": "md5:abc"})
    assert bad.status == 422 and bad.xpath("//*[@id='artifact_digest-error']")
    assert client.get(f"/api/v1/systems/{sid}/versions", headers=people["clara"]).json()["total"] == 1
    assert (
        web("berta").post(f"/systems/{sid}/versions", {"version": "9.9.9", "artifact_digest": DIGEST}).status
        == 403
    )


def test_unknown_pages_and_api_paths_answer_in_their_own_format(web: Callable[..., WebClient]) -> None:
    browser = web("bob")
    page = browser.get("/no-such-page")
    assert page.status == 404 and page.response.headers["content-type"].startswith("text/html")
    assert page.texts("//h1") == ["Page not found"]
    api = browser.client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/problem+json")
    anonymous = web().client.get("/api/v1/systems")
    assert anonymous.status_code == 401 and anonymous.headers["content-type"].startswith(
        "application/problem+json"
    )
    method = browser.client.delete("/systems")
    assert method.status_code == 405 and method.headers["content-type"].startswith("text/html")


def test_a_crash_on_a_page_is_a_friendly_html_500(
    web: Callable[..., WebClient], people: Any, monkeypatch: Any
) -> None:
    from app.web import portfolio

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    browser = web("clara")
    monkeypatch.setattr(portfolio, "breakdown", boom)
    page = browser.get("/dashboard")
    assert page.status == 500
    assert page.response.headers["content-type"].startswith("text/html")
    assert page.texts("//h1") == ["Something went wrong on our side"]
    assert "secret internals" not in page.response.text and "Traceback" not in page.response.text
