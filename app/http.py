"""Shapes shared by every router: list pages and optimistic-concurrency revisions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Header, Query
from pydantic import AwareDatetime, BaseModel, BeforeValidator

from app.errors import Conflict, field_error

T = TypeVar("T")

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _iso_only(value: Any) -> Any:
    """Refuse numbers (pydantic would read them as Unix timestamps): times are ISO 8601 strings."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("expected an ISO 8601 date-time with a UTC offset, e.g. 2026-11-30T12:00:00Z")
    return value


IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
"""A time given by a client: ISO 8601 with a UTC offset (the contract's only form), never a bare number."""

MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size (max 500)")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


def if_match_revision(
    if_match: Annotated[str | None, Header(description='the revision the change is based on: "3"')] = None,
) -> int | None:
    if if_match is None:
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise field_error(["header", "If-Match"], 'expected the object\'s revision, e.g. "3"')
    return int(value)


IfMatchDep = Annotated[int | None, Depends(if_match_revision)]


def check_revision(current: int, header: int | None, body: int | None) -> None:
    """Optimistic concurrency: the change must name the revision it was based on, and it must be current."""
    if header is not None and body is not None and header != body:
        raise field_error(["body", "revision"], "does not match the If-Match header")
    expected = header if header is not None else body
    if expected is None:
        raise field_error(
            ["body", "revision"], "required: send the revision you read, in the body or as If-Match"
        )
    if expected != current:
        raise Conflict(
            f"stale revision {expected}: the object is at revision {current}; reload and retry",
            current_revision=current,
        )
