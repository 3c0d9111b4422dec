"""Block Kit for `/incident stats`: the headline figures of incidents over time, sent by direct message.

Only counts and durations: no incident is named, so a private incident is counted like any other and
nothing of it (title, channel) reaches whoever asks (docs/design.md, "Private incidents").
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from bot.incidents.values import Severity
from bot.postmortem.draft import human_duration
from bot.reporting.report import Measure, Report
from bot.wording import counted
from handlers import mrkdwn
from handlers.blocks import SEVERITY_ICON
from handlers.mrkdwn import Block

ACKNOWLEDGED = ":bar_chart: Working out the figures of the last {days} days; sending them to you by direct message."


def headline(report: Report, days: int) -> tuple[str, list[Block]]:
    """The DM: incidents of the last `days` days by severity, the median key figures over all of them
    (and how many recorded each), the follow-ups still open, and where the full report is."""
    zone = ZoneInfo(report.zone)
    period = f"the last {days} days (to {report.until.astimezone(zone):%Y-%m-%d %H:%M} {report.zone})"
    count = len(report.incidents)
    if not count:
        text = f"No incidents were declared in {period}."
        return mrkdwn.message(text, [mrkdwn.section(f":bar_chart: {text}"), _followups(report)])
    severities = "  ·  ".join(f"{SEVERITY_ICON[s]} {s.label}: {c.incidents}" for s in Severity
                              for c in report.by_severity if c.severity is s)
    private = f" ({report.private_incidents} private, counted)" if report.private_incidents else ""
    title = f":bar_chart: *{counted(count, 'incident')}* declared in {period}{private}"
    medians = [f"*Median {m.label.lower()}*\n{_median(report, m)}" for m in Measure]
    text = (f"{counted(count, 'incident')} in the last {days} days; "
            + "; ".join(f"median {m.abbreviation} {_median(report, m)}" for m in Measure)
            + f"; {counted(report.open_followup_count, 'follow-up')} open.")
    return mrkdwn.message(text, [
        mrkdwn.section(f"{title}\n{severities}"),
        mrkdwn.fields(medians),
        _followups(report),
        mrkdwn.context("Every figure is an incident's postmortem key figure, counted from the first sign of trouble "
                       "recorded; the chart below is incidents per week by severity. `incident-bot report` writes the "
                       "whole report, with every chart."),
    ])


def _median(report: Report, measure: Measure) -> str:
    value, measured = report.overall.median[measure], report.overall.measured[measure]
    if value is None:
        return "not recorded"
    return f"{human_duration(timedelta(seconds=int(value)))} (of {measured})"


def _followups(report: Report) -> Block:
    count = report.open_followup_count
    earlier = f" (and {report.earlier_open_followups} of earlier incidents)" if report.earlier_open_followups else ""
    return mrkdwn.section(f":clipboard: *{counted(count, 'follow-up')} still open*{earlier}")


# What mends a failure (handlers.stats.why picks one). Trying again only for what passes by itself.
RETRY = "Try `/incident stats` again in a few minutes."
# A missing scope stays missing until the app is reinstalled with it: Slack grants scopes at installation
# (docs/install.md, section 1, says how).
REINSTALL = ("Trying again will not help: the app must be reinstalled with that scope. Whoever manages the Slack app "
             "updates its manifest from `slack-app-manifest.yml` (*App Manifest* in the app's settings) and reinstalls "
             "it, as docs/install.md says (“Create the Slack app from the manifest”).")
CHECK_TOKEN = ("Trying again will not help: whoever runs the bot must check its `SLACK_BOT_TOKEN` and that the app "
               "is still installed (docs/install.md, “When something is wrong”).")
NO_USE = "Trying again will not help."
OPERATOR = "Tell whoever runs the bot: its log has the details."


def failed(days: int, said: str, remedy: str) -> str:
    """Told to the caller, ephemerally, when the figures could not be sent (`said`: what went wrong;
    `remedy`: what would mend it; both mrkdwn, from handlers.stats.why)."""
    return f":warning: The figures of the last {days} days could not be sent to you: {said}. {remedy}"


def chart_failed(days: int, title: str, said: str, remedy: str) -> str:
    """Told to the caller when the figures reached the DM and only their chart (`title`) did not."""
    return (f":warning: The figures of the last {days} days are in your direct messages, but their chart "
            f"({mrkdwn.escape(title)}) could not be sent: {said}. {remedy}")
