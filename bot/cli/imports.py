"""``shuxiang import catalogue|readers FILE``: CSV, Excel and CNMARC through
services.imports.catalogue."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from bot.cli.runtime import configure_logging, fail, run_with_db, settings_or_exit
from bot.config import Settings
from services.i18n import t
from storage.db import Database

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

R = TypeVar("R")

# Listing thousands of problems helps nobody: show the first ones and count the rest.
MAX_LISTED_PROBLEMS = 50
# Truncations are warnings about rows that did go in: a few examples are enough.
MAX_LISTED_WARNINGS = 10
# Below this many rows the import is over before a bar would be worth drawing.
PROGRESS_MIN_ROWS = 2000
# Summary lines and listed problems sit under their heading.
INDENT = "  "

import_app = typer.Typer(
    help=t("cli.help_import"),
    no_args_is_help=True,
    rich_markup_mode=None,
)

SkipBad = Annotated[
    bool,
    typer.Option(
        "--skip-bad/--no-skip-bad",
        help=t("cli.help_import_skip_bad"),
    ),
]


class _ProgressBar:
    """A rich progress bar on stderr, fed by the importer's ``progress(done, total)`` callback."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            if total < PROGRESS_MIN_ROWS:
                return
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        if self.task is not None:
            self.progress.update(self.task, completed=done)
        if done >= total:
            # The search index is rebuilt after the last row, with no progress of its own.
            self.close()
            typer.echo(t("cli.import_reindexing"), err=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _columns_help(schema: str, required: Sequence[str]) -> str:
    """The columns an import reads, from the same vocabulary the importer maps headers with."""
    from services.imports.files import column_words

    lines = ["\b", t("import.cli.columns_title")]
    for column, words in column_words(schema).items():
        mark = f" ({t('import.cli.columns_required')})" if column in required else ""
        lines.append(f"{INDENT}{column:<15}{'/'.join(words)}{mark}")
    return "\n".join(lines)


def _print_problems(
    title: str, problems: Sequence[object], *, err: bool, limit: int = MAX_LISTED_PROBLEMS
) -> None:
    typer.echo(title, err=err)
    for problem in problems[:limit]:
        typer.echo(f"{INDENT}{problem}", err=err)
    if len(problems) > limit:
        typer.echo(f"{INDENT}{t('cli.import_more_problems', count=len(problems) - limit)}", err=err)


def _reject(file: Path, problems: Sequence[object]) -> NoReturn:
    _print_problems(t("cli.import_problems", file=file, count=len(problems)), problems, err=True)
    fail(t("cli.import_nothing_written"), code=1)


def _print_done(file: Path, rows: int, elapsed_s: float, *, records: bool = False) -> None:
    key = "import.cli.done_records" if records else "cli.import_done"
    typer.echo(t(key, file=file.name, rows=rows, elapsed=elapsed_s))


def _print_skipped(skipped: Sequence[object]) -> None:
    if skipped:
        _print_problems(
            f"{INDENT}{t('cli.import_skipped', count=len(skipped))}", skipped, err=False
        )


def _setup(file: Path) -> Settings:
    from services.imports.catalogue import ImportFileError, check_import_file

    # Checked before the database is touched, so a typo costs no connection or migration.
    try:
        check_import_file(file)
    except ImportFileError as exc:
        fail(str(exc))
    settings = settings_or_exit()
    configure_logging(settings)
    # Migration chatter at INFO would bury the summary; real problems still show.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return settings


def _run_import(settings: Settings, file: Path, body: Callable[[Database], Awaitable[R]]) -> R:
    """Run an import; a bad file or rejected rows end the command with their explanation."""
    from services.imports.catalogue import ImportFileError, ImportRejected

    try:
        return run_with_db(settings, body, migrate=True)
    except ImportFileError as exc:
        fail(str(exc))
    except ImportRejected as exc:
        _reject(file, exc.problems)


def _print_source(source: str, unknown: Sequence[str]) -> None:
    from services.imports.files import listed

    typer.echo(t("import.cli.source", source=source), err=True)
    if unknown:
        typer.echo(t("import.cli.unknown_columns", columns=listed(unknown)), err=True)


Sheet = Annotated[str | None, typer.Option("--sheet", help=t("import.cli.help_sheet"))]
CATALOGUE_REQUIRED = ("title",)
READERS_REQUIRED = ("card_no", "name", "role")


@import_app.command(
    "catalogue",
    help="\n\n".join(
        (
            t("cli.help_import_catalogue"),
            t("import.cli.catalogue_formats"),
            t("import.cli.catalogue_ids"),
            _columns_help("catalogue", CATALOGUE_REQUIRED),
            t("import.cli.marc_fields"),
        )
    ),
)
def import_catalogue_command(
    file: Annotated[Path, typer.Argument(help=t("cli.help_import_catalogue_file"))],
    skip_bad: SkipBad = False,
    sheet: Sheet = None,
    holdings_field: Annotated[
        str, typer.Option("--holdings-field", help=t("import.cli.help_holdings_field"))
    ] = "905",
    barcode_subfield: Annotated[
        str, typer.Option("--barcode-subfield", help=t("import.cli.help_barcode_subfield"))
    ] = "b",
    class_subfield: Annotated[
        str, typer.Option("--class-subfield", help=t("import.cli.help_class_subfield"))
    ] = "d",
    book_number_subfield: Annotated[
        str,
        typer.Option("--book-number-subfield", help=t("import.cli.help_book_number_subfield")),
    ] = "e",
) -> None:
    """Create or update records by record_id and add missing copies (idempotent)."""
    from nlp.index import CATALOGUE_TABLES
    from services.imports.catalogue import CatalogueReport, MarcHoldings, import_catalogue
    from services.imports.files import Unit

    settings = _setup(file)
    bar = _ProgressBar(t("cli.import_progress_records"))
    holdings = MarcHoldings(holdings_field, barcode_subfield, class_subfield, book_number_subfield)
    engine = settings.search_engine()

    async def body(db: Database) -> CatalogueReport:
        typer.echo(t("cli.import_reading", file=file), err=True)
        try:
            async with db.transaction() as session:
                report = await import_catalogue(
                    session,
                    file,
                    skip_bad=skip_bad,
                    progress=bar,
                    sheet=sheet,
                    holdings=holdings,
                    indexer=engine.indexer,
                )
        finally:
            bar.close()
        if report.records_created or report.records_updated or report.copies_added:
            await db.vacuum(*CATALOGUE_TABLES)
        return report

    report = _run_import(settings, file, body)

    _print_source(report.source, report.unknown_columns)
    if report.generated_ids:
        typer.echo(t("import.cli.generated_ids"), err=True)
    _print_done(file, report.rows, report.elapsed_s, records=report.unit is Unit.RECORD)
    records = t(
        "cli.import_records",
        created=report.records_created,
        updated=report.records_updated,
        unchanged=report.records_unchanged,
    )
    typer.echo(f"{INDENT}{records}")
    typer.echo(f"{INDENT}{t('cli.import_copies', count=report.copies_added)}")
    if report.truncated:
        _print_problems(
            f"{INDENT}{t('cli.import_truncated', count=len(report.truncated))}",
            report.truncated,
            err=False,
            limit=MAX_LISTED_WARNINGS,
        )
    _print_skipped(report.skipped)


@import_app.command(
    "readers",
    help="\n\n".join((t("cli.help_import_readers"), _columns_help("readers", READERS_REQUIRED))),
)
def import_readers_command(
    file: Annotated[Path, typer.Argument(help=t("cli.help_import_readers_file"))],
    skip_bad: SkipBad = False,
    sheet: Sheet = None,
    role: Annotated[str | None, typer.Option("--role", help=t("import.cli.help_role"))] = None,
) -> None:
    """Create or update readers by card number; readers not in the file are left alone."""
    from services.imports.catalogue import ReaderReport, import_readers

    settings = _setup(file)

    async def body(db: Database) -> ReaderReport:
        async with db.transaction() as session:
            return await import_readers(
                session, file, skip_bad=skip_bad, sheet=sheet, default_role=role
            )

    report = _run_import(settings, file, body)
    _print_source(report.source, report.unknown_columns)

    _print_done(file, report.rows, report.elapsed_s)
    readers = t(
        "cli.import_readers",
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
    )
    typer.echo(f"{INDENT}{readers}")
    _print_skipped(report.skipped)


def register(app: typer.Typer) -> None:
    """Add the ``import`` group to the root app."""
    app.add_typer(import_app, name="import")
