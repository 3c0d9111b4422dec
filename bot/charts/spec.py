"""What a chart shows, as plain values: series, markers, reference lines and labels, no pixels.

Charts are built in two steps. A pure function of the record (samples, moments, figures) returns one of
these descriptions, which tests compare with what was stored; `bot.charts.render` alone turns a
description into a PNG. So what a chart claims is tested on data, and only its drawing on pixels.

Times are aware datetimes (UTC in the store); `zone` says where the axis is read (the postmortem's
`[postmortem] timezone`). A value of None in a series is a gap: nothing was measured then (a sample the
target refused, a figure not recorded), drawn as a break in the line, never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Style(StrEnum):
    LINE = "line"  # samples joined in time order
    STEP = "step"  # a count that holds until the next sample (connections in use)
    POINTS = "points"  # separate measurements (one per incident), not joined


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a time chart. `points`: (time, value) in time order; value None is a gap."""

    label: str
    points: tuple[tuple[datetime, float | None], ...]
    style: Style = Style.LINE
    color: str | None = None  # a matplotlib colour name; None: the palette's next
    # A line drawn dashed, over the wider solid lines before it: where two series hold the same values
    # (a leak: every connection in use is idle in a transaction) both still show.
    dashed: bool = False
    width: float = 1.8  # the line's width in points


@dataclass(frozen=True, slots=True)
class Marker:
    """A moment of the response drawn as a vertical line: detection, declaration, a page, its
    acknowledgement, a status change, the resolution. `kind` groups markers in the legend and picks
    their colour; `label` is the short text drawn beside the line ("Paged Database team")."""

    at: datetime
    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class Threshold:
    """A horizontal reference line: the connection limit, an alert level."""

    value: float
    label: str


@dataclass(frozen=True, slots=True)
class TimeChart:
    """Values over time on one axis, with the response's moments marked.

    `start`/`end` bound the x axis (aware datetimes); `y_label` names the unit ("connections");
    `caption` says in one sentence what the chart shows and where its figures come from, for the
    postmortem's Markdown and Slack's alt text."""

    title: str
    caption: str
    zone: str  # IANA zone name the axis is labelled in
    start: datetime
    end: datetime
    y_label: str
    series: tuple[Series, ...]
    markers: tuple[Marker, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    y_min: float = 0.0
    log_scale: bool = False  # durations spanning minutes to days


@dataclass(frozen=True, slots=True)
class BarChart:
    """Counts per category (weeks, teams), stacked by `stacks` (label -> one value per category, e.g.
    incidents per severity): the stacks are drawn in the order given. `grouped`: side by side instead
    of stacked, for values that do not add up (a median and a p90). A value of None is no bar."""

    title: str
    caption: str
    categories: tuple[str, ...]
    stacks: tuple[tuple[str, tuple[float | None, ...]], ...]
    y_label: str
    colors: dict[str, str] = field(default_factory=dict)  # stack label -> colour name
    grouped: bool = False


Chart = TimeChart | BarChart
