"""Catalogue and roster importers, on SQLite and PostgreSQL, plus the ``shuxiang import`` CLI."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from nlp import index as index_module
from nlp.index import CATALOGUE_TABLES, Indexer
from sandbox.sample_data import CATALOGUE_CSV, READERS_CSV
from sandbox.shared_data import shared_data_dir
from services.imports.catalogue import (
    CatalogueReport,
    ImportFileError,
    ImportRejected,
    ReaderReport,
    check_import_file,
    generated_barcode,
    import_catalogue,
    import_readers,
)
from storage.bulk import insert_rows
from storage.db import Database
from storage.models import AuditEntry, Copy, CopyStatus, Reader, Record, utcnow
from storage.search_tables import SearchKey, SearchTerm

SHARED_DATA = shared_data_dir()

HEADER = "record_id,isbn,title,subtitle,author,translator,copies,barcodes,tags,summary\n"
GOOD = (
    HEADER
    + "sx:1,978-7-5366-9293-0,  三体 ,,刘慈欣,,,A001;A002,科幻; 刘慈欣 ;,地球文明与三体文明的接触\n"
    + "sx:2,,追风筝的人,,[美] 卡勒德·胡赛尼,李继宏,3,,成长,\n"
    + "sx:3,7-02-004249-X,小王子,,[法] 圣埃克苏佩里,马振骋,0,,,\n"
)


def write(tmp_path: Path, content: str | bytes, name: str = "books.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


async def run_catalogue(db: Database, path: Path, **options: Any) -> CatalogueReport:
    """The importer in its own unit of work, as the CLI runs it."""
    async with db.transaction() as session:
        return await import_catalogue(session, path, **options)


async def run_readers(db: Database, path: Path, **options: Any) -> ReaderReport:
    async with db.transaction() as session:
        return await import_readers(session, path, **options)


async def count(db: Database, model: type[object]) -> int:
    async with db.transaction(read_only=True) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def record(db: Database, record_id: str) -> Record:
    async with db.transaction(read_only=True) as session:
        found = await session.scalar(select(Record).where(Record.record_id == record_id))
        assert found is not None
        return found


async def barcodes_of(db: Database, record_id: str) -> list[str]:
    async with db.transaction(read_only=True) as session:
        rows = await session.scalars(
            select(Copy.barcode)
            .join(Record, Record.id == Copy.record_pk)
            .where(Record.record_id == record_id)
            .order_by(Copy.barcode)
        )
        return list(rows)


@pytest.fixture
def indexed(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Record the pks handed to the search-index hook, one list per import."""
    calls: list[list[int]] = []

    async def fake_index(_: Indexer, session: AsyncSession, record_pks: Sequence[int]) -> None:
        calls.append(list(record_pks))

    monkeypatch.setattr(Indexer, "index_records", fake_index)
    return calls


# ---------------------------------------------------------------------------------------------
# Catalogue: happy path and idempotence


async def test_import_catalogue_creates_records_and_copies(
    db: Database, tmp_path: Path, indexed: list[list[int]]
) -> None:
    progress: list[tuple[int, int]] = []
    started = utcnow()
    report = await run_catalogue(
        db, write(tmp_path, GOOD), progress=lambda done, total: progress.append((done, total))
    )
    finished = utcnow()

    assert (report.rows, report.records_created, report.records_updated) == (3, 3, 0)
    assert report.records_unchanged == 0
    assert report.copies_added == 5
    assert report.skipped == [] and report.truncated == []
    assert progress[-1] == (3, 3)

    santi = await record(db, "sx:1")
    assert santi.title == "三体"  # stripped
    assert santi.isbn == "9787536692930"
    assert santi.subtitle is None and santi.translators is None  # empty -> None
    assert santi.tags == "科幻;刘慈欣"
    # Bulk-loaded rows (COPY on PostgreSQL) still get their stamps as aware UTC, and defaults.
    assert started <= santi.catalogued_at <= finished
    assert santi.updated_at == santi.catalogued_at and santi.loan_count == 0
    assert await barcodes_of(db, "sx:1") == ["A001", "A002"]

    kite = await record(db, "sx:2")
    assert kite.authors == "[美] 卡勒德·胡赛尼"
    assert kite.translators == "李继宏"
    assert await barcodes_of(db, "sx:2") == [generated_barcode(kite.id, n) for n in (1, 2, 3)]

    prince = await record(db, "sx:3")
    assert prince.isbn == "9787020042494"  # ISBN-10 stored as ISBN-13
    assert await barcodes_of(db, "sx:3") == []

    async with db.transaction(read_only=True) as session:
        statuses = set(await session.scalars(select(Copy.status)))
        audit = (await session.scalars(select(AuditEntry))).all()
    assert statuses == {CopyStatus.ON_SHELF.value}
    async with db.transaction(read_only=True) as session:
        copies = (await session.scalars(select(Copy))).all()
    assert all(started <= c.created_at <= finished and c.corner_id is None for c in copies)
    assert [(a.actor, a.action) for a in audit] == [("cli", "import_catalogue")]
    assert audit[0].detail["created"] == 3 and audit[0].detail["copies_added"] == 5
    assert sorted(indexed[0]) == sorted([santi.id, kite.id, prince.id])


async def test_reimport_changes_nothing_then_updates_only_what_changed(
    db: Database, tmp_path: Path, indexed: list[list[int]]
) -> None:
    path = write(tmp_path, GOOD)
    await run_catalogue(db, path)
    before = {rid: await record(db, rid) for rid in ("sx:1", "sx:2", "sx:3")}

    again = await run_catalogue(db, path)
    assert (again.records_created, again.records_updated, again.copies_added) == (0, 0, 0)
    assert again.records_unchanged == 3
    assert indexed[1:] == []  # nothing written, nothing to re-index
    assert await count(db, Copy) == 5

    changed = GOOD.replace("追风筝的人", "追风筝的人（新版）").replace(",3,,成长", ",4,,成长")
    third = await run_catalogue(db, write(tmp_path, changed))
    assert (third.records_created, third.records_updated, third.records_unchanged) == (0, 1, 2)
    assert third.copies_added == 1  # the 4th minted copy; the first three are not duplicated

    kite = await record(db, "sx:2")
    assert kite.title == "追风筝的人（新版）"
    assert kite.catalogued_at == before["sx:2"].catalogued_at
    assert kite.updated_at > before["sx:2"].updated_at
    santi = await record(db, "sx:1")
    assert santi.updated_at == before["sx:1"].updated_at  # untouched rows keep updated_at
    assert indexed[-1] == [kite.id]
    assert await barcodes_of(db, "sx:2") == [generated_barcode(kite.id, n) for n in (1, 2, 3, 4)]


async def test_import_never_deletes_copies(db: Database, tmp_path: Path) -> None:
    await run_catalogue(db, write(tmp_path, GOOD))
    fewer = GOOD.replace("A001;A002", "A001").replace(",3,,成长", ",1,,成长")
    report = await run_catalogue(db, write(tmp_path, fewer))
    assert report.copies_added == 0
    assert await barcodes_of(db, "sx:1") == ["A001", "A002"]
    assert await count(db, Copy) == 5


async def test_columns_missing_from_the_file_are_left_alone(db: Database, tmp_path: Path) -> None:
    await run_catalogue(db, write(tmp_path, GOOD))
    report = await run_catalogue(
        db, write(tmp_path, "record_id,title\nsx:1,三体\nsx:2,追风筝的人（新版）\n", "short.csv")
    )
    assert (report.records_updated, report.records_unchanged) == (1, 1)
    kite = await record(db, "sx:2")
    assert kite.title == "追风筝的人（新版）"
    assert kite.translators == "李继宏" and kite.authors == "[美] 卡勒德·胡赛尼"
    assert (await record(db, "sx:1")).isbn == "9787536692930"


async def test_bom_crlf_unknown_columns_and_blank_lines(db: Database, tmp_path: Path) -> None:
    content = (
        "\ufeffRecord_ID,Title,shelf_mark,copies\r\n"
        "sx:1,三体,ignored,1\r\n"
        "\r\n"
        "sx:2,球状闪电,ignored,2\r\n"
    )
    report = await run_catalogue(db, write(tmp_path, content))
    assert (report.rows, report.records_created, report.copies_added) == (2, 2, 3)


async def test_overlong_field_is_truncated_and_reported(db: Database, tmp_path: Path) -> None:
    long_date = "1958年4月北京第1版 1987年4月北京第3次印刷"
    report = await run_catalogue(
        db, write(tmp_path, f"record_id,title,pub_date\nsx:1,书,{long_date}\n")
    )
    assert report.records_created == 1
    assert [(p.line, "pub_date" in p.reason) for p in report.truncated] == [(2, True)]
    assert (await record(db, "sx:1")).pub_date == long_date[:20].rstrip()
    again = await run_catalogue(
        db, write(tmp_path, f"record_id,title,pub_date\nsx:1,书,{long_date}\n")
    )
    assert again.records_unchanged == 1


# ---------------------------------------------------------------------------------------------
# Catalogue: bad rows

BAD = (
    b"record_id,isbn,title,copies,barcodes,summary\n"  # 1
    b'sx:1,,\xe4\xb8\x89\xe4\xbd\x93,1,B1,"line one\nline two\nline three"\n'  # 2-4
    b"sx:2,,,1,,\n"  # 5 no title
    b"sx:3,9787536692931,T3,1,,\n"  # 6 bad ISBN check digit
    b",,T4,1,,\n"  # 7 no record_id
    b"sx:1,,T5,1,,\n"  # 8 duplicate record_id (of line 2)
    b"sx:6,,T6,two,,\n"  # 9 copies not an integer
    b"sx:7,,T7,,B1,\n"  # 10 barcode already used on line 2
    b"sx:8,,T\xff8,1,,\n"  # 11 broken UTF-8
    b"sx:9,12345,T9,1,,\n"  # 12 ISBN of the wrong shape
    b'sx:10,,T10,1,,"a\r\nb"\n'  # 13-14 fine
    b"sx:11,,T11,-1,,\n"  # 15 negative copies
    b"sx:12,,T12,1,B2;B2,\n"  # 16 same barcode twice in a row
    b"sx:13,,T13,1,G00000001-1,\n"  # 17 reserved barcode form
    b"sx:14,,T14,1,,\n"  # 18 fine
)
BAD_LINES = {
    5: "题名",
    6: "校验位",
    7: "记录号",
    8: "与第 2 行重复",
    9: "副本数",
    10: "第 2 行",
    11: "UTF-8",
    12: "格式不正确",
    15: "副本数",
    16: "两次",
    17: "自动生成",
}


async def test_each_bad_row_is_reported_with_its_line_and_nothing_is_written(
    db: Database, tmp_path: Path
) -> None:
    with pytest.raises(ImportRejected) as caught:
        await run_catalogue(db, write(tmp_path, BAD))

    problems = {p.line: p.reason for p in caught.value.problems}
    assert sorted(problems) == sorted(BAD_LINES)
    for line, words in BAD_LINES.items():
        assert words in problems[line], (line, problems[line])
    assert str(caught.value.problems[0]).startswith("第 5 行：")
    # The full wording, as the catalogue (services/locales/zh-CN/*.toml) gives it.
    assert str(caught.value) == "11 处问题，未导入任何数据"
    assert problems[6] == "ISBN「9787536692931」校验位不正确"
    assert problems[8] == "《T5》的记录号 sx:1 与第 2 行重复"  # names the book
    assert problems[17] == "条码 G00000001-1 的格式（G+8位数字-序号）留给系统自动生成，请换一个"
    assert await count(db, Record) == 0
    assert await count(db, Copy) == 0
    assert await count(db, AuditEntry) == 0


async def test_skip_bad_imports_the_good_rows(db: Database, tmp_path: Path) -> None:
    report = await run_catalogue(db, write(tmp_path, BAD), skip_bad=True)

    assert [p.line for p in report.skipped] == sorted(BAD_LINES)
    assert report.records_created == 3  # lines 2, 13, 18
    async with db.transaction(read_only=True) as session:
        ids = set(await session.scalars(select(Record.record_id)))
    assert ids == {"sx:1", "sx:10", "sx:14"}
    assert (await record(db, "sx:1")).summary == "line one\nline two\nline three"
    assert (await record(db, "sx:10")).summary == "a\r\nb"
    assert await barcodes_of(db, "sx:1") == ["B1"]


async def test_one_bad_row_rejects_the_whole_file(db: Database, tmp_path: Path) -> None:
    content = "record_id,title\n" + "".join(f"sx:{i},书{i}\n" for i in range(1, 200)) + "sx:x,\n"
    with pytest.raises(ImportRejected) as caught:
        await run_catalogue(db, write(tmp_path, content))
    assert [p.line for p in caught.value.problems] == [201]
    assert await count(db, Record) == 0


async def test_barcode_owned_by_another_record_in_the_database(
    db: Database, tmp_path: Path
) -> None:
    await run_catalogue(db, write(tmp_path, "record_id,title,barcodes\nsx:1,三体,B1;B2\n"))
    clash = "record_id,title,barcodes\nsx:2,球状闪电,B3\nsx:3,流浪地球,B4;B2\n"

    with pytest.raises(ImportRejected) as caught:
        await run_catalogue(db, write(tmp_path, clash, "clash.csv"))
    [problem] = caught.value.problems
    assert problem.line == 3
    assert "B2" in problem.reason and "sx:1" in problem.reason
    assert "《三体》" in problem.reason  # the book, not an internal row number
    assert await count(db, Record) == 1

    report = await run_catalogue(db, write(tmp_path, clash, "clash.csv"), skip_bad=True)
    assert [p.line for p in report.skipped] == [3]
    assert report.records_created == 1
    assert await barcodes_of(db, "sx:1") == ["B1", "B2"]
    assert await barcodes_of(db, "sx:2") == ["B3"]


async def test_missing_required_column_is_rejected_on_line_1(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ImportRejected) as caught:
        await run_catalogue(db, write(tmp_path, "record_id,author\nsx:1,某人\n"))
    [problem] = caught.value.problems
    assert problem.line == 1 and "title" in problem.reason


async def test_missing_empty_and_undecodable_files(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="找不到文件"):
        await run_catalogue(db, tmp_path / "nope.csv")
    with pytest.raises(ImportFileError, match="文件为空"):
        await run_catalogue(db, write(tmp_path, b""))
    with pytest.raises(ImportFileError, match="文件为空"):
        await run_catalogue(db, write(tmp_path, "\ufeff\n\n"))
    # Neither UTF-8 nor GB18030: 0xFF never starts a GB18030 character.
    broken = "card_no,name,role\nS1,某人,student\n".encode("gbk") + b"S2,\xff\xff,student\n"
    with pytest.raises(ImportFileError) as caught:
        await run_readers(db, write(tmp_path, broken))
    assert str(caught.value).startswith(
        "第 3 行有无法解码的字节：文件既不是 UTF-8 也不是 GB18030/GBK"
    )
    assert await count(db, Reader) == 0


# ---------------------------------------------------------------------------------------------
# The caller's unit of work owns the transaction


class _Abandon(Exception):
    pass


async def test_importers_never_commit_the_callers_rollback_undoes_everything(
    db: Database, tmp_path: Path
) -> None:
    with pytest.raises(_Abandon):
        async with db.transaction() as session:
            report = await import_catalogue(session, write(tmp_path, GOOD))
            roster = await import_readers(session, write(tmp_path, ROSTER, "roster.csv"))
            assert (report.records_created, roster.created) == (3, 6)
            # Flushed: visible inside the caller's transaction, index and audit included.
            assert await session.scalar(select(func.count()).select_from(Record)) == 3
            assert await session.scalar(select(func.count()).select_from(SearchTerm))
            assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 2
            raise _Abandon

    for model in (Record, Copy, Reader, AuditEntry, SearchTerm, SearchKey):
        assert await count(db, model) == 0, model


async def test_imports_share_one_unit_of_work(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    async with db.transaction() as session:
        first = await import_catalogue(session, path)
        again = await import_catalogue(session, path)
    assert first.records_created == 3
    assert (again.records_created, again.records_unchanged, again.copies_added) == (0, 3, 0)
    assert await count(db, Copy) == 5
    assert await count(db, AuditEntry) == 2


async def test_rejected_file_leaves_the_callers_other_work_alone(
    db: Database, tmp_path: Path
) -> None:
    async with db.transaction() as session:
        await import_catalogue(session, write(tmp_path, GOOD))
        with pytest.raises(ImportRejected):
            await import_catalogue(session, write(tmp_path, BAD, "bad.csv"))
    # The rejected file wrote nothing, so the caller may still commit what it did before.
    assert await count(db, Record) == 3
    assert await count(db, AuditEntry) == 1


def test_check_import_file(tmp_path: Path) -> None:
    check_import_file(write(tmp_path, GOOD))
    with pytest.raises(ImportFileError, match="找不到文件"):
        check_import_file(tmp_path / "nope.csv")
    with pytest.raises(ImportFileError, match="不是普通文件"):
        check_import_file(tmp_path)


# ---------------------------------------------------------------------------------------------
# Readers

ROSTER = (
    "card_no,name,role,grade,class_name\n"
    "S001,严晓,student,高一,高一（1）班\n"
    "S002,谢怡诗,学生,高一,高一(1)班\n"
    "T001,汤怡鹏,teacher,,\n"
    "T002,贾嘉曦,老师,,\n"
    "L001,何诺,librarian,,\n"
    "L002,姚杰涵,图书管理员,,\n"
)


async def test_import_readers_with_roles_and_idempotence(db: Database, tmp_path: Path) -> None:
    report = await run_readers(db, write(tmp_path, ROSTER))
    assert (report.rows, report.created, report.updated, report.unchanged) == (6, 6, 0, 0)

    async with db.transaction(read_only=True) as session:
        readers = {r.card_no: r for r in await session.scalars(select(Reader))}
    assert {c: r.role for c, r in readers.items()} == {
        "S001": "student",
        "S002": "student",
        "T001": "teacher",
        "T002": "teacher",
        "L001": "librarian",
        "L002": "librarian",
    }
    assert readers["S001"].class_name == "高一(1)班"  # brackets normalised
    assert readers["T001"].grade is None and readers["T001"].active

    again = await run_readers(db, write(tmp_path, ROSTER))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)

    # One moved class, one new; the readers left out of the file stay active.
    changed = (
        "card_no,name,role,grade,class_name\nS001,严晓,student,高一,高一(2)班\nS003,新生,学生,,\n"
    )
    third = await run_readers(db, write(tmp_path, changed))
    assert (third.created, third.updated, third.unchanged) == (1, 1, 0)
    async with db.transaction(read_only=True) as session:
        readers = {r.card_no: r for r in await session.scalars(select(Reader))}
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert readers["S001"].class_name == "高一(2)班"
    assert len(readers) == 7 and all(r.active for r in readers.values())
    assert actions == ["import_readers"] * 3


async def test_bad_reader_rows(db: Database, tmp_path: Path) -> None:
    content = (
        "card_no,name,role,grade,class_name\n"  # 1
        "S001,严晓,student,高一,高一(1)班\n"  # 2
        "S002,谢怡诗,principal,,\n"  # 3 unknown role
        ",无卡号,student,,\n"  # 4
        "S004,,student,,\n"  # 5 no name
        "S001,重复,student,,\n"  # 6 duplicate card
        "S006,无角色,,,\n"  # 7 empty role
        "S007,正常,teacher,,\n"  # 8
    )
    with pytest.raises(ImportRejected) as caught:
        await run_readers(db, write(tmp_path, content))
    problems = {p.line: p.reason for p in caught.value.problems}
    assert sorted(problems) == [3, 4, 5, 6, 7]
    assert problems[3] == (
        "未知的角色「principal」（应为 student/teacher/librarian 或 学生/教师/图书管理员）"
    )
    assert problems[4] == "缺少借书证号（card_no）"
    assert "与第 2 行重复" in problems[6]
    assert await count(db, Reader) == 0

    report = await run_readers(db, write(tmp_path, content), skip_bad=True)
    assert report.created == 2 and [p.line for p in report.skipped] == [3, 4, 5, 6, 7]

    with pytest.raises(ImportRejected) as caught:
        await run_readers(db, write(tmp_path, "card_no,name\nS1,某人\n"))
    assert caught.value.problems[0].line == 1 and "role" in caught.value.problems[0].reason


# ---------------------------------------------------------------------------------------------
# The project's own sample data and the shared catalogue


def _expected_copies(path: Path) -> tuple[int, int]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    copies = sum(
        len([b for b in r["barcodes"].split(";") if b]) if r["barcodes"] else int(r["copies"] or 0)
        for r in rows
    )
    return len(rows), copies


async def test_sample_data_imports_cleanly(db: Database) -> None:
    report = await run_catalogue(db, CATALOGUE_CSV)
    records, copies = _expected_copies(CATALOGUE_CSV)
    assert 250 <= records <= 350
    assert report.skipped == [] and report.truncated == []
    assert (report.records_created, report.copies_added) == (records, copies)

    readers = await run_readers(db, READERS_CSV)
    assert readers.skipped == [] and readers.created == readers.rows
    async with db.transaction(read_only=True) as session:
        result = await session.execute(select(Reader.role, func.count()).group_by(Reader.role))
        roles: dict[str, int] = {role: n for role, n in result}
    assert roles["librarian"] >= 1 and roles["teacher"] >= 1 and roles["student"] >= 40


async def _index_rows(db: Database) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    async with db.transaction(read_only=True) as session:
        terms = (
            await session.execute(select(SearchTerm.__table__).order_by(*SearchTerm.__table__.c))
        ).all()
        keys = (
            await session.execute(select(SearchKey.__table__).order_by(*SearchKey.__table__.c))
        ).all()
    return [tuple(r) for r in terms], [tuple(r) for r in keys]


async def test_index_written_chunk_by_chunk_equals_one_pass(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks: the rows of one chunk are worked out while the previous one's are written.
    monkeypatch.setattr(index_module, "CHUNK", 7)
    report = await run_catalogue(db, CATALOGUE_CSV)
    assert report.records_created > 7 * 10
    chunked = await _index_rows(db)
    assert chunked[0] and chunked[1]

    monkeypatch.setattr(index_module, "CHUNK", 100_000)
    async with db.transaction() as session:
        assert await Indexer().rebuild_index(session) == report.records_created
    assert await _index_rows(db) == chunked


async def test_failed_index_write_undoes_the_import_and_leaves_no_work_running(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "CHUNK", 7)
    calls = 0

    async def failing_insert(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:  # the third chunk's terms, while the fourth is being worked out
            raise _Abandon
        await insert_rows(*args, **kwargs)

    monkeypatch.setattr(index_module, "insert_rows", failing_insert)
    with pytest.raises(_Abandon):
        await run_catalogue(db, CATALOGUE_CSV)
    assert calls == 5
    assert asyncio.all_tasks() == {asyncio.current_task()}  # the thread's task was awaited
    for model in (Record, Copy, SearchTerm, SearchKey, AuditEntry):
        assert await count(db, model) == 0, model


async def _all_visible_pages(url: str) -> dict[str, int]:
    """pg_class.relallvisible: the pages VACUUM has marked all-visible (0 after a bare load)."""
    db = Database(url)
    try:
        async with db.transaction(read_only=True) as session:
            rows = await session.execute(
                text("SELECT relname, relallvisible FROM pg_class WHERE relname = ANY(:names)"),
                {"names": list(CATALOGUE_TABLES)},
            )
            return {name: int(pages) for name, pages in rows}
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_vacuum_after_the_import_marks_the_loaded_pages_all_visible(
    db: Database, db_url: str
) -> None:
    await run_catalogue(db, CATALOGUE_CSV)
    assert set((await _all_visible_pages(db_url)).values()) == {0}  # ANALYZE alone sets none
    await db.vacuum(*CATALOGUE_TABLES)
    assert all(pages > 0 for pages in (await _all_visible_pages(db_url)).values())


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_cli_import_and_reindex_vacuum_on_postgresql(db_url: str) -> None:
    from bot.cli import app
    from tests.conftest import truncate_all

    async def truncate() -> None:
        database = Database(db_url)
        try:
            await truncate_all(database)
        finally:
            await database.dispose()

    asyncio.run(truncate())
    env = {"SHUXIANG_DATABASE_URL": db_url, "SHUXIANG_LOG_LEVEL": "WARNING"}
    result = CliRunner().invoke(app, ["import", "catalogue", str(CATALOGUE_CSV)], env=env)
    assert result.exit_code == 0, result.output
    visible = asyncio.run(_all_visible_pages(db_url))
    assert all(pages > 0 for pages in visible.values()), visible

    result = CliRunner().invoke(app, ["db", "reindex"], env=env)
    assert result.exit_code == 0, result.output
    # The rebuild's DELETE cleared every page's bit: only the VACUUM after it sets them again.
    after = asyncio.run(_all_visible_pages(db_url))
    assert after["search_terms"] > 0 and after["search_keys"] > 0, after


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_shared_books_6k_imports_with_counts_matching_the_file(db: Database) -> None:
    path = SHARED_DATA / "catalogue" / "books_6k.csv"
    if not path.is_file():
        pytest.skip(f"shared data not present: {path}")
    records, copies = _expected_copies(path)

    report = await run_catalogue(db, path)
    assert report.skipped == []
    assert (report.rows, report.records_created, report.copies_added) == (records, records, copies)
    assert await count(db, Record) == records
    assert await count(db, Copy) == copies

    again = await run_catalogue(db, path)
    assert (again.records_created, again.records_updated, again.copies_added) == (0, 0, 0)


# ---------------------------------------------------------------------------------------------
# CLI


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        "SHUXIANG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}",
        "SHUXIANG_LOG_LEVEL": "WARNING",
    }


def test_cli_rejects_bad_file_with_line_numbers(tmp_path: Path, cli_env: dict[str, str]) -> None:
    from bot.cli import app

    path = write(tmp_path, "record_id,title\nsx:1,三体\nsx:2,\n")
    result = CliRunner().invoke(app, ["import", "catalogue", str(path)], env=cli_env)
    assert result.exit_code == 1, result.output
    assert "第 3 行：缺少题名" in result.output
    assert "未导入任何数据" in result.output

    result = CliRunner().invoke(app, ["import", "catalogue", "--skip-bad", str(path)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "新建 1 条" in result.output and "跳过 1 行" in result.output
    assert "第 3 行" in result.output


def test_cli_caps_the_problem_listing(tmp_path: Path, cli_env: dict[str, str]) -> None:
    from bot.cli import app

    path = write(tmp_path, "record_id,title\n" + "".join(f"sx:{i},\n" for i in range(80)))
    result = CliRunner().invoke(app, ["import", "catalogue", str(path)], env=cli_env)
    assert result.exit_code == 1
    assert result.output.count("缺少题名") == 50
    assert "另有 30 处未列出" in result.output


def test_cli_imports_sample_data_and_prints_a_summary(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    from bot.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["import", "catalogue", str(CATALOGUE_CSV)], env=cli_env)
    assert result.exit_code == 0, result.output
    records, copies = _expected_copies(CATALOGUE_CSV)
    assert f"新建 {records} 条" in result.output and f"新增 {copies} 册" in result.output
    assert "用时" in result.output

    result = runner.invoke(app, ["import", "catalogue", str(CATALOGUE_CSV)], env=cli_env)
    assert f"未变 {records} 条" in result.output and "新增 0 册" in result.output

    result = runner.invoke(app, ["import", "readers", str(READERS_CSV)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "读者：新建" in result.output

    result = runner.invoke(app, ["import", "readers", str(tmp_path / "nope.csv")], env=cli_env)
    assert result.exit_code != 0 and "找不到文件" in result.output


def test_cli_checks_the_file_before_touching_the_database(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    from bot.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["import", "readers", str(tmp_path / "nope.csv")], env=cli_env)
    assert result.exit_code == 2 and "找不到文件" in result.output
    result = runner.invoke(app, ["import", "catalogue", str(tmp_path)], env=cli_env)
    assert result.exit_code == 2 and "不是普通文件" in result.output
    assert not (tmp_path / "cli.sqlite3").exists()  # no connection, no migration


def test_cli_help_is_in_chinese() -> None:
    from bot.cli import app

    result = CliRunner().invoke(app, ["import", "catalogue", "--help"])
    assert result.exit_code == 0
    assert "--skip-bad" in result.output and "跳过有问题的行" in result.output
