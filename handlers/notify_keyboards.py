"""A push's buttons as an inline keyboard: the kind declares them as data (services never import
aiogram), render.py fills in labels and ids, and this module packs them for Telegram. Used by the
sender (bot/sender.py); the presses are handled in handlers/notify.py."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.callbacks import BookCB, NotifyCB
from services.notifications import Action
from services.notifications.render import Rendered, RenderedButton

# Numbered item buttons (预约 1, 预约 2, …) per row: more would not fit a phone's width.
ITEMS_PER_ROW = 5


def _button(b: RenderedButton) -> InlineKeyboardButton:
    # 详情 is the book card everywhere: the search router shows it, in a read-only transaction.
    if b.action == Action.DETAILS:
        data = BookCB(record_pk=b.ref).pack()
    else:
        data = NotifyCB(action=b.action, ref=b.ref).pack()
    return InlineKeyboardButton(text=b.label, callback_data=data)


def notification_keyboard(rendered: Rendered) -> InlineKeyboardMarkup | None:
    keyboard = InlineKeyboardBuilder()
    for item_row in rendered.item_rows:  # each list of items starts on a row of its own
        keyboard.row(*(_button(b) for b in item_row), width=ITEMS_PER_ROW)
    if rendered.buttons:
        keyboard.row(*(_button(b) for b in rendered.buttons), width=len(rendered.buttons))
    rows = keyboard.export()
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
