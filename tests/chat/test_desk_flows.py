"""The circulation desk in the chat: a scanner types barcodes into the librarian's chat, the
librarian's keyboard (借出, 归还, 读者, 预约架), /reader by card, name or name + class, refusals
that say who has the book, and a reader at the loan limit; students keep searching."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from services import circulation
from storage.models import Loan, Reader, Record
from tests import factories
from tests.chat.harness import Harness, Person, buttons
from tests.factories import make_world
from tests.roles import as_reader

READERS = {
    "S1": ("李明", "student"),
    "S2": ("王芳", "student"),
    "S3": ("王芳", "student"),
    "S4": ("赵雷", "student"),
    "L1": ("周馆员", "librarian"),
}
RECORDS = {
    "r1": ("追风筝的人", ["B1"]),
    "r2": ("解忧杂货店", ["B2", "B3"]),
    "r3": ("三体", ["B4"]),
    "r4": ("活着", ["B5"]),
    "r5": ("围城", ["B6"]),
}


async def setup_desk(h: Harness) -> None:
    await make_world(h.db, records=RECORDS, readers=READERS)
    async with h.db.transaction() as session:
        # Two students called 王芳: S3 is in 初二(3)班.
        await session.execute(
            update(Reader).where(Reader.card_no == "S3").values(class_name="初二(3)班")
        )
        await session.execute(
            update(Record).where(Record.title == "三体").values(call_number="I247.5/12")
        )
        await h.app.search.rebuild_index(session)


async def lend(h: Harness, card: str, barcode: str) -> None:
    await factories.lend(h.db, card, barcode, policy=h.policy)


async def reserve(h: Harness, card: str, title: str) -> None:
    """The reader with ``card`` reserves the book titled ``title`` themselves."""
    async with h.db.transaction() as session:
        reader = await circulation.reader_by_card(session, card)
        record_pk = await session.scalar(select(Record.id).where(Record.title == title))
        assert record_pk is not None
        await circulation.place_hold(
            session,
            actor=await as_reader(session, reader.id),
            reader_id=reader.id,
            record_pk=record_pk,
            policy=h.policy,
        )


async def open_loans(h: Harness, card: str) -> list[str]:
    async with h.db.transaction(read_only=True) as session:
        reader = await circulation.reader_by_card(session, card)
        actor = await as_reader(session, reader.id)
        return [v.barcode for v in await circulation.loans_of(session, reader.id, actor=actor)]


def keyboard_texts(h: Harness, user_id: int) -> list[str]:
    return keyboard_texts_of(h.emu.reply_keyboard(user_id))


def keyboard_texts_of(markup: dict[str, Any] | None) -> list[str]:
    return [b["text"] for row in (markup or {}).get("keyboard", []) for b in row]


async def test_librarian_keyboard_differs_from_a_students(harness: Harness) -> None:
    h = harness
    await setup_desk(h)
    librarian = await h.bound(6001, "L1")
    student = await h.bound(6002, "S1")
    await librarian.say("/start")
    assert keyboard_texts(h, 6001)[:4] == ["📤 借出", "📥 归还", "👤 读者", "🔖 预约架"]
    await student.say("/start")
    assert "借出" not in "".join(keyboard_texts(h, 6002))
    assert "我的借阅" in "".join(keyboard_texts(h, 6002))
    # Binding as the librarian shows the desk keyboard at once.
    other = Person(h.emu, 6003, "周馆员")
    await other.say(f"/bind {await h.code_for('L1')}")
    assert "📤 借出" in keyboard_texts(h, 6003)


async def test_scan_on_shelf_lend_to_a_typed_name_then_scan_and_return(harness: Harness) -> None:
    h = harness
    await setup_desk(h)
    librarian = await h.bound(6010, "L1")
    # A scanner in a Chinese IME: full width, lower case, trailing space.
    shown = await librarian.say("ｂ４ ")
    assert "《三体》" in shown["text"] and "I247.5/12" in shown["text"] and "在架" in shown["text"]
    assert buttons(shown) == ["📤 借出"]
    await librarian.press(shown, "借出")
    asked = await librarian.next_message()
    assert "借给哪位读者？请扫读者证或输入证号" in asked["text"]
    # Two readers are called 王芳: name + class picks one.
    lent = await librarian.say("王芳 初二(3)班")
    assert "已借出《三体》" in lent["text"] and "S3" in lent["text"]
    assert await open_loans(h, "S3") == ["B4"]
    # Scanned again: who has it, until when, and 归还.
    shown = await librarian.say("B4")
    assert "已借出：王芳（初二(3)班，证号 S3），应还" in shown["text"]
    assert buttons(shown) == ["📥 归还"]
    await librarian.press(shown, "归还")
    back = await librarian.next_message()
    assert "已还《三体》" in back["text"]
    assert await open_loans(h, "S3") == []


async def test_lend_picks_from_several_matches_and_can_be_cancelled(harness: Harness) -> None:
    h = harness
    await setup_desk(h)
    librarian = await h.bound(6020, "L1")
    shown = await librarian.say("B1")
    await librarian.press(shown, "借出")
    await librarian.next_message()
    unknown = await librarian.say("没这个人")
    assert "找不到读者" in unknown["text"]
    picks = await librarian.say("王芳")
    assert "找到 2 位读者" in picks["text"] and buttons(picks)[:2] == ["1", "2"]
    assert "初二(3)班" in picks["text"] and "高一(1)班" in picks["text"]
    assert picks["text"].index("S3") < picks["text"].index("S2")  # 初二 sorts before 高一
    await librarian.press(picks, "1")
    done = await librarian.next_message()
    assert "已借出《追风筝的人》" in done["text"] and "S3" in done["text"]
    assert await open_loans(h, "S3") == ["B1"]

    # 借出 then 取消: the next scan is a scan again, not a reader for the copy.
    shown = await librarian.say("B5")
    await librarian.press(shown, "借出")
    await librarian.next_message()
    asked = h.emu.last_bot_message(6020)
    assert asked is not None
    answer = await librarian.press(asked, "取消")
    assert "已取消" in answer["text"]
    reader_view = await librarian.say("S4")
    assert "赵雷" in reader_view["text"] and "借阅 0 本" in reader_view["text"]
    assert await open_loans(h, "S4") == []


async def test_keyboard_lend_then_scan_books_and_the_limit_explained(harness: Harness) -> None:
    h = harness
    await setup_desk(h)
    librarian = await h.bound(6030, "L1")
    asked = await librarian.say("📤 借出")
    assert "借给哪位读者" in asked["text"]
    ready = await librarian.say("s1")
    assert "借给 李明" in ready["text"] and "请扫书的条码" in ready["text"]
    for barcode in ("B1", "B2", "B4"):
        assert "已借出" in (await librarian.say(barcode))["text"]
    refused = await librarian.say("B5")
    text = refused["text"]
    assert "李明 已借满 3 本" in text and "《三体》" in text and "请先还一本" in text
    assert sorted(await open_loans(h, "S1")) == ["B1", "B2", "B4"]
    # A copy that is out: to whom and until when.
    other = await librarian.say("S4")  # a card switches the reader
    assert "借给 赵雷" in other["text"]
    out = await librarian.say("B1")
    assert "已被借出" in out["text"] and "借给了 李明（高一(1)班，证号 S1），应还" in out["text"]
    answer = await librarian.press(other, "完成")
    assert "结束" in answer["text"]
    assert "在架" in (await librarian.say("B5"))["text"]  # a scan again, not a loan


async def test_keyboard_return_scans_one_after_another(harness: Harness) -> None:
    h = harness
    await setup_desk(h)
    await lend(h, "S1", "B2")
    await lend(h, "S4", "B3")
    librarian = await h.bound(6040, "L1")
    asked = await librarian.say("📥 归还")
    assert "请扫要归还的书的条码" in asked["text"]
    assert "已还《解忧杂货店》（B2）" in (await librarian.say("b2"))["text"]
    assert "已还《解忧杂货店》（B3）" in (await librarian.say("B3"))["text"]
    nothing = await librarian.say("B3")
    assert "没有借出记录" in nothing["text"]
    answer = await librarian.press(asked, "完成")
    assert "结束" in answer["text"]
    assert await open_loans(h, "S1") == [] and await open_loans(h, "S4") == []


async def test_reader_by_card_name_and_class(harness: Harness) -> None:
    h = harness
    await setup_desk(h)
    await lend(h, "S3", "B1")
    async with h.db.transaction() as session:
        await session.execute(update(Loan).values(due_at=Loan.lent_at))  # overdue at once
    librarian = await h.bound(6050, "L1")
    picks = await librarian.say("/reader 王芳")
    assert "找到 2 位读者" in picks["text"]
    for query in ("/reader 王芳 初二(3)班", "/reader 初二3班 王芳", "/reader s3"):
        view = await librarian.say(query)
        assert "王芳" in view["text"] and "S3" in view["text"], query
        assert "《追风筝的人》" in view["text"] and "逾期" in view["text"], query
        assert "📥 还 1" in buttons(view), query
        # An overdue book: checkout would refuse, so no 借书给 TA, and the view says why.
        assert "📤 借书给 TA" not in buttons(view), query
        assert "现在不能借书：王芳 有逾期未还的书" in view["text"], query
    # The 读者 button waits for a card or a name.
    asked = await librarian.say("👤 读者")
    assert "请扫读者证" in asked["text"]
    view = await librarian.say("赵雷")
    assert "赵雷" in view["text"] and "借阅 0 本" in view["text"]
    # From the list of two, a press opens the reader.
    await librarian.press(picks, "1")
    opened = await librarian.next_message()
    assert "王芳" in opened["text"] and "借阅" in opened["text"]


async def test_hold_shelf_list_scan_and_lend_to_the_reader_it_is_kept_for(
    harness: Harness,
) -> None:
    h = harness
    await setup_desk(h)
    await lend(h, "S1", "B4")
    await reserve(h, "S4", "三体")
    await factories.give_back(h.db, "B4", policy=h.policy)
    librarian = await h.bound(6060, "L1")
    shelf = await librarian.say("🔖 预约架")
    assert "预约架：1 本" in shelf["text"] and "《三体》" in shelf["text"]
    assert "赵雷（高一(1)班，证号 S4）" in shelf["text"]
    shown = await librarian.say("B4")
    assert "在预约架上，留给 赵雷" in shown["text"]
    assert buttons(shown) == ["📤 借给 赵雷"]
    # Someone else cannot have it; the refusal says for whom it is kept.
    refused = await librarian.say("/checkout S2 B4")
    assert "留给 赵雷（高一(1)班，证号 S4）" in refused["text"]
    await librarian.press(shown, "借给 赵雷")
    done = await librarian.next_message()
    assert "已借出《三体》" in done["text"] and "已取走预约书" in done["text"]
    assert "预约架上现在没有书" in (await librarian.say("🔖 预约架"))["text"]


async def test_hold_ready_at_the_limit_tells_the_reader_and_the_desk(harness: Harness) -> None:
    h = harness
    await setup_desk(h)
    student = await h.bound(6070, "S1")
    for barcode in ("B1", "B2", "B5"):
        await lend(h, "S1", barcode)
    await lend(h, "S4", "B4")
    await reserve(h, "S1", "三体")
    librarian = await h.bound(6071, "L1")
    back = await librarian.say("/return B4")
    assert "预约架，留给 李明" in back["text"]
    await h.until(
        lambda: any("取书前请先还一本" in t for t in student.texts()), what="hold-ready notice"
    )
    shown = await librarian.say("B4")
    assert "李明 已借满 3 本，取书前请先还一本" in shown["text"]
    # Checkout would refuse them: no 借给 李明 to press (the line above says why).
    assert buttons(shown) == []


async def test_a_students_barcode_is_the_book_card_not_the_desk(harness: Harness) -> None:
    h = harness
    await setup_desk(h)
    student = await h.bound(6080, "S1")
    reply = await student.say("B4")
    # Issue 19 item 8: the copy's book card (what a student may see), never the desk's view.
    assert "借出" not in "".join(buttons(reply)) and "馆藏：" in reply["text"]
    assert "条码" not in reply["text"]
    # The desk's buttons refuse anyone but a librarian.
    librarian = await h.bound(6081, "L1")
    shown = await librarian.say("B4")
    data = shown["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    update = h.emu.press_button(6080, reply["message_id"], data, check=False)
    answer = await h.emu.wait_for_callback_answer(update["callback_query"]["id"])
    assert "只有图书管理员" in answer["text"]


async def test_a_run_of_scans_asks_before_a_second_copy_and_ends_with_a_summary(
    harness: Harness,
) -> None:
    """Issue 19 item 12: 完成 sums up; a stale 完成 never says 已取消; a second copy of a title
    asks first; the refusal at the limit keeps 完成; an unknown code is 没有这个条码."""
    h = harness
    await setup_desk(h)
    librarian = await h.bound(6090, "L1")
    await librarian.say("📤 借出")
    await librarian.say("S1")
    assert "已借出《追风筝的人》" in (await librarian.say("B1"))["text"]
    assert "已借出《解忧杂货店》" in (await librarian.say("B2"))["text"]
    # B3 is another copy of 解忧杂货店: asked first, and 不借 lends nothing.
    asked = await librarian.say("B3")
    assert "已经借了《解忧杂货店》（B2），还要再借一本（B3）吗" in asked["text"]
    assert buttons(asked) == ["📤 再借一本", "✖️ 不借"]
    await librarian.press(asked, "不借")
    assert sorted(await open_loans(h, "S1")) == ["B1", "B2"]
    asked = await librarian.say("B3")
    await librarian.press(asked, "再借一本")
    again = await librarian.next_message(contains="已借出")
    assert "《解忧杂货店》（B3）" in again["text"] and buttons(again) == ["✅ 完成"]
    # At the limit: the refusal keeps 完成.
    refused = await librarian.say("B4")
    assert "李明 已借满 3 本" in refused["text"] and buttons(refused) == ["✅ 完成"]
    answer = await librarian.press(refused, "完成")
    assert "结束" in answer["text"]
    summary = await librarian.next_message(contains="本次借出")
    assert "本次借出 3 册（李明（高一(1)班，证号 S1））" in summary["text"]
    for line in ("1. 《追风筝的人》B1", "2. 《解忧杂货店》B2", "3. 《解忧杂货店》B3"):
        assert line in summary["text"]
    # The same 完成 again (or after a restart forgot the run): over, not cancelled.
    done_data = again["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    stale = await librarian.press(again, "完成")
    assert "已经结束" in stale["text"] and "取消" not in stale["text"]
    # Taking back: 完成 says what came back; the last run's 完成 does not end this one.
    await librarian.say("📥 归还")
    pressed = h.emu.press_button(6090, again["message_id"], done_data, check=False)
    stale = await h.emu.wait_for_callback_answer(pressed["callback_query"]["id"])
    assert "已经结束" in stale["text"] and "取消" not in stale["text"]
    await librarian.say("B1")
    await librarian.say("B3")
    nothing = await librarian.say("B5")
    assert "没有借出记录" in nothing["text"] and buttons(nothing) == ["✅ 完成"]
    await librarian.press(nothing, "完成")
    back = await librarian.next_message(contains="本次归还")
    assert "本次归还 2 册" in back["text"] and "《追风筝的人》B1" in back["text"]
    # A code that is no copy and no card: said so, never a search offering 荐购.
    unknown = await librarian.say("ZZ9999")
    assert "没有这个条码：ZZ9999" in unknown["text"]
    assert not any("荐购" in b for b in buttons(unknown))
    assert sorted(await open_loans(h, "S1")) == ["B2"]
    # One copy lent from its scan: asked first too, and 不借 ends the question.
    shown = await librarian.say("B3")
    await librarian.press(shown, "借出")
    await librarian.next_message(contains="借给哪位读者")
    asked = await librarian.say("S1")
    assert "还要再借一本（B3）吗" in asked["text"]
    answer = await librarian.press(asked, "不借")
    assert "已取消" in answer["text"]
    assert "在架" in (await librarian.say("B3"))["text"]  # a scan again, not a reader
    assert sorted(await open_loans(h, "S1")) == ["B2"]
