"""mlflow: which systems a registered MLflow model is synced into (issue 16, registry webhooks)

Revision ID: d0a2f7b5c689
Revises: b8e0d5f3a467
Create Date: 2026-12-06 12:00:00

``aireg mlflow sync`` records the link; the webhook receiver syncs a new version into every linked system.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.db

revision: str = "d0a2f7b5c689"
down_revision: str | None = "b8e0d5f3a467"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mlflow_link",
        sa.Column("model_name", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("system_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"], ["ai_system.id"], name=op.f("fk_mlflow_link_system_id_ai_system")
        ),
        sa.PrimaryKeyConstraint("model_name", "system_id", name=op.f("pk_mlflow_link")),
    )


def downgrade() -> None:
    op.drop_table("mlflow_link")
