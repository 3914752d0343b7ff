"""compliance: questionnaires that produce evidence, FRIA (AI Act Art. 27) and DPIA screening (issue 14)

Revision ID: e5b7a2c9d034
Revises: d4a6f1b8c923
Create Date: 2026-12-06 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.db

revision: str = "e5b7a2c9d034"
down_revision: str | None = "d4a6f1b8c923"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "questionnaire_response",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("system_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("questionnaire", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("questionnaire_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("evidence_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("completed_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["evidence_id"], ["evidence.id"], name=op.f("fk_questionnaire_response_evidence_id_evidence")
        ),
        sa.ForeignKeyConstraint(
            ["system_id"], ["ai_system.id"], name=op.f("fk_questionnaire_response_system_id_ai_system")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questionnaire_response")),
    )
    with op.batch_alter_table("questionnaire_response", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_questionnaire_response_system_id"), ["system_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("questionnaire_response", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_questionnaire_response_system_id"))

    op.drop_table("questionnaire_response")
