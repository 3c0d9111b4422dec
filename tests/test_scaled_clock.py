"""A scaled clock (the demo's story time) and a Scheduler that runs its jobs on it (bot.scheduling.scheduled_by)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apscheduler.schedulers.base
import apscheduler.triggers.interval
import pytest

from bot.clock import ScaledClock
from bot.scheduling import Scheduler, scheduled_by
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
    gaps = [later - earlier for earlier, later in zip(ran["sample"], ran["sample"][1:], strict=False)]
    assert all(timedelta(seconds=40) <= gap <= timedelta(seconds=80) for gap in gaps), gaps
    [escalated] = ran["escalate"]
    assert MORNING + timedelta(minutes=5) <= escalated <= MORNING + timedelta(minutes=6)
    assert apscheduler.schedulers.base.datetime is datetime
    assert apscheduler.triggers.interval.datetime is datetime
