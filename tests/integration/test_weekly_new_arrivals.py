"""Issue 19 item 6: the weekly 新书推荐 is about new arrivals, and a reader without history gets the
new books their grade borrows most — never a generic 全校热门 list. On the small library of
tests/integration/test_recommend.py (SQLite and PostgreSQL).

By hand: the new books are 流浪地球 (科幻), 西游记 (名著), 高等数学 (数学) and 人类简史, imported
today after the list's clock time; 三体全集 is withdrawn. 高一's earlier system lent 高等数学 to
红迷 and 同班 (imported history), so for 新生 (高一, no loans) it is the new book their grade
borrows most and comes first. 陈老师 has no grade and no loans: new books, labelled 新到馆.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from services.readers.binding import bind_telegram, issue_codes
from services.recommend.model import fit
from services.recommend.reasons import reasons_text
from services.recommend.weekly import compose_weekly
from storage.db import Database
from storage.models import Copy, CopyStatus, PastLoan, Reader, Record
from tests.factories import POLICY
from tests.integration.test_recommend import (
    NOW,
    OLD,
    bind_all,
    build_library,
    history,
)
from tests.stats_world import TZ

NEW = {"流浪地球", "西游记", "高等数学", "人类简史"}


async def _more(db: Database, pks: dict[str, int]) -> None:
    async with db.transaction() as s:
        # Imported today, a few hours after the weekly list's clock reads.
        later = NOW + timedelta(hours=3)
        rec = Record(record_id="new_k", title="人类简史", clc="K1", catalogued_at=later)
        s.add(rec)
        await s.flush()
        s.add(Copy(barcode="new_k-0", record_pk=rec.id, status=CopyStatus.ON_SHELF.value))
        s.add(Reader(card_no="T1", name="陈老师", role="teacher"))
        ids = dict(
            (
                await s.execute(
                    select(Reader.card_no, Reader.id).where(Reader.card_no.in_(["S2", "S3"]))
                )
            )
            .tuples()
            .all()
        )
        for n, card in enumerate(("S2", "S3")):
            s.add(
                PastLoan(
                    reader_id=ids[card],
                    record_pk=pks["new_ma"],
                    lent_at=OLD,
                    returned_at=OLD + timedelta(days=7),
                    dedupe_key=f"past:{n}",
                )
            )
    async with db.transaction() as s:
        (code,) = await issue_codes(s, policy=POLICY, card_nos=["T1"])
        await bind_telegram(s, code=code.code, telegram_user_id=7100, chat_id=7100)


async def test_weekly_list_is_new_books_and_a_cold_reader_gets_the_grades(db: Database) -> None:
    pks = await build_library(db)
    await history(db)
    await bind_all(db)
    await _more(db, pks)
    async with db.transaction() as s:
        model = await fit(s)
        messages = {m.reader.card_no: m for m in await compose_weekly(s, model, now=NOW, tz=TZ)}
    titles = {card: [b.title for b in m.books] for card, m in messages.items()}
    # Only new arrivals, today's import included, for everyone.
    for card, books in titles.items():
        assert set(books) <= NEW, card
    assert "人类简史" in titles["S1"] and "人类简史" in titles["T1"]
    # 新生 has no loans: the new book 高一 borrows most first, in the grade's name.
    assert titles["S4"][0] == "高等数学"
    assert all("同年级同学喜欢的新书" in reasons_text(b.reasons) for b in messages["S4"].books)
    # No line of anyone's list is a generic 全校热门.
    for message in messages.values():
        for book in message.books:
            assert "全校热门" not in reasons_text(book.reasons), (message.reader.card_no, book)
    # The teacher without a grade or loans gets new books, said to be new.
    assert set(titles["T1"]) == NEW
    assert all(reasons_text(b.reasons) == "新到馆" for b in messages["T1"].books)
