"""The release gate: may version V of system S run in environment E, right now?

This is the hot path that pipelines call on every deployment, so it is built to be cheap: an ``async``
endpoint (no threadpool) running ONE plain-SQL statement of indexed point lookups (token and user, system,
zone, version, newest classification basis, every request for this release with a reclassification flag)
on a DBAPI connection the event-loop thread keeps (no ORM session, no pool round trip, no BEGIN). One
statement is one snapshot. Nothing is cached across calls except the rule table (read at start) and
Casbin's decisions (invalidated with every grant change), so the answer always reflects the registry as
committed at the moment of the call.

Reasons carry ``severity``: ``error`` reasons deny; ``warning`` reasons (e.g. ``SL_GAP_ACCEPTED``) may
accompany an allowed answer. A denial always has at least one error reason.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import orjson
from sqlalchemy.engine import Engine

from app.approvals.models import ApprovalState, Environment
from app.approvals.rules import Facts, Rules
from app.approvals.service import facts_changed, failed_condition
from app.db import utcnow
from app.errors import NotFound, Unauthorized, Unprocessable
from app.identity import authz
from app.identity.dependencies import Principal
from app.identity.service import TOKEN_PREFIX, hash_token, needs_touch
from app.systems.models import (
    DIGEST_PATTERN,
    SYSTEM_ID_PATTERN,
    VERSION_PATTERN,
    sl_gap,
    sl_unassessed,
)
from app.zones.models import is_ot_level

Reason = dict[str, str]

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


# --- the query --------------------------------------------------------------------------------------

_PATTERNS = {
    "system": re.compile(SYSTEM_ID_PATTERN),
    "version": re.compile(VERSION_PATTERN),
    "artifact_digest": re.compile(DIGEST_PATTERN),
}
_ENVIRONMENTS = frozenset(e.value for e in Environment)


def query_pairs(query_string: bytes) -> dict[str, str]:
    """A raw query string as a dict (the last value of a repeated name wins, as in Starlette)."""
    pairs: dict[str, str] = {}
    if not query_string:
        return pairs
    for part in query_string.decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = unquote_plus(name), unquote_plus(value)
        pairs[name] = value
    return pairs


def parse_query(params: Mapping[str, str]) -> dict[str, str | None]:
    """``system``, ``version``, ``environment`` (default production) and ``artifact_digest``, or one 422
    naming every bad parameter."""
    errors: list[dict[str, Any]] = []
    values: dict[str, str | None] = {}
    for name in ("system", "version", "artifact_digest"):
        value = params.get(name)
        if value is None:
            if name != "artifact_digest":
                errors.append({"loc": ["query", name], "msg": "Field required"})
        elif not _PATTERNS[name].fullmatch(value):
            errors.append(
                {"loc": ["query", name], "msg": f"String should match pattern '{_PATTERNS[name].pattern}'"}
            )
        values[name] = value
    environment = params.get("environment", "production")
    if environment not in _ENVIRONMENTS:
        errors.append({"loc": ["query", "environment"], "msg": "Input should be 'pilot' or 'production'"})
    if errors:
        first = errors[0]
        raise Unprocessable(f"{'.'.join(first['loc'])}: {first['msg']}", errors=errors)
    return {
        "system_id": values["system"],
        "version": values["version"],
        "environment": environment,
        "artifact_digest": values["artifact_digest"],
    }


# --- plain SQL on a DBAPI connection -------------------------------------------------------------------

_NAMED = re.compile(r":([a-z_]+)")


class RawReader:
    """Runs plain SQL (``:name`` parameters) on one DBAPI connection and decodes SQLite's text values."""

    _pg_sql: dict[str, str] = {}

    def __init__(self, dbapi_connection: Any, dialect: str) -> None:
        self.cursor = dbapi_connection.cursor()
        self.sqlite = dialect == "sqlite"

    def all(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if not self.sqlite:
            converted = self._pg_sql.get(sql)
            if converted is None:
                converted = self._pg_sql[sql] = _NAMED.sub(r"%(\1)s", sql)
            sql = converted
        self.cursor.execute(sql, params)
        return self.cursor.fetchall()

    def one(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def dt(self, value: Any) -> datetime | None:
        """A stored ``UTCDateTime`` as an aware datetime."""
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def js(self, value: Any) -> Any:
        """A stored ``JSON`` column as Python data (psycopg decodes it already; SQLite gives text)."""
        if isinstance(value, str | bytes):
            return orjson.loads(value)
        return value


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
        connection.driver_connection.autocommit = True
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


# What the answer needs, in one statement: the token's owner (no row: unknown token), the system (NULL:
# unknown), its zone, the requested version, the basis of its newest classification, and one row per
# request for this release, each flagged when the system was classified into another class since.
_CALLER = (
    "t.id, t.expires_at, t.revoked_at, t.last_used_at, u.id, u.username, u.is_active,"
    " (SELECT r.revision FROM authz_revision r WHERE r.id = 1)"
)
_RELEASE = (
    " s.id, s.site, s.ai_act_class, s.lifecycle_stage, s.personal_data, s.sl_achieved, s.archived_at,"
    " s.risk_tier, z.purdue_level, z.sl_target, v.artifact_digest, v.metrics,"
    " (SELECT c.basis FROM classification c WHERE c.system_id = s.id ORDER BY c.id DESC LIMIT 1),"
    " a.id, a.state, a.artifact_digest, a.valid_until, a.classification_id, a.ai_act_class,"
    " a.required_signoffs, a.conditions, a.sl_gap, a.created_at, a.close_reason,"
    " EXISTS (SELECT 1 FROM classification c WHERE c.system_id = a.system_id"
    "  AND c.id > COALESCE(a.classification_id, 0) AND c.ai_act_class <> a.ai_act_class),"
    " s.facts_revision, a.facts_revision"
)
_JOINS = (
    " LEFT JOIN zone z ON z.code = s.zone"
    " LEFT JOIN model_version v ON v.system_id = s.id AND v.version = :ver"
    " LEFT JOIN approval_request a ON a.system_id = s.id AND a.version = :ver AND a.environment = :env"
)
_GATE_SQL = (
    f"SELECT {_CALLER},{_RELEASE} FROM api_token t JOIN app_user u ON u.id = t.user_id"
    f" LEFT JOIN ai_system s ON s.id = :sid{_JOINS} WHERE t.token_hash = :h"
)
# The same for a caller already known (a browser session): no token part.
_GATE_SQL_NO_TOKEN = (
    "SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    f"{_RELEASE} FROM (SELECT 1 AS one) k LEFT JOIN ai_system s ON s.id = :sid{_JOINS}"
)
_CALLER_COLUMNS = 8
_SIGNED_SQL = "SELECT role FROM sign_off WHERE approval_id = :aid"


def fetch(db: RawReader, token: str | None, system_id: str, version: str, environment: str) -> list[Any]:
    """The rows of ``_GATE_SQL`` (or, without a token, of ``_GATE_SQL_NO_TOKEN``)."""
    params = {"sid": system_id, "ver": version, "env": environment}
    if token is None:
        return db.all(_GATE_SQL_NO_TOKEN, params)
    return db.all(_GATE_SQL, params | {"h": hash_token(token)})


def check_token(token: str | None) -> str:
    """The bearer token, or 401 when there is none or it cannot be one of ours."""
    if token is None:
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized("malformed token")
    return token


def authenticate(
    db: RawReader, rows: list[Any], get_authorizer: Callable[[int], authz.Authorizer]
) -> tuple[Principal, bool]:
    """The caller behind the token of ``rows``, and whether its ``last_used_at`` is due to be refreshed.

    The same checks as ``app.identity.service.resolve_token``: unknown, revoked, expired, deactivated: 401.
    """
    if not rows:
        raise Unauthorized("unknown token")
    token_id, expires_at, revoked_at, last_used_at, user_id, username, is_active, revision = rows[0][:8]
    if revoked_at is not None:
        raise Unauthorized("token revoked")
    expires = db.dt(expires_at)
    if expires is None or expires <= utcnow():
        raise Unauthorized("token expired")
    if not is_active:
        raise Unauthorized("user deactivated")
    principal = Principal(
        user_id=user_id, username=username, authorizer=get_authorizer(revision or 0), token_id=token_id
    )
    return principal, needs_touch(db.dt(last_used_at))


# --- the decision --------------------------------------------------------------------------------------

ReleaseCheck = Callable[[RawReader, str, str, str], list[Reason]]
_release_checks: list[ReleaseCheck] = []


def register_release_check(check: ReleaseCheck) -> None:
    """Hook for other domains (no import cycle: approvals never imports them; they register themselves):
    ``check(db, system_id, version, environment)`` returns reasons built with ``error``/``warning``, e.g.
    ``SUSPENDED_BY_INCIDENT`` (incidents) or ``REQUIREMENTS_OPEN`` (compliance requirements)."""
    _release_checks.append(check)


def other_domains_reasons(db: RawReader, system_id: str, version: str, environment: str) -> list[Reason]:
    """The reasons of every registered release check, in registration order."""
    reasons: list[Reason] = []
    for check in _release_checks:
        reasons.extend(check(db, system_id, version, environment))
    return reasons


_APPROVED = ApprovalState.approved.value
_EXPIRED = ApprovalState.expired.value


def _effective(state: str, valid_until: datetime | None, now: datetime) -> str:
    if state == _APPROVED and valid_until is not None and valid_until <= now:
        return _EXPIRED
    return state


def decide(
    db: RawReader,
    principal: Principal,
    *,
    system_id: str,
    version: str,
    environment: str,
    artifact_digest: str | None,
    rules: Rules,
    now: datetime,
    rows: list[Any] | None = None,
) -> dict[str, Any]:
    """The release-permission answer, computed from the registry's current state.

    Other domains may call it on any DBAPI connection (e.g. their transaction's, to refuse a deployment
    with the gate's reasons); the endpoint passes the ``rows`` it fetched with the caller's token.
    """
    if rows is None:
        rows = fetch(db, None, system_id, version, environment)
    first = rows[0] if rows else None
    if first is None or first[_CALLER_COLUMNS] is None:
        raise NotFound(f"system {system_id!r} does not exist")
    system = first[_CALLER_COLUMNS + 1 : _CALLER_COLUMNS + 13]
    site, ai_class, stage, personal_data, sl_achieved, archived_at, risk_tier, purdue, sl_target = system[:9]
    digest, metrics, basis = system[9], system[10], system[11]
    # the same 404 as for a system that does not exist (no existence leak)
    principal.require("release", "read", site, entity_id=system_id, entity_type="system")

    reasons: list[Reason] = []
    if archived_at is not None or stage == "retired":
        reasons.append(error(SYSTEM_RETIRED, f"system {system_id} is retired"))
    if ai_class is None:
        reasons.append(error(NOT_CLASSIFIED, f"system {system_id} has not been classified under the AI Act"))
    elif ai_class == "prohibited":
        reasons.append(
            error(PROHIBITED, f"system {system_id} is classified as a prohibited AI practice (AI Act Art. 5)")
        )

    approval_id: str | None = None
    valid_until: datetime | None = None
    current: dict[str, Any] | None = None
    target, achieved = db.js(sl_target), db.js(sl_achieved)
    gap = sl_gap(target, achieved)
    unassessed = sl_unassessed(target, achieved)
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
        approvals = []
        for row in rows:
            r = row[_CALLER_COLUMNS + 13 :]
            if r[0] is None:
                continue  # the LEFT JOIN found no request
            until = db.dt(r[3])
            approvals.append(
                {
                    "id": r[0],
                    "state": _effective(r[1], until, now),
                    "digest": r[2],
                    "valid_until": until,
                    "classification_id": r[4],
                    "ai_act_class": r[5],
                    "close_reason": r[10],
                    "reclassified": bool(r[11]),
                    "facts_changed": facts_changed(r[13], r[12]),
                    "row": r,
                }
            )
        if len(approvals) > 1:
            approvals.sort(key=lambda a: (db.dt(a["row"][9]), len(a["id"]), a["id"]), reverse=True)
        current = next((a for a in approvals if a["state"] == _APPROVED and a["digest"] == digest), None)
        if current is not None:
            approval_id, valid_until = current["id"], current["valid_until"]
            facts = Facts(
                ai_act_class=ai_class,
                environment=environment,
                personal_data=bool(personal_data),
                ot_zone=purdue is not None and is_ot_level(purdue),
                sl_gap=gap,
                basis=db.js(basis) or [],
                risk_tier=risk_tier,
                sl_unassessed=unassessed,
            )
            reasons += _check_current(rules, _details(db, current), facts, db.js(metrics))
        else:
            reasons += _explain_missing(db, approvals, system_id, version, environment, digest)
            if approvals:
                approval_id = approvals[0]["id"]
    reasons += other_domains_reasons(db, system_id, version, environment)

    reasons.sort(key=lambda r: r["severity"] != "error")  # what denies first, each group in check order
    allowed = not any(r["severity"] == "error" for r in reasons)
    if allowed and current is not None and gap:
        reasons.append(
            warning(
                SL_GAP_ACCEPTED,
                f"security level below the zone target in {', '.join(gap)}; accepted with compensating "
                f"countermeasures by the OT security sign-off of {current['id']}",
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


def _details(db: RawReader, a: dict[str, Any]) -> dict[str, Any]:
    """Decode the JSON columns of one request (only the one the answer rests on needs them)."""
    row = a["row"]
    a["required"] = db.js(row[6]) or []
    a["conditions"] = db.js(row[7]) or []
    a["sl_gap"] = db.js(row[8]) or []
    return a


def _check_current(
    rules: Rules, a: dict[str, Any], facts: Facts, metrics: dict[str, Any] | None
) -> list[Reason]:
    """What may still stand in the way of a granted, unexpired approval."""
    reasons: list[Reason] = []
    if a["facts_changed"]:
        reasons.append(
            error(
                CHANGED_SINCE_APPROVAL,
                f"a fact that decides who must sign (owner, personal data, zone, security level or AI Act "
                f"role) changed after approval {a['id']} was requested: a new approval is needed",
            )
        )
    if a["reclassified"] or facts.ai_act_class != a["ai_act_class"]:
        reasons.append(
            error(
                RECLASSIFIED_SINCE_APPROVAL,
                f"approval {a['id']} was granted for class {a['ai_act_class']}; the system has since been "
                f"classified {facts.ai_act_class}: a new approval is needed",
            )
        )
        return reasons
    now_required = rules.required(facts)
    missing = [r for r in now_required.roles if r not in a["required"]]
    if missing:
        why = "; ".join(f"{r}: {', '.join(now_required.because[r])}" for r in missing)
        reasons.append(
            error(
                CONDITION_NOT_MET,
                f"the system changed since approval {a['id']}: it now also needs the sign-off of "
                f"{', '.join(missing)} ({why}); submit a new request",
            )
        )
    unaccepted = [fr for fr in facts.sl_gap if fr not in a["sl_gap"]]
    if unaccepted and "ot_security" not in missing:
        reasons.append(
            error(
                CONDITION_NOT_MET,
                f"security level below the zone target in {', '.join(unaccepted)}, which the OT security "
                f"sign-off of {a['id']} did not accept; submit a new request",
            )
        )
    for condition in a["conditions"]:
        failure = failed_condition(condition, metrics)
        if failure is not None:
            who = condition.get("role")
            reasons.append(
                error(CONDITION_NOT_MET, failure + (f" (set by {who} in {a['id']})" if who else ""))
            )
    return reasons


def _explain_missing(
    db: RawReader,
    approvals: list[dict[str, Any]],
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
    reasons = [_reason_for(db, approvals[0], digest)]
    granted = next((a for a in approvals if a["state"] in ("approved", "expired", "revoked")), None)
    if granted is not None and granted is not approvals[0]:
        reasons.append(_reason_for(db, granted, digest))
    return reasons


def _reason_for(db: RawReader, a: dict[str, Any], digest: str) -> Reason:
    state = a["state"]
    if state == "submitted":
        signed = {r[0] for r in db.all(_SIGNED_SQL, {"aid": a["id"]})}
        pending = [r for r in _details(db, a)["required"] if r not in signed]
        return error(
            APPROVAL_PENDING, f"approval {a['id']} awaits the sign-off of {', '.join(pending) or 'nobody'}"
        )
    if state == "rejected":
        return error(APPROVAL_REJECTED, f"approval {a['id']} was {a['close_reason'] or 'rejected'}")
    if state == "revoked":
        return error(
            APPROVAL_REVOKED, f"approval {a['id']} was revoked: {a['close_reason'] or 'no reason given'}"
        )
    if state == "expired":
        until = a["valid_until"].isoformat() if a["valid_until"] else "?"
        return error(APPROVAL_EXPIRED, f"approval {a['id']} expired at {until}; a review is due")
    if state == "withdrawn":
        return error(NO_APPROVAL, f"approval request {a['id']} was withdrawn by its requester")
    if a["digest"] != digest:
        return error(NO_APPROVAL, f"approval {a['id']} is for artifact {a['digest']}, not {digest}")
    return error(NO_APPROVAL, f"approval {a['id']} is {state}")


def dumps(answer: dict[str, Any]) -> bytes:
    return orjson.dumps(answer, option=orjson.OPT_UTC_Z)
