"""The Replies buffer against the emulator over HTTP: stored calls come back identical, results
reach ``then=``, failures after the commit are logged and skipped. The unit of work choosing
transactions is in tests/chat/test_unit_of_work.py."""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.methods import SendMessage, SetMyCommands
from aiogram.types import BotCommand, Message

from handlers.replies import Replies
from sandbox.emulator import BotApiEmulator

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
