"""A browser-like test client for the pages, and helpers that read the HTML they return (lxml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lxml.html
from fastapi.testclient import TestClient
from httpx import Response

PASSWORD = "correct-horse-battery-staple"
DIGEST = "sha256:" + "ab" * 32


@dataclass
class Page:
    """A response with its parsed HTML."""

    response: Response

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def doc(self) -> Any:
        return lxml.html.fromstring(self.response.text)

    def xpath(self, query: str) -> list[Any]:
        return self.doc.xpath(query)

    def texts(self, query: str) -> list[str]:
        """Whitespace-normalised text of every element matching ``query``."""
        return [" ".join(el.text_content().split()) for el in self.xpath(query)]

    def text(self, query: str = "//main") -> str:
        return " ".join(self.texts(query))

    def links(self) -> list[str]:
        return [a.get("href") for a in self.xpath("//a[@href]")]

    def forms(self) -> list[Any]:
        return self.xpath("//form")

    def form_actions(self) -> list[str]:
        return [f.get("action") for f in self.forms()]

    def csrf(self) -> str:
        return self.xpath("//meta[@name='csrf-token']")[0].get("content")


class WebClient:
    """One person's browser: a cookie jar, following the pages' forms with their CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.token = ""

    def get(self, path: str, **kwargs: Any) -> Page:
        page = Page(self.client.get(path, follow_redirects=kwargs.pop("follow", True), **kwargs))
        if page.response.headers.get("content-type", "").startswith("text/html") and page.xpath(
            "//meta[@name='csrf-token']"
        ):
            self.token = page.csrf() or self.token
        return page

    def post(
        self,
        path: str,
        data: dict[str, Any] | list[tuple[str, str]],
        *,
        csrf: bool = True,
        follow: bool = True,
    ) -> Page:
        """Post a form as the browser would (with the CSRF token of the last page unless ``csrf=False``)."""
        if not self.token and csrf:
            self.get("/login")
        items = list(data.items()) if isinstance(data, dict) else list(data)
        if csrf:
            items.append(("csrf_token", self.token))
        body = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in items)
        response = self.client.post(
            path,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=follow,
        )
        page = Page(response)
        if response.headers.get("content-type", "").startswith("text/html") and page.xpath(
            "//meta[@name='csrf-token']"
        ):
            self.token = page.csrf() or self.token
        return page

    def login(self, username: str, password: str = PASSWORD) -> Page:
        self.get("/login")
        page = self.post("/login", {"username": username, "password": password, "next": ""})
        assert page.status == 200, page.response.text[:500]
        return page


def _quote(value: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(str(value))
