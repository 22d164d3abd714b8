"""Whatever no other router took: unknown commands, stickers, photos, stale buttons."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from handlers.context import AnyCtx


async def unknown_command(message: Message, ctx: AnyCtx) -> None:
    ctx.replies.add(message.answer(ctx.tr("errors.unknown_command")))


async def unsupported(message: Message, ctx: AnyCtx) -> None:
    ctx.replies.add(message.answer(ctx.tr("errors.unsupported")))


async def stale_button(callback: CallbackQuery, ctx: AnyCtx) -> None:
    ctx.replies.add(callback.answer(ctx.tr("errors.stale_button"), show_alert=True))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(unknown_command, F.text.startswith("/"))
    router.message.register(unsupported)
    router.callback_query.register(stale_button)
    return router
