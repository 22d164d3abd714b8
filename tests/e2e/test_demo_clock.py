"""`make demo`'s clock control, through its HTTP route on the real sandbox: each step moves the
bot's clock and runs the sweeps due by then, and the pushes arrive in the personas' chats. Only the
demo has the control: a bot built for a school keeps the real clock and serves no such route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from bot.app import build_app
from bot.config import Settings, load_settings
from sandbox.clock import DemoClock
from sandbox.demo import start_sandbox
from sandbox.emulator import BotApiEmulator
from sandbox.webchat import add_webchat_routes
from storage.models import utcnow

TOKEN = "123456789:E2E-demo-clock-token"


async def test_the_clock_control_brings_every_push_to_the_demo_personas(
    demo_settings: Settings,
) -> None:
    settings = demo_settings
    sandbox, _ = await start_sandbox(settings, port=0)
    try:
        emu = sandbox.emulator
        student = next(p for p in sandbox.personas if p.role == "student")
        monitor = next(p for p in sandbox.personas if p.label_key)
        route = sandbox.url + "_demo/clock"
        async with aiohttp.ClientSession() as http:

            async def call(body: object = None) -> tuple[int, dict[str, Any]]:
                if body is None:
                    async with http.get(route) as r:
                        return r.status, await r.json()
                async with http.post(route, json=body) as r:
                    return r.status, await r.json()

            async with http.get(sandbox.url) as page:
                html = await page.text()
            assert 'id="clock"' in html and "⏩ 1 天" in html and "⏩ 1 周" in html
            status, shown = await call()
            assert status == 200 and shown["result"]["ahead_seconds"] == 0
            # Only the three steps, forward: no other amount, no going back.
            for wrong in ({"step": "year"}, {"step": "-day"}, {"hours": -5}, ["day"]):
                status, refused = await call(wrong)
                assert status == 400 and not refused["ok"] and "hour" in refused["description"]
            assert (await call())[1]["result"]["ahead_seconds"] == 0

            # At the start: the ready hold and the loan due in three days (the seeded data).
            await emu.wait_for_bot_message(student.user_id, contains="你预约的《")
            await emu.wait_for_bot_message(student.user_id, contains="还有 3 天到期")
            pushes = 0
            for step in ("hour", "day", "day", "day", "day", "day", "week", "week"):
                status, moved = await call({"step": step})
                assert status == 200 and moved["ok"], moved
                assert moved["result"]["message"].startswith("已快进到 " + moved["result"]["label"])
                pushes += moved["result"]["pushes"]
            ahead = moved["result"]["ahead_seconds"]
            assert 19 * 86400 + 3600 - 60 < ahead <= 19 * 86400 + 3600
            assert pushes >= 10

        # Every push of the loan, of the hold and of the week, in the persona's own chat.
        for text in ("还有 1 天到期", "今天到期", "已经逾期 1 天", "明天（", "过了取书期限"):
            await emu.wait_for_bot_message(student.user_id, contains=text, timeout=30)
        chase = await emu.wait_for_bot_message(monitor.user_id, contains="催书单", timeout=30)
        assert student.name in chase["text"]
        await emu.wait_for_bot_message(
            student.user_id,
            lambda m: sum("本周新书推荐" in t for t in texts(emu, student.user_id)) >= 2,
            timeout=30,
        )
        # Stepping a day at a time never sent one reminder twice.
        mine = texts(emu, student.user_id)
        for once in ("还有 3 天到期", "还有 1 天到期", "今天到期", "已经逾期 1 天", "过了取书期限"):
            assert sum(once in text for text in mine) == 1, (once, mine)
    finally:
        await sandbox.stop()


def texts(emu: BotApiEmulator, user_id: int) -> list[str]:
    return [m.get("text") or "" for m in emu.bot_messages(user_id)]


async def test_only_the_demo_has_the_clock_control(tmp_path: Path) -> None:
    # The web chat page without the demo (the emulator's own use): no control, no route.
    emulator = BotApiEmulator(token=TOKEN)
    add_webchat_routes(emulator.app, emulator, [{"user_id": 1, "label": "学生 小明"}])
    async with emulator, aiohttp.ClientSession() as http:
        async with http.get(f"{emulator.base_url}/") as r:
            assert 'id="clock"' not in await r.text()
        async with http.post(f"{emulator.base_url}/_demo/clock", json={"step": "day"}) as r:
            assert r.status == 404
        async with http.get(f"{emulator.base_url}/_demo/clock") as r:
            assert r.status == 404
    # A bot built for a school (`shuxiang run`) runs its sweeps and sender on the real clock.
    settings = load_settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'school.sqlite3'}",
        bot_token=TOKEN,
    )
    app = build_app(settings, token=TOKEN)
    try:
        assert app.job_context.clock is utcnow and app.sender.clock is utcnow
        assert not isinstance(app.job_context.clock, DemoClock)
    finally:
        await app.close()
