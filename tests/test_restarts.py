"""Restarts: the bot killed (SIGKILL) in the middle of an incident comes back with its state, its scheduled
reminders and escalations intact, and does nothing twice.

The first tests run the real `incident-bot serve` as a subprocess against the Slack simulator and the
PagerDuty/Opsgenie receivers, kill it with SIGKILL while Slack work is in flight, and read the store.
The others run bots in process on one ManualClock, so deadlines pass without waiting; a hard kill is
imitated by abandoning a bot without its orderly close (what SIGKILL leaves: committed rows and the job
table; what was in flight is lost)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.clock import ManualClock, SystemClock
from bot.incidents.service import IncidentService
from bot.incidents.values import EntryKind, Status
from bot.paging.providers import RetryPolicy, Transport
from bot.timeline import TimelineService
from simulators.paging import OpsgenieReceiver, PagerDutyReceiver
from simulators.slack import SlackSimulator
from simulators.slack_requests import SlackRequests
from storage.database import make_engine, make_session_factory
from tests.conftest import (
    ALICE,
    ANNOUNCE,
    BOB,
    DBA,
    GENERAL,
    SIGNING_SECRET,
    SRE,
    RunningBot,
    escalating_teams,
    start_bot,
)

INCIDENT_BOT = str(Path(sys.executable).with_name("incident-bot"))


def config(escalate_after: int, sev1_minutes: int) -> str:
    return f"""
[slack]
announce_channel = "{ANNOUNCE}"
{escalating_teams(escalate_after)}
[reminders]
status_update_minutes = {{ sev1 = {sev1_minutes}, sev2 = 30, sev3 = 60, sev4 = 240 }}
"""




@pytest.fixture
def workspace(slack: SlackSimulator) -> SlackSimulator:
    slack.add_user(DBA, "dba1")
    slack.add_user(SRE, "sre1")
    return slack


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not met within {timeout:g}s")
        time.sleep(0.02)


# -- the store, read as an operator would after a crash ---------------------------------------


def stored_jobs(database_url: str) -> dict[str, float]:
    """apscheduler_jobs: job id -> next run time (epoch seconds)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, next_run_time FROM apscheduler_jobs")).all()
    finally:
        engine.dispose()
    return {row[0]: row[1] for row in rows}


def stored_record(database_url: str, number: str = "1") -> dict[str, Any]:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    timeline = TimelineService(sessions, SystemClock())
    try:
        incident = IncidentService(sessions, SystemClock()).find(number)
        assert incident is not None, f"incident {number} is not in the store"
        items = timeline.items(incident.id)
        with engine.connect() as connection:
            pages = connection.execute(text("SELECT team, status, escalated_at, acknowledged_at FROM pages ORDER BY id")).all()
        return {"incident": incident, "items": items, "pages": [tuple(p) for p in pages]}
    finally:
        timeline.close()
        engine.dispose()


# -- `incident-bot serve` as a process ------------------------------------------------------------


class Served:
    """One `incident-bot serve` process; its output is read on a thread so the pipe never fills."""

    def __init__(self, tmp_path: Path, slack: SlackSimulator, database_url: str, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.config = tmp_path / "incident-bot.toml"
        self.process = subprocess.Popen(
            [INCIDENT_BOT, "serve", "--host", "127.0.0.1", "--port", "0"],
            env={**{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "INCIDENT_BOT"))},
                 "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                 "SLACK_API_URL": slack.base_url, "DATABASE_URL": database_url,
                 "INCIDENT_BOT_CONFIG": str(self.config), **env},
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        found = wait_until(lambda: self._serving() or self.process.poll() is not None, 30, "serve to start")
        assert isinstance(found, str), f"serve exited early:\n{self.output}"
        self.url = found
        self.requests = SlackRequests(found, SIGNING_SECRET, response_url=slack.response_url())

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def _serving(self) -> str | None:
        for line in list(self.lines):
            if match := re.search(r"serving Slack at (\S+)/slack/events", line):
                return match.group(1)
        return None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        self.requests.close()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._reader.join(5)
        assert self.process.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.requests.close()

    def command(self, slack: SlackSimulator, text: str, channel: str, user: str = ALICE):
        sent = self.requests.command(text, user_id=user, channel_id=channel, response_url=slack.response_url("r"))
        assert sent.response.status_code == 200, (text, sent.response.text, self.output)
        return sent


def message_event(channel: str, text_: str, ts: str, user: str = BOB) -> dict[str, Any]:
    return {"type": "message", "channel": channel, "user": user, "text": text_, "ts": ts, "event_ts": ts,
            "channel_type": "channel", "team": "T0SIMULATE"}


@pytest.fixture
def serve(tmp_path: Path, workspace: SlackSimulator, database_url: str, pagerduty: PagerDutyReceiver,
          opsgenie: OpsgenieReceiver) -> Iterator[Callable[[], Served]]:
    """Start `incident-bot serve` on the test's store (SQLite or PostgreSQL); every process is stopped at the end."""
    (tmp_path / "incident-bot.toml").write_text(config(escalate_after=2, sev1_minutes=3))
    env = {"PAGERDUTY_EVENTS_URL": pagerduty.events_url, "OPSGENIE_API_URL": opsgenie.url}
    started: list[Served] = []

    def start() -> Served:
        started.append(Served(tmp_path, workspace, database_url, env))
        return started[-1]

    yield start
    for served in started:
        served.stop()


def channel_texts(slack: SlackSimulator, channel_id: str) -> list[str]:
    return [m.get("text", "") for m in slack.messages(channel_id)]


def test_sigkill_mid_incident_keeps_state_and_jobs_and_repeats_nothing(
    serve: Callable[[], Served], workspace: SlackSimulator, database_url: str, pagerduty: PagerDutyReceiver,
    opsgenie: OpsgenieReceiver,
) -> None:
    slack = workspace

    # 1. Killed while setting the channel up: Slack answered pins.add with a 429 and a long Retry-After.
    first = serve()
    slack.fail_next("pins.add", "ratelimited", retry_after=60)
    declared = first.command(slack, "declare sev1 Checkout is timing out", GENERAL)
    assert "Declaring incident 1" in declared.response.json()["text"]
    slack.wait_for(lambda s: s.calls_to("pins.add"), timeout=10)
    first.kill()

    # …the next start finishes the set-up without repeating a step.
    second = serve()
    slack.wait_for(lambda s: [c for c in s.calls_to("pins.add") if c.http_status == 200], timeout=10)
    channel = slack.calls_to("conversations.create")[0].response["channel"]["id"]
    slack.wait_for(lambda s: stored_record(database_url)["incident"].provisioned_at is not None, timeout=10)
    assert len(slack.calls_to("conversations.create")) == 1
    assert len(slack.messages(channel)) == 1  # the summary, posted once
    assert len(slack.messages(ANNOUNCE)) == 1  # announced once

    # 2. The incident goes on: messages captured, a note, a page; each acknowledged with a 200.
    base = time.time() - 10
    for i, words in enumerate(["pool at 100% on primary", "deploy 4512 went out at 10:02", "rolling back"]):
        sent = second.requests.event(message_event(channel, words, f"{base + i:.6f}"))
        assert sent.response.status_code == 200, sent.response.text
    second.command(slack, "note hypothesis The new pool settings leak connections", channel)
    second.command(slack, "page database Connections exhausted", channel)
    pagerduty.wait_for(lambda r: r.alerts(), timeout=10)
    wait_until(lambda: any(j.startswith("escalate-page-") for j in stored_jobs(database_url)), 10, "escalation job stored")
    # Killed while posting an update: Slack rate-limits it with a long Retry-After.
    slack.fail_next("chat.postMessage", "ratelimited", retry_after=60)
    posts_before = len(slack.calls_to("chat.postMessage"))
    second.command(slack, "update Rolling back deploy 4512", channel)
    slack.wait_for(lambda s: len(s.calls_to("chat.postMessage")) > posts_before, timeout=10)
    jobs = stored_jobs(database_url)
    second.kill()

    third = serve()
    incident_id = stored_record(database_url)["incident"].id
    wanted = {"escalate-page-1", f"status-reminder-{incident_id}"}
    assert wanted <= set(jobs), jobs
    calls_at_start = len(slack.calls)
    time.sleep(1.0)  # let the restarted bot do whatever it would do at start (nothing should repeat)

    # Jobs: the same escalation and reminder, at the same times, once each.
    after = stored_jobs(database_url)
    assert {j: after.get(j) for j in wanted} == {j: jobs[j] for j in wanted}
    assert sorted(j for j in after if j.startswith(("escalate-", "status-reminder-"))) == sorted(wanted)
    escalate_at = datetime.fromtimestamp(after["escalate-page-1"], UTC)
    assert timedelta(minutes=1) < escalate_at - datetime.now(UTC) <= timedelta(minutes=2)

    # State: everything acknowledged before the kill is stored, once.
    record = stored_record(database_url)
    incident = record["incident"]
    assert incident.status is Status.INVESTIGATING and incident.severity.value == "sev1" and incident.provisioned_at
    kinds = [item.kind for item in record["items"]]
    assert kinds.count(EntryKind.DECLARED) == 1 and kinds.count(EntryKind.MESSAGE) == 3
    assert kinds.count(EntryKind.HYPOTHESIS) == 1 and kinds.count(EntryKind.PAGED) == 1 and kinds.count(EntryKind.UPDATE) == 1
    assert [i.text for i in record["items"] if i.kind is EntryKind.MESSAGE] == [
        "pool at 100% on primary", "deploy 4512 went out at 10:02", "rolling back"]
    assert record["pages"] == [("database", "sent", None, None)]

    # Nothing done twice: no second channel, announcement, page message or alert. The update that was
    # still being posted at the kill is shown now, once, in the channel and the announcement channel.
    assert len(slack.calls_to("conversations.create")) == 1
    announced = [m["text"] for m in slack.messages(ANNOUNCE)]
    assert len(announced) == 2 and sum("Rolling back deploy 4512" in t for t in announced) == 1
    assert sum(t.startswith("Paging") for t in channel_texts(slack, channel)) == 1
    assert sum("Rolling back deploy 4512" in t for t in channel_texts(slack, channel)) == 1
    assert pagerduty.triggers("incident-bot-1-database") == 1 and opsgenie.received == []
    since_start = [c.method for c in slack.calls[calls_at_start:] if c.method not in ("auth.test", "users.info")]
    catching_up = {"chat.postMessage", "chat.update", "conversations.setTopic"}  # the update, and the summary after it
    assert set(since_start) <= catching_up, since_start

    # The command line reads the same record back from the store (the postmortem's preview).
    preview = subprocess.run([INCIDENT_BOT, "postmortem", "1"], env={**os.environ, "DATABASE_URL": database_url,
                             "INCIDENT_BOT_CONFIG": str(third.config)}, capture_output=True, text=True, timeout=30, check=False)
    assert preview.returncode == 0, preview.stderr
    assert "Checkout is timing out" in preview.stdout and "The new pool settings leak connections" in preview.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_update_acknowledged_before_sigkill_reaches_the_channel_after_restart(
    serve: Callable[[], Served], workspace: SlackSimulator, database_url: str,
) -> None:
    slack = workspace
    first = serve()
    first.command(slack, "declare sev1 Checkout is timing out", GENERAL)
    slack.wait_for(lambda s: s.calls_to("pins.add") and len(s.messages(ANNOUNCE)) == 1, timeout=10)
    channel = slack.calls_to("conversations.create")[0].response["channel"]["id"]
    slack.fail_next("chat.postMessage", "ratelimited", retry_after=60)
    first.command(slack, "update Rolling back deploy 4512", channel)  # acknowledged: 200, stored
    slack.wait_for(lambda s: s.calls_to("chat.postMessage")[-1].http_status == 429, timeout=10)
    first.kill()
    assert [i.kind for i in stored_record(database_url)["items"]].count(EntryKind.UPDATE) == 1

    serve()
    slack.wait_for(lambda s: any("Rolling back deploy 4512" in t for t in channel_texts(s, channel)), timeout=5)


# -- in process, on one clock: deadlines that pass across a hard kill fire once ----------------------


IN_PROCESS = config(escalate_after=10, sev1_minutes=15)


def abandon(bot: RunningBot) -> None:
    """What SIGKILL leaves of a bot: its committed rows and its job table. It stops answering, its
    scheduler stops without waiting for (or finishing) anything, and queued Slack work is dropped."""
    bot.server.stop()
    bot.requests.close()
    services = bot.runtime.services
    services.scheduler._scheduler.shutdown(wait=False)  # no orderly stop: a kill waits for nothing
    for lane in services.background._lanes:
        lane.shutdown(wait=False, cancel_futures=True)
    services.timeline.close()
    bot.runtime.transport.close()
    bot.runtime.engine.dispose()


def restart(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock, env: dict[str, str],
            *, resume: bool = True) -> RunningBot:
    """A new bot on the same store, started as `serve` starts one: build (which starts the scheduler), then
    resume. With resume=False the test calls resume() itself, at a moment it chooses."""
    bot = start_bot(tmp_path, slack, database_url, IN_PROCESS, clock=clock, env=env,
                    paging_transport=Transport(RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.1), timeout=3))
    if resume:
        bot.runtime.resume()
    return bot


def page_statuses(database_url: str) -> list[tuple[str, str]]:
    return [(team, status) for team, status, *_ in stored_record(database_url)["pages"]]


def command(bot: RunningBot, channel: dict, text_: str, user: str = ALICE) -> None:
    sent = bot.requests.command(text_, user_id=user, channel_id=channel["id"], response_url=bot.slack.response_url("r"))
    assert sent.response.status_code == 200, sent.response.text
    bot.settle()


def tick(bot: RunningBot, clock: ManualClock, delta: timedelta) -> None:
    clock.advance(delta)
    bot.runtime.services.scheduler.wakeup()


def reminders(slack: SlackSimulator, channel: dict) -> list[str]:
    return [t for t in channel_texts(slack, channel["id"]) if t.startswith(":alarm_clock:")]


def escalation_notices(slack: SlackSimulator, channel: dict) -> list[str]:
    return [t for t in channel_texts(slack, channel["id"]) if "did not acknowledge" in t]


@pytest.fixture
def env(pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver) -> dict[str, str]:
    return {"PAGERDUTY_EVENTS_URL": pagerduty.events_url, "OPSGENIE_API_URL": opsgenie.url}


def test_deadlines_passed_across_a_hard_kill_fire_once_and_not_again_after_another(
    tmp_path: Path, workspace: SlackSimulator, database_url: str, clock: ManualClock, env: dict[str, str],
    pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver,
) -> None:
    slack = workspace
    first = restart(tmp_path, slack, database_url, clock, env)
    channel = first.declare("declare sev1 Checkout is timing out")
    command(first, channel, "page database Connections exhausted")
    pagerduty.wait_for(lambda r: r.alerts())
    incident = first.runtime.services.incidents.find_by_channel(channel["id"])
    assert incident is not None
    jobs = stored_jobs(database_url)
    assert {"escalate-page-1", f"status-reminder-{incident.id}"} <= set(jobs)
    abandon(first)

    clock.advance(timedelta(minutes=15, seconds=1))  # both deadlines pass while no bot runs
    second = restart(tmp_path, slack, database_url, clock, env, resume=False)
    try:
        opsgenie.wait_for(lambda r: r.alerts(), timeout=10)
        slack.wait_for(lambda s: reminders(s, channel) and escalation_notices(s, channel), timeout=10)
        # resume() once the escalated page is delivered (resuming during its delivery is the test below).
        wait_until(lambda: ("sre", "sent") in page_statuses(database_url), 10, "the escalated page delivered")
        second.runtime.resume()
        second.settle()
        time.sleep(0.5)  # the scheduler's thread would pick a second run up right away
        second.settle()
        assert opsgenie.creates("incident-bot-1-sre") == 1
        assert len(escalation_notices(slack, channel)) == 1 and len(reminders(slack, channel)) == 1
        assert [(p.team, p.escalated_at is not None) for p in second.runtime.services.paging.pages(incident.id)] == [
            ("database", True), ("sre", False)]
        assert sum(t.startswith("Paging") for t in channel_texts(slack, channel["id"])) == 2  # database, then sre
        assert "escalate-page-1" not in stored_jobs(database_url)
    finally:
        abandon(second)

    clock.advance(timedelta(minutes=14))  # killed again; the next reminder is not due yet
    third = restart(tmp_path, slack, database_url, clock, env)
    try:
        third.runtime.services.scheduler.wakeup()
        time.sleep(0.5)
        third.settle()
        assert opsgenie.creates("incident-bot-1-sre") == 1 and pagerduty.triggers("incident-bot-1-database") == 1
        assert len(escalation_notices(slack, channel)) == 1 and len(reminders(slack, channel)) == 1
        tick(third, clock, timedelta(minutes=1, seconds=1))  # now it is: reminded once more, once
        slack.wait_for(lambda s: len(reminders(s, channel)) == 2, timeout=10)
        time.sleep(0.5)
        third.settle()
        assert len(reminders(slack, channel)) == 2
    finally:
        third.stop()


def test_an_escalation_picked_up_but_not_claimed_when_killed_still_happens_after_restart(
    tmp_path: Path, workspace: SlackSimulator, database_url: str, clock: ManualClock, env: dict[str, str],
    pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver,
) -> None:
    slack = workspace
    first = restart(tmp_path, slack, database_url, clock, env)
    channel = first.declare("declare sev1 Checkout is timing out")
    command(first, channel, "page database")
    pagerduty.wait_for(lambda r: r.alerts())
    picked, release = threading.Event(), threading.Event()

    def dies_before_claiming(page_id: int) -> None:  # the process is killed while the job has just started
        picked.set()
        release.wait(30)

    first.runtime.services.scheduler.handle("escalate", dies_before_claiming)
    try:
        tick(first, clock, timedelta(minutes=10, seconds=1))
        assert picked.wait(10), "the escalation job did not start"
        abandon(first)
        assert "escalate-page-1" not in stored_jobs(database_url)  # handed to a worker: gone from the store…
        assert page_statuses(database_url) == [("database", "sent")]  # …and the page was never claimed
        second = restart(tmp_path, slack, database_url, clock, env)
        try:
            second.runtime.services.scheduler.wakeup()
            opsgenie.wait_for(lambda r: r.alerts(), timeout=5)
        finally:
            second.stop()
    finally:
        release.set()


def test_an_escalation_due_at_start_is_delivered_and_announced_once(
    tmp_path: Path, workspace: SlackSimulator, database_url: str, clock: ManualClock, env: dict[str, str],
    pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver,
) -> None:
    slack = workspace
    first = restart(tmp_path, slack, database_url, clock, env)
    channel = first.declare("declare sev1 Checkout is timing out")
    command(first, channel, "page database")
    pagerduty.wait_for(lambda r: r.alerts())
    abandon(first)

    clock.advance(timedelta(minutes=10, seconds=1))  # the escalation falls due while no bot runs
    opsgenie.fail_next(202, hang_seconds=1.5)  # Opsgenie is slow to answer (it takes the alert at once)
    second = restart(tmp_path, slack, database_url, clock, env, resume=False)  # build_runtime started the scheduler…
    try:
        wait_until(lambda: ("sre", "sending") in page_statuses(database_url), 10, "the escalation started")
        second.runtime.resume()  # …and serve calls resume() next, while the escalated page is still being delivered
        wait_until(lambda: ("sre", "sent") in page_statuses(database_url), 10, "the escalated page delivered")
        second.settle()
        assert opsgenie.creates("incident-bot-1-sre") == 1
        assert len(escalation_notices(slack, channel)) == 1
    finally:
        second.stop()
