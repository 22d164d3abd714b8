"""``shuxiang search``: the readable list and the JSON-lines contract other programs rely on."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from nlp.search import SearchEngine
from storage.db import Database
from tests.conftest import JIEBA_CACHE
from tests.integration.test_search import Library, load_catalogue


@pytest.fixture
def library_url(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    target = tmp_path / "cli.sqlite3"
    shutil.copyfile(sqlite_template, target)
    url = f"sqlite+aiosqlite:///{target}"

    async def fill() -> None:
        db = Database(url)
        try:
            await load_catalogue(Library(db, SearchEngine(cache_dir=JIEBA_CACHE)))
        finally:
            await db.dispose()

    asyncio.run(fill())
    monkeypatch.setenv("SHUXIANG_DATABASE_URL", url)
    monkeypatch.setenv("SHUXIANG_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SHUXIANG_LOG_LEVEL", "WARNING")
    return url


def test_json_lines_from_stdin(library_url: str) -> None:
    queries = ["解忧杂货店", "", "hlm", "978-7-5442-7087-8", "😀", "东野圭吾", "9787544270879"]
    result = CliRunner().invoke(
        app, ["search", "--json", "--limit", "3"], input="".join(q + "\n" for q in queries)
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["query"] for line in lines] == queries
    for line in lines:
        assert set(line) == {"query", "results", "took_ms", "cpu_ms", "suggestions"}
        assert isinstance(line["took_ms"], float) and line["took_ms"] >= 0
        assert isinstance(line["cpu_ms"], float) and line["cpu_ms"] >= 0
        assert len(line["results"]) <= 3
        for item in line["results"]:
            assert set(item) == {"record_id", "title", "author", "score"}
    assert lines[0]["results"][0] == {
        "record_id": "s:1",
        "title": "解忧杂货店",
        "author": "[日] 东野圭吾",
        "score": 100.0,
    }
    assert lines[1]["results"] == [] and lines[4]["results"] == []
    assert lines[2]["results"][0]["record_id"] == "s:8"
    assert lines[3]["results"][0]["record_id"] == "s:1"
    assert len(lines[5]["results"]) == 3
    # An ISBN one digit off: nothing found, "did you mean" the catalogue's.
    assert lines[6]["results"] == []
    [suggestion] = lines[6]["suggestions"]
    assert suggestion == {
        "record_id": "s:1",
        "title": "解忧杂货店",
        "author": "[日] 东野圭吾",
        "isbn": "9787544270878",
    }
    assert all(line["suggestions"] == [] for line in lines[:6])


def test_readable_list(library_url: str) -> None:
    result = CliRunner().invoke(app, ["search", "解忧杂货店"])
    assert result.exit_code == 0, result.output
    assert "1. 解忧杂货店  [日] 东野圭吾" in result.stdout
    assert "南海出版公司 2014" in result.stdout
    assert "在架 1/2" in result.stdout


def test_readable_list_shows_call_numbers_and_nothing_found(library_url: str) -> None:
    result = CliRunner().invoke(app, ["search", "I712.45/H52"])
    assert "索书号 I712.45/H52" in result.stdout
    assert "在架 0/2" in result.stdout
    result = CliRunner().invoke(app, ["search", "完全不存在的书名啊"])
    assert result.exit_code == 0
    assert "没有找到" in result.stdout
    result = CliRunner().invoke(app, ["search", "9787544270879"])
    assert "你是不是要找" in result.stdout and "解忧杂货店" in result.stdout


def test_single_query_as_json(library_url: str) -> None:
    result = CliRunner().invoke(app, ["search", "--json", "TP3"])
    assert result.exit_code == 0, result.output
    [line] = [json.loads(x) for x in result.stdout.splitlines()]
    assert {item["record_id"] for item in line["results"]} == {"s:12", "s:13"}
