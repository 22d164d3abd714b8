"""The librarian's terminal commands: binding-code sheets and the circulation desk."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from pypdf import PdfReader

from sandbox.sample_data import CATALOGUE_CSV, READERS_CSV
from tests.factories import cli, sqlite_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return sqlite_env(tmp_path / "desk.sqlite3", bot_username="school_library_bot")


def test_codes_for_a_class_and_for_cards(tmp_path: Path, env: dict[str, str]) -> None:
    assert cli(["import", "readers", str(READERS_CSV)], env)[0] == 0
    with READERS_CSV.open(encoding="utf-8") as fh:
        roster = list(csv.DictReader(fh))
    klass = roster[0]["class_name"]
    members = [r for r in roster if r["class_name"] == klass]
    out = tmp_path / "codes.csv"
    code, text = cli(["readers", "codes", "--class", klass, "--out", str(out)], env)
    assert code == 0, text
    assert f"已为 {len(members)} 位读者生成绑定码" in text
    # Chinese headers, with a BOM for Excel.
    assert out.read_bytes().startswith("\ufeff证号,姓名,班级,绑定码,绑定链接".encode())
    with out.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["证号"] for r in rows] == sorted(m["card_no"] for m in members)
    link = "https://t.me/school_library_bot?start="
    assert all(r["绑定链接"] == link + r["绑定码"] for r in rows)
    assert len({r["绑定码"] for r in rows}) == len(rows)
    sheet = PdfReader(out.with_suffix(".pdf")).pages[0].extract_text()
    assert rows[0]["绑定码"] in sheet and rows[0]["姓名"] in sheet
    assert f"证号 {rows[0]['证号']}" in sheet and "书香 · 借书证绑定码" in sheet
    # Two classes: one page each, in one go.
    other = next(r["class_name"] for r in roster if r["class_name"] not in ("", klass))
    both = tmp_path / "both.csv"
    code, text = cli(
        ["readers", "codes", "--class", klass, "--class", other, "--out", str(both)], env
    )
    assert code == 0, text
    pages = [p.extract_text() for p in PdfReader(both.with_suffix(".pdf")).pages]
    assert len(pages) == 2 and klass in pages[0] and other in pages[1]
    # Without the bot's user name there is no link to print.
    code, text = cli(
        ["readers", "codes", "--class", klass, "--out", str(both)],
        {**env, "SHUXIANG_BOT_USERNAME": ""},
    )
    assert code == 1 and "--bot" in text and "SHUXIANG_BOT_USERNAME" in text
    code, text = cli(["readers", "codes", "--class", klass, "--bot", "t.me/x y"], env)
    assert code == 1 and "「t.me/x y」不对" in text

    one = tmp_path / "one.csv"
    cards = [members[0]["card_no"], members[1]["card_no"]]
    code, text = cli(
        ["readers", "codes", "--card", cards[0], "--card", cards[1], "--out", str(one)], env
    )
    assert code == 0, text
    with one.open(encoding="utf-8-sig") as fh:
        assert [r["证号"] for r in csv.DictReader(fh)] == sorted(cards)

    code, text = cli(["readers", "codes", "--card", "NOBODY", "--out", str(one)], env)
    assert code == 1 and "NOBODY" in text
    code, text = cli(["readers", "codes", "--out", str(one)], env)
    assert code == 1 and "--class" in text


def test_desk_checkout_and_return(env: dict[str, str]) -> None:
    assert cli(["import", "catalogue", str(CATALOGUE_CSV)], env)[0] == 0
    assert cli(["import", "readers", str(READERS_CSV)], env)[0] == 0
    with READERS_CSV.open(encoding="utf-8") as fh:
        student = next(r for r in csv.DictReader(fh) if r["role"] == "student")
    with CATALOGUE_CSV.open(encoding="utf-8") as fh:
        book = next(r for r in csv.DictReader(fh) if r.get("barcodes"))
    barcode = book["barcodes"].split(";")[0]
    code, text = cli(["circ", "checkout", student["card_no"], barcode], env)
    assert code == 0 and f"已借出《{book['title']}》" in text, text
    code, text = cli(["circ", "checkout", student["card_no"], barcode], env)
    assert code == 1 and "已被借出" in text
    code, text = cli(["circ", "return", barcode], env)
    assert code == 0 and f"已还《{book['title']}》" in text
    code, text = cli(["circ", "return", barcode], env)
    assert code == 1 and "没有借出记录" in text
    code, text = cli(["circ", "checkout", "NOBODY", barcode], env)
    assert code == 1 and "找不到证号为 NOBODY 的读者" in text


def test_desk_help_is_in_chinese(env: dict[str, str]) -> None:
    code, text = cli(["circ", "--help"], env)
    assert code == 0 and "流通：借书与还书" in text and "借出：把一册书借给读者。" in text
    code, text = cli(["readers", "codes", "--help"], env)
    assert code == 0 and "或指定读者生成一次性绑定码" in text and "班级，例如" in text


def test_desk_commands_refuse_a_missing_database(tmp_path: Path, env: dict[str, str]) -> None:
    target = tmp_path / "elsewhere" / "none.sqlite3"
    env = {**env, "SHUXIANG_DATABASE_URL": f"sqlite+aiosqlite:///{target}"}
    for args in (
        ["circ", "return", "B1"],
        ["search", "三体"],
        ["readers", "codes", "--card", "S1"],
    ):
        code, text = cli(args, env)
        assert code == 2 and "找不到数据库" in text and "shuxiang db upgrade" in text, args
    assert not target.exists()
    # An empty but reachable database that was never migrated says so too.
    assert cli(["db", "upgrade"], env)[0] == 0
    assert cli(["db", "downgrade", "base"], env)[0] == 0
    code, text = cli(["circ", "return", "B1"], env)
    assert code == 2 and "shuxiang db upgrade" in text


def test_reindex_rebuilds_the_search_index(env: dict[str, str]) -> None:
    assert cli(["import", "catalogue", str(CATALOGUE_CSV)], env)[0] == 0
    with CATALOGUE_CSV.open(encoding="utf-8") as fh:
        count = sum(1 for _ in csv.DictReader(fh))
    code, text = cli(["db", "reindex"], env)
    assert code == 0 and f"检索索引已重建：{count} 种图书" in text
    code, text = cli(["search", "红楼梦"], env)
    assert code == 0 and "红楼梦" in text


def test_desk_codes_in_any_case_or_width_and_who_has_the_book(env: dict[str, str]) -> None:
    """The terminal shares the desk's rules: ``sx10005`` and full-width ``ｓｘ１０００５`` are
    SX10005, and a copy that is out says to whom and until when."""
    assert cli(["import", "catalogue", str(CATALOGUE_CSV)], env)[0] == 0
    assert cli(["import", "readers", str(READERS_CSV)], env)[0] == 0
    with READERS_CSV.open(encoding="utf-8") as fh:
        first, second = [r for r in csv.DictReader(fh) if r["role"] == "student"][:2]
    code, text = cli(["circ", "checkout", f" {first['card_no'].lower()} ", "ｓｘ１０００５"], env)
    assert code == 0 and "已借出《西游记》（SX10005）" in text, text
    code, text = cli(["circ", "checkout", second["card_no"], "sx10005"], env)
    assert code == 1 and "已被借出" in text
    assert f"借给了 {first['name']}（{first['class_name']}，证号 {first['card_no']}），应还" in text
    code, text = cli(["circ", "return", "Sx10005\u3000"], env)
    assert code == 0 and "已还《西游记》" in text, text
