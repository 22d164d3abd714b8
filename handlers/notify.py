"""Push notifications in Telegram form: a kind's buttons become an inline keyboard, and pressing
one does what the button says (renew, keep or give up a ready hold)."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.callbacks import NotifyCB
from services.notifications import RenderedButton


def notification_keyboard(buttons: Sequence[RenderedButton]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    row = [
        InlineKeyboardButton(
            text=b.label, callback_data=NotifyCB(action=b.action, ref=b.ref).pack()
        )
        for b in buttons
    ]
    return InlineKeyboardMarkup(inline_keyboard=[row])
