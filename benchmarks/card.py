"""Benchmark: opening a book card on the shared 81k-title catalogue, with its series neighbours.

    .venv/bin/python benchmarks/card.py [--cards 200] [--keep DIR]

Loads both catalogue files through the real importer (which indexes as it goes) into a fresh
SQLite file, then opens the cards of records that belong to a series, the largest series first
(a publisher's 文库 of a hundred titles is the worst case), and times three ways of finding the
series' other records, each inside the same read-only transaction:

- ``card``: the whole ``book_card`` as the bot calls it (counts, holds, earliest due, series);
- ``series key``: ``series_links`` alone: the series search key (indexed) → sibling records;
- ``series scan``: the obvious peer, ``WHERE records.series = ?`` (no index on that column).

Timings are noisy on a shared machine: the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sandbox.shared_data import shared_data_dir  # noqa: E402

SHARED = shared_data_dir()
CATALOGUES = [SHARED / "catalogue" / "books_6k.csv", SHARED / "catalogue" / "books_75k.csv"]


async def run(directory: Path, cards: int) -> list[tuple[str, list[float]]]:
    from sqlalchemy import func, select

    from nlp.search import SearchEngine
    from services.catalogue.card import book_card, series_links
    from services.imports.catalogue import import_catalogue
    from storage.db import Database
    from storage.migrate import upgrade
    from storage.models import Record

    url = f"sqlite+aiosqlite:///{directory / 'card.sqlite3'}"
    db = Database(url)
    try:
        await upgrade(db.engine)
        engine = SearchEngine(cache_dir=directory / "jieba")
        for path in CATALOGUES:
            async with db.transaction() as session:
                await import_catalogue(session, path, indexer=engine.indexer)
        async with db.transaction(read_only=True) as session:
            size = func.count(Record.id).over(partition_by=Record.series)
            ranked = select(Record.id, size.label("n")).where(Record.series.is_not(None)).subquery()
            pks = list(
                await session.scalars(
                    select(ranked.c.id).order_by(ranked.c.n.desc(), ranked.c.id).limit(cards)
                )
            )
        timings: list[tuple[str, list[float]]] = []

        async def timed(name: str, call: Callable[[int], Awaitable[object]]) -> None:
            samples = []
            for pk in pks:
                started = time.perf_counter()
                await call(pk)
                samples.append((time.perf_counter() - started) * 1000)
            timings.append((name, samples))

        async with db.transaction(read_only=True) as session:

            async def card(pk: int) -> object:
                return await book_card(session, pk, reader_id=None, shelf_map={})

            async def by_key(pk: int) -> object:
                return await series_links(session, await session.get_one(Record, pk))

            async def by_scan(pk: int) -> object:
                record = await session.get_one(Record, pk)
                rows = await session.execute(
                    select(Record.id, Record.title, Record.subtitle).where(
                        Record.series == record.series, Record.id != pk
                    )
                )
                return rows.all()

            await timed("card", card)
            await timed("series key", by_key)
            await timed("series scan", by_scan)
        return timings
    finally:
        await db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="put the database here and keep it")
    args = parser.parse_args()
    missing = [p for p in CATALOGUES if not p.is_file()]
    if missing:
        print(f"shared data not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="shuxiang-card-") as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        timings = asyncio.run(run(directory, args.cards))
    header = f"{'way':<14}{'cards':>7}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}"
    print(header)
    print("-" * len(header))
    for name, samples in timings:
        p95 = statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]
        print(
            f"{name:<14}{len(samples):>7}{statistics.median(samples):>11.2f}"
            f"{p95:>9.2f}{max(samples):>9.2f}"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
