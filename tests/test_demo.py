"""The README's first command: `incident-bot demo` tells the example outage end to end (a real connection leak
in the local PostgreSQL, the watchdog, paging, the postmortem) at the example's hours on a scaled clock, in
under a minute, and leaves nothing behind; without a PostgreSQL it tells the rest of the story."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import select

from handlers import demo
from simulators.paging import PagerDutyReceiver
from simulators.slack import SlackSimulator
from storage.database import make_engine, make_session_factory
from storage.models import WatchdogSample
from tests.conftest import PG_ADMIN

FAST = demo.FASTEST  # story minutes per real second for the runs that check what happens, not when

# What the drafted postmortem's timeline must tell, in this order, whatever the wording around it.
STORY_IN_THE_DRAFT = [
    "**Detection** · incident-bot: PostgresIdleInTransaction firing (monitoring: alertmanager): ",
    "**Declared** · Alice declared the incident (SEV2)",
    "**Message** · Alice: p99 on checkout is 8 s",
    "**Misleading path** · Bob: Buffer tuning and the network checks changed nothing.",
    "**Diagnostic** · Bob ran `connections` on `primary`: ",
    "**Escalation (page)** · Bob paged Database team: Connections idle in transaction",
    "**Page acknowledged** · Database team acknowledged the page: Dave via Slack",
    "📌 **Key event** · Dave: Found it: 12 connections idle in transaction, all from checkout-web v4512.",
    "**Message** · Dave: Rolled back to v4511: the leaked connections are closed.",
    "**Status** · Dave set the status to Monitoring",
    "**Resolved** · Dave resolved the incident: Rolled back deploy 4512",
    "**Follow-up** · Alice added a follow-up (owner: Bob)",
    "**Closed** · Dave closed the incident",
]
NEEDS_THE_LEAK = ("Diagnostic",)


def leaked_connections(settle: float = 3.0) -> int:
    """The demo's leaked connections the server still lists, once it has had up to `settle` seconds to
    drop closed ones: a backend leaves pg_stat_activity a moment after its client hangs up, not at once."""
    deadline = time.monotonic() + settle
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        while True:
            row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                (demo.LEAK_APP,)).fetchone()
            count = int(row[0]) if row else 0
            if count == 0 or time.monotonic() > deadline:
                return count
            time.sleep(0.05)


def drafted(out: str) -> tuple[Path, str]:
    """The postmortem the demo says it wrote, and its timeline section."""
    assert "The drafted postmortem: " in out, out
    path = Path(out.split("The drafted postmortem: ")[1].split("\n")[0])
    assert path.exists(), path
    timeline = path.read_text(encoding="utf-8").split("\n## Timeline\n")[1].split("\n## ")[0]
    return path, timeline


def in_order(timeline: str, expected: list[str]) -> None:
    position = 0
    for line in expected:
        found = timeline.find(line, position)
        assert found >= 0, f"{line!r} missing (or out of order) in the timeline:\n{timeline}"
        position = found


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe is closed


@contextmanager
def leaking_alone() -> Iterator[None]:
    """One demo at a time leaks into the local PostgreSQL (xdist runs this file's tests side by side):
    each counts the leaked connections the server lists, and its watchdog would sample the other's."""
    with open(Path(tempfile.gettempdir()) / "incident-bot-demo-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
        yield


@dataclass(frozen=True)
class Run:
    out: str
    err: str
    returncode: int
    seconds: float  # real time, from the command to its exit
    leaked_after: int  # the demo's leaked connections the server still listed once it had exited


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """`incident-bot demo` as the README runs it, once for the tests that read what it did: once in the
    whole run, also when xdist gives those tests to several workers (they share their base folder's parent)."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "plain-demo-run.json"
    with leaking_alone():
        if shared.exists():
            run = Run(**json.loads(shared.read_text(encoding="utf-8")))
        else:
            executable = str(Path(sys.executable).with_name("incident-bot"))
            started = time.monotonic()
            result = subprocess.run([executable, "demo"], cwd=tmp_path_factory.mktemp("demo"), capture_output=True,
                                    text=True, timeout=180, check=False)
            took = time.monotonic() - started
            run = Run(result.stdout, result.stderr, result.returncode, took, leaked_connections())
            shared.write_text(json.dumps(asdict(run)), encoding="utf-8")
    print(f"\n`incident-bot demo` took {run.seconds:.1f} s of real time")
    return run


def human_minutes(duration: str) -> float:
    """'1 hour 20 minutes 2 seconds' -> 80.03."""
    units = {"hour": 60.0, "minute": 1.0, "second": 1 / 60}
    assert re.fullmatch(r"\d+ (hour|minute|second)s?( \d+ (hour|minute|second)s?)*", duration), duration
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+) (hour|minute|second)", duration))


def told_at(out: str, words: str) -> str:
    """The story time (HH:MM) printed before the first line that says `words` (after the time)."""
    found = re.search(rf"^(\d\d:\d\d)  {re.escape(words)}", out, re.MULTILINE)
    assert found, f"no line starting {words!r} after its time in:\n{out}"
    return found[1]


def test_the_demo_tells_the_whole_outage_against_the_local_postgresql(plain_run: Run) -> None:
    out = plain_run.out
    assert plain_run.returncode == 0, out + plain_run.err
    assert "The leak happens in the PostgreSQL at postgresql+psycopg://postgres@127.0.0.1:5432/" in out
    assert "[1/25] A deployment starts leaking database connections." in out
    assert "[2/25] Monitoring raises the first alert." in out
    assert "#incidents · incident-bot: Watchdog: connection trouble on primary" in out and "[Declare incident]" in out
    assert "alice presses [Declare incident] in #incidents" in out
    assert "-postgresidleintransaction-" in out and " created)" in out
    # Time to detect counts from the alert Alertmanager sent, not from the declaration.
    assert "(the alert from alertmanager) to" in Path(drafted(out)[0]).read_text()
    # The diagnostic's headline, with the leak in it (the server may hold others' connections too).
    assert re.search(r"primary connections: \d+ of \d+ usable connections in use .*; \d+ idle in a transaction", out)
    assert "→ PagerDuty got “trigger” for incident-bot-1-database" in out
    assert "dave presses [Acknowledge] in #inc-" in out
    assert "→ PagerDuty got “acknowledge” for incident-bot-1-database (answered 202)" in out
    assert "(file incident-1-postmortem-v1.md posted: " in out
    # That every step worked is this test's; whether each also kept its story minute depends on how fast this
    # machine is that day (a chart took 0.29 s one day, 0.66 s the next), so the demo says it at the end, and
    # that is all a test may ask of it: timings are figures for bench/, not assertions.
    last = out.rstrip().splitlines()[-1]
    assert re.fullmatch(r"Every step worked, (on the story's time, in [\d.]+ s\.|in [\d.]+ s, but not on the story's "
                        r"time: up to \d+ min late\.)", last), last
    assert ("The story ran late" in out) == ("not on the story's time" in last)  # said once it is late, only then
    assert "How long a session has sat idle, PostgreSQL measures itself, in real seconds." in out
    # Read as a person in the story's workspace and zone reads it: channels by name, Slack dates at the
    # story's time (not their UTC fallback text).
    assert "it is shown here and in #incidents." in out and "a channel (C" not in out
    acknowledged = re.search(r"now says: Acknowledged by dave \w{3} \d{1,2}, \d{4} at (\d\d:\d\d) UTC\+0[12]:00\)", out)
    assert acknowledged, out
    pressed = datetime.strptime(told_at(out, "dave presses [Acknowledge]"), "%H:%M")
    assert timedelta(0) <= datetime.strptime(acknowledged[1], "%H:%M") - pressed <= timedelta(minutes=1)

    path, timeline = drafted(out)
    in_order(timeline, STORY_IN_THE_DRAFT)
    assert "The timeline of the drafted postmortem:" in out and STORY_IN_THE_DRAFT[-1] in out
    assert Path(out.split("The store of this run: ")[1].split()[0]).parent == path.parent
    assert plain_run.leaked_after == 0


def test_the_story_keeps_the_example_s_hours_and_takes_under_a_minute(plain_run: Run) -> None:
    out = plain_run.out
    assert plain_run.returncode == 0, out + plain_run.err
    # Generous: the goal is under a minute (README); a loaded machine must not fail the test for it.
    assert plain_run.seconds < 90, f"the demo took {plain_run.seconds:.0f} s"

    # As it is told: each line at its time on the story's clock.
    assert told_at(out, "~ checkout-web v4512 is deployed") == "09:03"
    assert "09:15" <= told_at(out, "~ Prometheus' rule on idle-in-transaction connections fires") <= "09:17"
    assert "09:19" <= told_at(out, "alice presses [Declare incident] in #incidents") <= "09:23"
    assert "09:40" <= told_at(out, "bob › /incident note misleading") <= "09:45"
    assert "10:00" <= told_at(out, "bob › /incident page database") <= "10:05"
    assert "10:30" <= told_at(out, "dave › Rolled back to v4511") <= "10:35"
    assert "11:45" <= told_at(out, "dave › /incident resolve") <= "11:50"
    assert "minutes of the story pass" in out  # the quiet hour of monitoring is said, not skipped silently

    # As the postmortem tells it: from the alert at 09:15 to the resolution at about 11:45, in the zone of
    # the demo's configuration, and key figures of minutes and hours, not the seconds of an instant run.
    path, timeline = drafted(out)
    markdown = path.read_text(encoding="utf-8")
    assert "Times are Europe/Paris." in markdown
    start = re.search(r"Start Time: .*, (\d\d:\d\d)(?::\d\d)? \(UTC\+0[12]:00\), the alert from alertmanager", markdown)
    end = re.search(r"End Time: .*, (\d\d:\d\d)(?::\d\d)? \(UTC\+0[12]:00\), resolved by Dave", markdown)
    assert start and end, markdown.split("## Key Figures")[0]
    assert start[1] == "09:15" and "11:45" <= end[1] <= "11:50"
    duration = re.search(r"\*\*Duration:\*\* (.+)", markdown)
    assert duration and 150 <= human_minutes(duration[1]) <= 155
    figures = dict(re.findall(r"^\| (Time to \w+) \| ([^|]+) \|", markdown, re.MULTILINE))
    minutes = {name: human_minutes(value.strip()) for name, value in figures.items()}
    assert 3 <= minutes["Time to detect"] <= 8  # declared at about 09:19
    assert 45 <= minutes["Time to acknowledge"] <= 55  # dave, at about 10:06
    assert 80 <= minutes["Time to mitigate"] <= 85  # Monitoring, at about 10:35
    assert 150 <= minutes["Time to resolve"] <= 155
    times = re.findall(r"^- \*\*(\d\d:\d\d)(?::\d\d)?\*\* · ", timeline, re.MULTILINE)
    assert times == sorted(times) and times[0] == "09:15" and "11:50" <= times[-1] <= "11:55"
    assert len(set(times)) >= 20  # steps minutes apart, not one second


def test_the_readme_says_how_long_the_demo_itself_takes(plain_run: Run) -> None:
    # Its first command installs before the demo: the seconds it gives are the demo's, not the command's
    # (issue 16: "about 40 seconds" for a command that took 61 s, 23 of them venv and pip).
    first = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8").split("\n## ")[0]
    said = re.search(r"the demo itself takes\s+about (\d+) seconds", first)
    assert said, "README's first paragraph no longer says how long the demo itself takes"
    assert re.search(r"The install takes what pip needs", first)
    assert int(said[1]) / 1.5 <= plain_run.seconds <= int(said[1]) * 1.5, f"the demo took {plain_run.seconds:.0f} s"


def test_the_watchdog_sampled_the_leak_climbing_and_falling_on_the_story_s_clock(plain_run: Run) -> None:
    assert plain_run.returncode == 0, plain_run.out + plain_run.err
    store = plain_run.out.split("The store of this run: ")[1].split()[0]
    engine = make_engine(f"sqlite:///{store}")
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(select(WatchdogSample).where(WatchdogSample.target == "primary")
                                   .order_by(WatchdogSample.taken_at)).scalars().all()
    finally:
        engine.dispose()
    zone = ZoneInfo(demo.STORY_ZONE)
    samples = [(row.taken_at.astimezone(zone), row.idle_in_transaction) for row in rows if row.error is None]
    assert len(samples) == len(rows), [row.error for row in rows if row.error]
    day = samples[0][0].date()

    def at(hh_mm: str) -> datetime:
        return datetime.combine(day, clock_time.fromisoformat(hh_mm), tzinfo=zone)

    def idle(start: str, end: str) -> list[int]:
        return [n for taken, n in samples if at(start) <= taken < at(end) and n is not None]

    # Every story minute, from before the deploy to after the resolution: real samples on the story's clock.
    assert samples[0][0] < at("09:00") and samples[-1][0] > at("11:45")
    gaps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(samples)]
    assert 55 <= statistics.median(gaps) <= 65 and len(samples) >= 150
    # Sessions idle in a transaction: climbing from the deploy at 09:03, one a minute, flat while the pool
    # is empty, falling at the rollback at 10:30. (Others' sessions on the shared server may add a few.)
    slack = 2
    before, ramp = min(idle("08:55", "09:03")), idle("09:03", "09:16")
    plateau, after = statistics.median(idle("09:20", "10:25")), max(idle("10:32", "11:50"))
    assert ramp[-1] - ramp[0] >= demo.LEAK_SIZE - slack
    assert len([n for n in ramp if ramp[0] < n < ramp[-1]]) >= 6  # one connection after another, not all at once
    assert plateau - before >= demo.LEAK_SIZE - slack
    assert after <= plateau - demo.LEAK_SIZE + slack


def test_with_no_diag_the_rest_of_the_story_is_told() -> None:
    out = StringIO()
    started = time.monotonic()

    assert demo.run_demo(out=out, minutes_per_second=FAST, use_postgres=False) == 0, out.getvalue()

    printed = out.getvalue()
    assert time.monotonic() - started < 60
    [line] = [line for line in printed.splitlines() if "--no-diag: the story is told without the leak" in line]
    assert "without the leak, the watchdog and /incident diag" in line
    assert "alice presses [Declare incident] in #incidents" in printed
    assert "Watchdog" not in printed.split("The timeline of the drafted postmortem:")[0]
    assert "PostgreSQL measures itself" not in printed  # there is no PostgreSQL in this story
    _, timeline = drafted(printed)
    in_order(timeline, [line for line in STORY_IN_THE_DRAFT if not line.startswith(tuple(f"**{k}" for k in NEEDS_THE_LEAK))])
    assert "Detection (watchdog)" not in timeline and "Diagnostic" not in timeline


def test_an_unusable_postgresql_is_said_and_the_story_goes_on_without_the_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    # The story without the leak is told whole above; here from the alert to the declaration, then resolved
    # and closed at once, so it takes seconds, not the story's hours.
    acts = {step.act: step for step in demo.STORY}
    resolve, close = (replace(step, at=None) for step in demo.STORY if step.text.startswith(("/incident resolve", "/incident close")))
    monkeypatch.setattr(demo, "STORY", [acts["alertmanager"], acts["press_alert"], resolve, close])
    out = StringIO()

    assert demo.run_demo(out=out, diag_url=f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/postgres") == 0, (
        out.getvalue())

    printed = out.getvalue()
    [line] = [line for line in printed.splitlines() if "No usable PostgreSQL for the leak (postgresql+psycopg://postgres@127.0.0.1:" in line]
    assert "without the leak, the watchdog and /incident diag" in line
    assert "Pass --diag-url postgresql+psycopg://USER@HOST:PORT/DB" in line
    assert "alice presses [Declare incident] in #incidents" in printed
    assert "Watchdog" not in printed.split("The timeline of the drafted postmortem:")[0]
    assert "PostgreSQL measures itself" not in printed
    _, timeline = drafted(printed)
    in_order(timeline, [STORY_IN_THE_DRAFT[0], STORY_IN_THE_DRAFT[1], "**Resolved** · ", "**Closed** · "])


def test_a_failed_step_stops_the_story_exits_non_zero_and_closes_the_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    # A page to a team nobody configured: the bot answers with a warning, which is a failed step.
    wrong = demo.Step("U0BOB", "/incident page networking is it the network?", "bob pages the wrong team.")
    story = [s for s in demo.STORY if s.act in ("open_leak", "alertmanager", "watchdog", "press_alert")]
    monkeypatch.setattr(demo, "STORY", [*story, wrong, *demo.STORY[-1:]])
    out = StringIO()

    with leaking_alone():
        assert demo.run_demo(out=out) == 1
        leaked = leaked_connections()

    printed = out.getvalue()
    assert "Step 5 failed; the story stops here." in printed
    assert "step(s) failed in" in printed and "There is no team networking." in printed
    assert "[6/6]" not in printed and "The drafted postmortem:" not in printed
    assert leaked == 0


# 5.5, 10, 30 and 60: the story fell 3 to 74 minutes behind its hours there (issue 16), saying every step worked.
@pytest.mark.parametrize("pace", [0.0, -5.0, float("nan"), 5.5, 10.0, 30.0, 60.0])
def test_a_pace_out_of_range_is_refused_before_anything_starts(pace: float) -> None:
    out = StringIO()

    assert demo.run_demo(out=out, minutes_per_second=pace) == 2

    assert out.getvalue() == (
        f"incident-bot demo: --minutes-per-second {pace:g} is out of range: it is story minutes per real second, "
        "above 0 and at most 5 (default 5). Faster, the bot's real work (Slack round trips, the watchdog's samples "
        "and charts) takes more story minutes than the story gives it, and the steps fall behind the story's "
        "hours.\n")


def story_time() -> demo._StoryTime:
    return demo._StoryTime.starting_now(demo.MINUTES_PER_SECOND)


def test_a_step_that_starts_late_is_reported_and_the_last_line_says_so() -> None:
    story = story_time()
    punctuality = demo._Punctuality()
    steps = [s for s in demo.STORY if s.at is not None]
    declare = next(s for s in steps if s.act == "press_alert")
    for number, step in enumerate(steps, start=1):
        assert step.at is not None
        planned = story.moment(step.at)
        # As measured at 10 story minutes a second: alice declared at 09:26 for 09:19, the next step 3 min late.
        late = {declare.at: 7, steps[steps.index(declare) + 1].at: 3}.get(step.at, 0)
        punctuality.started(number, step, planned, planned + timedelta(minutes=late, seconds=10))
    out = StringIO()

    assert demo._ending(out, [], 18.5, punctuality) == 0  # every step worked: late is said, not a failure

    number = steps.index(declare) + 1
    assert out.getvalue() == (
        f"\nThe story ran late by up to 7 min, at step {number} ({declare.narration}): its moment was 09:19, it "
        "started at 09:26; 2 step(s) started more than 2 min late. The steps' real work took more story minutes "
        "than the story gives them: a slower --minutes-per-second keeps it on time.\n"
        "Every step worked, in 18.5 s, but not on the story's time: up to 7 min late.\n")


def test_a_story_on_time_says_so_and_a_failure_is_still_a_failure() -> None:
    story = story_time()
    on_time, late = demo._Punctuality(), demo._Punctuality()
    for number, step in enumerate([s for s in demo.STORY if s.at is not None], start=1):
        assert step.at is not None
        planned = story.moment(step.at)
        on_time.started(number, step, planned, planned + demo.LATE_AFTER)  # at the limit: on time
        late.started(number, step, planned, planned + timedelta(hours=1, minutes=14))
    out = StringIO()

    assert demo._ending(out, [], 36.4, on_time) == 0
    assert out.getvalue() == "Every step worked, on the story's time, in 36.4 s.\n"

    out = StringIO()
    assert demo._ending(out, ["step 5 (x): HTTP 500"], 9.0, late) == 1
    printed = out.getvalue()
    assert "The story ran late by up to 1 h 14 min, at step 1 (" in printed
    assert printed.endswith("\n1 step(s) failed in 9.0 s:\n- step 5 (x): HTTP 500\n")
    assert "Every step worked" not in printed


def test_the_printer_shows_slack_dates_in_the_story_s_zone_and_channels_by_name() -> None:
    slack = SlackSimulator()  # not started: the printer only reads what it holds
    demo._populate(slack)
    slack.add_channel("inc-20261130-leak", channel_id="C0INCIDENT1", members=demo.PEOPLE)
    story = story_time()
    printer = demo._Printer(StringIO(), slack, PagerDutyReceiver(), story)
    acknowledged = story.moment(clock_time(10, 6))
    stamp = int(acknowledged.timestamp())
    offset = f"{acknowledged:%z}"

    # The fallback text is in UTC (handlers/blocks.py); a reader in Europe/Paris sees 10:06 there.
    said = printer.plain(f"Acknowledged by <@{demo.DBA}> <!date^{stamp}^{{date_short_pretty}} at {{time}}|"
                         f"{acknowledged.astimezone(UTC):%Y-%m-%d %H:%M} UTC>")
    assert said == (f"Acknowledged by dave {acknowledged:%b} {acknowledged.day}, {acknowledged:%Y} at 10:06 "
                    f"UTC{offset[:3]}:{offset[3:]}")
    assert printer.plain(f"it is shown here and in <#{demo.ANNOUNCE}>, and in <#C0INCIDENT1>.") == (
        "it is shown here and in #incidents, and in #inc-20261130-leak.")
