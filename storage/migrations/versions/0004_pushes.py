"""pushes: reminder preferences, the school calendar, unreachable readers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 22:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_prefs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["readers.id"],
            name=op.f("fk_notification_prefs_reader_id_readers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_prefs")),
        sa.UniqueConstraint("reader_id", "kind", name=op.f("uq_notification_prefs_reader_id_kind")),
    )
    op.create_table(
        "closed_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_closed_days")),
    )
    with op.batch_alter_table("telegram_bindings") as batch:
        batch.add_column(sa.Column("unreachable_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("unreachable_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("telegram_bindings") as batch:
        batch.drop_column("unreachable_reason")
        batch.drop_column("unreachable_at")
    op.drop_table("closed_days")
    op.drop_table("notification_prefs")
