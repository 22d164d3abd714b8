"""Rendering outbox notifications into message text (sent by the scheduler's delivery job)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from handlers.corners import render_corner_notification
from handlers.render import Translator, esc, fmt_date


def render_notification(tr: Translator, kind: str, payload: dict[str, Any], tz: ZoneInfo) -> str:
    if kind == "hold_ready":
        if payload.get("deliver_to_office"):
            return tr("notify.hold_ready_office", title=esc(payload["title"]))
        until = datetime.fromisoformat(payload["ready_until"])
        return tr("notify.hold_ready", title=esc(payload["title"]), until=fmt_date(until, tz))
    text = render_corner_notification(tr, kind, payload, tz)
    if text is not None:
        return text
    raise ValueError(f"unknown notification kind {kind!r}")
