"""IEC 62443 zones and conduits (no HTTP here)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.classification.catalog import get_catalog
from app.db import paginate, utcnow
from app.errors import Conflict, NotFound, field_error
from app.http import PageParams, check_revision
from app.systems.service import ensure_site_exists
from app.zones.models import (
    Conduit,
    ConduitCreate,
    ConduitRead,
    Zone,
    ZoneCreate,
    ZoneRead,
    ZoneUpdate,
    is_ot_level,
)


def is_ot(zone: Zone) -> bool:
    """Whether the zone holds operational technology (Purdue levels 0-3)."""
    return is_ot_level(zone.purdue_level)


def zone_read(zone: Zone) -> ZoneRead:
    """The API view of a zone."""
    return ZoneRead(
        code=zone.code,
        name=zone.name,
        site=zone.site,
        purdue_level=zone.purdue_level,
        is_ot=is_ot(zone),
        sl_target=zone.sl_target,
        created_at=zone.created_at,
        revision=zone.revision,
    )


def _check_purdue_level(level: float) -> None:
    """The level must be one the catalogue's Purdue model lists (e.g. 3.5 = industrial DMZ, not 2.7)."""
    known = get_catalog().iec62443.purdue_by_level
    if level not in known:
        levels = ", ".join(f"{lv:g}" for lv in sorted(known))
        raise field_error(["body", "purdue_level"], f"unknown Purdue level {level:g}; one of {levels}")


def get_zone(session: Session, code: str) -> Zone:
    """A zone by code, or 404."""
    zone = session.get(Zone, code)
    if zone is None:
        raise NotFound(f"zone {code!r} does not exist")
    return zone


def zone_ref(session: Session, code: str, loc: list[str | int]) -> Zone:
    """A zone named in a request body, or a 422 naming that field."""
    zone = session.get(Zone, code)
    if zone is None:
        raise field_error(loc, f"unknown zone {code!r}")
    return zone


def _insert(session: Session, row: Zone | Conduit, conflict: str) -> None:
    """Add and flush a new row; a unique key a concurrent create took first is a 409 ``conflict``."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(conflict) from exc


def create_zone(session: Session, data: ZoneCreate, *, actor: str) -> Zone:
    """Create a zone in an existing site; the code is unique across sites."""
    ensure_site_exists(session, data.site, ["body", "site"])
    _check_purdue_level(data.purdue_level)
    if session.get(Zone, data.code) is not None:
        raise Conflict(f"zone {data.code!r} already exists")
    zone = Zone(
        code=data.code,
        name=data.name,
        site=data.site,
        purdue_level=data.purdue_level,
        sl_target=data.sl_target.model_dump(),
        created_at=utcnow(),
    )
    _insert(session, zone, f"zone {data.code!r} already exists")  # a concurrent create of the same code
    audit.record(
        session,
        actor=actor,
        action="zone.create",
        entity_type="zone",
        entity_id=zone.code,
        site=zone.site,
        after=zone_read(zone).model_dump(mode="json"),
    )
    return zone


def update_zone(session: Session, zone: Zone, data: ZoneUpdate, *, if_match: int | None, actor: str) -> Zone:
    """Rename a zone or change its Purdue level or SL-T; systems' sl_gap and ot_system follow at once."""
    check_revision(zone.revision, if_match, data.revision)
    before = zone_read(zone).model_dump(mode="json")
    if data.name is not None:
        zone.name = data.name
    if data.purdue_level is not None:
        _check_purdue_level(data.purdue_level)
        zone.purdue_level = data.purdue_level
    if data.sl_target is not None:
        zone.sl_target = data.sl_target.model_dump()
    zone.revision += 1
    session.add(zone)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="zone.update",
        entity_type="zone",
        entity_id=zone.code,
        site=zone.site,
        before=before,
        after=zone_read(zone).model_dump(mode="json"),
    )
    return zone


def _zone_site_conditions(sites: set[str] | None, site: str | None) -> list[sa.ColumnElement[bool]] | None:
    """Conditions on ``Zone.site`` keeping ``sites`` (``None`` = every site) and ``site`` if given;
    ``None`` when no site is readable, so the list is empty."""
    if sites is not None and not sites:
        return None
    conditions: list[sa.ColumnElement[bool]] = []
    if sites is not None:
        conditions.append(col(Zone.site).in_(sorted(sites)))
    if site is not None:
        conditions.append(col(Zone.site) == site)
    return conditions


def list_zones(
    session: Session, sites: set[str] | None, page: PageParams, site: str | None = None
) -> tuple[list[Zone], int]:
    """A page of the zones in ``sites`` (``None`` = every site), by site, then Purdue level top down."""
    conditions = _zone_site_conditions(sites, site)
    if conditions is None:
        return [], 0
    return paginate(
        session,
        select(Zone).where(*conditions),
        page,
        col(Zone.site),
        col(Zone.purdue_level).desc(),
        col(Zone.code),
    )


# --- conduits ------------------------------------------------------------------------------------------


def create_conduit(session: Session, data: ConduitCreate, *, actor: str) -> Conduit:
    """Join two distinct zones of one site; one conduit per direction between two zones."""
    if data.from_zone == data.to_zone:
        raise field_error(["body", "to_zone"], "a conduit joins two different zones")
    zones = {key: zone_ref(session, getattr(data, key), ["body", key]) for key in ("from_zone", "to_zone")}
    if zones["from_zone"].site != zones["to_zone"].site:
        raise field_error(
            ["body", "to_zone"],
            f"both zones of a conduit must be in one site ({data.from_zone} is in {zones['from_zone'].site})",
        )
    duplicate = f"a conduit from {data.from_zone} to {data.to_zone} already exists"
    exists = session.exec(
        select(Conduit.id).where(Conduit.from_zone == data.from_zone, Conduit.to_zone == data.to_zone)
    ).first()
    if exists is not None:
        raise Conflict(duplicate, conduit_id=exists)
    conduit = Conduit(
        name=data.name,
        from_zone=data.from_zone,
        to_zone=data.to_zone,
        sl_target=data.sl_target.model_dump(),
        created_at=utcnow(),
    )
    _insert(session, conduit, duplicate)  # a concurrent create of the same pair
    site = zones["from_zone"].site
    audit.record(
        session,
        actor=actor,
        action="conduit.create",
        entity_type="conduit",
        entity_id=str(conduit.id),
        site=site,
        after=conduit_read(conduit, site).model_dump(mode="json"),
    )
    return conduit


def conduit_read(conduit: Conduit, site: str) -> ConduitRead:
    """The API view of a conduit in ``site``."""
    return ConduitRead.model_validate({**conduit.model_dump(), "site": site})


def get_conduit(session: Session, conduit_id: int) -> tuple[Conduit, str]:
    """A conduit and its site, or 404."""
    row = session.execute(
        select(Conduit, Zone.site)
        .join(Zone, col(Zone.code) == col(Conduit.from_zone))
        .where(col(Conduit.id) == conduit_id)
    ).first()
    if row is None:
        raise NotFound(f"conduit {conduit_id} does not exist")
    return row[0], row[1]


def list_conduits(
    session: Session,
    sites: set[str] | None,
    page: PageParams,
    *,
    site: str | None = None,
    zone: str | None = None,
) -> tuple[list[tuple[Conduit, str]], int]:
    """A page of conduits (with their site) in ``sites``; ``zone`` keeps those touching that zone."""
    conditions = _zone_site_conditions(sites, site)
    if conditions is None:
        return [], 0
    if zone is not None:
        conditions.append(sa.or_(col(Conduit.from_zone) == zone, col(Conduit.to_zone) == zone))
    conduits, total = paginate(
        session,
        select(Conduit).join(Zone, col(Zone.code) == col(Conduit.from_zone)).where(*conditions),
        page,
        col(Conduit.id),
    )
    from_zones = sorted({c.from_zone for c in conduits})
    site_of = dict(session.exec(select(Zone.code, Zone.site).where(col(Zone.code).in_(from_zones))).all())
    return [(c, site_of[c.from_zone]) for c in conduits], total
