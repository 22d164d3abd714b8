"""A notification's text and buttons, from its kind's template: no per-kind code here."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.i18n import t
from services.notifications.kinds import Action, kind_named


class UnknownKind(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RenderedButton:
    label: str
    action: Action
    ref: int


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    buttons: tuple[RenderedButton, ...]


def _param(value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d")
    if isinstance(value, str):
        return html.escape(value, quote=False)  # messages go out as HTML
    return value


def render(
    kind_name: str, data: dict[str, Any], tz: ZoneInfo, locale: str | None = None
) -> Rendered:
    kind = kind_named(kind_name)
    if kind is None:
        raise UnknownKind(f"unknown notification kind {kind_name!r}")
    payload = kind.load(data)
    params = {name: _param(getattr(payload, name), tz) for name in type(payload).model_fields}
    text = t(kind.template_for(payload), locale=locale, **params)
    buttons = tuple(
        RenderedButton(t(b.label, locale=locale), b.action, int(getattr(payload, b.ref)))
        for b in kind.buttons
    )
    return Rendered(text, buttons)
