"""The report across incidents: reading, building and drawing a 90-day report over 500 incidents.

Records `--incidents` incidents over the 90 days before now (not timed) in a temporary SQLite store (or the
given database) through the bot's own services and storage functions: declarations across the four
severities (one in ten private), channel messages (`--messages` each, written with the capture's own
insert), pages to two teams, most acknowledged, resolution notes, a Monitoring status, resolutions (the
newest few left open) and follow-ups, half of them done. Then prints the wall time (median and max of
`--runs`, after one warm-up) and the peak Python memory (tracemalloc, one more call) of:

- reading the store into the report (`ReportService.report`, a handful of queries for the window);
- building the charts' descriptions and the Markdown from it (pure);
- drawing every chart to PNG (`bot.charts.render`: matplotlib's Agg canvas is C++ memory, which
  tracemalloc does not see; the process's resident high-water mark is printed at the end);
- the whole of `incident-bot report`: all of the above and the files written.

Next to two floors measured the same way in the same run: reading the window's incidents alone (the
least any listing of them pays), and drawing as many one-bar charts as the report has (matplotlib's
fixed cost per figure). Checks (exit 1 otherwise): every incident is in the report, the figures of a
sample of incidents are their postmortems' key figures, the report references exactly the PNGs written,
and each decodes at its stated size.

    .venv/bin/python bench/report.py [--incidents 500] [--messages 30] [--runs 5] [--database-url URL]

A PostgreSQL URL names a server: the bench creates a database of its own there and drops it at the end.
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import common
from PIL import Image
from sqlalchemy import insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.charts.render import HEIGHT, WIDTH, render
from bot.charts.spec import BarChart
from bot.config import TeamSection
from bot.followups import FollowupService
from bot.incidents import commands as c
from bot.incidents.service import IncidentService
from bot.incidents.values import EntryKind, Severity, Status
from bot.paging.events import Doer
from bot.paging.service import PagingService
from bot.postmortem.draft import human_duration
from bot.postmortem.service import PostmortemService
from bot.postmortem.templates import default_template
from bot.reporting.charts import report_charts
from bot.reporting.markdown import render_markdown
from bot.reporting.output import write_report
from bot.reporting.report import Measure, Report
from bot.reporting.service import ReportService
from storage import reporting as report_store
from storage.database import make_engine, make_session_factory, migrate, transaction
from storage.models import TimelineEntry

ZONE = ZoneInfo("Europe/Paris")
DAYS = 90
TEAMS = {"database": TeamSection(display_name="Database team"), "sre": TeamSection(display_name="SRE on call")}
TEAM_NAMES = {key: team.display_name or key for key, team in TEAMS.items()}
PEOPLE = ["U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", "U0ERIN"]
CHECKED = 20  # incidents whose figures are compared with their postmortems'


class SetClock:
    """A clock the generator sets to each step's time: incidents overlap, so time does not only go forward."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@dataclass
class Figures:
    name: str
    seconds: list[float]
    peak: int  # bytes, tracemalloc

    def row(self, floor: Figures | None) -> str:
        median, worst = statistics.median(self.seconds) * 1000, max(self.seconds) * 1000
        ratio = f"{median / (statistics.median(floor.seconds) * 1000):.1f}×" if floor else ""
        return f"{self.name:44} {median:10.1f} {worst:9.1f} {self.peak / 2**20:10.1f} {ratio:>8}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=500, help="incidents declared over the 90 days")
    parser.add_argument("--messages", type=int, default=30, help="channel messages per incident (not read by the report)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", help="the bot's store (default: a SQLite file in a temporary folder); "
                        "for PostgreSQL, a database of its own is created on that server and dropped at the end")
    args = parser.parse_args()
    if args.incidents < CHECKED:
        parser.error(f"--incidents must be at least {CHECKED}")
    return 1 if run(args.incidents, args.messages, args.runs, args.database_url)["problems"] else 0


def run(incidents: int = 500, messages: int = 30, runs: int = 5, database_url: str | None = None) -> dict[str, Any]:
    """Record the incidents, measure, print, and return the figures (with `problems`: what the checks found)."""
    with common.store(database_url) as url:
        engine = make_engine(url)
        try:
            return _bench(engine, url, incidents, messages, runs)
        finally:
            engine.dispose()


def _bench(engine: Any, url: str, count: int, messages: int, runs: int) -> dict[str, Any]:
    migrate(engine)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    since = now - timedelta(days=DAYS)
    started = time.perf_counter()
    numbers = _record(sessions, since, now, count, messages)
    print(f"recorded {count} incidents, {count * messages:,} channel messages in {time.perf_counter() - started:.1f} s")

    reports = ReportService(sessions, SetClock(now), zone=ZONE, team_names=TEAM_NAMES)
    report = reports.report(since, now)
    charts = report_charts(report)
    floor_chart = BarChart("floor", "one bar", ("a",), (("n", (1.0,)),), "count")

    def floor_read() -> object:
        with sessions() as session:
            return report_store.declared_between(session, since, now)

    def build() -> object:
        built = report_charts(report)
        return render_markdown(report, built)

    def draw() -> object:
        return [render(chart.chart) for chart in charts]

    def floor_draw() -> object:
        return [render(floor_chart) for _ in charts]

    out = Path(tempfile.mkdtemp(prefix="incident-bot-report-"))

    def whole() -> object:
        return write_report(reports.report(since, now), out)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("floor: read the window's incidents", floor_read),
        ("read: ReportService.report()", lambda: reports.report(since, now)),
        ("build: charts described, Markdown (pure)", build),
        ("floor: as many one-bar charts drawn", floor_draw),
        (f"draw: the {len(charts)} charts to PNG", draw),
        ("incident-bot report: all, files written", whole),
    ]
    try:
        figures = {name: _measure(call, runs) for name, call in steps}
        written = write_report(report, out)
        problems = _check(report, written.report, count, numbers, sessions)
        size = sum(p.stat().st_size for p in written.charts) + written.report.stat().st_size
    finally:
        shutil.rmtree(out, ignore_errors=True)

    print(f"\nstore: {make_url(url).get_backend_name()}; {count} incidents over {DAYS} days "
          f"({report.private_incidents} private), {runs} runs after one warm-up")
    print(f"{'':44} {'median ms':>10} {'max ms':>9} {'peak MiB':>10} {'/ floor':>8}")
    rows = {name: Figures(name, *figures[name]) for name, _ in steps}
    floors = {"read": rows["floor: read the window's incidents"], "draw": rows["floor: as many one-bar charts drawn"]}
    for name, figure in rows.items():
        print(figure.row(floors.get(name.split(":")[0])))
    rss = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"written: report.md and {len(written.charts)} PNGs, {size / 1024:.0f} KiB; max RSS of the process {rss} MB")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if not problems:
        print(f"checked: {count} incidents in the report, {CHECKED} incidents' figures equal to their postmortems', "
              "the PNGs referenced exactly and each decoding at its size")
    return {
        "store": make_url(url).get_backend_name(), "incidents": count, "messages": messages, "runs": runs,
        "steps": [{"name": name, "median_ms": statistics.median(f.seconds) * 1000, "max_ms": max(f.seconds) * 1000,
                   "peak_mib": f.peak / 2**20} for name, f in rows.items()],
        "max_rss_mb": rss, "problems": problems,
    }


def _measure(call: Callable[[], object], runs: int) -> tuple[list[float], int]:
    """Wall seconds of `runs` calls after a warm-up, and the tracemalloc peak (bytes) of one more call."""
    call()
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    gc.collect()
    tracemalloc.start()
    try:
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return times, peak


def _record(sessions: sessionmaker[Session], since: datetime, until: datetime, count: int, messages: int) -> list[int]:
    """The incidents, through the bot's services (their rules, their timeline entries); messages with the
    capture's Core insert. Returns their numbers."""
    rng = random.Random(16)
    clock = SetClock(since)
    incidents = IncidentService(sessions, clock)
    paging = PagingService(sessions, clock, TEAMS, lambda team: [], None, lambda incident: None)
    followups = FollowupService(sessions, clock, timedelta(days=7))
    span = (until - since - timedelta(days=1)).total_seconds()
    moments = sorted(since + timedelta(seconds=rng.uniform(0, span)) for _ in range(count))
    numbers: list[int] = []
    keys = iter(range(1, 10**9))

    def at(moment: datetime) -> None:
        clock.at = moment

    def key() -> str:
        return f"bench:{next(keys)}"

    for index, declared in enumerate(moments):
        at(declared)
        severity = rng.choices(list(Severity), weights=[5, 20, 45, 30])[0]
        incident = incidents.declare(c.Declare(f"Incident {index}: {rng.choice(TITLES)}", severity,
                                               private=rng.random() < 0.1), rng.choice(PEOPLE), key()).incident
        numbers.append(incident.number)
        channel = f"C0BENCH{index:05d}"
        incidents.record_channel(incident.id, channel, f"inc-bench-{index}")
        with transaction(sessions) as session:
            session.execute(insert(TimelineEntry), [
                {"incident_id": incident.id, "kind": EntryKind.MESSAGE.value, "actor_id": rng.choice(PEOPLE),
                 "occurred_at": declared + timedelta(seconds=rng.uniform(-60, 4 * 3600)), "text": rng.choice(TITLES),
                 "channel_id": channel, "slack_ts": f"{declared.timestamp() + n:.6f}", "data": None}
                for n in range(messages)])
        moment = declared
        if rng.random() < 0.6:
            moment += timedelta(minutes=rng.uniform(1, 20))
            at(moment)
            page = paging.request(incidents.get(incident.id), rng.choice(list(TEAMS)), "help", rng.choice(PEOPLE), key())
            if rng.random() < 0.85:
                at(moment + timedelta(minutes=rng.lognormvariate(1.5, 1.0)))
                paging.acknowledge(page.page.id, Doer("On-call", "Slack"), rng.choice(PEOPLE))
        if index >= count - 5:  # the newest few are still open
            continue
        moment += timedelta(minutes=rng.lognormvariate(3.5, 0.8))
        at(moment)
        incidents.apply(incident.id, c.AddNote("Rolled back", EntryKind.RESOLUTION), rng.choice(PEOPLE), key())
        at(moment + timedelta(minutes=2))
        incidents.apply(incident.id, c.SetStatus(Status.MONITORING), rng.choice(PEOPLE), key())
        moment += timedelta(minutes=rng.lognormvariate(3.0, 1.0))
        at(moment)
        incidents.apply(incident.id, c.Resolve(), rng.choice(PEOPLE), key())
        for _ in range(rng.randint(0, 2)):
            added = followups.add(incident.id, rng.choice(TITLES), rng.choice(PEOPLE), rng.choice(PEOPLE), key())
            if added is not None and rng.random() < 0.5:
                followups.mark_done(added.id, added.created_by)
    paging.dispatcher.shutdown(timeout=2)
    return numbers


def _check(report: Report, markdown_path: Path, count: int, numbers: list[int], sessions: sessionmaker[Session]) -> list[str]:
    problems = []
    if len(report.incidents) != count:
        problems.append(f"{len(report.incidents)} incidents in the report, {count} recorded")
    postmortems = PostmortemService(sessions, SetClock(report.until), zone=ZONE, template=default_template(),
                                    team_names=TEAM_NAMES, bot_user_id=None, secrets=[])
    lines = {line.number: line for line in report.incidents}
    incidents = IncidentService(sessions, SetClock(report.until))
    for number in random.Random(7).sample(numbers, CHECKED):
        found = incidents.find(str(number))
        assert found is not None
        said = dict(re.findall(r"^\| (Time to \w+) \| ([^|]+?) \|", postmortems.preview(found.id), flags=re.M))
        line = lines.get(number)
        expected = {m.label: "not recorded" if line is None or line.seconds[m] is None
                    else human_duration(timedelta(seconds=line.seconds[m] or 0)) for m in Measure}
        if said != expected:
            problems.append(f"incident {number}: the report says {expected}, its postmortem {said}")
    markdown = markdown_path.read_text()
    referenced = sorted(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown))
    pngs = sorted(p.name for p in markdown_path.parent.glob("*.png"))
    if referenced != pngs:
        problems.append(f"report.md references {referenced}, the directory holds {pngs}")
    for name in pngs:
        with Image.open(markdown_path.parent / name) as image:
            image.load()
            if image.size != (WIDTH, HEIGHT):
                problems.append(f"{name} is {image.size}, not {(WIDTH, HEIGHT)}")
    return problems


TITLES = [
    "Checkout is timing out", "Connection pool exhausted on primary", "Search returns nothing", "Payments delayed",
    "Login errors for SSO users", "Queue backlog growing", "CDN serving stale assets", "Replica lag above 60 s",
    "Disk full on logging nodes", "Elevated 5xx on the API gateway",
]


if __name__ == "__main__":
    sys.exit(main())
