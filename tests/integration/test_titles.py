"""Every list, message, push and file names a book the same way (services/titles.py): with its
volume, and told apart from a record that would read the same. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from services import circulation as circ
from services.actor import Actor
from services.circulation.kinds import HOLD_READY
from services.corners.chase import class_overdue
from services.notifications.reminders import ReminderRules, sweep_due_day
from services.notifications.render import render
from services.recommend.engine import Context
from services.recommend.model import fit
from services.stats.figures import Scope, compute, period_for_dates
from services.stats.reports.document import tables, write_csv
from services.titles import book_names
from storage.db import Database
from storage.models import Copy, Notification, Reader, Record
from tests.factories import POLICY, lend, telegram_endpoint
from tests.roles import as_reader

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)
# record_id: (title, subtitle, publisher, pub_date, barcodes)
BOOKS = {
    "rs1": ("人世间", "上部", "中国青年出版社", "2017-12", ["B1"]),
    "rs2": ("人世间", "中部", "中国青年出版社", "2017-12", ["B2"]),
    "rs3": ("人世间", "下部", "中国青年出版社", "2017-12", ["B3"]),
    "hz1": ("活着", None, "作家出版社", "2012-8", ["B4"]),
    "hz2": ("活着", None, "北京十月文艺出版社", "2017-6", ["B5"]),
}


async def library(db: Database) -> dict[str, int]:
    pks: dict[str, int] = {}
    async with db.transaction() as s:
        for record_id, (title, subtitle, publisher, pub_date, barcodes) in BOOKS.items():
            record = Record(
                record_id=record_id,
                title=title,
                subtitle=subtitle,
                publisher=publisher,
                pub_date=pub_date,
                authors="梁晓声" if title == "人世间" else "余华",
                clc="I247.5",
            )
            s.add(record)
            await s.flush()
            pks[record_id] = record.id
            s.add_all(Copy(barcode=b, record_pk=record.id) for b in barcodes)
        # A teacher may have the four books out at once.
        for n, (card, role) in enumerate((("T1", "teacher"), ("S2", "student")), 1):
            reader = Reader(card_no=card, name=f"读者{n}", role=role, class_name="高一(1)班")
            s.add(reader)
            await s.flush()
            pks[card] = reader.id
            s.add(telegram_endpoint(reader.id, 800 + n))
    return pks


async def test_lists_messages_and_pushes_say_which_volume_and_which_edition(
    db: Database, tmp_path: Path
) -> None:
    pks = await library(db)
    assert (await lend(db, "T1", "B3", now=T0)).title == "人世间 下部"
    for barcode in ("B1", "B4", "B5"):
        await lend(db, "T1", barcode, now=T0)
    await lend(db, "S2", "B2", now=T0)
    async with db.transaction() as s:
        placed = await circ.place_hold(
            s,
            actor=await as_reader(s, pks["T1"]),
            reader_id=pks["T1"],
            record_pk=pks["rs2"],
            policy=POLICY,
            now=T0,
        )
    assert placed.title == "人世间 中部"

    both_editions = ["活着（北京十月文艺出版社）", "活着（作家出版社）"]
    async with db.transaction(read_only=True) as s:
        loans = await circ.loans_of(s, pks["T1"], T0, actor=await as_reader(s, pks["T1"]))
        desk = await circ.reader_desk(s, pks["T1"], POLICY, T0, actor=Actor.cli())
        holds = await circ.holds_of(s, pks["T1"], actor=await as_reader(s, pks["T1"]))
    # /loans and the desk: four different lines for four different books.
    assert sorted(loan.title for loan in loans) == sorted(
        ["人世间 上部", "人世间 下部", *both_editions]
    )
    assert sorted(loan.title for loan in desk.loans) == sorted(loan.title for loan in loans)
    assert [hold.title for hold in holds] == ["人世间 中部"]

    # The reservation's push, when the copy comes back.
    async with db.transaction() as s:
        await circ.return_copy(
            s, actor=Actor.cli(), barcode="B2", policy=POLICY, now=T0 + timedelta(days=1)
        )
    async with db.transaction(read_only=True) as s:
        ready = await s.scalar(select(Notification).where(Notification.kind == HOLD_READY.name))
    assert ready is not None
    assert "《人世间 中部》" in render(ready.kind, ready.payload, TZ).text

    # A sweep's push (due today) names the volume too.
    async with db.transaction() as s:
        await sweep_due_day(s, ReminderRules(tz=TZ), loans[0].due_at)
        texts = [
            render(n.kind, n.payload, TZ).text
            for n in await s.scalars(select(Notification).where(Notification.kind == "due_day"))
        ]
    assert len(texts) == 4 and any("《人世间 上部》" in text for text in texts)
    assert any("《活着》" in text for text in texts)  # one book per push: nothing to tell apart

    # The class's 催书单 once they are overdue.
    async with db.transaction(read_only=True) as s:
        late = loans[0].due_at + timedelta(days=3)
        chase_lines = await class_overdue(s, Actor.system(), "高一(1)班", now=late, tz=TZ)
    assert sorted(line.title for line in chase_lines) == sorted(
        ["人世间 上部", "人世间 下部", *both_editions]
    )

    # The report's CSV of the most borrowed books.
    async with db.transaction(read_only=True) as s:
        first = T0.astimezone(TZ).date()
        stats = await compute(
            s,
            Actor.system(),
            Scope.school(),
            period_for_dates(first, first + timedelta(days=1), TZ),
            tz=TZ,
        )
    (top,) = write_csv(tmp_path, [t for t in tables(stats, TZ) if t.name == "top_books"])
    with top.open(encoding="utf-8-sig") as fh:
        names = sorted(row[0] for row in list(csv.reader(fh))[1:])
    assert names == sorted(["人世间 上部", "人世间 下部", "人世间 中部", *both_editions])


async def test_a_list_tells_apart_only_what_it_shows_together(db: Database) -> None:
    pks = await library(db)
    async with db.transaction(read_only=True) as s:
        alone = await book_names(s, [pks["hz1"], pks["rs1"]])
        together = await book_names(s, [pks["hz1"], pks["hz2"]])
    assert alone == {pks["hz1"]: "活着", pks["rs1"]: "人世间 上部"}
    assert together == {pks["hz1"]: "活着（作家出版社）", pks["hz2"]: "活着（北京十月文艺出版社）"}


async def test_recommendations_name_the_volume_and_skip_another_edition_of_a_read_book(
    db: Database,
) -> None:
    pks = await library(db)
    async with db.transaction(read_only=True) as s:
        model = await fit(s)
    ranked = model.rank(Context(history=[pks["rs1"], pks["hz1"]]), n=5)
    shown = {one.pk: one for one in ranked}
    # The other edition of 活着 is the same book: not offered "because you borrowed" it.
    assert pks["hz2"] not in shown
    assert model.items[pks["rs2"]].label == "人世间 中部"
    reasons = [r.as_dict() for one in ranked for r in one.reasons if r.kind == "borrowed"]
    assert reasons and all(r["title"] in ("人世间 上部", "活着") for r in reasons)
    for one in ranked:
        for r in one.reasons:
            assert r.kind != "borrowed" or r.as_dict()["title"] != model.items[one.pk].label
    # Two editions of a book not read yet are one line of the list, not two alike.
    ctx = Context(history=[pks["rs1"]], grade="高一", grade_counts={pks["hz1"]: 2, pks["hz2"]: 1})
    labels = [model.items[one.pk].label for one in model.rank(ctx, n=5)]
    assert labels.count("活着") == 1 and len(labels) == len(set(labels))


CATALOGUE = """record_id,title,subtitle,author,publisher,pub_date,clc,tags,barcodes
rs1,人世间,上部,梁晓声,中国青年出版社,2017-12,I247.5,年代,B1
rs2,人世间,中部,梁晓声,中国青年出版社,2017-12,I247.5,年代,B2
rs3,人世间,下部,梁晓声,中国青年出版社,2017-12,I247.5,年代,B3
hz1,活着,,余华,作家出版社,2012-8,I247.57,年代,B4
hz2,活着,,余华,北京十月文艺出版社,2017-6,I247.57,年代,B5
"""
CLI_READERS = """card_no,name,role,grade,class_name
S1,李明,student,高一,高一(3)班
S2,王芳,student,高一,高一(3)班
"""
LOANS = """card_no,record_id,lent_at,returned_at
S1,rs1,2024-09-01,2024-09-20
S1,hz1,2024-09-01,2024-09-20
S2,rs1,2024-09-01,2024-09-20
S2,rs2,2024-09-21,2024-10-10
S2,rs3,2024-10-11,2024-10-30
S2,hz2,2024-10-11,2024-10-30
"""


def test_the_command_line_names_volumes(tmp_path: Path) -> None:
    env = {
        "SHUXIANG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'titles.sqlite3'}",
        "SHUXIANG_LOG_LEVEL": "WARNING",
    }
    files = (("catalogue", CATALOGUE), ("readers", CLI_READERS), ("loans", LOANS))
    for name, text in files:
        path = tmp_path / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        result = CliRunner().invoke(app, ["import", name, str(path)], env=env)
        assert result.exit_code == 0, result.output

    result = CliRunner().invoke(app, ["recommend", "--card", "S1", "-n", "5"], env=env)
    assert result.exit_code == 0, result.output
    shown = result.output.splitlines()
    assert "人世间 中部" in shown and "人世间 下部" in shown
    assert "活着" not in shown and "人世间" not in shown  # another edition of a book read
    result = CliRunner().invoke(app, ["recommend", "--card", "S1", "--json"], env=env)
    answer = json.loads(result.output)
    reasons = [r for item in answer["results"] for r in item["reasons"]]
    assert "因为你借过《人世间 上部》" in reasons
    assert not any(
        r == f"因为你借过《{item['title']}》" for item in answer["results"] for r in item["reasons"]
    )

    result = CliRunner().invoke(app, ["search", "人世间"], env=env)
    assert result.exit_code == 0, result.output
    assert all(f"人世间 {part}" in result.output for part in ("上部", "中部", "下部"))
