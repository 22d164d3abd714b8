"""`shuxiang run` as a real process, long polling the emulator over HTTP: it answers, stops
cleanly on SIGTERM, and a wrong token or an unreachable server is one clear line."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sandbox.emulator import BotApiEmulator

TOKEN = "424242:RUN-PROCESS-secret-token"


def _env(tmp_path: Path, api_url: str, token: str) -> dict[str, str]:
    return {
        **os.environ,
        "SHUXIANG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.sqlite3'}",
        "SHUXIANG_BOT_TOKEN": token,
        "SHUXIANG_BOT_API_URL": api_url,
        "SHUXIANG_DATA_DIR": str(tmp_path / "var"),
        "SHUXIANG_LOG_LEVEL": "INFO",
    }


async def _run(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_run_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with BotApiEmulator(TOKEN) as emu:
        process = await _run(_env(tmp_path, emu.base_url, TOKEN))
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


async def test_wrong_token_is_one_line(tmp_path: Path) -> None:
    async with BotApiEmulator(TOKEN) as emu:
        process = await _run(_env(tmp_path, emu.base_url, "424242:not-the-token"))
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 2, text
    assert "拒绝了机器人令牌" in text and "Traceback" not in text
    assert "not-the-token" not in text


async def test_unreachable_bot_api_is_one_line(tmp_path: Path) -> None:
    process = await _run(_env(tmp_path, "http://127.0.0.1:1", TOKEN))
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 2, text
    assert "无法连接 Bot API 服务器" in text and "Traceback" not in text
    assert TOKEN.split(":")[1] not in text
