"""The report as Markdown: headline, the charts (by the relative paths they are written to) with a caption
each, and the figures behind them as tables, so the report reads whole without its images.

Durations are written as the postmortem writes its key figures ("4 minutes 12 seconds", "not recorded"),
so a figure can be compared with the postmortem's by eye or by a script. A median of an even count of
values is the mean of the middle two, written to the whole second (truncated).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.incidents.values import Severity
from bot.postmortem.draft import human_duration, offset_label
from bot.reporting.charts import ReportChart
from bot.reporting.report import IncidentLine, Measure, Medians, Report
from bot.slack_markup import Names, Renderer

NOT_RECORDED = "not recorded"


def render_markdown(report: Report, charts: list[ReportChart]) -> str:
    """The report; `charts` are the images written beside it (bot.reporting.charts.report_charts), each
    referenced once by its file name."""
    zone = ZoneInfo(report.zone)
    markup = Renderer(Names(users=report.names), markdown=True, zone=zone)
    by_file = {c.filename: c for c in charts}
    out: list[str] = [f"# Incidents from {_date(report.since, zone)} to {_date(report.until, zone)}", ""]
    out += [
        f"From {_moment(report.since, zone)} to {_moment(report.until, zone)}; times in {report.zone}. Every figure is an "
        "incident's postmortem key figure, from recorded timestamps only (time to detect, acknowledge, mitigate and "
        "resolve, all counted from the first sign of trouble recorded: see docs/postmortem.md).",
        "",
    ]
    if report.records_begin is not None:
        out += [f"The store's first incident was declared on {_date(report.records_begin, zone)}: the weeks before it "
                "are left out, as nothing was recorded then.", ""]
    if not report.incidents:
        out += ["**No incidents were declared in this period.**", ""]
        out += _followups(report, markup)
        return "\n".join(out).rstrip("\n") + "\n"

    out += ["## Headline", ""]
    private = report.private_incidents
    out += [
        f"**{len(report.incidents)} incident{_s(len(report.incidents))}** declared"
        + (f", {private} of them private (counted, never named)" if private else "")
        + f"; **{report.open_followup_count} follow-up{_s(report.open_followup_count)} still open**.",
        "",
        "Medians over the incidents that recorded each figure (how many, in brackets):",
        "",
        "| severity | incidents | " + " | ".join(m.label.lower() for m in Measure) + " |",
        "|---|---|" + "---|" * len(Measure),
        *(_medians_row(row.severity.label if row.severity else "", row) for row in report.by_severity),
        _medians_row("**all**", report.overall),
        "",
    ]

    out += ["## Incidents per week", ""]
    out += _image(by_file.get("incidents-per-week.png"))
    partial = " The first and last weeks may be partial: the period starts and ends inside them."
    out += [f"ISO weeks, Monday 00:00 to Monday 00:00 in {report.zone}; an incident counts in the week it was declared.{partial}", ""]
    severities = [s for s in Severity if any(w.counts[s] for w in report.weeks)]
    out += [
        "| week | from | " + " | ".join(s.label for s in severities) + " | total |",
        "|---|---|" + "---|" * len(severities) + "---|",
        *(f"| {w.label} | {w.start:%Y-%m-%d} | " + " | ".join(str(w.counts[s]) for s in severities) + f" | {w.total} |"
          for w in report.weeks),
        "",
    ]

    out += ["## Time to detect, acknowledge, mitigate and resolve", ""]
    period = "week" if report.period == "week" else "calendar month"
    out += [f"Medians are per {period} here (by week when the period averages two incidents a week or more, else "
            "by month: a median of one or two incidents is no trend).", ""]
    for measure in Measure:
        out += [f"### {measure.label}", ""]
        chart = by_file.get(f"time-to-{measure.value}.png")
        if chart is None:
            out += [f"No incident recorded a {measure.label.lower()} ({_why_none(measure)}).", ""]
            continue
        out += _image(chart)
        out += _trend_table(report, measure)
    out += ["### Per incident", ""]
    out += [
        "| incident | severity | status | declared | " + " | ".join(m.label.lower() for m in Measure) + " |",
        "|---|---|---|---|" + "---|" * len(Measure),
        *(_incident_row(line, markup, zone) for line in report.incidents),
        "",
    ]

    out += ["## Pages", ""]
    if not report.pages:
        out += ["No team was paged for these incidents.", ""]
    else:
        out += _image(by_file.get("pages-per-team.png"))
        out += _image(by_file.get("page-acknowledgement.png"))
        out += [
            "| team | pages | acknowledged | not acknowledged | median time to acknowledge | p90 |",
            "|---|---|---|---|---|---|",
            *(f"| {_cell(t.team)} | {t.pages} | {t.acknowledged} | {t.unacknowledged} | {_duration(t.median_seconds)} | "
              f"{_duration(t.p90_seconds)} |" for t in report.pages),
            "",
            "A page's time to acknowledge runs from its request to its first acknowledgement (in Slack or at the "
            "provider), as in the postmortem's Paging section; p90 is the nearest-rank 90th percentile.",
            "",
        ]
    out += _followups(report, markup)
    return "\n".join(out).rstrip("\n") + "\n"


def _followups(report: Report, markup: Renderer) -> list[str]:
    out = ["## Follow-ups still open", ""]
    if not report.open_followup_count:
        out += ["None: every follow-up of these incidents is done." if report.incidents else "None of this period.", ""]
    for item in report.open_followups:
        owner = markup.user(item.owner_id) if item.owner_id else "no owner"
        title = _one_line(markup.text(item.incident_title))
        out.append(f"- {_one_line(markup.text(item.text))} · {owner} · incident {item.incident_number} ({title}) · "
                   f"open {item.age_days} day{_s(item.age_days)}")
    if report.private_open_followups:
        count = report.private_open_followups
        out.append(f"- {count} follow-up{_s(count)} of private incidents, not shown here.")
    if report.open_followup_count:
        out.append("")
    if report.earlier_open_followups:
        count = report.earlier_open_followups
        out += [f"{count} more follow-up{_s(count)} still open belong{'s' if count == 1 else ''} to incidents declared "
                "before this period.", ""]
    return out


def _image(chart: ReportChart | None) -> list[str]:
    if chart is None:
        return []
    return [f"![{_alt(chart.chart.title)}]({chart.filename})", "", f"*{chart.chart.caption}*", ""]


def _trend_table(report: Report, measure: Measure) -> list[str]:
    trend = next(t for t in report.trends if t.measure is measure)
    severities = list(trend.medians)
    rows = [
        f"| {p.label} | " + " | ".join(_duration(trend.medians[s][i]) for s in severities) + " |"
        for i, p in enumerate(report.periods) if any(trend.medians[s][i] is not None for s in severities)
    ]
    return [
        f"| {report.period} | " + " | ".join(f"{s.label} median" for s in severities) + " |",
        "|---|" + "---|" * len(severities),
        *rows,
        "",
    ]


def _medians_row(label: str, row: Medians) -> str:
    cells = [f"{_duration(row.median[m])} ({row.measured[m]})" if row.measured[m] else NOT_RECORDED for m in Measure]
    return f"| {label} | {row.incidents} | " + " | ".join(cells) + " |"


def _incident_row(line: IncidentLine, markup: Renderer, zone: ZoneInfo) -> str:
    if line.private:
        name = f"{line.number} · private incident"
    else:
        channel = f" (#{line.channel})" if line.channel else ""
        name = f"{line.number} · {_one_line(markup.text(line.title))}{channel}"
    figures = " | ".join(_duration(line.seconds[m]) for m in Measure)
    return f"| {_cell(name)} | {line.severity.label} | {line.status.label} | {_moment(line.declared_at, zone)} | {figures} |"


def _why_none(measure: Measure) -> str:
    return {
        Measure.DETECT: "no incidents",
        Measure.ACKNOWLEDGE: "no page was acknowledged",
        Measure.MITIGATE: "no resolution note and no Monitoring status were recorded",
        Measure.RESOLVE: "none is resolved yet",
    }[measure]


def _duration(seconds: float | None) -> str:
    return NOT_RECORDED if seconds is None else human_duration(timedelta(seconds=int(seconds)))


def _moment(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {offset_label(local)}"


def _date(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    """Text in a table cell: one line, and a `|` that would end the cell escaped (GFM tables)."""
    return _one_line(text).replace("|", "\\|")


def _alt(title: str) -> str:
    """An image's alt text: brackets would end it."""
    return title.replace("[", "(").replace("]", ")")


def _s(count: int) -> str:
    return "" if count == 1 else "s"
