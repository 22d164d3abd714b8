"""Every figure of services.stats.figures against values worked out by hand from tests/stats_world.py,
for the school, a grade and a class, on SQLite and PostgreSQL.

September 2026 (Shanghai time), by hand:
- students: school S1 S2 S3 S4 S6 = 5 (S5 is inactive); 高一 S1 S2 S3 = 3; 高二(1)班 S4 S6 = 2.
- loans lent in September: #1–#8 (8, one of them the teacher's); students' #1–#7 = 7.
- copies lent: B1 B2 B3 B4 B5 B6 = 6 of a collection of 10 at the end of September (B1–B9 and
  B12: B10 is withdrawn, B11 arrived in October).
- 逾期未还 (due in September, not back by its end): #3 4 days (due 26 Sep, still out on 30 Sep).
- 逾期归还 (due in September, returned after the due date): #9 2 days, #2 3 days.
- 无法送达通知的读者: S2 (blocked the bot) and S3 (no binding) have a failed notification; S1's
  was sent. `shuxiang outbox failed` lists the same two.
- 新书: r7 was catalogued on 15 Sep with B9 added that day: 1 种, 1 册. B11 (r7's second copy)
  came in October; B8 is another copy of r4, catalogued in 2020: neither is a new book.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import update

from services.errors import ServiceError
from services.stats.figures import (
    Scope,
    ScopeKind,
    compute,
    period_for_dates,
    resolve_scope,
    weeding_list,
)
from storage.db import Database
from storage.models import Copy, CopyStatus
from tests.stats_world import NOW, TZ, build_stats_world

SEPTEMBER = period_for_dates(date(2026, 9, 1), date(2026, 9, 30), TZ)


async def test_school_figures(db: Database) -> None:
    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        st = await compute(s, Scope.school(), SEPTEMBER, tz=TZ, now=NOW)
    assert (st.students, st.loans, st.student_loans, st.borrowers) == (5, 8, 7, 4)
    assert st.loans_per_student == pytest.approx(7 / 5)
    assert st.borrow_rate == pytest.approx(4 / 5)
    assert (st.copies_lent, st.collection) == (6, 10)
    assert st.circulation_rate == pytest.approx(6 / 10)
    assert {c.label: c.count for c in st.by_clc} == {"I": 5, "P": 1, "K": 1, "?": 1}
    assert st.by_clc[0].label == "I"
    assert st.top_books[0].title == "三体" and st.top_books[0].count == 4
    assert {b.title: b.count for b in st.top_books[1:]} == {
        "红楼梦": 1,
        "时间简史": 1,
        "中国通史": 1,
        "无分类之书": 1,
    }
    assert [(r.name, r.count) for r in st.top_readers[:2]] == [("张一", 3), ("李二", 2)]
    assert {r.name: r.count for r in st.top_readers} == {"张一": 3, "李二": 2, "王三": 1, "赵四": 1}
    assert [(o.name, o.barcode, o.days) for o in st.overdue] == [("张一", "B4", 4)]
    assert (st.overdue_count, st.overdue_days) == (1, 4)
    assert [(o.name, o.barcode, o.days) for o in st.returned_late] == [
        ("赵四", "B3", 2),
        ("张一", "B3", 3),
    ]
    assert st.returned_late_days == 5
    assert [(r.name, r.count) for r in st.unreachable] == [("李二", 1), ("王三", 1)]
    assert (st.holds_placed, st.holds_filled) == (3, 1)
    assert [(g.query, g.readers) for g in st.suggestions] == [("哈利波特", 3), ("小王子", 1)]
    assert (st.new_titles, st.new_copies) == (1, 1)
    assert {c.label: c.count for c in st.by_class} == {
        "高一(1)班": 5,
        "高一(2)班": 1,
        "高二(1)班": 1,
    }


async def test_grade_figures(db: Database) -> None:
    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        st = await compute(s, Scope.grade("高一"), SEPTEMBER, tz=TZ, now=NOW)
    assert (st.students, st.loans, st.student_loans, st.borrowers) == (3, 6, 6, 3)
    assert st.loans_per_student == pytest.approx(2.0)
    assert st.borrow_rate == pytest.approx(1.0)
    # B1 B2 B3 B4 B5; the collection is the school's.
    assert (st.copies_lent, st.collection) == (5, 10)
    assert {c.label: c.count for c in st.by_clc} == {"I": 4, "P": 1, "K": 1}
    assert [(r.name, r.count) for r in st.top_readers] == [("张一", 3), ("李二", 2), ("王三", 1)]
    assert [(o.barcode, o.days) for o in st.overdue] == [("B4", 4)]
    assert [(o.barcode, o.days) for o in st.returned_late] == [("B3", 3)]
    assert [r.name for r in st.unreachable] == ["李二", "王三"]
    assert (st.holds_placed, st.holds_filled) == (1, 1)
    # The unbound Telegram user's suggestion belongs to no grade.
    assert [(g.query, g.readers) for g in st.suggestions] == [("哈利波特", 2), ("小王子", 1)]
    assert {c.label: c.count for c in st.by_class} == {"高一(1)班": 5, "高一(2)班": 1}


async def test_class_figures(db: Database) -> None:
    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        st = await compute(s, Scope.klass("高二(1)班"), SEPTEMBER, tz=TZ, now=NOW)
    assert (st.students, st.loans, st.student_loans, st.borrowers) == (2, 1, 1, 1)
    assert st.loans_per_student == pytest.approx(0.5)
    assert st.borrow_rate == pytest.approx(0.5)
    assert st.circulation_rate == pytest.approx(1 / 10)
    assert [(c.label, c.count) for c in st.by_clc] == [("?", 1)]
    assert [(b.title, b.count) for b in st.top_books] == [("无分类之书", 1)]
    assert st.overdue == []
    assert [(o.name, o.barcode, o.days) for o in st.returned_late] == [("赵四", "B3", 2)]
    assert st.unreachable == []
    assert (st.holds_placed, st.holds_filled) == (1, 0)
    assert st.suggestions == []
    assert [(c.label, c.count) for c in st.by_class] == [("高二(1)班", 1)]


async def test_period_not_over_counts_overdue_days_to_today(db: Database) -> None:
    await build_stats_world(db)
    # On 28 Sep (Shanghai) #3 is 2 days late and #2, due the 25th, is still out: 3 days.
    today = period_for_dates(date(2026, 9, 28), date(2026, 9, 28), TZ).start
    async with db.transaction(read_only=True) as s:
        st = await compute(s, Scope.klass("高一(1)班"), SEPTEMBER, tz=TZ, now=today)
    # On that day #2 was not back yet: still owed, not "returned late".
    assert [(o.barcode, o.days) for o in st.overdue] == [("B3", 3), ("B4", 2)]
    assert st.returned_late == []


async def test_scope_names(db: Database) -> None:
    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        assert await resolve_scope(s, None) == Scope.school()
        assert await resolve_scope(s, "高一（1）班") == Scope(ScopeKind.CLASS, "高一(1)班")
        assert await resolve_scope(s, " 高二 ") == Scope(ScopeKind.GRADE, "高二")
        with pytest.raises(ServiceError) as refused:
            await resolve_scope(s, "初三(9)班")
    assert "初三(9)班" in refused.value.render()


async def test_weeding_list(db: Database) -> None:
    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        five = await weeding_list(s, years=5, now=NOW)
        ten = await weeding_list(s, years=10, now=NOW)
    # B7 never lent; B12 last lent in 2018; B10 is withdrawn already.
    assert [(w.barcode, w.last_lent_at is None) for w in five] == [("B12", False), ("B7", True)]
    # Ten years back only B12 (bought 2015) was there, and it was lent in 2018.
    assert ten == []
    # A copy marked damaged is a candidate whatever its age or loans.
    async with db.transaction() as s:
        await s.execute(
            update(Copy).where(Copy.barcode == "B1").values(status=CopyStatus.DAMAGED.value)
        )
    async with db.transaction(read_only=True) as s:
        ten = await weeding_list(s, years=10, now=NOW)
    assert [(w.barcode, w.status) for w in ten] == [("B1", CopyStatus.DAMAGED.value)]


def test_period_must_run_forward() -> None:
    with pytest.raises(ServiceError):
        period_for_dates(date(2026, 9, 2), date(2026, 9, 1), TZ)
