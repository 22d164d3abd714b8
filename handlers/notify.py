"""Rendering outbox notifications into message text (sent by the scheduler's delivery job)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardMarkup

from handlers.keyboards import details_keyboard, weekly_keyboard
from handlers.recommend import render_reading_list, render_weekly
from handlers.render import Translator, esc, fmt_date
from services.reading_lists import LIST_KIND
from services.recommend.weekly import WEEKLY_KIND


def render_notification(tr: Translator, kind: str, payload: dict[str, Any], tz: ZoneInfo) -> str:
    if kind == "hold_ready":
        if payload.get("deliver_to_office"):
            return tr("notify.hold_ready_office", title=esc(payload["title"]))
        until = datetime.fromisoformat(payload["ready_until"])
        return tr("notify.hold_ready", title=esc(payload["title"]), until=fmt_date(until, tz))
    if kind == WEEKLY_KIND:
        return render_weekly(tr, payload["books"])
    if kind == LIST_KIND:
        return render_reading_list(tr, payload, sent=True)
    raise ValueError(f"unknown notification kind {kind!r}")


def notification_markup(
    tr: Translator, kind: str, payload: dict[str, Any]
) -> InlineKeyboardMarkup | None:
    """The buttons under a notification (预约/详情/退订/少一点 under the weekly list)."""
    pks = [int(book["record_pk"]) for book in payload.get("books", [])]
    if kind == WEEKLY_KIND:
        return weekly_keyboard(tr, pks)
    if kind == LIST_KIND:
        return details_keyboard(tr, pks)
    return None
