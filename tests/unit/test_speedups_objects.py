"""bot/speedups.py's short cuts for aiogram objects: the same objects as aiogram's own way."""

from __future__ import annotations

from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, Message, Update
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.speedups import bind_bot_directly, shallow_keyboard_export

MESSAGE = {
    "message_id": 1,
    "date": 0,
    "chat": {"id": 7, "type": "private", "first_name": "甲"},
    "from": {"id": 7, "is_bot": False, "first_name": "甲"},
    "text": "x",
    "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]},
}


def test_every_object_is_bound_to_the_bot_as_aiogram_binds_it() -> None:
    # (Another test in this process may have built the bot, and bound them already.)
    before = Update.model_validate({"update_id": 1, "message": MESSAGE}, context={"bot": "B"})
    bind_bot_directly()
    assert bind_bot_directly() == 0  # once is enough
    after = Update.model_validate({"update_id": 1, "message": MESSAGE}, context={"bot": "B"})
    assert after == before and after.message is not None
    message = after.message
    assert message.bot == "B" and message.chat.bot == "B"
    assert message.reply_markup is not None
    assert message.reply_markup.inline_keyboard[0][0].bot == "B"
    assert message.__pydantic_private__ == {"_bot": "B"}
    assert InlineKeyboardButton(text="a", callback_data="b").bot is None
    built = Message.model_construct(message_id=1)  # type: ignore[call-arg]
    assert built.__pydantic_private__ == {"_bot": None}
    method = SendMessage(chat_id=7, text="x")
    assert method.bot is None and method.as_("C").bot == "C"  # type: ignore[arg-type]
    assert message.model_copy().bot == "B"


def test_a_markup_keeps_its_rows_when_the_builder_goes_on() -> None:
    shallow_keyboard_export()
    builder = InlineKeyboardBuilder()
    builder.button(text="一", callback_data="1")
    markup = builder.as_markup()
    builder.button(text="二", callback_data="2")
    builder.adjust(1)
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [["一"]]
    assert [[b.text for b in row] for row in builder.as_markup().inline_keyboard] == [
        ["一"],
        ["二"],
    ]
