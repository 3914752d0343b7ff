"""IEC 62443 zones and conduits."""

from __future__ import annotations

from sqlmodel import Session, select

from app.audit import service as audit
from app.db import utcnow
from app.errors import Conflict, NotFound, field_error
from app.http import check_revision
from app.systems.service import ensure_site_exists
from app.zones.models import Conduit, ConduitCreate, ConduitRead, Zone, ZoneCreate, ZoneRead, ZoneUpdate

OT_MAX_PURDUE_LEVEL = 3  # IEC 62443 / Purdue: levels 0-3 are operational technology


def is_ot(zone: Zone) -> bool:
    return zone.purdue_level <= OT_MAX_PURDUE_LEVEL


def zone_read(zone: Zone) -> ZoneRead:
    return ZoneRead(
        code=zone.code,
        name=zone.name,
        site=zone.site,
        purdue_level=zone.purdue_level,
        is_ot=is_ot(zone),
        sl_target=zone.sl_target,
        revision=zone.revision,
    )


def get_zone(session: Session, code: str) -> Zone:
    zone = session.get(Zone, code)
    if zone is None:
        raise NotFound(f"zone {code!r} does not exist")
    return zone


def create_zone(session: Session, data: ZoneCreate, *, actor: str) -> Zone:
    ensure_site_exists(session, data.site, ["body", "site"])
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
    session.add(zone)
    session.flush()
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
    check_revision(zone.revision, if_match, data.revision)
    before = zone_read(zone).model_dump(mode="json")
    if data.name is not None:
        zone.name = data.name
    if data.purdue_level is not None:
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


def list_zones(session: Session, sites: set[str] | None, site: str | None = None) -> list[Zone]:
    stmt = select(Zone).order_by(Zone.site, Zone.purdue_level.desc(), Zone.code)
    if sites is not None:
        stmt = stmt.where(Zone.site.in_(sorted(sites)))
    if site is not None:
        stmt = stmt.where(Zone.site == site)
    return list(session.exec(stmt).all())


def create_conduit(session: Session, data: ConduitCreate, *, actor: str) -> Conduit:
    zones = {}
    for key in ("from_zone", "to_zone"):
        zone = session.get(Zone, getattr(data, key))
        if zone is None:
            raise field_error(["body", key], f"unknown zone {getattr(data, key)!r}")
        zones[key] = zone
    if data.from_zone == data.to_zone:
        raise field_error(["body", "to_zone"], "a conduit joins two different zones")
    if zones["from_zone"].site != zones["to_zone"].site:
        raise field_error(["body", "to_zone"], "both zones of a conduit must be in the same site")
    exists = session.exec(
        select(Conduit.id).where(Conduit.from_zone == data.from_zone, Conduit.to_zone == data.to_zone)
    ).first()
    if exists is not None:
        raise Conflict(f"a conduit from {data.from_zone} to {data.to_zone} already exists")
    conduit = Conduit(
        name=data.name,
        from_zone=data.from_zone,
        to_zone=data.to_zone,
        sl_target=data.sl_target.model_dump(),
        created_at=utcnow(),
    )
    session.add(conduit)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="conduit.create",
        entity_type="conduit",
        entity_id=str(conduit.id),
        site=zones["from_zone"].site,
        after=conduit_read(conduit).model_dump(mode="json"),
    )
    return conduit


def conduit_read(conduit: Conduit) -> ConduitRead:
    return ConduitRead.model_validate(conduit.model_dump())


def list_conduits(session: Session, sites: set[str] | None) -> list[Conduit]:
    stmt = select(Conduit).join(Zone, Zone.code == Conduit.from_zone).order_by(Conduit.id)
    if sites is not None:
        stmt = stmt.where(Zone.site.in_(sorted(sites)))
    return list(session.exec(stmt).all())
