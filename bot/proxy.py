"""The Bot API session, through ``SHUXIANG_PROXY`` when set (networks in mainland China need one
for Telegram).

http://, socks4:// and socks5:// proxies go through aiogram's own ``AiohttpSession(proxy=...)``
(aiohttp-socks). aiohttp-socks cannot speak TLS to the proxy itself, so an https:// proxy uses
aiohttp's native proxy support instead: TLS to the proxy, then CONNECT and TLS to the Bot API
inside it (TLS in TLS: asyncio's ``start_tls``, Python ≥ 3.11). The proxy's certificate is checked
against the public CAs (certifi) plus ``SHUXIANG_PROXY_CA`` when the proxy has a private one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiogram.__meta__ import __version__
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import ClientHttpProxyError, ClientSession
from aiohttp.hdrs import USER_AGENT
from aiohttp.http import SERVER_SOFTWARE

from bot.config import Settings
from bot.speedups import SkipUnusedResults

if TYPE_CHECKING:
    from aiogram import Bot

PROXY_AUTH_REQUIRED = 407


class ProxyAuthRefused(TelegramAPIError):
    """The https:// proxy wants other credentials (407). Not a network error: retrying the same
    user name and password cannot help."""


class BotApiSession(SkipUnusedResults, AiohttpSession):
    """aiogram's session, leaving the answers of replies nobody reads unread (bot/speedups.py)."""


class HttpsProxySession(BotApiSession):
    """``AiohttpSession`` whose requests all go through one https:// proxy (credentials, if any,
    in its URL: aiohttp sends them as Proxy-Authorization)."""

    def __init__(self, proxy_url: str, *, ca_file: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # no ``proxy``: a plain TCPConnector, no aiohttp-socks
        self._https_proxy = proxy_url
        if ca_file is not None:
            # One context checks both the proxy and, inside the tunnel, the Bot API.
            self._connector_init["ssl"].load_verify_locations(cafile=str(ca_file))

    async def create_session(self) -> ClientSession:
        if self._should_reset_connector:
            await self.close()
        if self._session is None or self._session.closed:
            self._session = ClientSession(
                connector=self._connector_type(**self._connector_init),
                headers={USER_AGENT: f"{SERVER_SOFTWARE} aiogram/{__version__}"},
                proxy=self._https_proxy,
            )
            self._should_reset_connector = False
        return self._session

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (aiogram's signature)
    ) -> TelegramType:
        try:
            return await super().make_request(bot, method, timeout)
        except TelegramNetworkError as exc:  # a refused CONNECT (an https:// Bot API)
            cause = exc.__cause__
            if isinstance(cause, ClientHttpProxyError) and cause.status == PROXY_AUTH_REQUIRED:
                raise ProxyAuthRefused(method, "proxy authentication required") from None
            raise

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        if status_code == PROXY_AUTH_REQUIRED:  # the proxy's own answer to a plain-http request
            raise ProxyAuthRefused(method, "proxy authentication required")
        return super().check_response(bot, method, status_code, content)


def bot_session(settings: Settings) -> AiohttpSession:
    """The session for a Bot (the bot's and the push sender's alike)."""
    api = TelegramAPIServer.from_base(settings.bot_api_url.rstrip("/"))
    proxy = settings.proxy_url()
    if proxy is not None and proxy.startswith("https://"):
        return HttpsProxySession(proxy, ca_file=settings.proxy_ca, api=api)
    return BotApiSession(api=api, proxy=proxy)
