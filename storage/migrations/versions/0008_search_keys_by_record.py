"""search keys by record: a covering index

The search looks a candidate's keys of one kind up by record (``record_pk IN … AND kind = …``,
its compact title above all). With the index on ``record_pk`` alone PostgreSQL fetched every
key of every candidate from the table to test its kind; ``(record_pk, kind, key)`` answers from
the index alone. (SQLite's index on a WITHOUT ROWID table already held the key columns.)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 04:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("search_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_search_keys_record_pk")
        batch_op.create_index(
            "ix_search_keys_record_kind_key", ["record_pk", "kind", "key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("search_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_search_keys_record_kind_key")
        batch_op.create_index("ix_search_keys_record_pk", ["record_pk"], unique=False)
