"""Everything that needs a bound reader, tried by someone who is not bound (a stranger, or a
student after /unbind pressing old buttons): told how to bind, nothing run, nothing written."""

from __future__ import annotations

from sqlalchemy import func, select

from handlers.callbacks import (
    CancelHoldCB,
    CancelHoldSureCB,
    ForYouCB,
    ForYouKind,
    HistoryCB,
    NotifyCB,
    RenewCB,
    ReserveCB,
    SettingsCB,
)
from services import circulation
from services.actor import Actor
from services.notifications.kinds import Action
from storage.models import Hold, Loan, ProcessedUpdate, Subscription, WeeklyPreference
from tests.chat.harness import Harness, Person
from tests.factories import make_world

BIND = "需要先绑定借书证"
BIND_FOR_RECOMMEND = "请先绑定借书证"


async def _count(h: Harness, model: type[object]) -> int:
    async with h.db.transaction(read_only=True) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_bound_only_commands_and_buttons_refuse_the_unbound(harness: Harness) -> None:
    h = harness
    world = await make_world(
        h.db,
        records={"r1": ("追风筝的人", ["B1"]), "r2": ("解忧杂货店", ["B2"])},
        readers={"S1": ("李明", "student")},
    )
    async with h.db.transaction() as session:
        await circulation.checkout(
            session, actor=Actor.cli(), card_no="S1", barcode="B1", policy=h.policy
        )
        loan_id = int(await session.scalar(select(Loan.id)) or 0)
    # Strangers take turns: one person sending this much would be throttled (8 updates in 5 s).
    strangers = iter(Person(h.emu, 9310 + n, f"路人{n}") for n in range(20))

    commands = {
        "/loans": BIND,
        "📚 我的借阅": BIND,
        "/history": BIND,
        "/holds": BIND,
        "/settings": BIND,
        "/recommend": BIND_FOR_RECOMMEND,
        "/classmates": BIND_FOR_RECOMMEND,
        "/subscribe 科幻": BIND_FOR_RECOMMEND,
        "/unsubscribe": BIND_FOR_RECOMMEND,
    }
    for n, (text, refusal) in enumerate(commands.items()):
        if n % 6 == 0:
            stranger = next(strangers)
        reply = await stranger.say(text)
        assert refusal in reply["text"], (text, reply["text"])

    # Buttons kept from before an /unbind (or forged): an alert, and the handler never runs.
    r2 = world.record_pks["r2"]
    presses = {
        RenewCB(loan_id=loan_id).pack(): BIND,
        ReserveCB(record_pk=r2).pack(): BIND,
        CancelHoldCB(hold_id=1).pack(): BIND,
        CancelHoldSureCB(hold_id=1, origin=1).pack(): BIND,
        HistoryCB(page=0).pack(): BIND,
        NotifyCB(action=Action.RENEW, ref=loan_id).pack(): BIND,
        NotifyCB(action=Action.RESERVE, ref=r2).pack(): BIND,
        NotifyCB(action=Action.STOP_WEEKLY, ref=0).pack(): BIND,
        SettingsCB(kind="due_soon", on=False).pack(): BIND,
        ForYouCB(kind=ForYouKind.MINE).pack(): BIND_FOR_RECOMMEND,
    }
    for n, (data, refusal) in enumerate(presses.items()):
        if n % 6 == 0:
            stranger = next(strangers)
            anchor = await stranger.say("/help")
        pressed = h.emu.press_button(stranger.user_id, anchor["message_id"], data, check=False)
        answer = await h.emu.wait_for_callback_answer(pressed["callback_query"]["id"])
        assert refusal in answer["text"] and answer.get("show_alert"), (data, answer)

    # Nothing ran: no write transaction was opened (no update claimed), nothing changed.
    assert await _count(h, ProcessedUpdate) == 0
    assert await _count(h, Hold) == 0
    assert await _count(h, Subscription) == 0
    assert await _count(h, WeeklyPreference) == 0
    async with h.db.transaction(read_only=True) as session:
        loan = await session.get(Loan, loan_id)
    assert loan is not None and loan.renewals == 0

    # The same commands work once bound: the refusal was about binding, nothing else.
    student = await h.bound(9302, "S1")
    assert "追风筝的人" in (await student.say("/loans"))["text"]
