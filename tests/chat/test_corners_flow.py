"""Class corners and the overdue chase in the chat: the real bot, services and SQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from handlers.middlewares import ThrottlingMiddleware
from services import circulation
from services.actor import Actor
from storage.models import (
    ClassCorner,
    Copy,
    CopyStatus,
    CornerSwap,
    Notification,
    OutboxStatus,
    Reader,
    Record,
    SwapStatus,
    utcnow,
)
from tests.chat.harness import Harness, Person, buttons

TZ = ZoneInfo("Asia/Shanghai")
A, B, C = "高一(3)班", "高一(4)班", "高一(5)班"
READERS = {
    "MA": ("甲班长", "student", A),
    "MA2": ("甲副班长", "student", A),
    "SA": ("甲同学", "student", A),
    "MB": ("乙班长", "student", B),
    "SB": ("乙同学", "student", B),
    "SC": ("丙同学", "student", C),
    "L1": ("周馆员", "librarian", None),
}
TITLES = {
    "X1": "红楼梦",
    "X2": "西游记",
    "X3": "水浒传",
    "Y1": "史记",
    "Y2": "论语",
    "Y3": "时间简史",
    "Z1": "三体",
    "Z2": "活着",
}


async def setup(h: Harness) -> None:
    async with h.db.transaction() as s:
        for card, (name, role, klass) in READERS.items():
            s.add(Reader(card_no=card, name=name, role=role, grade="高一", class_name=klass))
        for n, (barcode, title) in enumerate(TITLES.items()):
            record = Record(record_id=f"r{n}", title=title, clc="I247.5")
            s.add(record)
            await s.flush()
            s.add(Copy(barcode=barcode, record_pk=record.id))
        await s.flush()
        await h.app.search.rebuild_index(s)


async def replies(person: Person, text: str, contains: str) -> dict[str, Any]:
    """Send ``text``; the bot's reply (of possibly several) that contains ``contains``."""
    sent = person.emu.send_text(person.user_id, text)
    return await person.emu.wait_for_bot_message(
        person.user_id, after_message_id=sent["message"]["message_id"], contains=contains
    )


async def send_batch(h: Harness, librarian: Person, class_name: str, barcodes: list[str]) -> None:
    # Pushes (discrepancy alerts) may arrive in between: wait for the reply we expect.
    await replies(librarian, f"/batch {class_name}", "待发出的一批")
    for barcode in barcodes:  # scanned one by one
        await replies(librarian, barcode, "已加入 1 册")
    draft = await replies(librarian, f"/batch {class_name}", "待发出的一批")
    assert f"（{len(barcodes)} 册）" in draft["text"]
    await librarian.press(draft, "发出")
    sent = await librarian.next_message(contains="已发出")
    assert f"送去 {len(barcodes)} 册" in sent["text"]


async def statuses(h: Harness) -> dict[str, tuple[str, str | None]]:
    async with h.db.transaction(read_only=True) as s:
        rows = await s.execute(
            select(Copy.barcode, Copy.status, ClassCorner.class_name).outerjoin(
                ClassCorner, ClassCorner.id == Copy.corner_id
            )
        )
        return {barcode: (status, klass) for barcode, status, klass in rows}


async def test_swap_between_two_classes(harness: Harness) -> None:
    h = harness
    await setup(h)
    librarian = await h.bound(7001, "L1")
    ma = await h.bound(7002, "MA")
    mb = await h.bound(7003, "MB")
    sa = await h.bound(7004, "SA")

    # Only the librarian appoints; a monitor must be a student of that class.
    assert "只有图书管理员" in (await sa.say(f"/monitor add SA {A}"))["text"]
    assert "不是高一(4)班的学生" in (await librarian.say(f"/monitor add SA {B}"))["text"]
    assert "已任命" in (await librarian.say(f"/monitor add MA {A}"))["text"]
    assert "已任命" in (await librarian.say(f"/monitor add MB {B}"))["text"]
    listing = await librarian.say("/monitor")
    assert "甲班长" in listing["text"] and "乙班长" in listing["text"]

    # Round one: X1-X3 to class A, Y1-Y3 to class B.
    await send_batch(h, librarian, A, ["X1", "X2", "X3"])
    told = await h.emu.wait_for_bot_message(7002, contains="一批新书送到")
    assert "3 册" in told["text"]
    # Off the shelf once sent; in the corner only when the monitor confirms.
    assert (await statuses(h))["X1"] == (CopyStatus.IN_TRANSIT, A)
    # Students cannot confirm anything.
    assert "还不是班级图书管理员" in (await sa.say("/corner"))["text"]
    batch = await replies(ma, "/corner", "送来的新书")
    assert buttons(batch)[:3] == ["1 收到", "1 缺少", "1 破损"]
    await ma.press(batch, "1 收到")
    batch = await ma.next_message(contains="待确认 2")
    await ma.press(batch, "2 缺少")
    await ma.next_message(contains="待确认 1")
    done = await replies(ma, "X3", "确认收到")
    assert "全部确认完毕" in done["text"]
    alert = await h.emu.wait_for_bot_message(7001, contains="缺少")
    assert "X2" in alert["text"] and A in alert["text"]

    await send_batch(h, librarian, B, ["Y1", "Y2", "Y3"])
    batch = await replies(mb, "/corner", "送来的新书")
    await mb.press(batch, "2 破损")
    await mb.next_message(contains="待确认 2")
    done = await replies(mb, "Y1\nY3", "确认收到 2 册")
    assert "全部确认完毕" in done["text"]
    await h.emu.wait_for_bot_message(7001, contains="破损")

    # Round two, the swap: both corners come back to the desk ...
    for klass, back in ((A, 2), (B, 3)):
        draft = await replies(librarian, f"/batch {klass}", "待发出的一批")
        await librarian.press(draft, "发出")
        sent = await librarian.next_message(contains="已发出")
        assert f"收回 {back} 册" in sent["text"]
    await h.emu.wait_for_bot_message(7002, contains="图书角的 2 册书送回图书馆")
    await replies(librarian, "/back X1 X3 Y1 Y3", "确认收到 4 册")
    desk = await replies(librarian, f"/desk {B}", "还回的书")
    assert "待确认 1" in desk["text"]
    await librarian.press(desk, "2 破损")  # Y2 came back damaged, as reported
    await librarian.next_message(contains="全部确认完毕")
    # ... and go out to the other class.
    await send_batch(h, librarian, A, ["Y1", "Y3"])
    await send_batch(h, librarian, B, ["X1", "X3"])
    await replies(ma, "Y1 Y3", "确认收到 2 册")
    await replies(mb, "X1\nX3", "确认收到 2 册")
    # Updates are handled one after another: once this is answered, the one before committed.
    corner_b = await replies(mb, "/corner", "图书角（2 册）")
    assert "红楼梦" in corner_b["text"] and "水浒传" in corner_b["text"]

    final = await statuses(h)
    assert final["X1"] == final["X3"] == (CopyStatus.IN_CORNER, B)
    assert final["Y1"] == final["Y3"] == (CopyStatus.IN_CORNER, A)
    assert final["X2"] == (CopyStatus.LOST, None)
    assert final["Y2"] == (CopyStatus.DAMAGED, None)
    async with h.db.transaction(read_only=True) as s:
        open_swaps = list(await s.scalars(select(CornerSwap.status)))
    assert set(open_swaps) == {SwapStatus.CONFIRMED}
    corner_a = await replies(ma, "/corner", "图书角（2 册）")
    assert "史记" in corner_a["text"] and "时间简史" in corner_a["text"]


async def test_reserving_a_corner_book_asks_the_monitor(harness: Harness) -> None:
    h = harness
    await setup(h)
    librarian = await h.bound(7101, "L1")
    ma = await h.bound(7102, "MA")
    sb = await h.bound(7103, "SB")
    await librarian.say(f"/monitor add MA {A}")
    await send_batch(h, librarian, A, ["Z1"])
    await replies(ma, "Z1", "确认收到 1 册")
    card = await sb.say("三体", contains="《三体》")
    assert "在高一(3)班图书角" in card["text"]
    await sb.press(card, "预约")
    await sb.next_message(contains="已预约")
    asked = await h.emu.wait_for_bot_message(7102, contains="有同学预约了《三体》")
    assert "Z1" in asked["text"]
    # The monitor records who has it, then brings it to the desk.
    assert "在甲同学那里" in (await replies(ma, "/holder Z1 SA", "已记下"))["text"]
    back = await replies(librarian, "/back Z1", "Z1")
    assert "已从高一(3)班图书角收回" in back["text"]
    await h.emu.wait_for_bot_message(7103, contains="你预约的《三体》到了")
    assert (await statuses(h))["Z1"] == (CopyStatus.ON_HOLD_SHELF, None)


async def test_a_copy_sent_to_a_corner_is_not_on_the_shelf(harness: Harness) -> None:
    """Issue 19 item 1: a class without a monitor gets no batch (with how to add one); a sent
    copy is not on the shelf for the card, the search line and holds; the desk says where it
    is, lends it only when asked, and it then leaves the batch the monitor would confirm."""
    h = harness
    await setup(h)
    librarian = await h.bound(7201, "L1")
    ma = await h.bound(7202, "MA")
    sb = await h.bound(7203, "SB")
    refused = await librarian.say(f"/batch {A}")
    assert "还没有班级图书管理员" in refused["text"] and "/monitor add" in refused["text"]
    assert (await statuses(h))["X1"] == (CopyStatus.ON_SHELF, None)
    await librarian.say(f"/monitor add MA {A}")
    await send_batch(h, librarian, A, ["X1"])

    card = await sb.say("红楼梦", contains="《红楼梦》")
    assert "在架 0 / 共 1 册" in card["text"] and "正送往高一(3)班图书角" in card["text"]
    assert "书架上有" not in card["text"]
    await sb.press(card, "预约")  # reservable: the one copy is not on the shelf
    await sb.next_message(contains="已预约")
    asked = await h.emu.wait_for_bot_message(7202, contains="有同学预约了《红楼梦》")
    assert "X1" in asked["text"]

    # Lending scan after scan: the corner copy is not lent, the desk asks.
    await replies(librarian, "📤 借出", "借给哪位读者")
    await replies(librarian, "SA", "请扫书的条码")
    asked = await replies(librarian, "X1", "红楼梦")
    assert "送往高一(3)班图书角" in asked["text"] and "已借出" not in asked["text"]
    assert buttons(asked) == ["📤 仍然借出（从图书角取回）", "✅ 完成"]
    await librarian.press(asked, "完成")
    assert (await statuses(h))["X1"] == (CopyStatus.IN_TRANSIT, A)

    scan = await replies(librarian, "X1", "红楼梦")
    assert "送往高一(3)班图书角" in scan["text"] and "可以借出" not in scan["text"]
    assert buttons(scan) == ["📤 仍然借出（从图书角取回）"]
    await librarian.press(scan, "仍然借出")
    await librarian.next_message(contains="借给哪位读者")
    lent = await replies(librarian, "SB", "已借出")
    assert "X1" in lent["text"] and "已取走预约书" in lent["text"]
    # Taken out of the batch too: the monitor has nothing left to confirm, the batch is closed.
    assert "没有待确认的新书" in (await replies(ma, "/corner", "新书"))["text"]
    assert (await statuses(h))["X1"] == (CopyStatus.ON_LOAN, None)
    async with h.db.transaction(read_only=True) as s:
        assert set(await s.scalars(select(CornerSwap.status))) == {SwapStatus.CONFIRMED}


async def wait_outbox_settled(h: Harness) -> None:
    await h.settle()  # what the sender does when a job queues
    async with h.db.transaction(read_only=True) as s:
        pending = await s.scalar(
            select(Notification.id)
            .where(Notification.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)))
            .limit(1)
        )
    assert pending is None, "the outbox did not drain"


async def test_weekly_overdue_list_each_monitor_own_class_once(harness: Harness) -> None:
    h = harness
    await setup(h)
    users = {"MA": 7201, "MA2": 7202, "MB": 7203, "SA": 7204, "SB": 7205, "SC": 7206, "L1": 7207}
    people = {card: await h.bound(uid, card) for card, uid in users.items()}
    for card, klass in (("MA", A), ("MA2", A), ("MB", B)):
        await people["L1"].say(f"/monitor add {card} {klass}")
    # Handled in order: the listing's answer means every appointment before it committed.
    assert "（共 3 位）" in (await people["L1"].say("/monitor"))["text"]
    # The injected clock: the sweep runs "now" as the test says, twice in the same week.
    now = utcnow() - timedelta(minutes=5)
    if now.astimezone(TZ).date() != utcnow().astimezone(TZ).date():
        now = utcnow()
    async with h.db.transaction() as s:
        for card, barcode in (("SA", "X1"), ("SA", "X2"), ("SB", "Y1"), ("SC", "Z1")):
            await circulation.checkout(
                s,
                actor=Actor.cli(),
                card_no=card,
                barcode=barcode,
                policy=h.policy,
                now=now - timedelta(days=40),
            )
        await circulation.checkout(
            s, actor=Actor.cli(), card_no="MB", barcode="Y2", policy=h.policy, now=now
        )
    # The registry's job: three lists (two monitors of one class, one of the other), two reminders.
    h.clock.set(now)
    assert await h.app.jobs.run_once("weekly-chase", h.app.job_context) == 3 + 2
    h.clock.set(now + timedelta(minutes=1))
    assert await h.app.jobs.run_once("weekly-chase", h.app.job_context) == 0
    await wait_outbox_settled(h)

    def chase_texts(card: str) -> list[str]:
        return [t for t in people[card].texts() if "催书单" in t]

    for card in ("MA", "MA2"):
        (text,) = chase_texts(card)
        assert "甲同学" in text and "红楼梦" in text and "西游记" in text
        assert "乙同学" not in text and "丙同学" not in text
    (text,) = chase_texts("MB")
    assert "乙同学" in text and "甲同学" not in text and "论语" not in text
    for card in ("SA", "SB", "L1", "SC"):
        assert chase_texts(card) == []  # never the class, never anyone else
    for card in ("SA", "SB"):
        reminders = [t for t in people[card].texts() if "已经超期" in t]
        assert len(reminders) == 1
    assert not [t for t in people["SC"].texts() if "已经超期" in t]  # class without monitors

    # On request: the monitor's own class, privately; a student gets nothing there.
    asked = await people["MB"].say("/cuishu")
    assert "乙同学" in asked["text"] and "甲同学" not in asked["text"]
    refused = await people["SA"].say("/cuishu")
    assert "还不是班级图书管理员" in refused["text"]
    refused = await people["MB"].say(f"/cuishu {A}")
    assert "只有高一(3)班的图书管理员" in refused["text"]
    await wait_outbox_settled(h)
    assert len([t for t in people["SB"].texts() if "已经超期" in t]) == 1  # same day: once


async def test_clearance_in_the_bot(harness: Harness) -> None:
    h = harness
    await setup(h)
    librarian = await h.bound(7301, "L1")
    sa = await h.bound(7302, "SA")
    async with h.db.transaction() as s:
        await circulation.checkout(
            s, actor=Actor.cli(), card_no="SA", barcode="X1", policy=h.policy
        )
    assert "只有图书管理员" in (await sa.say("/clearance 高一"))["text"]
    listed = await librarian.say("/clearance 高一")
    assert "1 位学生" in listed["text"] and "红楼梦" in listed["text"]
    # Listing messages nobody; the librarian asks for the reminders, and is told how many.
    assert "/clearance 高一 提醒" in listed["text"]
    async with h.db.transaction(read_only=True) as s:
        assert await s.scalar(select(Notification.id)) is None
    sent = await librarian.say("/clearance 高一 提醒")
    assert "已提醒 1 位学生" in sent["text"] and "无法送达" not in sent["text"], sent["text"]
    await h.emu.wait_for_bot_message(7302, contains="离校前请还清")
    # Names the school does not have are refused with what it has; any usual spelling works.
    unknown = await librarian.say("/clearance 高三")
    assert "本校没有年级「高三」" in unknown["text"] and "高一" in unknown["text"]
    assert "是一个班级" in (await librarian.say("/clearance 高一3班"))["text"]
    missing = await librarian.say("/corner 高一(9)班")
    assert "本校没有班级" in missing["text"] and A in missing["text"], missing["text"]
    assert "没有超期" in (await librarian.say("/cuishu 高一（4）班"))["text"]
    assert "高一(5)班没有待确认的还书" in (await librarian.say("/desk 高一5"))["text"]
    assert f"这个年级的班级：{A}" in (await librarian.say("/desk 高一6班"))["text"]
    assert "你是不是要找：X1" in (await librarian.say("/checkout SB X11"))["text"]
    nobody = (await librarian.say("/reader 甲同学 高一(9)班"))["text"]
    assert "本校没有班级「高一(9)班」" in nobody and A in nobody, nobody
    assert "你是不是要找：SA" in (await librarian.say("/reader SA1"))["text"]
    async with h.db.transaction() as s:
        await circulation.return_copy(s, actor=Actor.cli(), barcode="X1", policy=h.policy)
    assert "全部清还完毕" in (await librarian.say("/clearance 高一"))["text"]
    assert "全部清还完毕" in (await librarian.say("/clearance SA"))["text"]


ROLE_USERS = {
    "unbound": (7400, None),
    "student": (7401, "SA"),
    "monitor_here": (7402, "MA"),
    "monitor_other": (7403, "MB"),
    "teacher": (7404, "T1"),
    "librarian": (7405, "L1"),
}
LIB = {"librarian"}
HERE = {"monitor_here"}
EITHER = {"monitor_here", "librarian"}
# command -> (who succeeds, what the successful reply says); in this order, so that every
# attempt meets the same state until the one that is allowed changes it.
BOT_MATRIX: list[tuple[str, set[str], tuple[str, ...]]] = [
    ("/monitor", LIB, ("班级图书管理员（共",)),
    (f"/monitor add MA2 {A}", LIB, ("已任命",)),
    (f"/batch {A}", LIB, ("待发出的一批",)),
    (f"/propose {B} 1", LIB, ("待发出的一批",)),
    (f"/desk {A}", LIB, ("没有待确认的还书",)),
    (f"/corner {A}", EITHER, ("高一(3)班图书角（1 册）",)),
    (f"/cuishu {A}", EITHER, ("催书单", "没有超期")),
    ("/holder Z2 SA", HERE, ("已记下",)),
    ("/back Z2", LIB, ("已从",)),
    ("/clearance 高一", LIB, ("位学生", "全部清还完毕")),
]


async def test_role_matrix_in_the_bot(harness: Harness) -> None:
    """Every monitor and librarian command from every role; only the right ones get through."""
    h = harness
    await setup(h)
    # Each role sends ten commands in a few seconds: more than the anti-flood window allows.
    for middleware in h.app.dp.update.outer_middleware:
        if isinstance(middleware, ThrottlingMiddleware):
            middleware.limit = 1000
    async with h.db.transaction() as s:
        s.add(Reader(card_no="T1", name="陈老师", role="teacher"))
        corner = ClassCorner(class_name=A)
        s.add(corner)
        await s.flush()
        copy = await s.scalar(select(Copy).where(Copy.barcode == "Z2"))
        assert copy is not None
        copy.status, copy.corner_id = CopyStatus.IN_CORNER.value, corner.id
    people: dict[str, Person] = {}
    for role, (user_id, card) in ROLE_USERS.items():
        people[role] = await h.bound(user_id, card) if card else Person(h.emu, user_id, role)
    await people["librarian"].say(f"/monitor add MA {A}")
    await people["librarian"].say(f"/monitor add MB {B}")
    seen: dict[str, set[str]] = {}
    for command, allowed, markers in BOT_MATRIX:
        seen[command] = set()
        # The allowed roles go last: a refused attempt must not find a changed state.
        for role in sorted(ROLE_USERS, key=lambda r: (r in allowed, r)):
            reply = await people[role].say(command)
            if any(marker in reply["text"] for marker in markers):
                seen[command].add(role)
    assert seen == {command: allowed for command, allowed, _ in BOT_MATRIX}
