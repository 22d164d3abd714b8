"""Short texts for the bot and the terminal: the figures of a report, a month's 读书之星.

Bot messages are HTML: ``html=True`` escapes names and titles; the terminal gets plain text."""

from __future__ import annotations

import html as html_module
import re
from zoneinfo import ZoneInfo

from services.i18n import t
from services.stats.figures import ScopeKind, Stats
from services.stats.reports.document import scope_label, summary
from services.stats.stars import Star

TOP_IN_MESSAGE = 5
TAGS = re.compile(r"</?b>")


def _finish(lines: list[str], html: bool) -> str:
    text = "\n".join(lines)
    return text if html else TAGS.sub("", text)


def stats_text(stats: Stats, tz: ZoneInfo, *, html: bool = True) -> str:
    esc = html_module.escape if html else str
    lines = [t("stats.bot_head", scope=esc(scope_label(stats)))]
    # The scope is in the heading already.
    for label, value in summary(stats, tz)[1:]:
        lines.append(t("stats.bot_line", label=label, value=esc(value)))
    if stats.top_books:
        lines.append(t("stats.bot_top_books"))
        for n, book in enumerate(stats.top_books[:TOP_IN_MESSAGE], start=1):
            lines.append(t("stats.bot_top_line", n=n, title=esc(book.title), count=book.count))
    return _finish(lines, html)


def month_label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def stars_text(stars: list[Star], *, year: int, month: int, html: bool = False) -> str:
    esc = html_module.escape if html else str
    label = month_label(year, month)
    if not stars:
        return t("stats.star.none", month=label)
    lines = [t("stats.star.head", month=label)]
    for kind, heading in (
        (ScopeKind.GRADE, "stats.star.grades"),
        (ScopeKind.CLASS, "stats.star.classes"),
    ):
        groups: dict[str, list[Star]] = {}
        for star in stars:
            if star.kind == kind:
                groups.setdefault(star.group, []).append(star)
        if not groups:
            continue
        lines.append(t(heading))
        for group, winners in groups.items():
            names = t("stats.star.name_sep").join(esc(w.name) for w in winners)
            lines.append(
                t("stats.star.line", group=esc(group), names=names, books=winners[0].books)
            )
    return _finish(lines, html)
