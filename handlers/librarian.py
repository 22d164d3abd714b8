"""Librarian commands: /checkout, /return, /reader (handlers/desk.py has the desk itself).
Everyone else is refused."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.desk import checked_out_text, reader_command, returned_text
from handlers.middlewares import writes
from handlers.render import Translator
from handlers.replies import Replies
from services.actor import Actor
from services.circulation import checkout, return_copy
from services.policy import LoanPolicy


def is_librarian(event: Message, reader: Actor | None = None) -> bool:
    """Filter: aiogram injects ``reader`` (set by ReaderMiddleware) by name."""
    return reader is not None and reader.is_librarian


async def refuse(message: Message, tr: Translator, replies: Replies) -> None:
    replies.add(message.answer(tr("lib.only")))


async def checkout_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    if reader is None:  # unreachable: the librarian filter needs a bound reader
        return
    args = (command.args or "").split()
    if len(args) != 2:
        replies.add(message.answer(tr("lib.usage_checkout")))
        return
    done = await checkout(
        session, card_no=args[0], barcode=args[1], policy=policy, actor_reader_id=reader.reader_id
    )
    replies.add(message.answer(checked_out_text(tr, done, tz)))


async def return_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    if reader is None:  # unreachable: the librarian filter needs a bound reader
        return
    args = (command.args or "").split()
    if len(args) != 1:
        replies.add(message.answer(tr("lib.usage_return")))
        return
    done = await return_copy(
        session, barcode=args[0], policy=policy, actor_reader_id=reader.reader_id
    )
    replies.add(message.answer(returned_text(tr, done, tz)))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(checkout_command, Command("checkout"), is_librarian, flags=writes())
    router.message.register(return_command, Command("return"), is_librarian, flags=writes())
    router.message.register(reader_command, Command("reader"), is_librarian)
    router.message.register(refuse, Command("checkout", "return", "reader"))
    return router
