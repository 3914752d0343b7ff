"""Registry logic for sites, lines, AI systems and model versions (no HTTP here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql import Select
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.classification.engine import AIActClass
from app.db import paginate, utcnow
from app.errors import Conflict, NotFound, Unprocessable, field_error
from app.http import PageParams, check_revision
from app.identity.models import User
from app.systems.models import (
    SIGNOFF_FACTS,
    AISystem,
    IdCounter,
    LifecycleStage,
    Line,
    LineIn,
    ModelVersion,
    RiskTier,
    Site,
    SiteCreate,
    SiteRead,
    SiteUpdate,
    SystemCreate,
    SystemOrder,
    SystemPage,
    SystemRead,
    SystemUpdate,
    VersionCreate,
    VersionRead,
    sl_gap,
    sl_unassessed,
)
from app.zones.models import Zone, ZoneFacts

# --- sites ---------------------------------------------------------------------------------------------


def ensure_site_exists(session: Session, code: str, loc: list[str | int] | None = None) -> Site:
    site = session.get(Site, code)
    if site is None:
        if loc is not None:
            raise field_error(loc, f"unknown site {code!r}")
        raise NotFound(f"site {code!r} does not exist")
    return site


def site_read(session: Session, site: Site) -> SiteRead:
    lines = session.exec(select(Line).where(Line.site == site.code).order_by(Line.code)).all()
    return SiteRead(
        code=site.code,
        name=site.name,
        lines=[LineIn(code=ln.code, name=ln.name) for ln in lines],
        created_at=site.created_at,
        revision=site.revision,
    )


def create_site(session: Session, data: SiteCreate, *, actor: str) -> Site:
    if session.get(Site, data.code) is not None:
        raise Conflict(f"site {data.code!r} already exists")
    _check_unique_lines(data.lines)
    site = Site(code=data.code, name=data.name, created_at=utcnow())
    session.add(site)
    session.flush()
    for line in data.lines:
        session.add(Line(site=site.code, code=line.code, name=line.name))
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="site.create",
        entity_type="site",
        entity_id=site.code,
        site=site.code,
        after=data.model_dump(),
    )
    return site


def _check_unique_lines(lines: list[LineIn]) -> None:
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if line.code in seen:
            raise field_error(["body", "lines", i, "code"], f"line {line.code!r} is listed twice")
        seen.add(line.code)


def update_site(session: Session, site: Site, data: SiteUpdate, *, if_match: int | None, actor: str) -> Site:
    """Rename a site or set its lines; a line that systems still run on cannot be removed."""
    check_revision(site.revision, if_match, data.revision)
    before = site_read(session, site).model_dump(mode="json")
    if data.name is not None:
        site.name = data.name
    if data.lines is not None:
        _check_unique_lines(data.lines)
        existing = {ln.code: ln for ln in session.exec(select(Line).where(Line.site == site.code)).all()}
        wanted = {ln.code: ln for ln in data.lines}
        for code, line in existing.items():
            if code not in wanted:
                in_use = session.exec(
                    select(AISystem.id).where(AISystem.site == site.code, AISystem.line == code).limit(1)
                ).first()
                if in_use:
                    raise Conflict(f"line {code!r} still has systems (e.g. {in_use}); move them first")
                session.delete(line)
            elif line.name != wanted[code].name:
                line.name = wanted[code].name
                session.add(line)
        for code, line_in in wanted.items():
            if code not in existing:
                session.add(Line(site=site.code, code=code, name=line_in.name))
    site.revision += 1
    session.add(site)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="site.update",
        entity_type="site",
        entity_id=site.code,
        site=site.code,
        before=before,
        after=site_read(session, site).model_dump(mode="json"),
    )
    return site


def list_sites(session: Session, sites: set[str] | None) -> list[Site]:
    stmt = select(Site).order_by(Site.code)
    if sites is not None:
        stmt = stmt.where(col(Site.code).in_(sites))
    return list(session.exec(stmt).all())


# --- systems -------------------------------------------------------------------------------------------


def next_id(session: Session, kind: str, prefix: str) -> str:
    """The next server-made identifier of ``kind`` (``AIS-000123``), taken inside the transaction."""
    result = session.execute(
        sa.update(IdCounter).where(col(IdCounter.kind) == kind).values(value=col(IdCounter.value) + 1)
    )
    if cast("sa.CursorResult[Any]", result).rowcount == 0:
        session.add(IdCounter(kind=kind, value=1))
        session.flush()
        value = 1
    else:
        value = session.execute(select(IdCounter.value).where(col(IdCounter.kind) == kind)).scalar_one()
    return f"{prefix}-{value:06d}"


def get_system(session: Session, system_id: str, *, for_update: bool = False) -> AISystem:
    """A live (not archived) system, or 404."""
    stmt = select(AISystem).where(AISystem.id == system_id, col(AISystem.archived_at).is_(None))
    if for_update:
        stmt = stmt.with_for_update()
    system = session.exec(stmt).first()
    if system is None:
        raise NotFound(f"system {system_id!r} does not exist")
    return system


def zone_targets(session: Session, codes: set[str]) -> dict[str, ZoneFacts]:
    """SL-T vector and Purdue level of each named zone, in one query (for ``system_read``)."""
    if not codes:
        return {}
    rows = session.execute(
        select(Zone.code, Zone.sl_target, Zone.purdue_level).where(col(Zone.code).in_(sorted(codes)))
    ).all()
    return {code: ZoneFacts(sl_target=target, purdue_level=level) for code, target, level in rows}


def system_read(system: AISystem, targets: dict[str, ZoneFacts]) -> SystemRead:
    """The API view of a system; ``targets`` comes from ``zone_targets`` (sl_gap, sl_unassessed and
    ot_system need it)."""
    data = system.model_dump()
    zone = targets.get(system.zone) if system.zone else None
    data["sl_gap"] = sl_gap(zone.sl_target if zone else None, system.sl_achieved)
    data["sl_unassessed"] = sl_unassessed(zone.sl_target if zone else None, system.sl_achieved)
    data["ot_system"] = zone.ot if zone else False
    return SystemRead.model_validate(data)


def read_one(session: Session, system: AISystem) -> SystemRead:
    targets = zone_targets(session, {system.zone} if system.zone else set())
    return with_read_extras(session, [system], [system_read(system, targets)])[0]


ReadExtra = Callable[[Session, list[AISystem]], dict[str, dict[str, Any]]]
_read_extras: list[ReadExtra] = []


def register_read_extra(extra: ReadExtra) -> None:
    """Let another domain fill computed fields of ``SystemRead`` (e.g. ``monitoring``), one call per page."""
    _read_extras.append(extra)


def registered_read_extras() -> tuple[ReadExtra, ...]:
    """Every registered read field (``app.wiring`` checks that none is missing)."""
    return tuple(_read_extras)


def with_read_extras(session: Session, rows: list[AISystem], reads: list[SystemRead]) -> list[SystemRead]:
    """``reads`` with the fields registered domains compute for ``rows`` (same order) filled in."""
    for extra in _read_extras:
        values = extra(session, rows)
        for read in reads:
            for key, value in values.get(read.id, {}).items():
                setattr(read, key, value)
    return reads


def _validate_refs(session: Session, site: str, values: dict[str, Any]) -> None:
    """Check that line, owners and zone named in a create or update exist and belong to the site."""
    errors: list[dict[str, Any]] = []
    line = values.get("line")
    if line is not None:
        exists = session.exec(select(Line.id).where(Line.site == site, Line.code == line)).first()
        if exists is None:
            errors.append({"loc": ["body", "line"], "msg": f"site {site} has no line {line!r}"})
    for key in ("business_owner", "technical_owner"):
        username = values.get(key)
        if (
            username is not None
            and session.exec(select(User.id).where(User.username == username)).first() is None
        ):
            errors.append({"loc": ["body", key], "msg": f"unknown user {username!r}"})
    zone_code = values.get("zone")
    if zone_code is not None:
        zone = session.get(Zone, zone_code)
        if zone is None:
            errors.append({"loc": ["body", "zone"], "msg": f"unknown zone {zone_code!r}"})
        elif zone.site != site:
            errors.append({"loc": ["body", "zone"], "msg": f"zone {zone_code!r} belongs to site {zone.site}"})
    if errors:
        raise Unprocessable("; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in errors), errors=errors)


def create_system(session: Session, data: SystemCreate, *, actor: str) -> AISystem:
    ensure_site_exists(session, data.site, ["body", "site"])
    values = data.model_dump()
    _validate_refs(session, data.site, values)
    if data.sl_achieved is not None:
        values["sl_achieved"] = data.sl_achieved.model_dump()
    now = utcnow()
    system = AISystem(id=next_id(session, "system", "AIS"), created_at=now, updated_at=now, **values)
    session.add(system)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="system.create",
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        after=system.model_dump(mode="json"),
    )
    return system


@dataclass
class SystemFilters:
    site: str | None = None
    line: str | None = None
    ai_act_class: AIActClass | None = None
    risk_tier: RiskTier | None = None
    lifecycle_stage: LifecycleStage | None = None
    zone: str | None = None
    business_owner: str | None = None
    q: str | None = None


# A list counts its rows up to this many past its offset; beyond, ``total_exact`` is false (issue 17: an exact
# count of a million rows costs more than the whole page).
COUNT_LIMIT = 1000
# The trigram search index finds substrings of at least 3 characters; shorter ones are matched row by row.
SEARCH_MIN_CHARS = 3
# SQLite: a search with at most this many index matches is read from the index outward (each match looked
# up by rowid); one with more is checked row by row in list order, where matches come soon.
SEARCH_DRIVE_LIMIT = 4000


@dataclass(frozen=True)
class SystemQuery:
    """The statement of a systems list and its order, as ``paginate`` and ``page_systems`` take them."""

    statement: Select[AISystem]
    ordering: list[Any]


def systems_query(
    session: Session,
    filters: SystemFilters,
    *,
    sites: set[str] | None,
    order: SystemOrder = SystemOrder.id,
    descending: bool = False,
) -> SystemQuery | None:
    """Live systems in ``sites`` (``None`` = every site) that match ``filters``; ``None`` when no site is
    readable."""
    if sites is not None and not sites:
        return None
    sqlite = session.get_bind().dialect.name == "sqlite"
    q = filters.q
    searched = bool(sqlite and q and len(q) >= SEARCH_MIN_CHARS)
    drive = searched and q is not None and _index_matches(session, q) <= SEARCH_DRIVE_LIMIT

    def column(name: str) -> Any:
        # SQLite's "+column" is the same value, but no index may serve it: the plan starts from the index
        return _unindexed(_TABLE.c[name]) if drive else _TABLE.c[name]

    conditions: list[Any] = [column("archived_at").is_(None)]
    if sites is not None:
        conditions.append(column("site").in_(sorted(sites)))
    for name in ("site", "line", "ai_act_class", "risk_tier", "lifecycle_stage", "zone", "business_owner"):
        value = getattr(filters, name)
        if value is not None:
            conditions.append(column(name) == value)
    if q:
        use_index = drive or (searched and not q.isascii())
        conditions.append(_search_index_match(q) if use_index else _text_match(q, sqlite=sqlite))
    ordered = column(order.value)
    ordering = [ordered.desc() if descending else ordered.asc()]
    if order is not SystemOrder.id:
        ordering.append(column("id").asc())
    return SystemQuery(sa.select(AISystem).where(*conditions), ordering)


_TABLE = AISystem.metadata.tables["ai_system"]


def _unindexed(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


def _text_match(q: str, *, sqlite: bool) -> sa.ColumnElement[bool]:
    """``q`` anywhere in name or purpose, ignoring case, compared row by row (PostgreSQL's trigram indexes
    serve it)."""
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    # SQLite's LIKE already ignores (ASCII) case, as its lower() does: skipping lower() halves a scan.
    return sa.or_(
        *(
            column.like(pattern, escape="\\") if sqlite else column.ilike(pattern, escape="\\")
            for column in (_TABLE.c.name, _TABLE.c.purpose)
        )
    )


_SEARCH = sa.table("ai_system_search", sa.column("rowid"))


def _search_phrase(q: str) -> str:
    """``q`` as one FTS5 phrase: with the trigram tokenizer it matches ``q`` as a substring, ignoring case."""
    return '"' + q.replace('"', '""') + '"'


def _search_rowids(q: str) -> Select[tuple[Any]]:
    """SQLite: the rowids of the systems whose name or purpose holds ``q`` (3 characters or more)."""
    return select(_SEARCH.c.rowid).where(sa.literal_column("ai_system_search").op("MATCH")(_search_phrase(q)))


def _search_index_match(q: str) -> sa.ColumnElement[bool]:
    return sa.literal_column("ai_system.rowid").in_(_search_rowids(q))


def _index_matches(session: Session, q: str) -> int:
    """How many systems the search index finds for ``q``, counted up to ``SEARCH_DRIVE_LIMIT + 1``."""
    found = _search_rowids(q).limit(SEARCH_DRIVE_LIMIT + 1).subquery()
    return int(session.execute(select(sa.func.count()).select_from(found)).scalar_one())


def _reads(session: Session, rows: list[AISystem]) -> list[SystemRead]:
    targets = zone_targets(session, {s.zone for s in rows if s.zone})
    return with_read_extras(session, rows, [system_read(s, targets) for s in rows])


def list_systems(
    session: Session,
    filters: SystemFilters,
    *,
    sites: set[str] | None,
    page: PageParams,
    order: SystemOrder = SystemOrder.id,
    descending: bool = False,
) -> tuple[list[SystemRead], int]:
    """Filtered, ordered page of live systems in ``sites`` (``None`` = every site), with the exact total."""
    query = systems_query(session, filters, sites=sites, order=order, descending=descending)
    if query is None:
        return [], 0
    rows, total = paginate(session, query.statement, page, *query.ordering)
    return _reads(session, rows), total


def page_systems(session: Session, query: SystemQuery | None, page: PageParams) -> SystemPage:
    """A page of ``systems_query``'s systems for the API; the total is counted up to ``COUNT_LIMIT`` rows
    past the offset (an exact count of a large portfolio costs more than the page)."""
    if query is None:
        return SystemPage(items=[], total=0, limit=page.limit, offset=page.offset)
    rows = session.execute(
        query.statement.order_by(*query.ordering).limit(page.limit).offset(page.offset)
    ).scalars()
    items = _reads(session, list(rows))
    limit = page.offset + COUNT_LIMIT
    some = query.statement.with_only_columns(sa.literal(1), maintain_column_froms=True).limit(limit + 1)
    counted = session.execute(select(sa.func.count()).select_from(some.subquery())).scalar_one()
    return SystemPage(
        items=items,
        total=min(counted, limit),
        limit=page.limit,
        offset=page.offset,
        total_exact=counted <= limit,
    )


def update_system(
    session: Session, system: AISystem, data: SystemUpdate, *, if_match: int | None, actor: str
) -> AISystem:
    check_revision(system.revision, if_match, data.revision)
    changes = update_changes(data)
    _validate_refs(session, system.site, changes)
    before = system.model_dump(mode="json")
    facts_changed = changed_facts(system, changes)
    for key, value in changes.items():
        setattr(system, key, value)
    system.revision += 1
    if facts_changed:
        system.facts_revision += 1  # voids approvals granted on the old facts (CHANGED_SINCE_APPROVAL)
    system.updated_at = utcnow()
    session.add(system)
    session.flush()
    after = system.model_dump(mode="json")
    audit.record(
        session,
        actor=actor,
        action="system.update",
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        before={k: before[k] for k in changes},
        after={k: after[k] for k in changes}
        | {"revision": system.revision}
        | ({"facts_revision": system.facts_revision} if facts_changed else {}),
    )
    return system


def update_changes(data: SystemUpdate) -> dict[str, Any]:
    """The fields a PATCH sets, as they will be stored."""
    changes = data.model_dump(exclude_unset=True, exclude={"revision"})
    if "sl_achieved" in changes and data.sl_achieved is not None:
        changes["sl_achieved"] = data.sl_achieved.model_dump()
    return changes


def changed_facts(system: AISystem, changes: dict[str, Any]) -> list[str]:
    """The SIGNOFF_FACTS whose value ``changes`` would change."""
    return [
        name
        for name in SIGNOFF_FACTS
        if name in changes and _stored(changes[name]) != _stored(getattr(system, name))
    ]


def _stored(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def history_counts(session: Session, system_id: str) -> dict[str, int]:
    """How many dependent records (versions, classifications, approvals, ...) a system has.

    Every table with a foreign key to ``ai_system.id`` counts, so a new domain cannot be forgotten here;
    any record there forbids a plain delete (it would orphan or erase history).
    """
    counts: dict[str, int] = {}
    for name, column in _history_columns().items():
        counts[name] = session.execute(
            sa.select(sa.func.count()).select_from(column.table).where(column == system_id)
        ).scalar_one()
    return counts


_dependents: dict[str, sa.Table] = {}


def register_dependent(name: str, table: sa.Table) -> None:
    """Declare a table without a foreign key to ``ai_system`` whose ``system_id`` rows keep a system."""
    _dependents[name] = table


def registered_dependent(name: str) -> sa.Table | None:
    """The history table registered under ``name``, if any (``app.wiring`` checks that none is missing)."""
    return _dependents.get(name)


def _history_columns() -> dict[str, sa.Column[Any]]:
    from app import models  # every table, so that each domain's references are known

    versions = models.metadata.tables["model_version"]
    columns: dict[str, sa.Column[Any]] = {"versions": versions.c.system_id}
    for table in models.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column is _TABLE.c.id and table is not versions:
                columns[table.name] = fk.parent
    for name, table in _dependents.items():
        columns.setdefault(name, table.c.system_id)
    return columns


def delete_system(session: Session, system: AISystem, *, if_match: int | None, actor: str) -> str:
    """Delete a system: refused while it has history, unless retired, and then archived, never erased.

    Returns ``deleted`` or ``archived``.
    """
    if if_match is not None:
        check_revision(system.revision, if_match, None)
    counts = history_counts(session, system.id)
    has_history = any(counts.values())
    before = system.model_dump(mode="json")
    if has_history and system.lifecycle_stage is not LifecycleStage.retired:
        detail = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        raise Conflict(
            f"system {system.id} has history ({detail}); retire it first (lifecycle_stage=retired)",
            history=counts,
        )
    if has_history:
        system.archived_at = utcnow()
        system.revision += 1
        session.add(system)
        outcome = "archived"
    else:
        session.delete(system)
        outcome = "deleted"
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"system.{'archive' if outcome == 'archived' else 'delete'}",
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        before=before,
    )
    return outcome


# --- model versions ------------------------------------------------------------------------------------


def version_read(v: ModelVersion) -> VersionRead:
    return VersionRead.model_validate(v.model_dump())


def create_version(session: Session, system: AISystem, data: VersionCreate, *, actor: str) -> ModelVersion:
    if system.lifecycle_stage is LifecycleStage.retired:
        raise Conflict(f"system {system.id} is retired; it takes no new versions")
    duplicate = session.exec(
        select(ModelVersion.id).where(
            ModelVersion.system_id == system.id, ModelVersion.version == data.version
        )
    ).first()
    taken = f"system {system.id} already has version {data.version!r}; versions are immutable"
    if duplicate is not None:
        raise Conflict(taken)
    version = ModelVersion(system_id=system.id, created_by=actor, created_at=utcnow(), **data.model_dump())
    try:
        with session.begin_nested():  # a concurrent insert of the same version loses here: 409, not 500
            session.add(version)
    except sa.exc.IntegrityError:
        raise Conflict(taken) from None
    audit.record(
        session,
        actor=actor,
        action="version.create",
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        after={
            "version": version.version,
            "artifact_digest": version.artifact_digest,
            "metrics": version.metrics,
        },
    )
    return version


def list_versions(session: Session, system_id: str, page: PageParams) -> tuple[list[ModelVersion], int]:
    statement = sa.select(ModelVersion).where(col(ModelVersion.system_id) == system_id)
    newest_first = col(ModelVersion.created_at).desc(), col(ModelVersion.id).desc()
    return paginate(session, statement, page, *newest_first)


def get_version(session: Session, system_id: str, version: str) -> ModelVersion | None:
    return session.exec(
        select(ModelVersion).where(ModelVersion.system_id == system_id, ModelVersion.version == version)
    ).first()
