"""class corners: swap outcomes, damaged copies, draft batches, corner holders

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 22:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPY_STATUSES_OLD = (
    "on_shelf",
    "on_loan",
    "on_hold_shelf",
    "in_corner",
    "in_transit",
    "lost",
    "withdrawn",
)
COPY_STATUSES_NEW = (*COPY_STATUSES_OLD, "damaged")
SWAP_STATUSES_OLD = ("proposed", "confirmed", "cancelled")
SWAP_STATUSES_NEW = ("draft", *SWAP_STATUSES_OLD)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _replace_check(table: str, column: str, values: Sequence[str]) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
        batch_op.create_check_constraint(column, _in(column, values))


def upgrade() -> None:
    _replace_check("copies", "status", COPY_STATUSES_NEW)
    _replace_check("corner_swaps", "status", SWAP_STATUSES_NEW)
    with op.batch_alter_table("corner_swap_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("confirmed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("confirmed_by", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_corner_swap_items_confirmed_by_readers"),
            "readers",
            ["confirmed_by"],
            ["id"],
        )
        batch_op.create_check_constraint(
            "outcome", "outcome IS NULL OR outcome IN ('received', 'missing', 'damaged')"
        )
        batch_op.create_index(batch_op.f("ix_corner_swap_items_copy_id"), ["copy_id"], unique=False)
    op.create_table(
        "corner_holders",
        sa.Column("copy_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["copy_id"],
            ["copies.id"],
            name=op.f("fk_corner_holders_copy_id_copies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["readers.id"],
            name=op.f("fk_corner_holders_reader_id_readers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["readers.id"], name=op.f("fk_corner_holders_recorded_by_readers")
        ),
        sa.PrimaryKeyConstraint("copy_id", name=op.f("pk_corner_holders")),
    )
    with op.batch_alter_table("corner_holders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_corner_holders_reader_id"), ["reader_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("corner_holders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_corner_holders_reader_id"))
    op.drop_table("corner_holders")
    with op.batch_alter_table("corner_swap_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_corner_swap_items_copy_id"))
        batch_op.drop_constraint(op.f("ck_corner_swap_items_outcome"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_corner_swap_items_confirmed_by_readers"), type_="foreignkey"
        )
        batch_op.drop_column("confirmed_by")
        batch_op.drop_column("confirmed_at")
        batch_op.drop_column("outcome")
    op.execute("UPDATE corner_swaps SET status = 'cancelled' WHERE status = 'draft'")
    op.execute("UPDATE copies SET status = 'lost' WHERE status = 'damaged'")
    _replace_check("corner_swaps", "status", SWAP_STATUSES_OLD)
    _replace_check("copies", "status", COPY_STATUSES_OLD)
