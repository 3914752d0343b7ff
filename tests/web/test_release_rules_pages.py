"""The pages follow the release rules: no high-risk request without a risk assessment, and an unassessed
security level shown as "not assessed", never as SL 0."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.web.helpers import DIGEST, WebClient

FRS = [f"FR{i}" for i in range(1, 8)]
RISK = {
    "impact": 4,
    "likelihood": 3,
    "risks": [{"title": "Biased ranking", "nist_refs": ["MEASURE 2.11"], "mitigation": "fairness review"}],
}


def test_the_request_form_refuses_a_high_risk_system_without_risk_assessment(
    web: Callable[..., WebClient],
    make_system: Callable[..., dict[str, Any]],
    client: TestClient,
    people: dict[str, dict[str, str]],
) -> None:
    sid = make_system()["id"]
    for path, body in (
        (f"/api/v1/systems/{sid}/classification", {"answers": {"annex3_uses": ["annex3.4.a"]}}),
        (f"/api/v1/systems/{sid}/versions", {"version": "1.0.0", "artifact_digest": DIGEST}),
    ):
        r = client.post(path, json=body, headers=people["clara"])
        assert r.status_code == 201, r.text
    bob = web("bob")
    form = bob.get(f"/systems/{sid}/approvals/new")
    assert form.status == 200
    assert "A risk assessment is needed first" in form.text("//*[@role='alert']")
    assert form.xpath(f"//a[@href='/systems/{sid}#risk']")

    refused = bob.post(
        f"/systems/{sid}/approvals/new",
        {"version": "1.0.0", "environment": "pilot", "justification": "Validated on 3 weeks of line data"},
        follow=False,
    )

    assert refused.status == 422
    assert "The request was not submitted." in refused.text()
    assert "no NIST AI RMF risk assessment" in refused.text("//*[contains(@class, 'notice--error')]")
    assert client.get("/api/v1/approvals", headers=people["clara"]).json()["total"] == 0
    r = client.post(f"/api/v1/systems/{sid}/risk-assessment", json=RISK, headers=people["rita"])
    assert r.status_code == 201, r.text
    bob.get(f"/systems/{sid}/approvals/new")
    accepted = bob.post(
        f"/systems/{sid}/approvals/new",
        {"version": "1.0.0", "environment": "pilot", "justification": "Validated on 3 weeks of line data"},
        follow=False,
    )
    assert accepted.status == 303, accepted.response.text[:2000]


def test_the_system_page_shows_an_unassessed_fr_as_not_assessed(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    # STR-CTL targets SL 3 everywhere; FR6 is below it, FR7 has not been assessed
    achieved = dict.fromkeys(FRS[:5], 3) | {"FR6": 2, "FR7": None}
    sid = make_system(zone="STR-CTL", sl_achieved=achieved)["id"]

    page = web("bob").get(f"/systems/{sid}")

    assert page.status == 200
    rows = {
        " ".join(row.xpath("./th")[0].text_content().split()).split()[0]: [
            " ".join(td.text_content().split()) for td in row.xpath("./td")
        ]
        for row in page.xpath("//section[@id='security']//table/tbody/tr")
    }
    assert rows["FR7"] == ["3", "not assessed"]
    assert rows["FR6"] == ["3", "2 gap"] and rows["FR1"] == ["3", "3"]
    security = page.text("//section[@id='security']")
    assert "not assessed in FR7" in security and "below the zone's target in FR6" in security
    assert "SL not assessed in FR7" in page.text("//*[@class='badges']")
    assert "FR7: target SL 3, achieved not assessed" in page.text("//section[@id='security']//svg/desc")
