"""PDF from a document's HTML with WeasyPrint (Debian's Pango does the text layout).

Deterministic where the library allows: the creation and modification dates are the document's covered
time (never the clock), the PDF file identifier is derived from the HTML, and nothing is fetched (no
external stylesheet, font or image), so the same HTML on the same fonts and library versions gives the
same bytes. Fonts come from fontconfig; another font set or WeasyPrint version may lay text out differently.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from weasyprint import HTML
from weasyprint.urls import URLFetcher

EPOCH = datetime(1980, 1, 1, tzinfo=UTC)


class _NoFetch(URLFetcher):  # type: ignore[misc]  # weasyprint ships no type hints: its base is Any
    """Refuses every URL: a document is rendered from its own HTML only, never from the network or disk."""

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> None:
        raise ValueError(f"documents load no external resources ({url})")


def w3c_date(when: datetime | None) -> str:
    """``2026-11-30T14:05:00Z`` in UTC (the epoch of 1980 when the document covers no event)."""
    return (when or EPOCH).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def html_to_pdf(html: str, *, when: datetime | None = None) -> bytes:
    """The PDF of ``html``: its dates are ``when`` (the covered time), its identifier the HTML's hash."""
    document = HTML(string=html, url_fetcher=_NoFetch()).render()
    stamp = w3c_date(when)
    document.metadata.created = stamp
    document.metadata.modified = stamp
    identifier = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode("ascii")
    pdf: bytes = document.write_pdf(pdf_identifier=identifier)
    return pdf
