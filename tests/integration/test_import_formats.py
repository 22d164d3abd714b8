"""What schools actually export: GBK and BOM CSV files with Chinese headers, Excel sheets and
CNMARC records (ISO 2709 in UTF-8 or GBK, MARCXML), written by these tests, imported on SQLite and
PostgreSQL and through the CLI."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from pymarc import Field, Indicators, RawField, Record, Subfield, XMLWriter
from sqlalchemy import select
from typer.testing import CliRunner

from services.imports.catalogue import (
    CatalogueReport,
    ImportFileError,
    ImportRejected,
    MarcHoldings,
    ReaderReport,
    import_catalogue,
    import_readers,
    stable_record_id,
)
from storage.db import Database
from storage.models import AuditEntry, Copy, Reader
from storage.models import Record as BookRecord

# A 图创-style export: Chinese headers, no control numbers, one row per copy, a column we don't
# know (价格) and one with a remark in brackets.
GBK_CATALOGUE = (
    "题名,责任者,译者,国际标准书号,出版社,出版年,中图分类号,索书号,条形码,馆藏地,价格,内容简介(选填)\n"
    "三体,刘慈欣,,978-7-5366-9293-0,重庆出版社,2008,I247.5,I247.5/L77,T0001,高中部书库,23.00,"
    "文化大革命如火如荼进行的同时\n"
    "三体,刘慈欣,,978-7-5366-9293-0,重庆出版社,2008,I247.5,I247.5/L77,T0002,高中部书库,23.00,"
    "文化大革命如火如荼进行的同时\n"
    "追风筝的人,[美] 卡勒德·胡赛尼,李继宏,,上海人民出版社,2006-5,I712.45,I712.45/H77,T0003,,"
    "29.00,\n"
)


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


async def run_catalogue(db: Database, path: Path, **options: Any) -> CatalogueReport:
    async with db.transaction() as session:
        return await import_catalogue(session, path, **options)


async def run_readers(db: Database, path: Path, **options: Any) -> ReaderReport:
    async with db.transaction() as session:
        return await import_readers(session, path, **options)


async def records(db: Database) -> dict[str, BookRecord]:
    async with db.transaction(read_only=True) as session:
        return {r.record_id: r for r in await session.scalars(select(BookRecord))}


async def copies(db: Database) -> dict[str, tuple[str, str | None]]:
    """Barcode -> (record id, location)."""
    async with db.transaction(read_only=True) as session:
        rows = await session.execute(
            select(Copy.barcode, BookRecord.record_id, Copy.location).join(
                BookRecord, BookRecord.id == Copy.record_pk
            )
        )
        return {barcode: (record_id, location) for barcode, record_id, location in rows}


async def readers(db: Database) -> dict[str, Reader]:
    async with db.transaction(read_only=True) as session:
        return {r.card_no: r for r in await session.scalars(select(Reader))}


# ---------------------------------------------------------------------------------------------
# CSV: encodings and Chinese headers


async def test_gbk_csv_with_chinese_headers_and_no_control_numbers(
    db: Database, tmp_path: Path
) -> None:
    path = write(tmp_path, "图创导出.csv", GBK_CATALOGUE, "gbk")
    report = await run_catalogue(db, path)

    assert report.source == "CSV 文件（GB18030/GBK 编码）"
    assert report.unknown_columns == ("价格",)
    assert report.generated_ids
    # Two rows of the same book (one per copy) are one record with two copies.
    assert (report.rows, report.records_created, report.copies_added) == (3, 2, 3)
    found = await records(db)
    three_body = found["isbn:9787536692930"]
    assert (three_body.title, three_body.authors, three_body.publisher) == (
        "三体",
        "刘慈欣",
        "重庆出版社",
    )
    assert (three_body.clc, three_body.call_number, three_body.pub_date) == (
        "I247.5",
        "I247.5/L77",
        "2008",
    )
    assert three_body.summary == "文化大革命如火如荼进行的同时"
    kite_id = stable_record_id(None, "追风筝的人", "[美] 卡勒德·胡赛尼", "上海人民出版社")
    assert kite_id.startswith("bib:") and found[kite_id].translators == "李继宏"
    assert await copies(db) == {
        "T0001": ("isbn:9787536692930", "高中部书库"),
        "T0002": ("isbn:9787536692930", "高中部书库"),
        "T0003": (kite_id, None),
    }

    # The same export again changes nothing; an edited one updates instead of duplicating.
    again = await run_catalogue(db, path)
    assert (again.records_created, again.records_unchanged, again.copies_added) == (0, 2, 0)
    edited = GBK_CATALOGUE.replace("29.00,\n", "29.00,喀布尔的两个少年\n")
    third = await run_catalogue(db, write(tmp_path, "edited.csv", edited, "gb18030"))
    assert (third.records_created, third.records_updated, third.records_unchanged) == (0, 1, 1)
    assert len(await records(db)) == 2
    assert (await records(db))[kite_id].summary == "喀布尔的两个少年"


def test_stable_record_ids_fold_spacing_and_width() -> None:
    assert stable_record_id("9787536692930", "三体", None, None) == "isbn:9787536692930"
    a = stable_record_id(None, "追风筝的人", "[美] 卡勒德·胡赛尼", "上海人民出版社")
    b = stable_record_id(None, " 追风筝的人 ", "［美］  卡勒德·胡赛尼", "上海人民出版社")
    c = stable_record_id(None, "追风筝的人", "[美] 卡勒德·胡赛尼", "上海译文出版社")
    assert a == b != c


async def test_utf8_bom_roster_with_chinese_headers(db: Database, tmp_path: Path) -> None:
    content = (
        "\ufeff学号,姓名,身份,年级,班级,家长电话\r\n"
        "20250101,严晓,学生,高一,高一（1）班,13800000000\r\n"
        "T01,谢老师,教师,,,\r\n"
    )
    report = await run_readers(db, write(tmp_path, "名单.csv", content))
    assert report.source == "CSV 文件（UTF-8，带 BOM 编码）"
    assert report.unknown_columns == ("家长电话",)
    assert report.created == 2
    found = await readers(db)
    assert found["20250101"].class_name == "高一(1)班" and found["T01"].role == "teacher"


async def test_gbk_roster_rows_with_problems_keep_their_line_numbers(
    db: Database, tmp_path: Path
) -> None:
    content = "借书证号,姓名,身份\nS1,严晓,学生\nS2,,学生\nS3,某人,校长\n"
    with pytest.raises(ImportRejected) as caught:
        await run_readers(db, write(tmp_path, "r.csv", content, "gbk"))
    assert [str(p) for p in caught.value.problems] == [
        "第 3 行：缺少姓名（name）",
        "第 4 行：未知的角色「校长」（应为 student/teacher/librarian 或 学生/教师/图书管理员）",
    ]
    assert await readers(db) == {}


async def test_header_problems_name_the_column_in_both_languages(
    db: Database, tmp_path: Path
) -> None:
    with pytest.raises(ImportRejected) as caught:
        await run_catalogue(db, write(tmp_path, "a.csv", "作者,出版社\n某人,某社\n"))
    assert [str(p) for p in caught.value.problems] == ["第 1 行：缺少必需的列：title（题名）"]
    with pytest.raises(ImportRejected) as caught:
        await run_catalogue(db, write(tmp_path, "b.csv", "题名,正题名\n三体,三体\n"))
    assert [str(p) for p in caught.value.problems] == ["第 1 行：表头中的列重复：题名、正题名"]


async def test_a_file_with_control_numbers_must_give_each_row_one(
    db: Database, tmp_path: Path
) -> None:
    content = "记录号,题名\nC1,三体\n,球状闪电\n"
    with pytest.raises(ImportRejected) as caught:
        await run_catalogue(db, write(tmp_path, "c.csv", content, "gbk"))
    assert [str(p) for p in caught.value.problems] == ["第 3 行：缺少记录号（record_id）"]


async def test_same_generated_id_with_different_content_is_a_problem(
    db: Database, tmp_path: Path
) -> None:
    content = "ISBN,题名\n9787536692930,三体\n9787536692930,三体II\n"
    with pytest.raises(ImportRejected) as caught:
        await run_catalogue(db, write(tmp_path, "d.csv", content))
    [problem] = caught.value.problems
    assert problem.line == 3 and "《三体II》与第 2 行是同一种书" in problem.reason
    assert "记录号" not in problem.reason  # a generated id means nothing to the librarian
    assert await records(db) == {}


# ---------------------------------------------------------------------------------------------
# Excel


def xlsx(path: Path, sheets: dict[str, Sequence[Sequence[object]]]) -> Path:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    book.save(path)
    return path


ROSTER_ROWS: list[list[object]] = [
    ["学号", "姓名", "身份", "年级", "班级"],
    [20250101, "严晓", "学生", "高一", "高一(1)班"],  # a number cell, as Excel stores 学号
    [None, None, None, None, None],  # a blank row
    [20250102, "谢怡诗", "学生", "高一", "高一(1)班"],
]


async def test_xlsx_roster_first_sheet_or_named_sheet(db: Database, tmp_path: Path) -> None:
    teachers = [["工号", "姓名", "身份", "办公室"], ["T01", "何诺", "老师", "语文组"]]
    path = xlsx(tmp_path / "名单.xlsx", {"高一": ROSTER_ROWS, "教师": teachers})

    report = await run_readers(db, path)
    assert report.source == "Excel 工作表「高一」"
    assert (report.rows, report.created) == (2, 2)
    assert (await readers(db))["20250101"].name == "严晓"

    report = await run_readers(db, path, sheet="教师")
    assert report.created == 1 and (await readers(db))["T01"].office == "语文组"
    assert (await run_readers(db, path)).unchanged == 2

    with pytest.raises(ImportFileError) as caught:
        await run_readers(db, path, sheet="高二")
    assert str(caught.value) == "找不到工作表「高二」；文件中的工作表有：高一、教师"


async def test_xlsx_bad_rows_are_reported_by_sheet_row(db: Database, tmp_path: Path) -> None:
    rows: list[list[object]] = [
        *ROSTER_ROWS,
        [20250103, None, "学生", "", ""],
        [20250101, "重号", "学生", "", ""],
    ]
    path = xlsx(tmp_path / "bad.xlsx", {"名单": rows})
    with pytest.raises(ImportRejected) as caught:
        await run_readers(db, path)
    assert [str(p) for p in caught.value.problems] == [
        "第 5 行：缺少姓名（name）",
        "第 6 行：借书证号 20250101 与第 2 行重复",
    ]
    assert await readers(db) == {}
    report = await run_readers(db, path, skip_bad=True)
    assert report.created == 2 and [p.line for p in report.skipped] == [5, 6]


async def test_xlsx_catalogue_with_numeric_isbn_and_copy_rows(db: Database, tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["题名", "作者", "ISBN", "条码号", "复本数"],
        ["三体", "刘慈欣", 9787536692930, "A1", None],
        ["三体", "刘慈欣", 9787536692930, "A2", None],
        ["小王子", "圣埃克苏佩里", None, None, 2],
    ]
    path = xlsx(tmp_path / "books.xlsx", {"Sheet1": rows})
    report = await run_catalogue(db, path)
    assert (report.records_created, report.copies_added) == (2, 4)
    assert sorted(b for b, (rid, _) in (await copies(db)).items() if rid.startswith("isbn")) == [
        "A1",
        "A2",
    ]
    assert (await run_catalogue(db, path)).records_unchanged == 2


async def test_old_xls_and_sheet_on_csv_are_refused(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="旧版 Excel"):
        await run_readers(db, write(tmp_path, "old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" * 8))
    with pytest.raises(ImportFileError, match="--sheet"):
        await run_readers(db, write(tmp_path, "r.csv", "card_no,name,role\n"), sheet="x")


# ---------------------------------------------------------------------------------------------
# CNMARC


def cnmarc(
    control: str | None,
    *,
    isbn: str = "",
    title: str,
    subtitle: str = "",
    first: str = "",
    other: str = "",
    publisher: str = "",
    date: str = "",
    series: str = "",
    subjects: Sequence[str] = (),
    clc: str = "",
    authors: Sequence[str] = (),
    holdings: Sequence[tuple[str, str, str]] = (),
    holdings_tag: str = "905",
) -> list[tuple[str, list[tuple[str, str]]] | tuple[str, str]]:
    """A CNMARC record as (tag, data) control fields and (tag, [(code, value)]) data fields."""
    fields: list[tuple[str, list[tuple[str, str]]] | tuple[str, str]] = []
    if control:
        fields.append(("001", control))
    if isbn:
        fields.append(("010", [("a", isbn), ("d", "CNY23.00")]))
    title_subfields = [("a", title)]
    title_subfields += [("e", subtitle)] if subtitle else []
    title_subfields += [("f", first)] if first else []
    title_subfields += [("g", other)] if other else []
    fields.append(("200", title_subfields))
    if publisher or date:
        fields.append(("210", [("a", "重庆"), ("c", publisher), ("d", date)]))
    if series:
        fields.append(("225", [("a", series)]))
    fields += [("606", [("a", subject)]) for subject in subjects]
    if clc:
        fields.append(("690", [("a", clc), ("v", "5")]))
    fields += [("701", [("a", name), ("4", "著")]) for name in authors]
    fields += [
        (holdings_tag, [("a", "图书馆"), ("b", barcode), ("d", cls), ("e", number)])
        for barcode, cls, number in holdings
    ]
    return fields


def iso2709(
    records: Sequence[list[tuple[str, list[tuple[str, str]]] | tuple[str, str]]], encoding: str
) -> bytes:
    """ISO 2709 written by pymarc, with the field bytes in ``encoding`` and leader/09 blank as
    CNMARC systems leave it (so the reader cannot learn the encoding from the record)."""
    out = b""
    for fields in records:
        record = Record(to_unicode=False, leader="     nam0 22        450 ")
        for tag, data in fields:
            if isinstance(data, str):
                record.fields.append(RawField(tag=tag, data=data.encode(encoding)))  # type: ignore[arg-type]
            else:
                record.fields.append(
                    RawField(
                        tag=tag,
                        indicators=Indicators("0", " "),
                        subfields=[Subfield(code, value.encode(encoding)) for code, value in data],  # type: ignore[arg-type]
                    )
                )
        out += record.as_marc()
    return out


def marcxml(records: Sequence[list[tuple[str, list[tuple[str, str]]] | tuple[str, str]]]) -> bytes:
    buffer = io.BytesIO()
    writer = XMLWriter(buffer)
    for fields in records:
        record = Record(leader="     nam0 22        450 ")
        for tag, data in fields:
            if isinstance(data, str):
                record.fields.append(Field(tag=tag, data=data))
            else:
                record.fields.append(
                    Field(
                        tag=tag,
                        indicators=Indicators("0", " "),
                        subfields=[Subfield(code, value) for code, value in data],
                    )
                )
        writer.write(record)
    writer.close(close_fh=False)
    return buffer.getvalue()


THREE_BODY = cnmarc(
    "CAL012008001234",
    isbn="978-7-5366-9293-0",
    title="三体",
    first="刘慈欣著",
    publisher="重庆出版社",
    date="2008",
    series="中国科幻基石丛书",
    subjects=["科学幻想小说", "长篇小说"],
    clc="I247.55",
    authors=["刘慈欣"],
    holdings=[("M0001", "I247.55", "L77"), ("M0002", "I247.55", "L77")],
)
KITE = cnmarc(
    None,
    title="追风筝的人",
    other="李继宏译",
    publisher="上海人民出版社",
    date="2006",
    authors=["胡赛尼"],
    holdings=[("M0003", "I712.45", "H77")],
)


@pytest.mark.parametrize("encoding", ["gbk", "utf-8"])
async def test_iso2709_cnmarc_in_gbk_or_utf8(db: Database, tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, "export.iso", iso2709([THREE_BODY, KITE], encoding))
    report = await run_catalogue(db, path)

    expected = "GB18030/GBK" if encoding == "gbk" else "UTF-8"
    assert report.source == f"CNMARC 记录（ISO 2709，{expected} 编码）"
    assert (report.rows, report.records_created, report.copies_added) == (2, 2, 3)
    found = await records(db)
    book = found["CAL012008001234"]
    assert (book.isbn, book.title, book.authors, book.publisher, book.pub_date) == (
        "9787536692930",
        "三体",
        "刘慈欣著",
        "重庆出版社",
        "2008",
    )
    assert (book.series, book.clc) == ("中国科幻基石丛书", "I247.55")
    assert book.call_number == "I247.55/L77"
    assert book.tags == "科学幻想小说;长篇小说"
    # No 001: a stable id from title + author + publisher; 200$g is the translator.
    kite = found[stable_record_id(None, "追风筝的人", "胡赛尼", "上海人民出版社")]
    assert (kite.authors, kite.translators) == ("胡赛尼", "李继宏译")
    assert kite.call_number == "I712.45/H77"
    assert sorted(await copies(db)) == ["M0001", "M0002", "M0003"]

    again = await run_catalogue(db, path)
    assert (again.records_created, again.records_unchanged, again.copies_added) == (0, 2, 0)


async def test_marcxml_by_content_and_configurable_holdings(db: Database, tmp_path: Path) -> None:
    # A system that keeps copies in 852 with the barcode in $p.
    record = cnmarc("X1", title="小王子", holdings_tag="852", holdings=[("P9", "I565.88", "S21")])
    data = marcxml([record]).replace(b'code="b"', b'code="p"')
    path = write(tmp_path, "export.dat", data)  # no telling extension: recognised by content

    report = await run_catalogue(db, path, holdings=MarcHoldings("852", "p", "d", "e"))
    assert report.source == "CNMARC 记录（MARCXML）"
    assert report.copies_added == 1 and await copies(db) == {"P9": ("X1", None)}
    assert (await records(db))["X1"].call_number == "I565.88/S21"


async def test_bad_marc_records_are_numbered_and_nothing_is_written(
    db: Database, tmp_path: Path
) -> None:
    no_title = cnmarc("C2", title="")
    bad_isbn = cnmarc("C3", title="球状闪电", isbn="9787536692931")
    good = iso2709([THREE_BODY, no_title, bad_isbn], "gbk")
    # A fourth record whose leader says it is longer than the file: truncated.
    data = good + b"99999nam0 22        450 " + b"\x1e\x1d"
    path = write(tmp_path, "bad.mrc", data)

    with pytest.raises(ImportRejected) as caught:
        await run_catalogue(db, path)
    problems = [str(p) for p in caught.value.problems]
    assert problems[:2] == [
        "第 2 条记录：缺少题名（title）",
        "第 3 条记录：ISBN「9787536692931」校验位不正确",
    ]
    assert problems[2].startswith("第 4 条记录：MARC 记录无法解析")
    assert await records(db) == {}
    async with db.transaction(read_only=True) as session:
        assert list(await session.scalars(select(AuditEntry))) == []

    report = await run_catalogue(db, path, skip_bad=True)
    assert report.records_created == 1 and [p.line for p in report.skipped] == [2, 3, 4]


async def test_broken_marcxml_says_which_line(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "broken.xml", b'<?xml version="1.0"?>\n<collection>\n<record>\n</coll')
    with pytest.raises(ImportFileError, match="第 4 行：XML 格式错误"):
        await run_catalogue(db, path)


# ---------------------------------------------------------------------------------------------
# CLI


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        "SHUXIANG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}",
        "SHUXIANG_LOG_LEVEL": "WARNING",
    }


def test_cli_imports_gbk_csv_xlsx_roster_and_marc(tmp_path: Path, cli_env: dict[str, str]) -> None:
    from bot.cli import app

    runner = CliRunner()
    gbk = write(tmp_path, "books.csv", GBK_CATALOGUE, "gbk")
    result = runner.invoke(app, ["import", "catalogue", str(gbk)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "读取：CSV 文件（GB18030/GBK 编码）" in result.output
    assert "未识别的列（没有导入）：价格" in result.output
    assert "生成记录号" in result.output
    assert "新建 2 条" in result.output and "新增 3 册" in result.output

    notes: list[list[object]] = [["本表为全校名单"]]
    roster = xlsx(tmp_path / "roster.xlsx", {"说明": notes, "高一": ROSTER_ROWS})
    result = runner.invoke(app, ["import", "readers", "--sheet", "高一", str(roster)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "Excel 工作表「高一」" in result.output and "新建 2 人" in result.output

    record = cnmarc("Z1", title="小王子", holdings_tag="852", holdings=[("Q1", "I565", "S2")])
    marc = write(tmp_path, "books.iso", iso2709([record], "gbk"))
    args = ["import", "catalogue", "--holdings-field", "852", str(marc)]
    result = runner.invoke(app, args, env=cli_env)
    assert result.exit_code == 0, result.output
    assert "ISO 2709" in result.output and "新增 1 册" in result.output
    assert "共 1 条记录" in result.output

    bad = write(tmp_path, "bad.iso", iso2709([cnmarc("Z2", title="")], "gbk"))
    result = runner.invoke(app, ["import", "catalogue", str(bad)], env=cli_env)
    assert result.exit_code == 1
    assert "第 1 条记录：缺少题名" in result.output and "未导入任何数据" in result.output


def test_cli_help_documents_the_columns() -> None:
    from bot.cli import app

    result = CliRunner().invoke(app, ["import", "catalogue", "--help"])
    assert result.exit_code == 0
    for words in ("题名/正题名", "条码/条码号/条形码/登录号", "控制号/记录号", "905$b", "--sheet"):
        assert words in result.output, words
    result = CliRunner().invoke(app, ["import", "readers", "--help"])
    assert "学号" in result.output and "--sheet" in result.output and "--role" in result.output


def test_cli_shows_a_progress_bar_for_large_files(tmp_path: Path, cli_env: dict[str, str]) -> None:
    from bot.cli import app

    rows = "".join(f"书{i},作者{i % 50}\n" for i in range(2100))
    path = write(tmp_path, "big.csv", "题名,作者\n" + rows, "gbk")
    result = CliRunner().invoke(app, ["import", "catalogue", str(path)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "写入书目" in result.output and "2100/2100" in result.output
    assert "新建 2100 条" in result.output


async def test_class_list_without_a_role_column_takes_the_given_role(
    db: Database, tmp_path: Path
) -> None:
    rows: list[list[object]] = [["学号", "姓名", "班级"], [1001, "严晓", "高一(3)班"]]
    path = xlsx(tmp_path / "class.xlsx", {"高一(3)班": rows})
    with pytest.raises(ImportRejected, match="1 处问题") as caught:
        await run_readers(db, path)
    assert str(caught.value.problems[0]) == "第 1 行：缺少必需的列：role（身份）"
    with pytest.raises(ImportFileError, match="未知的身份「校长」"):
        await run_readers(db, path, default_role="校长")

    report = await run_readers(db, path, default_role="学生")
    assert report.created == 1 and (await readers(db))["1001"].role == "student"


async def test_tab_separated_utf16_from_excel_unicode_text(db: Database, tmp_path: Path) -> None:
    content = "借书证号\t姓名\t身份\r\nS1\t严晓\t学生\r\nS2\t\t学生\r\n"
    path = write(tmp_path, "名单.txt", content, "utf-16")  # Python writes the BOM, as Excel does
    with pytest.raises(ImportRejected) as caught:
        await run_readers(db, path)
    assert [str(p) for p in caught.value.problems] == ["第 3 行：缺少姓名（name）"]
    report = await run_readers(db, path, skip_bad=True)
    assert report.source == "CSV 文件（UTF-16 编码）" and report.created == 1


async def test_tab_separated_text_named_xls_is_read_as_text(db: Database, tmp_path: Path) -> None:
    content = "借书证号\t姓名\t身份\nS1\t严晓\t学生\n"
    report = await run_readers(db, write(tmp_path, "导出.xls", content, "gbk"))
    assert report.source == "CSV 文件（GB18030/GBK 编码）" and report.created == 1
