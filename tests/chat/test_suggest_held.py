"""Issue 19 item 7 in the chat: 荐购 for a title the library holds shows where it is
instead of filing it; a search miss offers its "你是不是要找" titles before 荐购; the librarian's
/suggestions marks a title the library holds (馆藏已有)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import PurchaseSuggestion, Record
from tests.chat.harness import Harness, buttons
from tests.factories import make_world

RECORDS = {
    "k1": ("三体", ["K1", "K2", "K3"]),
    "k2": ("球状闪电", ["K4"]),
}


async def test_suggesting_a_held_title_shows_where_it_is(harness: Harness) -> None:
    h = harness
    world = await make_world(
        h.db,
        records=RECORDS,
        readers={"S1": ("李明", "student"), "L1": ("周馆员", "librarian")},
        clc={"k1": "I247.5", "k2": "I247.5"},
    )
    async with h.db.transaction() as s:
        for record in await s.scalars(select(Record)):
            record.call_number = "I247.5/L67" if record.title == "三体" else "I247.5/L68"
        # Suggested before the library bought it: still pending on the librarian's list.
        s.add(PurchaseSuggestion(reader_id=world.reader_ids["S1"], query="三体"))
        await h.app.search.rebuild_index(s)
    student = await h.bound(5301, "S1")
    librarian = await h.bound(5302, "L1")

    held = await student.say("/suggest 《三体》")
    assert "图书馆已经有" in held["text"] and "I247.5/L67" in held["text"], held["text"]
    assert "在架 3 / 共 3 册" in held["text"] and "直接去取" in held["text"]
    assert buttons(held) == ["📖 查看《三体》"]
    await student.press(held, "查看")
    card = await student.next_message(contains="《三体》")
    assert "在架 3 / 共 3 册" in card["text"]

    # The form: a title typed into it that the library holds ends it the same way.
    asked = await student.say("/suggest")
    assert "书名" in asked["text"]
    typed = await student.say("三体")
    assert "图书馆已经有" in typed["text"], typed["text"]

    # A miss with a "did you mean": that title first, 荐购 last.
    miss = await student.say("球壮闪亮")
    assert "你是不是要找" in miss["text"]
    assert buttons(miss) == ["📖 《球状闪电》", "📝 荐购这本书"], buttons(miss)

    # A title the library lacks is still suggested as before.
    draft = await student.say("/suggest 月亮与六便士")
    assert "荐购" in draft["text"] and "月亮与六便士" in draft["text"]
    await student.press(draft, "提交")
    await student.next_message(contains="已记录你的荐购")

    listing = await librarian.say("/suggestions")
    lines = {line for line in listing["text"].splitlines() if "」" in line}
    assert any("三体" in line and "馆藏已有" in line for line in lines), listing["text"]
    assert any("月亮与六便士" in line and "馆藏已有" not in line for line in lines), lines
