"""The ``shuxiang`` command."""

from __future__ import annotations

import typer

from bot.runtime import configure_logging, fail, run_async, run_with_db, settings_or_exit

app = typer.Typer(
    help="书香 Shuxiang：中学图书馆读者助手。",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="数据库：迁移与状态。", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="目标版本，默认最新")) -> None:
    """把数据库迁移到最新（或指定）版本。"""
    from storage.migrate import current_revision, upgrade

    settings = settings_or_exit()
    configure_logging(settings)

    async def body(db: object) -> str | None:
        from storage.db import Database

        assert isinstance(db, Database)
        await upgrade(db.engine, revision)
        return await current_revision(db.engine)

    rev = run_with_db(settings, body)
    typer.echo(f"数据库已迁移到版本 {rev}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="目标版本，例如 base 或 0001")) -> None:
    """回退数据库迁移（谨慎使用：会删除表）。"""
    from storage.migrate import current_revision, downgrade

    settings = settings_or_exit()

    async def body(db: object) -> str | None:
        from storage.db import Database

        assert isinstance(db, Database)
        await downgrade(db.engine, revision)
        return await current_revision(db.engine)

    rev = run_with_db(settings, body)
    typer.echo(f"数据库已回退到版本 {rev or 'base'}")


@app.command("run")
def run() -> None:
    """启动机器人（长轮询，连接 SHUXIANG_BOT_API_URL 指定的 Bot API 服务器）。"""
    from bot.app import build_app
    from bot.config import ConfigError
    from services.i18n import t
    from storage.migrate import upgrade

    settings = settings_or_exit()
    try:
        token = settings.require_token()
    except ConfigError as exc:
        fail(str(exc))
    configure_logging(settings)

    async def main() -> None:
        shuxiang = build_app(settings, token=token)
        await upgrade(shuxiang.db.engine)
        typer.echo(t("cli.run_started", api=settings.bot_api_url))
        try:
            await shuxiang.run_polling()
        finally:
            await shuxiang.db.dispose()

    run_async(main())


@app.command("demo")
def demo(
    port: int = typer.Option(8765, help="沙盒网页端口（0 = 随机空闲端口）"),
    check: bool = typer.Option(False, "--check", help="自检：做一次查询后退出"),
) -> None:
    """本地试用：SQLite + 示例数据 + 模拟的 Telegram + 网页聊天窗口，无需任何配置。"""
    import asyncio

    from bot.demo import self_check, start_sandbox
    from services.i18n import t

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
            typer.echo(loaded)
            typer.echo(
                t(
                    "cli.demo_ready",
                    url=sandbox.url,
                    student=student,
                    librarian=librarian,
                    database=sandbox.app.db.engine.url.render_as_string(hide_password=True),
                )
            )
            if check:
                try:
                    typer.echo(await self_check(sandbox))
                except TimeoutError:
                    fail("沙盒自检超时：机器人没有回复")
            else:
                await asyncio.Event().wait()  # until Ctrl+C
        finally:
            await sandbox.stop()

    run_async(main())


def _register_command_groups() -> None:
    # Each group lives in its own module so the groups grow independently.
    from bot import cli_catalogue, cli_circ, cli_search

    cli_catalogue.register(app)
    cli_search.register(app)
    cli_circ.register(app)


_register_command_groups()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
