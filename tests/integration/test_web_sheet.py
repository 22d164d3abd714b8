"""The binding sheet of a school running the web chat: the sign-in link as a QR code (the only
one without a bot; below the Telegram one with a bot), every slip line still inside its cell."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import zxingcpp
from pypdf import PdfReader

from services.readers.binding import IssuedCode
from services.readers.sheet import (
    MARGIN,
    QR_SMALL_MM,
    SLIP_H,
    SLIP_W,
    qr_runs,
    slip_lines,
    web_link,
    write_binding_sheet,
)

EXPIRES = datetime(2026, 12, 20, tzinfo=UTC)
CODES = [
    IssuedCode(f"2026{n:04d}", name, "高一(3)班", f"AB{n}2CD34"[:8], EXPIRES)
    for n, name in enumerate(["王小明", "阿卜杜热合曼·买买提", "Alexander Hamilton"])
]


def _decode(payload: str) -> list[str]:
    size, runs = qr_runs(payload)
    image = np.full((size, size), 255, dtype=np.uint8)
    for row, column, length in runs:
        image[row, column : column + length] = 0
    image = np.kron(image, np.ones((4, 4), dtype=np.uint8))
    return [result.text for result in zxingcpp.read_barcodes(image)]


def test_the_web_sign_in_link_fills_in_the_code_and_reads_back_from_its_qr() -> None:
    link = web_link("https://lib.school.cn/chat/", "AB12CD34")
    assert link == "https://lib.school.cn/chat/?code=AB12CD34"
    assert _decode(link) == [link]


def test_a_sheet_beside_telegram_has_both_codes(tmp_path: Path) -> None:
    both = tmp_path / "both.pdf"
    write_binding_sheet(
        both,
        CODES,
        bot_username="school_library_bot",
        web_url="http://10.0.0.5:8080",
        issued_on=date(2026, 12, 1),
    )
    both_text = PdfReader(both).pages[0].extract_text()
    assert "Telegram" in both_text and "书香网页" in both_text
    assert all(f"/bind {c.code}" in both_text for c in CODES)


def test_two_qr_codes_leave_every_slip_line_inside_its_cell() -> None:
    from fpdf import FPDF

    from services.stats.reports.fonts import cjk_font

    pdf = FPDF(format="A4", unit="mm")
    pdf.add_font("cjk", fname=str(cjk_font()), collection_font_number=0)
    pdf.add_page()
    for n, code in enumerate(CODES):
        x, y = MARGIN + n * SLIP_W, 50.0
        more = (("上：Telegram　下：网页", 5.5, 4.5), (f"/bind {code.code}", 8.0, 6.0))
        lines = slip_lines(pdf, x, y, code, qr_mm=QR_SMALL_MM, more=more)
        for line in lines:
            pdf.set_font("cjk", size=line.size)
            assert pdf.get_string_width(line.text) <= line.width, line
            assert line.x + line.width <= x + SLIP_W, line
        assert lines[-1].y + lines[-1].height <= y + SLIP_H, lines[-1]


def test_codes_for_the_web_alone_need_no_bot(tmp_path: Path, sqlite_template: Path) -> None:
    """`shuxiang readers codes` with only SHUXIANG_WEB_URL: each reader's sign-in link in the
    CSV (no Telegram link), and on the sheet."""
    import asyncio
    import csv
    import shutil

    from storage.db import Database
    from tests.factories import cli, make_world, sqlite_env

    database = tmp_path / "school.sqlite3"
    shutil.copyfile(sqlite_template, database)

    async def readers() -> None:
        db = Database(f"sqlite+aiosqlite:///{database}")
        await make_world(db, readers={"S1": ("李明", "student"), "S2": ("王芳", "student")})
        await db.dispose()

    asyncio.run(readers())
    out = tmp_path / "codes.csv"
    env = sqlite_env(database, web_url="https://library.school.cn")
    code, text = cli(["readers", "codes", "--card", "S1", "--card", "S2", "--out", str(out)], env)
    assert code == 0, text
    with out.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["证号"] for r in rows] == ["S1", "S2"]
    assert all(r["绑定链接"] == "" for r in rows)
    assert all(r["网页登录链接"] == f"https://library.school.cn/?code={r['绑定码']}" for r in rows)
    sheet = PdfReader(out.with_suffix(".pdf")).pages[0].extract_text()
    assert rows[0]["绑定码"] in sheet and "/bind" not in sheet
