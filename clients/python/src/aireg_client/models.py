"""What the release gate answers, as typed values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Reason:
    """Why a release is denied (``error``), or a note on an allow (``warning``, e.g. SL_GAP_ACCEPTED)."""

    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class ReleaseDecision:
    """The service's answer to "may this version run in this environment now?"."""

    allowed: bool
    system: str
    version: str
    environment: str
    reasons: tuple[Reason, ...]
    approval_id: str | None
    valid_until: datetime | None
    checked_at: datetime | None
    attempts: int = 1  # requests made, retries included
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: dict[str, Any], *, attempts: int = 1) -> ReleaseDecision:
        """Read a ``GET /api/v1/release-permission`` body; ``ValueError`` if it carries no decision."""
        if not isinstance(body, dict) or not isinstance(body.get("allowed"), bool):
            raise ValueError("the service answered without a decision")
        reasons = tuple(
            Reason(
                code=str(r.get("code")),
                severity="warning" if r.get("severity") == "warning" else "error",
                message=str(r.get("message", "")),
            )
            for r in body.get("reasons") or []
            if isinstance(r, dict)
        )
        return cls(
            allowed=body["allowed"],
            system=str(body.get("system", "")),
            version=str(body.get("version", "")),
            environment=str(body.get("environment", "")),
            reasons=reasons,
            approval_id=body.get("approval_id"),
            valid_until=_datetime(body.get("valid_until")),
            checked_at=_datetime(body.get("checked_at")),
            attempts=attempts,
            raw=body,
        )


def _datetime(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value))
