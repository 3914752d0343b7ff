"""technical file: Annex IV sections of a system, recorded in the registry (issue 15)

Revision ID: f6c8b3d0e145
Revises: e5b7a2c9d034
Create Date: 2026-12-06 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.db

revision: str = "f6c8b3d0e145"
down_revision: str | None = "e5b7a2c9d034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "technical_file",
        sa.Column("system_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"], ["ai_system.id"], name=op.f("fk_technical_file_system_id_ai_system")
        ),
        sa.PrimaryKeyConstraint("system_id", name=op.f("pk_technical_file")),
    )
    op.create_table(
        "technical_file_section",
        sa.Column("system_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("section_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"], ["ai_system.id"], name=op.f("fk_technical_file_section_system_id_ai_system")
        ),
        sa.PrimaryKeyConstraint("system_id", "section_id", name=op.f("pk_technical_file_section")),
    )


def downgrade() -> None:
    op.drop_table("technical_file_section")
    op.drop_table("technical_file")
