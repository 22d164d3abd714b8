"""search index version: search_meta remembers which code built the index

Search round three indexes titles with numbers in digits, names without their dots and
publishers' short names; an index built before it lacks those keys. ``search_meta`` keeps the
version of the code that last rebuilt the index; the bot rebuilds an index whose version is not
its own when it starts (nlp.index.Indexer.refresh). A database upgraded from before this
migration has no version, so its index is rebuilt once.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_meta",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_search_meta")),
    )


def downgrade() -> None:
    op.drop_table("search_meta")
