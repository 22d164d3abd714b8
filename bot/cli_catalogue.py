"""``shuxiang import catalogue|readers FILE``: load CSV files through services.importing."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.config import Settings
from bot.runtime import configure_logging, fail, run_with_db, settings_or_exit

# Listing thousands of problems helps nobody: show the first ones and count the rest.
MAX_LISTED_PROBLEMS = 50
# Truncations are warnings about rows that did go in: a few examples are enough.
MAX_LISTED_WARNINGS = 10
# Below this many rows the import is over before a bar would be worth drawing.
PROGRESS_MIN_ROWS = 2000

import_app = typer.Typer(
    help="导入：馆藏目录与读者名单（UTF-8 编码的 CSV）。",
    no_args_is_help=True,
    rich_markup_mode=None,
)

SkipBad = Annotated[
    bool,
    typer.Option(
        "--skip-bad/--no-skip-bad",
        help="跳过有问题的行，导入其余各行并列出被跳过的行；"
        "默认（--no-skip-bad）只要有一行有问题，整个文件都不导入。",
    ),
]


class _ProgressBar:
    """A stderr progress bar fed by the importer's ``progress(done, total)`` callback."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total < PROGRESS_MIN_ROWS:
                return
            self.bar = typer.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done
        if done >= total:
            # The search index is rebuilt after the last row, with no progress of its own.
            self.close()
            typer.echo("正在更新搜索索引 ……", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _print_problems(
    title: str, problems: Sequence[object], *, err: bool, limit: int = MAX_LISTED_PROBLEMS
) -> None:
    typer.echo(title, err=err)
    for problem in problems[:limit]:
        typer.echo(f"  {problem}", err=err)
    if len(problems) > limit:
        typer.echo(f"  ……另有 {len(problems) - limit} 处未列出", err=err)


def _setup(file: Path) -> Settings:
    _check_file(file)
    settings = settings_or_exit()
    configure_logging(settings)
    # Migration chatter at INFO would bury the summary; real problems still show.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return settings


def _check_file(path: Path) -> None:
    # Checked before the database is touched, so a typo costs nothing.
    if not path.exists():
        fail(f"找不到文件：{path}")
    if not path.is_file():
        fail(f"不是普通文件：{path}")


@import_app.command("catalogue")
def import_catalogue_command(
    file: Annotated[Path, typer.Argument(help="馆藏目录 CSV 文件（列：record_id、title……）")],
    skip_bad: SkipBad = False,
) -> None:
    """导入馆藏目录：按 record_id 新建或更新书目，并补上缺少的副本（可重复导入，不会重复建档）。"""
    from services.importing import (
        CatalogueReport,
        ImportFileError,
        ImportRejected,
        import_catalogue,
    )
    from storage.db import Database

    settings = _setup(file)
    bar = _ProgressBar("写入书目")

    async def body(db: Database) -> CatalogueReport:
        typer.echo(f"正在读取并检查 {file} ……", err=True)
        try:
            return await import_catalogue(db, file, skip_bad=skip_bad, progress=bar)
        finally:
            bar.close()

    try:
        report = run_with_db(settings, body, migrate=True)
    except ImportFileError as exc:
        fail(str(exc))
    except ImportRejected as exc:
        _print_problems(f"文件 {file} 有 {len(exc.problems)} 处问题：", exc.problems, err=True)
        fail(
            "未导入任何数据。请修正后重新导入，或加 --skip-bad 只导入没有问题的行。",
            code=1,
        )

    typer.echo(f"导入完成：{file.name}（共 {report.rows} 行，用时 {report.elapsed_s:.1f} 秒）")
    typer.echo(
        f"  书目：新建 {report.records_created} 条，更新 {report.records_updated} 条，"
        f"未变 {report.records_unchanged} 条"
    )
    typer.echo(f"  副本：新增 {report.copies_added} 册")
    if report.truncated:
        _print_problems(
            f"  有 {len(report.truncated)} 处内容过长，已截断后导入：",
            report.truncated,
            err=False,
            limit=MAX_LISTED_WARNINGS,
        )
    if report.skipped:
        _print_problems(f"  跳过 {len(report.skipped)} 行：", report.skipped, err=False)


@import_app.command("readers")
def import_readers_command(
    file: Annotated[Path, typer.Argument(help="读者名单 CSV：card_no,name,role,grade,class_name")],
    skip_bad: SkipBad = False,
) -> None:
    """导入读者名单：按借书证号新建或更新读者；名单里没有的读者保持不变（不会被停用）。"""
    from services.importing import ImportFileError, ImportRejected, ReaderReport, import_readers
    from storage.db import Database

    settings = _setup(file)

    async def body(db: Database) -> ReaderReport:
        return await import_readers(db, file, skip_bad=skip_bad)

    try:
        report = run_with_db(settings, body, migrate=True)
    except ImportFileError as exc:
        fail(str(exc))
    except ImportRejected as exc:
        _print_problems(f"文件 {file} 有 {len(exc.problems)} 处问题：", exc.problems, err=True)
        fail(
            "未导入任何数据。请修正后重新导入，或加 --skip-bad 只导入没有问题的行。",
            code=1,
        )

    typer.echo(f"导入完成：{file.name}（共 {report.rows} 行，用时 {report.elapsed_s:.1f} 秒）")
    typer.echo(
        f"  读者：新建 {report.created} 人，更新 {report.updated} 人，未变 {report.unchanged} 人"
    )
    if report.skipped:
        _print_problems(f"  跳过 {len(report.skipped)} 行：", report.skipped, err=False)


def register(app: typer.Typer) -> None:
    """Add the ``import`` group to the root app."""
    app.add_typer(import_app, name="import")
