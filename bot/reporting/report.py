"""Incidents over time: a pure function from the incidents declared in a window to the report's figures.

Per incident, its key figures (time to detect, acknowledge, mitigate, resolve) come from
bot.figures.key_figures, the code that computes the postmortem's, so the two agree to the second. From
them: incidents per ISO week by severity, the medians per severity per week (or per month when there
are too few incidents for a weekly median to mean anything), pages per team with their acknowledgement
times, and the follow-ups still open.

Weeks and months are as the configured zone (`[postmortem] timezone`) sees them: a week runs from
Monday 00:00 local time, and an incident belongs to the week of its declaration. Durations are
differences of aware datetimes, so an incident across a daylight-saving change counts its real length.

Private incidents are counted, never named: their lines carry no title and no channel, and their
follow-ups are counted without their text or owner (docs/design.md, "Private incidents").
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from bot.figures import KeyFigures, LinkedAlert, clock_seconds, first_acknowledgements, key_figures
from bot.followups import FollowupView
from bot.incidents.values import Incident, Severity, Status
from bot.paging.service import PageView
from bot.timeline import TimelineItem, visible

# Medians by week when the window averages at least this many incidents a week; else by month.
WEEKLY_AT_LEAST = 2.0


class Measure(StrEnum):
    """The four key figures, in the order of a response."""

    DETECT = "detect"
    ACKNOWLEDGE = "acknowledge"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"

    @property
    def label(self) -> str:
        return f"Time to {self.value}"

    @property
    def abbreviation(self) -> str:
        return {"detect": "TTD", "acknowledge": "TTA", "mitigate": "TTM", "resolve": "TTR"}[self.value]

    def of(self, figures: KeyFigures) -> int | None:
        """This figure in whole seconds, None when not recorded."""
        match self:
            case Measure.DETECT:
                return figures.time_to_detect
            case Measure.ACKNOWLEDGE:
                return figures.time_to_acknowledge
            case Measure.MITIGATE:
                return figures.time_to_mitigate
            case Measure.RESOLVE:
                return figures.time_to_resolve


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the report reads of one incident. `items`: its timeline entries in recorded order (at least
    those of bot.figures.FIGURE_KINDS and those before its declaration); `alerts`: the watchdog alerts
    linked to it; `open_followups`: its follow-ups not done."""

    incident: Incident
    items: Sequence[TimelineItem] = ()
    pages: Sequence[PageView] = ()
    alerts: Sequence[LinkedAlert] = ()
    open_followups: Sequence[FollowupView] = ()


@dataclass(frozen=True, slots=True)
class IncidentLine:
    """One incident's figures. `title` and `channel` are None for a private incident."""

    number: int
    severity: Severity
    status: Status
    private: bool
    title: str | None  # as Slack stored it (mrkdwn)
    channel: str | None  # its channel's name, without #
    declared_at: datetime
    start: datetime  # the first sign of trouble recorded, which every figure counts from
    seconds: dict[Measure, int | None]  # whole seconds, None: not recorded


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar week (Monday 00:00 local) or month of the configured zone, with the incidents
    declared in it by severity. `start`/`end` are aware datetimes in that zone: compare them with any
    aware time, but subtract them in UTC (Python subtracts two times of one zone by the wall clock, so
    the week summer time ends would read 168 hours, not 169)."""

    label: str  # "2026-W43" or "2026-10"
    start: datetime
    end: datetime
    counts: dict[Severity, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Medians:
    """One severity's (None: every severity) incident count and, per figure, the median in seconds of
    the incidents that recorded it and how many did."""

    severity: Severity | None
    incidents: int
    median: dict[Measure, float | None]
    measured: dict[Measure, int]


@dataclass(frozen=True, slots=True)
class Trend:
    """A figure's medians over time: per severity, one value per period of `Report.periods` (None: no
    incident of that severity recorded it then)."""

    measure: Measure
    medians: dict[Severity, tuple[float | None, ...]]


@dataclass(frozen=True, slots=True)
class TeamPages:
    """Pages sent to one team for the window's incidents (escalations included), and how long each
    waited for its first acknowledgement (from the request to it, the postmortem's Paging section's
    figure). p90 is the nearest-rank 90th percentile."""

    team: str  # display name
    pages: int
    acknowledged: int
    median_seconds: float | None
    p90_seconds: float | None

    @property
    def unacknowledged(self) -> int:
        return self.pages - self.acknowledged


@dataclass(frozen=True, slots=True)
class OpenFollowup:
    """A follow-up not done, of a public incident."""

    incident_number: int
    incident_title: str  # mrkdwn, as stored
    text: str  # mrkdwn, as stored
    owner_id: str | None
    created_at: datetime
    age_days: int  # whole days since it was added


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    zone: str
    incidents: list[IncidentLine]  # by declaration
    # Every week the window touches from the store's first incident on, empty ones too (a quiet week is a
    # finding; a week before anything was recorded is not). None of them when nothing is recorded.
    weeks: list[Period]
    period: Literal["week", "month"]  # what `periods` and the trends are by
    periods: list[Period]
    trends: list[Trend]  # one per Measure, in order
    by_severity: list[Medians]  # severities with incidents, SEV1 first
    overall: Medians
    pages: list[TeamPages]  # most paged first
    open_followups: list[OpenFollowup]  # oldest first
    private_open_followups: int  # of private incidents: counted, never shown
    earlier_open_followups: int = 0  # of incidents declared before the window
    names: dict[str, str] = field(default_factory=dict)  # user id -> display name, for owners and mentions
    # Where the weeks and the charts over time begin: `since`, or when the store's first incident was
    # declared later, the start of that incident's week (`records_begin`).
    shown_since: datetime | None = None
    records_begin: datetime | None = None  # the store's first declaration, when after `since`

    @property
    def start(self) -> datetime:
        return self.shown_since or self.since

    @property
    def private_incidents(self) -> int:
        return sum(1 for line in self.incidents if line.private)

    @property
    def open_followup_count(self) -> int:
        return len(self.open_followups) + self.private_open_followups

    def measured(self, measure: Measure) -> list[IncidentLine]:
        """The incidents that recorded this figure."""
        return [line for line in self.incidents if line.seconds[measure] is not None]


def build_report(recorded: Sequence[Recorded], *, since: datetime, until: datetime, zone: ZoneInfo,
                 team_names: dict[str, str], now: datetime | None = None, earlier_open_followups: int = 0,
                 names: dict[str, str] | None = None, records_begin: datetime | None = None) -> Report:
    """The report on the incidents declared in [since, until) (others in `recorded` are left out).
    `now` ages the open follow-ups (default: `until`); `team_names`: team key -> display name.
    `records_begin`: when the store's first incident was declared (None: the earliest in `recorded`, or
    nothing recorded): the weeks and months shown start no earlier than its week, so `--since` a
    century ago costs what the recorded weeks cost, not 5,000 empty ones."""
    now = now or until
    chosen = sorted((r for r in recorded if since <= r.incident.declared_at < until), key=lambda r: r.incident.declared_at)
    lines = [_line(r) for r in chosen]
    begin = records_begin or min((r.incident.declared_at for r in recorded), default=None)
    later = begin is not None and begin > since
    if begin is None:
        shown = until  # nothing recorded: no week to show
    elif later:
        local = begin.astimezone(zone).date()
        shown = max(since, _local_midnight(local - timedelta(days=local.weekday()), zone))
    else:
        shown = since
    weeks = _weeks(lines, shown, until, zone) if shown < until else []
    period: Literal["week", "month"] = "week" if len(lines) >= WEEKLY_AT_LEAST * len(weeks) else "month"
    periods = weeks if period == "week" else (_months(lines, shown, until, zone) if shown < until else [])
    severities = [s for s in Severity if any(line.severity is s for line in lines)]
    return Report(
        since=since,
        until=until,
        zone=str(zone.key),
        incidents=lines,
        weeks=weeks,
        period=period,
        periods=periods,
        trends=[_trend(m, lines, periods, severities) for m in Measure],
        by_severity=[_medians(s, [line for line in lines if line.severity is s]) for s in severities],
        overall=_medians(None, lines),
        pages=_pages(chosen, team_names),
        open_followups=[
            OpenFollowup(r.incident.number, r.incident.title, f.text, f.owner_id, f.created_at, max(0, (now - f.created_at).days))
            for r in chosen if not r.incident.private for f in r.open_followups if not f.done
        ],
        private_open_followups=sum(1 for r in chosen if r.incident.private for f in r.open_followups if not f.done),
        earlier_open_followups=earlier_open_followups,
        names=dict(names or {}),
        shown_since=shown if shown != since else None,
        records_begin=begin if later else None,
    )


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def percentile90(values: Sequence[float]) -> float | None:
    """Nearest rank: the smallest value at least 90% of the values are at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[math.ceil(0.9 * len(ordered)) - 1])


# --- Helpers.


def _line(recorded: Recorded) -> IncidentLine:
    incident = recorded.incident
    figures = key_figures(incident, recorded.alerts, recorded.items, recorded.pages)
    return IncidentLine(
        number=incident.number,
        severity=incident.severity,
        status=incident.status,
        private=incident.private,
        title=None if incident.private else incident.title,
        channel=None if incident.private else incident.channel_name,
        declared_at=incident.declared_at,
        start=figures.start,
        seconds={m: m.of(figures) for m in Measure},
    )


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """00:00 of `day` in `zone` (a zone that skips midnight gets the instant zoneinfo maps it to)."""
    return datetime.combine(day, time(0), tzinfo=zone)


def _weeks(lines: list[IncidentLine], since: datetime, until: datetime, zone: ZoneInfo) -> list[Period]:
    first = since.astimezone(zone).date()
    last = (until - timedelta(microseconds=1)).astimezone(zone).date()
    monday = first - timedelta(days=first.weekday())
    weeks: list[Period] = []
    while monday <= last:
        year, week, _ = monday.isocalendar()
        start, end = _local_midnight(monday, zone), _local_midnight(monday + timedelta(days=7), zone)
        weeks.append(Period(f"{year}-W{week:02d}", start, end, _counts(lines, start, end)))
        monday += timedelta(days=7)
    return weeks


def _months(lines: list[IncidentLine], since: datetime, until: datetime, zone: ZoneInfo) -> list[Period]:
    first = since.astimezone(zone).date().replace(day=1)
    last = (until - timedelta(microseconds=1)).astimezone(zone).date()
    months: list[Period] = []
    while first <= last:
        following = (first + timedelta(days=32)).replace(day=1)
        start, end = _local_midnight(first, zone), _local_midnight(following, zone)
        months.append(Period(f"{first:%Y-%m}", start, end, _counts(lines, start, end)))
        first = following
    return months


def _counts(lines: list[IncidentLine], start: datetime, end: datetime) -> dict[Severity, int]:
    inside = [line for line in lines if start <= line.declared_at < end]
    return {s: sum(1 for line in inside if line.severity is s) for s in Severity}


def _medians(severity: Severity | None, lines: list[IncidentLine]) -> Medians:
    values = {m: [float(v) for line in lines if (v := line.seconds[m]) is not None] for m in Measure}
    return Medians(severity, len(lines), {m: median(values[m]) for m in Measure}, {m: len(values[m]) for m in Measure})


def _trend(measure: Measure, lines: list[IncidentLine], periods: list[Period], severities: list[Severity]) -> Trend:
    medians = {
        s: tuple(median([float(v) for line in lines if line.severity is s and p.start <= line.declared_at < p.end
                         and (v := line.seconds[measure]) is not None]) for p in periods)
        for s in severities
    }
    return Trend(measure, medians)


def _pages(chosen: list[Recorded], team_names: dict[str, str]) -> list[TeamPages]:
    waits: dict[str, list[float]] = {}
    sent: dict[str, int] = {}
    for r in chosen:
        acks = first_acknowledgements(visible(list(r.items)), r.pages)
        for page in r.pages:
            sent[page.team] = sent.get(page.team, 0) + 1
            waits.setdefault(page.team, [])
            if page.id in acks:
                waits[page.team].append(clock_seconds(page.requested_at, acks[page.id][0]))  # as the postmortem says it
    teams = [
        TeamPages(team_names.get(team, team), count, len(waits[team]), median(waits[team]), percentile90(waits[team]))
        for team, count in sent.items()
    ]
    return sorted(teams, key=lambda t: (-t.pages, t.team))
