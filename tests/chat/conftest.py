"""The chat tier: the real bot fed updates in process (tests/chat/harness.py), on a migrated
SQLite and PostgreSQL database, one search engine for the session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.config import load_settings
from nlp.search import SearchEngine
from storage.db import Database
from tests.chat.harness import TOKEN, Harness
from tests.people import bot_settings


@pytest.fixture
async def harness(
    db: Database,
    db_url: str,
    search_engine: SearchEngine,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    """The bot of one test; its settings as :func:`tests.people.bot_settings` says."""
    settings = load_settings(
        _env_file=None, database_url=db_url, bot_token=TOKEN, **bot_settings(request)
    )
    # The sender does not pace in this tier (tests/chat/harness.py): values no configuration
    # may set, hence a copy that skips validation.
    settings = settings.model_copy(update={"chat_gap_seconds": 1e-6, "send_rate": 1e6})
    harness = await Harness.start(settings, db=db, search=search_engine, monkeypatch=monkeypatch)
    try:
        yield harness
    finally:
        await harness.shut()
