"""Shapes shared by every router: list pages and optimistic-concurrency revisions."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import quote

from fastapi import Depends, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ValidationError

from app.errors import Conflict, field_error

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _iso_only(value: Any) -> Any:
    """Refuse numbers (pydantic would read them as Unix timestamps): times are ISO 8601 strings."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("expected an ISO 8601 date-time with a UTC offset, e.g. 2026-11-30T12:00:00Z")
    return value


# The times a client may send: what every backend stores and every computation on it (deadlines, intervals,
# comparisons in UTC) can represent. Python's datetime ends at year 9999, so a time near either end with an
# offset (0001-01-01T00:00:00+14:00) cannot even be converted to UTC.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_TIME_RANGE = (
    f"must lie between {EARLIEST_TIME:%Y-%m-%dT%H:%M:%SZ} and {LATEST_TIME:%Y-%m-%dT%H:%M:%SZ} (in UTC)"
)


def _storable(value: datetime) -> datetime:
    """Refuse a time the store cannot hold: outside the range above once converted to UTC."""
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(_TIME_RANGE) from None
    if not EARLIEST_TIME <= in_utc <= LATEST_TIME:
        raise ValueError(_TIME_RANGE)
    return value


IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_only), AfterValidator(_storable)]
"""A time given by a client (body field or query parameter): ISO 8601 with a UTC offset (the contract's only
form), never a bare number, and one the store can hold (else a 422 naming the field, never a 500)."""

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


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size (max 500)")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PageParams:
    """The page asked for. ``async`` although it awaits nothing: FastAPI runs a plain ``def`` dependency in a
    worker thread, a hop that costs more than the function."""
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


def page_of(items: list[T], total: int, page: PageParams) -> Page[T]:
    """The page ``items`` (already cut to ``page``, e.g. by ``app.db.paginate``) of a list of ``total``."""
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


def page_from_list(rows: list[T], page: PageParams) -> Page[T]:
    """``page`` cut from a list built whole in Python (rows derived, not queried)."""
    return page_of(rows[page.offset : page.offset + page.limit], len(rows), page)


async def if_match_revision(
    if_match: Annotated[str | None, Header(description='the revision the change is based on: "3"')] = None,
) -> int | None:
    """The revision of an ``If-Match`` header (``async``: pure, no worker-thread hop; see ``page_params``)."""
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


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """A Content-Disposition header for a client-supplied file name (RFC 6266): an ASCII fallback with
    quotes and backslashes dropped, and the exact name as UTF-8 (RFC 5987)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def query_model(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency reading ``model`` from the query string: the same pydantic validation, and the same 422
    (``loc`` ``["query", field]``), as ``Annotated[model, Query()]``, for a fraction of its cost per call
    (FastAPI re-inspects every field's annotation on each request; the release gate is called on every
    deployment). Document the parameters with ``openapi_extra={"parameters": query_parameters(model)}``."""

    async def read(request: Request) -> M:
        try:
            return model.model_validate(request.query_params)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in errors]) from None

    return read


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI query parameters of ``model``'s fields (schemas inlined), for ``query_model``."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            given = {key: inline(value) for key, value in node.items() if key != "$ref"}
            if "$ref" in node:  # the definition, with what sits next to the reference (a default)
                return {**inline(defs[node["$ref"].rsplit("/", 1)[1]]), **given}
            return given
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        parameter = {"name": name, "in": "query", "required": name in required, "schema": inline(field)}
        if "description" in field:
            parameter["description"] = field["description"]
        parameters.append(parameter)
    return parameters
