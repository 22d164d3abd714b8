"""The sandbox's command group, added to ``shuxiang`` through the ``shuxiang.cli`` entry point
(pyproject.toml) so that bot/ never imports the sandbox: ``shuxiang demo``. Light at import: the
command line loads this module on every run, the sandbox itself only when ``demo`` starts."""

from __future__ import annotations

import asyncio
import signal

import typer

from bot.cli.runtime import configure_logging, fail, run_async, settings_or_exit
from services.i18n import t


def register(app: typer.Typer) -> None:
    app.command("demo", help=t("cli.help_demo"))(demo)


def demo(
    port: int = typer.Option(8765, help=t("cli.help_demo_port")),
    check: bool = typer.Option(False, "--check", help=t("cli.help_demo_check")),
) -> None:
    """Local trial: SQLite, sample data, an emulated Telegram and a web chat page."""

    from bot.config import ConfigError
    from sandbox.demo import SandboxRunning, self_check, single_sandbox, start_sandbox

    settings = settings_or_exit()
    configure_logging(settings)

    async def main() -> None:
        try:
            sandbox, loaded = await start_sandbox(settings, port=port)
        except OSError:
            if port == 0:
                raise
            sandbox, loaded = await start_sandbox(settings, port=0)
        try:
            student = next((p.name for p in sandbox.personas if p.role == "student"), "-")
            librarian = next((p.name for p in sandbox.personas if p.role == "librarian"), "-")
            teacher = next((p.name for p in sandbox.personas if p.role == "teacher"), "-")
            typer.echo(loaded)
            monitor = next((p for p in sandbox.personas if p.label_key), None)
            if monitor is not None:
                typer.echo(t("corners.demo_monitor", name=monitor.name, card_no=monitor.card_no))
            typer.echo(t("democlock.hint"))
            if sandbox.web_url:
                typer.echo(t("web.demo_ready", url=sandbox.web_url))
            typer.echo(
                t(
                    "cli.demo_ready",
                    url=sandbox.url,
                    student=student,
                    teacher=teacher,
                    librarian=librarian,
                    database=sandbox.app.db.engine.url.render_as_string(hide_password=True),
                )
            )
            if check:
                try:
                    typer.echo(await self_check(sandbox))
                except TimeoutError:
                    fail(t("cli.demo_check_timeout"))
            else:
                await _until_stopped()
        finally:
            await sandbox.stop()

    try:
        with single_sandbox(settings):
            run_async(main(), database_url=settings.checked_database_url())
    except SandboxRunning as running:
        fail(t("cli_run.demo_running", database=str(running)))
    except ConfigError as exc:  # the database's folder cannot be made
        fail(str(exc))


async def _until_stopped() -> None:
    """Wait for Ctrl+C or SIGTERM (a service manager's stop), then return for a clean shutdown."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
