"""Reading HTML form posts and turning validation errors into messages next to the fields."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.errors import AppError


async def form_data(request: Request) -> FormData:
    """The posted form (parsed once per request; the CSRF check reads the same object)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


def text(form: FormData, name: str, max_length: int = 10_000, *, strip: bool = True) -> str:
    """One text field ('' when missing or a file); cut at ``max_length`` where the caller only compares it."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    value = value.strip() if strip else value
    return value[:max_length]


def optional(form: FormData, name: str) -> str | None:
    """A text field, or None when left empty (the schemas validate its length and pattern)."""
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def checked(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "true", "1", "yes")


def values(form: FormData, name: str) -> list[str]:
    """Every value of a repeated field (checkbox groups), empties dropped."""
    return [v for v in form.getlist(name) if isinstance(v, str) and v]


def _field(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "answers") and not str(p).startswith("function-")]
    return ".".join(parts) or "form"


def field_errors(exc: ValidationError | AppError) -> dict[str, str]:
    """``{"line": "site STR has no line 'X'", "sl_achieved.FR1": "..."}`` from a schema or service error.

    Only input problems (422) and conflicts (409) belong on the form; anything else (403, 404 ...) is raised
    again so the error page answers it.
    """
    if isinstance(exc, AppError) and exc.status not in (409, 422):
        raise exc
    if isinstance(exc, ValidationError):
        items = [{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors(include_url=False)]
    else:
        items = list(exc.errors or [])
        if not items:
            return {"form": exc.detail}
    errors: dict[str, str] = {}
    for item in items:
        errors.setdefault(_field(item.get("loc", ())), str(item.get("msg", "")).removeprefix("Value error, "))
    return errors
