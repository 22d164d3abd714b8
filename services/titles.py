"""One way to name a book, for every text, push, CSV and PDF.

A record's name is its title with the volume or part it is ("人世间 下部", "平凡的世界 第二部",
"三体Ⅱ 黑暗森林"): the volume is often kept in the subtitle while the title is the bare work
("人世间" / "下部"); a title that holds its volume ("三体Ⅱ") keeps its subtitle, the volume's own
name. The subtitle of a book that is no volume (a tagline) stays out of the name: the book card
shows it. The series buttons of the card read the same names.

Where two records shown together (a list, one message about several books) would still read the
same — two editions, two printings — what tells them apart is added, as little as does it: the
publisher, else the year, else both, else the catalogue's control number. ``tell_apart`` decides
that for one set of records; ``book_names`` loads a set by primary key. The name goes inside the
《》 of the locale's templates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nlp.volumes import ends_in_volume, subtitle_volume
from services.i18n import t
from storage.models import Record

__all__ = [
    "NAME_COLUMNS",
    "NameParts",
    "book_name",
    "book_names",
    "record_name",
    "subtitle_volume",
    "tell_apart",
]

CHUNK = 2000  # record ids per query (bound parameters are limited)
NAME_COLUMNS = (Record.id, Record.title, Record.subtitle, Record.publisher, Record.pub_date)


def book_name(title: str, subtitle: str | None = None) -> str:
    """A record's name: its title, with its subtitle when either says which volume it is."""
    title = title.strip()
    subtitle = (subtitle or "").strip()
    if not subtitle or title.endswith(subtitle):
        return title
    if subtitle_volume(subtitle) is None and not ends_in_volume(title):
        return title
    return t("book_name.volume", title=title, volume=subtitle)


def record_name(record: Record) -> str:
    return book_name(record.title, record.subtitle)


@dataclass(frozen=True, slots=True)
class NameParts:
    """What naming one record needs: the columns of ``NAME_COLUMNS`` (plus the control number)."""

    pk: int
    title: str
    subtitle: str | None = None
    publisher: str | None = None
    pub_date: str | None = None
    record_id: str | None = None

    @property
    def year(self) -> str | None:
        year = (self.pub_date or "").strip()[:4]
        return year if year.isdigit() else None


def _apart(books: list[NameParts]) -> dict[int, str | None]:
    """The fewest facts that tell this group of same-named records apart."""
    publishers = [(b.publisher or "").strip() or None for b in books]
    years = [b.year for b in books]

    def distinct(values: list[tuple[str | None, ...]]) -> bool:
        return len(set(values)) == len(values)

    choices: list[list[tuple[str | None, ...]]] = [
        [(p,) for p in publishers],
        [(t("book_name.year", year=y) if y else None,) for y in years],
        [
            (p, t("book_name.year", year=y) if y else None)
            for p, y in zip(publishers, years, strict=True)
        ],
    ]
    for values in choices:
        if distinct(values):
            return {b.pk: _join(v) for b, v in zip(books, values, strict=True)}
    # Where publisher and year are the same, the catalogue's control number tells them apart.
    both = choices[-1]
    return {
        b.pk: _join(
            (*v, t("book_name.record", record_id=b.record_id) if both.count(v) > 1 else None)
        )
        for b, v in zip(books, both, strict=True)
    }


def _join(values: tuple[str | None, ...]) -> str | None:
    present = [v for v in values if v]
    return t("book_name.apart_join").join(present) if present else None


def tell_apart(books: Iterable[NameParts]) -> dict[int, str]:
    """Each record's name in this set, with what tells it apart where two would read the same."""
    unique = {book.pk: book for book in books}
    named = {pk: book_name(book.title, book.subtitle) for pk, book in unique.items()}
    apart = told_apart((named[pk], book) for pk, book in unique.items())
    return {
        pk: t("book_name.apart", name=name, apart=apart[pk]) if pk in apart else name
        for pk, name in named.items()
    }


def told_apart(books: Iterable[tuple[Hashable, NameParts]]) -> dict[int, str]:
    """What tells apart records shown together whose lines would otherwise read the same (each
    given with the key of what its line shows, e.g. title, subtitle and author in a search
    list): publisher, else year, else both, else the control number. A record whose line no
    other shares gets nothing."""
    groups: dict[Hashable, dict[int, NameParts]] = defaultdict(dict)
    for key, book in books:
        groups[key].setdefault(book.pk, book)
    found: dict[int, str] = {}
    for group in groups.values():
        if len(group) > 1:
            found |= {pk: apart for pk, apart in _apart(list(group.values())).items() if apart}
    return found


async def book_names(session: AsyncSession, pks: Iterable[int]) -> dict[int, str]:
    """The names of a set of records shown together (``tell_apart``), by primary key."""
    wanted = sorted(set(pks))
    if not wanted:
        return {}
    parts: list[NameParts] = []
    for at in range(0, len(wanted), CHUNK):
        rows = await session.execute(
            select(*NAME_COLUMNS, Record.record_id).where(Record.id.in_(wanted[at : at + CHUNK]))
        )
        parts += (NameParts(*row) for row in rows)
    return tell_apart(parts)
