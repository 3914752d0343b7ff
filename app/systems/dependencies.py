"""Load-or-404 and authorize a system once, for every router that works on one."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Annotated

from fastapi import Depends, Path

from app.db import SessionDep
from app.errors import NotFound
from app.identity.dependencies import CurrentPrincipal, Principal
from app.systems import service
from app.systems.models import SIGNOFF_FACTS, SYSTEM_ID_PATTERN, AISystem

SystemId = Annotated[str, Path(description="e.g. AIS-000123", examples=["AIS-000123"])]
_SYSTEM_ID = re.compile(SYSTEM_ID_PATTERN)


def check_ownership(principal: Principal, system: AISystem, granted: str, obj: str) -> None:
    """Record-level rule: an ``*_own`` permission covers only systems the caller is business owner of."""
    if granted.endswith("_own") and system.business_owner != principal.username:
        raise principal.forbidden(
            f"{principal.username} is not the business owner of {system.id}",
            obj,
            granted,
            system.site,
            system.id,
        )


def require_may_register(principal: Principal, site: str, business_owner: str) -> None:
    """Registering a system in ``site``: business owners register their own systems; naming another owner
    takes ``system:assign_owner`` (compliance officers)."""
    principal.require("system", "create", site)
    if business_owner != principal.username:
        principal.require("system", "assign_owner", site)


def require_may_update(principal: Principal, system: AISystem, fields: Collection[str]) -> None:
    """Who may change which fields of a system (the API's rule; pages use it too).

    A fact that decides who must sign (``SIGNOFF_FACTS``) needs the permission of the role that owns it,
    ``system.<field>`` / ``update`` in policies/policy.csv (compliance officers own personal data, AI Act role
    and owners; OT security owns zone and SL); an admin grant alone holds none. Every other field needs
    ``system:update``, or ``update_own`` on a system the caller is business owner of. Each denial is a 403
    (audited) and the request changes nothing.
    """
    facts = [f for f in fields if f in SIGNOFF_FACTS]
    for field in facts:
        principal.require(f"system.{field}", "update", system.site, entity_id=system.id, entity_type="system")
    if not facts or any(f not in SIGNOFF_FACTS for f in fields):
        granted = principal.require(
            "system",
            "update",
            system.site,
            entity_id=system.id,
            entity_type="system",
            alternatives=("update_own",),
        )
        check_ownership(principal, system, granted, "system")


def system_access(
    obj: str = "system", act: str = "read", *, for_update: bool = False
) -> Callable[..., AISystem]:
    """A dependency loading the system in the path and checking ``act`` on ``obj`` in its site.

    Where the policy grants ``<act>_own`` instead of ``act``, the caller must own the system.
    """

    def dependency(system_id: SystemId, session: SessionDep, principal: CurrentPrincipal) -> AISystem:
        if not _SYSTEM_ID.fullmatch(system_id):  # a malformed id names no system: 404, like an unknown one
            raise NotFound(f"system {system_id[:40]!r} does not exist")
        system = service.get_system(session, system_id, for_update=for_update)
        granted = principal.require(
            obj, act, system.site, entity_id=system.id, entity_type="system", alternatives=(f"{act}_own",)
        )
        check_ownership(principal, system, granted, obj)
        return system

    return dependency


SystemRead_ = Annotated[AISystem, Depends(system_access())]
