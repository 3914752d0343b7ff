"""audit trail: keyed chain, append-only triggers

Revision ID: b7e1a0c5d201
Revises: eaa662cac373
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

revision: str = "b7e1a0c5d201"
down_revision: str | None = "eaa662cac373"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
