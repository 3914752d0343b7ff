"""Acting as the database owner (or an attacker with the owner's rights): lift the append-only guard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from app.audit import guard
from app.db import get_engine


@contextmanager
def owner_transaction() -> Iterator[sa.Connection]:
    """One transaction in which UPDATE and DELETE on audit_event go through; the guard is back at commit.

    SQLite: the triggers are dropped and created again (DDL is transactional there). PostgreSQL: the table's
    user triggers are disabled for the transaction (``ALTER TABLE`` needs the owner's rights, nothing more).
    """
    with get_engine().begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"ALTER TABLE {guard.TABLE} DISABLE TRIGGER USER")
            yield conn
            conn.exec_driver_sql(f"ALTER TABLE {guard.TABLE} ENABLE TRIGGER USER")
        else:
            guard.uninstall(conn)
            yield conn
            guard.install(conn)


def owner_sql(statement: str, **params: object) -> None:
    """Run one statement with the owner's rights."""
    with owner_transaction() as conn:
        conn.execute(sa.text(statement), params)
