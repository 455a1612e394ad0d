"""Horizontal bar charts as plain geometry, drawn as inline SVG by a template macro (no script, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The drawing's size in SVG user units; it scales to the page's width.
WIDTH = 560
LABEL_WIDTH = 190
VALUE_WIDTH = 64
ROW_HEIGHT = 26
BAR_HEIGHT = 16
TOP = 6


@dataclass(frozen=True)
class Series:
    """One kind of segment in a chart: its legend label and its colour class (`c-good`, `c-bad`, ...)."""

    label: str
    tone: str


@dataclass(frozen=True)
class Segment:
    """A part of a bar."""

    series: Series
    value: float
    x: float
    width: float


@dataclass(frozen=True)
class Row:
    """A bar: its label, its segments, and the text after it."""

    label: str
    y: float
    segments: tuple[Segment, ...]
    value_text: str
    end: float


@dataclass(frozen=True)
class Chart:
    """A chart ready to draw."""

    title: str
    rows: tuple[Row, ...]
    legend: tuple[Series, ...]
    width: int
    height: int
    label_width: int
    bar_width: int

    @property
    def empty(self) -> bool:
        """Nothing to draw: no rows, or every value zero."""
        return not any(s.value for r in self.rows for s in r.segments)


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, Sequence[tuple[Series, float]], str | None]],
    *,
    scale: float | None = None,
) -> Chart:
    """Stacked horizontal bars: each row is (label, [(series, value)...], value text or None for the total).

    `scale` is the value a full bar stands for (default: the largest row total), so rows that are
    shares of different wholes can be drawn against one scale.
    """
    bar_width = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    totals = [sum(v for _, v in parts) for _, parts, _ in rows]
    full = scale if scale else max(totals, default=0) or 1
    drawn = []
    legend: dict[str, Series] = {}
    for i, ((label, parts, text), total) in enumerate(zip(rows, totals, strict=True)):
        x = float(LABEL_WIDTH)
        segments = []
        for series, value in parts:
            legend.setdefault(series.label, series)
            width = bar_width * max(0.0, value) / full
            segments.append(Segment(series=series, value=value, x=round(x, 2), width=round(width, 2)))
            x += width
        drawn.append(
            Row(
                label=label,
                y=TOP + i * ROW_HEIGHT,
                segments=tuple(segments),
                value_text=text if text is not None else _number(total),
                end=round(x + 6, 2),
            )
        )
    return Chart(
        title=title,
        rows=tuple(drawn),
        # A legend only where a bar has parts; a row per series says it in its label.
        legend=tuple(legend.values()) if any(len(parts) > 1 for _, parts, _ in rows) else (),
        width=WIDTH,
        height=TOP * 2 + ROW_HEIGHT * max(1, len(drawn)),
        label_width=LABEL_WIDTH,
        bar_width=bar_width,
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def percent(rate: float | None) -> str:
    """A rate as a whole percentage, or a dash."""
    return "—" if rate is None else f"{round(rate * 100)} %"
