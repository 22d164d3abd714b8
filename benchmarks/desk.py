"""Benchmark: what a scan at the desk costs, next to the plain exact look-up it replaced.

    .venv/bin/python benchmarks/desk.py [--copies 75000] [--pg postgresql+asyncpg://...]

A school-sized library (75,000 copies, 2,000 readers) on SQLite (and PostgreSQL with --pg; its
tables are emptied). Each row: the median and 95th percentile of 300 look-ups.

- plain exact: ``select(Copy).where(Copy.barcode == code)``, the look-up before this change (a
  scanned ``b0012`` or ``Ｂ００１２`` found nothing);
- scan, clean code: ``copy_state`` for a scan in any case or width (cleaned, then the unique index;
  the state also reads the title and the open loan or hold: three queries, not one);
- scan, legacy stored code: the copy was stored as `` b0012 `` before imports cleaned codes (the
  exact look-up misses, the trimmed upper-case comparison scans the table);
- scan, unknown code: code-like text that is neither a copy nor a card (both look-ups miss and
  fall back before the text goes on to the search; words without a digit skip all this);
- reader by name + class: ``/reader 王小明 初二(3)班``.

Target: a clean scan under 10 ms (median); the fallbacks under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, text  # noqa: E402

from services.actor import Actor  # noqa: E402
from services.circulation import copy_state, find_reader_by_card, find_readers  # noqa: E402
from services.policy import LoanPolicy  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Base, Copy, Reader, Record  # noqa: E402

RUNS = 300
POLICY = LoanPolicy()
DESK = Actor.system("benchmark")  # the desk's look-ups are the librarian's


async def seed(db: Database, copies: int) -> None:
    async with db.transaction() as s:
        records = [{"record_id": f"R{i}", "title": f"书{i}"} for i in range(copies // 2)]
        await s.execute(insert(Record), records)
        pks = list(await s.scalars(select(Record.id).order_by(Record.id)))
        rows = [{"barcode": f"B{i:07d}", "record_pk": pks[i % len(pks)]} for i in range(copies)]
        rows[-1]["barcode"] = " b9legacy "  # stored before imports cleaned codes
        for start in range(0, len(rows), 5000):
            await s.execute(insert(Copy), rows[start : start + 5000])
        readers = [{"card_no": f"S{i:05d}", "name": f"学生{i}"} for i in range(2000)]
        await s.execute(insert(Reader), readers)


async def timed(call: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    spent = []
    for i in range(RUNS):
        start = time.perf_counter()
        await call(i)
        spent.append((time.perf_counter() - start) * 1000)
    spent.sort()
    return statistics.median(spent), spent[int(len(spent) * 0.95)]


async def measure(db: Database, copies: int) -> list[tuple[str, float, float]]:
    async with db.transaction(read_only=True) as s:

        async def plain(i: int) -> object:
            return await s.scalar(select(Copy).where(Copy.barcode == f"B{(i * 97) % copies:07d}"))

        async def clean(i: int) -> object:
            return await copy_state(
                s, POLICY, actor=DESK, barcode=f" ｂ{(i * 97) % copies:07d}\u3000"
            )

        async def legacy(i: int) -> object:
            return await copy_state(s, POLICY, actor=DESK, barcode="B9LEGACY")

        async def miss(i: int) -> object:
            word = f"X{i}Y"  # looks like a code, belongs to nothing
            return await copy_state(
                s, POLICY, actor=DESK, barcode=word
            ) or await find_reader_by_card(s, word)

        async def name(i: int) -> object:
            return await find_readers(s, "王小明 初二(3)班", actor=DESK)

        return [
            ("plain exact (before)", *await timed(plain)),
            ("scan, clean code", *await timed(clean)),
            ("scan, legacy stored code", *await timed(legacy)),
            ("scan, unknown code", *await timed(miss)),
            ("reader by name + class", *await timed(name)),
        ]


async def run(url: str, copies: int, postgres: bool) -> list[tuple[str, float, float]]:
    db = Database(url)
    try:
        if postgres:
            async with db.engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
                await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        await upgrade(db.engine)
        await seed(db, copies)
        return await measure(db, copies)
    finally:
        await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=75_000)
    parser.add_argument("--pg", help="a PostgreSQL URL (its tables are dropped and re-created)")
    args = parser.parse_args()
    results: dict[str, list[tuple[str, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'desk.sqlite3'}"
        results["SQLite"] = await run(url, args.copies, postgres=False)
    if args.pg:
        results["PostgreSQL"] = await run(args.pg, args.copies, postgres=True)
    print(f"\n## One scan at the desk: {args.copies:,} copies, 2,000 readers, {RUNS} look-ups\n")
    print("| database | look-up | median | p95 |")
    print("|---|---|---:|---:|")
    for backend, rows in results.items():
        for what, median, p95 in rows:
            print(f"| {backend} | {what} | {median:.2f} ms | {p95:.2f} ms |")


if __name__ == "__main__":
    asyncio.run(main())
