"""Benchmark: how long the librarian waits for the term's numbers on a large school.

    .venv/bin/python benchmarks/stats.py [--classes 60] [--per-class 40] [--loans 100000]
                                         [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/test]

A synthetic school (``classes`` x ``per-class`` students, one copy per 10 loans, a year of loans)
is written in bulk to a fresh SQLite file and, when reachable, a fresh PostgreSQL database. Then,
per backend:

- ours: ``services.stats.compute`` for the school, a grade and a class (every figure in SQL);
- peer: the spreadsheet way: read the period's loans with their reader and title into Python and
  count there (only the loan figures, fewer than ours);
- the three charts (matplotlib, CJK font) and the PDF with tables (fpdf2), once.

Medians of 3 runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, text  # noqa: E402

from services.actor import Actor  # noqa: E402
from services.stats.figures import Period, Scope, compute, period_for_dates  # noqa: E402
from services.stats.reports.charts import render_charts  # noqa: E402
from services.stats.reports.document import write_report  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Copy, Loan, Reader, Record, Role  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 9, 1, tzinfo=UTC)
GRADES = ("初一", "初二", "初三", "高一", "高二", "高三")
RUNS = 3


async def populate(db: Database, classes: int, per_class: int, loans: int) -> None:
    copies = max(100, loans // 10)
    async with db.transaction() as s:
        await s.execute(
            insert(Record),
            [
                {"record_id": f"R{i}", "title": f"书名{i}", "clc": "ABIKOTZ"[i % 7] + str(i % 900)}
                for i in range(copies // 2)
            ],
        )
        await s.execute(
            insert(Copy),
            [
                {
                    "barcode": f"C{i}",
                    "record_pk": i // 2 + 1,
                    "status": "on_shelf",
                    "created_at": START - timedelta(days=400 + i % 300),
                }
                for i in range(copies)
            ],
        )
        students = classes * per_class
        await s.execute(
            insert(Reader),
            [
                {
                    "card_no": f"S{i}",
                    "name": f"学生{i}",
                    "role": Role.STUDENT.value,
                    "grade": GRADES[(i // per_class) % len(GRADES)],
                    "class_name": f"{GRADES[(i // per_class) % len(GRADES)]}({i // per_class})班",
                    "active": True,
                }
                for i in range(students)
            ],
        )
        rows: list[dict[str, Any]] = []
        for i in range(loans):
            lent = START + timedelta(minutes=(i * 5) % (365 * 24 * 60))
            rows.append(
                {
                    "copy_id": (i * 7919) % copies + 1,
                    "reader_id": (i * i) % students + 1,
                    "lent_at": lent,
                    "due_at": lent + timedelta(days=30),
                    "returned_at": lent + timedelta(days=(i % 40) + 1),
                }
            )
            if len(rows) == 10_000:
                await s.execute(insert(Loan), rows)
                rows = []
        if rows:
            await s.execute(insert(Loan), rows)


async def peer(db: Database, period: Period) -> int:
    """Read the rows and count in Python."""
    async with db.transaction(read_only=True) as s:
        rows = (
            await s.execute(
                select(Loan.reader_id, Loan.copy_id, Reader.class_name, Record.title, Record.clc)
                .join(Reader, Reader.id == Loan.reader_id)
                .join(Copy, Copy.id == Loan.copy_id)
                .join(Record, Record.id == Copy.record_pk)
                .where(Loan.lent_at >= period.start, Loan.lent_at < period.end)
            )
        ).all()
    by_clc = Counter((clc or "?")[0] for *_, clc in rows)
    top = Counter(title for *_, title, _ in rows).most_common(10)
    readers = {r[0] for r in rows}
    return len(rows) + len(by_clc) + len(top) + len(readers)


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    samples = []
    for _ in range(RUNS):
        began = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


async def bench(url: str, label: str, args: argparse.Namespace) -> list[tuple[str, str, float]]:
    db = Database(url)
    await upgrade(db.engine)
    began = time.perf_counter()
    await populate(db, args.classes, args.per_class, args.loans)
    print(f"{label}: populated in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    period = period_for_dates(date(2025, 9, 1), date(2026, 1, 20), TZ)
    now = datetime(2026, 2, 1, tzinfo=UTC)
    results = []
    for name, scope in (
        ("school", Scope.school()),
        ("grade", Scope.grade("高一")),
        ("class", Scope.klass("高一(3)班")),
    ):

        async def ours(scope: Scope = scope) -> None:
            async with db.transaction(read_only=True) as s:
                await compute(s, Actor.system(), scope, period, tz=TZ, now=now)

        results.append((label, f"ours: compute, {name}", await timed(ours)))
    results.append((label, "peer: rows into Python, school", await timed(lambda: peer(db, period))))
    async with db.transaction(read_only=True) as s:
        stats = await compute(s, Actor.system(), Scope.school(), period, tz=TZ, now=now)
    began = time.perf_counter()
    charts = render_charts(stats)
    results.append((label, "charts (3 PNG)", (time.perf_counter() - began) * 1000))
    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        write_report(Path(out), stats, TZ, charts, None)
        results.append((label, "report files (CSV + PDF)", (time.perf_counter() - began) * 1000))
    await db.dispose()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", type=int, default=60)
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results += await bench(f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", "sqlite", args)
    admin = Database(args.pg)
    name = "shuxiang_bench_stats"
    try:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        results += await bench(args.pg.rsplit("/", 1)[0] + f"/{name}", "postgresql", args)
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except OSError as exc:
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
    finally:
        await admin.dispose()
    print(
        f"\n{args.classes * args.per_class} students, {args.loans} loans, "
        f"{max(100, args.loans // 10)} copies; median of {RUNS} runs\n"
    )
    print(f"| {'backend':<10} | {'what':<34} | {'ms':>8} |")
    print(f"|{'-' * 12}|{'-' * 36}|{'-' * 10}|")
    for backend, what, ms in results:
        print(f"| {backend:<10} | {what:<34} | {ms:>8.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
