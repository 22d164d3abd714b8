"""Charts as PNG bytes (matplotlib's object API with the Agg canvas: no pyplot global state, so
the bot can draw from any task)."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.i18n import t
from services.stats.figures import Stats
from services.stats.reports.fonts import cjk_font, matplotlib_family

# Drawn for a phone: the chat shows a picture about 360 px wide. 4 inches at 180 dpi is 720 px
# (sharp on a 2x screen); at 360 px a 10 pt label is 12.5 px tall. Bars are horizontal, one row
# per class or book, so labels read left to right at full size however many there are; the
# picture grows taller instead (ROW_IN per bar).
WIDTH_IN, DPI = 4.0, 180
HEAD_IN, ROW_IN, MIN_HEIGHT_IN = 0.9, 0.3, 2.4
LABEL_PT, VALUE_PT, TITLE_PT = 10, 9, 12
# Legibility floor: no text smaller than this many pixels when the picture is 360 px wide.
PHONE_PX = 360
MIN_TEXT_PX = 11
# The 中图法 chart keeps its largest classes; the rest are one bar (其他).
MAX_CLC_BARS = 10
BAR_COLOUR = "#3b7dd8"
# rc_context changes matplotlib's process-wide settings: one drawing at a time (the bot draws in
# worker threads).
_DRAWING = threading.Lock()


@dataclass(frozen=True, slots=True)
class Chart:
    name: str  # file stem: clc, top_books, classes
    title: str
    png: bytes


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels, from the PNG header."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def text_px_on_phone(points: float) -> float:
    """How tall text of ``points`` is when the chart is shown ``PHONE_PX`` wide."""
    return points * DPI / 72 * PHONE_PX / (WIDTH_IN * DPI)


def height_in(bars: int) -> float:
    return max(MIN_HEIGHT_IN, HEAD_IN + ROW_IN * max(bars, 1))


def _bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[int],
    *,
    family: str,
    xlabel: str = "",
) -> bytes:
    """Horizontal bars, the first label on top."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    # The CJK family first, DejaVu for anything it lacks.
    with rc_context(
        {
            "font.family": [family, "DejaVu Sans"],
            "axes.unicode_minus": False,
            "font.size": LABEL_PT,
        }
    ):
        fig = Figure(figsize=(WIDTH_IN, height_in(len(labels))), dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        positions = list(range(len(labels)))[::-1]
        bars = ax.barh(positions, values, color=BAR_COLOUR, height=0.7)
        ax.set_yticks(positions, labels, fontsize=LABEL_PT)
        ax.tick_params(axis="x", labelsize=VALUE_PT)
        ax.set_xlabel(xlabel, fontsize=VALUE_PT)
        # Counts: whole-number ticks only; room on the right for the numbers at the bar ends.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        if values:
            ax.set_xlim(0, max(values) * 1.18 or 1)
        ax.bar_label(bars, padding=2, fontsize=VALUE_PT)
        ax.set_title(title, fontsize=TITLE_PT)
        ax.spines[["top", "right"]].set_visible(False)
        if labels:
            ax.set_ylim(-0.6, len(labels) - 0.4)
        else:
            ax.text(
                0.5, 0.5, t("stats.chart_empty"), ha="center", va="center", transform=ax.transAxes
            )
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def render_charts(stats: Stats, *, font: Path | None = None) -> list[Chart]:
    """The report's charts for ``stats``; ``font`` defaults to the installed CJK font."""
    with _DRAWING:
        return _render_charts(stats, font or cjk_font())


def _render_charts(stats: Stats, font: Path) -> list[Chart]:
    family = matplotlib_family(font)
    loans = t("stats.axis_loans")
    charts = []
    title = t("stats.chart_clc")
    clc = [
        (
            f"{c.label} {t(f'stats.clc.{c.label}')}" if c.label.isalpha() else t("stats.clc_none"),
            c.count,
        )
        for c in stats.by_clc
    ]
    if len(clc) > MAX_CLC_BARS:
        others = clc[MAX_CLC_BARS - 1 :]
        rest = (t("stats.clc_other", count=len(others)), sum(count for _, count in others))
        clc = [*clc[: MAX_CLC_BARS - 1], rest]
    charts.append(
        Chart(
            "clc",
            title,
            _bar_chart(
                title, [c[0] for c in clc], [c[1] for c in clc], family=family, xlabel=loans
            ),
        )
    )
    title = t("stats.chart_top_books")
    charts.append(
        Chart(
            "top_books",
            title,
            _bar_chart(
                title,
                [_short(b.title) for b in stats.top_books],
                [b.count for b in stats.top_books],
                family=family,
                xlabel=loans,
            ),
        )
    )
    if len(stats.by_class) > 1:
        title = t("stats.chart_classes")
        charts.append(
            Chart(
                "classes",
                title,
                _bar_chart(
                    title,
                    [c.label for c in stats.by_class],
                    [c.count for c in stats.by_class],
                    family=family,
                    xlabel=loans,
                ),
            )
        )
    return charts


def _short(title: str, limit: int = 10) -> str:
    return title if len(title) <= limit else title[: limit - 1] + "…"
