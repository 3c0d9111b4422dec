"""The report's charts as descriptions (bot/charts/spec.py), each with the file name the report gives it.

A chart is made only when it has something to show: no incidents, no chart of them; no page
acknowledged, no chart of acknowledgement times (the Markdown says so in words instead). Figures are
drawn in minutes; a figure spanning more than two orders of magnitude (minutes to days) on a log
scale, which cannot show a zero, so only when every value is above zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.charts.spec import BarChart, Chart, Series, Style, TimeChart
from bot.incidents.values import Severity
from bot.reporting.report import Measure, Period, Report, Trend
from bot.wording import counted

# Severities in colours that read apart, also for the colour-blind (Okabe–Ito), worst the warmest.
SEVERITY_COLORS = {Severity.SEV1: "#D55E00", Severity.SEV2: "#E69F00", Severity.SEV3: "#0072B2", Severity.SEV4: "#009E73"}
LOG_SCALE_SPAN = 100.0  # largest / smallest value at which a figure's chart goes to a log scale


@dataclass(frozen=True, slots=True)
class ReportChart:
    """A chart and the file it is drawn into, relative to the report (`incidents-per-week.png`)."""

    filename: str
    chart: Chart


def report_charts(report: Report) -> list[ReportChart]:
    """Every chart the report has data for, in the order the report shows them."""
    charts = [main_chart(report), *(figure_chart(report, m) for m in Measure), pages_chart(report), acknowledgement_chart(report)]
    return [c for c in charts if c is not None]


def main_chart(report: Report) -> ReportChart | None:
    """Incidents per ISO week by severity (stacked): what `/incident stats` sends too."""
    if not report.incidents:
        return None
    severities = [s for s in Severity if any(w.counts[s] for w in report.weeks)]
    private = f" ({report.private_incidents} private, counted)" if report.private_incidents else ""
    return ReportChart("incidents-per-week.png", BarChart(
        title="Incidents per week, by severity",
        caption=(f"{counted(len(report.incidents), 'incident')}{private} declared from {_day(report.since, report)} to "
                 f"{_day(report.until, report)}, per ISO week of their declaration ({report.zone}), stacked by severity."),
        categories=tuple(_week_label(w) for w in report.weeks),
        stacks=tuple((s.label, tuple(float(w.counts[s]) for w in report.weeks)) for s in severities),
        y_label="incidents",
        colors={s.label: SEVERITY_COLORS[s] for s in severities},
    ))


def figure_chart(report: Report, measure: Measure) -> ReportChart | None:
    """One point per incident that recorded the figure, at its declaration, coloured by severity, and
    each severity's median per period as a step line."""
    measured = [(line, seconds / 60) for line in report.incidents if (seconds := line.seconds[measure]) is not None]
    if not measured:
        return None
    trend = next(t for t in report.trends if t.measure is measure)
    minutes = [m for _, m in measured]
    log_scale = min(minutes) > 0 and max(minutes) / min(minutes) >= LOG_SCALE_SPAN
    series: list[Series] = []
    for severity in Severity:
        points = tuple((line.declared_at, m) for line, m in measured if line.severity is severity)
        if points:
            series.append(Series(f"{severity.label} incident", points, Style.POINTS, SEVERITY_COLORS[severity]))
            series.append(Series(f"{severity.label} median per {report.period}", _steps(trend, severity, report.periods),
                                 Style.STEP, SEVERITY_COLORS[severity]))
    name = measure.label.lower()
    return ReportChart(f"time-to-{measure.value}.png", TimeChart(
        title=f"{measure.label} per incident, and its median per {report.period} by severity",
        caption=(f"{measure.label} of each incident that recorded it ({len(measured)} of {len(report.incidents)}), "
                 f"in minutes{' on a log scale' if log_scale else ''}, at each incident's declaration; the lines are each "
                 f"severity's median per {report.period}. As in the postmortems: {name} from the first sign of trouble recorded."),
        zone=report.zone,
        start=report.start,
        end=report.until,
        y_label="minutes",
        series=tuple(series),
        log_scale=log_scale,
    ))


def pages_chart(report: Report) -> ReportChart | None:
    """Pages per team, acknowledged and not (stacked)."""
    if not report.pages:
        return None
    return ReportChart("pages-per-team.png", BarChart(
        title="Pages per team",
        caption=(f"{counted(sum(t.pages for t in report.pages), 'page')} sent for the period's incidents (escalations "
                 "included), per team: acknowledged, and never acknowledged."),
        categories=tuple(t.team for t in report.pages),
        stacks=(("acknowledged", tuple(float(t.acknowledged) for t in report.pages)),
                ("not acknowledged", tuple(float(t.unacknowledged) for t in report.pages))),
        y_label="pages",
        colors={"acknowledged": "#009E73", "not acknowledged": "#D55E00"},
    ))


def acknowledgement_chart(report: Report) -> ReportChart | None:
    """How long each team's pages waited for an acknowledgement: median and p90, side by side."""
    teams = [t for t in report.pages if t.acknowledged]
    if not teams:
        return None
    return ReportChart("page-acknowledgement.png", BarChart(
        title="Time for a page to be acknowledged, per team",
        caption=("From each page's request to its first acknowledgement, in minutes, over the pages acknowledged: "
                 "the median and the 90th percentile (nearest rank) per team."),
        categories=tuple(f"{t.team} ({t.acknowledged})" for t in teams),
        stacks=(("median", tuple(_minutes(t.median_seconds) for t in teams)),
                ("p90", tuple(_minutes(t.p90_seconds) for t in teams))),
        y_label="minutes",
        colors={"median": "#0072B2", "p90": "#56B4E9"},
        grouped=True,
    ))


def _steps(trend: Trend, severity: Severity, periods: list[Period]) -> tuple[tuple[datetime, float | None], ...]:
    """A severity's medians as steps: each period's value from its start, held to the last one's end."""
    values = [None if v is None else v / 60 for v in trend.medians[severity]]
    points = [(p.start, v) for p, v in zip(periods, values, strict=True)]
    return tuple([*points, (periods[-1].end, values[-1])]) if periods else ()




def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def _week_label(week: Period) -> str:
    return f"{week.label[5:]} {week.start:%d %b}"  # "W43 19 Oct": the week and its Monday


def _day(moment: datetime, report: Report) -> str:
    return f"{moment.astimezone(ZoneInfo(report.zone)):%Y-%m-%d}"
