"""The inventory page: filters, text search, sorting, pages and the CSV export of the current filter."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from tests.web.helpers import WebClient


def _set(system_id: str, **values: Any) -> None:
    from app.db import session_scope
    from app.systems.models import AISystem

    with session_scope() as session:
        session.execute(sa.update(AISystem).where(AISystem.id == system_id).values(**values))


def _ids(page: Any) -> list[str]:
    return page.texts("//tbody/tr/td[1]/span")


def test_inventory_lists_readable_systems_with_every_column(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    weld = make_system(zone="STR-CTL", sl_achieved={f"FR{i}": 2 for i in range(1, 8)})
    make_system(name="Solder AOI", site="LYO", line="SMT1", business_owner="leo", zone=None, sl_achieved=None)
    _set(weld["id"], ai_act_class="high_risk", risk_tier="high")
    page = web("clara").get("/systems")
    assert page.status == 200
    headers = page.texts("//thead/tr/th")
    assert headers == [
        "System",
        "Site",
        "Line",
        "AI Act class",
        "Tier",
        "Stage",
        "Zone",
        "Owner",
        "Approval",
        "Updated",
    ]
    row = page.xpath("//tbody/tr")[0]
    cells = {td.get("data-label"): " ".join(td.text_content().split()) for td in row.xpath("td")}
    assert cells["System"] == f"Weld seam inspection {weld['id']}"
    assert cells["AI Act class"] == "High risk" and cells["Tier"] == "High" and cells["Site"] == "STR"
    assert cells["Zone"] == "STR-CTL SL gap 7"  # SL-T 3 everywhere, SL-A 2
    assert cells["Approval"] == "None yet"
    assert row.xpath(".//a/@href") == [f"/systems/{weld['id']}"]
    assert "Showing 1\u20132 of 2 systems" in page.text()


def test_a_user_sees_only_the_sites_they_hold_a_role_in(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    make_system()
    lyo = make_system(name="Solder AOI", site="LYO", line="SMT1", business_owner="leo", zone=None)
    page = web("leo").get("/systems")
    assert _ids(page) == [lyo["id"]]
    assert page.xpath("//select[@id='site']/option/@value") == ["", "LYO"]


def test_filters_combine_and_are_kept_in_the_form(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    a = make_system(name="Weld inspection", lifecycle_stage="production")
    make_system(name="Weld planner", lifecycle_stage="pilot")
    make_system(name="Paint check", lifecycle_stage="production", line="ASM2")
    browser = web("clara")
    page = browser.get("/systems?q=weld&lifecycle_stage=production&line=BODY1&site=")
    assert _ids(page) == [a["id"]]
    assert page.xpath("//input[@id='q']/@value") == ["weld"]
    assert page.xpath("//select[@id='lifecycle_stage']/option[@selected]/@value") == ["production"]
    assert page.xpath("//select[@id='line']//option[@selected]/@value") == ["BODY1"]
    assert "matching the filters" in page.text()
    assert page.xpath("//a[normalize-space()='Clear all filters']/@href") == ["/systems"]
    none = browser.get("/systems?q=nothing-like-this")
    assert none.xpath("//tbody") == [] and "No system matches these filters" in none.text()


def test_search_treats_wildcards_literally(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    make_system(name="Scrap rate 100% check")
    make_system(name="Scrap rate monitor")
    page = web("clara").get("/systems?q=100%25")
    assert len(_ids(page)) == 1


def test_sorting_by_a_column_and_flipping_it(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    for name in ("Bravo", "Alpha", "Charlie"):
        make_system(name=name)
    browser = web("clara")
    page = browser.get("/systems")
    link = page.xpath("//thead//a[normalize-space()='System']/@href")[0]
    ascending = browser.get(link)
    assert [t.split(" AIS-")[0] for t in ascending.texts("//tbody/tr/td[1]")] == ["Alpha", "Bravo", "Charlie"]
    assert ascending.xpath("//th[@aria-sort]/@aria-sort") == ["ascending"]
    descending = browser.get(ascending.xpath("//thead//a[starts-with(normalize-space(), 'System')]/@href")[0])
    assert [t.split(" AIS-")[0] for t in descending.texts("//tbody/tr/td[1]")] == [
        "Charlie",
        "Bravo",
        "Alpha",
    ]
    assert descending.xpath("//th[@aria-sort]/@aria-sort") == ["descending"]


def test_pages_of_results(web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]) -> None:
    created = [make_system(name=f"System {n:02d}")["id"] for n in range(30)]
    browser = web("clara")
    first = browser.get("/systems?per_page=25")
    assert _ids(first) == created[:25]
    assert "Showing 1\u201325 of 30" in first.text()
    assert first.xpath("//nav[@aria-label='Pages']//span[@aria-current='page']/text()") == ["1"]
    second = browser.get(first.xpath("//a[@rel='next']/@href")[0])
    assert _ids(second) == created[25:]
    assert second.xpath("//a[@rel='next']") == [] and second.xpath("//a[@rel='prev']")


def test_bad_filter_values_get_an_html_error_page(web: Callable[..., WebClient], people: Any) -> None:
    page = web("clara").get("/systems?ai_act_class=dangerous")
    assert page.status == 422
    assert page.response.headers["content-type"].startswith("text/html")
    assert "ai_act_class" in page.text()


def test_csv_export_follows_the_filter_and_neutralises_formulas(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]]
) -> None:
    make_system(name='=HYPERLINK("http://x")', vendor="+cmd")
    make_system(name="Paint check", line="ASM2")
    make_system(name="Lyon thing", site="LYO", line="SMT1", business_owner="leo", zone=None)
    browser = web("clara")
    page = browser.get("/systems?line=BODY1")
    href = page.xpath("//a[normalize-space()='Export CSV']/@href")[0]
    assert href == "/systems/export.csv?line=BODY1"
    response = browser.client.get(href)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 1
    assert rows[0]["name"] == '\'=HYPERLINK("http://x")' and rows[0]["vendor"] == "'+cmd"
    assert rows[0]["line"] == "BODY1" and rows[0]["sl_gap"] == ""
    everything = list(
        csv.DictReader(io.StringIO(browser.client.get("/systems/export.csv").content.decode("utf-8-sig")))
    )
    assert len(everything) == 3


def test_csv_export_has_every_row_not_just_one_page(
    web: Callable[..., WebClient], make_system: Callable[..., dict[str, Any]], monkeypatch: Any
) -> None:
    from app.web.routes import systems as pages

    monkeypatch.setattr(pages, "CSV_BATCH", 4)
    for n in range(9):
        make_system(name=f"S{n}")
    response = web("clara").client.get("/systems/export.csv?per_page=25")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["name"] for r in rows] == [f"S{n}" for n in range(9)]


def test_csv_for_a_user_without_system_read_is_refused(
    web: Callable[..., WebClient], make_user: Any, plant: Any
) -> None:
    from tests.web.helpers import PASSWORD

    make_user("noone", password=PASSWORD)
    browser = web()
    browser.login("noone")
    assert browser.get("/systems/export.csv").status == 403
    assert browser.get("/systems").status == 403
