"""Benchmark: the shared catalogue (81k titles, 174k copies) and roster into a fresh SQLite file.

Imports ../shared/data/catalogue/books_6k.csv, books_75k.csv and readers/school_roster.csv through
the real importers (search indexing included), twice. The second pass must change nothing. Each
pass runs in its own freshly spawned process so its peak RSS is its own.

    .venv/bin/python benchmarks/import_catalogue.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from sandbox.shared_data import shared_data_dir  # noqa: E402

SHARED = shared_data_dir()
CATALOGUES = [SHARED / "catalogue" / "books_6k.csv", SHARED / "catalogue" / "books_75k.csv"]
ROSTER = SHARED / "readers" / "school_roster.csv"
BUDGET_S = 60.0  # both catalogue files, first pass, indexing included


@dataclass(frozen=True)
class Step:
    file: str
    rows: int
    created: int
    updated: int
    unchanged: int
    copies_added: int
    skipped: int
    seconds: float


@dataclass(frozen=True)
class PassResult:
    steps: list[Step]
    seconds: float
    peak_rss_mb: float


def run_pass(url: str) -> PassResult:
    """One pass over all files, in this (spawned) process."""
    from services.imports.catalogue import import_catalogue, import_readers
    from storage.db import Database

    async def main() -> list[Step]:
        db = Database(url)
        steps = []
        try:
            for path in CATALOGUES:
                started = time.perf_counter()
                async with db.transaction() as session:  # the commit is timed too
                    report = await import_catalogue(session, path)
                steps.append(
                    Step(
                        path.name,
                        report.rows,
                        report.records_created,
                        report.records_updated,
                        report.records_unchanged,
                        report.copies_added,
                        len(report.skipped),
                        time.perf_counter() - started,
                    )
                )
            started = time.perf_counter()
            async with db.transaction() as session:
                readers = await import_readers(session, ROSTER)
            steps.append(
                Step(
                    ROSTER.name,
                    readers.rows,
                    readers.created,
                    readers.updated,
                    readers.unchanged,
                    0,
                    len(readers.skipped),
                    time.perf_counter() - started,
                )
            )
        finally:
            await db.dispose()
        return steps

    started = time.perf_counter()
    steps = asyncio.run(main())
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return PassResult(steps, seconds, peak_kb / 1024)


def migrate(url: str) -> None:
    from storage.db import Database
    from storage.migrate import upgrade

    async def main() -> None:
        db = Database(url)
        try:
            await upgrade(db.engine)
        finally:
            await db.dispose()

    asyncio.run(main())


def in_fresh_process(url: str) -> PassResult:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(run_pass, url).result()


def print_table(results: list[PassResult]) -> None:
    header = (
        f"{'pass':<6}{'file':<22}{'rows':>8}{'created':>9}{'updated':>9}{'unchanged':>11}"
        f"{'copies+':>9}{'skipped':>9}{'seconds':>9}{'peak RSS':>11}"
    )
    print(header)
    print("-" * len(header))
    for number, result in enumerate(results, 1):
        for step in result.steps:
            print(
                f"{number:<6}{step.file:<22}{step.rows:>8}{step.created:>9}{step.updated:>9}"
                f"{step.unchanged:>11}{step.copies_added:>9}{step.skipped:>9}"
                f"{step.seconds:>9.2f}{'':>11}"
            )
        rows = sum(step.rows for step in result.steps)
        print(
            f"{number:<6}{'TOTAL':<22}{rows:>8}{'':>9}{'':>9}{'':>11}{'':>9}{'':>9}"
            f"{result.seconds:>9.2f}{result.peak_rss_mb:>8.0f} MB"
        )
        print("-" * len(header))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="put the database here and keep it")
    args = parser.parse_args()

    missing = [p for p in [*CATALOGUES, ROSTER] if not p.is_file()]
    if missing:
        print(f"shared data not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="shuxiang-bench-") as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        database = directory / "bench.sqlite3"
        for leftover in directory.glob("bench.sqlite3*"):
            leftover.unlink()
        url = f"sqlite+aiosqlite:///{database}"
        migrate(url)
        results = [in_fresh_process(url), in_fresh_process(url)]

    print_table(results)
    first, second = results
    catalogue_s = sum(s.seconds for s in first.steps if s.file in {p.name for p in CATALOGUES})
    idle = all(s.created == s.updated == s.copies_added == 0 for s in second.steps)
    clean = all(s.skipped == 0 for r in results for s in r.steps)
    print(f"first pass, catalogue files: {catalogue_s:.1f} s (budget {BUDGET_S:.0f} s)")
    print(f"second pass changed nothing: {'yes' if idle else 'NO'}")
    print(f"no rows skipped: {'yes' if clean else 'NO'}")
    return 0 if idle and clean and catalogue_s < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
