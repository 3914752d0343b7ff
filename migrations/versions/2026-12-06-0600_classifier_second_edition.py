"""classifier second edition: the effective AI Act role of each classification, room for the new roles

Revision ID: e13c1a55f2b6
Revises: c4d2f8e9a310
Create Date: 2026-12-06 06:00:00

- ``classification.effective_role`` (VARCHAR(32), not null): the role the AI Act treats the operator in
  (Art. 25 makes a deployer, importer or distributor of a high-risk system its provider). Existing
  classifications were made before role changes existed, so their effective role is their role.
- ``ai_system.ai_act_role`` and ``classification.ai_act_role`` widen from 16 to 32 characters for
  ``authorised_representative`` and ``product_manufacturer``.

SQLite keeps a VARCHAR length only in the schema text. Rebuilding ``ai_system`` (what a batch alter would do)
breaks the foreign keys that point at it inside the migration's transaction, so on SQLite a column is
replaced in place instead: add a wider copy, fill it, drop the old column, rename the copy (SQLite >= 3.35).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "e13c1a55f2b6"
down_revision: str | None = "c4d2f8e9a310"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ROLES = ("provider", "deployer", "importer", "distributor")
NEW_ROLES = (*OLD_ROLES, "authorised_representative", "product_manufacturer")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _sqlite_resize(table: str, column: str, length: int, default: str) -> None:
    """Give a SQLite column a new VARCHAR length without rebuilding its table (values kept)."""
    copy = f"{column}_resized"
    op.execute(f"ALTER TABLE {table} ADD COLUMN {copy} VARCHAR({length}) NOT NULL DEFAULT '{default}'")
    op.execute(f"UPDATE {table} SET {copy} = {column}")
    op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.execute(f"ALTER TABLE {table} RENAME COLUMN {copy} TO {column}")


def upgrade() -> None:
    if _sqlite():
        _sqlite_resize("ai_system", "ai_act_role", 32, "deployer")
        _sqlite_resize("classification", "ai_act_role", 32, "provider")
        op.execute("ALTER TABLE classification ADD COLUMN effective_role VARCHAR(32) NOT NULL DEFAULT ''")
        op.execute("UPDATE classification SET effective_role = ai_act_role")
        return
    op.alter_column(
        "ai_system",
        "ai_act_role",
        existing_type=sa.Enum(*OLD_ROLES, name="aiactrole", native_enum=False, length=16),
        type_=sa.Enum(*NEW_ROLES, name="aiactrole", native_enum=False, length=32),
        existing_nullable=False,
    )
    op.alter_column(
        "classification",
        "ai_act_role",
        existing_type=sqlmodel.sql.sqltypes.AutoString(length=16),
        type_=sqlmodel.sql.sqltypes.AutoString(length=32),
        existing_nullable=False,
    )
    op.add_column(
        "classification",
        sa.Column("effective_role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    )
    op.execute("UPDATE classification SET effective_role = ai_act_role")
    op.alter_column(
        "classification",
        "effective_role",
        existing_type=sqlmodel.sql.sqltypes.AutoString(length=32),
        nullable=False,
    )


def downgrade() -> None:
    new = ", ".join(f"'{r}'" for r in NEW_ROLES if r not in OLD_ROLES)
    bind = op.get_bind()
    used = bind.execute(
        sa.text(
            f"SELECT (SELECT COUNT(*) FROM ai_system WHERE ai_act_role IN ({new}))"
            f" + (SELECT COUNT(*) FROM classification WHERE ai_act_role IN ({new}))"
        )
    ).scalar_one()
    if used:
        raise RuntimeError(
            f"cannot downgrade: {used} systems or classifications use an AI Act role the older schema cannot "
            "hold (authorised_representative, product_manufacturer); change them first"
        )
    if _sqlite():
        op.execute("ALTER TABLE classification DROP COLUMN effective_role")
        _sqlite_resize("classification", "ai_act_role", 16, "provider")
        _sqlite_resize("ai_system", "ai_act_role", 16, "deployer")
        return
    op.drop_column("classification", "effective_role")
    op.alter_column(
        "classification",
        "ai_act_role",
        existing_type=sqlmodel.sql.sqltypes.AutoString(length=32),
        type_=sqlmodel.sql.sqltypes.AutoString(length=16),
        existing_nullable=False,
    )
    op.alter_column(
        "ai_system",
        "ai_act_role",
        existing_type=sa.Enum(*NEW_ROLES, name="aiactrole", native_enum=False, length=32),
        type_=sa.Enum(*OLD_ROLES, name="aiactrole", native_enum=False, length=16),
        existing_nullable=False,
    )
