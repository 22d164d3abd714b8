"""The words of recommendation messages: shared by the bot's replies and the pushes (the weekly
list's kind, services/recommend/kinds.py, and the reading list's, services/reading_list_kinds.py,
compose their text here)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from services.i18n import t
from services.recommend.reasons import reasons_text


class Tr(Protocol):
    """What handlers.render.Translator offers; ``Words`` is the same outside the handlers."""

    @property
    def locale(self) -> str: ...

    def __call__(self, key: str, /, **params: Any) -> str: ...


@dataclass(frozen=True, slots=True)
class Words:
    locale: str

    def __call__(self, key: str, /, **params: Any) -> str:
        return t(key, locale=self.locale, **params)


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def book_lines(tr: Tr, books: Sequence[Mapping[str, object]]) -> list[str]:
    """Numbered books, each with its reasons on the next line."""
    lines = []
    for n, book in enumerate(books, 1):
        authors = book.get("authors")
        author = tr("recommend.author", author=esc(authors)) if authors else ""
        lines.append(tr("recommend.line", n=n, title=esc(book["title"]), author=author))
        reasons = book.get("reasons")
        if isinstance(reasons, list) and reasons:
            lines.append(tr("recommend.reason_line", reason=esc(reasons_text(reasons, tr.locale))))
        if book.get("no_reserve"):
            lines.append(tr(f"recommend.no_reserve_{book['no_reserve']}"))
    return lines


def render_weekly(tr: Tr, books: Sequence[Mapping[str, object]]) -> str:
    return "\n".join([tr("recommend.weekly_title", count=len(books)), *book_lines(tr, books)])


def render_reading_list(tr: Tr, payload: Mapping[str, object], *, sent: bool) -> str:
    title = "lists.sent_title" if sent else "lists.list_title"
    lines = [tr(title, name=esc(payload["name"]))]
    books = payload.get("books")
    for n, book in enumerate(books if isinstance(books, list) else [], 1):
        authors = book.get("authors")
        author = tr("recommend.author", author=esc(authors)) if authors else ""
        lines.append(tr("lists.item_line", n=n, title=esc(book["title"]), author=author))
        if book.get("blurb"):
            lines.append(tr("lists.blurb_line", blurb=esc(book["blurb"])))
    return "\n".join(lines)
