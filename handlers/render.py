"""Shared rendering helpers: translation bound to a locale, dates in the school's time zone."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.i18n import t


class Translator:
    """Injected into handlers as ``tr``: ``tr("loans.title", count=2)``."""

    def __init__(self, locale: str) -> None:
        self.locale = locale

    def __call__(self, key: str, /, **params: Any) -> str:
        return t(key, locale=self.locale, **params)


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def fmt_date(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d")


def short_title(title: str, width: int = 20) -> str:
    """A title cut to fit a phone-wide button: ``width`` columns, a Chinese character taking
    two, an ASCII one one; a cut title ends in "…"."""
    title = " ".join(title.split())
    used = 0
    for at, ch in enumerate(title):
        used += 1 if ch.isascii() else 2
        if used > width:
            return title[:at].rstrip() + "…"
    return title
