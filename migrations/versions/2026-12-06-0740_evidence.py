"""compliance: evidence files (content-addressed, in the database) and their links to requirements (issue 14)

Revision ID: c3f5e0a7b812
Revises: b7e1d4c9a2f0
Create Date: 2026-12-06 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.db

revision: str = "c3f5e0a7b812"
down_revision: str | None = "b7e1d4c9a2f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence_blob",
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_evidence_blob")),
    )
    op.create_table(
        "evidence_chunk",
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["evidence_blob.sha256"], name=op.f("fk_evidence_chunk_sha256_evidence_blob")
        ),
        sa.PrimaryKeyConstraint("sha256", "seq", name=op.f("pk_evidence_chunk")),
    )
    op.create_table(
        "evidence",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("system_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["evidence_blob.sha256"], name=op.f("fk_evidence_sha256_evidence_blob")
        ),
        sa.ForeignKeyConstraint(
            ["system_id"], ["ai_system.id"], name=op.f("fk_evidence_system_id_ai_system")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence")),
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_evidence_system_id"), ["system_id"], unique=False)

    op.create_table(
        "requirement_evidence",
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("framework", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("control", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("evidence_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("linked_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("linked_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["evidence_id"], ["evidence.id"], name=op.f("fk_requirement_evidence_evidence_id_evidence")
        ),
        sa.PrimaryKeyConstraint(
            "scope", "framework", "control", "evidence_id", name=op.f("pk_requirement_evidence")
        ),
    )
    with op.batch_alter_table("requirement_evidence", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_requirement_evidence_evidence_id"), ["evidence_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("requirement_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requirement_evidence_evidence_id"))

    op.drop_table("requirement_evidence")
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_system_id"))
        batch_op.drop_index(batch_op.f("ix_evidence_sha256"))

    op.drop_table("evidence")
    op.drop_table("evidence_chunk")
    op.drop_table("evidence_blob")
