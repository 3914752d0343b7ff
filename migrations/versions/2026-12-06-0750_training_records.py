"""compliance: AI literacy training records, Art. 4 (issue 14)

Revision ID: d4a6f1b8c923
Revises: c3f5e0a7b812
Create Date: 2026-12-06 07:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.db

revision: str = "d4a6f1b8c923"
down_revision: str | None = "c3f5e0a7b812"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "training_record",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("person", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("site", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("course", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("completed_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(["site"], ["site.code"], name=op.f("fk_training_record_site_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_record")),
    )
    with op.batch_alter_table("training_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_training_record_site"), ["site"], unique=False)
        batch_op.create_index(batch_op.f("ix_training_record_username"), ["username"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("training_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_record_username"))
        batch_op.drop_index(batch_op.f("ix_training_record_site"))

    op.drop_table("training_record")
