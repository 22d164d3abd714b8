"""Search round two in the chat: a subject, an author in pinyin, "did you mean"."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from storage.models import Record
from tests.chat.harness import Harness
from tests.factories import make_world

RECORDS = {
    "k1": ("三体", ["K1"]),
    "k2": ("球状闪电", ["K2"]),
    "k3": ("海底两万里", ["K3"]),
    "k4": ("在路上", ["K4"]),
}
DETAILS: dict[str, dict[str, Any]] = {
    "k1": {"authors": "刘慈欣", "tags": "科幻;小说", "loan_count": 9},
    "k2": {"authors": "刘慈欣", "tags": "科幻"},
    "k3": {"authors": "[法] 儒勒·凡尔纳", "tags": "冒险;科幻"},
    "k4": {"authors": "[美] 杰克·凯鲁亚克", "tags": "旅行"},
}


async def setup_shelf(h: Harness) -> None:
    await make_world(h.db, records=RECORDS, readers={"S1": ("李明", "student")})
    async with h.db.transaction() as session:
        for record_id, values in DETAILS.items():
            await session.execute(
                update(Record).where(Record.record_id == record_id).values(**values)
            )
        await h.app.search.rebuild_index(session)


async def test_subject_pinyin_author_and_did_you_mean(harness: Harness) -> None:
    h = harness
    await setup_shelf(h)
    student = await h.bound(5101, "S1")

    subject = await student.say("有没有科幻的书")
    assert "共找到 3 本" in subject["text"], subject["text"]
    lines = subject["text"].split("\n")
    assert "三体" in lines[2], lines  # the main subject of the most borrowed book
    assert "海底两万里" in subject["text"] and "在路上" not in subject["text"]

    author = await student.say("liucixin")
    assert "共找到 2 本" in author["text"], author["text"]
    assert "三体" in author["text"] and "球状闪电" in author["text"]

    miss = await student.say("球壮闪亮")
    assert "没有找到" in miss["text"]
    assert "你是不是要找" in miss["text"] and "《球状闪电》 刘慈欣" in miss["text"], miss["text"]
