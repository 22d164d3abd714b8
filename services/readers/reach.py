"""Who can be reached: SQL conditions on a reader column, shared by every push that picks its
audience (a reader with two endpoints is still one reader: EXISTS, never a join)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists

from storage.models import Endpoint, Relation


def bound(reader_col: Any) -> ColumnElement[bool]:
    """The reader has an endpoint of their own, on any channel."""
    return exists().where(
        and_(Endpoint.reader_id == reader_col, Endpoint.relation == Relation.SELF.value)
    )


def reachable(reader_col: Any) -> ColumnElement[bool]:
    """The reader has an endpoint of their own that no channel has refused."""
    return exists().where(
        and_(
            Endpoint.reader_id == reader_col,
            Endpoint.relation == Relation.SELF.value,
            Endpoint.unreachable_at.is_(None),
        )
    )
