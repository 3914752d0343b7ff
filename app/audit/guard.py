"""The database refuses to change or remove audit events: the DDL of the append-only guard, defined once.

SQLite: ``BEFORE UPDATE`` and ``BEFORE DELETE`` triggers that abort. PostgreSQL: one plpgsql function behind a
``BEFORE UPDATE OR DELETE`` row trigger and a ``BEFORE TRUNCATE`` statement trigger. The migration installs
it; the database owner can still lift it (drop or disable the triggers), which is why the chain is keyed
and checkpointed outside the database as well.
"""

from __future__ import annotations

import sqlalchemy as sa

TABLE = "audit_event"
MESSAGE = "audit_event is append-only"

SQLITE_TRIGGERS = ("audit_event_no_update", "audit_event_no_delete")
PG_FUNCTION = "audit_event_append_only"
PG_TRIGGERS = ("audit_event_no_change", "audit_event_no_truncate")


def _sqlite_install() -> list[str]:
    return [
        f"CREATE TRIGGER {SQLITE_TRIGGERS[0]} BEFORE UPDATE ON {TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: UPDATE refused'); END",
        f"CREATE TRIGGER {SQLITE_TRIGGERS[1]} BEFORE DELETE ON {TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE refused'); END",
    ]


def _pg_install() -> list[str]:
    return [
        f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        # no '%' placeholder in the message: drivers would take it for a parameter
        f"BEGIN RAISE EXCEPTION USING MESSAGE = '{MESSAGE}: ' || TG_OP || ' refused', "
        "ERRCODE = 'insufficient_privilege'; END $$",
        f"CREATE TRIGGER {PG_TRIGGERS[0]} BEFORE UPDATE OR DELETE ON {TABLE} "
        f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()",
        f"CREATE TRIGGER {PG_TRIGGERS[1]} BEFORE TRUNCATE ON {TABLE} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()",
    ]


def install_statements(dialect: str) -> list[str]:
    """The DDL that makes ``audit_event`` append-only on ``dialect`` (``sqlite`` or ``postgresql``)."""
    if dialect == "sqlite":
        return _sqlite_install()
    if dialect == "postgresql":
        return _pg_install()
    raise ValueError(f"no append-only guard for the {dialect} dialect")


def uninstall_statements(dialect: str) -> list[str]:
    """The DDL that removes the guard again (what the downgrade runs, and what an owner could run)."""
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name} ON {TABLE}" for name in PG_TRIGGERS] + [
            f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()"
        ]
    raise ValueError(f"no append-only guard for the {dialect} dialect")


def install(conn: sa.Connection) -> None:
    """Create the guard in the connection's transaction."""
    for statement in install_statements(conn.dialect.name):
        conn.exec_driver_sql(statement)


def uninstall(conn: sa.Connection) -> None:
    """Drop the guard in the connection's transaction."""
    for statement in uninstall_statements(conn.dialect.name):
        conn.exec_driver_sql(statement)
