"""systems: a text-search index on name and purpose (issue 17)

Revision ID: b8e0d5f3a467
Revises: a7d9c4e2f356
Create Date: 2026-12-06 11:00:00

SQLite: an FTS5 table with the trigram tokenizer over ``ai_system.name`` and ``purpose`` (external content:
the text stays in ``ai_system``; rows are keyed by its rowid), kept in step by three triggers and filled from
the existing rows. PostgreSQL: the ``pg_trgm`` extension (in schema ``public`` unless the database already has
it elsewhere, so that it outlives any one schema) and a GIN trigram index on each of the two columns.

None of this is in the SQLModel metadata; ``migrations/env.py`` leaves every object named ``ai_system_search*``
out of autogenerate. A later migration that rebuilds ``ai_system`` on SQLite (batch "move and copy") drops the
triggers with the old table: it must create them again and run ``INSERT INTO ai_system_search(ai_system_search)
VALUES ('rebuild')``.

The downgrade drops the table and triggers, or the indexes; it leaves the extension, which other schemas of the
same database may use.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b8e0d5f3a467"
down_revision: str | None = "a7d9c4e2f356"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UPGRADE = (
    """CREATE VIRTUAL TABLE ai_system_search USING fts5(
        name, purpose, content='ai_system', content_rowid='rowid', tokenize='trigram'
    )""",
    """CREATE TRIGGER ai_system_search_insert AFTER INSERT ON ai_system BEGIN
        INSERT INTO ai_system_search(rowid, name, purpose) VALUES (new.rowid, new.name, new.purpose);
    END""",
    """CREATE TRIGGER ai_system_search_delete AFTER DELETE ON ai_system BEGIN
        INSERT INTO ai_system_search(ai_system_search, rowid, name, purpose)
        VALUES ('delete', old.rowid, old.name, old.purpose);
    END""",
    """CREATE TRIGGER ai_system_search_update AFTER UPDATE OF name, purpose ON ai_system BEGIN
        INSERT INTO ai_system_search(ai_system_search, rowid, name, purpose)
        VALUES ('delete', old.rowid, old.name, old.purpose);
        INSERT INTO ai_system_search(rowid, name, purpose) VALUES (new.rowid, new.name, new.purpose);
    END""",
    "INSERT INTO ai_system_search(ai_system_search) VALUES ('rebuild')",
)
SQLITE_DOWNGRADE = (
    "DROP TRIGGER IF EXISTS ai_system_search_update",
    "DROP TRIGGER IF EXISTS ai_system_search_delete",
    "DROP TRIGGER IF EXISTS ai_system_search_insert",
    "DROP TABLE IF EXISTS ai_system_search",
)
PG_INDEXES = {"ai_system_search_name": "name", "ai_system_search_purpose": "purpose"}


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for statement in SQLITE_UPGRADE:
            conn.exec_driver_sql(statement)
        return
    conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    # the operator class is named with the extension's schema: a schema's search_path need not include it
    ext_schema = conn.exec_driver_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_trgm'"
    ).scalar_one()
    for index, column in PG_INDEXES.items():
        conn.exec_driver_sql(
            f'CREATE INDEX {index} ON ai_system USING gin ({column} "{ext_schema}".gin_trgm_ops)'
        )


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for statement in SQLITE_DOWNGRADE:
            conn.exec_driver_sql(statement)
        return
    for index in PG_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
