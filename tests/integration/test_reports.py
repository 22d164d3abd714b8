"""Charts, tables and the PDF drawn from the fixed library of tests/stats_world.py."""

from __future__ import annotations

import csv
import io
import itertools
import warnings
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from PIL import Image, ImageChops
from pypdf import PdfReader

from services.stats.reports.charts import (
    BAR_COLOUR,
    DPI,
    LABEL_PT,
    MAX_CLC_BARS,
    MIN_TEXT_PX,
    PHONE_PX,
    TITLE_PT,
    VALUE_PT,
    WIDTH_IN,
    render_charts,
    text_px_on_phone,
)
from services.stats.reports.document import write_report
from services.stats.reports.fonts import cjk_font
from services.stats.figures import Scope, compute, period_for_dates, weeding_list
from storage.db import Database
from tests.stats_world import NOW, TZ, build_stats_world

SEPTEMBER = period_for_dates(date(2026, 9, 1), date(2026, 9, 30), TZ)
# Bundled with matplotlib, and without a single CJK glyph: the tofu reference.
DEJAVU = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def _title_band(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png)).convert("L")
    return image.crop((0, 0, image.width, image.height // 9))


def _ink(image: Image.Image) -> int:
    """Dark pixels: how much was drawn."""
    return sum(image.histogram()[:128])


async def test_charts_are_pngs_with_chinese_glyphs(db: Database) -> None:
    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        stats = await compute(s, Scope.school(), SEPTEMBER, tz=TZ, now=NOW)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts = render_charts(stats)
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert [c.name for c in charts] == ["clc", "top_books", "classes"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tofu = render_charts(stats, font=DEJAVU)
    # The reference really is tofu: matplotlib says the glyphs are missing.
    assert [w for w in caught if "missing from font" in str(w.message)]
    for chart, reference in zip(charts, tofu, strict=True):
        image = Image.open(io.BytesIO(chart.png))
        assert image.format == "PNG"
        assert image.size[0] == int(WIDTH_IN * DPI)
        band, tofu_band = _title_band(chart.png), _title_band(reference.png)
        # The title was drawn, and not as the boxes DejaVu leaves for every Chinese character.
        assert _ink(band) > 200
        assert ImageChops.difference(band, tofu_band).getbbox() is not None


def bar_centres(png: bytes) -> list[float]:
    """Where the bars are (pixel rows of their centres): scans the column where the bars start
    for runs of the bar colour."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colour = tuple(int(BAR_COLOUR[i : i + 2], 16) for i in (1, 3, 5))
    width, height = image.size
    pixels = image.load()
    assert pixels is not None

    def is_bar(x: int, y: int) -> bool:
        pixel = pixels[x, y]
        assert isinstance(pixel, tuple)
        return all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=True))

    column = (
        next(x for x in range(width) if sum(is_bar(x, y) for y in range(0, height, 2)) > 10) + 2
    )
    centres, start = [], None
    for y in range(height):
        if is_bar(column, y) and start is None:
            start = y
        elif not is_bar(column, y) and start is not None:
            centres.append((start + y) / 2)
            start = None
    return centres


def bar_pitch_on_phone(png: bytes) -> float:
    """The distance between two bars' centres (one label per bar) when the chart is shown
    PHONE_PX wide."""
    centres = bar_centres(png)
    if len(centres) < 2:
        return float("inf")
    width = Image.open(io.BytesIO(png)).size[0]
    return min(b - a for a, b in itertools.pairwise(centres)) * PHONE_PX / width


def test_charts_read_on_a_phone() -> None:
    """Issue 19 item 16: a school of 30 classes and 23 中图法 classes, shown 360 px wide."""
    from services.stats.figures import BookCount, Count, Stats

    classes = [
        Count(f"{g}({n})班", n + 5)
        for g in ("初一", "初二", "初三", "高一", "高二", "高三")
        for n in range(1, 6)
    ]
    clc = [Count(letter, 60 - i) for i, letter in enumerate("IKGHBJOTQRDPXNEFACSUVZ")]
    books = [BookCount(i, f"很长很长的书名第{i}册：副标题", 30 - i) for i in range(10)]
    stats = Stats(
        Scope.school(),
        SEPTEMBER,
        1300,
        900,
        880,
        500,
        400,
        2000,
        clc,
        books,
        [],
        [],
        [],
        0,
        0,
        [],
        0,
        0,
        classes,
    )
    # Every text size is at least MIN_TEXT_PX tall at phone width.
    for points in (LABEL_PT, VALUE_PT, TITLE_PT):
        assert text_px_on_phone(points) >= MIN_TEXT_PX
    charts = {c.name: c.png for c in render_charts(stats)}
    for name, png in charts.items():
        assert Image.open(io.BytesIO(png)).size[0] == int(WIDTH_IN * DPI)
        # One bar per label row, far enough apart for the labels between them.
        assert bar_pitch_on_phone(png) >= MIN_TEXT_PX, name
    # Fewer bars: the largest 中图法 classes, the rest as one; every class of the school.
    assert len(bar_centres(charts["clc"])) == MAX_CLC_BARS
    assert len(bar_centres(charts["top_books"])) == 10
    assert len(bar_centres(charts["classes"])) == 30


async def test_report_files_pdf_text_and_tables(db: Database, tmp_path: Path) -> None:
    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        stats = await compute(s, Scope.grade("高一"), SEPTEMBER, tz=TZ, now=NOW)
        weeding = await weeding_list(s, years=5, now=NOW)
    written = write_report(tmp_path, stats, TZ, render_charts(stats), weeding)
    names = {p.name for p in written}
    assert {"report.pdf", "clc.png", "top_books.png", "summary.csv", "weeding.csv"} <= names
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "report.pdf").pages)
    # The figures and their Chinese labels come back out as text.
    for expected in ("生均借书", "2.00", "借书率", "100.0%", "流通率", "50.0%", "高一", "三体"):
        assert expected in text, expected
    assert "2026-09-01 至 2026-09-30" in text
    # Selectable because the font travels inside the file with its Unicode map.
    resources: Any = PdfReader(tmp_path / "report.pdf").pages[0]["/Resources"]
    fonts = resources["/Font"]
    for ref in fonts.values():
        font = ref.get_object()
        descendant = font["/DescendantFonts"][0].get_object()
        assert "/ToUnicode" in font
        assert "/FontFile2" in descendant["/FontDescriptor"].get_object()
    with (tmp_path / "summary.csv").open(encoding="utf-8-sig") as fh:
        summary = {row[0]: row[1] for row in csv.reader(fh)}
    assert summary["生均借书"] == "2.00"
    assert summary["流通率"] == "50.0%（5/10）"
    with (tmp_path / "weeding.csv").open(encoding="utf-8-sig") as fh:
        weeding_rows = list(csv.reader(fh))
    assert [row[0] for row in weeding_rows][1:] == ["B12", "B7"]
    # 中图法 numbers come with the name of their class (旧书 is Z228: 综合性图书).
    assert weeding_rows[0][2:4] == ["中图法分类号", "类名"]
    assert weeding_rows[1][2:4] == ["Z228", "综合性图书"]


async def test_report_as_xlsx(db: Database, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        stats = await compute(s, Scope.klass("高二(1)班"), SEPTEMBER, tz=TZ, now=NOW)
    written = write_report(tmp_path, stats, TZ, render_charts(stats), None, xlsx=True)
    book = load_workbook(tmp_path / "report.xlsx")
    overview = {row[0]: row[1] for row in book["总览"].iter_rows(values_only=True)}
    assert overview["生均借书"] == "0.50"
    # 赵四's loan came back two days late: returned late, not overdue.
    assert list(book["逾期归还（已还，但晚于应还日期）"].iter_rows(values_only=True))[1][-1] == 2
    owed = list(book["逾期未还（到统计截止日仍未归还）"].iter_rows(values_only=True))
    assert len(owed) == 1  # the header only: nothing is owed
    assert not [p for p in written if p.suffix == ".csv"]


def test_font_is_a_cjk_font() -> None:
    from fontTools.ttLib import TTCollection, TTFont

    path = cjk_font()
    font = TTCollection(str(path)).fonts[0] if path.suffix.lower() == ".ttc" else TTFont(path)
    assert ord("借") in font.getBestCmap()


@pytest.fixture(autouse=True)
def _agg() -> None:
    matplotlib.use("Agg")


async def test_long_tables_are_cut_in_the_pdf_not_in_the_csv(db: Database, tmp_path: Path) -> None:
    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        stats = await compute(s, Scope.school(), SEPTEMBER, tz=TZ, now=NOW)
    many = replace(stats, overdue=stats.overdue * 45)  # 45 rows
    write_report(tmp_path, many, TZ, [], None)
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "report.pdf").pages)
    assert "只列出前 40 条，共 45 条" in text
    with (tmp_path / "overdue.csv").open(encoding="utf-8-sig") as fh:
        assert len(list(csv.reader(fh))) == 46


async def test_typed_text_never_becomes_a_formula(db: Database, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        stats = await compute(s, Scope.school(), SEPTEMBER, tz=TZ, now=NOW)
    evil = replace(stats.suggestions[0], query='=HYPERLINK("http://x","y")')
    stats = replace(stats, suggestions=[evil])
    write_report(tmp_path / "c", stats, TZ, [], None)
    write_report(tmp_path / "x", stats, TZ, [], None, xlsx=True)
    with (tmp_path / "c" / "suggestions.csv").open(encoding="utf-8-sig") as fh:
        assert list(csv.reader(fh))[1][0] == '\'=HYPERLINK("http://x","y")'
    cell = load_workbook(tmp_path / "x" / "report.xlsx")["荐购汇总"]["A2"]
    assert cell.data_type == "s" and cell.value.startswith("'=")
