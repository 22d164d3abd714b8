"""`shuxiang run`: the bot (`shuxiang demo`, the sandbox, is sandbox/cli.py's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.runtime import configure_logging, fail, run_async, settings_or_exit
from services.i18n import t

if TYPE_CHECKING:
    from bot.app import Shuxiang
    from bot.config import Settings


def register(app: typer.Typer) -> None:
    app.command("run", help=t("cli.help_run"))(run)


def run(
    webhook: Annotated[bool, typer.Option("--webhook", help=t("cli.help_run_webhook"))] = False,
    listen: Annotated[
        str | None, typer.Option("--listen", metavar="HOST:PORT", help=t("cli.help_run_listen"))
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", metavar="URL", help=t("cli.help_run_url"))
    ] = None,
    path: Annotated[
        str | None, typer.Option("--path", metavar="PATH", help=t("cli.help_run_path"))
    ] = None,
    no_register: Annotated[
        bool, typer.Option("--no-register", help=t("cli.help_run_no_register"))
    ] = False,
) -> None:
    """Start the bot: long polling against SHUXIANG_BOT_API_URL, or a webhook worker."""
    from aiogram.exceptions import (
        TelegramAPIError,
        TelegramNetworkError,
        TelegramUnauthorizedError,
    )
    from aiogram.utils.token import TokenValidationError, validate_token
    from aiohttp import ClientSSLError
    from aiohttp_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError

    from bot.app import build_app, check_storage
    from bot.config import ConfigError
    from bot.proxy import ProxyAuthRefused
    from storage.migrate import upgrade

    settings = settings_or_exit()
    try:
        # The web channel alone (SHUXIANG_WEB_LISTEN without a token) needs no Telegram; a
        # webhook worker always does.
        wants_telegram = webhook or settings.has_token() or not settings.web_listen
        token = settings.require_token() if wants_telegram else None
        proxy = settings.proxy_url()
        settings.checked_redis_url()
        if token is not None:
            validate_token(token)
    except ConfigError as exc:
        fail(str(exc))
    except TokenValidationError:
        fail(t("cli_run.bad_token"))
    listen = listen or settings.webhook_listen
    url = url or settings.webhook_url
    path = path or settings.webhook_path
    if webhook:
        _check_webhook_options(listen, url)
    configure_logging(settings)
    api = settings.bot_api_url
    unreachable = (
        t("cli_run.unreachable_proxy", api=api, proxy=settings.proxy_for_display())
        if proxy
        else t("cli_run.unreachable", api=api)
    )

    async def main() -> None:
        shuxiang = build_app(settings, token=token)
        try:
            # Telegram first: a refused token or no route to it must not leave a database.
            await shuxiang.bot.get_me()
            await check_storage(settings, shuxiang.dp.storage)  # a ConfigError line if down
            settings.ensure_database_dir()
            await upgrade(shuxiang.db.engine)
            options = (listen, url, path, not no_register) if webhook else None
            await _serve(shuxiang, settings, options)
        except TelegramUnauthorizedError:
            fail(t("cli.run_unauthorized"))
        except TelegramNetworkError as exc:
            if proxy and isinstance(exc.__cause__, ClientSSLError):  # an https:// proxy's cert
                fail(t("cli_run.proxy_tls", proxy=settings.proxy_for_display()))
            fail(unreachable)
        except (ProxyConnectionError, ProxyTimeoutError):
            fail(unreachable)
        except (ProxyError, ProxyAuthRefused):
            fail(t("cli_run.proxy_refused", proxy=settings.proxy_for_display()))
        except TelegramAPIError as exc:
            fail(t("cli_run.api_error", api=api, reason=exc.message))
        finally:
            await shuxiang.close()

    run_async(main(), database_url=settings.checked_database_url())


async def _serve(
    shuxiang: Shuxiang, settings: Settings, webhook: tuple[str, str, str, bool] | None
) -> None:
    """Once the checks passed: the web channel alone, or Telegram through a webhook
    (``webhook``: listen, url, path, register) or long polling, beside the web channel when it
    is configured."""
    from bot.web.channel import run_web

    if await run_web(shuxiang):  # the web channel alone: served until stopped
        return
    api = settings.bot_api_url
    if webhook is not None:
        from bot.webhook import serve_webhook

        listen, url, path, register = webhook
        typer.echo(t("cli.webhook_started", listen=listen, path=path, api=api))
        await serve_webhook(
            shuxiang,
            token=settings.require_token(),
            listen=listen,
            url=url,
            path=path,
            register=register,
        )
        return
    typer.echo(t("cli.run_started", api=api))
    await shuxiang.run_polling()


def _check_webhook_options(listen: str, url: str) -> None:
    from bot.webhook import parse_listen

    if not url:
        fail(t("cli.webhook_url_missing"))
    try:
        parse_listen(listen)
    except ValueError:
        fail(t("cli.webhook_bad_listen", listen=listen))
