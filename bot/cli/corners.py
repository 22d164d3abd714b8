"""`shuxiang corners`: class monitors and the batches of books that rotate between classes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from bot.cli.runtime import fail, run_with_db, settings_or_exit
from bot.config import Settings
from services.actor import Actor
from services.corners import swaps as corners
from services.corners.chase import weekly_chase
from services.corners.swaps import AddResult, SwapView
from services.errors import ServiceError
from services.i18n import t
from storage.db import Database
from storage.models import SwapDirection, utcnow

T = TypeVar("T")
corners_app = typer.Typer(help=t("cli_corners.help"), no_args_is_help=True)
monitor_app = typer.Typer(help=t("cli_corners.help_monitor"), no_args_is_help=True)
corners_app.add_typer(monitor_app, name="monitor")

ClassOption = Annotated[str, typer.Option("--class", help=t("cli_corners.help_class"))]
CardArgument = Annotated[str, typer.Argument(help=t("cli_corners.help_card"))]


def register(app: typer.Typer) -> None:
    app.add_typer(corners_app, name="corners")


class _DryRun(Exception):
    """Rolls the unit of work back after a batch was only listed."""

    def __init__(self, lines: list[str], exit_code: int = 0) -> None:
        super().__init__("dry run")
        self.lines = lines
        self.exit_code = exit_code


def _run(settings: Settings, body: Callable[[Database], Awaitable[str]]) -> None:
    try:
        typer.echo(run_with_db(settings, body))
    except _DryRun as listed:
        typer.echo("\n".join(listed.lines))
        if listed.exit_code:
            raise typer.Exit(listed.exit_code) from None
    except ServiceError as exc:
        typer.secho(exc.render(), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


@monitor_app.command("add", help=t("cli_corners.help_monitor_add"))
def monitor_add(card_no: CardArgument, class_name: ClassOption) -> None:
    settings = settings_or_exit()

    async def body(db: Database) -> str:
        async with db.transaction() as session:
            done = await corners.appoint_monitor(
                session,
                Actor.system(),
                card_no=card_no,
                class_name=class_name,
                limit=settings.corner_monitors_per_class,
            )
        return t(
            "corners.monitor_added",
            name=done.name,
            card_no=done.card_no,
            class_name=done.class_name,
        )

    _run(settings, body)


@monitor_app.command("list", help=t("cli_corners.help_monitor_list"))
def monitor_list(
    class_name: Annotated[
        str | None, typer.Option("--class", help=t("cli_corners.help_class"))
    ] = None,
) -> None:
    settings = settings_or_exit()

    async def body(db: Database) -> str:
        async with db.transaction(read_only=True) as session:
            monitors = await corners.list_monitors(session, Actor.system(), class_name)
        if not monitors:
            return t("corners.monitors_none")
        return "\n".join(
            t("corners.monitors_line", class_name=m.class_name, name=m.name, card_no=m.card_no)
            for m in monitors
        )

    _run(settings, body)


@monitor_app.command("remove", help=t("cli_corners.help_monitor_remove"))
def monitor_remove(card_no: CardArgument) -> None:
    settings = settings_or_exit()

    async def body(db: Database) -> str:
        async with db.transaction() as session:
            classes = await corners.remove_monitor(session, Actor.system(), card_no=card_no)
        return t("corners.monitor_removed", name=card_no, classes="、".join(classes))

    _run(settings, body)


def read_barcode_file(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        fail(t("cli_corners.file_missing", path=path))
    except UnicodeDecodeError:
        text = path.read_text(encoding="gb18030")
    return corners.parse_barcodes(text)


def _listing(result: AddResult) -> list[str]:
    view = result.view
    lines = [t("cli_corners.batch_ready", class_name=view.class_name, count=len(view.items))]
    lines += [
        t("corners.draft_line", n=n, barcode=item.barcode, title=item.title)
        for n, item in enumerate(view.of(SwapDirection.IN), 1)
    ]
    return lines


@corners_app.command("batch", help=t("cli_corners.help_batch"))
def batch(
    class_name: ClassOption,
    file: Annotated[Path | None, typer.Option("--file", help=t("cli_corners.help_file"))] = None,
    propose: Annotated[
        int | None, typer.Option("--propose", help=t("cli_corners.help_propose"))
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=t("cli_corners.help_dry_run"))] = False,
) -> None:
    settings = settings_or_exit()
    if (file is None) == (propose is None):
        fail(t("cli_corners.help_batch"))
    barcodes = read_barcode_file(file) if file is not None else []

    async def body(db: Database) -> str:
        actor = Actor.system()
        async with db.transaction() as session:
            if propose is not None:
                result = await corners.propose(session, actor, class_name=class_name, size=propose)
            else:
                draft = await corners.open_draft(session, actor, class_name=class_name)
                result = await corners.add_barcodes(
                    session, actor, swap_id=draft.swap_id, barcodes=barcodes
                )
                if result.problems:
                    # The whole file or nothing: the librarian fixes the lines and runs it again.
                    raise _DryRun(
                        [t("cli_corners.file_problems")]
                        + [
                            t(
                                "corners.problem_line",
                                line=p.line,
                                barcode=p.barcode,
                                reason=t(p.key),
                            )
                            for p in result.problems
                        ],
                        exit_code=1,
                    )
            if dry_run:
                raise _DryRun([*_listing(result), t("cli_corners.dry_run")])
            sent = await corners.send_batch(session, actor, swap_id=result.view.swap_id)
        return "\n".join(
            [
                *_listing(result),
                t(
                    "cli_corners.batch_sent",
                    class_name=sent.class_name,
                    incoming=len(sent.of(SwapDirection.IN)),
                    outgoing=len(sent.of(SwapDirection.OUT)),
                ),
            ]
        )

    _run(settings, body)


def _status_lines(view: SwapView | None, class_name: str) -> list[str]:
    if view is None:
        return [t("cli_corners.no_batch", class_name=class_name)]
    lines = [
        t(
            "cli_corners.pending",
            pending=sum(1 for i in view.items if i.outcome is None),
            count=len(view.items),
            incoming=len(view.of(SwapDirection.IN)),
            outgoing=len(view.of(SwapDirection.OUT)),
        )
    ]
    for item in view.items:
        outcome = t(f"corners.outcome_{item.outcome}") if item.outcome else "…"
        lines.append(
            t(
                "cli_corners.item_line",
                direction=t(f"cli_corners.direction_{item.direction}"),
                barcode=item.barcode,
                title=item.title,
                outcome=outcome,
            )
        )
    return lines


def status_word(book: corners.CornerBook) -> str:
    """在班级图书角 / 破损待修 …, and who has it out of the corner."""
    word = t(f"copy_status.{book.status}")
    return t("cli_corners.held_by", status=word, name=book.holder) if book.holder else word


@corners_app.command("status", help=t("cli_corners.help_status"))
def status(class_name: ClassOption) -> None:
    settings = settings_or_exit()

    async def body(db: Database) -> str:
        async with db.transaction(read_only=True) as session:
            actor = Actor.system()
            name, books = await corners.corner_contents(session, actor, class_name)
            view = await corners.batch_for(session, actor, name)
        lines = [t("cli_corners.batch_ready", class_name=name, count=len(books))]
        lines += [
            t("cli_corners.status_line", barcode=b.barcode, title=b.title, status=status_word(b))
            for b in books
        ]
        return "\n".join(lines + _status_lines(view, name))

    _run(settings, body)


@corners_app.command("chase", help=t("cli_corners.help_chase"))
def chase_now() -> None:
    """Run the weekly overdue sweep now (for cron, or to catch up): once per monitor per week."""
    settings = settings_or_exit()

    async def body(db: Database) -> str:
        async with db.transaction() as session:
            run = await weekly_chase(session, Actor.system(), now=utcnow(), tz=settings.tz)
        return t("cli_corners.chase_done", lists=run.lists, reminders=run.reminders)

    _run(settings, body)
