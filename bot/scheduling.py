"""Jobs that must happen later (escalations; later reminders and the watchdog), kept in the bot's own
database by APScheduler so a restart keeps them.

Jobs are stored by name ("escalate") with plain arguments, and each Scheduler registers what a name
means for it; its own worker threads know which Scheduler they serve, so two bots in one process (as in
tests) each run jobs with their own services. Several bot processes may share one database: each may
pick the same due job, so every job claims its work in the database before acting (see
PagingService.escalate), and a job another process already ran and removed is not an error here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, tzinfo
from typing import Any

import apscheduler.schedulers.base
import apscheduler.triggers.interval
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from sqlalchemy import Engine

from bot.clock import Clock

log = logging.getLogger(__name__)

JobHandler = Callable[..., None]
_worker = threading.local()


def run_job(name: str, *args: Any) -> None:
    """What APScheduler calls, by reference, for every stored job: on a worker thread of the Scheduler
    that picked the job, which knows that Scheduler's handlers."""
    handler = getattr(_worker, "handlers", {}).get(name)
    if handler is None:
        log.error("no handler for scheduled job %r here; it is dropped", name)
        return
    handler(*args)


def _serve(handlers: dict[str, JobHandler]) -> None:
    _worker.handlers = handlers


@contextmanager
def scheduled_by(clock: Clock) -> Iterator[None]:
    """While inside, every Scheduler in this process reads the time from `clock` (the demo's scaled
    story; tests do the same with a ManualClock). APScheduler 3 takes no clock: its scheduler and its
    interval trigger (a job's first run, one interval from now) call their modules' `datetime.now`, so
    those two names are pointed at `clock` and put back on the way out. A scheduler still sleeps real
    seconds until what it computes is due: whoever runs time faster must wake it often
    (Scheduler.wakeup), and whoever stops it should do so before leaving."""
    modules = (apscheduler.schedulers.base, apscheduler.triggers.interval)
    saved = [module.datetime for module in modules]

    class ClockedDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return clock.now().astimezone(tz) if tz else clock.now().replace(tzinfo=None)

        @classmethod
        def fromtimestamp(cls, t: float, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return datetime.fromtimestamp(t, tz)  # a plain datetime: jobs are pickled into the store

    for module in modules:
        module.datetime = ClockedDatetime
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.datetime = original


class SharedJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    def remove_job(self, job_id: str) -> None:
        with suppress(JobLookupError):  # another process ran it first
            super().remove_job(job_id)


class _BackgroundScheduler(BackgroundScheduler):  # type: ignore[misc]
    """APScheduler 3, minus a shutdown race: a pass over due jobs that overlaps shutdown() tries to
    remove a finished date job from the pending list of a stopped scheduler, fails, and kills its thread.
    Such a job stays in the store instead, and the next start runs it (every job here is idempotent)."""

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:  # woken by shutdown(): run nothing more
            return None
        return super()._process_jobs()

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None:
        try:
            super().remove_job(job_id, jobstore)
        except JobLookupError:
            if self.state != STATE_STOPPED:
                raise


class Scheduler:
    def __init__(self, engine: Engine) -> None:
        self._handlers: dict[str, JobHandler] = {}
        self._stopped = threading.Event()
        self._retry: threading.Timer | None = None
        self._changing = threading.Lock()  # held while adding or removing a job; see stop()
        self._started = False  # start() was called (it may still be retrying)
        self._store = SharedJobStore(engine=engine, tablename="apscheduler_jobs")
        workers = ThreadPoolExecutor(4, pool_kwargs={"initializer": _serve, "initargs": (self._handlers,)})
        self._scheduler = _BackgroundScheduler(
            jobstores={"default": self._store},
            executors={"default": workers},
            # A job whose time passed while no process was running still runs, once, at start.
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone="UTC",
        )

    def handle(self, name: str, handler: JobHandler) -> None:
        self._handlers[name] = handler

    def start(self, retry_every: float = 10.0) -> None:
        """Start now if the store answers; otherwise keep trying in the background, so the bot still
        serves (and says it is degraded) while its database is away."""
        self._started = True
        try:
            self._scheduler.start()
        except Exception as error:
            if self._stopped.is_set():
                return
            log.warning("scheduler not started, the store did not answer (%s); retrying in %g s", type(error).__name__, retry_every)
            self._retry = threading.Timer(retry_every, self.start, kwargs={"retry_every": retry_every})
            self._retry.daemon = True
            self._retry.start()

    def stop(self) -> None:
        """Let running jobs finish, then stop. APScheduler waits for running jobs while holding its
        job-store lock, which a job re-arming itself (a reminder) needs to add its next run; so from
        here on adding and removing jobs does nothing (the next start re-arms what is still needed)."""
        with self._changing:
            self._stopped.set()
        if self._retry is not None:
            self._retry.cancel()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def at(self, when: datetime, name: str, *args: Any, job_id: str) -> None:
        """Run handler `name` with `args` at `when` (replacing a job with the same id)."""
        with self._changing:
            if not self._stopped.is_set():
                self._scheduler.add_job(
                    run_job, "date", run_date=when, args=[name, *args], id=job_id, replace_existing=True, name=job_id
                )

    def every(self, seconds: float, name: str, *args: Any, job_id: str, first: datetime | None = None) -> None:
        """Run handler `name` every `seconds`; the first run at `first`, or one interval from now."""
        extra = {"next_run_time": first} if first is not None else {}
        with self._changing:
            if not self._stopped.is_set():
                self._scheduler.add_job(
                    run_job, "interval", seconds=seconds, args=[name, *args], id=job_id, replace_existing=True,
                    name=job_id, **extra,
                )

    def cancel(self, job_id: str) -> None:
        """Remove a job. A Scheduler never started (the `resolve`/`close` CLI, beside a running `serve`
        on the same database) removes it from the shared store directly, so no process runs it."""
        with self._changing, suppress(JobLookupError):
            if self._stopped.is_set():
                return
            if not self._started:
                self._store.remove_job(job_id)
            else:
                self._scheduler.remove_job(job_id)

    def pending(self) -> list[str]:
        return [job.id for job in self._scheduler.get_jobs()]

    def wakeup(self) -> None:
        """Look for due jobs now (tests move the clock, then call this)."""
        self._scheduler.wakeup()
