"""The push of a themed reading list the librarian sends (services/reading_lists.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from services.notifications.kinds import Action, Button, Kind
from services.recommend.kinds import BookItem
from services.recommend.text import Words, render_reading_list


class ReadingListPayload(BaseModel):
    # The librarian's send of a themed list: with the reader, the dedupe key.
    send_id: int
    reader_id: int
    list_id: int
    name: str
    books: list[BookItem]


READING_LIST = Kind(
    name="reading_list",
    payload=ReadingListPayload,
    template="lists.sent_title",
    dedupe=lambda p: f"list:{p.send_id}:{p.reader_id}",
    compose=lambda p, locale: render_reading_list(
        Words(locale), {"name": p.name, "books": [b.model_dump() for b in p.books]}, sent=True
    ),
    items="books",
    item_buttons=(Button("recommend.details_button", Action.DETAILS, "record_pk"),),
    label="lists.kind_list",
)

KINDS: tuple[Kind[Any], ...] = (READING_LIST,)
