"""Librarian commands: /checkout, /return, /reader (handlers/desk/ has the desk itself).
Everyone else is refused."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from handlers.context import AnyCtx, ReaderCtx
from handlers.desk import checked_out_text, reader_command, returned_text
from handlers.filters import is_librarian
from handlers.middlewares import bound
from services.circulation import checkout, return_copy


async def refuse(message: Message, ctx: AnyCtx) -> None:
    ctx.replies.add(message.answer(ctx.tr("lib.only")))


async def checkout_command(message: Message, command: CommandObject, ctx: ReaderCtx) -> None:
    args = (command.args or "").split()
    if len(args) != 2:
        ctx.replies.add(message.answer(ctx.tr("lib.usage_checkout")))
        return
    done = await checkout(
        ctx.session,
        actor=ctx.actor,
        card_no=args[0],
        barcode=args[1],
        policy=ctx.policy,
        now=ctx.now(),
    )
    ctx.replies.add(message.answer(checked_out_text(ctx.tr, done, ctx.tz)))


async def return_command(message: Message, command: CommandObject, ctx: ReaderCtx) -> None:
    args = (command.args or "").split()
    if len(args) != 1:
        ctx.replies.add(message.answer(ctx.tr("lib.usage_return")))
        return
    done = await return_copy(
        ctx.session, actor=ctx.actor, barcode=args[0], policy=ctx.policy, now=ctx.now()
    )
    ctx.replies.add(message.answer(returned_text(ctx.tr, done, ctx.tz)))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    # The filter picks librarians (the services check again); bound(): ctx.actor is never None.
    msg = router.message
    msg.register(checkout_command, Command("checkout"), is_librarian, flags=bound(writes=True))
    msg.register(return_command, Command("return"), is_librarian, flags=bound(writes=True))
    msg.register(reader_command, Command("reader"), is_librarian, flags=bound())
    msg.register(refuse, Command("checkout", "return", "reader"))
    return router
