"""`shuxiang run` as a real process, long polling the emulator over HTTP: it answers, stops
cleanly on SIGTERM, and a wrong token or an unreachable server (Bot API, proxy, Redis) is one
clear line."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
from pathlib import Path

import pytest
import trustme

from sandbox.emulator import BotApiEmulator
from tests.conftest import RedisSpace
from tests.e2e.forked import ForkServer
from tests.e2e.proxies import Proxy

TOKEN = "424242:RUN-PROCESS-secret-token"
PROXY_PASSWORD = "proxy-pa55word"
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def _env(tmp_path: Path, api_url: str, token: str, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k != "SHUXIANG_PROXY"},
        "SHUXIANG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db' / 'run.sqlite3'}",
        "SHUXIANG_BOT_TOKEN": token,
        "SHUXIANG_BOT_API_URL": api_url,
        "SHUXIANG_DATA_DIR": str(tmp_path / "var"),
        "SHUXIANG_LOG_LEVEL": "INFO",
        # An unreachable Bot API is retried without the production backoff's 3.5 s of waiting.
        "SHUXIANG_BOT_RETRY_BACKOFF_SECONDS": "0.01",
        **extra,
    }


async def _refused(env: dict[str, str], tmp_path: Path, forks: ForkServer) -> str:
    """Run a start that must fail: one line, exit code 2, never "started", no folder left."""
    process = forks.run(["run"], env)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 2, text
    assert "Traceback" not in text and "已启动" not in text
    said = [line for line in text.splitlines() if line and not LOG_LINE.match(line)]
    assert len(said) == 1, text
    assert not (tmp_path / "db").exists() and not (tmp_path / "var").exists()
    return text


async def test_run_answers_and_stops_on_sigterm(forks: ForkServer, tmp_path: Path) -> None:
    async with BotApiEmulator(TOKEN) as emu:
        process = forks.run(["run"], _env(tmp_path, emu.base_url, TOKEN))
        try:
            emu.add_user(7001, first_name="小林")
            sent = emu.send_text(7001, "/start")
            reply = await emu.wait_for_bot_message(
                7001, after_message_id=sent["message"]["message_id"], timeout=60
            )
            assert "绑定码" in reply["text"]
            assert emu.calls("setMyCommands")
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    text = output.decode()
    assert process.returncode == 0, text
    assert "Traceback" not in text
    assert TOKEN not in text and TOKEN.split(":")[1] not in text


async def test_wrong_token_is_one_line(forks: ForkServer, tmp_path: Path) -> None:
    async with BotApiEmulator(TOKEN) as emu:
        text = await _refused(_env(tmp_path, emu.base_url, "424242:not-the-token"), tmp_path, forks)
    assert "拒绝了机器人令牌" in text
    assert "not-the-token" not in text


async def test_malformed_token_is_one_line(forks: ForkServer, tmp_path: Path) -> None:
    text = await _refused(_env(tmp_path, "http://127.0.0.1:1", "not a token"), tmp_path, forks)
    assert "令牌格式不对" in text and "SHUXIANG_BOT_TOKEN" in text


async def test_unreachable_bot_api_is_one_line(forks: ForkServer, tmp_path: Path) -> None:
    text = await _refused(_env(tmp_path, "http://127.0.0.1:1", TOKEN), tmp_path, forks)
    assert "无法连接 Bot API 服务器" in text and "SHUXIANG_PROXY" in text
    assert TOKEN.split(":")[1] not in text


def _https_proxy_tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A certificate for an https:// proxy on 127.0.0.1 from a CA of the test's own, and that
    CA's file for SHUXIANG_PROXY_CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "proxy-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


@pytest.mark.parametrize("scheme", ["http", "https", "socks5"])
async def test_run_through_a_proxy(forks: ForkServer, tmp_path: Path, scheme: str) -> None:
    context, ca_file = _https_proxy_tls(tmp_path)
    async with (
        BotApiEmulator(TOKEN) as emu,
        Proxy(scheme, user="librarian", password=PROXY_PASSWORD, ssl=context) as proxy,
    ):
        env = _env(tmp_path, emu.base_url, TOKEN, SHUXIANG_PROXY=proxy.url)
        env["SHUXIANG_PROXY_CA"] = str(ca_file)
        emulator = emu.base_url.removeprefix("http://")
        env["SHUXIANG_LOG_LEVEL"] = "DEBUG"
        process = forks.run(["run"], env)
        try:
            emu.add_user(7002, first_name="小周")
            sent = emu.send_text(7002, "/start")
            reply = await emu.wait_for_bot_message(
                7002, after_message_id=sent["message"]["message_id"], timeout=60
            )
            assert "绑定码" in reply["text"]
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    text = output.decode()
    assert process.returncode == 0, text
    # Every Bot API connection went through the proxy, to the emulator.
    assert proxy.tunnels and set(proxy.tunnels) == {emulator}, proxy.tunnels
    assert PROXY_PASSWORD not in text and TOKEN.split(":")[1] not in text


async def test_proxy_down_or_refusing_is_one_line(forks: ForkServer, tmp_path: Path) -> None:
    down = _env(
        tmp_path,
        "http://127.0.0.1:1",
        TOKEN,
        SHUXIANG_PROXY=f"socks5://u:{PROXY_PASSWORD}@127.0.0.1:1",
    )
    text = await _refused(down, tmp_path, forks)
    assert "经代理 socks5://127.0.0.1:1 无法连接" in text and "SHUXIANG_PROXY" in text
    assert PROXY_PASSWORD not in text
    async with BotApiEmulator(TOKEN) as emu, Proxy("http", user="u", password="right") as proxy:
        wrong = proxy.url.replace("right", PROXY_PASSWORD)
        text = await _refused(
            _env(tmp_path, emu.base_url, TOKEN, SHUXIANG_PROXY=wrong), tmp_path, forks
        )
    assert "拒绝了连接" in text and "用户名和密码" in text and proxy.refused == 1
    assert PROXY_PASSWORD not in text


async def test_https_proxy_refusing_or_untrusted_is_one_line(
    forks: ForkServer, tmp_path: Path
) -> None:
    context, ca_file = _https_proxy_tls(tmp_path)
    async with (
        BotApiEmulator(TOKEN) as emu,
        Proxy("https", user="u", password="right", ssl=context) as proxy,
    ):
        wrong = proxy.url.replace("right", PROXY_PASSWORD)
        env = _env(tmp_path, emu.base_url, TOKEN, SHUXIANG_PROXY=wrong)
        text = await _refused({**env, "SHUXIANG_PROXY_CA": str(ca_file)}, tmp_path, forks)
        assert "拒绝了连接" in text and "用户名和密码" in text and proxy.refused == 1
        assert PROXY_PASSWORD not in text
        # Without the CA of its certificate the proxy cannot be trusted: said so, not "down".
        text = await _refused(env, tmp_path, forks)
        assert "证书校验失败" in text and "SHUXIANG_PROXY_CA" in text
        assert PROXY_PASSWORD not in text and not proxy.tunnels


async def test_redis_down_or_refusing_is_one_line(
    forks: ForkServer, tmp_path: Path, redis: RedisSpace
) -> None:
    async with BotApiEmulator(TOKEN) as emu:
        down = f"redis://:{PROXY_PASSWORD}@127.0.0.1:1/0"
        text = await _refused(
            _env(tmp_path, emu.base_url, TOKEN, SHUXIANG_REDIS_URL=down), tmp_path, forks
        )
        assert (
            "无法连接 Redis 服务器 redis://127.0.0.1:1/0" in text and "SHUXIANG_REDIS_URL" in text
        )
        assert PROXY_PASSWORD not in text
        # The test server has no such user: a refused login, said as such.
        wrong = redis.url.replace("redis://", f"redis://nobody:{PROXY_PASSWORD}@")
        env = _env(tmp_path, emu.base_url, TOKEN, SHUXIANG_REDIS_URL=wrong)
        text = await _refused({**env, "SHUXIANG_LOG_LEVEL": "DEBUG"}, tmp_path, forks)
    assert "拒绝登录" in text and "用户名和密码" in text and PROXY_PASSWORD not in text
