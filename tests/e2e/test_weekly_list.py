"""`make demo`'s student gets the weekly list through the sandbox's own emulator over HTTP and
reserves from it. The weekly list's flows are in tests/chat/test_weekly_list.py."""

from __future__ import annotations

from bot.config import Settings
from sandbox.demo import start_sandbox
from tests.chat.test_weekly_list import WEEKLY


async def test_demo_student_gets_a_weekly_list_and_reserves_from_it(
    demo_settings: Settings,
) -> None:
    """`make demo`: the sample student's weekly list arrives with reasons; 预约 works from it."""
    settings = demo_settings.model_copy(update={"outbox_interval_seconds": 0.3})
    sandbox, _ = await start_sandbox(settings, port=0)
    try:
        student = next(p for p in sandbox.personas if p.role == "student")
        emu = sandbox.emulator
        weekly = await emu.wait_for_bot_message(student.user_id, contains=WEEKLY, timeout=20)
        assert "因为你借过《" in weekly["text"]
        since = emu.mark()
        emu.press_button_text(student.user_id, weekly["message_id"], "预约 1")
        placed = await emu.wait_for_bot_message(student.user_id, since=since, contains="已预约")
        assert "排在第 1 位" in placed["text"]
    finally:
        await sandbox.stop()
