"""Signing in and out, the session cookie, CSRF on every form and on cookie-authenticated API calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.web.helpers import PASSWORD, WebClient


def test_login_page_is_a_labelled_form_with_a_csrf_token(web: Callable[..., WebClient]) -> None:
    page = web().get("/login")
    assert page.status == 200
    assert page.response.headers["content-type"].startswith("text/html")
    form = page.xpath("//form[@method='post']")[0]
    assert form.get("action") == "/login"
    assert form.xpath(".//input[@name='csrf_token']/@value")[0] == page.csrf()
    for field in ("username", "password"):
        assert page.xpath(f"//label[@for='{field}']"), f"{field} has no label"
    assert page.xpath("//input[@id='password']/@type") == ["password"]
    assert page.texts("//h1") == ["Sign in to aireg"]


def test_login_sets_an_httponly_samesite_lax_cookie_and_lands_on_the_start_page(
    web: Callable[..., WebClient],
) -> None:
    browser = web()
    browser.get("/login")
    page = browser.post("/login", {"username": "clara", "password": PASSWORD}, follow=False)
    assert page.status == 303
    cookie = page.response.headers["set-cookie"].lower()
    assert cookie.startswith("aireg_session=")
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http here; see the https test below
    home = browser.get("/")
    assert home.response.url.path == "/dashboard"  # a compliance officer starts on the dashboard
    assert "Clara" in home.text("//header") or "clara" in home.text("//header")


def test_cookie_is_secure_when_served_over_https(client: TestClient, people: dict[str, Any]) -> None:
    browser = WebClient(TestClient(client.app, base_url="https://testserver"))
    browser.get("/login")
    page = browser.post("/login", {"username": "bob", "password": PASSWORD}, follow=False)
    assert page.status == 303
    assert "; secure" in page.response.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    ("username", "password"),
    [("clara", "not-the-password"), ("nobody", PASSWORD), ("", "")],
    ids=["wrong-password", "unknown-user", "empty"],
)
def test_wrong_password_shows_the_form_again_with_an_error_and_no_session(
    web: Callable[..., WebClient], username: str, password: str
) -> None:
    browser = web()
    browser.get("/login")
    page = browser.post("/login", {"username": username, "password": password})
    assert page.status == 400
    assert page.texts("//*[@role='alert']") == ["Wrong username or password."]
    assert page.xpath("//input[@id='username']/@value") == [username]
    assert browser.get("/systems", follow=False).status == 303  # still anonymous: sent to the login page


def test_repeated_failures_are_refused_with_429_as_an_html_page(web: Callable[..., WebClient]) -> None:
    from app.settings import get_settings

    browser = web()
    browser.get("/login")
    statuses = [
        browser.post("/login", {"username": "clara", "password": "guess"}).status
        for _ in range(get_settings().auth_failure_limit + 1)
    ]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {400}
    last = browser.post("/login", {"username": "clara", "password": PASSWORD})
    assert last.status == 429  # blocked before the password is even checked
    assert last.response.headers["content-type"].startswith("text/html")
    assert int(last.response.headers["retry-after"]) > 0


def test_anonymous_page_request_goes_to_login_and_comes_back(web: Callable[..., WebClient]) -> None:
    browser = web()
    page = browser.get("/systems?site=STR", follow=False)
    assert page.status == 303
    assert page.response.headers["location"] == "/login?next=%2Fsystems%3Fsite%3DSTR"
    form = browser.get(page.response.headers["location"])
    assert form.xpath("//input[@name='next']/@value") == ["/systems?site=STR"]
    after = browser.post(
        "/login", {"username": "bob", "password": PASSWORD, "next": "/systems?site=STR"}, follow=False
    )
    assert after.response.headers["location"] == "/systems?site=STR"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
    ],
)
def test_login_never_redirects_off_site(web: Callable[..., WebClient], target: str) -> None:
    browser = web()
    browser.get("/login")
    page = browser.post("/login", {"username": "bob", "password": PASSWORD, "next": target}, follow=False)
    assert page.status == 303
    assert page.response.headers["location"] == "/", target


def test_logout_ends_the_session(web: Callable[..., WebClient]) -> None:
    browser = web("bob")
    assert browser.get("/systems").status == 200
    page = browser.post("/logout", {}, follow=False)
    assert page.status == 303 and page.response.headers["location"] == "/login"
    assert browser.get("/systems", follow=False).status == 303


def test_logout_without_csrf_token_is_refused(web: Callable[..., WebClient]) -> None:
    browser = web("bob")
    page = browser.post("/logout", {}, csrf=False)
    assert page.status == 403
    assert browser.get("/systems").status == 200  # still signed in


def test_every_form_post_without_a_valid_csrf_token_is_refused_and_changes_nothing(
    web: Callable[..., WebClient],
    make_system: Callable[..., dict[str, Any]],
    client: TestClient,
    people: dict[str, Any],
) -> None:
    system = make_system()
    browser = web("clara")
    posts = [
        ("/systems/new", {"name": "X", "purpose": "Y", "site": "STR", "business_owner": "bob"}),
        (f"/systems/{system['id']}/classify", {"transparency": "art50.1"}),
        (f"/systems/{system['id']}/versions", {"version": "1.0.0", "artifact_digest": "sha256:" + "0" * 64}),
        ("/login", {"username": "bob", "password": PASSWORD}),
    ]
    for path, data in posts:
        for token in (None, "forged-token"):
            items = list(data.items()) + ([("csrf_token", token)] if token else [])
            page = browser.post(path, items, csrf=False)
            assert page.status == 403, (path, token)
            assert page.response.headers["content-type"].startswith("text/html")
            assert "CSRF" in page.text()
    listed = client.get("/api/v1/systems", headers=people["clara"]).json()
    assert listed["total"] == 1
    assert (
        client.get(f"/api/v1/systems/{system['id']}/versions", headers=people["clara"]).json()["total"] == 0
    )
    assert (
        client.get(f"/api/v1/systems/{system['id']}", headers=people["clara"]).json()["ai_act_class"] is None
    )


def test_a_token_from_another_session_does_not_work(web: Callable[..., WebClient]) -> None:
    mallory, bob = web("leo"), web("bob")
    bob.token = mallory.token  # a token stolen from another session
    page = bob.post("/logout", {})
    assert page.status == 403


def test_cookie_authenticated_api_writes_need_the_csrf_header(
    web: Callable[..., WebClient], client: TestClient, people: dict[str, Any]
) -> None:
    browser = web("bob")
    body = {"answers": {"transparency": ["art50.1"]}}
    refused = browser.client.post("/api/v1/classify", json=body)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    ok = browser.client.post("/api/v1/classify", json=body, headers={"X-CSRF-Token": browser.token})
    assert ok.status_code == 200 and ok.json()["ai_act_class"] == "limited_risk"
    # reads need no header, and bearer clients are untouched by the cookie rules
    assert browser.client.get("/api/v1/systems").status_code == 200
    assert client.post("/api/v1/classify", json=body, headers=people["bob"]).status_code == 200


def test_a_password_change_ends_existing_sessions(
    web: Callable[..., WebClient], client: TestClient, people: dict[str, Any]
) -> None:
    browser, other_device = web("bob"), web("bob")
    assert browser.get("/systems").status == 200
    r = client.post(
        "/api/v1/users/bob/password",
        json={"current_password": PASSWORD, "new_password": "x" * 16},
        headers=people["bob"],
    )
    assert r.status_code == 204, r.text
    assert browser.get("/systems", follow=False).status == 303
    assert other_device.get("/systems", follow=False).status == 303
    assert web(None).post("/login", {"username": "bob", "password": PASSWORD}).status == 400
    assert web(None).login("bob", "x" * 16).status == 200


def test_own_password_change_needs_the_current_password(
    client: TestClient, people: dict[str, Any], web: Callable[..., WebClient]
) -> None:
    browser = web("bob")
    r = client.post(
        "/api/v1/users/bob/password",
        json={"current_password": "wrong-password-00", "new_password": "x" * 16},
        headers=people["bob"],
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "current_password"]
    assert browser.get("/systems").status == 200  # nothing changed, the session goes on
    r = client.post("/api/v1/users/clara/password", json={"new_password": "x" * 16}, headers=people["bob"])
    assert r.status_code == 403


def test_a_deactivated_user_is_signed_out(
    web: Callable[..., WebClient], client: TestClient, people: dict[str, Any], admin: dict[str, str]
) -> None:
    browser = web("bob")
    assert browser.get("/systems").status == 200
    r = client.post("/api/v1/users/bob/deactivate", headers=admin)
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert browser.get("/systems", follow=False).status == 303
    assert client.get("/api/v1/systems", headers=people["bob"]).status_code == 401
    browser.get("/login")
    assert browser.post("/login", {"username": "bob", "password": PASSWORD}).status == 400
