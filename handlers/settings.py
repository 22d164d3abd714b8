"""/settings: which reminders a reader gets (the school's defaults apply otherwise). Only the
kinds declared optional can be switched; overdue reminders and hold notices cannot."""

from __future__ import annotations

from collections.abc import Collection

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import SettingsCB
from handlers.middlewares import bound
from handlers.render import Translator
from handlers.replies import Replies
from services.actor import Actor
from services.errors import ServiceError
from services.notifications import preferences, set_preference
from services.notifications.registry import kind_named, optional_kinds


async def _view(
    session: AsyncSession, reader_id: int, tr: Translator, defaults_off: Collection[str]
) -> tuple[str, InlineKeyboardMarkup]:
    kinds = optional_kinds()
    chosen = await preferences(session, reader_id, [k.name for k in kinds], defaults_off)
    lines = [tr("settings.title")]
    rows = []
    for kind in kinds:
        on = chosen[kind.name]
        label = tr(kind.label)
        lines.append(
            tr("settings.line", state=tr("settings.on" if on else "settings.off"), label=label)
        )
        toggle = tr("settings.toggle_off" if on else "settings.toggle_on", label=label)
        rows.append(
            [
                InlineKeyboardButton(
                    text=toggle, callback_data=SettingsCB(kind=kind.name, on=not on).pack()
                )
            ]
        )
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def show_settings(
    message: Message,
    session: AsyncSession,
    reader: Actor,
    tr: Translator,
    reminder_defaults_off: frozenset[str],
    replies: Replies,
) -> None:
    text, keyboard = await _view(session, reader.own_id, tr, reminder_defaults_off)
    replies.add(message.answer(text, reply_markup=keyboard))


async def on_toggle(
    callback: CallbackQuery,
    callback_data: SettingsCB,
    session: AsyncSession,
    reader: Actor,
    tr: Translator,
    reminder_defaults_off: frozenset[str],
    replies: Replies,
) -> None:
    kind = kind_named(callback_data.kind)
    if kind is None or not kind.optional:
        raise ServiceError("settings.not_optional")
    await set_preference(session, reader.own_id, kind.name, callback_data.on)
    text, keyboard = await _view(session, reader.own_id, tr, reminder_defaults_off)
    if isinstance(callback.message, Message):
        replies.add(callback.message.edit_text(text, reply_markup=keyboard))
    key = "settings.changed_on" if callback_data.on else "settings.changed_off"
    replies.add(callback.answer(tr(key, label=tr(kind.label))))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(show_settings, Command("settings"), flags=bound())
    router.callback_query.register(on_toggle, SettingsCB.filter(), flags=bound(writes=True))
    return router
