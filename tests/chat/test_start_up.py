"""What start-up loads for the process's life (the app, aiogram's models, the search's
dictionaries) is frozen out of the cyclic collector's full collections, and given back at
shutdown, so that a process building one app after another frees them."""

from __future__ import annotations

import gc

import pytest

from bot.config import load_settings
from nlp.search import SearchEngine
from storage.db import Database
from tests.chat.harness import TOKEN, Harness


async def test_what_start_up_loaded_is_frozen_until_shutdown(
    db: Database,
    db_url: str,
    search_engine: SearchEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(_env_file=None, database_url=db_url, bot_token=TOKEN)
    h = await Harness.start(settings, db=db, search=search_engine, monkeypatch=monkeypatch)
    try:
        assert gc.get_freeze_count() > 0
        # Frozen objects are in no generation: a full collection does not walk them.
        tracked = gc.get_objects()
        assert not any(o is h.app or o is search_engine for o in tracked)
        del tracked
        # And the bot answers as before.
        h.emu.add_user(8101, first_name="甲")
        sent = h.emu.send_text(8101, "/help")
        await h.emu.wait_for_bot_message(
            8101, after_message_id=sent["message"]["message_id"], timeout=30
        )
    finally:
        await h.shut()
    assert gc.get_freeze_count() == 0
