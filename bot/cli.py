"""The ``shuxiang`` command."""

from __future__ import annotations

import typer

from bot.runtime import configure_logging, run_with_db, settings_or_exit

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


def _register_command_groups() -> None:
    # Each group lives in its own module so the groups grow independently.
    from bot import cli_catalogue, cli_search

    cli_catalogue.register(app)
    cli_search.register(app)


_register_command_groups()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
