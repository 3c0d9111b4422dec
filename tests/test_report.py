"""Incidents over time: `incident-bot report` and `/incident stats`.

A set of incidents is recorded through the real domain services on the bot's store (SQLite and
PostgreSQL), at chosen times in Europe/Paris: one declared before the window, one whose first sign is a
channel message Slack stamped before the declaration, one declared from a message just after midnight
on a Monday (its UTC date is the Sunday before: another ISO week), one across the night summer time
ended (02:30 happened twice), one private, one still open. The report's figures are checked against
numbers worked out by hand and against the postmortem drafted for each incident.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from slack_sdk import WebClient
from sqlalchemy.exc import OperationalError

from bot.charts.render import HEIGHT, WIDTH
from bot.charts.spec import BarChart, Style, TimeChart
from bot.clock import ManualClock
from bot.config import TeamSection
from bot.followups import FollowupService
from bot.incidents import commands as c
from bot.incidents.service import IncidentService
from bot.incidents.values import EntryKind, Incident, Severity, Status
from bot.paging.events import Doer
from bot.paging.service import PagingService
from bot.people import People
from bot.postmortem.draft import human_duration
from bot.postmortem.service import PostmortemService
from bot.postmortem.templates import default_template
from bot.reporting.charts import main_chart, report_charts
from bot.reporting.markdown import render_markdown
from bot.reporting.report import Measure, Report, build_report, percentile90
from bot.reporting.service import ReportService
from bot.reporting.window import SinceError, parse_since
from bot.timeline import ChannelMessage, TimelineService
from handlers import stats, stats_blocks
from handlers.background import Background, ErrorReporter
from handlers.slack_names import SlackNames
from handlers.users import UserDirectory
from simulators.block_kit import message_problems
from simulators.slack import SlackSimulator
from storage.database import make_engine, make_session_factory, migrate, transaction
from storage.timeline import remember_name
from tests.conftest import ALICE, ANNOUNCE, BOB, CAROL, DBA, GENERAL, database_team, start_bot

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 5, 11, 0, tzinfo=UTC)  # Thursday 5 November 2026, 12:00 in Paris
SINCE = NOW - timedelta(days=90)
CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"
{database_team()}
[postmortem]
timezone = "Europe/Paris"
"""
PRIVATE_TITLE = "Payroll export leaked to a vendor"
PRIVATE_CHANNEL = "inc-20261028-incident-5"
PRIVATE_FOLLOWUP = "Rotate the payroll SFTP keys"
PRIVATE_NOTE = "Revoked the payroll export link"


def paris(month: int, day: int, hour: int, minute: int, *, second: int = 0, fold: int = 0) -> datetime:
    """A wall-clock time in Paris in 2026 as the aware UTC time the bot records (`fold=1`: the second of
    a repeated hour, after the clocks went back)."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=PARIS, fold=fold).astimezone(UTC)


@dataclass
class World:
    """The recorded incidents, by number, and the services that recorded them."""

    incidents: IncidentService
    postmortems: PostmortemService
    reports: ReportService
    clock: ManualClock
    numbers: dict[str, int]  # name -> incident number

    def at(self, moment: datetime) -> World:
        assert moment >= self.clock.now(), "the record only moves forward"
        self.clock.advance(moment - self.clock.now())
        return self

    def postmortem_figures(self, number: int) -> dict[str, str]:
        """The key figures the postmortem of incident `number` says, as written."""
        incident = self.incidents.find(str(number))
        assert incident is not None
        markdown = self.postmortems.preview(incident.id)
        return dict(re.findall(r"^\| (Time to \w+) \| ([^|]+?) \|", markdown, flags=re.M))


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_session_factory(engine)
    clock = ManualClock(paris(7, 1, 9, 0))
    teams = {"database": TeamSection(display_name="Database team")}
    incidents = IncidentService(sessions, clock)
    paging = PagingService(sessions, clock, teams, lambda team: [], None, lambda incident: None)
    followups = FollowupService(sessions, clock, timedelta(days=7))
    timeline = TimelineService(sessions, clock)
    postmortems = PostmortemService(sessions, clock, zone=PARIS, template=default_template(),
                                    team_names={"database": "Database team"}, bot_user_id=None, secrets=[])
    reports = ReportService(sessions, clock, zone=PARIS, team_names={"database": "Database team"})
    w = World(incidents, postmortems, reports, clock, {})
    with transaction(sessions) as session:  # names the bot learnt from Slack
        remember_name(session, BOB, "Bob Dupont", clock.now())
    keys = iter(range(1, 1000))

    def declare(name: str, severity: Severity, title: str, *, private: bool = False,
                source: c.SourceMessage | None = None) -> Incident:
        incident = incidents.declare(c.Declare(title, severity, private=private, source=source), ALICE, f"k{next(keys)}").incident
        w.numbers[name] = incident.number
        return incident

    def do(incident: Incident, command: c.IncidentCommand, who: str = ALICE) -> None:
        incidents.apply(incident.id, command, who, f"k{next(keys)}")

    def page(incident: Incident) -> int:
        return paging.request(incidents.get(incident.id), "database", "help", ALICE, f"k{next(keys)}").page.id

    def acknowledge(page_id: int) -> None:
        assert paging.acknowledge(page_id, Doer("Dana Bauer", "Slack"), DBA) is not None

    # Before the window, with a follow-up still open.
    old = declare("old", Severity.SEV3, "Old outage")
    followups.add(old.id, "Retire the old cluster", None, ALICE, f"k{next(keys)}")
    w.at(paris(7, 1, 10, 0))
    do(old, c.Resolve())

    # Its first sign is a message Slack stamped 30 s before the bot's clock said it was declared.
    w.at(paris(10, 12, 9, 15))
    checkout = declare("checkout", Severity.SEV1, "Checkout is timing out & <@U0BOB> is on it")
    incidents.record_channel(checkout.id, "C0CHECKOUT", "inc-20261012-checkout-is-timing-out")
    early = paris(10, 12, 9, 14, second=30)
    assert timeline.capture(ChannelMessage("C0CHECKOUT", f"{int(early.timestamp())}.000000", BOB, "seeing 504s"), "e1").value == "stored"
    w.at(paris(10, 12, 9, 20))
    checkout_page = page(checkout)
    w.at(paris(10, 12, 9, 24))
    acknowledge(checkout_page)
    w.at(paris(10, 12, 10, 5))
    do(checkout, c.AddNote("Restarted the pool", EntryKind.RESOLUTION))
    w.at(paris(10, 12, 10, 10))
    do(checkout, c.SetStatus(Status.MONITORING))
    w.at(paris(10, 12, 11, 45))
    do(checkout, c.Resolve("Rolled back"))
    followups.add(checkout.id, "Alert on pool usage | at 80%", BOB, ALICE, f"k{next(keys)}")
    done = followups.add(checkout.id, "Write the runbook", ALICE, ALICE, f"k{next(keys)}")
    assert done is not None
    followups.mark_done(done.id, ALICE)

    # Declared from a message at 00:20 on Monday 19 October in Paris: Sunday 22:20 in UTC, another ISO week.
    w.at(paris(10, 19, 0, 30))
    message_at = paris(10, 19, 0, 20)
    search = declare("search", Severity.SEV2, "Search returns nothing", source=c.SourceMessage(
        "C0GENERAL", f"{int(message_at.timestamp())}.000000", CAROL, "search is empty for everyone"))
    w.at(paris(10, 19, 1, 0))
    do(search, c.SetStatus(Status.MONITORING))
    w.at(paris(10, 19, 1, 30))
    do(search, c.Resolve())

    # Across the night summer time ends: 01:30 CEST to 02:30 CET, two hours by the clock on the wall's word for one.
    w.at(paris(10, 25, 1, 30))
    night = declare("night", Severity.SEV2, "Night batch stuck")
    w.at(paris(10, 25, 1, 40))
    night_page = page(night)
    w.at(paris(10, 25, 2, 10))
    acknowledge(night_page)
    w.at(paris(10, 25, 2, 30, fold=0))
    do(night, c.SetStatus(Status.MONITORING))
    w.at(paris(10, 25, 2, 30, fold=1))
    do(night, c.Resolve())

    # Private: counted, never named.
    w.at(paris(10, 28, 10, 0))
    secret = declare("private", Severity.SEV3, PRIVATE_TITLE, private=True)
    incidents.record_channel(secret.id, "C0SECRET", PRIVATE_CHANNEL)
    w.at(paris(10, 28, 10, 5))
    page(secret)  # never acknowledged
    w.at(paris(10, 28, 11, 0))
    do(secret, c.AddNote(PRIVATE_NOTE, EntryKind.RESOLUTION))
    followups.add(secret.id, PRIVATE_FOLLOWUP, CAROL, ALICE, f"k{next(keys)}")
    w.at(paris(10, 28, 12, 0))
    do(secret, c.Resolve())

    # Still open.
    w.at(paris(11, 2, 15, 0))
    declare("open", Severity.SEV4, "Slow dashboards")

    w.at(NOW)
    timeline.close()
    yield w
    paging.dispatcher.shutdown(timeout=2)
    engine.dispose()


EXPECTED = {  # seconds, worked out by hand from the times above
    "checkout": {Measure.DETECT: 30, Measure.ACKNOWLEDGE: 570, Measure.MITIGATE: 3030, Measure.RESOLVE: 9030},
    "search": {Measure.DETECT: 600, Measure.ACKNOWLEDGE: None, Measure.MITIGATE: 2400, Measure.RESOLVE: 4200},
    "night": {Measure.DETECT: 0, Measure.ACKNOWLEDGE: 2400, Measure.MITIGATE: 3600, Measure.RESOLVE: 7200},
    "private": {Measure.DETECT: 0, Measure.ACKNOWLEDGE: None, Measure.MITIGATE: 3600, Measure.RESOLVE: 7200},
    "open": {Measure.DETECT: 0, Measure.ACKNOWLEDGE: None, Measure.MITIGATE: None, Measure.RESOLVE: None},
}


def written(seconds: float | None) -> str:
    return "not recorded" if seconds is None else human_duration(timedelta(seconds=int(seconds)))


def test_each_incidents_figures_are_its_postmortems_key_figures(world: World) -> None:
    report = world.reports.report(SINCE, NOW)
    lines = {line.number: line for line in report.incidents}
    assert sorted(lines) == sorted(world.numbers[name] for name in EXPECTED)  # the one before the window is left out
    for name, expected in EXPECTED.items():
        line = lines[world.numbers[name]]
        assert line.seconds == expected, name
        postmortem = world.postmortem_figures(line.number)
        assert postmortem == {m.label: written(line.seconds[m]) for m in Measure}, name
    # The night across the change of time: two hours, though the wall clock went from 01:30 to 02:30.
    night = lines[world.numbers["night"]]
    assert (night.declared_at.astimezone(PARIS).hour, night.declared_at.astimezone(PARIS).minute) == (1, 30)
    assert night.seconds[Measure.RESOLVE] == 2 * 3600


def test_weeks_are_iso_weeks_of_the_configured_zone_and_medians_are_by_severity(world: World) -> None:
    report = world.reports.report(SINCE, NOW)
    counted = {w.label: {s.label: n for s, n in w.counts.items() if n} for w in report.weeks if w.total}
    # The search incident was declared on Monday 19 October in Paris (Sunday 18th in UTC): week 43.
    assert counted == {"2026-W42": {"SEV1": 1}, "2026-W43": {"SEV2": 2}, "2026-W44": {"SEV3": 1}, "2026-W45": {"SEV4": 1}}
    assert report.weeks[0].label == "2026-W32" and report.weeks[-1].label == "2026-W45" and len(report.weeks) == 14
    assert report.weeks[0].start == datetime(2026, 8, 3, tzinfo=PARIS)
    # Week 44 began at 00:00 CET, a week after 00:00 CEST: 169 real hours for week 43.
    w43 = next(w for w in report.weeks if w.label == "2026-W43")
    assert w43.end.astimezone(UTC) - w43.start.astimezone(UTC) == timedelta(hours=169)

    overall = report.overall
    assert overall.incidents == 5
    assert overall.median == {Measure.DETECT: 0, Measure.ACKNOWLEDGE: (570 + 2400) / 2,
                              Measure.MITIGATE: (3030 + 3600) / 2, Measure.RESOLVE: 7200}
    assert overall.measured == {Measure.DETECT: 5, Measure.ACKNOWLEDGE: 2, Measure.MITIGATE: 4, Measure.RESOLVE: 4}
    sev2 = next(m for m in report.by_severity if m.severity is Severity.SEV2)
    assert (sev2.incidents, sev2.median[Measure.DETECT], sev2.median[Measure.RESOLVE]) == (2, 300, (4200 + 7200) / 2)
    assert [m.severity for m in report.by_severity] == [Severity.SEV1, Severity.SEV2, Severity.SEV3, Severity.SEV4]

    # Five incidents over fourteen weeks: medians by month, not of one incident a week.
    assert report.period == "month" and [p.label for p in report.periods] == ["2026-08", "2026-09", "2026-10", "2026-11"]
    resolve = next(t for t in report.trends if t.measure is Measure.RESOLVE)
    assert resolve.medians[Severity.SEV2] == (None, None, (4200 + 7200) / 2, None)
    assert resolve.medians[Severity.SEV4] == (None, None, None, None)  # open: nothing to take a median of

    database = report.pages[0]
    assert (database.team, database.pages, database.acknowledged, database.unacknowledged) == ("Database team", 3, 2, 1)
    assert (database.median_seconds, database.p90_seconds) == ((240 + 1800) / 2, 1800)

    assert [f.text for f in report.open_followups] == ["Alert on pool usage | at 80%"]
    assert (report.private_open_followups, report.earlier_open_followups, report.open_followup_count) == (1, 1, 2)


def test_a_private_incident_is_counted_and_never_named(world: World) -> None:
    report = world.reports.report(SINCE, NOW)
    secret = next(line for line in report.incidents if line.number == world.numbers["private"])
    assert secret.private and secret.title is None and secret.channel is None
    assert report.private_incidents == 1 and sum(w.counts[Severity.SEV3] for w in report.weeks) == 1
    charts = report_charts(report)
    markdown = render_markdown(report, charts)
    text, blocks = stats_blocks.headline(report, 90)
    shown = markdown + text + str(blocks) + "".join(c.chart.title + c.chart.caption + str(c.chart) for c in charts)
    for word in ("Payroll", PRIVATE_CHANNEL, "C0SECRET", "SFTP", PRIVATE_NOTE, CAROL):
        assert word.lower() not in shown.lower(), word
    assert f"| {secret.number} · private incident | SEV3 |" in markdown
    assert "1 follow-up of private incidents, not shown here." in markdown
    # What public incidents show: their title as Markdown, the mention by name, a | kept inside its cell.
    assert "| 2 · Checkout is timing out & Bob Dupont is on it (#inc-20261012-checkout-is-timing-out) | SEV1 |" in markdown
    assert "- Alert on pool usage | at 80% · Bob Dupont · incident 2 (Checkout is timing out & Bob Dupont is on it) · open 24 days" in markdown


def test_the_charts_say_what_the_report_counts(world: World) -> None:
    report = world.reports.report(SINCE, NOW)
    charts = {c.filename: c.chart for c in report_charts(report)}
    assert list(charts) == ["incidents-per-week.png", "time-to-detect.png", "time-to-acknowledge.png", "time-to-mitigate.png",
                            "time-to-resolve.png", "pages-per-team.png", "page-acknowledgement.png"]
    weekly = charts["incidents-per-week.png"]
    assert isinstance(weekly, BarChart) and len(weekly.categories) == 14
    assert dict(weekly.stacks)["SEV2"][weekly.categories.index("W43 19 Oct")] == 2
    assert sum(v or 0 for _, values in weekly.stacks for v in values) == 5
    resolve = charts["time-to-resolve.png"]
    assert isinstance(resolve, TimeChart) and resolve.zone == "Europe/Paris"
    points = {s.label: s for s in resolve.series}
    assert points["SEV2 incident"].style is Style.POINTS
    assert sorted(v or 0 for _, v in points["SEV2 incident"].points) == [4200 / 60, 7200 / 60]
    assert "SEV4 incident" not in points  # the open one has no time to resolve
    # Time to detect has zeros: never on a log scale, which cannot show them.
    detect = charts["time-to-detect.png"]
    assert isinstance(detect, TimeChart) and not detect.log_scale
    ack = charts["page-acknowledgement.png"]
    assert isinstance(ack, BarChart) and ack.grouped and dict(ack.stacks) == {"median": (17.0,), "p90": (30.0,)}
    assert main_chart(report) is not None and main_chart(report).filename == "incidents-per-week.png"  # type: ignore[union-attr]


def test_weeks_before_the_stores_first_incident_are_left_out(world: World) -> None:
    """A window reaching back before anything was recorded (an outside check asked for --since 0001-01-02
    and waited minutes on 105,000 empty weeks and 4.5 GB) shows the weeks from the first incident's on."""
    long_ago = datetime(1950, 1, 1, tzinfo=PARIS)
    report = world.reports.report(long_ago, NOW)
    first = min(line.declared_at for line in report.incidents)
    assert report.records_begin == first and report.since == long_ago
    local = first.astimezone(PARIS)
    assert report.weeks[0].start == datetime.combine(local.date() - timedelta(days=local.weekday()), datetime.min.time(), tzinfo=PARIS)
    assert report.start == report.weeks[0].start and report.weeks[-1].label == "2026-W45"
    assert sum(w.total for w in report.weeks) == len(report.incidents)
    charts = report_charts(report)
    assert all(c.chart.start == report.start for c in charts if isinstance(c.chart, TimeChart))
    assert f"The store's first incident was declared on {local:%Y-%m-%d}" in render_markdown(report, charts)
    # A window that starts after the first incident shows every week it touches, quiet ones too.
    within = world.reports.report(SINCE, NOW)
    assert within.records_begin is None and within.start == SINCE and len(within.weeks) == 14


def test_an_empty_store_shows_no_week_however_far_back_it_is_asked() -> None:
    report = build_report([], since=datetime(1950, 1, 1, tzinfo=UTC), until=NOW, zone=PARIS, team_names={})
    assert report.weeks == [] and report.periods == [] and report_charts(report) == []
    assert "**No incidents were declared in this period.**" in render_markdown(report, [])


def test_no_incidents_no_charts() -> None:
    report = build_report([], since=SINCE, until=NOW, zone=PARIS, team_names={}, earlier_open_followups=2)
    assert report_charts(report) == [] and main_chart(report) is None
    markdown = render_markdown(report, [])
    assert "**No incidents were declared in this period.**" in markdown and ".png" not in markdown
    assert "2 more follow-ups still open belong to incidents declared before this period." in markdown


def test_p90_is_the_nearest_rank() -> None:
    assert percentile90([5]) == 5 and percentile90([1, 2]) == 2 and percentile90(list(range(1, 11))) == 9
    assert percentile90(list(range(1, 21))) == 18 and percentile90([]) is None


@pytest.mark.parametrize("typed", ["90d", "12w", " 7D ", "2026-09-01"])
def test_since_takes_days_weeks_or_a_date(typed: str) -> None:
    since = parse_since(typed, NOW, PARIS)
    expected = {"90d": NOW - timedelta(days=90), "12w": NOW - timedelta(weeks=12), " 7D ": NOW - timedelta(days=7),
                "2026-09-01": datetime(2026, 9, 1, tzinfo=PARIS)}[typed]
    assert since == expected


@pytest.mark.parametrize(("typed", "said"), [
    ("90", "not understood"), ("ninety days", "not understood"), ("3m", "not understood"), ("0d", "empty window"),
    ("2026-02-30", "not a real date"), ("2026-12-01", "not in the past"), ("999999w", "more than a century"), ("", "not understood"),
    ("0001-01-02", "more than a century"), ("1926-08-01", "more than a century"),
])
def test_since_refuses_anything_else_naming_the_right_forms(typed: str, said: str) -> None:
    with pytest.raises(SinceError) as refused:
        parse_since(typed, NOW, PARIS)
    assert said in str(refused.value) and "<n>d" in str(refused.value) and "YYYY-MM-DD" in str(refused.value)


def run_cli(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "cli.toml"
    config.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}  # no Slack needed
    env.update(DATABASE_URL=database_url, INCIDENT_BOT_CONFIG=str(config))
    return subprocess.run([sys.executable, "-m", "handlers.cli", "report", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_cli_writes_the_report_and_the_charts_it_references(world: World, database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ran = run_cli(database_url, tmp_path, "--since", "2026-08-07", "--output", str(out))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == str(out / "report.md")
    markdown = (out / "report.md").read_text()
    referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert sorted(referenced) == pngs and len(pngs) == 7
    for name in pngs:
        with Image.open(out / name) as image:
            image.load()  # decodes the whole image
            assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT)), name
    for word in ("Payroll", PRIVATE_CHANNEL, "SFTP"):
        assert word not in markdown
    # Per incident, the figures as the postmortem writes them.
    rows = {int(n): cells for n, cells in re.findall(r"^\| (\d+) · .*?\| (?:SEV\d) \| \w+ \| [^|]+ \|(.*)\|$", markdown, flags=re.M)}
    for name in EXPECTED:
        number = world.numbers[name]
        said = [cell.strip() for cell in rows[number].split("|")]
        assert said == list(world.postmortem_figures(number).values()), name

    # A second run into the same directory: only what it references stays.
    (out / "time-to-acknowledge.png").write_bytes(b"stale")
    again = run_cli(database_url, tmp_path, "--since", "2026-10-26", "--output", str(out))  # no page acknowledged since
    assert again.returncode == 0, again.stderr
    markdown = (out / "report.md").read_text()
    assert sorted(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)) == sorted(p.name for p in out.glob("*.png"))
    assert not (out / "time-to-acknowledge.png").exists() and "No incident recorded a time to acknowledge" in markdown


def test_the_cli_says_so_when_nothing_was_declared_and_makes_a_new_directory(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    engine.dispose()
    first = run_cli(database_url, tmp_path)
    second = run_cli(database_url, tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    one, two = Path(first.stdout.strip()), Path(second.stdout.strip())
    assert one.parent.parent == tmp_path and one.parent.name.startswith("incident-report-") and one.parent != two.parent
    assert "No incidents were declared" in one.read_text() and not list(one.parent.glob("*.png"))


@pytest.mark.parametrize("since", ["90", "last week", "2026-13-01", "-5d"])  # -5d: not taken for an option
def test_the_cli_refuses_a_bad_since_saying_the_right_forms(since: str, tmp_path: Path) -> None:
    ran = run_cli(f"sqlite:///{tmp_path / 'none.db'}", tmp_path, "--since", since)
    assert ran.returncode == 2 and "<n>d" in ran.stderr and "<n>w" in ran.stderr and "YYYY-MM-DD" in ran.stderr, ran.stderr
    assert not list(tmp_path.glob("incident-report-*"))


def test_the_cli_leaves_a_missing_sqlite_store_missing(tmp_path: Path) -> None:
    """A report changes nothing: pointed at a SQLite file that is not there, it says so and creates none."""
    ran = run_cli(f"sqlite:///{tmp_path / 'typo.db'}", tmp_path)
    assert ran.returncode == 1 and "there is no store at" in ran.stderr, ran.stderr
    assert not list(tmp_path.glob("typo.db*")) and not list(tmp_path.glob("incident-report-*"))


def test_stats_headline_posts_whatever_the_counts(world: World) -> None:
    for report in (world.reports.report(SINCE, NOW), build_report([], since=SINCE, until=NOW, zone=PARIS, team_names={})):
        text, blocks = stats_blocks.headline(report, 90)
        assert message_problems({"text": text, "blocks": blocks}) == []


def test_stats_say_one_as_one(world: World) -> None:
    """An outside check read "1 follow-ups open." in the direct message's text."""
    report = world.reports.report(SINCE, NOW)
    one = replace(report, incidents=report.incidents[:1], open_followups=report.open_followups[:1], private_open_followups=0)
    text, blocks = stats_blocks.headline(one, 90)
    assert "1 incident in the last 90 days" in text and "; 1 follow-up open." in text
    assert "*1 incident* declared" in str(blocks) and "*1 follow-up still open*" in str(blocks)
    text, _ = stats_blocks.headline(report, 90)
    assert f"{len(report.incidents)} incidents in the last 90 days" in text and "; 2 follow-ups open." in text


def test_stats_in_slack_are_sent_by_direct_message_with_the_main_chart(world: World, tmp_path: Path, slack: SlackSimulator,
                                                                       database_url: str) -> None:
    bot = start_bot(tmp_path, slack, database_url, CONFIG, clock=ManualClock(NOW))
    try:
        sent = bot.command("stats", user=BOB, channel=GENERAL)
        assert sent.response.status_code == 200
        assert "by direct message" in sent.response.json()["text"]
        bot.settle()
        opened = slack.calls_to("conversations.open")
        assert [call.params.get("users") for call in opened] == [BOB]
        dm = opened[0].response["channel"]["id"]
        assert dm.startswith("D")
        messages = slack.direct_messages(BOB)
        figures = [m for m in messages if not m.get("files")]
        assert len(figures) == 1
        shown = figures[0]["text"] + str(figures[0]["blocks"])
        assert "5 incidents" in shown and "1 private, counted" in shown
        assert "median TTR 2 hours" in figures[0]["text"] and "2 follow-ups still open" in shown
        for word in ("Payroll", PRIVATE_CHANNEL, "Checkout", "Search returns"):
            assert word not in shown  # no incident is named, private or not
        images = slack.files()
        assert len(images) == 1 and images[0]["name"] == "incidents-per-week.png"
        assert images[0]["ims"] == [dm] and not images[0]["channels"] and not images[0]["groups"]
        with Image.open(io.BytesIO(slack.file_content(images[0]["id"]))) as image:
            assert image.size == (WIDTH, HEIGHT)
        # Nothing anywhere else: no channel message, no ephemeral beyond the acknowledgement.
        posted = [call.params.get("channel") for call in slack.calls_to("chat.postMessage")]
        assert posted == [dm]
        assert slack.messages(GENERAL) == [] and slack.messages(ANNOUNCE) == []
    finally:
        bot.stop()


def test_stats_that_cannot_reach_the_caller_say_why(world: World, tmp_path: Path, slack: SlackSimulator, database_url: str) -> None:
    bot = start_bot(tmp_path, slack, database_url, CONFIG, clock=ManualClock(NOW))
    try:
        slack.fail_next("conversations.open", "user_not_found")
        sent = bot.command("stats", user=BOB, channel=GENERAL, respond_to="stats")
        assert sent.response.status_code == 200
        bot.settle()
        told = slack.responses("stats")
        assert len(told) == 1 and "could not be sent to you" in told[0]["text"] and "`user_not_found`" in told[0]["text"]
        assert "again" not in told[0]["text"].replace("Trying again will not help", "")  # the caller's own account: retrying cannot mend it
        assert slack.direct_messages(BOB) == [] and slack.files() == []
    finally:
        bot.stop()


RETRY = "Try `/incident stats` again"
REINSTALL = "the app must be reinstalled with that scope"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # Slack's answers, not the store, are under test
def test_stats_failures_say_what_failed_and_what_mends_it(world: World, tmp_path: Path, slack: SlackSimulator,
                                                           database_url: str) -> None:
    """A missing scope is named, with the reinstall that grants it, never "try again"; what passes (a Slack
    error, a file server's 5xx) is "try again", never "reinstall"; the token refused goes to whoever runs the
    bot. When the figures reached the DM and only the chart did not, the caller is told only that."""
    cases: list[tuple[str, dict[str, Any], bool, list[str], list[str]]] = [
        # (method, how it fails, figures sent?, said, not said)
        ("conversations.open", {"error": "missing_scope", "needed": "im:write"}, False,
         ["could not be sent to you", "`im:write`", "`conversations.open`", REINSTALL, "docs/install.md"], [RETRY, "files:write"]),
        # Slack may list every scope the method takes: the one the manifest grants for a DM is named.
        ("conversations.open", {"error": "missing_scope", "needed": "channels:write,groups:write,mpim:write,im:write"}, False,
         ["`im:write`", REINSTALL], [RETRY, "mpim:write"]),
        ("conversations.open", {"error": "invalid_auth"}, False,
         ["could not be sent to you", "`invalid_auth`", "`SLACK_BOT_TOKEN`"], [RETRY, REINSTALL]),
        ("chat.postMessage", {"error": "missing_scope", "needed": "chat:write"}, False,
         ["could not be sent to you", "`chat:write`", REINSTALL], [RETRY]),
        ("chat.postMessage", {"error": "internal_error"}, False,
         ["could not be sent to you", "`internal_error`", RETRY], [REINSTALL]),
        ("files.getUploadURLExternal", {"error": "missing_scope", "needed": "files:write"}, True,
         ["are in your direct messages", "chart (Incidents per week", "could not be sent", "`files:write`", REINSTALL],
         ["could not be sent to you", RETRY]),
        ("files.completeUploadExternal", {"error": "missing_scope", "needed": "files:write"}, True,
         ["are in your direct messages", "`files:write`", "`files.completeUploadExternal`", REINSTALL],
         ["could not be sent to you", RETRY]),
        ("upload", {"error": "upstream_error", "http_status": 503}, True,
         ["are in your direct messages", "file server", RETRY], ["could not be sent to you", REINSTALL]),
    ]
    bot = start_bot(tmp_path, slack, database_url, CONFIG, clock=ManualClock(NOW))
    try:
        for n, (method, failure, figures_sent, said, unsaid) in enumerate(cases):
            before = len(slack.direct_messages(BOB))
            slack.fail_next(method, **failure)
            assert bot.command("stats", user=BOB, channel=GENERAL, respond_to=f"stats{n}").response.status_code == 200
            bot.settle()
            told = [r["text"] for r in slack.responses(f"stats{n}")]
            assert len(told) == 1, (method, failure, told)
            for words in said:
                assert words in told[0], (method, failure, words, told[0])
            for words in unsaid:
                assert words not in told[0], (method, failure, words, told[0])
            sent = slack.direct_messages(BOB)[before:]
            assert [bool(m.get("files")) for m in sent] == ([False] if figures_sent else []), (method, failure)
    finally:
        bot.stop()


def test_stats_failures_outside_slack_say_who_mends_them() -> None:
    """The store down a while and Slack out of reach pass: try again. A fault in the bot does not."""
    down = stats.why(OperationalError("SELECT 1", {}, Exception("connection refused")))
    assert down == stats.Why("the bot's database did not answer", stats_blocks.RETRY)
    assert stats.why(ConnectionResetError()) == stats.Why("Slack could not be reached", stats_blocks.RETRY)
    fault = stats.why(KeyError("channel"))
    assert fault == stats.Why("the bot failed (KeyError)", stats_blocks.OPERATOR) and "again" not in fault.remedy


def test_conversations_open_answers_as_slack_does(slack: SlackSimulator) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=slack.bot_token, base_url=slack.base_url)
    first = client.conversations_open(users=ALICE)
    assert set(first.data) == {"ok", "channel"} and set(first["channel"]) == {"id"} and first["channel"]["id"].startswith("D")
    again = client.conversations_open(users=ALICE, return_im=True)
    assert again["channel"]["id"] == first["channel"]["id"] and again["already_open"] and again["no_op"]
    assert again["channel"]["is_im"] and again["channel"]["user"] == ALICE
    assert client.conversations_open(channel=first["channel"]["id"])["channel"]["id"] == first["channel"]["id"]
    slack.add_user("U0GONE", "gone", real_name="Gone", display_name="", deleted=True)
    with pytest.raises(SlackApiError) as refused:  # slack_sdk's conversations_open refuses this before sending
        client.api_call("conversations.open", params={})
    assert refused.value.response["error"] == "users_list_not_supplied"
    for kwargs, error in [({"users": "U0NOBODY"}, "user_not_found"),
                          ({"users": "U0GONE"}, "user_disabled"), ({"users": ",".join([ALICE] * 9)}, "too_many_users"),
                          ({"channel": GENERAL}, "method_not_supported_for_channel_type"), ({"channel": "D0NOTHERE1"}, "channel_not_found")]:
        with pytest.raises(SlackApiError) as refused:
            client.api_call("conversations.open", params=kwargs)
        assert refused.value.response["error"] == error, kwargs


def test_the_report_of_an_empty_store_through_the_service(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    try:
        report = ReportService(make_session_factory(engine), ManualClock(NOW), zone=PARIS, team_names={}).report(SINCE)
        assert report.incidents == [] and report.until == NOW and report.overall.median[Measure.RESOLVE] is None
        assert isinstance(report, Report)
    finally:
        engine.dispose()


def test_the_report_names_people_as_the_postmortem_did_without_asking_slack(tmp_path: Path, slack: SlackSimulator,
                                                                             database_url: str) -> None:
    """Names the bot learnt from Slack (a follow-up's owner checked with users.info, the people a draft
    names) are kept in its store, so the report, which reads only the store, names them as the
    postmortem does: an open incident's follow-up owner before any draft, and after the close."""
    clock = ManualClock(datetime.now(UTC) - timedelta(hours=2))  # the CLI's report runs on the real clock
    bot = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock)
    out = tmp_path / "out"
    try:
        channel = bot.declare("declare sev3 Search results are stale", user=BOB)["id"]
        for text in (f"followup Add an index freshness alert <@{CAROL}>", f"followup Ask <@{ALICE}> for the reindex plan"):
            clock.advance(timedelta(minutes=5))
            assert bot.command(text, user=BOB, channel=channel).response.status_code == 200
            bot.settle()
        assert run_cli(database_url, tmp_path, "--output", str(out)).returncode == 0
        before_close = (out / "report.md").read_text()
        assert "- Add an index freshness alert · Carol Weiss · incident 1 (Search results are stale)" in before_close
        clock.advance(timedelta(minutes=5))
        for text in ("resolve Reindexed", "close"):
            assert bot.command(text, user=BOB, channel=channel).response.status_code == 200
            bot.settle()
        postmortem = next(f["content"] for f in slack.files() if f["name"].endswith(".md"))
    finally:
        bot.stop()
    assert "Add an index freshness alert · owner: Carol Weiss" in postmortem
    assert "Ask alice for the reindex plan · owner: " in postmortem
    ran = run_cli(database_url, tmp_path, "--output", str(out))
    assert ran.returncode == 0, ran.stderr
    report = (out / "report.md").read_text()
    assert "- Add an index freshness alert · Carol Weiss · incident 1 (Search results are stale)" in report
    assert "- Ask alice for the reindex plan · no owner · incident 1" in report
    assert "a person (" not in report and CAROL not in report and ALICE not in report


class StoppedBackground(Background):
    """Takes work and never runs it, as when the process stops before its lanes get to it."""

    def submit(self, key: str | int, task: Callable[[], object], on_error: ErrorReporter | None = None) -> Future[None]:
        skipped: Future[None] = Future()
        skipped.set_result(None)
        return skipped


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_name_a_draft_is_given_is_kept_though_it_was_only_cached(slack: SlackSimulator, database_url: str) -> None:
    """A name users.info gave for a check (a follow-up's owner) sits in the cache; if its remembering never
    ran, the draft that names the person from that cache keeps it in the store then."""
    engine = make_engine(database_url)
    migrate(engine)
    people = People(make_session_factory(engine), ManualClock(NOW))
    background = StoppedBackground()
    client = WebClient(token=slack.bot_token, base_url=slack.base_url)
    users = UserDirectory(client, people, background)
    try:
        assert users.profile(CAROL) is not None and people.names({CAROL}) == {}
        assert SlackNames(client, users).users([CAROL]) == {CAROL: "Carol Weiss"}  # as a draft asks
        assert people.names({CAROL}) == {CAROL: "Carol Weiss"}
        assert len(slack.calls_to("users.info")) == 1  # the draft was answered from the cache
    finally:
        background.shutdown()
        engine.dispose()
