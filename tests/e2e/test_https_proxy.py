"""An https:// proxy in front of an https:// Bot API: TLS to the proxy, CONNECT, and TLS to the
API inside that tunnel (TLS in TLS), with the bot's own session (bot/proxy.py); neither the token
nor the proxy password reaches the logs."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
import trustme
from aiogram import Bot
from aiohttp import web

from bot.config import load_settings
from bot.proxy import HttpsProxySession, ProxyAuthRefused, bot_session
from tests.e2e.proxies import Proxy

TOKEN = "777:TLS-IN-TLS-secret-token"
PASSWORD = "tls-pa55word"


async def _get_me(request: web.Request) -> web.Response:
    assert request.match_info["token"] == TOKEN
    me = {"id": 777, "is_bot": True, "first_name": "书香", "username": "tls_bot"}
    return web.json_response({"ok": True, "result": me})


async def test_https_proxy_to_an_https_bot_api(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = trustme.CA()
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_side)  # the proxy and the API alike
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    app = web.Application()
    app.router.add_post("/bot{token}/getMe", _get_me)
    runner = web.AppRunner(app, access_log=None)  # the fake API's log is not the bot's
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_side)
    await site.start()
    port = runner.addresses[0][1]
    caplog.set_level(logging.DEBUG)
    try:
        async with Proxy("https", user="lib", password=PASSWORD, ssl=server_side) as proxy:
            settings = load_settings(
                _env_file=None,
                bot_api_url=f"https://127.0.0.1:{port}",
                proxy=proxy.url,
                proxy_ca=ca_file,
            )
            session = bot_session(settings)
            assert isinstance(session, HttpsProxySession)
            bot = Bot(TOKEN, session=session)
            try:
                me = await bot.get_me()
            finally:
                await bot.session.close()
            assert me.username == "tls_bot"
            assert proxy.tunnels == [f"127.0.0.1:{port}"]

            # A wrong password: refused by the proxy, as its own error (not "unreachable").
            wrong = load_settings(
                _env_file=None,
                bot_api_url=f"https://127.0.0.1:{port}",
                proxy=proxy.url.replace(PASSWORD, "nope"),
                proxy_ca=ca_file,
            )
            bot = Bot(TOKEN, session=bot_session(wrong))
            try:
                with pytest.raises(ProxyAuthRefused):
                    await bot.get_me()
            finally:
                await bot.session.close()
            assert proxy.refused == 1
    finally:
        await runner.cleanup()
    logged = caplog.text
    assert PASSWORD not in logged and TOKEN.split(":")[1] not in logged
