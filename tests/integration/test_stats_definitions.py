"""Issue 19 item 5: figures that add up. Each figure against a hand count on tests/stats_world.py
(plus a few readers in classes whose names sort wrongly as text), on SQLite and PostgreSQL, and
the same figures where the librarian meets them: `shuxiang report` and `shuxiang outbox failed`.

By hand, for September 2026 (see tests/integration/test_stats.py for the rest):
- 无法送达通知的读者: 李二 (blocked the bot) and 王三 (no Telegram binding) — both have a failed
  notification, which is what `outbox failed` lists; 张一's notification was sent.
- 逾期未还: 张一 B4 (due 26 Sep, still out), 4 days. 逾期归还: 赵四 B3 (2 days), 张一 B3 (3 days).
- CLC: I 文学 5, K 历史地理 1, P 天文地球 1, one loan of a book without a class (未分类).
- Extra classes below: loans in September 初二(3)班 1, 高一(10)班 2, 高三(1)班 1; school order
  初二(3)班, 高一(1)班, 高一(2)班, 高一(10)班, 高二(1)班, 高三(1)班.
"""

from __future__ import annotations

import asyncio
import csv
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from services.readers.sheet import by_class
from services.corners.chase import clearance
from services.actor import Actor
from services.readers.binding import IssuedCode
from services.stats.reports.document import write_report
from services.stats.stars import monthly_stars
from services.stats.figures import OverdueLoan, Scope, ScopeKind, Stats, compute, period_for_dates
from storage.db import Database
from storage.models import Copy, Loan, Reader, Role
from tests.stats_world import NOW, OLD, TZ, at, build_stats_world

SEPTEMBER = period_for_dates(date(2026, 9, 1), date(2026, 9, 30), TZ)
# card -> (name, grade, class, copy, returned); each borrows a copy in September and, if
# returned, brings it back three days later.
EXTRA = {
    "X1": ("高三甲", "高三", "高三(1)班", "B7", True),
    "X2": ("十班甲", "高一", "高一(10)班", "B5", False),
    "X3": ("十班乙", "高一", "高一(10)班", "B7", True),
    "X4": ("初二甲", "初二", "初二(3)班", "B7", True),
    "X5": ("二班甲", "高一", "高一(2)班", "B6", False),
}
SCHOOL_ORDER = ["初二(3)班", "高一(1)班", "高一(2)班", "高一(10)班", "高二(1)班", "高三(1)班"]


async def _with_more_classes(db: Database) -> dict[str, int]:
    ids = await build_stats_world(db)
    async with db.transaction() as s:
        for n, (card, (name, grade, klass, barcode, returned)) in enumerate(EXTRA.items()):
            reader = Reader(
                card_no=card,
                name=name,
                grade=grade,
                class_name=klass,
                role=Role.STUDENT.value,
                created_at=OLD,
            )
            s.add(reader)
            await s.flush()
            ids[card] = reader.id
            # One after the other, each kept three days, all returned in September.
            lent = at(9, 1 + 4 * n)
            s.add(
                Loan(
                    copy_id=await s.scalar(select(Copy.id).where(Copy.barcode == barcode)),
                    reader_id=reader.id,
                    lent_at=lent,
                    due_at=lent + timedelta(days=20),
                    returned_at=lent + timedelta(days=3) if returned else None,
                )
            )
    return ids


async def test_grades_and_classes_in_the_school_order(db: Database) -> None:
    await _with_more_classes(db)
    async with db.transaction(read_only=True) as s:
        st = await compute(s, Scope.school(), SEPTEMBER, tz=TZ, now=NOW)
        stars = await monthly_stars(s, year=2026, month=9, tz=TZ)
    assert [c.label for c in st.by_class] == SCHOOL_ORDER
    assert {c.label: c.count for c in st.by_class}["高一(10)班"] == 2
    grades = [x.group for x in stars if x.kind == ScopeKind.GRADE]
    classes = [x.group for x in stars if x.kind == ScopeKind.CLASS]
    assert grades == ["初二", "高一", "高二", "高三"]
    # 高一(2)班 has no star: 王三 brought his book back the same day, 二班甲 still has hers.
    assert classes == [c for c in SCHOOL_ORDER if c != "高一(2)班"]
    # The binding sheet's pages and the clearance list follow the same order.
    codes = [
        IssuedCode(f"C{n}", "某", klass, "code", NOW)
        for n, klass in enumerate(reversed(SCHOOL_ORDER))
    ]
    assert [p.class_name for p in by_class(codes)] == SCHOOL_ORDER
    async with db.transaction() as s:
        owing = await clearance(s, Actor.cli(), grade="高一", remind=False, now=NOW, tz=TZ)
    assert [r.class_name for r in owing] == ["高一(1)班", "高一(2)班", "高一(10)班"]


async def test_overdue_still_out_and_returned_late_are_apart(db: Database) -> None:
    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        st = await compute(s, Scope.school(), SEPTEMBER, tz=TZ, now=NOW)
    owed = {(o.barcode, o.returned_at is None) for o in st.overdue}
    late = {(o.barcode, o.returned_at is not None) for o in st.returned_late}
    assert owed == {("B4", True)} and late == {("B3", True)}
    assert [o.days for o in st.returned_late] == [2, 3]
    # A loan is in one list or the other, never both.
    assert not {id(o) for o in st.overdue} & {id(o) for o in st.returned_late}


def _cli(args: list[str], url: str) -> tuple[int, str]:
    env = {"SHUXIANG_DATABASE_URL": url, "SHUXIANG_LOG_LEVEL": "WARNING"}
    result = CliRunner().invoke(app, args, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig") as fh:
        return list(csv.reader(fh))


def test_report_and_outbox_failed_agree(db: Database, db_url: str, tmp_path: Path) -> None:
    async def build() -> None:
        fresh = Database(db_url)
        try:
            await build_stats_world(fresh)
        finally:
            await fresh.dispose()

    asyncio.run(build())
    code, failed = _cli(["outbox", "failed"], db_url)
    assert code == 0, failed
    out = tmp_path / "report"
    code, text = _cli(
        ["report", "--from", "2026-09-01", "--to", "2026-09-30", "--out", str(out)], db_url
    )
    assert code == 0, text
    summary = {row[0]: row[1] for row in _rows(out / "summary.csv")}
    unreachable = _rows(out / "unreachable.csv")
    assert summary["无法送达通知的读者"] == str(len(unreachable) - 1) == "2"
    names = [row[1] for row in unreachable[1:]]
    assert names == ["李二", "王三"]
    # Everyone `outbox failed` lists is in the report, and nobody else.
    listed = {name for name in ("张一", "李二", "王三", "赵四", "钱六") if name in failed}
    assert listed == set(names)
    assert [row[-1] for row in unreachable[1:]] == ["已屏蔽机器人", "未绑定 Telegram"]
    # Still owed and returned late are two tables, with two lines in the summary.
    assert [row[3] for row in _rows(out / "overdue.csv")[1:]] == ["B4"]
    assert [row[3] for row in _rows(out / "returned_late.csv")[1:]] == ["B3", "B3"]
    assert summary["逾期未还"] == "1 册，共 4 天"
    assert summary["逾期归还"] == "2 册，共晚还 5 天"
    assert summary["新增馆藏"] == "新书 1 种，1 册"
    # CLC letters come with their names.
    clc = {row[0]: row[1:] for row in _rows(out / "clc.csv")[1:]}
    assert (
        clc["I"] == ["文学", "5"] and clc["K"] == ["历史地理", "1"] and clc[""] == ["未分类", "1"]
    )
    assert _rows(out / "clc.csv")[0] == ["中图法大类", "类名", "借阅次数"]


def _pages_with(pdf: Path, words: list[str]) -> list[set[int]]:
    pages = [p.extract_text() for p in PdfReader(pdf).pages]
    return [{n for n, text in enumerate(pages) if word in text} for word in words]


def _bare_stats() -> Stats:
    return Stats(
        scope=Scope.school(),
        period=SEPTEMBER,
        students=5,
        loans=8,
        student_loans=7,
        borrowers=4,
        copies_lent=6,
        collection=10,
        by_clc=[],
        top_books=[],
        top_readers=[],
        overdue=[],
        unreachable=[],
        holds_placed=0,
        holds_filled=0,
        suggestions=[],
        new_titles=0,
        new_copies=0,
    )


def test_pdf_keeps_a_small_table_on_one_page(tmp_path: Path) -> None:
    # Laying out only: no database needed.
    stats = _bare_stats()
    seven = [
        OverdueLoan(0, f"晚还{n}号", "高一(1)班", "红楼梦", f"L{n}", NOW, 1, NOW) for n in range(7)
    ]

    def owed(count: int) -> list[OverdueLoan]:
        return [
            OverdueLoan(0, f"未还{n}号", "高一(1)班", "三体", f"O{n}", NOW, 3) for n in range(count)
        ]

    # However much comes before it, the seven-row table is never cut 5 + 2.
    for rows_before in range(1, 40, 6):
        folder = tmp_path / str(rows_before)
        write_report(
            folder, replace(stats, overdue=owed(rows_before), returned_late=seven), TZ, [], None
        )
        pages = _pages_with(folder / "report.pdf", [o.name for o in seven] + ["逾期归还（已还"])
        assert len(set.union(*pages)) == 1, (rows_before, pages)
    # A long table runs on, with its header row on every page it covers.
    write_report(tmp_path / "long", replace(stats, overdue=owed(40)), TZ, [], None)
    text = [p.extract_text() for p in PdfReader(tmp_path / "long" / "report.pdf").pages]
    spanned = [page for page in text if "未还" in page and "号" in page]
    assert len(spanned) >= 2
    assert all("应还日期" in page and "逾期天数" in page for page in spanned)
