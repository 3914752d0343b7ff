"""The classification wizard: questions from the catalogue, a preview without JavaScript, saving."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi.testclient import TestClient

from tests.web.helpers import WebClient


def test_every_question_names_its_article_and_offers_the_catalogue_entries(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    from app.classification.catalog import cite, get_catalog

    ai = get_catalog().ai_act
    sid = make_system()["id"]
    page = web("clara").get(f"/systems/{sid}/classify")
    assert page.status == 200
    steps = page.xpath("//fieldset[@data-step]")
    assert len(steps) == 8
    articles = page.texts("//fieldset[@data-step]/span[@class='step__article']")
    expected = ["Art. 2", "Art. 5(1)", "Art. 6(1)", "Art. 6(2)", "Art. 6(3)", "Art. 50", "Art. 25", "Art. 51"]
    assert all(a.startswith(f"AI Act {e}") for a, e in zip(articles, expected, strict=True)), articles
    assert page.xpath("//input[@name='scope_exclusions']/@value") == [x.id for x in ai.scope_exclusions]
    assert page.xpath("//input[@name='prohibited_practices']/@value") == [
        p.id for p in ai.prohibited_practices
    ]
    assert page.xpath("//select[@name='art5_1_h_exception']//option/@value")[1:] == list(ai.exception_by_id)
    assert page.xpath("//input[@name='annex3_uses']/@value") == [u.id for u in ai.annex3_uses]
    assert page.xpath("//select[@name='annex1_legislation']//option/@value")[1:] == [
        a.id for a in ai.annex1_legislation
    ]
    # Art. 6(3) is asked per Annex III use: one group of conditions for each use
    for use in ai.annex3_uses:
        assert page.xpath(f"//input[@name='art6_3.{use.id}']/@value") == [c.id for c in ai.art6_3_conditions]
    assert page.xpath("//input[@name='transparency']/@value") == [t.id for t in ai.transparency_duties]
    assert page.xpath("//input[@name='role_change']/@value") == list(ai.answerable_role_change_by_id)
    for name in ("gpai_training_flops", "gpai_open_source", "gpai_placed_before_2025_08_02", "as_of"):
        assert page.xpath(f"//input[@name='{name}']"), name
    # every new question names its article beside it
    g = page.texts("//input[@value='art5.1.g']/ancestor::label")[0]
    assert "sexual orientation" in g and "lawfully acquired biometric datasets" in g
    assert "Art. 2(12)" in page.text("//fieldset[@id='step-1']")
    assert "Art. 25(1)(b)" in page.text("//fieldset[@id='step-7']")
    first = ai.annex3_uses[0]
    label = page.texts(f"//input[@value='{first.id}']/ancestor::label")[0]
    assert first.title in label and cite(first.id) in label
    assert page.xpath("//script[@src='/static/wizard.js']") and not page.xpath("//script[not(@src)]")


def test_preview_without_javascript_shows_the_result_and_stores_nothing(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]], client: TestClient, people: Any
) -> None:
    sid = make_system(ai_act_role="provider")["id"]
    browser = web("bob")
    page = browser.get(f"/systems/{sid}/classify")
    assert (
        page.xpath("//form[@id='wizard-form']//button[@type='submit' and not(@formaction)]") == []
    )  # no save
    preview_action = page.xpath("//button[@data-preview-button]/@formaction")[0]
    result = browser.post(preview_action, [("annex3_uses", "annex3.4.b"), ("transparency", "art50.1")])
    assert result.status == 200
    assert result.texts("//*[@id='result-class']") == ["High risk"]
    basis = result.text("//*[@id='result-basis']")
    assert "Annex III point 4(b)" in basis and "Art. 6(2)" in basis
    assert "Art. 9" in result.text("//*[@id='result-obligations']")
    assert result.xpath("//input[@value='annex3.4.b']/@checked") and result.xpath(
        "//input[@value='art50.1']/@checked"
    )
    share = result.xpath("//a[@id='share-link']/@href")[0]
    assert sorted(parse_qsl(urlsplit(share).query)) == [
        ("annex3_uses", "annex3.4.b"),
        ("transparency", "art50.1"),
    ]
    assert client.get(f"/api/v1/systems/{sid}", headers=people["clara"]).json()["ai_act_class"] is None
    assert browser.post(f"/systems/{sid}/classify", [("transparency", "art50.1")]).status == 403


def test_a_shared_link_opens_the_answers_and_the_compliance_officer_saves_them(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]], client: TestClient, people: Any
) -> None:
    sid = make_system(ai_act_role="provider")["id"]
    officer = web("clara")
    page = officer.get(f"/systems/{sid}/classify?annex3_uses=annex3.4.b&art6_3_conditions=art6.3.a")
    assert page.texts("//*[@id='result-class']") == ["Minimal risk"]  # derogated: a narrow procedural task
    assert page.xpath("//input[@value='art6.3.a']/@checked")
    saved = officer.post(
        f"/systems/{sid}/classify",
        [("annex3_uses", "annex3.4.b"), ("art6_3_conditions", "art6.3.a")],
        follow=False,
    )
    assert saved.status == 303 and saved.response.headers["location"] == f"/systems/{sid}#classification"
    stored = client.get(f"/api/v1/systems/{sid}/classification", headers=people["clara"]).json()
    assert stored["ai_act_class"] == "minimal_risk" and stored["assessor"] == "clara"
    assert stored["answers"] == {"annex3_uses": ["annex3.4.b"], "art6_3_conditions": ["art6.3.a"]}
    detail = officer.get(f"/systems/{sid}")
    assert "Classification saved" in detail.text("//*[@role='status']")
    # the wizard reopens with the stored answers
    again = officer.get(f"/systems/{sid}/classify")
    assert (
        again.xpath("//input[@value='art6.3.a']/@checked")
        and "Currently classified as Minimal risk" in again.text()
    )


def test_answers_that_do_not_fit_together_are_explained(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]], client: TestClient, people: Any
) -> None:
    sid = make_system()["id"]
    officer = web("clara")
    officer.get(f"/systems/{sid}/classify")
    page = officer.post(
        f"/systems/{sid}/classify", [("art6_3_conditions", "art6.3.a"), ("gpai_systemic_risk", "on")]
    )
    assert page.status == 422
    messages = page.text("//*[@id='wizard-errors']")
    assert "Art. 6(3) conditions only apply to an Annex III use" in messages
    assert "Systemic risk needs gpai_model to be true." in messages  # the API's words, as a sentence
    assert page.xpath("//input[@name='gpai_systemic_risk']/@checked")  # nothing the user ticked is lost
    unknown = officer.post(f"/systems/{sid}/classify/preview", [("annex3_uses", "annex3.99")])
    assert unknown.status == 422 and "Unknown identifier 'annex3.99'" in unknown.text()
    assert (
        client.get(f"/api/v1/systems/{sid}/classification/history", headers=people["clara"]).json()["total"]
        == 0
    )


def test_annex1_product_route(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    sid = make_system(ai_act_role="provider")["id"]
    officer = web("clara")
    officer.get(f"/systems/{sid}/classify")
    page = officer.post(
        f"/systems/{sid}/classify/preview",
        {"annex1_legislation": "annex1.b.21", "annex1_safety_component": "on", "annex1_third_party": "on"},
    )
    assert page.texts("//*[@id='result-class']") == ["High risk"]
    assert "Annex I Section B point 21" in page.text("//*[@id='result-basis']")
    assert page.xpath("//option[@value='annex1.b.21']/@selected")
