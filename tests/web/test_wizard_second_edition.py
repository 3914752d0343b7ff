"""The classification wizard, second edition: the new questions (Art. 2, 5(1)(h), 6(3) per use, 25, GPAI, the
date), no verdict and no Save before the questions are seen, and a result panel that shows every duty."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.classification.catalog import cite
from tests.web.helpers import WebClient

STATIC = Path(__file__).resolve().parents[2] / "app" / "web" / "static"


def _save_buttons(page: Any) -> list[Any]:
    return page.xpath("//form[@id='wizard-form']//button[@data-save-button]")


def test_a_fresh_wizard_gives_no_verdict_and_no_save(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    sid = make_system(ai_act_role="provider")["id"]
    page = web("clara").get(f"/systems/{sid}/classify")
    assert page.texts("//*[@id='result-class']") == ["Not yet answered"]
    assert "Minimal risk" not in page.text("//aside")
    [save] = _save_buttons(page)
    assert save.get("disabled") is not None and save.get("aria-describedby") == "save-hint"
    assert "every question has been seen" in page.text("//*[@id='save-hint']")
    # the no-JavaScript path: all questions on one page, Preview first, then Save is on
    done = web("clara").post(f"/systems/{sid}/classify/preview", [])
    assert done.texts("//*[@id='result-class']") == ["Minimal risk"]
    [save] = _save_buttons(done)
    assert save.get("disabled") is None


def test_the_script_keeps_save_off_until_every_step_is_seen() -> None:
    script = (STATIC / "wizard.js").read_text(encoding="utf-8")
    assert "save.disabled = left.length > 0" in script
    assert '"Not yet answered"' in script and "not yet seen" in script
    # no preview request (and so no "Minimal risk") on a page with nothing answered
    assert "if (hasAnswers() || form.elements.as_of.value) { preview(); }" in script


def test_the_result_panel_never_cuts_off_a_long_obligation_list(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]], client: TestClient, people: Any
) -> None:
    sid = make_system(ai_act_role="deployer")["id"]
    form = [
        ("annex1_legislation", "annex1.a.11"),
        ("annex1_safety_component", "on"),
        ("annex1_third_party", "on"),
        ("annex3_uses", "annex3.1.a"),
        ("annex3_uses", "annex3.4.a"),
        ("annex3_uses", "annex3.5.b"),
        ("transparency", "art50.3"),
        ("transparency", "art50.4"),
        ("role_change", "art25.1.b"),
        ("gpai_model", "on"),
    ]
    page = web("clara").post(f"/systems/{sid}/classify/preview", form)
    assert page.status == 200, page.text()
    body = {
        "answers": {
            "annex1": {
                "legislation": "annex1.a.11",
                "safety_component": True,
                "third_party_conformity_assessment": True,
            },
            "annex3_uses": ["annex3.1.a", "annex3.4.a", "annex3.5.b"],
            "transparency": ["art50.3", "art50.4"],
            "role_change": ["art25.1.b"],
            "gpai_model": True,
        },
        "ai_act_role": "deployer",
    }
    api = client.post("/api/v1/classify", json=body, headers=people["clara"]).json()
    assert len(api["obligations"]) >= 25
    items = page.xpath("//ul[@id='result-obligations']/li")
    assert len(items) == len(api["obligations"])  # every duty is on the page, the last one included
    assert page.texts("//ul[@id='result-obligations']/li/strong")[-1] == cite(api["obligations"][-1]["id"])
    # and the stylesheet gives the panel no height limit and no inner scroll that would clip the list
    css = (STATIC / "app.css").read_text(encoding="utf-8")
    rules = re.findall(r"\.result-panel\s*\{([^}]*)\}", css)
    assert rules and not any(
        re.search(r"max-height|overflow(-y)?\s*:\s*(auto|hidden|scroll)", r) for r in rules
    )


def test_scope_exclusions_and_the_date(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    sid = make_system(ai_act_role="provider")["id"]
    officer = web("clara")
    officer.get(f"/systems/{sid}/classify")
    # Art. 2(6): research only -> out of scope, nothing to do
    page = officer.post(
        f"/systems/{sid}/classify/preview", [("scope_exclusions", "art2.6"), ("annex3_uses", "annex3.4.a")]
    )
    assert page.texts("//*[@id='result-class']") == ["Out of scope"]
    assert "Art. 2(6)" in page.text("//*[@id='result-basis']")
    assert page.texts("//ul[@id='result-obligations']/li") == ["None listed for this role."]
    # Art. 2(12) never covers a prohibited practice: the claim is refused and explained
    page = officer.post(
        f"/systems/{sid}/classify/preview",
        [("scope_exclusions", "art2.12"), ("prohibited_practices", "art5.1.e")],
    )
    assert page.texts("//*[@id='result-class']") == ["Prohibited"]
    assert "Art. 2(12) was claimed, but it never covers a prohibited practice" in page.text(
        "//*[@id='result-rationale']"
    )
    # as of 1 Dec 2026 Art. 5(1)(bb) does not apply yet: listed as coming later, with the class it brings
    page = officer.post(
        f"/systems/{sid}/classify/preview", [("prohibited_practices", "art5.1.bb"), ("as_of", "2026-12-01")]
    )
    assert page.texts("//*[@id='result-class']") == ["Minimal risk"]
    assert "From 2026-12-02 the class will be Prohibited" in page.text("//*[@id='result-next-change']")
    assert "Art. 5(1)(bb)" in page.text("//*[@id='result-upcoming']")
    assert page.xpath("//input[@name='as_of']/@value") == ["2026-12-01"]
    bad = officer.post(f"/systems/{sid}/classify/preview", [("as_of", "2026-02-30")])
    assert bad.status == 422 and "As of: enter a date like 2027-01-31." in bad.text(
        "//*[@id='wizard-errors']"
    )


def test_role_change_and_biometric_identification_by_role(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]], client: TestClient, people: Any
) -> None:
    sid = make_system(ai_act_role="deployer")["id"]
    officer = web("clara")
    officer.get(f"/systems/{sid}/classify")
    page = officer.post(
        f"/systems/{sid}/classify/preview", [("annex3_uses", "annex3.4.a"), ("role_change", "art25.1.a")]
    )
    assert page.texts("//*[@id='result-class']") == ["High risk"]
    assert "As provider (our role: deployer, Art. 25)" in page.text("//*[@id='result-role']")
    assert "Art. 16" in page.text("//*[@id='result-obligations']")
    assert page.xpath("//input[@name='role_change' and @value='art25.1.a']/@checked")
    # Art. 5(1)(h) bans the deployer's use unless an exception applies; then Art. 5(2)-(4) bind at once
    banned = officer.post(f"/systems/{sid}/classify/preview", [("prohibited_practices", "art5.1.h")])
    assert banned.texts("//*[@id='result-class']") == ["Prohibited"]
    excepted = officer.post(
        f"/systems/{sid}/classify/preview",
        [("prohibited_practices", "art5.1.h"), ("art5_1_h_exception", "art5.1.h.ii")],
    )
    assert excepted.texts("//*[@id='result-class']") == ["High risk"]
    assert "Art. 5(3)" in excepted.text("//*[@id='result-obligations']")
    assert excepted.xpath("//option[@value='art5.1.h.ii']/@selected")
    saved = officer.post(
        f"/systems/{sid}/classify",
        [("annex3_uses", "annex3.4.a"), ("role_change", "art25.1.a")],
        follow=False,
    )
    assert saved.status == 303
    stored = client.get(f"/api/v1/systems/{sid}/classification", headers=people["clara"]).json()
    assert (stored["ai_act_role"], stored["effective_role"]) == ("deployer", "provider")
    detail = officer.get(f"/systems/{sid}")
    assert "acting as provider (Art. 25)" in detail.text("//section[@id='classification']")


def test_art6_3_is_answered_per_use_and_stored_per_use(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]], client: TestClient, people: Any
) -> None:
    sid = make_system(ai_act_role="provider")["id"]
    officer = web("clara")
    officer.get(f"/systems/{sid}/classify")
    form = [
        ("annex3_uses", "annex3.4.a"),
        ("annex3_uses", "annex3.4.b"),
        ("art6_3.annex3.4.a", "art6.3.a"),
        ("art6_3.annex3.2", "art6.3.b"),  # a use not ticked: ignored
    ]
    page = officer.post(f"/systems/{sid}/classify/preview", form)
    assert page.texts("//*[@id='result-class']") == ["High risk"]
    basis = page.text("//*[@id='result-basis']")
    assert "Annex III point 4(b)" in basis and "Annex III point 4(a)" not in basis
    assert "Art. 6(4)" in page.text("//*[@id='result-obligations']")
    # the groups of the ticked uses show; the others stay hidden
    shown = page.xpath("//div[@class='derogation' and not(@hidden)]/@data-use")
    assert shown == ["annex3.4.a", "annex3.4.b"]
    assert page.xpath("//input[@name='art6_3.annex3.4.a' and @value='art6.3.a']/@checked")
    assert not page.xpath("//input[@name='art6_3.annex3.4.b' and @value='art6.3.a']/@checked")
    assert officer.post(f"/systems/{sid}/classify", form, follow=False).status == 303
    stored = client.get(f"/api/v1/systems/{sid}/classification", headers=people["clara"]).json()
    assert stored["answers"]["art6_3_conditions"] == {"annex3.4.a": ["art6.3.a"]}
    again = officer.get(f"/systems/{sid}/classify")
    assert again.xpath("//input[@name='art6_3.annex3.4.a' and @value='art6.3.a']/@checked")


def test_gpai_questions(web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]) -> None:
    sid = make_system(ai_act_role="provider")["id"]
    officer = web("clara")
    officer.get(f"/systems/{sid}/classify")
    page = officer.post(
        f"/systems/{sid}/classify/preview", [("gpai_model", "on"), ("gpai_training_flops", "3e25")]
    )
    assert page.status == 200
    duties = page.text("//*[@id='result-gpai']")
    assert "Art. 55" in duties and "Art. 52" in duties
    assert "Art. 51(2)" in page.text("//*[@id='result-basis']")
    assert page.xpath("//input[@name='gpai_training_flops']/@value") == ["3e+25"]
    legacy = officer.post(
        f"/systems/{sid}/classify/preview",
        [("gpai_model", "on"), ("gpai_open_source", "on"), ("gpai_placed_before_2025_08_02", "on")],
    )
    gpai = legacy.text("//*[@id='result-gpai']")
    assert "Art. 53(1)(c)" in gpai and "Art. 53(1)(a)" not in gpai and "from 2027-08-02" in gpai
    bad = officer.post(
        f"/systems/{sid}/classify/preview", [("gpai_model", "on"), ("gpai_training_flops", "lots")]
    )
    assert bad.status == 422 and "valid number" in bad.text("//*[@id='wizard-errors']")
    assert bad.xpath("//input[@name='gpai_training_flops']/@value") == ["lots"]  # kept as typed
