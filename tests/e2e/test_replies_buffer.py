"""The Replies buffer against the emulator over HTTP: stored calls come back identical, results
reach ``then=``, failures after the commit are logged and skipped. The unit of work choosing
transactions is in tests/chat/test_unit_of_work.py."""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import EditMessageText, SendMessage, SetMyCommands, TelegramMethod
from aiogram.types import BotCommand, Message

from bot.proxy import BotApiSession
from handlers.replies import RESULT_UNUSED, Replies
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


async def test_unread_results_over_the_bots_own_session(
    emu_bot: tuple[BotApiEmulator, Bot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot's session leaves the answer of a reply without ``then=`` unread, and still
    raises aiogram's own exceptions for its errors; ``then=`` gets the whole Message."""
    emu, _ = emu_bot
    emu.add_user(8004, first_name="丁")
    emu.add_user(8005, first_name="戊")
    emu.block(8005)
    read: list[str] = []
    check = BaseSession.check_response

    def counting(self: BaseSession, bot: Bot, method: TelegramMethod[Any], *args: Any) -> Any:
        read.append(type(method).__name__)
        return check(self, bot, method, *args)

    monkeypatch.setattr(BaseSession, "check_response", counting)
    session = BotApiSession(api=TelegramAPIServer.from_base(emu.base_url))
    bot = Bot(TOKEN, session=session)
    try:
        got: list[Message] = []

        async def remember(sent: Message) -> None:
            got.append(sent)

        first = SendMessage(chat_id=8004, text="一")
        replies = Replies(bot)
        replies.add(first, then=remember)
        replies.add(SendMessage(chat_id=8004, text="二"))
        replies.add(SendMessage(chat_id=8005, text="被屏蔽"))  # 403: aiogram's error path
        assert await replies.send() == 2
        assert [m.text for m in got] == ["一"] and got[0].chat.id == 8004
        assert read == ["SendMessage", "SendMessage"]  # the 403; the second was left unread
        assert [m["text"] for m in emu.bot_messages(8004)] == ["一", "二"]
        # Errors of an unread call are aiogram's exceptions, as they would be read in full.
        with pytest.raises(TelegramForbiddenError):
            token = RESULT_UNUSED.set(blocked := SendMessage(chat_id=8005, text="再试"))
            try:
                await bot(blocked)
            finally:
                RESULT_UNUSED.reset(token)
        edit = EditMessageText(chat_id=8004, message_id=got[0].message_id, text="一")
        with pytest.raises(TelegramBadRequest, match="not modified"):
            token = RESULT_UNUSED.set(edit)
            try:
                await bot(edit)
            finally:
                RESULT_UNUSED.reset(token)
        emu.faults.add("sendmessage", "429", retry_after=7)
        with pytest.raises(TelegramRetryAfter) as waited:
            token = RESULT_UNUSED.set(again := SendMessage(chat_id=8004, text="三"))
            try:
                await bot(again)
            finally:
                RESULT_UNUSED.reset(token)
        assert waited.value.retry_after == 7
        # Any other call, in the same context, is read in full.
        token = RESULT_UNUSED.set(first)
        try:
            sent = await bot(SendMessage(chat_id=8004, text="四"))
        finally:
            RESULT_UNUSED.reset(token)
        assert isinstance(sent, Message) and sent.text == "四"
    finally:
        await bot.session.close()
