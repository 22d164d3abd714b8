"""`shuxiang run` (the bot) and `shuxiang demo` (the sandbox)."""

from __future__ import annotations

import asyncio
import signal

import typer

from bot.cli.runtime import configure_logging, fail, run_async, settings_or_exit
from services.i18n import t


def register(app: typer.Typer) -> None:
    app.command("run", help=t("cli.help_run"))(run)
    app.command("demo", help=t("cli.help_demo"))(demo)


def run() -> None:
    """Start the bot (long polling against SHUXIANG_BOT_API_URL)."""
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    from bot.app import build_app
    from bot.config import ConfigError
    from storage.migrate import upgrade

    settings = settings_or_exit()
    try:
        token = settings.require_token()
    except ConfigError as exc:
        fail(str(exc))
    configure_logging(settings)

    async def main() -> None:
        shuxiang = build_app(settings, token=token)
        try:
            await upgrade(shuxiang.db.engine)
            typer.echo(t("cli.run_started", api=settings.bot_api_url))
            await shuxiang.run_polling()
        except TelegramUnauthorizedError:
            fail(t("cli.run_unauthorized"))
        except TelegramNetworkError:
            fail(t("cli.run_unreachable", api=settings.bot_api_url))
        finally:
            await shuxiang.close()

    run_async(main())


def demo(
    port: int = typer.Option(8765, help=t("cli.help_demo_port")),
    check: bool = typer.Option(False, "--check", help=t("cli.help_demo_check")),
) -> None:
    """Local trial: SQLite, sample data, an emulated Telegram and a web chat page."""

    from sandbox.demo import self_check, start_sandbox

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

    run_async(main())


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
