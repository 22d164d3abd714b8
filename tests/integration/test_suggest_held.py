"""Issue 19 item 7: a title the library holds is not a purchase suggestion. The service refuses
it (the chat shows where it is: tests/e2e/test_suggest_held.py), the librarian's list marks one
suggested earlier as 馆藏已有, and the demo's sample suggestions are all for books it lacks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from nlp.search import SearchEngine
from sandbox.demo import SAMPLE_SUGGESTIONS, load_sample_data
from services.catalogue.card import held_title, suggest_purchase
from services.errors import ServiceError
from storage.db import Database
from storage.migrate import upgrade
from storage.models import PurchaseSuggestion


async def test_held_titles_are_not_suggested_and_the_demo_suggests_none(
    db: Database, search_engine: SearchEngine
) -> None:
    await load_sample_data(db, search_engine.indexer)
    async with db.transaction() as s:
        for query in SAMPLE_SUGGESTIONS:
            assert await held_title(s, query) is None, query
        # What the demo used to suggest, however it is written: the library holds it.
        for query in ("小王子", "《小王子》", "哈利·波特与魔法石", "哈利波特与魔法石"):
            found = await held_title(s, query)
            assert found is not None and found.copies >= 1, query
        with pytest.raises(ServiceError) as refused:
            await suggest_purchase(s, query="《小王子》", reader_id=None, telegram_user_id=7)
        assert refused.value.key == "suggest.held"
        assert "图书馆已有《小王子》" in refused.value.render()
        assert await suggest_purchase(s, query="人生海海", reader_id=None, telegram_user_id=7)


async def _suggested_earlier(url: str, search: SearchEngine) -> None:
    db = Database(url)
    await upgrade(db.engine)
    await load_sample_data(db, search.indexer)
    async with db.transaction() as s:
        s.add(PurchaseSuggestion(telegram_user_id=1, query="小王子"))
        s.add(PurchaseSuggestion(telegram_user_id=2, query="人生海海"))
    await db.dispose()


def test_the_cli_list_marks_held_titles(tmp_path: Path, search_engine: SearchEngine) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'held.sqlite3'}"
    asyncio.run(_suggested_earlier(url, search_engine))
    env = {"SHUXIANG_DATABASE_URL": url, "SHUXIANG_LOG_LEVEL": "WARNING"}
    result = CliRunner().invoke(app, ["suggestions", "list"], env=env)
    assert result.exit_code == 0, result.output
    lines = {line.split("\t")[-1].split(" ")[0]: line for line in result.output.splitlines()}
    assert "馆藏已有" in lines["小王子"] and "在架" in lines["小王子"], result.output
    assert "馆藏已有" not in lines["人生海海"], result.output
