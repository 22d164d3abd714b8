"""Welcome, help, and binding a Telegram account to a library card."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import BotCommandScopeChat, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.keyboards import bot_commands, main_menu
from handlers.render import Translator, esc
from services.i18n import t
from services.readers import BoundReader, bind, unbind


async def _bind(
    message: Message, code: str, session: AsyncSession, tr: Translator, bot: Bot
) -> None:
    assert message.from_user is not None
    bound = await bind(
        session, code=code, telegram_user_id=message.from_user.id, chat_id=message.chat.id
    )
    await message.answer(
        tr("bind.ok", name=esc(bound.name), card_no=esc(bound.card_no)), reply_markup=main_menu(tr)
    )
    if bound.is_librarian:
        await bot.set_my_commands(
            bot_commands(tr, librarian=True), scope=BotCommandScopeChat(chat_id=message.chat.id)
        )


async def start_with_code(
    message: Message, command: CommandObject, session: AsyncSession, tr: Translator, bot: Bot
) -> None:
    await _bind(message, command.args or "", session, tr, bot)


async def start(message: Message, reader: BoundReader | None, tr: Translator) -> None:
    if reader is None:
        await message.answer(tr("start.welcome_unbound"), reply_markup=main_menu(tr))
    else:
        await message.answer(
            tr("start.welcome_bound", name=esc(reader.name)), reply_markup=main_menu(tr)
        )


async def help_(message: Message, reader: BoundReader | None, tr: Translator) -> None:
    text = tr("start.help")
    if reader is not None and reader.is_monitor:
        text += "\n\n" + tr("corners.help_monitor")
    if reader is not None and reader.is_librarian:
        text += "\n\n" + tr("start.help_librarian") + "\n\n" + tr("corners.help_librarian")
    await message.answer(text, reply_markup=main_menu(tr))


async def bind_command(
    message: Message, command: CommandObject, session: AsyncSession, tr: Translator, bot: Bot
) -> None:
    if not command.args:
        await message.answer(tr("bind.need_code"))
        return
    await _bind(message, command.args, session, tr, bot)


async def unbind_command(message: Message, session: AsyncSession, tr: Translator, bot: Bot) -> None:
    assert message.from_user is not None
    if await unbind(session, telegram_user_id=message.from_user.id):
        await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id=message.chat.id))
        await message.answer(tr("bind.unbound"))
    else:
        await message.answer(tr("bind.not_bound"))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(start_with_code, CommandStart(deep_link=True))
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.message.register(help_, F.text == t("menu.help"))
    router.message.register(bind_command, Command("bind"))
    router.message.register(unbind_command, Command("unbind"))
    return router
