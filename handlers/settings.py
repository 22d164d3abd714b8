"""/settings: which reminders a reader gets (the school's defaults apply otherwise). Only the
kinds declared optional can be switched; overdue reminders and hold notices cannot."""

from __future__ import annotations

from collections.abc import Collection

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.callbacks import SettingsCB
from handlers.context import ReaderCtx
from handlers.middlewares import bound
from services.errors import ServiceError
from services.notifications import preferences, set_preference
from services.notifications.registry import kind_named, optional_kinds


async def _view(ctx: ReaderCtx, defaults_off: Collection[str]) -> tuple[str, InlineKeyboardMarkup]:
    tr = ctx.tr
    kinds = optional_kinds()
    chosen = await preferences(ctx.session, ctx.actor.own_id, [k.name for k in kinds], defaults_off)
    lines = [tr("settings.title")]
    keyboard = InlineKeyboardBuilder()
    for kind in kinds:
        on = chosen[kind.name]
        label = tr(kind.label)
        lines.append(
            tr("settings.line", state=tr("settings.on" if on else "settings.off"), label=label)
        )
        toggle = tr("settings.toggle_off" if on else "settings.toggle_on", label=label)
        keyboard.button(text=toggle, callback_data=SettingsCB(kind=kind.name, on=not on))
    keyboard.adjust(1)  # one switch a row: its label names the reminder
    return "\n".join(lines), keyboard.as_markup()


async def show_settings(
    message: Message, ctx: ReaderCtx, reminder_defaults_off: frozenset[str]
) -> None:
    text, keyboard = await _view(ctx, reminder_defaults_off)
    ctx.replies.add(message.answer(text, reply_markup=keyboard))


async def on_toggle(
    callback: CallbackQuery,
    callback_data: SettingsCB,
    ctx: ReaderCtx,
    reminder_defaults_off: frozenset[str],
) -> None:
    kind = kind_named(callback_data.kind)
    if kind is None or not kind.optional:
        raise ServiceError("settings.not_optional")
    await set_preference(ctx.session, ctx.actor.own_id, kind.name, callback_data.on, ctx.now())
    text, keyboard = await _view(ctx, reminder_defaults_off)
    if isinstance(callback.message, Message):
        ctx.replies.add(callback.message.edit_text(text, reply_markup=keyboard))
    key = "settings.changed_on" if callback_data.on else "settings.changed_off"
    ctx.replies.add(callback.answer(ctx.tr(key, label=ctx.tr(kind.label))))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(show_settings, Command("settings"), flags=bound())
    router.callback_query.register(on_toggle, SettingsCB.filter(), flags=bound(writes=True))
    return router
