"""The Replies buffer against the emulator over HTTP, and the unit of work choosing transactions:
stored calls come back identical, results reach ``then=``, failures after the commit are
logged and skipped, and a handler that writes without the flag is caught and run as a writer."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.filters import Command
from aiogram.methods import SendMessage, SetMyCommands
from aiogram.types import BotCommand, Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import build_app
from bot.config import load_settings
from handlers import get_routers
from handlers.replies import Replies
from sandbox.emulator import BotApiEmulator
from services.audit import record_audit
from storage.db import Database
from storage.models import AuditEntry, ProcessedUpdate

TOKEN = "616161:REPLIES-secret-token"


@pytest.fixture
async def emu_bot() -> AsyncIterator[tuple[BotApiEmulator, Bot]]:
    async with BotApiEmulator(TOKEN) as emu:
        bot = Bot(
            TOKEN,
            session=emu.aiogram_session(),
            default=DefaultBotProperties(parse_mode=ParseMode.HTML),
        )
        try:
            yield emu, bot
        finally:
            await bot.session.close()


async def test_stored_replies_come_back_the_same(emu_bot: tuple[BotApiEmulator, Bot]) -> None:
    emu, bot = emu_bot
    emu.add_user(8001, first_name="甲")
    sent = emu.send_text(8001, "hi")
    message = Message.model_validate(sent["message"], context={"bot": bot})
    first = Replies(bot)
    first.add(message.answer("<b>粗体</b>"))  # the bot's default parse mode, left unset
    first.add(message.answer("<b>原样</b>", parse_mode=None))
    first.add(SetMyCommands(commands=[BotCommand(command="help", description="帮助")]))
    dumped = first.dump()
    first.clear()
    again = Replies(bot)
    again.load(dumped)
    assert await again.send() == 3
    bold, plain = emu.bot_messages(8001)
    assert bold["text"] == "粗体" and [e["type"] for e in bold["entities"]] == ["bold"]
    assert plain["text"] == "<b>原样</b>" and not plain.get("entities")
    assert [c["command"] for c in emu.commands()] == ["help"]


async def test_then_gets_the_sent_message_and_failures_do_not_stop_the_rest(
    emu_bot: tuple[BotApiEmulator, Bot], caplog: pytest.LogCaptureFixture
) -> None:
    emu, bot = emu_bot
    emu.add_user(8002, first_name="乙")
    emu.add_user(8003, first_name="丙")
    emu.block(8003)
    got: list[int] = []

    async def remember(sent: Message) -> None:
        got.append(sent.message_id)

    replies = Replies(bot)
    replies.add(SendMessage(chat_id=8002, text="一"), then=remember)
    replies.add(SendMessage(chat_id=8003, text="被屏蔽"))  # 403
    replies.add(bot.send_message(8002, "二"))  # a shortcut's coroutine: sent, not stored
    assert len(replies.dump()) == 2
    with caplog.at_level(logging.INFO):
        assert await replies.send() == 2
    assert got == [emu.bot_messages(8002)[0]["message_id"]]
    assert [m["text"] for m in emu.bot_messages(8002)] == ["一", "二"]
    assert "TelegramForbiddenError" in caplog.text
    # Editing to the same content is "message is not modified": already done, not a failure.
    edit = Replies(bot)
    edit.add(bot.edit_message_text("一", chat_id=8002, message_id=got[0]))
    with caplog.at_level(logging.INFO):
        assert await edit.send() == 1
    assert "counted as done" in caplog.text
    # A buffer dropped unsent leaves no "coroutine was never awaited" behind.
    dropped = Replies(bot)
    dropped.add(bot.send_message(8002, "三"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dropped.clear()
    assert len(emu.bot_messages(8002)) == 2


async def poke(message: Message, session: AsyncSession, replies: Replies) -> None:
    """A handler that writes but was not flagged ``writes``."""
    record_audit(session, "test", "poke", {})
    await session.flush()
    replies.add(message.answer("poked"))


async def test_a_handler_that_writes_without_the_flag_is_run_as_a_writer(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def routers() -> list[Router]:
        router = Router(name="poke")
        router.message.register(poke, Command("poke"))
        return [router, *get_routers()]

    monkeypatch.setattr("bot.app.get_routers", routers)
    async with BotApiEmulator(TOKEN) as emu:
        settings = load_settings(
            _env_file=None, database_url=db_url, bot_api_url=emu.base_url, bot_token=TOKEN
        )
        app = build_app(settings, token=TOKEN, db=db)
        polling = asyncio.create_task(app.run_polling(handle_signals=False))
        try:
            emu.add_user(8004, first_name="丁")
            sent = emu.send_text(8004, "/poke")
            reply = await emu.wait_for_bot_message(
                8004, after_message_id=sent["message"]["message_id"], timeout=30
            )
        finally:
            await app.stop()
            await asyncio.wait_for(polling, timeout=10)
            await app.bot.session.close()
    assert reply["text"] == "poked"
    assert "without flags={'writes': True}: run as a writer" in caplog.text
    async with db.transaction(read_only=True) as s:
        assert list(await s.scalars(select(AuditEntry.action))) == ["poke"]
        assert list(await s.scalars(select(ProcessedUpdate.update_id))) == [sent["update_id"]]
