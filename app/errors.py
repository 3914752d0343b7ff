"""One error family for the whole service, rendered as RFC 9457 problem details."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every error a client may see; ``status`` and ``title`` decide the response."""

    status: int = 400
    title: str = "Bad request"
    type_slug: str = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        denial: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra
        # An access denial to write to the audit trail once the request's own transaction is gone.
        self.denial = denial


class NotFound(AppError):
    status, title, type_slug = 404, "Not found", "not-found"


class Unauthorized(AppError):
    status, title, type_slug = 401, "Unauthorized", "unauthorized"


class Forbidden(AppError):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class Conflict(AppError):
    status, title, type_slug = 409, "Conflict", "conflict"


class Unprocessable(AppError):
    """A well-formed request that breaks a rule; ``errors`` names the offending fields."""

    status, title, type_slug = 422, "Unprocessable content", "validation-error"


class StoredDataDamaged(AppError):
    """Stored data no longer matches its recorded hash: nothing is answered from it."""

    status, title, type_slug = 500, "Stored data damaged", "stored-data-damaged"


class TooManyRequests(AppError):
    status, title, type_slug = 429, "Too many requests", "too-many-requests"


class ServiceUnavailable(AppError):
    """Something this service depends on did not answer (in time); nothing was done; try again."""

    status, title, type_slug = 503, "Service unavailable", "service-unavailable"


def field_error(loc: list[str | int], msg: str) -> Unprocessable:
    """A 422 naming one field, e.g. ``field_error(["body", "answers", "annex3_uses", 0], "unknown id")``."""
    return Unprocessable(f"{'.'.join(str(p) for p in loc)}: {msg}", errors=[{"loc": loc, "msg": msg}])
