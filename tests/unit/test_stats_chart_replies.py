"""/stats queues its charts as uploads: they cannot be stored as JSON for a resend after a crash.
/stats is a read handler, so nothing of it is stored; were its replies ever stored, the text would
come back and the charts would be left out rather than resent as something broken."""

from __future__ import annotations

from aiogram import Bot
from aiogram.methods import SendMessage, SendPhoto
from aiogram.types import BufferedInputFile

from handlers.replies import Replies

TOKEN = "42:stats-dummy-token"  # nothing is sent


async def test_chart_uploads_are_left_out_of_stored_replies() -> None:
    bot = Bot(TOKEN)
    try:
        replies = Replies(bot)
        replies.add(SendMessage(chat_id=7, text="stats"))
        png = BufferedInputFile(b"\x89PNG\r\n\x1a\n", filename="loans.png")
        replies.add(SendPhoto(chat_id=7, photo=png, caption="chart"))
        assert len(replies) == 2
        stored = replies.dump()
        assert [entry["method"] for entry in stored] == ["SendMessage"]
        again = Replies(bot)
        again.load(stored)
        assert len(again) == 1
    finally:
        await bot.session.close()
