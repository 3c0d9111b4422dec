"""A chart description (bot/charts/spec.py) drawn as a PNG with matplotlib's Agg backend.

No display and no pyplot: each chart is its own `Figure` on a `FigureCanvasAgg`, so charts can be drawn
from several threads at once (pyplot keeps global state; the object API does not; matplotlib's docs,
"Embedding in a web application server"). Nothing here decides what a chart says: that is the spec's.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")  # before anything draws: the bot runs with no display

from matplotlib import dates as mdates  # noqa: E402  (the backend must be chosen first)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from bot.charts.spec import BarChart, Chart, Marker, Series, Style, TimeChart  # noqa: E402

WIDTH, HEIGHT, DPI = 1200, 600, 100  # pixels: wide enough for a day's markers, small enough for Slack's preview
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LABEL_FONT_SIZE = 8  # points: a marker's label
LABEL_GAP = 4.0  # pixels between a label and its line, a label and the one above it, a label and the plot's edge
POINT_PAD_SHARE = 0.01  # of a time chart's span, kept past a dot at either end so it is drawn whole

# Markers by kind: the response's moments in colours that read apart, also for the colour-blind (Okabe–Ito).
MARKER_COLORS = {
    "detection": "#D55E00",
    "declared": "#E69F00",
    "paged": "#0072B2",
    "acknowledged": "#009E73",
    "status": "#999999",
    "resolved": "#000000",
    "alert": "#882255",  # a watchdog alert (Tol's wine)
    "diagnostic": "#44AA99",  # a diagnostic run (Tol's teal)
}


@dataclass(frozen=True, slots=True)
class Png:
    """A drawn chart: its PNG bytes and size in pixels."""

    data: bytes
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class LabelBox:
    """Where a marker's label (text turned upright, along its line) is drawn, in pixels inside the plot
    area: `left` from the plot's left edge, `top` down from its top edge; `width` across the time axis
    (the text's line height), `height` along the line (the text's length); `side` of its line."""

    side: Literal["right", "left"]
    left: float
    top: float
    width: float
    height: float

    def overlaps(self, other: LabelBox) -> bool:
        return (self.left < other.left + other.width and other.left < self.left + self.width
                and self.top < other.top + other.height and other.top < self.top + self.height)


def place_labels(xs: Sequence[float], sizes: Sequence[tuple[float, float]], plot_width: float, plot_height: float, *,
                 gap: float = LABEL_GAP) -> list[LabelBox]:
    """Boxes for marker labels that do not collide and stay inside the plot: marker i's line is at
    `xs[i]` pixels from the plot's left edge, its label `sizes[i]` = (width across the axis, length
    along the line) in pixels. In time order, each label takes the first free place by: crossing no
    other marker's line, nearest the top, right of its line before left; a label whose neighbour's
    label is in the way goes below it. Only a label that fits nowhere else overlaps (at the top)."""
    placed: list[LabelBox] = []
    for x, (width, length) in zip(xs, sizes, strict=True):
        sides: list[tuple[Literal["right", "left"], float]] = [("right", x + gap), ("left", x - gap - width)]
        inside = [(side, left) for side, left in sides if left >= 0 and left + width <= plot_width]
        if not inside:  # wider than the room on either side: against the nearer edge
            inside = [("right", max(0.0, min(x + gap, plot_width - width)))]
        tops = sorted({gap, *(b.top + b.height + gap for b in placed)})
        free = [LabelBox(side, left, top, width, length) for side, left in inside for top in tops
                if top + length <= plot_height - gap or top == gap]
        free = [b for b in free if not any(b.overlaps(p) for p in placed)]

        def crosses(box: LabelBox, own: float = x) -> bool:
            return any(box.left < other < box.left + box.width for other in xs if other != own)

        if free:
            placed.append(min(free, key=lambda b: (crosses(b), b.top, b.side != "right")))
        else:
            side, left = inside[0]
            placed.append(LabelBox(side, left, gap, width, length))
    return placed


def figure(chart: Chart, *, width: int = WIDTH, height: int = HEIGHT) -> Figure:
    """`chart` drawn on a `width`×`height` figure of its own (not yet saved): for `render`, and for
    tests that read where its texts landed. Raises ValueError for a chart with nothing to draw."""
    drawn = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(drawn)
    axes = drawn.add_subplot()
    if isinstance(chart, TimeChart):
        _time_chart(drawn, axes, chart)
    else:
        _bar_chart(axes, chart)
    return drawn


def render(chart: Chart, *, width: int = WIDTH, height: int = HEIGHT) -> Png:
    """Draw `chart` as a `width`×`height` PNG. Raises ValueError for a chart with nothing to draw
    (the spec's builder decides that earlier, and says so in words)."""
    buffer = io.BytesIO()
    figure(chart, width=width, height=height).savefig(buffer, format="png", dpi=DPI)
    return Png(buffer.getvalue(), width, height)


def x_range(chart: TimeChart) -> tuple[datetime, datetime]:
    """The time axis's ends: the chart's `start` and `end`, widened to a hundredth of the span past a
    point (Style.POINTS) on or near either end, so a dot drawn there is whole, not cut in half by the
    edge (the report's incidents declared just before it was run). Lines keep the chart's own span."""
    start, end = chart.start, chart.end
    pad = (end - start) * POINT_PAD_SHARE
    dots = [at for s in chart.series if s.style is Style.POINTS for at, value in s.points if value is not None]
    if dots:
        start, end = min(start, min(dots) - pad), max(end, max(dots) + pad)
    return start, end


def _time_chart(drawn: Figure, axes: Axes, chart: TimeChart) -> None:
    if not chart.series:
        raise ValueError(f"{chart.title}: no series to draw")
    zone = ZoneInfo(chart.zone)
    for series in chart.series:
        _draw_series(axes, series, zone)
    for threshold in chart.thresholds:
        axes.axhline(threshold.value, color="#CC0000", linestyle="--", linewidth=1.2, label=threshold.label)
    if not chart.log_scale:
        axes.set_ylim(bottom=chart.y_min, top=axes.get_ylim()[1] * 1.08)  # room above a line at the limit
    markers = sorted(chart.markers, key=lambda m: m.at)
    labelled: set[str] = set()
    for marker in markers:
        legend = marker.kind.capitalize() if marker.kind not in labelled else None
        labelled.add(marker.kind)
        axes.axvline(_local(marker.at, zone), color=MARKER_COLORS.get(marker.kind, "#555555"), linestyle=":",
                     linewidth=1.4, label=legend)
    start, end = x_range(chart)
    axes.set_xlim(_local(start, zone), _local(end, zone))
    if chart.log_scale:
        axes.set_yscale("log")
    locator = mdates.AutoDateLocator(tz=zone)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
    axes.set_xlabel(f"time ({chart.zone})")
    axes.set_ylabel(chart.y_label)
    axes.set_title(chart.title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the plot: never over a line
    if markers:
        _label_markers(drawn, axes, markers, zone)


def _label_markers(drawn: Figure, axes: Axes, markers: Sequence[Marker], zone: ZoneInfo) -> None:
    """Each marker's label beside its line, placed by `place_labels` in the plot's pixels: the labels
    are measured once the layout is settled (they are left out of it: they stay inside the plot)."""
    top = axes.get_ylim()[1]
    ats = [_local(m.at, zone) for m in markers]
    texts = []
    for marker, at in zip(markers, ats, strict=True):
        text = axes.annotate(marker.label, xy=(at, top), xytext=(0, 0), textcoords="offset pixels", rotation=90,
                             va="top", ha="left", fontsize=LABEL_FONT_SIZE,
                             color=MARKER_COLORS.get(marker.kind, "#555555"), annotation_clip=False)
        text.set_in_layout(False)
        texts.append(text)
    drawn.draw_without_rendering()
    renderer = cast(FigureCanvasAgg, drawn.canvas).get_renderer()
    plot = axes.get_window_extent(renderer)
    extents = [t.get_window_extent(renderer) for t in texts]  # upright text: width across the axis, height along
    xs = [float(axes.transData.transform((at, top))[0] - plot.x0) for at in ats]
    boxes = place_labels(xs, [(e.width, e.height) for e in extents], plot.width, plot.height)
    for text, x, box in zip(texts, xs, boxes, strict=True):
        text.xyann = (box.left - x if box.side == "right" else box.left + box.width - x, -box.top)
        text.set_horizontalalignment("left" if box.side == "right" else "right")


def _draw_series(axes: Axes, series: Series, zone: ZoneInfo) -> None:
    times = [_local(at, zone) for at, _ in series.points]
    values = [float("nan") if value is None else value for _, value in series.points]  # NaN: matplotlib leaves a gap
    dashes: str | tuple[int, tuple[int, int]] = (0, (4, 3)) if series.dashed else "-"
    if series.style is Style.STEP:
        axes.step(times, values, where="post", label=series.label, color=series.color, linewidth=series.width, linestyle=dashes)
    elif series.style is Style.POINTS:
        axes.plot(times, values, linestyle="none", marker="o", markersize=5, label=series.label, color=series.color)
    else:
        axes.plot(times, values, label=series.label, color=series.color, linewidth=series.width, linestyle=dashes)


def _bar_chart(axes: Axes, chart: BarChart) -> None:
    if not chart.categories:
        raise ValueError(f"{chart.title}: no categories to draw")
    positions = range(len(chart.categories))
    bottoms = [0.0] * len(chart.categories)
    width = 0.8 / len(chart.stacks) if chart.grouped and chart.stacks else 0.8
    for index, (label, values) in enumerate(chart.stacks):
        heights = [0.0 if v is None else v for v in values]  # None: no bar (height 0 draws none)
        if chart.grouped:  # side by side, centred on the category
            offsets = [p - 0.4 + width * (index + 0.5) for p in positions]
            axes.bar(offsets, heights, width=width, label=label, color=chart.colors.get(label))
        else:
            axes.bar(positions, heights, bottom=bottoms, label=label, color=chart.colors.get(label))
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    axes.set_xticks(list(positions), list(chart.categories), rotation=45 if len(chart.categories) > 8 else 0,
                    ha="right" if len(chart.categories) > 8 else "center", fontsize=8)
    axes.set_ylabel(chart.y_label)
    axes.set_title(chart.title)
    axes.grid(True, axis="y", alpha=0.3)
    if all(v is None or float(v).is_integer() for _, values in chart.stacks for v in values):
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.25 of an incident
    slots = max(len(chart.categories), 4)  # one or two categories keep a bar's width, centred
    middle = (len(chart.categories) - 1) / 2
    axes.set_xlim(middle - slots / 2, middle + slots / 2)
    if len(chart.stacks) > 1:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def _local(moment: datetime, zone: ZoneInfo) -> float:
    """matplotlib's date number of the instant (days since its epoch, UTC); the axis formatter shows it
    in `zone`, so the same instant reads the same on every machine."""
    return float(mdates.date2num(moment.astimezone(zone)))
