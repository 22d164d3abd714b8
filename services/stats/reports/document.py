"""The report as text lines and tables, and the files written from them: CSV, xlsx and PDF.

The PDF embeds the CJK font with its Unicode map (fpdf2 subsets TrueType fonts and writes a
ToUnicode CMap), so the Chinese text can be selected and pasted into the term summary."""

from __future__ import annotations

import copy
import csv
import io
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from services.i18n import catalogue, t
from services.stats.figures import ScopeKind, Stats, WeedCandidate
from services.stats.reports.charts import Chart, png_size
from services.stats.reports.fonts import cjk_font

if TYPE_CHECKING:
    from fpdf import FPDF

# A PDF table longer than this shows its first rows and points to the CSV with all of them (a
# large school's overdue list runs to thousands of rows: pages nobody reads, and slow to lay out).
PDF_ROWS = 40
PDF_CHART_MAX_MM = 230


@dataclass(frozen=True, slots=True)
class Table:
    name: str  # file stem
    title: str
    headers: list[str]
    rows: list[list[str | int | float]]


def scope_label(stats: Stats) -> str:
    if stats.scope.kind == ScopeKind.SCHOOL or not stats.scope.name:
        return t("stats.scope_school")
    return stats.scope.name


def period_label(stats: Stats, tz: ZoneInfo) -> str:
    first = stats.period.start.astimezone(tz).date()
    last = (stats.period.end - timedelta(microseconds=1)).astimezone(tz).date()
    return t("stats.period", first=first.isoformat(), last=last.isoformat())


def clc_name(letter: str) -> str:
    """The name of a top class of 中图法 (``I`` → 文学); records without one: 未分类."""
    if not letter.isalpha():
        return t("stats.clc_none")
    return catalogue().get(f"stats.clc.{letter}", "")


def failure_reason(error: str) -> str:
    """Why a reader's notifications fail, in words: the outbox stores the raw error."""
    lowered = error.lower()
    if "forbidden" in lowered or "blocked" in lowered or lowered == "unreachable":
        return t("stats.unreachable_reason.blocked")
    if "binding" in lowered or "endpoint" in lowered:
        return t("stats.unreachable_reason.unbound")
    return t("stats.unreachable_reason.error")


def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def summary(stats: Stats, tz: ZoneInfo) -> list[tuple[str, str]]:
    """(label, value) pairs: the figures a term summary quotes."""
    askers = sum(g.readers for g in stats.suggestions)
    return [
        (t("stats.label_scope"), scope_label(stats)),
        (t("stats.label_period"), period_label(stats, tz)),
        (t("stats.label_students"), str(stats.students)),
        (t("stats.label_loans"), str(stats.loans)),
        (t("stats.label_per_student"), f"{stats.loans_per_student:.2f}"),
        (
            t("stats.label_borrow_rate"),
            t(
                "stats.ratio",
                value=percent(stats.borrow_rate),
                part=stats.borrowers,
                whole=stats.students,
            ),
        ),
        (
            t("stats.label_circulation"),
            t(
                "stats.ratio",
                value=percent(stats.circulation_rate),
                part=stats.copies_lent,
                whole=stats.collection,
            ),
        ),
        (
            t("stats.label_overdue"),
            t("stats.overdue_value", count=stats.overdue_count, days=stats.overdue_days),
        ),
        (
            t("stats.label_returned_late"),
            t(
                "stats.returned_late_value",
                count=len(stats.returned_late),
                days=stats.returned_late_days,
            ),
        ),
        (t("stats.label_unreachable"), str(len(stats.unreachable))),
        (
            t("stats.label_holds"),
            t("stats.holds_value", placed=stats.holds_placed, filled=stats.holds_filled),
        ),
        (
            t("stats.label_suggestions"),
            t("stats.suggestions_value", titles=len(stats.suggestions), readers=askers),
        ),
        (
            t("stats.label_new"),
            t("stats.new_value", titles=stats.new_titles, copies=stats.new_copies),
        ),
    ]


def tables(stats: Stats, tz: ZoneInfo, weeding: list[WeedCandidate] | None = None) -> list[Table]:
    def day(moment: object) -> str:
        from datetime import datetime

        return moment.astimezone(tz).date().isoformat() if isinstance(moment, datetime) else ""

    found = [
        Table(
            "summary",
            t("stats.table_summary"),
            [t("stats.h_item"), t("stats.h_value")],
            [[label, value] for label, value in summary(stats, tz)],
        ),
        Table(
            "clc",
            t("stats.chart_clc"),
            [t("stats.h_clc"), t("stats.h_clc_name"), t("stats.h_loans")],
            [
                [c.label if c.label.isalpha() else "", clc_name(c.label), c.count]
                for c in stats.by_clc
            ],
        ),
        Table(
            "classes",
            t("stats.chart_classes"),
            [t("stats.h_class"), t("stats.h_loans")],
            [[c.label, c.count] for c in stats.by_class],
        ),
        Table(
            "top_books",
            t("stats.chart_top_books"),
            [t("stats.h_title"), t("stats.h_loans")],
            [[b.title, b.count] for b in stats.top_books],
        ),
        Table(
            "top_readers",
            t("stats.table_top_readers"),
            [t("stats.h_name"), t("stats.h_class"), t("stats.h_loans")],
            [[r.name, r.class_name or "", r.count] for r in stats.top_readers],
        ),
        Table(
            "overdue",
            t("stats.table_overdue"),
            [
                t("stats.h_name"),
                t("stats.h_class"),
                t("stats.h_title"),
                t("stats.h_barcode"),
                t("stats.h_due"),
                t("stats.h_days"),
            ],
            [
                [o.name, o.class_name or "", o.title, o.barcode, day(o.due_at), o.days]
                for o in stats.overdue
            ],
        ),
        Table(
            "returned_late",
            t("stats.table_returned_late"),
            [
                t("stats.h_name"),
                t("stats.h_class"),
                t("stats.h_title"),
                t("stats.h_barcode"),
                t("stats.h_due"),
                t("stats.h_returned"),
                t("stats.h_days"),
            ],
            [
                [
                    o.name,
                    o.class_name or "",
                    o.title,
                    o.barcode,
                    day(o.due_at),
                    day(o.returned_at),
                    o.days,
                ]
                for o in stats.returned_late
            ],
        ),
        Table(
            "unreachable",
            t("stats.table_unreachable"),
            [
                t("stats.h_card"),
                t("stats.h_name"),
                t("stats.h_class"),
                t("stats.h_failed"),
                t("stats.h_reason"),
            ],
            [
                [r.card_no, r.name, r.class_name or "", r.count, failure_reason(r.reason)]
                for r in stats.unreachable
            ],
        ),
        Table(
            "suggestions",
            t("stats.table_suggestions"),
            [t("stats.h_title"), t("stats.h_readers"), t("stats.h_status")],
            [
                [g.query, g.readers, t(f"stats.suggestion_status.{g.status}")]
                for g in stats.suggestions
            ],
        ),
    ]
    if weeding is not None:
        found.append(
            Table(
                "weeding",
                t("stats.table_weeding"),
                [
                    t("stats.h_barcode"),
                    t("stats.h_title"),
                    t("stats.h_clc_number"),
                    t("stats.h_clc_name"),
                    t("stats.h_last_lent"),
                ],
                [
                    [
                        w.barcode,
                        w.title,
                        w.clc or "",
                        clc_name((w.clc or "?")[0].upper()),
                        day(w.last_lent_at) or t("stats.never"),
                    ]
                    for w in weeding
                ],
            )
        )
    return found


# Spreadsheets run a cell that starts like a formula; suggestions are typed by anyone.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: str | int | float) -> str | int | float:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(folder: Path, found: list[Table]) -> list[Path]:
    """One CSV per table, UTF-8 with a BOM so that Excel on a school PC opens the Chinese."""
    written = []
    for table in found:
        path = folder / f"{table.name}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(table.headers)
            writer.writerows([_inert(v) for v in row] for row in table.rows)
        written.append(path)
    return written


def write_xlsx(path: Path, found: list[Table]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for table in found:
        sheet = book.create_sheet(table.title[:31])
        sheet.append(table.headers)
        for row in table.rows:
            sheet.append([_inert(v) for v in row])
    book.save(path)
    return path


# A table's heading, its header row and at least this many rows stay together on a page.
PDF_MIN_ROWS_ON_A_PAGE = 3


def _pdf(font: Path) -> FPDF:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    # A .ttc holds several faces; the first is the regular one.
    pdf.add_font("cjk", fname=str(font), collection_font_number=0)
    pdf.set_auto_page_break(auto=True, margin=15)
    return pdf


def _table_block(pdf: FPDF, table: Table, rows: list[list[str | int | float]]) -> None:
    from fpdf.fonts import FontFace

    pdf.ln(4)
    pdf.set_font("cjk", size=13)
    pdf.cell(0, 9, table.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=9)
    # Plain headings: the CJK font has no bold face to emphasise them with. A table that runs
    # onto the next page repeats its header row there (repeat_headings).
    with pdf.table(
        text_align="LEFT",
        headings_style=FontFace(fill_color=(225, 233, 245)),
        repeat_headings=1,
    ) as grid:
        grid.row([str(h) for h in table.headers])
        for row in rows:
            grid.row([str(v) for v in row])


def _breaks(scratch: FPDF, y: float, table: Table, rows: list[list[str | int | float]]) -> bool:
    """Whether the block, started at ``y`` on a page, would run onto another page (laid out
    on a scratch document that is never written)."""
    scratch.add_page()
    scratch.set_y(y)
    page = scratch.page_no()
    _table_block(scratch, table, rows)
    return bool(scratch.page_no() != page)


def _keep_together(
    pdf: FPDF, scratch: FPDF, table: Table, rows: list[list[str | int | float]]
) -> None:
    """A new page first when the table would split but fits on a page of its own, or when a
    long table would leave only its heading and a couple of rows at the foot of this page."""
    if not _breaks(scratch, pdf.get_y(), table, rows):
        return
    if not _breaks(scratch, pdf.t_margin, table, rows):
        pdf.add_page()
        return
    if _breaks(scratch, pdf.get_y(), table, rows[:PDF_MIN_ROWS_ON_A_PAGE]):
        pdf.add_page()


def write_pdf(
    path: Path, stats: Stats, tz: ZoneInfo, charts: list[Chart], found: list[Table]
) -> Path:
    font = cjk_font()
    pdf = _pdf(font)
    # For trying a table's layout first; a copy, as parsing the font again takes seconds.
    scratch = copy.deepcopy(pdf)
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.cell(
        0, 12, t("stats.report_title", scope=scope_label(stats)), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("cjk", size=11)
    for label, value in summary(stats, tz):
        pdf.cell(45, 7, label)
        pdf.cell(0, 7, value, new_x="LMARGIN", new_y="NEXT")
    for chart in charts:
        pdf.ln(3)
        # Drawn narrow and tall for phones: on paper at most 60% of the width and 230 mm high.
        width, height = png_size(chart.png)
        w = min(pdf.epw * 0.6, PDF_CHART_MAX_MM * width / height)
        pdf.image(io.BytesIO(chart.png), w=w, x=pdf.l_margin + (pdf.epw - w) / 2)
    for table in found[1:]:
        if not table.rows:
            continue
        rows = table.rows[:PDF_ROWS]
        _keep_together(pdf, scratch, table, rows)
        _table_block(pdf, table, rows)
        if len(table.rows) > PDF_ROWS:
            pdf.cell(
                0,
                7,
                t("stats.pdf_more", shown=PDF_ROWS, total=len(table.rows), name=table.name),
                new_x="LMARGIN",
                new_y="NEXT",
            )
    pdf.output(str(path))
    return path


def write_report(
    folder: Path,
    stats: Stats,
    tz: ZoneInfo,
    charts: list[Chart],
    weeding: list[WeedCandidate] | None,
    *,
    xlsx: bool = False,
) -> list[Path]:
    """Everything for one report into ``folder``: PNGs, CSVs (or one xlsx) and report.pdf."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for chart in charts:
        png = folder / f"{chart.name}.png"
        png.write_bytes(chart.png)
        written.append(png)
    found = tables(stats, tz, weeding)
    if xlsx:
        written.append(write_xlsx(folder / "report.xlsx", found))
    else:
        written.extend(write_csv(folder, found))
    written.append(write_pdf(folder / "report.pdf", stats, tz, charts, found))
    return written
