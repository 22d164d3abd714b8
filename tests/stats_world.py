"""A small fixed library for the statistics tests; every figure the tests expect is worked out by
hand in tests/integration/test_stats.py from what is written here."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from storage.db import Database
from storage.models import (
    ClassMonitor,
    Copy,
    CopyStatus,
    Hold,
    HoldStatus,
    Loan,
    Notification,
    OutboxStatus,
    PurchaseSuggestion,
    Reader,
    Record,
    Role,
)
from tests.factories import telegram_endpoint

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
OLD = datetime(2020, 1, 1, tzinfo=UTC)


def at(month: int, day: int, hour: int = 2, year: int = 2026) -> datetime:
    """UTC; 02:00 UTC is 10:00 in Shanghai, 10:00 UTC (a due time) is 18:00."""
    return datetime(year, month, day, hour, tzinfo=UTC)


# card -> (name, grade, class, role, active)
READERS = {
    "S1": ("张一", "高一", "高一(1)班", Role.STUDENT, True),
    "S2": ("李二", "高一", "高一(1)班", Role.STUDENT, True),
    "S3": ("王三", "高一", "高一(2)班", Role.STUDENT, True),
    "S4": ("赵四", "高二", "高二(1)班", Role.STUDENT, True),
    "S5": ("孙五", "高二", "高二(1)班", Role.STUDENT, False),
    "S6": ("钱六", "高二", "高二(1)班", Role.STUDENT, True),
    "T1": ("陈老师", None, None, Role.TEACHER, True),
    "L1": ("周馆员", None, None, Role.LIBRARIAN, True),
}
# record_id -> (title, clc, catalogued_at)
RECORDS = {
    "r1": ("三体", "I247.5", OLD),
    "r2": ("红楼梦", "I242.4", OLD),
    "r3": ("时间简史", "P159", OLD),
    "r4": ("中国通史", "K20", OLD),
    "r5": ("无分类之书", None, OLD),
    "r6": ("旧书", "Z228", OLD),
    "r7": ("新书", "I287", at(9, 15)),
}
# barcode -> (record_id, created_at, status)
COPIES = {
    "B1": ("r1", OLD, CopyStatus.ON_SHELF),
    "B2": ("r1", OLD, CopyStatus.ON_LOAN),
    "B3": ("r2", OLD, CopyStatus.ON_SHELF),
    "B4": ("r3", OLD, CopyStatus.ON_LOAN),
    "B5": ("r4", OLD, CopyStatus.ON_SHELF),
    "B6": ("r5", OLD, CopyStatus.ON_SHELF),
    "B7": ("r6", OLD, CopyStatus.ON_SHELF),
    "B8": ("r4", at(9, 10), CopyStatus.ON_SHELF),
    "B9": ("r7", at(9, 15), CopyStatus.ON_SHELF),
    "B10": ("r2", OLD, CopyStatus.WITHDRAWN),
    "B11": ("r7", at(10, 10), CopyStatus.ON_SHELF),
    "B12": ("r6", datetime(2015, 3, 1, tzinfo=UTC), CopyStatus.ON_SHELF),
}
# (card, barcode, lent, due, returned)
LOANS = [
    ("S1", "B1", at(9, 2), at(9, 20, 10), at(9, 10)),  # 1
    ("S1", "B3", at(9, 5), at(9, 25, 10), at(9, 28)),  # 2: 3 days late
    ("S1", "B4", at(9, 12), at(9, 26, 10), None),  # 3: still out, 4 days late by 30 Sep
    ("S2", "B2", at(9, 3), at(9, 23, 10), at(9, 20)),  # 4
    ("S2", "B1", at(9, 15), at(10, 15, 10), at(9, 16, 3)),  # 5: same title again, kept 25 h
    ("S3", "B5", at(9, 8), at(9, 28, 10), at(9, 8, 6)),  # 6: back the same day
    ("S4", "B6", at(9, 10), at(9, 30, 10), at(9, 29)),  # 7
    ("T1", "B2", at(9, 25), at(11, 25, 10), None),  # 8: a teacher
    ("S4", "B3", at(8, 20), at(9, 5, 10), at(9, 7)),  # 9: lent before, due in: 2 days late
    ("S3", "B1", at(10, 5), at(10, 25, 10), at(10, 20)),  # 10: after the period
    ("S5", "B12", datetime(2018, 5, 1, tzinfo=UTC), at(6, 1, 10, 2018), at(5, 20, 2, 2018)),
]
# (card, record, placed, status)
HOLDS = [
    ("S3", "r1", at(9, 4), HoldStatus.COLLECTED),
    ("S4", "r3", at(9, 13), HoldStatus.WAITING),
    ("T1", "r2", at(9, 20), HoldStatus.CANCELLED),
    ("S1", "r1", at(8, 1), HoldStatus.COLLECTED),
]
# (card or None, telegram user, query, created)
SUGGESTIONS = [
    ("S1", None, "哈利波特", at(9, 3)),
    ("S2", None, "哈利波特", at(9, 4)),
    ("S3", None, "小王子", at(9, 5)),
    (None, 777, "哈利波特", at(9, 6)),
    ("S4", None, "百年孤独", at(10, 3)),
]
# (card, status, last_error)
NOTIFICATIONS = [
    ("S2", OutboxStatus.FAILED, "TelegramForbiddenError: Forbidden: bot was blocked by the user"),
    ("S3", OutboxStatus.FAILED, "reader has no Telegram binding"),
    ("S1", OutboxStatus.SENT, None),
]
# (card, telegram user, unreachable since): S2 blocked the bot, S1 did not.
BINDINGS = [("S2", 9002, at(10, 20)), ("S1", 9001, None)]
MONITORS = {"S2": "高一(1)班", "S6": "高二(1)班"}


async def build_stats_world(db: Database) -> dict[str, int]:
    """Writes the library; returns reader ids by card number."""
    ids: dict[str, int] = {}
    async with db.transaction() as s:
        for card, (name, grade, klass, role, active) in READERS.items():
            reader = Reader(
                card_no=card,
                name=name,
                grade=grade,
                class_name=klass,
                role=role.value,
                active=active,
                created_at=OLD,
            )
            s.add(reader)
            await s.flush()
            ids[card] = reader.id
        records: dict[str, int] = {}
        for rid, (title, clc, catalogued) in RECORDS.items():
            rec = Record(record_id=rid, title=title, clc=clc, catalogued_at=catalogued)
            s.add(rec)
            await s.flush()
            records[rid] = rec.id
        copies: dict[str, int] = {}
        for barcode, (rid, created, status) in COPIES.items():
            copy = Copy(
                barcode=barcode, record_pk=records[rid], created_at=created, status=status.value
            )
            s.add(copy)
            await s.flush()
            copies[barcode] = copy.id
        for card, barcode, lent, due, back in LOANS:
            s.add(
                Loan(
                    copy_id=copies[barcode],
                    reader_id=ids[card],
                    lent_at=lent,
                    due_at=due,
                    returned_at=back,
                )
            )
        for card, rid, placed, hold_status in HOLDS:
            s.add(
                Hold(
                    record_pk=records[rid],
                    reader_id=ids[card],
                    placed_at=placed,
                    status=hold_status.value,
                )
            )
        for card_or_none, tg, query, created in SUGGESTIONS:
            s.add(
                PurchaseSuggestion(
                    reader_id=ids[card_or_none] if card_or_none else None,
                    telegram_user_id=tg,
                    query=query,
                    created_at=created,
                )
            )
        for n, (card, note_status, error) in enumerate(NOTIFICATIONS):
            s.add(
                Notification(
                    kind="hold_ready",
                    reader_id=ids[card],
                    dedupe_key=f"test:{n}",
                    payload={},
                    status=note_status.value,
                    last_error=error,
                )
            )
        for card, user, blocked in BINDINGS:
            s.add(
                telegram_endpoint(
                    ids[card],
                    user,
                    unreachable_at=blocked,
                    unreachable_reason="Forbidden: bot was blocked by the user"
                    if blocked
                    else None,
                )
            )
        for card, klass in MONITORS.items():
            s.add(ClassMonitor(class_name=klass, reader_id=ids[card]))
    return ids
