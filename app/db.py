"""Engine, sessions and migrations.

SQLite is the embedded default (WAL, foreign keys, a busy timeout); PostgreSQL is reached with psycopg 3.
Write requests run in ``BEGIN IMMEDIATE`` transactions on SQLite so that writers are serialized up front
instead of failing on a read-to-write lock upgrade; on PostgreSQL rows are locked with ``FOR UPDATE``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select
from sqlmodel import Session, SQLModel

from app.settings import PROJECT_ROOT, get_settings

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"

T = TypeVar("T")

# Constraint names that Alembic can find again on every backend.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; times must carry a UTC offset")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_column(enum_cls: type[StrEnum], length: int = 16) -> sa.Enum:
    """A VARCHAR(``length``) column that stores an enum's values and loads them back as enum members."""
    return sa.Enum(
        enum_cls, native_enum=False, length=length, values_callable=lambda members: [m.value for m in members]
    )


def utcnow() -> datetime:
    """The current time in UTC (the one clock the service reads; tests move it)."""
    return _clock.now()


class _Clock:
    def __init__(self) -> None:
        self.offset = None

    def now(self) -> datetime:
        now = datetime.now(UTC)
        return now + self.offset if self.offset is not None else now


_clock = _Clock()


def set_clock_offset(offset: Any) -> None:
    """Move the service clock by a ``timedelta`` (``None`` resets); used by tests that travel in time."""
    _clock.offset = offset


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


WRITE_LOCK_KEY = 0x41495245  # "AIRE": the advisory lock of writers and of the audit chain head on PostgreSQL


def _configure_postgres(engine: Engine, schema: str | None) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("aireg_write_lock"):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")

    if not schema:
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f'SET search_path TO "{schema}"')
        cur.close()
        dbapi_conn.commit()


_engines: dict[tuple[str, str | None], Engine] = {}
_engines_lock = threading.Lock()


def make_engine(url: str, schema: str | None = None) -> Engine:
    """A configured engine for ``url``; one per URL and schema in a process."""
    key = (url, schema)
    with _engines_lock:
        if key in _engines:
            return _engines[key]
        if is_sqlite(url):
            engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            _configure_sqlite(engine)
        else:
            engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            _configure_postgres(engine, schema)
        _engines[key] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests and the CLI call this before a database is dropped)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def get_engine() -> Engine:
    """The engine for the configured database."""
    settings = get_settings()
    return make_engine(settings.database_url, settings.database_schema)


def write_engine(engine: Engine) -> Engine:
    """The same engine, beginning transactions that take the write lock at once.

    SQLite: ``BEGIN IMMEDIATE``. PostgreSQL: the transaction-scoped advisory lock that also guards the audit
    chain head, taken first thing, so every writer takes its locks in one order (chain, then rows) and two
    writers can never deadlock (e.g. one locking a row then appending to the trail, the other the reverse).
    """
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="IMMEDIATE")
    return engine.execution_options(aireg_write_lock=True)


@contextmanager
def session_scope(*, write: bool = True) -> Iterator[Session]:
    """One unit of work: commits when the block ends, rolls back on any error."""
    engine = get_engine()
    with Session(write_engine(engine) if write else engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class PageWindow(Protocol):
    """Which slice of a list to return (``app.http.PageParams`` is one)."""

    @property
    def limit(self) -> int: ...

    @property
    def offset(self) -> int: ...


def paginate(
    session: Session,
    statement: Select[T],
    page: PageWindow,
    *order_by: Any,
) -> tuple[list[T], int]:
    """One page of ``statement``'s rows in ``order_by`` order, and how many rows it has in all.

    ``statement`` is a ``select(...)`` with its conditions; the count runs on the same conditions, so
    the total always describes the list the page is cut from.
    """
    counted = statement.with_only_columns(sa.func.count(), maintain_column_froms=True).order_by(None)
    total = session.execute(counted).scalar_one()
    rows = (
        session.execute(statement.order_by(*order_by).limit(page.limit).offset(page.offset)).scalars().all()
    )
    return list(rows), total


def alembic_config(url: str | None = None, schema: str | None = None) -> Any:
    """An Alembic configuration for ``migrations/`` bound to ``url`` (default: the configured one)."""
    from alembic.config import Config

    settings = get_settings()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["url"] = url or settings.database_url
    cfg.attributes["schema"] = schema if url else settings.database_schema
    return cfg


_migrated: set[tuple[str, str | None]] = set()


def migrate(url: str | None = None, schema: str | None = None) -> None:
    """Apply pending Alembic migrations (once per process and database)."""
    from alembic import command

    settings = get_settings()
    key = (url or settings.database_url, schema if url else settings.database_schema)
    if key in _migrated:
        return
    if is_sqlite(key[0]):
        path = key[0].split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(*key), "head")
    _migrated.add(key)


def forget_migrations() -> None:
    _migrated.clear()


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: one transaction per request, committed before the response is sent.

    Reads use a deferred transaction; anything else takes SQLite's write lock at once. The dependency is
    declared with ``scope="function"`` (``SessionDep``): FastAPI then runs the code after ``yield`` (the
    commit) when the endpoint returns, before the response is built, so a 2xx is only ever sent for a
    committed write, and a commit that fails answers an error instead. (With the default scope the exit
    would run after the response has gone out.)
    """
    with session_scope(write=request.method not in ("GET", "HEAD", "OPTIONS")) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
