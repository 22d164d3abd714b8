"""The printable binding sheet: one A4 page per class (class name and date in the header), one
cut-out slip per reader with a QR code of the bot's deep link ``https://t.me/<bot>?start=<code>``
(scanning it opens the bot and binds), the code itself for ``/bind`` and the card number. A
school running the web chat (bot/web) gets its sign-in link ``<web>/?code=<code>`` as a QR code
too: the only one without a bot, the second (below the Telegram one, both smaller) beside it.

The QR codes are drawn as vector squares from segno's module matrix (crisp at any printer
resolution); the text uses the installed CJK font, embedded like the statistics report's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

import segno

from services.i18n import t
from services.readers.binding import IssuedCode
from services.school_order import class_key
from services.stats.reports.fonts import cjk_font

if TYPE_CHECKING:
    from fpdf import FPDF

# A4 in millimetres; 5 × 10 slips hold a class of 50 on one page (a larger class runs on).
PAGE_W, PAGE_H, MARGIN, HEADER_H = 210.0, 297.0, 10.0, 17.0
COLUMNS, ROWS = 5, 10
SLIP_W = (PAGE_W - 2 * MARGIN) / COLUMNS
SLIP_H = (PAGE_H - 2 * MARGIN - HEADER_H) / ROWS
QR_MM = 19.0
QR_BORDER = 2  # quiet-zone modules inside the QR square (the slip's margin adds to it)
# Two QR codes on one slip (Telegram above, the web chat below): each this size.
QR_SMALL_MM = 12.5


def deep_link(bot_username: str, code: str) -> str:
    """The Telegram link that opens the bot with ``/start <code>`` (binding at once)."""
    return f"https://t.me/{bot_username.lstrip('@')}?start={code}"


def web_link(web_url: str, code: str) -> str:
    """The web chat's sign-in link: the page opens with the code filled in."""
    return f"{web_url.rstrip('/')}/?code={code}"


def qr_runs(payload: str) -> tuple[int, list[tuple[int, int, int]]]:
    """The QR symbol for ``payload`` as its size in modules (quiet zone included) and the dark
    runs ``(row, first column, length)`` to draw: one rectangle per run, not per module."""
    qr = segno.make_qr(payload)
    runs: list[tuple[int, int, int]] = []
    for y, row in enumerate(qr.matrix_iter(border=QR_BORDER)):
        x = 0
        for dark, cells in groupby(row):
            length = len(list(cells))
            if dark:
                runs.append((y, x, length))
            x += length
    size = int(qr.symbol_size(border=QR_BORDER)[0])
    return size, runs


@dataclass(frozen=True, slots=True)
class ClassPage:
    class_name: str
    codes: list[IssuedCode]


def by_class(codes: Sequence[IssuedCode]) -> list[ClassPage]:
    """Classes in the school's order (readers without one last), readers by card number within
    each."""
    named = sorted(codes, key=lambda c: (class_key(c.class_name), c.card_no))
    return [
        ClassPage(name or t("binding_sheet.no_class"), list(group))
        for name, group in groupby(named, key=lambda c: c.class_name)
    ]


def write_binding_sheet(
    path: Path,
    codes: Sequence[IssuedCode],
    *,
    bot_username: str = "",
    web_url: str = "",
    issued_on: date,
) -> int:
    """Write the sheet as a PDF; returns its page count (one per class of up to 50). Each slip
    has the Telegram deep link (with ``bot_username``), the web chat's sign-in link (with
    ``web_url``), or both."""
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.add_font("cjk", fname=str(cjk_font()), collection_font_number=0)
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    for page in by_class(codes):
        for chunk in _chunks(page.codes, COLUMNS * ROWS):
            pdf.add_page()
            _header(pdf, page.class_name, issued_on, len(page.codes), bot_username, web_url)
            for n, code in enumerate(chunk):
                x = MARGIN + (n % COLUMNS) * SLIP_W
                y = MARGIN + HEADER_H + (n // COLUMNS) * SLIP_H
                _slip(pdf, x, y, code, bot_username, web_url)
    pdf.output(str(path))
    return int(pdf.page_no())


def _chunks(items: list[IssuedCode], size: int) -> Iterator[list[IssuedCode]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _header(
    pdf: FPDF, class_name: str, issued_on: date, count: int, bot_username: str, web_url: str
) -> None:
    pdf.set_xy(MARGIN, MARGIN)
    pdf.set_font("cjk", size=14)
    title = t("binding_sheet.title", class_name=class_name)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=8)
    key = "binding_sheet.subtitle"
    if web_url:
        key = "binding_sheet.subtitle_both" if bot_username else "binding_sheet.subtitle_web"
    line = t(key, date=issued_on.isoformat(), count=count)
    pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")


def _fit(pdf: FPDF, text: str, width: float, size: float, smallest: float = 5.0) -> None:
    """The largest font size up to ``size`` at which ``text`` fits ``width``."""
    pdf.set_font("cjk", size=size)
    while size > smallest and pdf.get_string_width(text) > width:
        size -= 0.5
        pdf.set_font("cjk", size=size)


@dataclass(frozen=True, slots=True)
class PlacedLine:
    """One line of a slip's text: where it goes and at what size (mm and pt)."""

    text: str
    size: float
    x: float
    y: float
    width: float  # the room it has
    height: float


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """``text`` in lines no wider than ``width`` at the current font: broken at spaces where it
    can be, inside a word (a long name, a date) where it must."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and pdf.get_string_width(candidate) <= width:
            lines[-1] = candidate
            continue
        piece = ""
        for ch in word:
            if piece and pdf.get_string_width(piece + ch) > width:
                lines.append(piece)
                piece = ""
            piece += ch
        lines.append(piece)
    return lines or [""]


def _fitted(
    pdf: FPDF, text: str, width: float, size: float, smallest_on_one_line: float
) -> tuple[float, list[str]]:
    """A size and lines for ``text`` in ``width``: one line while it stays at least
    ``smallest_on_one_line`` pt, else two lines at that size (smaller if two are not enough)."""
    current = size
    while current >= smallest_on_one_line:
        pdf.set_font("cjk", size=current)
        if pdf.get_string_width(text) <= width:
            return current, [text]
        current -= 0.5
    current = smallest_on_one_line
    while True:
        pdf.set_font("cjk", size=current)
        lines = _wrap(pdf, text, width)
        if len(lines) <= 2 or current <= 4.0:
            return current, lines[:2]
        current -= 0.5


def slip_lines(
    pdf: FPDF,
    x: float,
    y: float,
    code: IssuedCode,
    *,
    qr_mm: float = QR_MM,
    more: Sequence[tuple[str, float, float]] = (),
) -> list[PlacedLine]:
    """The name, the card number and the expiry beside the QR code (``qr_mm`` wide), then
    ``more`` lines (text, size, smallest size), each inside the slip: a line too long for the
    column at a readable size goes onto two lines (有效期至 / the date)."""
    text_x, text_w = x + qr_mm + 1.5, SLIP_W - qr_mm - 2.5
    lines = (
        (code.name, 9.0, 7.0),
        (t("cli.codes_sheet_card", card_no=code.card_no), 6.5, 5.5),
        (t("cli.codes_sheet_expires", date=code.expires_at.date().isoformat()), 6.5, 6.0),
        *more,
    )
    placed: list[PlacedLine] = []
    top = y + 2
    for text, size, smallest in lines:
        chosen, parts = _fitted(pdf, text, text_w, size, smallest)
        height = chosen * 0.5  # pt to a comfortable line height in mm
        for part in parts:
            placed.append(PlacedLine(part, chosen, text_x, top, text_w, height))
            top += height
    return placed


def _qr(pdf: FPDF, x: float, y: float, size: float, payload: str) -> None:
    modules, runs = qr_runs(payload)
    module = size / modules
    pdf.set_fill_color(0, 0, 0)
    for row, column, length in runs:
        pdf.rect(x + column * module, y + row * module, length * module, module, style="F")


def _slip(pdf: FPDF, x: float, y: float, code: IssuedCode, bot_username: str, web_url: str) -> None:
    pdf.set_draw_color(150, 150, 150)
    pdf.set_dash_pattern(dash=1, gap=1)
    pdf.rect(x, y, SLIP_W, SLIP_H)
    pdf.set_dash_pattern()
    # The code in full width under the QR, for typing as /bind <code> (or into the web page).
    typed = f"/bind {code.code}" if bot_username else code.code
    if bot_username and web_url:
        _qr(pdf, x + 1, y + 0.5, QR_SMALL_MM, deep_link(bot_username, code.code))
        _qr(pdf, x + 1, y + QR_SMALL_MM + 1, QR_SMALL_MM, web_link(web_url, code.code))
        more = ((t("binding_sheet.two_codes"), 5.5, 4.5), (typed, 8.0, 6.0))
        lines = slip_lines(pdf, x, y, code, qr_mm=QR_SMALL_MM, more=more)
    else:
        link = deep_link(bot_username, code.code) if bot_username else web_link(web_url, code.code)
        _qr(pdf, x + 1, y + 1, QR_MM, link)
        lines = slip_lines(pdf, x, y, code)
        pdf.set_xy(x, y + QR_MM + 1.2)
        _fit(pdf, typed, SLIP_W - 2, 11.0)
        pdf.cell(SLIP_W, 4.5, typed, align="C")
    for line in lines:
        pdf.set_font("cjk", size=line.size)
        pdf.set_xy(line.x, line.y)
        pdf.cell(line.width, line.height, line.text)
