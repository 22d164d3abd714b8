"""A notification's text and buttons, from its kind's template: no per-kind code here. The kind
is looked up by name in the registry, so importing this module imports every feature's kinds."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.i18n import DEFAULT_LOCALE, t
from services.notifications.kinds import Action, Button, Kind
from services.notifications.registry import kind_named


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
    # One row per item button (预约 1, 预约 2, …), above ``buttons``.
    item_rows: tuple[tuple[RenderedButton, ...], ...] = ()


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
    if kind.compose is not None:
        text = kind.compose(payload, locale or DEFAULT_LOCALE)
    else:
        params = {name: _param(getattr(payload, name), tz) for name in type(payload).model_fields}
        text = t(kind.template_for(payload), locale=locale, **params)
    note = kind.note(payload)
    if note is not None:
        key, numbers = note
        text += "\n" + t(key, locale=locale, **numbers)
    buttons = tuple(
        RenderedButton(t(b.label, locale=locale), b.action, _ref(payload, b))
        for b in kind.buttons
        if b.shown(payload)
    )
    return Rendered(text, buttons, _item_rows(kind, payload, locale))


def _ref(holder: Any, button: Button) -> int:
    return int(getattr(holder, button.ref)) if button.ref else 0


def _item_rows(
    kind: Kind[Any], payload: Any, locale: str | None
) -> tuple[tuple[RenderedButton, ...], ...]:
    items = list(getattr(payload, kind.items)) if kind.items else []
    return tuple(
        tuple(
            RenderedButton(t(b.label, locale=locale, n=n), b.action, _ref(item, b))
            for n, item in enumerate(items, 1)
            if b.shown(item)
        )
        for b in kind.item_buttons
    )
