"""``shuxiang report`` (the term's figures as charts, tables and a PDF) and ``shuxiang stars``
(读书之星 of a month, announced on request)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.runtime import fail, run_with_db, settings_or_exit
from services.errors import ServiceError
from services.i18n import t
from storage.db import Database

FORMATS = ("csv", "xlsx")


def register(app: typer.Typer) -> None:
    app.command("report", help=t("stats.cli_help"))(report)
    app.command("stars", help=t("stats.star.cli_help"))(stars)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        fail(t("stats.bad_date", value=value))


def report(
    out: Annotated[Path, typer.Option("--out", help=t("stats.cli_help_out"))],
    first: Annotated[str | None, typer.Option("--from", help=t("stats.cli_help_from"))] = None,
    last: Annotated[str | None, typer.Option("--to", help=t("stats.cli_help_to"))] = None,
    scope_name: Annotated[
        str | None, typer.Option("--scope", help=t("stats.cli_help_scope"))
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help=t("stats.cli_help_format"))] = "csv",
    weed_years: Annotated[
        int, typer.Option("--weed-years", min=1, max=100, help=t("stats.cli_help_weed_years"))
    ] = 5,
) -> None:
    """Write the report for ``--from``..``--to`` (both included; by default this term up to
    today) into ``--out``."""
    settings = settings_or_exit()
    if fmt not in FORMATS:
        fail(t("stats.cli_bad_format", value=fmt))
    from services.stats.figures import current_term

    today = datetime.now(settings.tz).date()
    end = _day(last) if last else today
    # Without --from: this term so far, as /stats counts it.
    start = _day(first) if first else current_term(end if last else today)[0]

    async def body(db: Database) -> list[Path]:
        from services.actor import Actor
        from services.stats.figures import allowed_scope, compute, period_for_dates, weeding_list
        from services.stats.reports.charts import render_charts
        from services.stats.reports.document import write_report

        period = period_for_dates(start, end, settings.tz)
        async with db.transaction(read_only=True) as session:
            actor = Actor.system()
            scope = await allowed_scope(session, actor, scope_name)
            stats = await compute(session, actor, scope, period, tz=settings.tz)
            weeding = await weeding_list(session, years=weed_years)
        return write_report(
            out, stats, settings.tz, render_charts(stats), weeding, xlsx=fmt == "xlsx"
        )

    try:
        written = run_with_db(settings, body)
    except ServiceError as exc:
        fail(exc.render())
    except OSError as exc:  # the output folder: not writable, a file in the way
        fail(f"{out}: {exc.strerror or exc}")
    for path in written:
        typer.echo(str(path))
    typer.echo(t("stats.cli_written", count=len(written), folder=out))


def stars(
    month: Annotated[
        str | None, typer.Option("--month", help=t("stats.star.cli_help_month"))
    ] = None,
    announce: Annotated[
        bool, typer.Option("--announce", help=t("stats.star.cli_help_announce"))
    ] = False,
    monitors: Annotated[
        bool, typer.Option("--monitors", help=t("stats.star.cli_help_monitors"))
    ] = False,
) -> None:
    """List a month's 读书之星 (last month by default); ``--announce`` tells them."""
    settings = settings_or_exit()
    year, number = _month(month, settings.tz.key)

    async def body(db: Database) -> str:
        from services.actor import Actor
        from services.stats.reports.text import stars_text
        from services.stats.stars import announce_stars, monthly_stars

        actor = Actor.system()
        async with db.transaction() as session:
            found = await monthly_stars(session, actor, year=year, month=number, tz=settings.tz)
            lines = [stars_text(found, year=year, month=number)]
            if announce or monitors:
                queued = await announce_stars(
                    session, actor, found, year=year, month=number, tell_monitors=monitors
                )
                lines.append(t("stats.star.announced", count=queued))
        return "\n".join(lines)

    typer.echo(run_with_db(settings, body))


def _month(value: str | None, tz_name: str) -> tuple[int, int]:
    from zoneinfo import ZoneInfo

    from services.stats.stars import parse_month, previous_month

    if not value:
        today = datetime.now(ZoneInfo(tz_name)).date()
        return previous_month(today.year, today.month)
    parsed = parse_month(value)
    if parsed is None:
        fail(t("stats.star.bad_month", value=value))
    return parsed
