"""Replies after commit in the chat: a commit that fails is reported as "not saved", never as
success; bad callback data and binding-code guessing are refused politely. What only the HTTP
path shows (Bot API calls refused after the commit, the write lock, a killed process) is in
tests/e2e/test_replies_after_commit.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import (
    BindAttempt,
    Endpoint,
    Loan,
    ProcessedUpdate,
)
from tests.chat.harness import Harness, Person
from tests.chat.test_bot_flows import lend, setup_library
from tests.people import Library

JSON = dict[str, Any]


async def loans_list(h: Library, user_id: int) -> tuple[Person, JSON]:
    student = await h.bound(user_id, "S1")
    await lend(h, "S1", "B1")
    return student, await student.say("/loans")


async def renewals(db: Database) -> int:
    async with db.transaction(read_only=True) as s:
        return int(await s.scalar(select(Loan.renewals)) or 0)


@pytest.fixture
def failing_commit() -> Iterator[list[str]]:
    """Make the next commit of a session holding a renewed loan fail, once."""
    failed: list[str] = []

    def seen(session: Session, _context: object) -> None:
        if any(isinstance(o, Loan) and o.renewals == 1 for o in session.dirty):
            session.info["renewed"] = True

    def refuse(session: Session) -> None:
        if session.info.pop("renewed", False) and not failed:
            failed.append("renewal")
            raise RuntimeError("disk full")

    event.listen(Session, "after_flush", seen)
    event.listen(Session, "before_commit", refuse)
    try:
        yield failed
    finally:
        event.remove(Session, "before_commit", refuse)
        event.remove(Session, "after_flush", seen)


async def test_a_failed_commit_says_try_again_not_success(
    harness: Harness, failing_commit: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    await setup_library(h)
    student, loans = await loans_list(h, 5104)
    answer = await student.press(loans, "续借《追风筝的人》")
    assert failing_commit == ["renewal"]
    assert answer["show_alert"] and "没能保存" in answer["text"]
    await h.emu.wait_idle(timeout=10)
    assert await renewals(h.db) == 0
    assert not any("已续借" in t for t in student.texts())
    assert "commit failed" in caplog.text
    async with h.db.transaction(read_only=True) as s:  # not recorded: trying again is possible
        assert await s.scalar(select(func.count(ProcessedUpdate.update_id))) == 0
    # Trying again works, and is then reported.
    await student.press(loans, "续借《追风筝的人》")
    assert "已续借，" in (await student.next_message(contains="已续借，"))["text"]
    assert await renewals(h.db) == 1


async def test_oversized_and_forged_callback_data_is_refused_politely(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    await setup_library(h)
    student = await h.bound(5107, "S1")
    mine = await student.say("/help")
    with caplog.at_level(logging.INFO):
        for data in ("rn:" + "9" * 60, "b:" + "1" * 60, "r:" + "7" * 60 + ":0", "p:-1", "ch:0:0"):
            pressed = h.emu.press_button(5107, mine["message_id"], data, check=False)
            answer = await h.emu.wait_for_callback_answer(pressed["callback_query"]["id"])
            assert "按钮已经失效" in answer["text"], data
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text and "OverflowError" not in caplog.text


@pytest.mark.settings(bind_fails_per_user=3, bind_fails_across_bot=5)
async def test_guessing_binding_codes_is_capped_and_the_librarian_alerted(
    harness: Harness,
) -> None:
    h = harness
    await setup_library(h)
    librarian = await h.bound(5108, "L1")
    guesser = Person(h.emu, 5109, "猜码")
    for n in range(3):
        assert "绑定码无效" in (await guesser.say(f"/bind ZZZZ222{n + 2}"))["text"]
    # Over the cap a right code is refused too: a guesser cannot tell it was right.
    code = await h.code_for("S1")
    assert "尝试次数太多" in (await guesser.say(f"/bind {code}"))["text"]
    second = Person(h.emu, 5110, "又一个")
    assert "绑定码无效" in (await second.say("/bind ZZZZ3333"))["text"]
    assert "绑定码无效" in (await second.say("/bind ZZZZ4444"))["text"]  # the 5th across the bot
    alert = await h.emu.wait_for_bot_message(5108, contains="错误的绑定码尝试")
    assert "5 次" in alert["text"]
    assert "暂时停止绑定" in (await second.say(f"/bind {code}"))["text"]
    async with h.db.transaction(read_only=True) as s:
        assert await s.scalar(select(func.count(BindAttempt.id))) == 5
        assert await s.scalar(select(func.count(Endpoint.id))) == 1  # the librarian's
    assert sum("错误的绑定码尝试" in t for t in librarian.texts()) == 1
