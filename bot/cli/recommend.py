"""``shuxiang recommend`` (a stable contract for other programs) and ``shuxiang import loans``.

    shuxiang recommend --card S20260101 -n 5          titles, best first, one a line
    shuxiang recommend --card S20260101 --json        {"card", "results": [...]}
    shuxiang recommend --json < cards.txt             one JSON line per card, in order

The model is fitted once per process, so the stdin mode answers thousands of readers quickly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.imports import (
    INDENT,
    SkipBad,
    _print_done,
    _print_skipped,
    _run_import,
    _setup,
    import_app,
)
from bot.cli.runtime import configure_logging, fail, run_with_db, settings_or_exit
from services.i18n import t
from storage.db import Database

MAX_N = 100


def _result(model: Any, scored: Any) -> dict[str, Any]:
    from services.recommend.reasons import reason_text

    item = model.items[scored.pk]
    return {
        "record_id": item.record_id,
        "title": item.label,
        "score": scored.score,
        "reasons": [reason_text(r.as_dict()) for r in scored.reasons],
    }


def recommend_command(
    card: Annotated[str | None, typer.Option("--card", help=t("cli_recommend.help_card"))] = None,
    n: Annotated[int, typer.Option("-n", min=1, max=MAX_N, help=t("cli_recommend.help_n"))] = 10,
    as_json: Annotated[bool, typer.Option("--json", help=t("cli_recommend.help_json"))] = False,
) -> None:
    if card is None and not as_json:
        fail(t("cli_recommend.help"))
    settings = settings_or_exit()
    configure_logging(settings)
    cards = [card] if card is not None else None

    async def body(db: Database) -> int:
        from services.recommend.model import fit, on_shelf_records, reader_by_card, recommend_for

        async with db.transaction(read_only=True) as session:
            model = await fit(session)
            shelf = await on_shelf_records(session)
            lines = cards if cards is not None else (line.strip() for line in sys.stdin)
            missing = 0
            for number in lines:
                if not number:
                    continue
                reader = await reader_by_card(session, number)
                if reader is None:
                    missing += 1
                    if cards is not None:
                        fail(t("cli_recommend.unknown_card", card_no=number), code=1)
                    typer.echo(json.dumps({"card": number, "results": [], "error": "unknown_card"}))
                    continue
                scored = await recommend_for(session, model, reader, n=n, shelf=shelf)
                if as_json:
                    results = [_result(model, s) for s in scored]
                    typer.echo(json.dumps({"card": number, "results": results}, ensure_ascii=False))
                    sys.stdout.flush()
                else:
                    for s in scored:
                        typer.echo(model.items[s.pk].label)
            return missing

    run_with_db(settings, body)


@import_app.command("loans", help=t("cli_recommend.help_import_loans"))
def import_loans_command(
    file: Annotated[Path, typer.Argument(help=t("cli_recommend.help_import_loans_file"))],
    skip_bad: SkipBad = False,
) -> None:
    """Loan history from an earlier system; a row must name one known reader and one record."""
    from services.imports.loan_history import LoanReport, import_loans

    settings = _setup(file)

    async def body(db: Database) -> LoanReport:
        async with db.transaction() as session:
            return await import_loans(session, file, skip_bad=skip_bad)

    report = _run_import(settings, file, body)
    _print_done(file, report.rows, report.elapsed_s)
    typer.echo(
        f"{INDENT}{t('cli_recommend.import_loans', added=report.added, unchanged=report.unchanged)}"
    )
    _print_skipped(report.skipped)


def register(app: typer.Typer) -> None:
    app.command("recommend", help=t("cli_recommend.help"))(recommend_command)
