"""`shuxiang calendar import FILE.csv`: the school's closed days (holidays, 寒暑假)."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.runtime import fail, run_with_db, settings_or_exit
from services.i18n import t
from storage.db import Database

calendar_app = typer.Typer(help=t("cli_calendar.help"), no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(calendar_app, name="calendar")


@calendar_app.command("import", help=t("cli_calendar.help_import"))
def import_closed_days(file: Path) -> None:
    from services.imports.calendar import CalendarReport, import_calendar
    from services.imports.files import ImportFileError, ImportRejected

    settings = settings_or_exit()

    async def body(db: Database) -> CalendarReport:
        async with db.transaction() as session:
            return await import_calendar(session, file, settings.tz)

    try:
        report = run_with_db(settings, body)
    except ImportFileError as exc:
        fail(str(exc))
    except ImportRejected as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        fail(t("cli.import_nothing_written"), code=1)
    typer.echo(t("calendar.imported", days=report.days, moved=report.loans_moved))
