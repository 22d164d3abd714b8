"""Rendering outbox notifications into message text (sent by the scheduler's delivery job)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from handlers.render import Translator, esc, fmt_date
from storage.models import SuggestionStatus


def render_notification(tr: Translator, kind: str, payload: dict[str, Any], tz: ZoneInfo) -> str:
    if kind == "hold_ready":
        if payload.get("deliver_to_office"):
            return tr("notify.hold_ready_office", title=esc(payload["title"]))
        until = datetime.fromisoformat(payload["ready_until"])
        return tr("notify.hold_ready", title=esc(payload["title"]), until=fmt_date(until, tz))
    if kind == "reading_star":
        return tr(
            "stats.star.notify",
            month=payload["month"],
            group=esc(payload["group"]),
            books=payload["books"],
        )
    if kind == "reading_star_monitor":
        return tr(
            "stats.star.notify_monitor",
            month=payload["month"],
            class_name=esc(payload["class_name"]),
            names=esc(payload["names"]),
            books=payload["books"],
        )
    if kind == "suggestion_resolved":
        bought = payload["status"] == SuggestionStatus.PURCHASED.value
        key = "stats.suggest.notify_bought" if bought else "stats.suggest.notify_declined"
        return tr(key, query=esc(payload["query"]))
    raise ValueError(f"unknown notification kind {kind!r}")
