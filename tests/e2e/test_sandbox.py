"""The embedded default: `shuxiang demo` brings up sample data, the emulator, the bot and the web
chat page; a person's search, reservation and renewal work through it."""

from __future__ import annotations

import aiohttp
from sqlalchemy import case, func, select

from bot.config import Settings
from sandbox.demo import is_loans_list, self_check, start_sandbox
from storage.models import Copy, Record
from tests.integration.test_corner_places import places


async def test_sandbox_serves_the_chat_page_and_the_bot_answers(demo_settings: Settings) -> None:
    settings = demo_settings
    sandbox, loaded = await start_sandbox(settings, port=0)
    try:
        assert "291 种图书" in loaded
        roles = {p.role for p in sandbox.personas}
        assert roles == {"student", "teacher", "librarian"}
        async with aiohttp.ClientSession() as http, http.get(sandbox.url) as page:
            assert page.status == 200
            html = await page.text()
            for persona in sandbox.personas:
                assert persona.name in html
        transcript = await self_check(sandbox)
        assert "我的借阅（2 本）" in transcript and "《三体》" in transcript
        # The seeded due-soon reminder arrived, and its 续借 button renewed the book.
        assert sandbox.reminders == 1
        assert "还有 3 天到期" in transcript and "已续借，" in transcript
        student = next(p for p in sandbox.personas if p.role == "student")
        sent = sandbox.emulator.send_text(student.user_id, "平凡的世界")
        volumes = await sandbox.emulator.wait_for_bot_message(
            student.user_id, after_message_id=sent["message"]["message_id"]
        )
        # The three volumes of one work are told apart in the list by their subtitles.
        for part in ("《平凡的世界》第一部", "《平凡的世界》第二部", "《平凡的世界》第三部"):
            assert part in volumes["text"]

        # The school's own web chat beside it: /_demo hands a sample reader a fresh code and
        # opens the page with it, which signs in (tests/chat/test_web_channel.py has the rest).
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(sandbox.web_url) as landing:
                assert student.name in await landing.text()
            go = f"{sandbox.web_url}/as/{student.card_no}"
            async with http.get(go, allow_redirects=False) as to_page:
                code = to_page.headers["Location"].rsplit("=", 1)[1]
            base = sandbox.web_url.removesuffix("/_demo")
            async with http.get(f"{base}/api/state") as state:
                pre = (await state.json())["pre"]
            headers = {"Origin": base, "X-Shuxiang-CSRF": pre}
            async with http.post(f"{base}/api/signin", json={"code": code}, headers=headers) as r:
                assert r.status == 200
            async with http.get(f"{base}/api/updates?after=0") as updates:
                assert student.name in str(await updates.json())
            # The page carries the demo's clock bar, moving the same clock.
            async with http.get(f"{base}/") as page:
                assert 'id="clock"' in await page.text()
            async with http.get(f"{base}/_demo/clock") as clock:
                assert (await clock.json())["ok"]

        # By hand, through the page's own control routes: renew the other loan.
        emu = sandbox.emulator
        loans = emu.send_text(student.user_id, "/loans")
        listing = await emu.wait_for_bot_message(
            student.user_id, is_loans_list, after_message_id=loans["message"]["message_id"]
        )
        since = emu.mark()
        emu.press_button_text(
            student.user_id, listing["message_id"], "续借《"
        )  # the one still renewable
        await emu.wait_for_bot_message(student.user_id, since=since, contains="已续借，")

        # And reserve the title the sandbox lent out completely.
        async with sandbox.app.db.transaction(read_only=True) as session:
            title = await session.scalar(
                select(Record.title)
                .join(Copy, Copy.record_pk == Record.id)
                .group_by(Record.id, Record.title)
                .having(func.sum(case((Copy.status == "on_shelf", 1), else_=0)) == 0)
                .order_by(Record.id)
                .limit(1)
            )
        assert title is not None
        # The teacher does it: the student has used up the throttling window by now.
        teacher = next(p for p in sandbox.personas if p.role == "teacher")
        sent = emu.send_text(teacher.user_id, f"《{title}》")
        found = await emu.wait_for_bot_message(
            teacher.user_id, after_message_id=sent["message"]["message_id"]
        )
        assert "全部借出" in found["text"]
        card = found  # one hit: the card itself, with the earliest due date
        if "共找到" in found["text"]:
            since = emu.mark()
            emu.press_button_text(teacher.user_id, found["message_id"], "1")
            card = await emu.wait_for_bot_message(teacher.user_id, since=since, contains="馆藏")
        since = emu.mark()
        emu.press_button_text(teacher.user_id, card["message_id"], "预约")
        placed = await emu.wait_for_bot_message(teacher.user_id, since=since, contains="已预约")
        assert "排在第 1 位" in placed["text"]

        # The librarian's numbers: the sample history gives /stats something to chart.
        librarian = next(p for p in sandbox.personas if p.role == "librarian")
        since = emu.mark()
        sent = emu.send_text(librarian.user_id, "/stats")
        numbers = await emu.wait_for_bot_message(
            librarian.user_id, after_message_id=sent["message"]["message_id"]
        )
        assert "生均借书" in numbers["text"] and "借阅排行" in numbers["text"]
        chart = await emu.wait_for_bot_message(
            librarian.user_id, lambda m: "photo" in m, since=since, timeout=30
        )
        assert emu.file(chart["photo"][-1]["file_id"]).data.startswith(b"\x89PNG")
        # The sample data has a series with volumes and long summaries (the librarian is not
        # throttled): the first volume's card folds its summary and links the second.
        sent = emu.send_text(librarian.user_id, "平凡的世界")
        volumes = await emu.wait_for_bot_message(
            librarian.user_id, after_message_id=sent["message"]["message_id"], contains="共找到"
        )
        since = emu.mark()
        (first,) = [
            line.split(".")[0] for line in volumes["text"].splitlines() if "》第一部" in line
        ]
        emu.press_button_text(librarian.user_id, volumes["message_id"], first)
        card = await emu.wait_for_bot_message(librarian.user_id, since=since, contains="内容简介")
        labels = [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
        assert labels[:2] == ["展开全文 ▾", "下一册《平凡的世界 第二部》›"]
    finally:
        await sandbox.stop()
    # A second start on the same database keeps the data and the bindings.
    sandbox, loaded = await start_sandbox(settings, port=0)
    try:
        assert "291 种图书" in loaded
        assert sandbox.reminders == 0  # renewed: nothing is due soon, nothing sent twice
        assert "我的借阅（2 本）" in await self_check(sandbox)
    finally:
        await sandbox.stop()


async def test_sandbox_has_a_class_monitor_with_a_batch_and_a_chase(
    demo_settings: Settings,
) -> None:
    settings = demo_settings
    sandbox, _ = await start_sandbox(settings, port=0)
    try:
        # The starting data keeps the corner rules: each copy in one place, the batch's eight
        # copies on their way to the corner, not on the shelf (issue 19 item 1).
        found, _ = await places(sandbox.app.db)
        assert sum(place.startswith("to corner") for place in found.values()) == 8
        emu = sandbox.emulator
        monitor = next(p for p in sandbox.personas if p.label_key)
        async with aiohttp.ClientSession() as http, http.get(sandbox.url) as page:
            assert f"班级图书管理员 {monitor.name}" in await page.text()
        sent = emu.send_text(monitor.user_id, "/corner")
        batch = await emu.wait_for_bot_message(
            monitor.user_id, after_message_id=sent["message"]["message_id"], contains="送来的新书"
        )
        assert "待确认 8 / 共 8 册" in batch["text"]
        since = emu.mark()
        emu.press_button_text(monitor.user_id, batch["message_id"], "1 收到")
        await emu.wait_for_bot_message(monitor.user_id, since=since, contains="待确认 7")
        sent = emu.send_text(monitor.user_id, "/cuishu")
        chase = await emu.wait_for_bot_message(
            monitor.user_id, after_message_id=sent["message"]["message_id"], contains="催书单"
        )
        assert "超期" in chase["text"]
    finally:
        await sandbox.stop()
