"""Charts as PNG bytes (matplotlib's object API with the Agg canvas: no pyplot global state, so
the bot can draw from any task)."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.i18n import t
from services.reports.fonts import cjk_font, matplotlib_family
from services.stats import Stats

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.5, 100  # 800 x 450 px: readable on a phone, small to send
BAR_COLOUR = "#3b7dd8"
# rc_context changes matplotlib's process-wide settings: one drawing at a time (the bot draws in
# worker threads).
_DRAWING = threading.Lock()


@dataclass(frozen=True, slots=True)
class Chart:
    name: str  # file stem: clc, top_books, classes
    title: str
    png: bytes


def _bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[int],
    *,
    family: str,
    horizontal: bool = False,
    ylabel: str = "",
) -> bytes:
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    # The CJK family first, DejaVu for anything it lacks.
    with rc_context({"font.family": [family, "DejaVu Sans"], "axes.unicode_minus": False}):
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        if horizontal:
            positions = list(range(len(labels)))[::-1]
            bars = ax.barh(positions, values, color=BAR_COLOUR)
            ax.set_yticks(positions, labels)
            ax.set_xlabel(ylabel)
        else:
            bars = ax.bar(range(len(labels)), values, color=BAR_COLOUR)
            # A school's thirty classes fit upright, in small print.
            crowded = len(labels) > 15
            ax.set_xticks(
                range(len(labels)),
                labels,
                rotation=90 if crowded else 30 if len(labels) > 8 else 0,
                fontsize=7 if crowded else None,
            )
            ax.set_ylabel(ylabel)
        # Counts: whole-number ticks only.
        (ax.xaxis if horizontal else ax.yaxis).set_major_locator(MaxNLocator(integer=True))
        ax.bar_label(bars, padding=2, fontsize=7 if len(labels) > 15 else None)
        ax.set_title(title, fontsize=15)
        ax.spines[["top", "right"]].set_visible(False)
        if not labels:
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
        f"{c.label} {t(f'stats.clc.{c.label}')}" if c.label.isalpha() else t("stats.clc_none")
        for c in stats.by_clc
    ]
    charts.append(
        Chart(
            "clc",
            title,
            _bar_chart(title, clc, [c.count for c in stats.by_clc], family=family, ylabel=loans),
        )
    )
    title = t("stats.chart_top_books")
    books = [_short(b.title) for b in stats.top_books]
    charts.append(
        Chart(
            "top_books",
            title,
            _bar_chart(
                title,
                books,
                [b.count for b in stats.top_books],
                family=family,
                horizontal=True,
                ylabel=loans,
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
                    ylabel=loans,
                ),
            )
        )
    return charts


def _short(title: str, limit: int = 14) -> str:
    return title if len(title) <= limit else title[: limit - 1] + "…"
