"""The push of the weekly new-book list, and ``BookItem``, a book in any pushed list (the reading
lists' push, services/reading_list_kinds.py, shows the same items)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from services.notifications.kinds import Action, Button, Kind
from services.recommend.text import Words, render_weekly


class BookItem(BaseModel):
    record_pk: int
    title: str
    authors: str | None = None
    # services/recommend/reasons.py puts them in words.
    reasons: list[dict[str, Any]] = Field(default_factory=list)
    blurb: str | None = None
    # Why nobody may reserve it when the list was queued (the last part of the refusal key of
    # services.circulation.title_hold_refusal, e.g. on_shelf): then no 预约 N, and the line says so.
    no_reserve: str | None = None


def _reservable(item: BookItem) -> bool:
    return item.no_reserve is None


class WeeklyPayload(BaseModel):
    reader_id: int
    # ISO week ("2026-W48"): with the reader, the dedupe key (one list a week).
    week: str
    books: list[BookItem]


WEEKLY_NEW_BOOKS = Kind(
    name="weekly_new_books",
    payload=WeeklyPayload,
    template="recommend.weekly_title",
    dedupe=lambda p: f"weekly:{p.reader_id}:{p.week}",
    compose=lambda p, locale: render_weekly(Words(locale), [book.model_dump() for book in p.books]),
    items="books",
    item_buttons=(
        Button("recommend.reserve_button", Action.RESERVE, "record_pk", shown=_reservable),
        Button("recommend.details_button", Action.DETAILS, "record_pk"),
    ),
    buttons=(
        Button("recommend.unsubscribe_button", Action.STOP_WEEKLY),
        Button("recommend.fewer_button", Action.FEWER_WEEKLY),
    ),
    label="recommend.kind_weekly",
)

KINDS: tuple[Kind[Any], ...] = (WEEKLY_NEW_BOOKS,)
