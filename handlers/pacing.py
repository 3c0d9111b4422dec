"""Pacing Slack calls to Slack's published rate limits, so a storm of work becomes a steady stream
Slack accepts instead of a burst of 429s (which the Web client would still retry, after Retry-After)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


class Pacer:
    """At most `burst` calls at once per key, then one per `interval` seconds (the generic cell rate
    algorithm: a token bucket kept as one time per key); `wait` blocks the caller, a background lane,
    until its turn, and returns how long it waited."""

    def __init__(self, interval: float, burst: int = 1) -> None:
        self.interval, self.burst = interval, burst
        self._lock = threading.Lock()
        self._due: dict[str, float] = {}  # per key: when the bucket would be empty again

    def wait(self, key: str) -> float:
        with self._lock:
            now = time.monotonic()
            due = max(self._due.get(key, now), now)
            start = max(now, due - (self.burst - 1) * self.interval)
            self._due[key] = due + self.interval
        if start > now:
            time.sleep(start - now)
        return start - now


@dataclass
class SlackPacing:
    """Slack's rate limits for what alerts post: chat.postMessage "1 per second per channel" (short
    bursts allowed), chat.update Tier 3 (50+ per minute, per workspace)."""

    posts: Pacer = field(default_factory=lambda: Pacer(interval=1.0, burst=4))
    updates: Pacer = field(default_factory=lambda: Pacer(interval=60 / 50, burst=10))
