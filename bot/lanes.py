"""Ordered work off the caller's thread: lanes of one worker each, a task's key choosing its lane.

Work for one key (an incident, an alert) runs in order on one lane; different keys run side by side.
A task that fails is logged and its `on_error` tells a person, because a failure after Slack was
answered is otherwise invisible. `handlers.background.Background` (Slack work after the answer) and
`bot.paging.dispatch.Dispatcher` (provider calls, a set of lanes per provider) are built on it.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)

ErrorReporter = Callable[[BaseException], None]


class Lanes:
    def __init__(self, lanes: int = 8, name: str = "work") -> None:
        self._lanes = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-{i}") for i in range(lanes)]
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, key: str | int, task: Callable[[], object], on_error: ErrorReporter | None = None) -> Future[None]:
        """Run `task` on the lane for `key` (an incident id, a user id…), after earlier work for the same key."""
        lane = self._lanes[zlib.crc32(str(key).encode()) % len(self._lanes)]
        with self._idle:
            self._pending += 1
        # The caller's context goes along, so what the task logs still says which incident it is about.
        return lane.submit(contextvars.copy_context().run, self._run, task, on_error)

    @property
    def idle(self) -> bool:
        """Nothing queued or running at this instant."""
        with self._idle:
            return self._pending == 0

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no work is queued or running (tests, a graceful stop). False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        self.wait_idle(timeout)
        for lane in self._lanes:
            lane.shutdown(wait=False, cancel_futures=True)

    def _run(self, task: Callable[[], object], on_error: ErrorReporter | None) -> None:
        try:
            task()
        except Exception as error:
            log.exception("background work failed: %s", getattr(task, "__qualname__", task))
            if on_error is not None:
                try:
                    on_error(error)
                except Exception:
                    log.exception("could not report the failure either")
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()
