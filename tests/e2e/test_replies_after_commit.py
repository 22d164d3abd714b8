"""Replies after commit over HTTP: what users are told always matches what the database holds
whatever fails after the decision (a Bot API call refused, the whole process killed); reads never
wait for the write lock, nor the desk for a slow Bot API. The chat's side (a failed commit, bad
callback data, binding-code guessing) is in tests/chat/test_replies_after_commit.py."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from sandbox.emulator import BotApiEmulator
from services.policy import LoanPolicy
from services.readers.binding import bind_telegram, issue_codes
from storage.db import Database
from storage.models import (
    Copy,
    CopyStatus,
    Endpoint,
    ProcessedUpdate,
)
from tests import factories
from tests.chat.test_bot_flows import setup_library
from tests.chat.test_replies_after_commit import loans_list, renewals
from tests.e2e.conftest import Harness, Person, until
from tests.e2e.forked import ForkServer
from tests.factories import make_world

JSON = dict[str, Any]


@pytest.mark.parametrize(
    ("method", "kind"),
    [("editMessageText", "400"), ("sendMessage", "5xx")],
)
async def test_a_refused_reply_after_the_commit_undoes_nothing(
    harness: Harness, method: str, kind: str
) -> None:
    """Renewing answers the button, edits the list, then confirms in a message. One of the later
    calls is refused (a 5xx on every retry): the renewal stays saved and no failure is claimed."""
    h = harness
    await setup_library(h)
    student, loans = await loans_list(h, 5101)
    times = 1 if kind == "400" else 4  # a 5xx is retried 4 times before it counts as failed
    h.emu.faults.add(method=method, kind=kind, times=times, description="Bad Request: no")
    answer = await student.press(loans, "续借《追风筝的人》")
    assert not answer.get("show_alert") and not answer.get("text")
    await until(lambda: len(h.emu.calls(method)) >= (1 if kind == "400" else 5), what=method)
    await h.emu.wait_idle(timeout=15)
    assert await renewals(h.db) == 1
    texts = student.texts()
    assert not any("出了点问题" in t or "没能保存" in t for t in texts)
    if method == "sendMessage":  # the list was still edited to show the renewal
        assert "已续借 1 次" in (h.emu.last_bot_message(5101) or {}).get("text", "")
    else:  # the confirmation still arrives
        assert sum("已续借，" in t for t in texts) == 1


async def test_binding_survives_a_refused_command_menu(harness: Harness) -> None:
    """The case first seen: the librarian's command menu call failed after "✅ 绑定成功" and the
    binding was rolled back, leaving the code free for a stranger."""
    h = harness
    await setup_library(h)
    code = await h.code_for("L1")
    librarian = Person(h.emu, 5102, "周馆员")
    h.emu.faults.add(method="setMyCommands", kind="400", description="Bad Request: no commands")
    assert "绑定成功" in (await librarian.say(f"/bind {code}"))["text"]
    await h.emu.wait_idle(timeout=10)
    stranger = Person(h.emu, 5103, "路人")
    assert "绑定码无效" in (await stranger.say(f"/bind {code}"))["text"]
    async with h.db.transaction(read_only=True) as s:
        owners = list(await s.scalars(select(Endpoint.address)))
    assert owners == ["5102"]
    assert "/checkout" in (await librarian.say("/help"))["text"]


async def test_reads_answer_while_another_connection_holds_the_write_lock(
    harness: Harness, db_url: str, backend: str
) -> None:
    """A search, a loan list and help take no write lock: they are answered while the desk (another
    process) sits in a write transaction."""
    h = harness
    await setup_library(h)
    student = await h.bound(5105, "S1")
    desk = Database(db_url)
    try:
        async with desk.transaction() as s:
            # SQLite: BEGIN IMMEDIATE holds the write lock; PostgreSQL: a row lock on the copy.
            await s.execute(select(Copy).where(Copy.barcode == "B1").with_for_update())
            assert "解忧杂货店" in (await student.say("杂货店"))["text"]
            assert "没有借书" in (await student.say("/loans"))["text"]
            assert "使用说明" in (await student.say("/help"))["text"]
    finally:
        await desk.dispose()
    async with h.db.transaction(read_only=True) as s:
        assert await s.scalar(select(func.count(ProcessedUpdate.update_id))) == 0


async def test_fifty_searches_while_the_librarian_lends(
    harness: Harness, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    await setup_library(h)
    librarian = await h.bound(5106, "L1")
    desk = Database(db_url)
    queries = ["三体", "杂货店", "数学", "追风筝"]
    sent = []
    try:

        async def desk_lends() -> None:  # the desk terminal, another connection
            for i in range(6, 11):
                await lend_with(desk, "T1", f"M{i:02d}")

        lending = asyncio.create_task(desk_lends())
        for i in range(50):
            user_id = 6000 + i
            Person(h.emu, user_id, f"学生{i}")
            sent.append((user_id, h.emu.send_text(user_id, queries[i % 4])))
            if i % 10 == 0:
                h.emu.send_text(5106, f"/checkout S2 M{i // 10 + 1:02d}")
        for user_id, update in sent:
            reply = await h.emu.wait_for_bot_message(
                user_id, after_message_id=update["message"]["message_id"], timeout=60
            )
            # A list, or the card itself when the query has one hit.
            assert "共找到" in reply["text"] or "馆藏：" in reply["text"], reply
        await lending
        # Other users' updates run alongside the librarian's: the last search may be answered
        # before the last checkout.
        await until(
            lambda: sum("已借出" in t or "借满" in t for t in librarian.texts()) >= 5,
            what="the five checkouts answered",
        )
    finally:
        await desk.dispose()
    lent = [t for t in librarian.texts() if "已借出" in t]
    assert len(lent) == 3  # S2 may borrow 3; the 4th and 5th are refused with the reason
    assert sum("借满 3 本" in t for t in librarian.texts()) == 2
    async with h.db.transaction(read_only=True) as s:
        on_loan = await s.scalar(
            select(func.count(Copy.id)).where(Copy.status == CopyStatus.ON_LOAN)
        )
    assert on_loan == 3 + 5
    assert "database is locked" not in caplog.text


async def lend_with(db: Database, card: str, barcode: str) -> None:
    await factories.lend(db, card, barcode, policy=LoanPolicy())


# -- a process killed between its first Bot API call and the rest ----------------------------------

TOKEN = "515151:KILL-TEST-secret-token"


def _env(tmp_path: Path, api_url: str, db_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "SHUXIANG_DATABASE_URL": db_url,
        "SHUXIANG_BOT_TOKEN": TOKEN,
        "SHUXIANG_BOT_API_URL": api_url,
        "SHUXIANG_DATA_DIR": str(tmp_path / "var"),
        "SHUXIANG_LOG_LEVEL": "INFO",
        "SHUXIANG_BOT_RETRY_BACKOFF_SECONDS": "0.01",  # no production backoff to wait through
    }


async def test_killed_after_the_first_reply_the_redelivered_update_finishes_once(
    forks: ForkServer, db: Database, db_url: str, tmp_path: Path
) -> None:
    await make_world(
        db, records={"r1": ("追风筝的人", ["B1"])}, readers={"S1": ("李明", "student")}
    )
    async with db.transaction() as s:
        (code,) = await issue_codes(s, policy=LoanPolicy(), card_nos=["S1"])
        await bind_telegram(s, code=code.code, telegram_user_id=7101, chat_id=7101)
    await lend_with(db, "S1", "B1")
    async with BotApiEmulator(TOKEN) as emu:
        env = _env(tmp_path, emu.base_url, db_url)
        first = forks.run(["run"], env)
        try:
            emu.add_user(7101, first_name="李明")
            sent = emu.send_text(7101, "/loans")
            loans = await emu.wait_for_bot_message(
                7101, after_message_id=sent["message"]["message_id"], timeout=60
            )
            # Renewing answers the button first; the edit after it hangs, and the bot dies.
            emu.faults.add(method="editMessageText", kind="slow", delay=60)
            press = emu.press_button_text(7101, loans["message_id"], "续借《追风筝的人》")
            cq_id = press["callback_query"]["id"]
            await until(lambda: emu.calls("editMessageText"), timeout=30, what="the edit")
            assert emu.callback_answer(cq_id) is not None
        finally:
            first.kill()
            await first.wait()
        assert await renewals(db) == 1  # committed before any reply
        emu.faults.clear()
        second = forks.run(["run"], env)
        try:
            confirmed = await emu.wait_for_bot_message(7101, contains="已续借，", timeout=60)
            edited = await emu.wait_for_bot_message(7101, contains="已续借 1 次", timeout=10)
            assert edited["message_id"] == loans["message_id"]
            await emu.wait_idle(timeout=10)
        finally:
            second.terminate()
            output, _ = await asyncio.wait_for(second.communicate(), timeout=30)
    text = output.decode()
    assert "query is too old" in text and "counted as done" in text, text
    assert "Traceback" not in text
    assert sum("已续借，" in (m.get("text") or "") for m in emu.bot_messages(7101)) == 1
    assert confirmed["text"].startswith("✅")
    assert await renewals(db) == 1
    async with db.transaction(read_only=True) as s:
        rows = list(await s.execute(select(ProcessedUpdate.update_id, ProcessedUpdate.replies)))
    assert rows == [(press["update_id"], None)]


# -- the desk is not held up by a slow Bot API --------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_desk_checkout_while_the_bot_waits_on_a_slow_bot_api(
    forks: ForkServer, harness: Harness, db_url: str, tmp_path: Path
) -> None:
    """SQLite gives up on its write lock after its busy timeout: the bot must not hold it over a
    reply. The desk's timeout is cut to 2 s and the reply takes 6 s, so a lock held over the
    reply would fail the desk, as 30 s against a 35 s reply would in production."""
    h = harness
    await setup_library(h)
    librarian = await h.bound(5111, "L1")
    h.emu.faults.add(method="sendMessage", kind="slow", delay=6, chat_id=5111)
    h.emu.send_text(5111, "/checkout S1 B1")
    await until(
        lambda: any("已借出" in c.get("text", "") for c in h.emu.calls("sendMessage")),
        what="the bot's slow reply",
    )
    desk = forks.run(
        ["circ", "checkout", "S2", "B2"],
        {
            **os.environ,
            "SHUXIANG_DATABASE_URL": db_url,
            "SHUXIANG_LOG_LEVEL": "WARNING",
            "SHUXIANG_SQLITE_BUSY_TIMEOUT_S": "2",
        },
    )
    output, _ = await asyncio.wait_for(desk.communicate(), timeout=60)
    text = output.decode()
    assert desk.returncode == 0, text
    assert "已借出《解忧杂货店》" in text
    assert (
        "已借出《追风筝的人》"
        in (await librarian.emu.wait_for_bot_message(5111, timeout=40))["text"]
    )
