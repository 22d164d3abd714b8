"""The printable binding sheet: codes issued for two classes (both databases), one PDF page per
class with its name and the date in the header, and QR codes that decode to the deep link
which /start binds with."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from pypdf import PdfReader
from sqlalchemy import select, update

from services.policy import LoanPolicy
from services.readers.binding import IssuedCode, bind_telegram, issue_codes
from services.readers.sheet import deep_link, qr_runs, write_binding_sheet
from services.suggestions import suggest_purchase
from storage.db import Database
from storage.models import PurchaseSuggestion, Reader
from tests.factories import make_world

CLASSES = {"高一(3)班": ["S1", "S2", "S3"], "高二(1)班": ["S4", "S5"]}


def _decode(payload: str) -> list[str]:
    """Rasterise the runs the sheet draws (4 px a module) and read them back with ZXing."""
    size, runs = qr_runs(payload)
    image = np.full((size, size), 255, dtype=np.uint8)
    for row, column, length in runs:
        image[row, column : column + length] = 0
    image = np.kron(image, np.ones((4, 4), dtype=np.uint8))
    return [result.text for result in zxingcpp.read_barcodes(image)]


async def _issue(db: Database) -> list[IssuedCode]:
    readers = {card: (f"学生{card}", "student") for cards in CLASSES.values() for card in cards}
    await make_world(db, readers=readers)
    async with db.transaction() as session:
        for class_name, cards in CLASSES.items():
            await session.execute(
                update(Reader).where(Reader.card_no.in_(cards)).values(class_name=class_name)
            )
    issued: list[IssuedCode] = []
    async with db.transaction() as session:
        for class_name in CLASSES:
            issued += await issue_codes(session, policy=LoanPolicy(), class_name=class_name)
    return issued


async def test_one_page_per_class_with_qr_codes(db: Database, tmp_path: Path) -> None:
    issued = await _issue(db)
    sheet = tmp_path / "codes.pdf"
    pages = write_binding_sheet(
        sheet, issued, bot_username="@school_library_bot", issued_on=date(2026, 11, 30)
    )
    pdf = PdfReader(sheet)
    assert pages == len(pdf.pages) == len(CLASSES)
    for page, (class_name, cards) in zip(pdf.pages, CLASSES.items(), strict=True):
        text = page.extract_text()
        assert class_name in text and "2026-11-30" in text
        mine = [c for c in issued if c.card_no in cards]
        assert all(f"/bind {c.code}" in text and c.name in text for c in mine)
        others = [c for c in issued if c.card_no not in cards]
        assert not any(c.code in text for c in others)

    # The QR code is the deep link, and that link's start parameter binds.
    first = issued[0]
    link = deep_link("@school_library_bot", first.code)
    assert link == f"https://t.me/school_library_bot?start={first.code}"
    assert _decode(link) == [link]
    async with db.transaction() as session:
        outcome = await bind_telegram(
            session, code=link.rsplit("=", 1)[1], telegram_user_id=77, chat_id=77
        )
    assert outcome.reader is not None and outcome.reader.card_no == first.card_no


async def test_a_large_class_runs_on_and_readers_without_a_class_come_last(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    expires = datetime(2026, 12, 30, tzinfo=UTC)
    codes = [IssuedCode(f"S{i:03d}", "学生", "高一(3)班", "K7QX3M9P", expires) for i in range(55)]
    codes.append(IssuedCode("T1", "陈老师", None, "ABCD2345", expires))
    sheet = tmp_path / "big.pdf"
    assert write_binding_sheet(sheet, codes, bot_username="b", issued_on=date(2026, 9, 1)) == 3
    pages = [p.extract_text() for p in PdfReader(sheet).pages]
    assert "高一(3)班" in pages[0] and "高一(3)班" in pages[1] and "未分班" in pages[2]
    assert "/bind ABCD2345" in pages[2]


@pytest.mark.parametrize("author", ["刘慈欣", ""])
async def test_suggestion_keeps_the_author_and_dedupes_by_title(db: Database, author: str) -> None:
    world = await make_world(db)
    reader_id = world.reader_ids["S1"]
    async with db.transaction() as session:
        assert await suggest_purchase(
            session, query="三体 ", author=author, reader_id=reader_id, telegram_user_id=None
        )
        # The same title again counts once; an author learnt later is kept.
        assert not await suggest_purchase(
            session, query="三体", author="刘慈欣", reader_id=reader_id, telegram_user_id=None
        )
    async with db.transaction(read_only=True) as session:
        rows = list(await session.scalars(select(PurchaseSuggestion)))
    assert [(r.query, r.note) for r in rows] == [("三体", "刘慈欣")]


def test_every_slip_line_stays_inside_its_cell() -> None:
    """Issue 19 item 16: the expiry line (and a long name) never runs over the slip's edge; what
    does not fit at a readable size goes onto a second line, nothing is cut off."""
    from datetime import UTC, datetime

    from fpdf import FPDF

    from services.readers.sheet import MARGIN, QR_MM, SLIP_W, slip_lines
    from services.stats.reports.fonts import cjk_font

    pdf = FPDF(format="A4", unit="mm")
    pdf.add_font("cjk", fname=str(cjk_font()), collection_font_number=0)
    pdf.add_page()
    names = ["王小明", "阿卜杜热合曼·买买提", "欧阳娜娜娜娜娜娜", "Alexander Hamilton"]
    for n, name in enumerate(names):
        code = IssuedCode(
            f"2026{n:06d}", name, "高一(3)班", "AB12CD34", datetime(2026, 12, 20, tzinfo=UTC)
        )
        x, y = MARGIN + (n % 5) * SLIP_W, 50.0
        lines = slip_lines(pdf, x, y, code)
        for line in lines:
            pdf.set_font("cjk", size=line.size)
            assert pdf.get_string_width(line.text) <= line.width, line
            assert line.x + line.width <= x + SLIP_W, line
            assert line.size >= 6.0, line  # still readable on paper
        # Above the /bind line under the QR code.
        assert lines[-1].y + lines[-1].height <= y + QR_MM + 1.2
        text = "".join(line.text for line in lines).replace(" ", "")
        assert name.replace(" ", "") in text and "有效期至2026-12-20" in text
