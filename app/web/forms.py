"""Reading HTML form posts and turning validation errors into messages next to the fields."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.errors import AppError
from app.web.templating import label, role_words


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


# What each form field is called on the pages (the words of its <label>), by the name it is posted under.
FIELD_LABELS: dict[str, str] = {
    "name": "Name",
    "purpose": "Purpose",
    "site": "Site",
    "line": "Production line",
    "zone": "Zone",
    "business_owner": "Business owner",
    "technical_owner": "Technical owner",
    "vendor": "Vendor",
    "ai_act_role": "Our role under the AI Act",
    "lifecycle_stage": "Lifecycle stage",
    "personal_data": "Personal data",
    "intended_use": "Intended use",
    "out_of_scope_uses": "Uses that are out of scope",
    "human_oversight": "Human oversight",
    "limitations": "Known limitations",
    "training_data": "Training data",
    "sl_achieved": "Achieved security level",
    "version": "Version",
    "artifact_digest": "Artifact digest",
    "notes": "Notes",
    "metrics": "Metrics",
    "environment": "Environment",
    "justification": "Justification",
    "role": "Role",
    "decision": "Decision",
    "comment": "Comment",
    "conditions": "Conditions",
    "reason": "Reason",
    "as_of": "As of",
    "username": "Username",
    "password": "Password",
}

# Fields whose choices are stored codes with display labels (a kind of ``templating.LABELS``).
CHOICE_LABELS: dict[str, str] = {
    "ai_act_role": "ai_act_role",
    "lifecycle_stage": "lifecycle_stage",
    "environment": "environment",
    "role": "role",
}

# What a field with a pattern must look like, completing "<Label> must be ...".
FORMATS: dict[str, str] = {
    "site": "a site code in capitals, such as STR",
    "line": "a line code in capitals, such as BODY1",
    "zone": "a zone code in capitals, such as STR-OPS",
    "business_owner": "a username such as bob.owner",
    "technical_owner": "a username such as bob.owner",
    "version": "a version such as 1.2.0 (letters, digits, dots, hyphens, plus signs)",
    "artifact_digest": "“sha256:” followed by 64 hexadecimal characters (0-9, a-f)",
    "conditions": "a metric, a comparison and a number, such as accuracy >= 0.95",
}

_DATE_TYPES = {"date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"}
_DATETIME_TYPES = {
    "datetime_type",
    "datetime_parsing",
    "datetime_from_date_parsing",
    "datetime_object_invalid",
}
_NUMBER_TYPES = {"float_type", "float_parsing", "decimal_type", "decimal_parsing", "finite_number"}
_WHOLE_TYPES = {"int_type", "int_parsing", "int_from_float", "int_parsing_size"}
_UNREADABLE_TYPES = {
    "string_type",
    "string_unicode",
    "string_sub_type",
    "bytes_type",
    "list_type",
    "tuple_type",
    "set_type",
    "frozen_set_type",
    "dict_type",
    "model_type",
    "model_attributes_type",
    "dataclass_type",
    "is_instance_of",
    "json_type",
    "json_invalid",
    "iterable_type",
    "none_required",
    "union_tag_invalid",
    "union_tag_not_found",
}
_COMPARISONS = {
    "greater_than": ("more than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}


def field_label(field: str) -> str:
    """The label a reader knows a field by: ``sl_achieved.FR3`` -> ``Achieved security level in FR3``."""
    head, _, rest = field.partition(".")
    name = FIELD_LABELS.get(head, head.replace("_", " ").capitalize() or "This field")
    if head == "sl_achieved" and rest:
        return f"{name} in {rest.split('.')[0]}"
    if head == "conditions" and rest.split(".")[0].isdigit():
        return f"Condition {int(rest.split('.')[0]) + 1}"
    return name


def _choices(field: str, ctx: dict[str, Any]) -> str:
    """``'pilot' or 'production'`` -> ``Pilot, Production`` (labelled where the codes have labels)."""
    codes = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
    kind = CHOICE_LABELS.get(field.split(".")[0])
    return ", ".join(label(c, kind) if kind else c for c in codes)


def _plural(n: Any, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _sentence(text: str) -> str:
    """Capital first letter, full stop at the end, role codes as their labels."""
    text = role_words(text.strip())
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def validation_message(
    field: str, kind: str, ctx: dict[str, Any] | None = None, msg: str = "", value: Any = None
) -> str:
    """One plain sentence for one validation error, naming the field by its label.

    ``kind`` is pydantic's error type (``string_too_short``, ``enum`` ...); every page form gets its
    messages here, so the same problem reads the same everywhere. The API keeps pydantic's own words.
    """
    ctx = ctx or {}
    name = field_label(field)
    head = field.split(".")[0]
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1) or value == "":
        return f"{name} is required."
    if kind == "string_too_short":
        return f"{name} must be at least {_plural(ctx.get('min_length'), 'character')}."
    if kind == "string_too_long":
        return f"{name} must be at most {_plural(ctx.get('max_length'), 'character')}."
    if kind == "too_short":
        return f"{name} needs at least {_plural(ctx.get('min_length'), 'entry', 'entries')}."
    if kind == "too_long":
        return f"{name} takes at most {_plural(ctx.get('max_length'), 'entry', 'entries')}."
    if kind == "string_pattern_mismatch":
        if head in FORMATS:
            return f"{name} must be {FORMATS[head]}."
        return f"{name} contains characters or a format that is not allowed."
    if kind in ("enum", "literal_error"):
        choices = _choices(field, ctx)
        return f"{name}: choose one of: {choices}." if choices else f"{name}: choose one of the options."
    if kind in _DATE_TYPES:
        return f"{name}: enter a date like 2027-01-31."
    if kind in _DATETIME_TYPES:
        return f"{name}: enter a date and time like 2027-01-31 14:30."
    if kind == "date_past":
        return f"{name} must be a date in the past."
    if kind == "date_future":
        return f"{name} must be a date in the future."
    if kind in _WHOLE_TYPES:
        return f"{name} must be a whole number."
    if kind in _NUMBER_TYPES:
        return f"{name} must be a number."
    if kind in _COMPARISONS:
        words, key = _COMPARISONS[kind]
        return f"{name} must be {words} {ctx.get(key)}."
    if kind == "multiple_of":
        return f"{name} must be a multiple of {ctx.get('multiple_of')}."
    if kind in ("bool_type", "bool_parsing"):
        return f"{name} must be yes or no."
    if kind.startswith("url_"):
        return f"{name} must be a web address like https://example.com."
    if kind.startswith("uuid_"):
        return f"{name} must be a UUID."
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{name} is not a field of this form."
    if kind in _UNREADABLE_TYPES:
        return f"{name} is not in a form the registry can read."
    if kind in ("value_error", "assertion_error") and msg:
        detail = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ").strip()
        return _sentence(f"{name}: {detail}") if field != "form" else _sentence(detail)
    return f"{name} is not valid."


def field_errors(exc: ValidationError | AppError) -> dict[str, str]:
    """``{"line": "Production line must be ...", "sl_achieved.FR1": "..."}`` from a schema or service error.

    Pydantic's errors become plain sentences naming the field by its label (``validation_message``); a
    service's own message becomes a sentence as it is. Only input problems (422) and conflicts (409)
    belong on the form; anything else (403, 404 ...) is raised again so the error page answers it.
    """
    if isinstance(exc, AppError) and exc.status not in (409, 422):
        raise exc
    if isinstance(exc, ValidationError):
        items: list[Mapping[str, Any]] = list(exc.errors(include_url=False))
    else:
        items = list(exc.errors or [])
        if not items:
            return {"form": _sentence(exc.detail)}
    errors: dict[str, str] = {}
    for item in items:
        field = _field(item.get("loc", ()))
        msg = str(item.get("msg", ""))
        kind = item.get("type")
        text = (
            validation_message(field, kind, item.get("ctx"), msg, item.get("input"))
            if kind
            else _sentence(msg)
        )
        errors.setdefault(field, text)
    return errors
