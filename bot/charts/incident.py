"""The connections of one diagnostics target over a stretch of time, as a chart description: what the
watchdog sampled (connections in use, the limit, sessions idle in a transaction) with the response's
moments marked. Pure: the postmortem (one chart per target sampled during the incident) and Slack (the
last hour beside a watchdog alert or a `diag connections` reply) both build their charts here, and tests
compare the description with the stored samples, not pixels.

A sample without figures is a gap, never a zero: a sample the target refused (it was full: itself a
finding, drawn as a point on the limit line) or one that failed (unreachable, timed out). Every time is
an aware datetime; the chart is read in `zone`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from zoneinfo import ZoneInfo

from bot.charts.spec import Marker, Series, Style, Threshold, TimeChart
from bot.wording import counted

MARGIN = timedelta(minutes=10)  # shown before the first sign and after the resolution, at least
MARGIN_SHARE = 0.1  # ... or this share of the incident's span, for a long one
RECENT_LEAST = timedelta(minutes=10)  # the shortest stretch a chart in Slack shows
RECENT_LEAD = timedelta(minutes=1)  # shown before the first recent sample, at least
LIMIT_COLOR = "#CC0000"  # the renderer draws thresholds in this red: a limit that changes is a series in it
# Colours none of the markers use (bot.charts.render.MARKER_COLORS), so a line never reads as a moment.
SERIES_COLORS = {"in use": "#332288", "idle": "#CC79A7"}

# What each kind of marker stands for, in the caption's words, in the order the caption lists them.
MARKER_WORDS = {
    "detection": "the first sign of trouble",
    "declared": "the declaration",
    "paged": "pages",
    "acknowledged": "acknowledgements",
    "status": "status changes",
    "resolved": "the resolution",
    "alert": "the watchdog's alert",
    "diagnostic": "the diagnostic run",
}


@dataclass(frozen=True, slots=True)
class Reading:
    """One watchdog sample of a target (storage.models.WatchdogSample), as a chart needs it: counts are
    None when the sample has no figures; `refused`: the target refused the connection (it was full);
    `error`: why a sample that was not refused has no figures."""

    taken_at: datetime
    in_use: int | None
    usable: int | None
    idle_in_transaction: int | None = None
    refused: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """The stretch a chart shows, both ends included (aware datetimes)."""

    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


@dataclass(frozen=True, slots=True)
class NoChart:
    """A target that gets no chart, and why, in words that follow its name ("`primary`: the watchdog
    recorded no samples from … to …"; the postmortem prints one line per target)."""

    target: str
    reason: str


def incident_window(first_sign: datetime, resolved_at: datetime | None, drafted_at: datetime) -> Window:
    """From the first sign of trouble to the resolution, with a margin on each side of 10 minutes or a
    tenth of the span, whichever is longer; an incident not resolved yet runs to `drafted_at`, and the
    margin after the resolution stops there too (there are no samples from after the draft). Both ends
    are whole minutes (outward), so the caption's times are the axis's own."""
    end = resolved_at if resolved_at is not None else drafted_at
    margin = max(MARGIN, max(end - first_sign, timedelta(0)) * MARGIN_SHARE)
    if resolved_at is not None:
        end = max(resolved_at, min(resolved_at + margin, drafted_at))
    return Window(_minute(first_sign - margin), _minute(end, up=True))


def connections_chart(target: str, readings: Iterable[Reading], moments: Iterable[Marker], window: Window,
                      zone: ZoneInfo, *, title: str) -> TimeChart | NoChart:
    """Connections in use on `target` (a step: the count holds until the next sample) against its limit
    (`usable`: a threshold line, or a series when it changed), and sessions idle in a transaction, over
    `window`, with `moments` inside it as markers. Each sample in the window is a point of both series
    (None where it has no figures); refused samples are also points on the limit line.

    NoChart when the window holds no sample of the target, or none with figures."""
    shown = sorted((r for r in readings if r.taken_at in window), key=lambda r: r.taken_at)
    between = _span(window, zone)
    if not shown:
        return NoChart(target, f"the watchdog recorded no samples {between}")
    read = [r for r in shown if r.in_use is not None]
    refused = [r for r in shown if r.refused]
    failed = [r for r in shown if r.in_use is None and not r.refused]
    if not read:
        if refused and not failed:
            return NoChart(target, f"all {counted(len(shown), 'sample')} {between} were refused: the server "
                                   "was at its connection limit throughout, so there are no figures to draw")
        why = f" (the latest: {_clip(failed[-1].error)})" if failed and failed[-1].error else ""
        return NoChart(target, f"none of the {counted(len(shown), 'sample')} {between} has figures: "
                               f"{len(refused)} refused, {len(failed)} failed{why}")

    series = [
        # Wide and solid under a dashed line: in a leak the two hold the same values, and both must show.
        Series("in use", tuple((r.taken_at, _number(r.in_use)) for r in shown), Style.STEP, SERIES_COLORS["in use"],
               width=3.2),
        Series("idle in a transaction", tuple((r.taken_at, _number(r.idle_in_transaction)) for r in shown),
               Style.STEP, SERIES_COLORS["idle"], dashed=True),
    ]
    thresholds: list[Threshold] = []
    limits = sorted({r.usable for r in read if r.usable is not None})
    if len(limits) == 1:
        thresholds.append(Threshold(float(limits[0]), f"limit ({limits[0]} usable)"))
        limit_words = f"against its limit of {limits[0]} usable connections"
    elif limits:
        series.append(Series("limit (usable)", tuple((r.taken_at, _number(r.usable)) for r in read), Style.STEP, LIMIT_COLOR))
        limit_words = f"against its limit, which changed between {limits[0]} and {limits[-1]} usable connections"
    else:
        limit_words = "(the target reported no limit)"
    if refused and limits:
        series.append(Series("refused: server full", tuple((r.taken_at, _limit_at(r.taken_at, read)) for r in refused),
                             Style.POINTS, LIMIT_COLOR))

    markers = tuple(sorted((m for m in moments if m.at in window), key=lambda m: m.at))
    caption = (f"Connections in use on {target} {limit_words}, and sessions idle in a transaction, "
               f"{_sampling(shown)} by the watchdog {_sampled(shown, window, zone)}, in a chart {between}")
    if refused:
        refused_words = "drawn as points on the limit line" if limits else "left as gaps"
        caption += f"; {counted(len(refused), 'sample')} refused (the server was full), {refused_words}"
    if failed:
        caption += f"; {counted(len(failed), 'sample')} without figures (the target could not be read) left as gaps"
    kinds = [words for kind, words in MARKER_WORDS.items() if any(m.kind == kind for m in markers)]
    if kinds:
        caption += f"; dotted lines mark {_listed(kinds)}"
    return TimeChart(
        title=title, caption=caption + ".", zone=str(zone.key), start=window.start, end=window.end,
        y_label="connections", series=tuple(series), markers=markers, thresholds=tuple(thresholds),
    )


def recent_window(now: datetime, sampled_at: Iterable[datetime], stretch: timedelta, *,
                  least: timedelta = RECENT_LEAST) -> Window:
    """What a chart in Slack shows beside an alert or a diagnostic, up to `now`: the last `stretch`, or
    less when the samples in it (`sampled_at`: the target's sample times) began later, as when the
    watchdog or the target is new: from shortly before the first of them (a tenth of the time since, at
    least a minute), so what there is fills the chart; never less than `least`. The start is a whole
    minute (down); the end is `now`."""
    recent = [at for at in sampled_at if now - stretch <= at <= now]
    start = now - stretch
    if recent:
        first = min(recent)
        start = max(start, first - max(RECENT_LEAD, (now - first) * MARGIN_SHARE))
    return Window(_minute(min(start, now - least)), now)


# --- Words.


def _span(window: Window, zone: ZoneInfo) -> str:
    """"from 09:05 to 11:55 on November 12, 2023 (Europe/Paris)", dates on both ends when they differ;
    seconds on an end that is not a whole minute (a chart in Slack ends at its moment: "to 10:00:37")."""
    start, end = window.start.astimezone(zone), window.end.astimezone(zone)
    if start.date() == end.date():
        return f"from {_clock(start)} to {_clock(end)} on {_date(start)} ({zone.key})"
    return f"from {_date(start)} {_clock(start)} to {_date(end)} {_clock(end)} ({zone.key})"


def _clock(moment: datetime) -> str:
    return f"{moment:%H:%M}" if moment.second == moment.microsecond == 0 else f"{moment:%H:%M:%S}"


def _sampled(shown: Sequence[Reading], window: Window, zone: ZoneInfo) -> str:
    """When the samples themselves were taken, to the second ("from 22:54:49 to 22:56:43", "at 22:54:49"):
    they may fill only part of the chart's window. Dates only when the window spans two days (the
    window's span, which follows, names its one day otherwise)."""
    one_day = window.start.astimezone(zone).date() == window.end.astimezone(zone).date()

    def moment(at: datetime) -> str:
        local = at.astimezone(zone)
        return f"{local:%H:%M:%S}" if one_day else f"{_date(local)} {local:%H:%M:%S}"

    first, last = shown[0].taken_at, shown[-1].taken_at
    return f"at {moment(first)}" if first == last else f"from {moment(first)} to {moment(last)}"


def _date(moment: datetime) -> str:
    return f"{moment:%B} {moment.day}, {moment.year}"


def _sampling(shown: Sequence[Reading]) -> str:
    """"240 samples, one every 30 s": the typical spacing (median), which a skipped sample does not move."""
    if len(shown) == 1:
        return "1 sample taken"
    gaps = [(b.taken_at - a.taken_at).total_seconds() for a, b in zip(shown, shown[1:], strict=False)]
    return f"{len(shown)} samples taken about every {spacing_words(median(gaps))}"


def spacing_words(seconds: float) -> str:
    """A sampling interval as a person says it: whole seconds under 2 minutes ("30 s", "118 s"), whole or
    half minutes under 2 hours ("5 min", "2.5 min"), whole or half hours beyond ("3 h"), so a watchdog set
    to 300 s whose samples drift by a second reads "5 min", never "5.01667 min"."""
    if round(seconds) < 120:
        return f"{round(seconds)} s"
    if round(seconds / 60) < 120:
        return f"{_halves(seconds / 60)} min"
    return f"{_halves(seconds / 3600)} h"


def _halves(value: float) -> str:
    """`value` to the nearest half, "5" or "2.5" (never "5.0")."""
    halves = round(value * 2)
    return str(halves // 2) if halves % 2 == 0 else f"{halves // 2}.5"




def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _clip(text: str | None, limit: int = 120) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _minute(moment: datetime, *, up: bool = False) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor + timedelta(minutes=1) if up and floor != moment else floor


def _number(value: int | None) -> float | None:
    return None if value is None else float(value)


def _limit_at(moment: datetime, read: Sequence[Reading]) -> float | None:
    """The limit last reported before `moment` (else the first reported after it)."""
    before = [r.usable for r in read if r.taken_at <= moment and r.usable is not None]
    after = [r.usable for r in read if r.usable is not None]
    return _number(before[-1] if before else after[0] if after else None)
