"""The release gate: may version V of system S run in environment E, right now?

This is the hot path that pipelines call on every deployment, so it is built to be cheap: ONE statement of
indexed point lookups (token and user, system, zone, version, newest classification basis, every request
for this release with its reclassification flag and signed roles), built with SQLAlchemy Core from the
domains' own columns and rules, compiled once per dialect and run on a bare DBAPI connection (SQLite: one
the thread keeps; PostgreSQL: a psycopg async pool, ``app.approvals.gate_db``), each row read as one JSON
object by column name. Reads are autocommit: each statement is its own snapshot of what is committed. No
data read is cached across calls; only pure results are remembered: the rule table (read at start),
Casbin's decisions (invalidated with every grant change), and what other domains' rules make of identical
inputs.

Other domains add reasons through ``register_release_check``: a ``ReleaseCheck`` declares its Core
statements and a pure function of their rows. Their statements ride in the gate's one statement, each as a
column holding its rows as a JSON array (``RowsAsJson``), so an answer is one round trip on either path,
whatever the number of checks.

Reasons carry ``severity``: ``error`` reasons deny; ``warning`` reasons (e.g. ``SL_GAP_ACCEPTED``) may
accompany an allowed answer. A denial always has at least one error reason.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, NamedTuple, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import SQLModel, col

from app.approvals.models import ApprovalState, Environment
from app.approvals.rules import Facts, Rules
from app.approvals.service import (
    approval_order,
    effective_state,
    facts_changed,
    failed_condition,
    reclassified_since,
)
from app.classification.models import Classification
from app.classification.service import current_classification_statement
from app.db import UTCDateTime
from app.errors import NotFound
from app.identity import authz
from app.identity import service as identity
from app.identity.dependencies import Principal
from app.systems.models import sl_gap, sl_unassessed
from app.zones.models import is_ot_level

Reason = dict[str, str]
Row = dict[str, Any]

NOT_CLASSIFIED = "NOT_CLASSIFIED"
PROHIBITED = "PROHIBITED"
UNKNOWN_VERSION = "UNKNOWN_VERSION"
DIGEST_MISMATCH = "DIGEST_MISMATCH"  # the pinned artifact is not the one registered for the version
CHANGED_SINCE_APPROVAL = "CHANGED_SINCE_APPROVAL"
NO_APPROVAL = "NO_APPROVAL"
APPROVAL_PENDING = "APPROVAL_PENDING"
APPROVAL_REJECTED = "APPROVAL_REJECTED"
APPROVAL_EXPIRED = "APPROVAL_EXPIRED"
APPROVAL_REVOKED = "APPROVAL_REVOKED"
RECLASSIFIED_SINCE_APPROVAL = "RECLASSIFIED_SINCE_APPROVAL"
SUSPENDED_BY_INCIDENT = "SUSPENDED_BY_INCIDENT"
SYSTEM_RETIRED = "SYSTEM_RETIRED"
CONDITION_NOT_MET = "CONDITION_NOT_MET"
SL_GAP_ACCEPTED = "SL_GAP_ACCEPTED"  # warning
REQUIREMENTS_OPEN = "REQUIREMENTS_OPEN"  # error when binding today, warning when not yet


def error(code: str, message: str) -> Reason:
    return {"code": code, "message": message, "severity": "error"}


def warning(code: str, message: str) -> Reason:
    return {"code": code, "message": message, "severity": "warning"}


# --- Core statements on bare DBAPI connections --------------------------------------------------------------

_DIALECTS: dict[str, sa.Dialect] = {
    "sqlite": sqlite.dialect(paramstyle="named"),
    "postgresql": postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]  # untyped constructor
}


def _dt(value: datetime | str | None) -> datetime | None:
    """A stored ``UTCDateTime`` as an aware datetime (SQLite gives ISO text, psycopg a datetime)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _decoder(column: sa.ColumnElement[Any]) -> Callable[[Any], Any] | None:
    """How to read a selected column from its JSON value: a ``RowsAsJson`` as rows, else by its type."""
    element = column.element if isinstance(column, sa.Label) else column
    if isinstance(element, RowsAsJson):
        return element.decode
    return _value_decoder(column.type)


def _value_decoder(column_type: sa.types.TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """Times and dates arrive as ISO text, SQLite's booleans as 0/1; JSON columns arrive as data already."""
    if isinstance(column_type, UTCDateTime):
        return _dt
    if isinstance(column_type, sa.Date) and not isinstance(column_type, sa.DateTime):
        return _date
    if isinstance(column_type, sa.Boolean):
        return _bool
    return None


class RowsAsJson(sa.ColumnElement[Any]):
    """A statement's rows as ONE value, a JSON array of objects keyed by column name: how the gate's single
    statement carries the rows of the other domains' checks (an uncorrelated scalar subquery, so the
    database computes it once however many rows the outer statement has). ``decode`` turns the value
    back into rows by name, each column read as ``Compiled.rows`` reads it; rows come in no set order."""

    inherit_cache = False
    type = sa.JSON()

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement
        self._decoders: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
            (name, d)
            for name, c in zip(statement.selected_columns.keys(), statement.selected_columns, strict=True)
            if (d := _value_decoder(c.type)) is not None
        )

    def decode(self, value: list[Row] | None) -> list[Row]:
        rows = value or []
        for row in rows:
            for name, decode in self._decoders:
                row[name] = decode(row[name])
        return rows

    def as_dialect(self, dialect: str) -> sa.ScalarSelect[Any]:
        rows = self.statement.subquery("r")
        pairs: list[Any] = []
        for c in rows.c:
            value = sa.func.json(c) if dialect == "sqlite" and isinstance(c.type, sa.JSON) else c
            pairs += [sa.literal_column(f"'{c.key}'"), value]  # keys: the statement's own column names
        if dialect == "sqlite":
            aggregate = sa.func.json_group_array(sa.func.json_object(*pairs))
        else:
            aggregate = sa.func.coalesce(sa.func.json_agg(sa.func.json_build_object(*pairs)), sa.text("'[]'"))
        return sa.select(aggregate).select_from(rows).scalar_subquery()


@compiles(RowsAsJson)
def _compile_rows_as_json(element: RowsAsJson, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.as_dialect(compiler.dialect.name), **kw)


@dataclass(frozen=True)
class Compiled:
    """One statement as one dialect's SQL, with its constant parameters and a decoder per column.

    The SQL gives each row as ONE JSON object keyed by column name (``json_object`` on SQLite,
    ``row_to_json`` on PostgreSQL), read by orjson in one call: cheaper for the driver than a value per
    column (a dozen of them JSON), and rows by name without a mapping step."""

    sql: str
    defaults: dict[str, Any]
    decoders: tuple[tuple[str, Callable[[Any], Any]], ...]

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        return {name: given.get(name, default) for name, default in self.defaults.items()}

    def rows(self, fetched: list[Any]) -> list[Row]:
        rows: list[Row] = [orjson.loads(values[0]) for values in fetched]
        for row in rows:
            for name, decode in self.decoders:
                row[name] = decode(row[name])
        return rows


SQLITE_MAX_COLUMNS = 63  # json_object takes two arguments a column; SQLite allows 127 arguments a call


def _json_rows(sql: str, columns: Mapping[str, sa.ColumnElement[Any]], dialect: str) -> str:
    """``sql``'s rows as one JSON object each (see ``Compiled``)."""
    if dialect == "postgresql":
        return f"SELECT row_to_json(g)::text FROM ({sql}) AS g"  # json columns nest as data
    # SQLite: a JSON column is text; json() makes it nest as data.
    if len(columns) > SQLITE_MAX_COLUMNS:
        raise ValueError(f"a gate statement reads at most {SQLITE_MAX_COLUMNS} columns on SQLite")
    pairs = ", ".join(
        f"'{name}', " + (f'json(g."{name}")' if isinstance(c.type, sa.JSON) else f'g."{name}"')
        for name, c in columns.items()
    )
    return f"SELECT json_object({pairs}) FROM ({sql}) AS g"


class GateQuery:
    """A Core statement compiled once per dialect, run on bare DBAPI connections, rows read by column name.

    Bind parameters by name (``sid``, ``ver``, ``env``, ``h``); constants in the statement are bound too.
    """

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, Compiled] = {}

    def compiled(self, dialect: str) -> Compiled:
        done = self._compiled.get(dialect)
        if done is None:
            done = self._compiled[dialect] = self._compile(dialect)
        return done

    def _compile(self, dialect: str) -> Compiled:
        compiled = self.statement.compile(
            dialect=_DIALECTS[dialect], compile_kwargs={"render_postcompile": True}
        )
        sql = compiled.string
        marker = ":{}" if dialect == "sqlite" else "%({})s"
        defaults = {
            k: v.value if isinstance(v, Enum) else v
            for k, v in compiled.params.items()
            if marker.format(k) in sql  # parameters rendered inline by the compiler are not sent
        }
        columns = dict(
            zip(self.statement.selected_columns.keys(), self.statement.selected_columns, strict=True)
        )
        decoders = tuple((name, d) for name, c in columns.items() if (d := _decoder(c)) is not None)
        return Compiled(_json_rows(sql, columns, dialect), defaults, decoders)


class RawReader:
    """Runs ``GateQuery`` statements on one sync DBAPI connection (sqlite3, or psycopg inside a session)."""

    def __init__(self, dbapi_connection: Any, dialect: str) -> None:
        self.cursor = dbapi_connection.cursor()
        self.dialect = dialect

    def rows(self, query: GateQuery, params: Mapping[str, Any]) -> list[Row]:
        compiled = query.compiled(self.dialect)
        self.cursor.execute(compiled.sql, compiled.params(params))
        return compiled.rows(self.cursor.fetchall())


class ConnectionLost(Exception):
    """The held database connection failed; it has been dropped (the next use opens a fresh one)."""


SQLITE_CACHE_KIB = 65_536  # 64 MiB page cache for the gate's own connection
SQLITE_MMAP_BYTES = 1 << 30  # map up to 1 GiB of the database file


class _Held(threading.local):
    engine: Any = None
    connection: Any = None
    reader: RawReader | None = None


_held = _Held()


def _discard(held: _Held) -> None:
    connection, held.connection, held.engine, held.reader = held.connection, None, None, None
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.close()


def _open(engine: Engine) -> Any:
    """A DBAPI connection taken from the engine's pool (so its connect-time setup has run), detached from
    the pool and switched to autocommit: every statement on it is its own read snapshot, and its mode can
    never leak back into the pool's connections."""
    connection = engine.raw_connection()
    if engine.dialect.name == "postgresql":
        connection.driver_connection.autocommit = True  # type: ignore[union-attr]  # psycopg's connection
    connection.detach()
    if engine.dialect.name == "sqlite":
        # Already autocommit (isolation_level=None, app.db). This long-lived, read-only connection gets a
        # larger page cache and memory-mapped reads: the lookups then cost no read() system calls.
        cursor = connection.cursor()
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
        cursor.close()
    return connection


@contextmanager
def raw_reader(engine: Engine) -> Iterator[RawReader]:
    """A ``RawReader`` on the connection this thread keeps (replaced when it fails or the engine changes)."""
    held = _held
    if held.reader is None or held.engine is not engine:
        _discard(held)
        held.connection = _open(engine)
        held.engine = engine
        held.reader = RawReader(held.connection, engine.dialect.name)
    dbapi = engine.dialect.loaded_dbapi
    try:
        yield held.reader
    except (dbapi.OperationalError, dbapi.InterfaceError) as exc:
        _discard(held)
        raise ConnectionLost(str(exc)) from exc


# --- the gate's statement ---------------------------------------------------------------------------------


def param(name: str) -> sa.BindParameter[Any]:
    """A bind parameter of a gate statement: ``sid``, ``ver``, ``env`` (and ``h``, the token's hash)."""
    return sa.bindparam(name, None)  # a value (None) makes it optional, so statements compile ahead of use


def _table(name: str) -> sa.Table:
    return SQLModel.metadata.tables[name]


def newest_classification(*columns: Any, system_id: Any) -> sa.Select[Any]:
    """``columns`` of a system's current classification (``system_id``: a bound parameter or a column)."""
    # current_classification_statement is typed for an id value; a parameter or column works the same there
    return current_classification_statement(cast(str, system_id)).with_only_columns(*columns)


def _gate_statement(with_token: bool, checks: tuple[ReleaseCheck, ...]) -> sa.Select[Any]:
    """What the answer needs, in one statement: the token's owner (no row: unknown token), the system (NULL
    ``system_id``: unknown), its zone, the requested version, the basis of its newest classification, and
    one row per request for this release, each flagged when the system was classified into another class
    since, with the roles signed so far; and the rows of every check's statements (``RowsAsJson``)."""
    s, z, v = _table("ai_system"), _table("zone"), _table("model_version")
    a, so = _table("approval_request"), _table("sign_off")
    sid, ver, env = param("sid"), param("ver"), param("env")
    release_columns = (
        s.c.id.label("system_id"),
        s.c.site,
        s.c.ai_act_class,
        s.c.lifecycle_stage,
        s.c.personal_data,
        s.c.sl_achieved,
        s.c.archived_at,
        s.c.risk_tier,
        s.c.facts_revision,
        z.c.purdue_level,
        z.c.sl_target,
        v.c.artifact_digest.label("digest"),
        v.c.metrics,
        newest_classification(col(Classification.basis), system_id=s.c.id).scalar_subquery().label("basis"),
        a.c.id.label("approval_id"),
        a.c.state,
        a.c.artifact_digest.label("approval_digest"),
        a.c.valid_until,
        a.c.classification_id,
        a.c.ai_act_class.label("approval_class"),
        a.c.required_signoffs,
        a.c.conditions,
        a.c.sl_gap,
        a.c.created_at,
        a.c.close_reason,
        a.c.facts_revision.label("approval_facts_revision"),
        reclassified_since().label("reclassified"),
        sa.select(sa.func.aggregate_strings(so.c.role, ","))
        .where(so.c.approval_id == a.c.id)
        .scalar_subquery()
        .label("signed"),
        *(
            RowsAsJson(statement).label(_check_column(i, name))
            for i, check in enumerate(checks)
            for name, statement in check.statement_map.items()
        ),
    )

    def release(left: sa.FromClause) -> sa.Join:
        return (
            left.outerjoin(s, s.c.id == sid)
            .outerjoin(z, z.c.code == s.c.zone)
            .outerjoin(v, sa.and_(v.c.system_id == s.c.id, v.c.version == ver))
            .outerjoin(a, sa.and_(a.c.system_id == s.c.id, a.c.version == ver, a.c.environment == env))
        )

    if not with_token:
        anchor = sa.select(sa.literal(1).label("one")).subquery("k")
        return sa.select(*release_columns).select_from(release(anchor))
    t, u = _table("api_token"), _table("app_user")
    return (
        sa.select(*identity.TOKEN_OWNER_COLUMNS, *release_columns)
        .select_from(release(t.join(u, u.c.id == t.c.user_id)))
        .where(t.c.token_hash == param("h"))
    )


def _check_column(index: int, name: str) -> str:
    return f"check{index}_{name}"


_gate_queries: dict[tuple[bool, tuple[ReleaseCheck, ...]], GateQuery] = {}


def gate_query(environment: str, *, with_token: bool) -> tuple[GateQuery, tuple[ReleaseCheck, ...]]:
    """The one statement of an answer in ``environment`` (``with_token``: it also finds the caller by the
    token's hash, bound as ``h``), and the checks whose rows it carries, in registration order."""
    checks = tuple(release_checks(environment))
    key = (with_token, checks)
    query = _gate_queries.get(key)
    if query is None:
        if len(_gate_queries) > 64:  # checks replaced (tests): forget the statements of old sets
            _gate_queries.clear()
        query = _gate_queries[key] = GateQuery(_gate_statement(with_token, checks))
    return query, checks


def gate_params(system_id: str, version: str, environment: str, token: str | None = None) -> dict[str, Any]:
    """The bind parameters of every gate statement (release checks use the same names)."""
    params: dict[str, Any] = {"sid": system_id, "ver": version, "env": environment}
    if token is not None:
        params["h"] = identity.hash_token(token)
    return params


def authenticate(
    rows: list[Row], now: datetime, get_authorizer: Callable[[int], authz.Authorizer] = authz.authorizer_for
) -> tuple[Principal, bool]:
    """The caller behind the token of ``rows`` (``gate_query(..., with_token=True)``), and whether its
    ``last_used_at`` is due to be refreshed; 401 by the same rules as every other endpoint
    (``identity.token_owner``)."""
    owner = identity.token_owner(rows[0] if rows else None, now)
    principal = Principal(
        user_id=owner.user_id,
        username=owner.username,
        authorizer=get_authorizer(owner.authz_revision),
        token_id=owner.token_id,
    )
    return principal, identity.needs_touch(owner.last_used_at)


# --- other domains' checks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckInput:
    """What a release check judges: the release asked about, the time, and its statements' rows by name."""

    system_id: str
    version: str
    environment: str
    now: datetime
    rows: dict[str, list[Row]]


@dataclass(eq=False)  # compared by identity (its statements build expressions on ==)
class ReleaseCheck:
    """Another domain's part of the answer: Core statements (bind parameters ``param("sid")``, ``"ver"``,
    ``"env"``), built by ``statements`` at first use, that the gate runs inside its own statement, and
    ``evaluate``, a pure function of their rows by name (in no set order: sort where order matters).
    ``environments``: where it applies (None: everywhere; elsewhere its statements are not even run)."""

    statements: Callable[[], Mapping[str, sa.Select[Any]]]
    evaluate: Callable[[CheckInput], list[Reason]]
    environments: frozenset[str] | None = None
    _statement_map: dict[str, sa.Select[Any]] | None = field(default=None, init=False, repr=False)

    @property
    def statement_map(self) -> dict[str, sa.Select[Any]]:
        """The check's statements by name, built at first use."""
        if self._statement_map is None:
            self._statement_map = dict(self.statements())
        return self._statement_map

    def applies(self, environment: str) -> bool:
        return self.environments is None or environment in self.environments


_release_checks: list[ReleaseCheck] = []


def register_release_check(check: ReleaseCheck) -> None:
    """Hook for other domains (no import cycle: approvals never imports them; they register themselves),
    e.g. ``SUSPENDED_BY_INCIDENT`` (incidents) or ``REQUIREMENTS_OPEN`` (compliance requirements)."""
    _release_checks.append(check)


def registered_release_checks() -> tuple[ReleaseCheck, ...]:
    """Every registered check, in registration order (``app.wiring`` checks that none is missing)."""
    return tuple(_release_checks)


def release_checks(environment: str) -> list[ReleaseCheck]:
    """The registered checks that apply to ``environment``, in registration order."""
    return [c for c in _release_checks if c.applies(environment)]


def other_domains_reasons(
    first: Row, checks: tuple[ReleaseCheck, ...], asked: Release, now: datetime
) -> list[Reason]:
    """The reasons of ``checks`` (``gate_query``'s), judged on the rows the gate's statement carried for
    them in its ``first`` row, in registration order."""
    reasons: list[Reason] = []
    for i, check in enumerate(checks):
        rows = {name: first[_check_column(i, name)] for name in check.statement_map}
        reasons += check.evaluate(CheckInput(asked.system_id, asked.version, asked.environment, now, rows))
    return reasons


# --- the decision --------------------------------------------------------------------------------------


class Release(NamedTuple):
    """The release asked about: this version of this system in this environment (and, optionally, the
    artifact about to ship, which must be the version's recorded digest)."""

    system_id: str
    version: str
    environment: str
    artifact_digest: str | None = None


def decide(
    db: RawReader, principal: Principal, asked: Release, *, rules: Rules, now: datetime
) -> dict[str, Any]:
    """The release-permission answer, computed from the registry's current state, on a sync connection
    (other domains call it on their transaction's, e.g. to refuse a deployment with the gate's reasons)."""
    query, checks = gate_query(asked.environment, with_token=False)
    rows = db.rows(query, gate_params(asked.system_id, asked.version, asked.environment))
    return conclude(principal, rows, checks, asked, rules=rules, now=now)


def conclude(
    principal: Principal,
    rows: list[Row],
    checks: tuple[ReleaseCheck, ...],
    asked: Release,
    *,
    rules: Rules,
    now: datetime,
) -> dict[str, Any]:
    """The answer from the rows of ``gate_query``'s statement, for a caller already known: 404 unless the
    system exists and the caller may ask about it, then every reason of the gate and of ``checks``."""
    target(principal, rows, asked.system_id)
    return judge(rows, other_domains_reasons(rows[0], checks, asked, now), asked, rules=rules, now=now)


def target(principal: Principal, rows: list[Row], system_id: str) -> None:
    """404 for a system that does not exist, or that the caller may not ask about (no existence leak)."""
    first = rows[0] if rows else None
    if first is None or first["system_id"] is None:
        raise NotFound(f"system {system_id!r} does not exist")
    principal.require("release", "read", first["site"], entity_id=system_id, entity_type="system")


@dataclass(frozen=True)
class _Request:
    """One approval request of the release, as the gate read it (``approvals.service.Dated``)."""

    id: str
    state: str
    valid_until: datetime | None
    created_at: datetime
    digest: str
    ai_act_class: str
    classification_id: int | None
    close_reason: str | None
    reclassified: bool
    facts_changed: bool
    required: list[str]
    conditions: list[dict[str, Any]]
    sl_gap: list[str]
    signed: set[str]


def _requests(rows: list[Row], now: datetime) -> list[_Request]:
    """The release's requests, newest first (``approval_order``), with their state as of ``now``."""
    requests = []
    for r in rows:
        if r["approval_id"] is None:
            continue  # the LEFT JOIN found no request
        request = _Request(
            id=r["approval_id"],
            state=r["state"],
            valid_until=r["valid_until"],
            created_at=r["created_at"],
            digest=r["approval_digest"],
            ai_act_class=r["approval_class"],
            classification_id=r["classification_id"],
            close_reason=r["close_reason"],
            reclassified=bool(r["reclassified"]),
            facts_changed=facts_changed(r["approval_facts_revision"], r["facts_revision"]),
            required=r["required_signoffs"] or [],
            conditions=r["conditions"] or [],
            sl_gap=r["sl_gap"] or [],
            signed=set(r["signed"].split(",")) if r["signed"] else set(),
        )
        requests.append(_with_state(request, now))
    requests.sort(key=approval_order, reverse=True)
    return requests


def _with_state(request: _Request, now: datetime) -> _Request:
    state = effective_state(request, now).value
    if state == request.state:
        return request
    return _Request(**{**request.__dict__, "state": state})


_APPROVED = ApprovalState.approved.value


def judge(
    rows: list[Row],
    others: list[Reason],
    asked: Release,
    *,
    rules: Rules,
    now: datetime,
) -> dict[str, Any]:
    """The answer from the gate statement's ``rows`` (after ``target``) and the other domains' reasons."""
    system_id, version, environment, artifact_digest = asked
    first = rows[0]
    ai_class, digest = first["ai_act_class"], first["digest"]
    reasons: list[Reason] = []
    if first["archived_at"] is not None or first["lifecycle_stage"] == "retired":
        reasons.append(error(SYSTEM_RETIRED, f"system {system_id} is retired"))
    if ai_class is None:
        reasons.append(error(NOT_CLASSIFIED, f"system {system_id} has not been classified under the AI Act"))
    elif ai_class == "prohibited":
        reasons.append(
            error(PROHIBITED, f"system {system_id} is classified as a prohibited AI practice (AI Act Art. 5)")
        )

    approval_id: str | None = None
    valid_until: datetime | None = None
    current: _Request | None = None
    target_sl, achieved = first["sl_target"], first["sl_achieved"]
    gap = sl_gap(target_sl, achieved)
    unassessed = sl_unassessed(target_sl, achieved)
    if unassessed and environment == Environment.production:
        # Not an accepted gap: no OT security sign-off can have accepted a level nobody assessed.
        frs = ", ".join(unassessed)
        reasons.append(
            error(
                CONDITION_NOT_MET,
                f"security level of {frs} not assessed in the zone of {system_id}, which sets a target "
                f"for it; record the achieved level (sl_achieved) of {frs} before a production release",
            )
        )
    if digest is None:
        reasons.append(error(UNKNOWN_VERSION, f"system {system_id} has no version {version!r}"))
    elif artifact_digest is not None and artifact_digest != digest:
        reasons.append(
            error(
                DIGEST_MISMATCH,
                f"version {version} of {system_id} is recorded with digest {digest}, not {artifact_digest}",
            )
        )
    else:
        approvals = _requests(rows, now)
        current = next((a for a in approvals if a.state == _APPROVED and a.digest == digest), None)
        if current is not None:
            approval_id, valid_until = current.id, current.valid_until
            purdue = first["purdue_level"]
            facts = Facts(
                ai_act_class=ai_class,
                environment=environment,
                personal_data=bool(first["personal_data"]),
                ot_zone=purdue is not None and is_ot_level(purdue),
                sl_gap=gap,
                basis=first["basis"] or [],
                risk_tier=first["risk_tier"],
                sl_unassessed=unassessed,
            )
            reasons += _check_current(rules, current, facts, first["metrics"])
        else:
            reasons += _explain_missing(approvals, system_id, version, environment, digest)
            if approvals:
                approval_id = approvals[0].id
    reasons += others

    reasons.sort(key=lambda r: r["severity"] != "error")  # what denies first, each group in check order
    allowed = not any(r["severity"] == "error" for r in reasons)
    if allowed and current is not None and gap:
        reasons.append(
            warning(
                SL_GAP_ACCEPTED,
                f"security level below the zone target in {', '.join(gap)}; accepted with compensating "
                f"countermeasures by the OT security sign-off of {current.id}",
            )
        )
    return {
        "allowed": allowed,
        "system": system_id,
        "version": version,
        "environment": environment,
        "approval_id": approval_id,
        "valid_until": valid_until,
        "reasons": reasons,
        "checked_at": now,
    }


def _check_current(rules: Rules, a: _Request, facts: Facts, metrics: dict[str, Any] | None) -> list[Reason]:
    """What may still stand in the way of a granted, unexpired approval."""
    reasons: list[Reason] = []
    if a.facts_changed:
        reasons.append(
            error(
                CHANGED_SINCE_APPROVAL,
                f"a fact that decides who must sign (owner, personal data, zone, security level or AI Act "
                f"role) changed after approval {a.id} was requested: a new approval is needed",
            )
        )
    if a.reclassified or facts.ai_act_class != a.ai_act_class:
        reasons.append(
            error(
                RECLASSIFIED_SINCE_APPROVAL,
                f"approval {a.id} was granted for class {a.ai_act_class}; the system has since been "
                f"classified {facts.ai_act_class}: a new approval is needed",
            )
        )
        return reasons
    now_required = rules.required(facts)
    missing = [r for r in now_required.roles if r not in a.required]
    if missing:
        why = "; ".join(f"{r}: {', '.join(now_required.because[r])}" for r in missing)
        reasons.append(
            error(
                CONDITION_NOT_MET,
                f"the system changed since approval {a.id}: it now also needs the sign-off of "
                f"{', '.join(missing)} ({why}); submit a new request",
            )
        )
    unaccepted = [fr for fr in facts.sl_gap if fr not in a.sl_gap]
    if unaccepted and "ot_security" not in missing:
        reasons.append(
            error(
                CONDITION_NOT_MET,
                f"security level below the zone target in {', '.join(unaccepted)}, which the OT security "
                f"sign-off of {a.id} did not accept; submit a new request",
            )
        )
    for condition in a.conditions:
        failure = failed_condition(condition, metrics)
        if failure is not None:
            who = condition.get("role")
            reasons.append(error(CONDITION_NOT_MET, failure + (f" (set by {who} in {a.id})" if who else "")))
    return reasons


def _explain_missing(
    approvals: list[_Request],
    system_id: str,
    version: str,
    environment: str,
    digest: str,
) -> list[Reason]:
    """Why there is no usable approval: the newest request's fate, and that of the last one granted."""
    if not approvals:
        return [
            error(NO_APPROVAL, f"no approval requested for {system_id} version {version} in {environment}")
        ]
    reasons = [_reason_for(approvals[0], digest)]
    granted = next((a for a in approvals if a.state in ("approved", "expired", "revoked")), None)
    if granted is not None and granted is not approvals[0]:
        reasons.append(_reason_for(granted, digest))
    return reasons


def _reason_for(a: _Request, digest: str) -> Reason:
    state = a.state
    if state == "submitted":
        pending = [r for r in a.required if r not in a.signed]
        return error(
            APPROVAL_PENDING, f"approval {a.id} awaits the sign-off of {', '.join(pending) or 'nobody'}"
        )
    if state == "rejected":
        return error(APPROVAL_REJECTED, f"approval {a.id} was {a.close_reason or 'rejected'}")
    if state == "revoked":
        return error(APPROVAL_REVOKED, f"approval {a.id} was revoked: {a.close_reason or 'no reason given'}")
    if state == "expired":
        until = a.valid_until.isoformat() if a.valid_until else "?"
        return error(APPROVAL_EXPIRED, f"approval {a.id} expired at {until}; a review is due")
    if state == "withdrawn":
        return error(NO_APPROVAL, f"approval request {a.id} was withdrawn by its requester")
    if a.digest != digest:
        return error(NO_APPROVAL, f"approval {a.id} is for artifact {a.digest}, not {digest}")
    return error(NO_APPROVAL, f"approval {a.id} is {state}")


def dumps(answer: dict[str, Any]) -> bytes:
    return orjson.dumps(answer, option=orjson.OPT_UTC_Z)
