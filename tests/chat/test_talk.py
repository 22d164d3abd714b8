"""What people type that is not a search (issue 19, items 8, 9 and 13), in the chat: small talk
and questions about Shuxiang get an answer instead of "没有找到", a copy's barcode its book
card, a named list the list (not a CLC class), and /start, /help and the command menu follow
the reader's role."""

from __future__ import annotations

from typing import Any

from services.actor import Actor
from services.reading_lists import add_to_list, create_list
from tests.chat.harness import Harness, Person, buttons
from tests.factories import make_world

FOUR = {"hlm": "红楼梦", "xyj": "西游记", "sgyy": "三国演义", "shz": "水浒传"}
RECORDS = {key: (title, [f"G{n}"]) for n, (key, title) in enumerate(FOUR.items(), 1)} | {
    "rlws": ("儒林外史", ["G9"]),  # the same CLC class, not one of the four
    "xxn": ("谢谢你", ["X1"]),  # small talk and a title
    "ydys": ("如何阅读一本书", ["Y1"]),
    "st": ("三体", ["SX10001"]),
    "hz": ("活着", ["H1"]),
}
READERS = {
    "S1": ("李明", "student"),
    "S2": ("王芳", "student"),
    "S3": ("陈晨", "student"),
    "T1": ("赵老师", "teacher"),
    "L1": ("周馆员", "librarian"),
}
STUDENT_COMMANDS = [
    "/loans",
    "/history",
    "/holds",
    "/recommend",
    "/lists",
    "/classmates",
    "/subscribe",
    "/settings",
    "/suggest",
    "/bind",
]


async def setup(h: Harness) -> None:
    clc = dict.fromkeys([*FOUR, "rlws"], "I242.4")
    await make_world(h.db, records=RECORDS, readers=READERS, monitors={"S2": "高一(1)班"}, clc=clc)
    async with h.db.transaction() as s:
        await h.app.search.rebuild_index(s)
        await create_list(s, Actor.system(), "中考必读")
        await add_to_list(s, Actor.system(), "中考必读", "H1")
        await add_to_list(s, Actor.system(), "中考必读", "Y1")


def menu(h: Harness, chat_id: int | None = None) -> list[str]:
    scope: dict[str, Any] = {"type": "default"}
    if chat_id is not None:
        scope = {"type": "chat", "chat_id": chat_id}
    return [c["command"] for c in h.emu.commands(scope)]


async def test_small_talk_questions_barcodes_and_named_lists(harness: Harness) -> None:
    h = harness
    await setup(h)
    student = await h.bound(9101, "S1", "李明")

    # Small talk: a friendly word, never "没有找到" or 荐购.
    for text, expected in [
        ("谢谢", "不客气"),
        ("hello", "你好，李明"),
        ("再见！", "再见"),
        ("👍", "👌"),
    ]:
        reply = await student.say(text)
        assert expected in reply["text"] and "没有找到" not in reply["text"], text
        assert not buttons(reply), text
    # 谢谢你 is small talk and a book: the answer, and the book one tap away.
    thanks = await student.say("谢谢你")
    assert "不客气" in thanks["text"] and buttons(thanks) == ["📖《谢谢你》"]
    await student.press(thanks, "谢谢你")
    assert "《谢谢你》" in (await student.next_message(contains="馆藏"))["text"]

    # Questions about a feature get its help, in Chinese whichever language they came in
    # (another phone: eight messages in five seconds are throttled). Without a card it says how
    # to bind as well.
    guest = Person(h.emu, 9102, "访客")
    renew = await guest.say("怎么续借")
    assert "/bind 绑定码" in renew["text"]
    assert "怎么续借" in renew["text"] and "可以续借 1 次" in renew["text"]
    assert (await guest.say("how do I renew a book?"))["text"] == renew["text"]
    assert (await guest.say("可以续借吗？"))["text"] == renew["text"]
    assert "什么是预约" in (await guest.say("预约是什么？"))["text"]
    limits = (await guest.say("how many books can I borrow"))["text"]
    assert "最多同时借 3 本" in limits and "学生" in limits
    assert "怎么还书" in (await guest.say("书怎么还"))["text"]

    reader = Person(h.emu, 9103, "读者")
    # A title that reads like a question is still searched (one hit: its card).
    assert "《如何阅读一本书》" in (await reader.say("如何阅读一本书"))["text"]
    # The barcode of one of our copies: that copy's book card.
    assert "《三体》" in (await reader.say("sx10001"))["text"]

    # Named lists win over the class words and are labelled as lists.
    for query in ("四大名著", "名著四大", "四大名著有哪些"):
        listed = (await reader.say(query))["text"]
        assert "书单：四大名著" in listed and "中图法" not in listed, query
        assert all(title in listed for title in FOUR.values()) and "儒林外史" not in listed
    reading = await reader.say("必读中考")
    assert "书单：中考必读" in reading["text"] and "《活着》" in reading["text"]
    assert buttons(reading) == ["详情 1", "详情 2"]
    # The class word alone is still a class list.
    assert "中图法" in (await reader.say("章回小说"))["text"]


async def test_help_start_and_command_menu_follow_the_role(harness: Harness) -> None:
    h = harness
    await setup(h)
    await h.until(lambda: menu(h), what="the default menu")
    assert menu(h) == ["start", "help", "bind", "lists"]  # strangers: what works without a card

    student = Person(h.emu, 9201, "李明")
    await student.say(f"/start {await h.code_for('S1')}")
    await h.until(lambda: menu(h, 9201), what="the student's menu")
    assert {"loans", "history", "holds", "suggest", "settings"} <= set(menu(h, 9201))
    assert "checkout" not in menu(h, 9201) and "corner" not in menu(h, 9201)
    text = (await student.say("/help"))["text"]
    assert all(command in text for command in STUDENT_COMMANDS), text
    assert "办公室" not in text and "/corner" not in text and "/checkout" not in text

    teacher = await h.bound(9202, "T1", "赵老师")
    text = (await teacher.say("/help"))["text"]
    assert "送到你的办公室" in text and "最多同时借 10 本" in text
    await h.until(lambda: "loans" in menu(h, 9202), what="the teacher's menu")

    monitor = await h.bound(9203, "S2", "王芳")
    start = (await monitor.say("/start"))["text"]
    assert "高一(1)班" in start and "/corner" in start
    await h.until(lambda: "corner" in menu(h, 9203), what="the monitor's menu")
    assert "/corner" in (await monitor.say("/help"))["text"]

    librarian = Person(h.emu, 9204, "周馆员")
    await librarian.say(f"/start {await h.code_for('L1')}")
    await h.until(lambda: "checkout" in menu(h, 9204), what="the librarian's menu")
    assert {"batch", "desk", "monitor"} <= set(menu(h, 9204))
    start = (await librarian.say("/start"))["text"]
    assert "服务台" in start and "班级图书角" in start
    text = (await librarian.say("/help"))["text"]
    assert "/checkout" in text and "/batch" in text

    # Appointed a class monitor in the chat: the corner joins their menu, and leaves it again.
    await h.bound(9205, "S3", "陈晨")
    assert "已任命" in (await librarian.say("/monitor add S3 高一(1)班"))["text"]
    await h.until(lambda: "corner" in menu(h, 9205), what="the new monitor's menu")
    await librarian.say("/monitor remove S3")
    await h.until(lambda: "corner" not in menu(h, 9205), what="the former monitor's menu")
    assert "loans" in menu(h, 9205)

    # Unbinding gives the stranger's menu back.
    confirm = await student.say("/unbind")
    await student.press(confirm, "确定")
    await h.until(lambda: not menu(h, 9201), what="the student's menu removed")
