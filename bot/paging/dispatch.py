"""Provider calls, each provider on lanes of its own, so one that hangs delays only itself.

Seen before this existed: with an Opsgenie that accepted connections and never answered, PagerDuty's
resolve waited 56 s behind Opsgenie's five 10-second attempts, and so did the next command. Here every
provider gets its own lanes; calls for one alert at one provider keep their order (a trigger is never
overtaken by its resolve), and a call's retries stay within its own budget (providers.RetryPolicy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from threading import Lock
from typing import TypeVar

from bot.lanes import Lanes

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Told:
    """How one call to one provider ended: `error` None when it was accepted."""

    provider: str
    action: str  # "trigger", "acknowledge", "resolve"
    page_id: int | None
    error: str | None = None
    attempts: int = 0
    confirmed: bool = False  # it failed, but the provider's own webhook said it happened


class Dispatcher:
    def __init__(self, lanes_per_provider: int = 4) -> None:
        self._size = lanes_per_provider
        self._lanes: dict[str, Lanes] = {}
        self._lock = Lock()

    def submit(self, provider: str, key: str, call: Callable[[], T]) -> Future[T]:
        """Run `call` on `provider`'s lanes after earlier calls for the same alert `key`; the future
        holds its result or its exception (also logged)."""
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(call())
            except BaseException as error:
                log.exception("a call to %s failed", provider)
                future.set_exception(error)

        self._for(provider).submit(key, run)
        return future

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no provider call is queued or running (tests, a graceful stop)."""
        with self._lock:
            lanes = list(self._lanes.values())
        return all(lane.wait_idle(timeout) for lane in lanes)

    @property
    def idle(self) -> bool:
        with self._lock:
            lanes = list(self._lanes.values())
        return all(lane.idle for lane in lanes)

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._lock:
            lanes = list(self._lanes.values())
        for lane in lanes:
            lane.shutdown(timeout)

    def _for(self, provider: str) -> Lanes:
        with self._lock:
            if provider not in self._lanes:
                self._lanes[provider] = Lanes(self._size, name=f"pager-{provider.lower()}")
            return self._lanes[provider]
