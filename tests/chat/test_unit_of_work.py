"""The unit of work choosing transactions, in the chat: a handler that writes without the
``writes`` flag is caught and run as a writer (the bot built with one more router)."""

from __future__ import annotations

import pytest
from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy import select

from bot.config import load_settings
from handlers import get_routers
from handlers.context import AnyCtx
from nlp.search import SearchEngine
from services.audit import record_audit
from storage.db import Database
from storage.models import AuditEntry, ProcessedUpdate
from tests.chat.harness import TOKEN, Harness


async def poke(message: Message, ctx: AnyCtx) -> None:
    """A handler that writes but was not flagged ``writes``."""
    record_audit(ctx.session, "test", "poke", {})
    await ctx.session.flush()
    ctx.replies.add(message.answer("poked"))


async def test_a_handler_that_writes_without_the_flag_is_run_as_a_writer(
    db: Database,
    db_url: str,
    search_engine: SearchEngine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def routers() -> list[Router]:
        router = Router(name="poke")
        router.message.register(poke, Command("poke"))
        return [router, *get_routers()]

    monkeypatch.setattr("bot.app.get_routers", routers)
    settings = load_settings(_env_file=None, database_url=db_url, bot_token=TOKEN)
    h = await Harness.start(settings, db=db, search=search_engine, monkeypatch=monkeypatch)
    try:
        h.emu.add_user(8004, first_name="丁")
        sent = h.emu.send_text(8004, "/poke")
        reply = await h.emu.wait_for_bot_message(
            8004, after_message_id=sent["message"]["message_id"], timeout=30
        )
    finally:
        await h.shut()
    assert reply["text"] == "poked"
    assert "without flags={'writes': True}: run as a writer" in caplog.text
    async with db.transaction(read_only=True) as s:
        assert list(await s.scalars(select(AuditEntry.action))) == ["poke"]
        assert list(await s.scalars(select(ProcessedUpdate.update_id))) == [sent["update_id"]]
