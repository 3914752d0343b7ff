"""compliance: the portfolio tally of requirements per system and framework, and what it was counted from (issue 14)

Revision ID: a7d9c4e2f356
Revises: f6c8b3d0e145
Create Date: 2026-12-06 08:39:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.db

revision: str = "a7d9c4e2f356"
down_revision: str | None = "f6c8b3d0e145"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "requirement_tally",
        sa.Column("system_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("framework", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("met", sa.Integer(), nullable=False),
        sa.Column("open", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
        sa.Column("not_applicable", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"], ["ai_system.id"], name=op.f("fk_requirement_tally_system_id_ai_system")
        ),
        sa.PrimaryKeyConstraint("system_id", "framework", name=op.f("pk_requirement_tally")),
    )
    op.create_table(
        "requirement_tally_state",
        sa.Column("system_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("classification_id", sa.Integer(), nullable=False),
        sa.Column("frameworks_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("fresh_until", sa.Date(), nullable=True),
        sa.Column("computed_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"], ["ai_system.id"], name=op.f("fk_requirement_tally_state_system_id_ai_system")
        ),
        sa.PrimaryKeyConstraint("system_id", name=op.f("pk_requirement_tally_state")),
    )


def downgrade() -> None:
    op.drop_table("requirement_tally_state")
    op.drop_table("requirement_tally")
