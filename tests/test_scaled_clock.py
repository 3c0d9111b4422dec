"""A scaled clock (the demo's story time), a Scheduler that runs its jobs on it (bot.scheduling.scheduled_by), and a
simulated Slack whose message ts come from it."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apscheduler.schedulers.base
import apscheduler.triggers.interval
import pytest

from bot.clock import ScaledClock
from bot.scheduling import Scheduler, scheduled_by
from bot.timeline import ts_to_datetime
from simulators.slack import SlackSimulator
from storage.database import make_engine

MORNING = datetime(2023, 11, 12, 8, 15, tzinfo=UTC)  # the example outage's day: years from the real clock


def test_a_scaled_clock_runs_rate_times_faster_from_its_start() -> None:
    clock = ScaledClock(MORNING, rate=600)  # ten minutes a second

    first = clock.now()
    time.sleep(0.2)
    second = clock.now()

    assert MORNING <= first < MORNING + timedelta(seconds=30)
    assert timedelta(minutes=1.9) <= second - first <= timedelta(minutes=3)  # 0.2 s of real time, plus a loaded machine
    assert second.tzinfo is UTC
    assert 0.9 <= clock.real_seconds_until(second + timedelta(minutes=10)) <= 1.0
    assert clock.real_seconds_until(MORNING) == 0


@pytest.mark.parametrize(("start", "rate", "says"), [
    (datetime(2023, 11, 12, 8, 15), 60.0, "needs an aware datetime"),
    (MORNING, 0.0, "rate must be above 0 scaled seconds per real second, not 0.0"),
    (MORNING, float("nan"), "not nan"),
])
def test_a_scaled_clock_refuses_a_naive_start_or_a_rate_that_does_not_move_forward(start: datetime, rate: float,
                                                                                   says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ScaledClock(start, rate)


def test_jobs_fall_due_on_the_scaled_clock_and_the_real_one_is_put_back(tmp_path: Path) -> None:
    clock = ScaledClock(MORNING, rate=600)
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    ran: dict[str, list[datetime]] = {"sample": [], "escalate": []}
    with scheduled_by(clock):
        scheduler = Scheduler(engine)
        scheduler.handle("sample", lambda: ran["sample"].append(clock.now()))
        scheduler.handle("escalate", lambda: ran["escalate"].append(clock.now()))
        scheduler.start()
        # As the watchdog registers itself: no first run given, so one interval from the clock's now.
        scheduler.every(60, "sample", job_id="sample")
        scheduler.at(MORNING + timedelta(minutes=5), "escalate", job_id="escalate")
        stop = threading.Event()

        def wake() -> None:  # the scheduler sleeps real seconds; the clock's run ten times as many
            while not stop.wait(0.02):
                scheduler.wakeup()

        waker = threading.Thread(target=wake)
        waker.start()
        try:
            time.sleep(1.0)  # ten minutes of the clock
        finally:
            stop.set()
            waker.join()
            scheduler.stop()
        engine.dispose()

    assert 6 <= len(ran["sample"]) <= 11, ran["sample"]
    assert all(MORNING < moment < MORNING + timedelta(minutes=15) for moment in ran["sample"])
    gaps = [later - earlier for earlier, later in itertools.pairwise(ran["sample"])]
    assert all(timedelta(seconds=40) <= gap <= timedelta(seconds=80) for gap in gaps), gaps
    [escalated] = ran["escalate"]
    assert MORNING + timedelta(minutes=5) <= escalated <= MORNING + timedelta(minutes=6)
    assert apscheduler.schedulers.base.datetime is datetime
    assert apscheduler.triggers.interval.datetime is datetime


def test_the_simulated_slack_makes_message_ts_from_the_clock_it_is_given() -> None:
    clock = ScaledClock(MORNING, rate=600)
    with SlackSimulator(now=lambda: clock.now().timestamp()) as slack:
        slack.add_user("U0ALICE", "alice")
        slack.add_channel("general", channel_id="C0GENERAL", members=["U0ALICE"])
        first = slack.add_message("C0GENERAL", "one", user="U0ALICE")
        time.sleep(0.1)  # a minute of the clock
        second = slack.add_message("C0GENERAL", "two", user="U0ALICE")

    said = [ts_to_datetime(ts) for ts in (first, second)]
    assert MORNING <= said[0] < MORNING + timedelta(seconds=30)
    assert timedelta(seconds=50) <= said[1] - said[0] <= timedelta(minutes=3)
