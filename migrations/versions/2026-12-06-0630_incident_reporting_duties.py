"""incidents: the reporting duties judged at aware_at

Revision ID: f2a9c7d41e05
Revises: e13c1a55f2b6
Create Date: 2026-12-06 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f2a9c7d41e05"
down_revision: str | None = "e13c1a55f2b6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reporting", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_column("reporting")
