"""Cross-domain hooks, registered in one place when the service or the CLI starts.

Lower domains own hook points (the release gate's checks, the approvals sweep, system history and read
fields); higher domains fill them without the lower ones importing them. ``wire()`` registers every hook
listed in ``expected_hooks()`` and then checks that each hook point holds what it must, so a missing hook
stops the start with its name instead of leaving, say, a release gate that ignores open serious incidents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa

from app.approvals import flows, release
from app.approvals.models import ApprovalRequest
from app.compliance import service as compliance
from app.incidents import service as incidents
from app.incidents.models import Incident
from app.monitoring import service as monitoring
from app.monitoring.models import Deployment, MonitoringReport
from app.replication import service as replication
from app.reviews import service as reviews
from app.systems import service as systems


class WiringError(RuntimeError):
    """A hook point lacks a hook it must have; the service or the CLI refuses to start."""


@dataclass(frozen=True)
class Hook:
    """One hook a domain must have registered: where it goes, who provides it, how to add and find it."""

    point: str  # the hook point, e.g. "release check"
    provider: str  # what fills it, e.g. "app.incidents.service.gate_check"
    register: Callable[[], None]
    present: Callable[[], bool]


def _name(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _holds(hooks: tuple[object, ...], hook: object) -> bool:
    # identity, not ==: a release check holds SQL statements, whose == builds an expression
    return any(h is hook for h in hooks)


def _release_check(check: release.ReleaseCheck, provider: str) -> Hook:
    return Hook(
        "release check",
        provider,
        lambda: release.register_release_check(check),
        lambda: _holds(release.registered_release_checks(), check),
    )


def _sweep(hook: flows.SweepHook) -> Hook:
    return Hook(
        "approvals sweep",
        _name(hook),
        lambda: flows.register_sweep(hook),
        lambda: _holds(flows.registered_sweeps(), hook),
    )


def _carry_over(hook: flows.CarryOverHook) -> Hook:
    return Hook(
        "replica sign-off carry-over",
        _name(hook),
        lambda: flows.register_carry_over(hook),
        lambda: _holds(flows.registered_carry_overs(), hook),
    )


def _dependent(name: str, table: sa.Table) -> Hook:
    return Hook(
        "system history",
        f"{name} ({table.name})",
        lambda: systems.register_dependent(name, table),
        lambda: systems.registered_dependent(name) is table,
    )


def _read_extra(extra: systems.ReadExtra) -> Hook:
    return Hook(
        "system read field",
        _name(extra),
        lambda: systems.register_read_extra(extra),
        lambda: _holds(systems.registered_read_extras(), extra),
    )


def _table(model: type[object]) -> sa.Table:
    return cast(sa.Table, model.__table__)  # type: ignore[attr-defined]  # SQLModel sets it on table classes


def expected_hooks() -> list[Hook]:
    """Every cross-domain hook, in registration order (release reasons and sweeps follow this order)."""
    return [
        # Requirements that bind and are not met deny a release (compliance), and so does an open serious
        # incident that no compliance officer lifted (incidents, AI Act Art. 73).
        _release_check(compliance.gate_check, "app.compliance.service.gate_check"),
        _release_check(incidents.gate_check, "app.incidents.service.gate_check"),
        # The approvals worker's periodic round also recounts requirements and sends review reminders.
        _sweep(compliance.sweep_requirements),
        _sweep(reviews.sweep_reminders),
        # A replica's approval request reuses the sign-offs its new placement does not change.
        _carry_over(replication.carry_over),
        # Records that are history keep a system from deletion (tables without a foreign key to it).
        _dependent("approvals", _table(ApprovalRequest)),
        _dependent("incident", _table(Incident)),
        _dependent("monitoring_report", _table(MonitoringReport)),
        _dependent("deployment", _table(Deployment)),
        # System reads (lists, detail, replication, export) show the monitoring state.
        _read_extra(monitoring.system_monitoring_states),
    ]


def check_wiring(hooks: list[Hook] | None = None) -> None:
    """Raise ``WiringError`` naming every expected hook that is not registered."""
    missing = [h for h in (expected_hooks() if hooks is None else hooks) if not h.present()]
    if missing:
        raise WiringError(
            "missing cross-domain hook(s): "
            + "; ".join(f"{h.point} {h.provider}" for h in missing)
            + " (app/wiring.py registers them; call wire() before serving)"
        )


def wire() -> None:
    """Register every cross-domain hook not registered yet (calling it again adds nothing), then check."""
    hooks = expected_hooks()
    for hook in hooks:
        if not hook.present():
            hook.register()
    check_wiring(hooks)
