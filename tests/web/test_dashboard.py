"""The portfolio dashboard: counts by class, tier, stage and site, approvals waiting, reviews coming due."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.web.helpers import DIGEST, WebClient


def _set(system_id: str, **values: Any) -> None:
    from app.db import session_scope
    from app.systems.models import AISystem

    with session_scope() as session:
        session.execute(sa.update(AISystem).where(AISystem.id == system_id).values(**values))


def _bars(page: Any, chart_id: str) -> dict[str, int]:
    """Label -> value of one bar chart, read from its SVG."""
    svg = page.xpath(f"//svg[@aria-labelledby='{chart_id}-title {chart_id}-desc']")[0]
    desc = svg.xpath("string(./desc)")
    return {label: int(value) for label, value in (part.rsplit(": ", 1) for part in desc.split("; "))}


def test_dashboard_counts_the_portfolio_the_user_may_see(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    a = make_system(lifecycle_stage="production")
    b = make_system(name="B", lifecycle_stage="pilot")
    make_system(name="C", lifecycle_stage="idea")
    lyo = make_system(
        name="Lyon", site="LYO", line="SMT1", business_owner="leo", zone=None, lifecycle_stage="production"
    )
    _set(a["id"], ai_act_class="high_risk", risk_tier="high")
    _set(b["id"], ai_act_class="limited_risk", risk_tier="low")
    _set(lyo["id"], ai_act_class="high_risk", risk_tier="critical")
    page = web("clara").get("/dashboard")
    assert page.status == 200
    assert _bars(page, "c-class") == {
        "Prohibited": 0,
        "High risk": 2,
        "Limited risk": 1,
        "Minimal risk": 0,
        "Out of scope": 0,  # AI Act Art. 2 exclusions (catalogue 2026-12-06)
        "Not yet assessed": 1,
    }
    assert _bars(page, "c-tier") == {"Critical": 1, "High": 1, "Medium": 0, "Low": 1, "Not yet assessed": 1}
    assert _bars(page, "c-stage") == {"Idea": 1, "Pilot": 1, "Production": 2, "Retired": 0}
    assert _bars(page, "c-site") == {"LYO": 1, "STR": 3}
    links = page.xpath("//svg//a/@href")
    assert "/systems?ai_act_class=high_risk" in links and "/systems?site=LYO" in links
    assert "/systems?lifecycle_stage=production" in links
    kpis = dict(
        zip(
            page.texts("//div[@class='kpi' or starts-with(@class,'kpi ')]//*[@class='kpi__label']"),
            page.texts("//div[@class='kpi' or starts-with(@class,'kpi ')]//*[@class='kpi__value']"),
            strict=True,
        )
    )
    assert kpis["AI systems"] == "4" and kpis["high-risk (AI Act)"] == "2"
    # a business owner of STR sees STR only
    owner = web("bob").get("/dashboard")
    assert _bars(owner, "c-site") == {"STR": 3}
    assert "AI systems in STR" in owner.text()


def test_pending_approvals_and_reviews_due(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]], client: TestClient, people: Any
) -> None:
    from app.db import set_clock_offset

    ids = []
    for name in ("One", "Two"):
        sid = make_system(name=name)["id"]
        client.post(f"/api/v1/systems/{sid}/classification", json={"answers": {}}, headers=people["clara"])
        client.post(
            f"/api/v1/systems/{sid}/versions",
            json={"version": "1.0.0", "artifact_digest": DIGEST},
            headers=people["clara"],
        )
        r = client.post(
            f"/api/v1/systems/{sid}/approvals",
            json={"version": "1.0.0", "environment": "pilot", "justification": "ok"},
            headers=people["bob"],
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    for role, who in (("business_owner", "berta"), ("compliance_officer", "clara")):
        r = client.post(
            f"/api/v1/approvals/{ids[0]}/signoffs",
            json={"role": role, "decision": "approve"},
            headers=people[who],
        )
        assert r.status_code in (200, 201), r.text
    valid_until = client.get(f"/api/v1/approvals/{ids[0]}", headers=people["clara"]).json()["valid_until"]
    assert valid_until is not None
    page = web("clara").get("/dashboard")
    assert _bars(page, "c-age")["0\u20137 days"] == 1
    assert page.xpath(f"//section[@aria-labelledby='pending-title']//a[@href='/approvals/{ids[1]}']")
    assert not page.xpath("//section[@aria-labelledby='due-title']//tbody")  # a year away
    try:
        set_clock_offset(timedelta(days=350))  # 12 months of validity: now due within 30 days
        later = web("clara").get("/dashboard")
        assert later.xpath(f"//section[@aria-labelledby='due-title']//a[@href='/approvals/{ids[0]}']")
        assert sum(_bars(later, "c-due").values()) == 1
        assert _bars(later, "c-age")["0\u20137 days"] == 0
    finally:
        set_clock_offset(None)


def test_dashboard_is_for_roles_that_read_figures(web: Callable[..., WebClient], people: Any) -> None:
    assert web("otto").get("/dashboard").status == 403
    assert "/dashboard" not in web("otto").get("/inbox").links()
    assert web("otto").get("/", follow=False).response.headers["location"] == "/inbox"
