"""`incident-bot demo`: the example outage told end to end on this machine, with no Slack workspace and no
credentials.

The story is the classic web-stack outage: a deployment leaks database connections, the pool runs dry,
responders chase a misleading path, then find the leak. Here the leak is real (connections left idle in a
transaction on a real PostgreSQL), the bot's watchdog alerts on it, people declare, talk, run a diagnostic,
page the database team (a loopback PagerDuty), find and close the leak, resolve and close; the bot drafts
the postmortem, which is written beside the store.

The real app is served over real HTTP on loopback and driven only with signed Slack requests against the
project's Slack simulator; its store is a SQLite file in a temporary folder. The conversation is printed
as it unfolds. Without a usable PostgreSQL the story is told without the leak, the watchdog and the
diagnostic. Exits non-zero if any step fails, and says so at the end when a step started late against
the story's hours; stops everything it started, whatever happens.

The story keeps the example's hours (about 09:15 to 11:45, in Europe/Paris) on a scaled clock, five
minutes of story a real second by default: the bot, its scheduler (so the watchdog samples every story
minute, reminders and escalations fall due on story time), the simulated Slack's message ts and the
alert all read that one clock, and each step waits for its moment in the story. The leak grows on it
too, a connection every story minute from the deploy, so the watchdog's real samples show it climb,
stay flat once the application's pool is empty, and fall at the rollback. PostgreSQL's own measure of
how long a session has sat idle stays in real seconds, and the watchdog's threshold for it is set in those.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import httpx
import psycopg

from bot.clock import ScaledClock
from bot.config import load_settings
from bot.scheduling import scheduled_by
from bot.slack_markup import Names, to_plain
from bot.timeline import ts_to_datetime
from handlers import alert_blocks
from handlers.app import Runtime, build_runtime
from handlers.demo_postgres import LEAK_APP, LEAK_SIZE, Leak, find_postgres, first_line
from handlers.http import BotWsgiApp, HttpServer
from simulators.paging import PagerDutyReceiver
from simulators.slack import SlackSimulator
from simulators.slack_requests import SlackRequests

SIGNING_SECRET = "demo-signing-secret"
ANNOUNCE, GENERAL = "C0INCIDENTS", "C0GENERAL"
DBA = "U0DAVE"  # the database team's on-call engineer
PEOPLE = {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol", DBA: "dave"}
_DEMO_NAMES = Names(users={user_id: f"@{name}" for user_id, name in PEOPLE.items()})
ROUTING_KEY = "R0DEMO00000000000000000000000000"  # PagerDuty routing keys are 32 characters

ALERTS_TOKEN = "demo-alertmanager-token"
ALERT_FIRED_SECONDS_AGO = 30  # Prometheus' rule waited its `for:` before Alertmanager sent it

# The story's clock: the example's zone and hours, on today's date there.
STORY_ZONE = "Europe/Paris"  # the example's GMT+1; the postmortem is written in it
STORY_BEGINS = clock_time(8, 50)  # the clock starts here: the watchdog samples a quiet server before the deploy
STORY_ENDS = clock_time(11, 50)  # the last step's moment
MINUTES_PER_SECOND = 5.0  # story minutes per real second by default: 08:50 to 11:50 in 36 s
# Story minutes per real second at most: the fastest pace at which every step still starts within about a
# story minute of its moment here (measured: 5 keeps it; at 6 alice declared 3 to 6 minutes late, at 10 five
# minutes, at 60 an hour and ten). Each step's real work (Slack round trips, the watchdog's samples and charts)
# costs story minutes in proportion to the pace, and the watchdog's idle threshold is whole real seconds.
FASTEST = 5.0
LEAK_EVERY = timedelta(minutes=1)  # story time between two leaked connections, until the pool is empty
QUIET_GAP = timedelta(minutes=20)  # a wait this long in the story is said, so the reader knows time passes
# A step that starts this much story time after its moment is reported: each step's real work (Slack
# round trips, settling, the watchdog's next sample) costs story minutes, more of them the faster the pace.
LATE_AFTER = timedelta(minutes=2)

# The watchdog samples every story minute, and alerts once a leaked session has sat idle in a
# transaction for 12.5 story minutes or a little more (PostgreSQL counts that in whole real seconds: see
# _watchdog_config): the first leaked at 09:03, it alerts after Alertmanager's alert (09:15:30) and before
# alice declares (09:19).
SAMPLE_EVERY = timedelta(minutes=1)
SAMPLE_AT_MOST_EVERY_SECONDS = 0.2  # real seconds: faster story clocks sample less often in story time
IDLE_ALERT_AFTER = timedelta(minutes=12, seconds=30)
WAKE_SCHEDULER_SECONDS = 0.05  # real seconds: the scheduler sleeps real time, the story's runs faster
ALERT_TIMEOUT_SECONDS = 20.0  # longer than this without an alert is a failure
CLEAR_TIMEOUT_SECONDS = 8.0  # the all-clear is a nicety: other sessions on a shared server may delay it
BACKGROUND_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Step:
    who: str  # a person's Slack user id; "" for what happens outside Slack
    text: str  # typed ("/incident …" is a command, anything else a message), a button's label, or what happens
    narration: str
    act: str = "type"  # how the step is played: a key of ACTS
    pushpin_by: str | None = None  # someone marks this message a key event
    leak: bool | None = None  # True: only with a PostgreSQL to leak into; False: only without; None: always
    at: clock_time | None = None  # its moment in the story (STORY_ZONE); None: straight after the step before


def _at(hh_mm: str) -> clock_time:
    return clock_time.fromisoformat(hh_mm)


# The example postmortem's outage, in order and at its hours (09:15 detection, 09:40 misleading paths,
# 10:00 escalation, 10:30 fix, 11:45 resolved). Every step leaves a mark in the drafted postmortem's timeline.
STORY = [
    Step("", f"{LEAK_APP} is deployed: each checkout request opens a connection, begins a transaction and "
             "never ends it.", "A deployment starts leaking database connections.", act="open_leak", leak=True,
         at=_at("09:03")),
    Step("", "Prometheus' rule on idle-in-transaction connections fires; Alertmanager sends it to the bot.",
         "Monitoring raises the first alert.", act="alertmanager", at=_at("09:15:30")),
    Step("", "The watchdog samples primary.", "The bot's own watchdog confirms it.", act="watchdog", leak=True,
         at=_at("09:16")),
    Step("U0ALICE", "Declare incident", "alice, on call, declares from the alert: its start is when it was detected.",
         act="press_alert", at=_at("09:19")),
    Step("U0ALICE", "p99 on checkout is 8 s and 5xx are at 12%. The DB servers look busy.",
         "The channel starts talking; the bot records it.", at=_at("09:21")),
    Step("U0ALICE", "/incident sev sev1", "Errors keep climbing: it is a SEV1 now.", at=_at("09:23")),
    Step("U0ALICE", "/incident update Latency up on the web tier, 5xx at 12%. Looking at the database servers.",
         "A status update, for those outside the channel.", at=_at("09:25")),
    Step("U0BOB", "/incident note hypothesis Database performance degradation under load?", "A first guess.",
         at=_at("09:28")),
    Step("U0BOB", "DB CPU is only 40%, but I'm tuning the buffers anyway.", "It is acted on.", at=_at("09:33")),
    Step("U0CAROL", "Could it be the network between web and DB?", "Another path.", at=_at("09:37")),
    Step("U0BOB", "/incident note misleading Buffer tuning and the network checks changed nothing.",
         "Both led nowhere, and are written down as such.", at=_at("09:40")),
    Step("U0ALICE", "/incident role scribe <@U0CAROL|carol>", "carol keeps the notes.", at=_at("09:44")),
    Step("U0BOB", "/incident diag connections primary", "bob asks the database who holds its connections.", leak=True,
         at=_at("09:52")),
    Step("U0BOB", "/incident page database Connections idle in transaction keep piling up on primary",
         "The database team is paged.", at=_at("10:00")),
    Step(DBA, "Acknowledge", "dave, the DBA on call, acknowledges the page.", act="press", at=_at("10:06")),
    Step("U0ALICE", f"/incident role commander <@{DBA}|dave>", "dave takes command.", at=_at("10:08")),
    Step(DBA, f"Found it: {LEAK_SIZE} connections idle in transaction, all from {LEAK_APP}. The deploy leaks them.",
         "The leak is found, and alice pins it as the key event.", pushpin_by="U0ALICE", at=_at("10:20")),
    Step(DBA, "/incident update The pool is exhausted by connections leaked since deploy 4512. Rolling it back.",
         "What happens next, for everyone.", at=_at("10:24")),
    Step(DBA, "/incident status identified", "The cause is known.", at=_at("10:26")),
    Step(DBA, "Rolled back to v4511: the leaked connections are closed.", "The rollback closes the leak.",
         act="close_leak", at=_at("10:30")),
    Step("", "The watchdog's samples show the leaked connections gone.", "The watchdog sees the pool drain.",
         act="all_clear", leak=True),
    Step(DBA, "/incident status monitoring", "Watching that it holds.", at=_at("10:35")),
    Step(DBA, "/incident resolve Rolled back deploy 4512; connections back to normal.", "Errors are gone: resolved.",
         at=_at("11:45")),
    Step("U0ALICE", "/incident followup Make the pool reclaim connections left idle in a transaction <@U0BOB|bob>",
         "An action item, with an owner.", at=_at("11:47")),
    Step(DBA, "/incident close", "The incident is over: the bot drafts the postmortem.", at=STORY_ENDS),
]


def run_demo(out: TextIO = sys.stdout, *, diag_url: str | None = None, use_postgres: bool = True,
             minutes_per_second: float = MINUTES_PER_SECOND) -> int:
    """Tell the story; 0 when every step worked (late or not: lateness is said), 1 when one failed, 2 for a
    pace out of range.
    `diag_url` is the PostgreSQL to leak into (else the local one, else a throwaway one);
    `use_postgres=False` tells it without the leak; `minutes_per_second` is the pace, story minutes per
    real second (above 0, at most FASTEST)."""
    if not 0 < minutes_per_second <= FASTEST:  # also refuses NaN
        out.write(f"incident-bot demo: --minutes-per-second {minutes_per_second:g} is out of range: it is story "
                  f"minutes per real second, above 0 and at most {FASTEST:g} (default {MINUTES_PER_SECOND:g}). "
                  "Faster, the bot's real work (Slack round trips, the watchdog's samples and charts) takes more "
                  "story minutes than the story gives it, and the steps fall behind the story's hours.\n")
        return 2
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="incident-bot-demo-"))
    failures: list[str] = []
    postmortem: Path | None = None
    punctuality = _Punctuality()
    try:
        # Everything started is stopped on the way out, in reverse order, also on failure or Ctrl-C.
        with contextlib.ExitStack() as stack:
            # First: a throwaway server takes seconds to start, which the story's clock must not count.
            if use_postgres:
                target, found = find_postgres(stack, diag_url)
            else:
                target, found = None, ("--no-diag: the story is told without the leak, the watchdog and "
                                       "/incident diag.")
            story = _StoryTime.starting_now(minutes_per_second)
            stack.enter_context(scheduled_by(story.clock))  # left last: the scheduler is stopped by then
            slack = stack.enter_context(SlackSimulator(now=lambda: story.clock.now().timestamp()))
            _populate(slack)
            pagerduty = stack.enter_context(PagerDutyReceiver(routing_keys=[ROUTING_KEY]))
            runtime = _start_runtime(workdir, slack, pagerduty, target, story)
            stack.callback(runtime.close)
            stack.enter_context(_every(WAKE_SCHEDULER_SECONDS, runtime.services.scheduler.wakeup))
            server = HttpServer(BotWsgiApp(runtime), host="127.0.0.1", port=0, threads=4).start()
            stack.callback(server.stop)
            requests = SlackRequests(server.url, SIGNING_SECRET, response_url=slack.response_url())
            stack.callback(requests.close)
            leak = Leak(target, held_for_at_most=math.ceil(story.real_seconds_until_the_end()) + 120) if target else None
            deployment = None
            if leak is not None:
                deployment = _Deployment(leak, story)
                stack.callback(leak.close)
                stack.callback(deployment.stop)  # before the leak closes: nothing opens after
            out.write(f"incident-bot demo: the app at {server.url}, Slack simulated at {slack.url}, "
                      f"PagerDuty received at {pagerduty.url}\n{found}\n{story.describe(leaking=leak is not None)}\n")
            demo = _Demo(runtime, slack, requests, _Printer(out, slack, pagerduty, story), leak, server.url, story,
                         deployment, punctuality)
            failures = _tell(demo)
            postmortem = _save_postmortem(workdir, runtime, slack)
            if postmortem is None and not failures:
                failures.append("no postmortem was drafted at close")
    except Exception as error:  # setting up or tearing down; the steps report their own failures
        failures.append(f"the demo itself failed: {type(error).__name__}: {error}")
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM through the command line: everything is stopped by now
        failures.append("interrupted")
    seconds = time.monotonic() - started
    if postmortem is not None:
        _print_draft_timeline(out, postmortem.read_text(encoding="utf-8"))
    out.write(f"\nThe store of this run: {workdir / 'incident-bot.db'}\n")
    if postmortem is not None:
        out.write(f"The drafted postmortem: {postmortem}\n")
        out.writelines(f"A chart it shows, beside it: {chart.name}\n" for chart in sorted(postmortem.parent.glob("*.png")))
    return _ending(out, failures, seconds, punctuality)


def _ending(out: TextIO, failures: list[str], seconds: float, punctuality: _Punctuality) -> int:
    """The last lines: what failed, else that every step worked, and whether the story kept its hours;
    the exit status (1 when a step failed; a late story still exits 0, and says so)."""
    late = punctuality.report(ZoneInfo(STORY_ZONE))
    if late:
        out.write(f"\n{late}\n")
    if failures:
        out.write(f"\n{len(failures)} step(s) failed in {seconds:.1f} s:\n" + "".join(f"- {f}\n" for f in failures))
        return 1
    latest = punctuality.latest()
    if latest is not None:
        out.write(f"Every step worked, in {seconds:.1f} s, but not on the story's time: up to "
                  f"{_late_by(latest.late)} late.\n")
    else:
        out.write(f"Every step worked, on the story's time, in {seconds:.1f} s.\n")
    return 0


# --- Setting the scene


def _populate(slack: SlackSimulator) -> None:
    for user_id, name in PEOPLE.items():
        slack.add_user(user_id, name, real_name=name.capitalize())
    slack.add_channel("incidents", channel_id=ANNOUNCE, members=PEOPLE)
    slack.add_channel("general", channel_id=GENERAL, members=PEOPLE)


def _start_runtime(workdir: Path, slack: SlackSimulator, pagerduty: PagerDutyReceiver, target: str | None,
                   story: _StoryTime) -> Runtime:
    config = workdir / "incident-bot.toml"
    config.write_text(_config(target, story.clock.rate))
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": f"sqlite:///{workdir / 'incident-bot.db'}",
            "INCIDENT_BOT_CONFIG": str(config),
            "INCIDENT_BOT_SPOOL": str(workdir / "spool.db"),
            "PAGERDUTY_EVENTS_URL": pagerduty.events_url,
        },
        mode="http",
    )
    return build_runtime(settings, clock=story.clock)


def _config(target: str | None, rate: float) -> str:
    """The bot's configuration for the story; `rate` is the story clock's, story seconds per real second."""
    config = f"""[slack]
announce_channel = "{ANNOUNCE}"
channel_prefix = "inc"

[postmortem]
timezone = "{STORY_ZONE}"

[teams.database]
display_name = "Database team"
pagerduty_routing_key = "{ROUTING_KEY}"
slack_members = ["{DBA}"]
escalate_after_minutes = 10

[reminders.status_update_minutes]
sev1 = 30

[alerts]
webhook_token = "{ALERTS_TOKEN}"
"""
    if target is None:
        return config
    interval, idle = _watchdog_config(rate)
    return config + f"""
[diagnostics.targets.primary]
url = {json.dumps(target)}

[diagnostics.watchdog]
interval_seconds = {interval}
idle_in_transaction_alert_seconds = {idle}
"""


def _watchdog_config(rate: float) -> tuple[int, int]:
    """(interval_seconds, idle_in_transaction_alert_seconds) for a story clock of `rate` story seconds per
    real second. The interval is read on the bot's clock, story time: SAMPLE_EVERY, or longer when the
    story runs so fast that sampling would outrun the real work of a sample. The idle threshold is
    compared with PostgreSQL's own measure, in real seconds: IDLE_ALERT_AFTER of story time, rounded up to
    a whole real second, so the watchdog alerts after Alertmanager's alert (at 09:15:30) as in the story.
    Rounded up, it adds less than a real second, so at FASTEST or slower it alerts by about 09:19, when alice
    declares (near 09:20 at paces just above 4; at 6 it would alert at 09:21, at 10 at 09:23)."""
    interval = max(SAMPLE_EVERY.total_seconds(), SAMPLE_AT_MOST_EVERY_SECONDS * rate)
    return math.ceil(interval), max(1, math.ceil(IDLE_ALERT_AFTER.total_seconds() / rate))


# --- The story's time


@dataclass(frozen=True)
class _StoryTime:
    """The story's clock: today's date in STORY_ZONE from STORY_BEGINS, running `clock.rate` story seconds
    a real second."""

    clock: ScaledClock
    zone: ZoneInfo
    day: date

    @classmethod
    def starting_now(cls, minutes_per_second: float) -> _StoryTime:
        zone = ZoneInfo(STORY_ZONE)
        day = datetime.now(zone).date()  # the reader's today, there: the story happens this morning
        return cls(ScaledClock(datetime.combine(day, STORY_BEGINS, tzinfo=zone), minutes_per_second * 60), zone, day)

    def moment(self, at: clock_time) -> datetime:
        """A wall-clock time of the story's day, in its zone."""
        return datetime.combine(self.day, at, tzinfo=self.zone)

    def hh_mm(self, moment: datetime | None = None) -> str:
        """A moment (default: now) as the story's wall clock shows it."""
        return f"{(moment or self.clock.now()).astimezone(self.zone):%H:%M}"

    def real_seconds_until_the_end(self) -> float:
        return self.clock.real_seconds_until(self.moment(STORY_ENDS))

    def describe(self, *, leaking: bool) -> str:
        """The story's hours and pace for the reader; `leaking`: with the leak in a PostgreSQL, whose own
        measure of idle time the story's clock does not scale."""
        pace = f"{self.clock.rate / 60:g} minute{'s' * (self.clock.rate != 60)} of it a real second"
        day = f"{self.day:%A} {self.day.day} {self.day:%B %Y}"
        idle = " How long a session has sat idle, PostgreSQL measures itself, in real seconds." if leaking else ""
        return (f"The story keeps the example's hours on a scaled clock, {pace}: {STORY_BEGINS:%H:%M} to "
                f"{STORY_ENDS:%H:%M} on {day} ({STORY_ZONE}), about {self.real_seconds_until_the_end():.0f} s from "
                f"now.{idle}")


@dataclass(frozen=True)
class _Start:
    number: int  # the step's number as printed, [number/total]
    narration: str
    planned: datetime  # its moment in the story
    started: datetime  # when the story's clock read as it began

    @property
    def late(self) -> timedelta:
        return self.started - self.planned


@dataclass
class _Punctuality:
    """When each step began against its moment in the story. A step starts late when the ones before it
    took more story time than the story gives them: their real seconds, scaled by the pace."""

    starts: list[_Start] = field(default_factory=list)

    def started(self, number: int, step: Step, planned: datetime, now: datetime) -> None:
        self.starts.append(_Start(number, step.narration, planned, now))

    def latest(self) -> _Start | None:
        """The step that started latest, when it started more than LATE_AFTER late; else None."""
        latest = max(self.starts, key=lambda start: start.late, default=None)
        return latest if latest is not None and latest.late > LATE_AFTER else None

    def report(self, zone: ZoneInfo) -> str | None:
        """What the reader is told at the end when the story ran late; None when every step kept its time
        (within LATE_AFTER). Times in `zone`, the story's."""
        latest = self.latest()
        if latest is None:
            return None
        late = len([start for start in self.starts if start.late > LATE_AFTER])
        return (f"The story ran late by up to {_late_by(latest.late)}, at step {latest.number} ({latest.narration}): "
                f"its moment was {latest.planned.astimezone(zone):%H:%M}, it started at "
                f"{latest.started.astimezone(zone):%H:%M}; {late} step(s) started more than "
                f"{_late_by(LATE_AFTER)} late. The steps' real work took more story minutes than the story "
                "gives them: a slower --minutes-per-second keeps it on time.")


def _late_by(span: timedelta) -> str:
    """'12 min', '1 h 14 min': how late, in whole story minutes."""
    hours, minutes = divmod(round(span.total_seconds() / 60), 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


@contextlib.contextmanager
def _every(seconds: float, action: Callable[[], None]) -> Iterator[None]:
    """Call `action` every `seconds` of real time on a thread of its own while inside."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(seconds):
            action()

    thread = threading.Thread(target=run, name="demo-every", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


class _Deployment:
    """checkout-web v4512 in production: each checkout request down the buggy path takes a connection
    from the application's pool and never gives it back, one every LEAK_EVERY of story time from the
    deploy, until the pool (LEAK_SIZE) is empty and requests queue for connections that never return."""

    def __init__(self, leak: Leak, story: _StoryTime) -> None:
        self._leak = leak
        self._story = story
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.problems: list[str] = []  # what went wrong on its thread, for the story to report

    def start(self) -> None:
        """The deploy: the first connection leaks now, the others on the story's clock."""
        deployed = self._story.clock.now()
        self._leak.open(1)  # at once: a refusal here is the deploy step's failure
        self._thread = threading.Thread(target=self._serve, args=(deployed,), name="demo-deployment", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _serve(self, deployed: datetime) -> None:
        for n in range(1, LEAK_SIZE):
            if self._stop.wait(self._story.clock.real_seconds_until(deployed + n * LEAK_EVERY)):
                return
            try:
                self._leak.open(1)
            except psycopg.Error as error:
                self.problems.append(f"leaking connection {n + 1} failed: {first_line(error)}")
                return


# --- Telling the story


@dataclass
class _Demo:
    runtime: Runtime
    slack: SlackSimulator
    requests: SlackRequests
    show: _Printer
    leak: Leak | None  # None: no PostgreSQL to leak into
    url: str  # the app's
    story: _StoryTime
    deployment: _Deployment | None  # what leaks into `leak`
    punctuality: _Punctuality = field(default_factory=_Punctuality)

    def channel(self) -> str | None:
        """The incident's channel, once there is one."""
        incidents = self.runtime.services.incidents.list_open()
        return incidents[-1].channel_id if incidents else None

    def settle(self) -> list[str]:
        """Wait for the work done after the acknowledgement, show it, and return what failed."""
        if not self.runtime.wait_idle(BACKGROUND_TIMEOUT_SECONDS):
            return [f"the work after the acknowledgement did not finish in {BACKGROUND_TIMEOUT_SECONDS:.0f} s"]
        return self.show.new_activity()

    def sampling(self) -> str:
        """How often the watchdog samples, in story time: 'minute', '4 minutes'."""
        interval, _ = _watchdog_config(self.story.clock.rate)
        return _minutes(timedelta(seconds=interval))

    def wait_until(self, at: clock_time) -> list[str]:
        """Let the story's clock reach `at` (at once if it has), showing what the bot does meanwhile (the
        watchdog's alerts, reminders); what failed meanwhile."""
        moment = self.story.moment(at)
        gap = moment - self.story.clock.now()
        if gap >= QUIET_GAP:
            watching = f"; the watchdog samples primary every {self.sampling()}" if self.leak is not None else ""
            self.show.quiet(f"{gap.total_seconds() / 60:.0f} minutes of the story pass{watching}")
        problems: list[str] = []
        while (left := self.story.clock.real_seconds_until(moment)) > 0:
            time.sleep(min(left, 0.2))
            problems += self.show.new_activity()
        return problems + self.show.new_activity()


def _tell(demo: _Demo) -> list[str]:
    """Play the steps that fit (with or without the leak), each at its moment in the story; stop at the
    first that fails."""
    steps = [s for s in STORY if s.leak is None or s.leak == (demo.leak is not None)]
    for number, step in enumerate(steps, start=1):
        problems = [f"before it: {p}" for p in (demo.wait_until(step.at) if step.at is not None else [])]
        if step.at is not None:
            demo.punctuality.started(number, step, demo.story.moment(step.at), demo.story.clock.now())
        if not problems:
            demo.show.narrate(f"[{number}/{len(steps)}] {step.narration}")
            try:
                problems = ACTS[step.act](demo, step)
            except Exception as error:
                problems = [f"{type(error).__name__}: {error}"]
        problems += demo.deployment.problems if demo.deployment is not None else []
        if problems:
            demo.show.narrate(f"Step {number} failed; the story stops here.")
            return [f"step {number} ({demo.show.plain(step.text)}): {p}" for p in problems]
    return []


def _type(demo: _Demo, step: Step) -> list[str]:
    """A person types in the incident's channel (in #general before there is one)."""
    channel = demo.channel() or GENERAL
    demo.show.typed(step.who, step.text)
    if not step.text.startswith("/incident "):
        return _say(demo, step, channel)
    sent = demo.requests.command(step.text.removeprefix("/incident "), user_id=step.who, channel_id=channel)
    if sent.response.status_code != 200:
        return [f"HTTP {sent.response.status_code}"]
    ack = sent.response.json().get("text") if sent.response.content else None
    if ack:
        demo.show.only_you(step.who, ack)
    problems = demo.settle()
    if ack and ack.startswith((":warning:", ":no_entry_sign:")):
        problems.append(demo.show.plain(ack))
    return problems


def _say(demo: _Demo, step: Step, channel: str) -> list[str]:
    """A message in the channel, delivered to the bot as Slack's Events API would, maybe pinned as key."""
    ts = demo.slack.add_message(channel, step.text, user=step.who)
    event = {"type": "message", "channel": channel, "user": step.who, "text": step.text, "ts": ts, "event_ts": ts}
    sent = [demo.requests.event(event)]
    if step.pushpin_by:
        demo.show.reacted(step.pushpin_by, "pushpin")
        sent.append(demo.requests.event({"type": "reaction_added", "user": step.pushpin_by, "reaction": "pushpin",
                                         "item_user": step.who, "item": {"type": "message", "channel": channel, "ts": ts},
                                         "event_ts": f"{demo.story.clock.now().timestamp():.6f}"}))
    failed = [f"the event answered HTTP {s.response.status_code}" for s in sent if s.response.status_code != 200]
    return failed + demo.settle()


def _press(demo: _Demo, step: Step) -> list[str]:
    """A person presses a button the bot posted: in the incident's channel, or on an alert in #incidents."""
    channels = [c for c in (demo.channel(), ANNOUNCE) if c]
    found = _find_button(demo.slack, channels, step.text)
    if found is None:
        return [f"no “{step.text}” button to press"]
    channel, action_id, value = found
    demo.show.pressed(step.who, step.text, demo.show.channel_name(channel))
    sent = demo.requests.block_action(action_id, value, user_id=step.who, channel_id=channel,
                                      response_url=demo.slack.response_url())
    if sent.response.status_code != 200:
        return [f"HTTP {sent.response.status_code}"]
    return demo.settle()


def _open_leak(demo: _Demo, step: Step) -> list[str]:
    assert demo.deployment is not None
    demo.show.outside(step.text)
    demo.deployment.start()
    demo.show.outside(f"Its pool holds {LEAK_SIZE} connections: one leaks every {_minutes(LEAK_EVERY)}, each "
                      "`BEGIN; SELECT 1;` and then nothing, idle in transaction, until none is left.")
    return []


def _minutes(span: timedelta) -> str:
    minutes = round(span.total_seconds() / 60)
    return "minute" if minutes == 1 else f"{minutes} minutes"


def _watchdog(demo: _Demo, step: Step) -> list[str]:
    demo.show.outside(f"The watchdog samples primary every {demo.sampling()} of the story.")
    if not _wait(lambda: _announced(demo.slack, "Watchdog: connection trouble"), ALERT_TIMEOUT_SECONDS):
        return [f"the watchdog did not alert within {ALERT_TIMEOUT_SECONDS:.0f} s"]
    # Not settled: the alert's chart, drawn and uploaded after it (over half a real second of matplotlib on
    # a slow day: three minutes of the story at its default pace), shows with the next step, while alice
    # already reads the alert, as she would.
    return demo.show.new_activity()


def _alertmanager(demo: _Demo, step: Step) -> list[str]:
    """The notification a local Alertmanager sends (webhook v4) for Prometheus' rule, as it sends it."""
    if demo.leak is not None:
        demo.show.outside(f"{demo.leak.size} of the {LEAK_SIZE} connections of {LEAK_APP}'s pool sit idle in a "
                          "transaction; checkout requests queue for one.")
    demo.show.outside(step.text)
    started = demo.story.clock.now() - timedelta(seconds=ALERT_FIRED_SECONDS_AGO)
    body = alertmanager_notification(started)
    answer = httpx.post(f"{demo.url}/webhooks/alertmanager", json=body, headers={"Authorization": f"Bearer {ALERTS_TOKEN}"})
    if answer.status_code != 200:
        return [f"the alert webhook answered HTTP {answer.status_code}: {answer.text[:200]}"]
    demo.show.outside(f"{body['alerts'][0]['labels']['alertname']} firing since {demo.story.hh_mm(started)} "
                      f"({body['alerts'][0]['annotations']['summary']})")
    return demo.settle()


def _press_alert(demo: _Demo, step: Step) -> list[str]:
    """Declare from the alert group's message (not the watchdog's: the alert came first)."""
    for message in reversed(demo.slack.messages(ANNOUNCE)):
        for element in _buttons(message.get("blocks")):
            if element.get("action_id") == alert_blocks.DECLARE_ACTION:
                demo.show.pressed(step.who, step.text, demo.show.channel_name(ANNOUNCE))
                sent = demo.requests.block_action(element["action_id"], element["value"], user_id=step.who,
                                                  channel_id=ANNOUNCE, response_url=demo.slack.response_url())
                return [f"HTTP {sent.response.status_code}"] if sent.response.status_code != 200 else demo.settle()
    return ["no alert group with a “Declare incident” button"]


def alertmanager_notification(started: datetime) -> dict[str, Any]:
    """Alertmanager's webhook v4 body for the demo's alert (prometheus/alertmanager, <webhook_config>)."""
    labels = {"alertname": "PostgresIdleInTransaction", "instance": "primary:9187", "job": "postgres",
              "severity": "critical", "team": "db"}
    return {
        "version": "4", "groupKey": '{}:{alertname="PostgresIdleInTransaction"}', "truncatedAlerts": 0,
        "status": "firing", "receiver": "incident-bot", "groupLabels": {"alertname": "PostgresIdleInTransaction"},
        "commonLabels": labels, "commonAnnotations": {}, "externalURL": "http://alertmanager.local:9093",
        "alerts": [{
            "status": "firing", "labels": labels,
            "annotations": {"summary": f"{LEAK_SIZE} connections idle in transaction on primary",
                            "runbook_url": "https://runbooks.example.com/postgres/idle-in-transaction"},
            "startsAt": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.local:9090/graph?g0.expr=pg_stat_activity_count",
            "fingerprint": "5b5c0ad4e1f2d6a3",
        }],
    }


def _close_leak(demo: _Demo, step: Step) -> list[str]:
    if demo.deployment is not None:
        demo.deployment.stop()  # the leaking version is gone: nothing leaks after the rollback
    if demo.leak is not None:
        closed = demo.leak.close()
        demo.show.outside(f"{LEAK_APP} is rolled back: its {closed} leaked connections are closed.")
    return _type(demo, step)


def _all_clear(demo: _Demo, step: Step) -> list[str]:
    demo.show.outside(step.text)
    if not _wait(lambda: _announced(demo.slack, "back to normal"), CLEAR_TIMEOUT_SECONDS):
        # Not a failure: on a shared server other sessions may keep a figure high; the story goes on.
        demo.show.outside(f"No all-clear within {CLEAR_TIMEOUT_SECONDS:.0f} s: something else on the server "
                          "keeps a figure up. The story goes on.")
    return demo.settle()


ACTS: dict[str, Callable[[_Demo, Step], list[str]]] = {
    "type": _type,
    "press": _press,
    "open_leak": _open_leak,
    "watchdog": _watchdog,
    "alertmanager": _alertmanager,
    "press_alert": _press_alert,
    "close_leak": _close_leak,
    "all_clear": _all_clear,
}


def _find_button(slack: SlackSimulator, channels: list[str], label: str) -> tuple[str, str, str] | None:
    """The newest button with this label in these channels: (channel, action_id, value)."""
    for channel in channels:
        for message in reversed(slack.messages(channel)):
            for element in _buttons(message.get("blocks")):
                if element.get("text", {}).get("text") == label:
                    return channel, element["action_id"], element["value"]
    return None


def _announced(slack: SlackSimulator, words: str) -> bool:
    return any(words in m.get("text", "") for m in slack.messages(ANNOUNCE))


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


# --- The draft


def _save_postmortem(workdir: Path, runtime: Runtime, slack: SlackSimulator) -> Path | None:
    """The draft uploaded at close, also written beside the store for reading, with the files uploaded
    with it that it shows (its charts), under the names it refers to them by."""
    incident = runtime.services.incidents.find("1")
    latest = runtime.services.postmortems.latest(incident.id) if incident else None
    if incident is None or latest is None or latest.markdown is None:
        return None
    path = workdir / f"postmortem-incident-{incident.number}.md"
    path.write_text(latest.markdown, encoding="utf-8")
    for file in slack.files():
        name = str(file.get("name") or "")
        if name and Path(name).name == name and f"]({name})" in latest.markdown:
            (workdir / name).write_bytes(slack.file_content(file["id"]))
    return path


def _print_draft_timeline(out: TextIO, markdown: str) -> None:
    """The story as the postmortem tells it."""
    _, found, rest = markdown.partition("\n## Timeline\n")
    if not found:
        out.write("\nThe drafted postmortem has no timeline.\n")
        return
    out.write("\nThe timeline of the drafted postmortem:\n")
    for line in rest.split("\n## ", 1)[0].strip().splitlines():
        out.write(f"  {line}\n" if line else "\n")


# --- What people see


def _buttons(blocks: Any) -> list[dict[str, Any]]:
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    return [e for b in blocks if b.get("type") == "actions" for e in b.get("elements", []) if e.get("type") == "button"]


def _sections(blocks: Any) -> list[str]:
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    return [b["text"]["text"] for b in blocks if b.get("type") == "section" and isinstance(b.get("text"), dict)]


class _Printer:
    """Prints what a person in the workspace would have seen, in plain text, and what reached PagerDuty."""

    def __init__(self, out: TextIO, slack: SlackSimulator, pagerduty: PagerDutyReceiver, story: _StoryTime) -> None:
        self._out = out
        self._slack = slack
        self._pagerduty = pagerduty
        self._story = story
        self._seen_calls = 0
        self._seen_responses = 0
        self._seen_pages = 0
        self._updates: dict[str, str] = {}  # what each alert or page message was last shown to say

    def narrate(self, text: str) -> None:
        self._out.write(f"\n{text}\n")

    def quiet(self, text: str) -> None:
        self._line(f"({text})")

    def outside(self, text: str) -> None:
        self._line(f"~ {self.plain(text)}", self._story.clock.now())

    def typed(self, who: str, text: str) -> None:
        self._line(f"{PEOPLE.get(who, who)} › {self.plain(text)}", self._story.clock.now())

    def pressed(self, who: str, label: str, where: str) -> None:
        self._line(f"{PEOPLE.get(who, who)} presses [{label}] in #{where}", self._story.clock.now())

    def reacted(self, who: str, reaction: str) -> None:
        self._line(f"{PEOPLE.get(who, who)} adds :{reaction}: to it", self._story.clock.now())

    def only_you(self, who: str, text: str) -> None:
        self._line(f"  (only {PEOPLE.get(who, who)} sees) {self.plain(text)}")

    def _line(self, text: str, moment: datetime | None = None) -> None:
        """One line, after its time on the story's clock when it has one, so the reader sees time pass."""
        self._out.write(f"{self._story.hh_mm(moment) if moment else '':5}  {text}\n")

    def new_activity(self) -> list[str]:
        """Print the bot's Slack and PagerDuty activity since the last call; return what failed."""
        calls = self._slack.calls
        fresh, self._seen_calls = calls[self._seen_calls :], len(calls)
        problems = []
        for call in fresh:
            if not call.response.get("ok", False) and call.response.get("error") not in ("already_in_channel",):
                problems.append(f"{call.method} answered {call.response.get('error') or call.http_status}")
            elif call.method == "chat.postMessage":
                self._posted(call.params, call.response.get("ts"))
            elif call.method == "chat.update":
                self._updated(call.params)
            elif call.method == "conversations.create":
                self._line(f"  (channel #{call.response['channel']['name']} created)")
            elif call.method == "files.completeUploadExternal":
                for file in call.response.get("files", []):
                    self._line(f"  (file {file['name']} posted: {file.get('permalink')})")
            elif call.method == "conversations.setTopic":
                self._line(f"  (topic: {self.plain(call.params.get('topic', ''))})")
        responses = self._slack.responses()
        for response in responses[self._seen_responses :]:
            self._line(f"  (only you see) {self.plain(response.get('text', ''))}")
        self._seen_responses = len(responses)
        return problems + self._paged()

    def channel_name(self, channel_id: str) -> str:
        channel = self._slack.channel(channel_id)
        return channel["name"] if channel else channel_id

    def _posted(self, params: dict[str, Any], ts: str | None) -> None:
        """A message the bot posted, at its ts: the simulated Slack makes them on the story's clock."""
        where = self.channel_name(params.get("channel", ""))
        self._line(f"  #{where} · incident-bot: {self.plain(params.get('text', ''))}", ts_to_datetime(ts) if ts else None)
        buttons = _buttons(params.get("blocks"))
        if buttons:  # a message to act on: show what it says beyond its first line, and its buttons
            sections = _sections(params.get("blocks"))
            for line in (sections[0].splitlines()[1:] if sections else []):
                self._line(f"    | {self.plain(line)}")
            self._line("    " + " ".join(f"[{b['text']['text']}]" for b in buttons))

    def _updated(self, params: dict[str, Any]) -> None:
        """Alerts and pages are updated in place as they move on; the pinned summary's updates are not shown."""
        text = params.get("text", "")
        sections = _sections(params.get("blocks"))
        if not (text.startswith(("Watchdog:", "Paging")) and sections):
            return
        says = self.plain(sections[-1].splitlines()[-1])
        key = f"{params.get('channel')}/{params.get('ts')}"
        if self._updates.get(key) != says:  # re-rendered unchanged: nothing new to see
            self._updates[key] = says
            where = self.channel_name(params.get("channel", ""))
            self._line(f"  (#{where} · “{self.plain(text)}” now says: {says})")

    def _paged(self) -> list[str]:
        received = self._pagerduty.received
        fresh, self._seen_pages = received[self._seen_pages :], len(received)
        problems = []
        for request in fresh:
            body = request.body or {}
            summary = (body.get("payload") or {}).get("summary")
            self._line(f"  → PagerDuty got “{body.get('event_action')}” for {body.get('dedup_key')}"
                       f"{f': {summary}' if summary else ''} (answered {request.status})")
            if not 200 <= request.status < 300:
                problems.append(f"PagerDuty answered {request.status}: {request.response.get('message')}")
        return problems

    def plain(self, text: str) -> str:
        """What a person in the story's workspace and zone reads: Slack's markup in words (bot.slack_markup),
        people and channels by their names there, a Slack date (`<!date^…>`, which Slack's clients show in
        the reader's zone) in the story's zone rather than its fallback text, without emoji codes or emphasis."""
        channels = {channel["id"]: channel["name"] for channel in self._slack.channels()}
        text = to_plain(text, replace(_DEMO_NAMES, channels=channels), self._story.zone)
        return re.sub(r":[a-z_]+: ?", "", text).replace("\n", " ").replace("*", "")
