"""clean codes

Barcodes and card numbers stored before the desk cleaned them (``b0012``, `` B0012 ``, full-width
``Ｂ００１２``) are rewritten in the one canonical form (NFKC, trimmed, upper case), so a later
import of ``B0012`` updates that copy instead of adding a second one. A code whose clean form
is already taken by another row is left as it was (the librarian sees both at the desk).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 01:50:00
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column): the two kinds of code a scanner types.
CODES = (("copies", "barcode"), ("readers", "card_no"))


def _clean(text: str) -> str:
    # The same rule as services.codes.clean_code; migrations import nothing of ours.
    return unicodedata.normalize("NFKC", text).strip().upper()


def upgrade() -> None:
    bind = op.get_bind()
    for table, column in CODES:
        rows = bind.execute(sa.text(f"SELECT id, {column} FROM {table}")).all()  # noqa: S608
        taken = {value for _, value in rows}
        for row_id, value in rows:
            clean = _clean(value)
            if clean == value or clean in taken or not clean:
                continue
            bind.execute(
                sa.text(f"UPDATE {table} SET {column} = :clean WHERE id = :id"),  # noqa: S608
                {"clean": clean, "id": row_id},
            )
            taken.discard(value)
            taken.add(clean)


def downgrade() -> None:
    # The old spellings are not kept; clean codes are valid under the previous revision too.
    pass
