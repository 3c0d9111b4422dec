"""The one source of time. Everything asks a Clock, so tests move time instead of sleeping."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, the demo's scripted story)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


class ScaledClock:
    """Time running `rate` times faster than real time from `start` (the demo's story: hours of an
    outage in under a minute). Real time is read from time.monotonic, so a change of the system clock
    does not move it; the scaled time never goes backwards."""

    def __init__(self, start: datetime, rate: float) -> None:
        """`rate`: scaled seconds per real second, > 0 (300: five minutes a second)."""
        if start.tzinfo is None:
            raise ValueError("ScaledClock needs an aware datetime")
        if not rate > 0:
            raise ValueError(f"a ScaledClock's rate must be above 0 scaled seconds per real second, not {rate}")
        self.rate = rate
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._origin) * self.rate)

    def real_seconds_until(self, moment: datetime) -> float:
        """Real seconds until the clock reads `moment`; 0 when it already has."""
        return max((moment - self.now()).total_seconds() / self.rate, 0.0)
