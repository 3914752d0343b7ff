"""What the signed-in user may reach, asked of Casbin per page, so no page offers what it would refuse."""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import Forbidden, NotFound
from app.identity.dependencies import Principal
from app.identity.models import Role
from app.systems.dependencies import check_ownership
from app.systems.models import AISystem


def anywhere(principal: Principal, obj: str, act: str) -> bool:
    """Whether the caller may ``act`` on ``obj`` in at least one site."""
    sites = principal.sites_for(obj, act)
    return sites is None or bool(sites)


def signer_roles(principal: Principal) -> list[str]:
    """The sign-off roles the caller may sign for somewhere (``signoff.<role>``/``sign`` in the policy)."""
    return [role.value for role in Role if anywhere(principal, f"signoff.{role.value}", "sign")]


def permits(principal: Principal, system: AISystem, obj: str, act: str) -> bool:
    """Whether ``act`` on ``obj`` is allowed for this system, by the same rule as ``system_access``.

    ``<act>_own`` permissions count only for the system's business owner. Nothing is audited: this only
    decides what a page offers; the action itself is authorized again when it is taken.
    """
    try:
        granted = principal.require(obj, act, system.site, entity_id=system.id, alternatives=(f"{act}_own",))
        check_ownership(principal, system, granted, obj)
    except (Forbidden, NotFound):
        return False
    return True


def may_create_anywhere(principal: Principal, obj: str, act: str) -> bool:
    """``act`` or ``act_own`` somewhere (e.g. a business owner may request approval of their own systems)."""
    return anywhere(principal, obj, act) or anywhere(principal, obj, f"{act}_own")


@dataclass(frozen=True)
class Navigation:
    dashboard: bool
    inventory: bool
    register: bool
    inbox: bool
    roles: list[tuple[str, str]]
    compliance: bool = False


def navigation(principal: Principal) -> Navigation:
    return Navigation(
        dashboard=anywhere(principal, "kpi", "read"),
        inventory=anywhere(principal, "system", "read"),
        register=anywhere(principal, "system", "create"),
        inbox=bool(signer_roles(principal)),
        roles=sorted(set(principal.grants)),
        compliance=anywhere(principal, "requirement", "read"),
    )
