"""corner copies off the shelf: copies of a sent batch are on their way

A batch sent to a class corner used to leave its copies 'on_shelf' until a monitor confirmed
them, so the desk lent them and the card offered them. From now on a sent batch marks them
'in_transit' with the corner they go to (services/corner_requests.py). This data migration does
the same for batches sent before: their copies still on the shelf and not yet confirmed. No
schema change; the downgrade puts them back on the shelf.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copies of a sent batch ('proposed') whose arrival is not confirmed yet, going in.
_PENDING_IN = """
    SELECT i.copy_id FROM corner_swap_items i JOIN corner_swaps s ON s.id = i.swap_id
    WHERE s.status = 'proposed' AND i.direction = 'in' AND i.outcome IS NULL
"""


def upgrade() -> None:
    op.execute(
        "UPDATE copies SET status = 'in_transit', corner_id = ("  # noqa: S608 - constants only
        " SELECT s.corner_id FROM corner_swap_items i JOIN corner_swaps s ON s.id = i.swap_id"
        " WHERE i.copy_id = copies.id AND s.status = 'proposed' AND i.direction = 'in'"
        " AND i.outcome IS NULL ORDER BY s.id DESC LIMIT 1)"
        f" WHERE status = 'on_shelf' AND id IN ({_PENDING_IN})"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE copies SET status = 'on_shelf', corner_id = NULL"  # noqa: S608 - constants only
        f" WHERE status = 'in_transit' AND corner_id IS NOT NULL AND id IN ({_PENDING_IN})"
    )
