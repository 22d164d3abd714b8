"""What a student reads in the chat names each volume and tells two editions apart: /loans and
its renewal buttons, /holds, the reservation's push and its 还要 answer, and a search list where
two editions of one book would otherwise read alike."""

from __future__ import annotations

from sqlalchemy import update

from services import circulation
from services.actor import Actor
from storage.models import Record
from tests.chat.harness import Harness, buttons
from tests.factories import make_world
from tests.roles import as_reader

READERS = {"S1": ("李明", "student"), "S2": ("王芳", "student")}
RECORDS = {
    "rs1": ("人世间", ["B1"]),
    "rs2": ("人世间", ["B2"]),
    "rs3": ("人世间", ["B3"]),
    "hz1": ("活着", ["B4"]),
    "hz2": ("活着", ["B5"]),
}
DETAILS = {
    "rs1": {"subtitle": "上部"},
    "rs2": {"subtitle": "中部"},
    "rs3": {"subtitle": "下部"},
    "hz1": {"publisher": "作家出版社", "pub_date": "2012-8"},
    "hz2": {"publisher": "北京十月文艺出版社", "pub_date": "2017-6"},
}


async def test_the_chat_names_volumes_and_editions(harness: Harness) -> None:
    h = harness
    world = await make_world(h.db, records=RECORDS, readers=READERS)
    async with h.db.transaction() as s:
        for key, values in DETAILS.items():
            await s.execute(update(Record).where(Record.id == world.record_pks[key]).values(values))
        await h.app.search.rebuild_index(s)
        for barcode in ("B1", "B4", "B5"):
            await circulation.checkout(
                s, actor=Actor.cli(), card_no="S1", barcode=barcode, policy=h.policy
            )
        await circulation.checkout(
            s, actor=Actor.cli(), card_no="S2", barcode="B2", policy=h.policy
        )
        await circulation.place_hold(
            s,
            actor=await as_reader(s, world.reader_ids["S1"]),
            reader_id=world.reader_ids["S1"],
            record_pk=world.record_pks["rs2"],
            policy=h.policy,
        )
    student = await h.bound(8101, "S1")

    loans = await student.say("/loans")
    for name in ("《人世间 上部》", "《活着（作家出版社）》", "《活着（北京十月文艺出版社）》"):
        assert name in loans["text"]
    assert "《活着》" not in loans["text"] and "《人世间》" not in loans["text"]
    labels = buttons(loans)
    assert any("人世间 上部" in label for label in labels)
    assert len({label for label in labels if "续借" in label}) == 3  # three buttons, three names

    holds = await student.say("/holds")
    assert "《人世间 中部》排在第 1 位" in holds["text"]

    async with h.db.transaction() as s:
        await circulation.return_copy(s, actor=Actor.cli(), barcode="B2", policy=h.policy)
    push = await h.emu.wait_for_bot_message(8101, contains="你预约的《人世间 中部》到了")
    await student.press(push, "还要")
    assert "《人世间 中部》给你留到" in (await student.next_message(contains="给你留到"))["text"]

    # The search list: two editions of 活着 by the same (missing) author say what tells them
    # apart; the volumes of 人世间 already differ by their subtitles and get nothing added.
    found = await student.say("活着")
    assert "《活着》（作家出版社） · 全部借出" in found["text"]
    assert "《活着》（北京十月文艺出版社） · 全部借出" in found["text"]
    volumes = await student.say("人世间")
    assert "《人世间》上部 · 全部借出" in volumes["text"]
    assert "出版社" not in volumes["text"]
