"""`make demo`'s librarian at the desk, through the sandbox's own emulator over HTTP. The desk's
flows are in tests/chat/test_desk_flows.py."""

from __future__ import annotations

from sqlalchemy import select

from bot.config import Settings
from sandbox.demo import start_sandbox
from storage.models import Copy
from tests.chat.test_desk_flows import keyboard_texts_of
from tests.e2e.conftest import Person, buttons


async def test_the_demo_librarian_has_the_desk(demo_settings: Settings) -> None:
    """`make demo`: the sample librarian's keyboard, a seeded hold shelf, a scan and a return."""
    settings = demo_settings
    sandbox, _ = await start_sandbox(settings, port=0)
    try:
        emu = sandbox.emulator
        persona = next(p for p in sandbox.personas if p.role == "librarian")
        librarian = Person(emu, persona.user_id, persona.name)
        await librarian.say("/start")
        assert "📤 借出" in keyboard_texts_of(emu.reply_keyboard(persona.user_id))
        shelf = await librarian.say("🔖 预约架")
        assert "预约架：1 本" in shelf["text"], shelf["text"]
        async with sandbox.app.db.transaction(read_only=True) as session:
            barcode = await session.scalar(
                select(Copy.barcode).where(Copy.status == "on_loan").order_by(Copy.barcode)
            )
        assert barcode is not None
        shown = await librarian.say(barcode.lower())
        assert "已借出：" in shown["text"] and buttons(shown) == ["📥 归还"]
        await librarian.press(shown, "归还")
        assert "已还《" in (await librarian.next_message())["text"]
    finally:
        await sandbox.stop()
