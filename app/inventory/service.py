"""Bulk import and export of the AI system inventory as CSV or JSON (no HTTP here).

Import is all or nothing: every row is validated first (a bad row is reported with its line number), and
only a file without a single bad row is written, in the caller's one transaction. A row without ``id``
creates a system; a row whose ``id`` names an existing system updates it (``revision``, when given, must be
current). Read-only columns of an export (``ai_act_class``, ``sl_gap``, ...) are accepted and ignored, so an
exported file imports again.

CSV cells are written so that a spreadsheet never runs them as formulas (``spreadsheet_safe``, also used by
the web inventory's CSV), and read back to the text they hold (``spreadsheet_text``). JSON nested deeper than
``AIREG_MAX_JSON_DEPTH`` (the limit on request bodies too) is refused before it is parsed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TextIO, cast

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.db import utcnow
from app.errors import AppError
from app.identity.models import User
from app.inventory.models import Format, ImportResult, RowError
from app.middleware import json_depth_problem
from app.systems import service as systems
from app.systems.models import AISystem, IdCounter, Line, Site, SystemCreate, SystemRead, SystemUpdate
from app.zones.models import Zone

Progress = Callable[[int], None]
WRITABLE = frozenset(SystemCreate.model_fields) | frozenset(SystemUpdate.model_fields)
READ_ONLY = frozenset(SystemRead.model_fields) - WRITABLE - {"id"}
STRUCTURED = frozenset({"sl_achieved"})  # cells holding a JSON object in CSV
MAX_REPORTED = 200  # errors listed at most (the count is always complete)
BATCH = 2000
# A cell starting with one of these is a formula to Excel, LibreOffice and Sheets (OWASP CSV injection).
FORMULA_STARTS = frozenset("=+-@\t\r")


class ImportFailed(AppError):
    """The file has bad rows; nothing of it was written."""

    status, title, type_slug = 422, "Import refused", "import-refused"

    def __init__(self, errors: list[RowError], rows: int) -> None:
        shown = errors[:MAX_REPORTED]
        super().__init__(
            f"{len(errors)} problem(s) in {rows} row(s); nothing was imported",
            errors=[
                {"loc": ["line", e.line, *([e.field] if e.field else [])], "msg": e.message} for e in shown
            ],
        )
        self.row_errors = errors


class ImportUnreadable(AppError):
    """The file as a whole cannot be read (no row of it is looked at); nothing of it was written."""

    status, title, type_slug = 422, "Import refused", "import-refused"

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}; nothing was imported", errors=[{"loc": ["file"], "msg": message}])


# --- CSV cells -----------------------------------------------------------------------------------------


def spreadsheet_safe(text: str) -> str:
    """A CSV cell that a spreadsheet shows as text and never runs as a formula (OWASP CSV injection).

    A cell starting with ``= + - @``, a tab or a carriage return gets a leading apostrophe. So that
    ``spreadsheet_text`` can undo it exactly, so does a cell whose leading apostrophes precede one of them.
    """
    return "'" + text if text.lstrip("'")[:1] in FORMULA_STARTS else text


def spreadsheet_text(cell: str) -> str:
    """The text a cell written by ``spreadsheet_safe`` holds (the inverse: one apostrophe less)."""
    return cell[1:] if cell[:1] == "'" and cell.lstrip("'")[:1] in FORMULA_STARTS else cell


# --- reading -------------------------------------------------------------------------------------------


def detect_format(name: str, declared: Format | None = None) -> Format:
    """The format named explicitly, else the one the file name's extension says."""
    if declared is not None:
        return declared
    lower = name.lower()
    if lower.endswith(".json"):
        return Format.json
    if lower.endswith(".csv"):
        return Format.csv
    raise ImportFailed(
        [RowError(0, None, f"cannot tell the format of {name!r}: use .csv or .json, or --format")], 0
    )


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, RowError(1, None, f"unreadable CSV header: {exc}")
        return
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in WRITABLE and h not in READ_ONLY and h != "id"]
    duplicate = sorted({h for h in header if header.count(h) > 1})
    if unknown or duplicate or not any(header):
        msg = []
        if unknown:
            msg.append(f"unknown column(s) {unknown}; importable: {sorted(WRITABLE | {'id'})}")
        if duplicate:
            msg.append(f"column(s) named twice: {duplicate}")
        yield 1, RowError(1, None, "; ".join(msg) or "empty header")
        return
    line = reader.line_num
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, RowError(start, None, f"unreadable CSV: {exc}")
            return
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue  # blank line
        if len(cells) != len(header):
            yield start, RowError(start, None, f"{len(cells)} cells for {len(header)} columns")
            continue
        row: dict[str, Any] = {}
        problem = None
        for name, raw in zip(header, cells, strict=True):
            if raw == "":
                continue
            cell = spreadsheet_text(raw)
            if name in STRUCTURED:
                too_deep = json_depth_problem(cell.encode())
                if too_deep is not None:
                    problem = RowError(start, name, too_deep)
                    break
                try:
                    row[name] = json.loads(cell)
                except ValueError:
                    problem = RowError(start, name, 'expected a JSON object, e.g. {"FR1": 2, ...}')
                    break
            else:
                row[name] = cell
        yield start, problem or row


def _json_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """Objects of a top-level JSON array, each with the line it starts on."""
    decoder = json.JSONDecoder()
    ws = " \t\r\n"
    i, n = 0, len(text)
    line, counted = 1, 0

    def line_at(pos: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, pos)
        counted = pos
        return line

    def skip(pos: int) -> int:
        while pos < n and text[pos] in ws:
            pos += 1
        return pos

    i = skip(0)
    if i >= n:
        return
    if text[i] != "[":
        yield line_at(i), RowError(line_at(i), None, "expected a JSON array of system objects")
        return
    i = skip(i + 1)
    if i < n and text[i] == "]":
        i = skip(i + 1)
    else:
        while True:
            if i >= n:
                yield (
                    line_at(n),
                    RowError(line_at(n), None, "unexpected end of file: the array is not closed"),
                )
                return
            start = line_at(i)
            try:
                value, i = decoder.raw_decode(text, i)
            except json.JSONDecodeError as exc:
                yield exc.lineno, RowError(exc.lineno, None, f"invalid JSON: {exc.msg}")
                return
            yield start, value if isinstance(value, dict) else RowError(start, None, "expected an object")
            i = skip(i)
            if i < n and text[i] == ",":
                i = skip(i + 1)
                continue
            if i < n and text[i] == "]":
                i = skip(i + 1)
                break
            yield (
                line_at(min(i, n)),
                RowError(line_at(min(i, n)), None, "expected ',' or ']' after an object"),
            )
            return
    if i < n:
        yield line_at(i), RowError(line_at(i), None, "unexpected content after the array")


def parse(text: str, fmt: Format) -> list[tuple[int, dict[str, Any] | RowError]]:
    """Rows of a file as (line, values) or (line, error); ``ImportUnreadable`` for JSON nested too deep."""
    if fmt is Format.csv:
        return list(_csv_rows(text))
    too_deep = json_depth_problem(text.encode())
    if too_deep is not None:
        raise ImportUnreadable(too_deep)
    return list(_json_rows(text))


# --- validating ----------------------------------------------------------------------------------------


@dataclass
class _Refs:
    """What rows may refer to, read once: sites, lines, users, zones and the existing systems."""

    sites: set[str]
    lines: set[tuple[str, str]]
    users: set[str]
    zones: dict[str, str]
    systems: dict[str, tuple[str, int]]  # id -> (site, revision) of live systems

    @classmethod
    def load(cls, session: Session, ids: set[str]) -> _Refs:
        existing: dict[str, tuple[str, int]] = {}
        wanted = sorted(ids)
        for i in range(0, len(wanted), 500):
            for sid, site, rev in session.execute(
                sa.select(col(AISystem.id), col(AISystem.site), col(AISystem.revision)).where(
                    col(AISystem.id).in_(wanted[i : i + 500]), col(AISystem.archived_at).is_(None)
                )
            ).all():
                existing[sid] = (site, rev)
        return cls(
            sites=set(session.exec(select(col(Site.code))).all()),
            lines={(s, c) for s, c in session.execute(sa.select(col(Line.site), col(Line.code))).all()},
            users=set(session.exec(select(col(User.username))).all()),
            zones={c: s for c, s in session.execute(sa.select(col(Zone.code), col(Zone.site))).all()},
            systems=existing,
        )


def _pydantic_errors(line: int, exc: ValidationError) -> list[RowError]:
    out = []
    for e in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"]) or None
        msg = "unknown column" if e["type"] == "extra_forbidden" else e["msg"]
        out.append(RowError(line, loc, msg))
    return out


def _check_refs(line: int, site: str, values: dict[str, Any], refs: _Refs) -> list[RowError]:
    errors = []
    if site not in refs.sites:
        return [RowError(line, "site", f"unknown site {site!r}")]
    if values.get("line") is not None and (site, values["line"]) not in refs.lines:
        errors.append(RowError(line, "line", f"site {site} has no line {values['line']!r}"))
    for key in ("business_owner", "technical_owner"):
        if values.get(key) is not None and values[key] not in refs.users:
            errors.append(RowError(line, key, f"unknown user {values[key]!r}"))
    zone = values.get("zone")
    if zone is not None:
        if zone not in refs.zones:
            errors.append(RowError(line, "zone", f"unknown zone {zone!r}"))
        elif refs.zones[zone] != site:
            errors.append(RowError(line, "zone", f"zone {zone!r} belongs to site {refs.zones[zone]}"))
    return errors


@dataclass
class _Plan:
    creates: list[tuple[int, SystemCreate]] = field(default_factory=list)
    updates: list[tuple[int, str, SystemUpdate]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0


def _validate(
    session: Session, rows: list[tuple[int, dict[str, Any] | RowError]], progress: Progress
) -> _Plan:
    plan = _Plan()
    ids = {str(r["id"]) for _, r in rows if isinstance(r, dict) and r.get("id") not in (None, "")}
    refs = _Refs.load(session, ids)
    seen: dict[str, int] = {}
    for line, row in rows:
        plan.rows += 1
        progress(1)
        if isinstance(row, RowError):
            plan.errors.append(row)
            continue
        values = {k: v for k, v in row.items() if k not in READ_ONLY and v is not None}
        unknown = sorted(k for k in values if k not in WRITABLE and k != "id")
        if unknown:
            plan.errors.extend(RowError(line, k, "unknown column") for k in unknown)
            continue
        system_id = values.pop("id", None)
        if system_id is None:
            try:
                data = SystemCreate.model_validate(values)
            except ValidationError as exc:
                plan.errors.extend(_pydantic_errors(line, exc))
                continue
            problems = _check_refs(line, data.site, values, refs)
            plan.errors.extend(problems)
            if not problems:
                plan.creates.append((line, data))
            continue
        system_id = str(system_id)
        if system_id in seen:
            plan.errors.append(
                RowError(line, "id", f"{system_id} is already updated by line {seen[system_id]}")
            )
            continue
        seen[system_id] = line
        if system_id not in refs.systems:
            plan.errors.append(
                RowError(line, "id", f"no system {system_id!r} (leave id empty to create one)")
            )
            continue
        site, revision = refs.systems[system_id]
        if values.pop("site", site) != site:
            plan.errors.append(
                RowError(line, "site", f"{system_id} belongs to site {site}; sites do not change")
            )
            continue
        if "revision" in values and str(values["revision"]) != str(revision):
            plan.errors.append(
                RowError(
                    line, "revision", f"stale revision {values['revision']}: {system_id} is at {revision}"
                )
            )
            continue
        values.setdefault("revision", revision)
        try:
            update = SystemUpdate.model_validate(values)
        except ValidationError as exc:
            plan.errors.extend(_pydantic_errors(line, exc))
            continue
        problems = _check_refs(line, site, values, refs)
        plan.errors.extend(problems)
        if not problems:
            plan.updates.append((line, system_id, update))
    return plan


# --- writing -------------------------------------------------------------------------------------------


def _allocate_ids(session: Session, count: int) -> list[str]:
    """``count`` new system ids from the same counter ``systems.next_id`` advances."""
    result = session.execute(
        sa.update(IdCounter).where(col(IdCounter.kind) == "system").values(value=col(IdCounter.value) + count)
    )
    if cast("sa.CursorResult[Any]", result).rowcount == 0:
        session.add(IdCounter(kind="system", value=count))
        session.flush()
    last = session.execute(select(col(IdCounter.value)).where(col(IdCounter.kind) == "system")).scalar_one()
    return [f"AIS-{n:06d}" for n in range(last - count + 1, last + 1)]


def _append_audit(session: Session, events: list[dict[str, Any]]) -> None:
    """Append many events to the hash chain at once (same links and keyed hashes as ``audit.record``)."""
    audit.record_many(session, events)


def _create_all(
    session: Session, creates: list[tuple[int, SystemCreate]], actor: str, progress: Progress
) -> list[str]:
    ids = _allocate_ids(session, len(creates))
    now = utcnow()
    table = cast(sa.Table, AISystem.__table__)  # type: ignore[attr-defined]  # SQLModel sets it on tables
    # unset optional columns are NULL; a required one the row lacks takes its server default (facts_revision)
    blank = {c.name: None for c in table.columns if c.nullable}
    connection = session.connection()
    for i in range(0, len(creates), BATCH):
        chunk = creates[i : i + BATCH]
        rows, events = [], []
        for system_id, (_, data) in zip(ids[i : i + BATCH], chunk, strict=True):
            row = {
                **blank,
                **data.model_dump(),
                "id": system_id,
                "created_at": now,
                "updated_at": now,
                "revision": 1,
            }
            rows.append(row)
            events.append(
                {
                    "actor": actor,
                    "action": "system.create",
                    "entity_type": "system",
                    "entity_id": system_id,
                    "site": row["site"],
                    "after": {**row, "imported": True},
                }
            )
        connection.execute(table.insert(), rows)  # Core executemany: one batched statement per chunk
        _append_audit(session, events)
        progress(len(chunk))
    return ids


def _changes(system: AISystem, update: SystemUpdate) -> dict[str, Any]:
    """The fields of an update row that differ from the stored system (an empty cell changes nothing)."""
    wanted = update.model_dump(exclude_unset=True, exclude={"revision"})
    return {key: value for key, value in wanted.items() if getattr(system, key) != value}


def import_inventory(
    session: Session,
    text: str,
    fmt: Format,
    *,
    actor: str,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Validate every row, then create and update systems; raise ``ImportFailed`` (writing nothing) on any
    bad row. ``progress(n)`` is called as rows are validated and again as they are written."""
    tick = progress or (lambda _n: None)
    rows = parse(text, fmt)
    plan = _validate(session, rows, tick)
    if plan.errors:
        raise ImportFailed(sorted(plan.errors, key=lambda e: e.line), plan.rows)
    result = ImportResult(rows=plan.rows)
    if dry_run:
        return result
    if plan.creates:
        result.created = _create_all(session, plan.creates, actor, tick)
    for line, system_id, update in plan.updates:
        system = systems.get_system(session, system_id, for_update=True)
        changes = _changes(system, update)
        if changes:
            try:
                systems.update_system(
                    session,
                    system,
                    SystemUpdate.model_validate({**changes, "revision": system.revision}),
                    if_match=None,
                    actor=actor,
                )
            except AppError as exc:  # a rule of the systems domain
                raise ImportFailed([RowError(line, None, exc.detail)], plan.rows) from None
        (result.updated if changes else result.unchanged).append(system_id)
        tick(1)
    session.flush()
    return result


# --- export --------------------------------------------------------------------------------------------


def _iter_systems(session: Session, *, sites: set[str] | None, site: str | None) -> Iterator[SystemRead]:
    last = ""
    while True:
        stmt = select(AISystem).where(col(AISystem.archived_at).is_(None), col(AISystem.id) > last)
        if sites is not None:
            stmt = stmt.where(col(AISystem.site).in_(sorted(sites)))
        if site is not None:
            stmt = stmt.where(col(AISystem.site) == site)
        rows = session.exec(stmt.order_by(col(AISystem.id)).limit(BATCH)).all()
        if not rows:
            return
        targets = systems.zone_targets(session, {s.zone for s in rows if s.zone})
        for s in rows:
            yield systems.system_read(s, targets)
        last = rows[-1].id
        session.expunge_all()


def count_systems(session: Session, *, sites: set[str] | None = None, site: str | None = None) -> int:
    """How many live systems an export would write."""
    stmt = select(sa.func.count()).select_from(AISystem).where(col(AISystem.archived_at).is_(None))
    if sites is not None:
        stmt = stmt.where(col(AISystem.site).in_(sorted(sites)))
    if site is not None:
        stmt = stmt.where(col(AISystem.site) == site)
    return session.exec(stmt).one()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return spreadsheet_safe(str(value.value if isinstance(value, StrEnum) else value))


def export_inventory(
    session: Session,
    out: TextIO,
    fmt: Format,
    *,
    sites: set[str] | None = None,
    site: str | None = None,
    progress: Progress | None = None,
) -> int:
    """Write every live system (in ``sites``, or one ``site``) to ``out``; returns how many were written."""
    tick = progress or (lambda _n: None)
    columns = list(SystemRead.model_fields)
    count = 0
    if fmt is Format.csv:
        # CRLF rows (RFC 4180, as the web export): the writer then quotes every cell holding a CR or LF
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        for s in _iter_systems(session, sites=sites, site=site):
            data = s.model_dump(mode="json")
            writer.writerow([_cell(data.get(c)) for c in columns])
            count += 1
            tick(1)
        return count
    out.write("[")
    for s in _iter_systems(session, sites=sites, site=site):
        out.write(",\n" if count else "\n")
        out.write(json.dumps(s.model_dump(mode="json"), ensure_ascii=False, separators=(", ", ": ")))
        count += 1
        tick(1)
    out.write("\n]\n" if count else "]\n")
    return count
