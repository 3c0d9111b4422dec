"""The watchdog: sample each target's connection figures, and raise the alarm before the pool runs dry.

It alerts when usage crosses a threshold, when a session has sat idle in a transaction too long (the
mark of a leak), or when the trend of the last samples reaches the limit within the horizon. One alert
per episode: an episode is opened with a claim in the database (so several bot processes alert once)
and cleared only when every figure is comfortably back (hysteresis), so a value wobbling around the
threshold does not alert over and over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import WatchdogSection
from bot.diagnostics.service import DiagnosticsService, RunOutcome
from storage import diagnostics as store
from storage.database import transaction
from storage.models import WatchdogAlert, WatchdogSample

TREND_SAMPLES = 6  # how many recent samples the exhaustion trend is fitted to
# Below this share of the limit a trend is noise, not a leak: at 2 of 97 connections, two sessions opened
# after a start make a line that "runs out in about 3 min". A real leak is caught as it crosses it.
TREND_FLOOR_PERCENT = 20
SAMPLED_CHECK = "connections"  # what a sample is; a backend without it (SQLite) is not watched
CLEAR_MARGIN_PERCENT = 10  # usage must fall this far below the threshold to clear


@dataclass(frozen=True)
class Sample:
    taken_at: datetime
    in_use: int | None
    usable: int | None
    idle_in_transaction: int | None = None
    oldest_idle_in_transaction_seconds: int | None = None
    refused: str | None = None  # the target refused new connections: it is full

    @property
    def usage_percent(self) -> float | None:
        if self.refused:
            return 100.0
        if self.in_use is None or not self.usable:
            return None
        return self.in_use / self.usable * 100


@dataclass(frozen=True)
class Assessment:
    reasons: list[str]  # what is wrong now; empty when all is well
    calm: bool  # every figure is well inside its limit: an open episode may clear


@dataclass(frozen=True)
class WatchdogEvent:
    kind: str  # "opened" or "cleared"
    target: str
    alert_id: int
    reasons: list[str]
    snapshot: dict[str, Any] = field(default_factory=dict)


def assess(samples: list[Sample], config: WatchdogSection) -> Assessment:
    """Pure: what the recent samples (oldest first) say about a target."""
    if not samples:
        return Assessment([], calm=True)
    latest = samples[-1]
    reasons: list[str] = []
    usage = latest.usage_percent
    if latest.refused:
        reasons.append(f"the target refuses new connections: {latest.refused}")
    elif usage is not None and usage >= config.usage_alert_percent:
        reasons.append(f"{latest.in_use} of {latest.usable} usable connections in use ({usage:.0f}%; alert at {config.usage_alert_percent}%)")
    oldest = latest.oldest_idle_in_transaction_seconds
    if oldest is not None and oldest >= config.idle_in_transaction_alert_seconds:
        reasons.append(
            f"{latest.idle_in_transaction} session(s) idle in a transaction, the oldest for {_duration(oldest)} "
            f"(alert at {_duration(config.idle_in_transaction_alert_seconds)})"
        )
    minutes = exhaustion_minutes(samples[-TREND_SAMPLES:]) if (usage or 0) >= TREND_FLOOR_PERCENT else None
    if minutes is not None and minutes <= config.exhaustion_horizon_minutes and not latest.refused:
        reasons.append(f"at the current rate the connections run out in about {max(minutes, 0):.0f} min")
    # A sample without figures (the target unreachable, the check failed) says nothing is well: an open
    # episode must not clear on it, or the channel would be told the trouble is over while it cannot be seen.
    calm = (
        not latest.refused
        and latest.in_use is not None
        and (usage is None or usage < config.usage_alert_percent - CLEAR_MARGIN_PERCENT)
        and (oldest is None or oldest < config.idle_in_transaction_alert_seconds / 2)
        and (minutes is None or minutes > config.exhaustion_horizon_minutes * 2)
    )
    return Assessment(reasons, calm)


def exhaustion_minutes(samples: list[Sample]) -> float | None:
    """Minutes until `in_use` reaches `usable` on a least-squares line through the samples; None if the
    line is flat or falling, or there are too few samples to tell."""
    points = [(s.taken_at.timestamp() / 60, s.in_use) for s in samples if s.in_use is not None and s.usable]
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_u = sum(u for _, u in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    slope = sum((t - mean_t) * (u - mean_u) for t, u in points) / spread  # connections per minute
    if slope <= 0:
        return None
    latest = samples[-1]
    assert latest.usable is not None and latest.in_use is not None
    return (latest.usable - latest.in_use) / slope


def watched_targets(diagnostics: DiagnosticsService) -> dict[str, bool]:
    """Each configured diagnostics target -> whether the watchdog samples it: those whose backend has
    the `connections` check (PostgreSQL, MySQL/MariaDB; a SQLite file has no connections to count)."""
    return {target: SAMPLED_CHECK in diagnostics.checks(target) for target in diagnostics.targets()}


class Watchdog:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, diagnostics: DiagnosticsService,
                 config: WatchdogSection) -> None:
        self._sessions = sessions
        self._clock = clock
        self._diagnostics = diagnostics
        self._config = config

    def targets(self) -> list[str]:
        """The targets it samples: those whose backend has the `connections` check (PostgreSQL,
        MySQL/MariaDB). A SQLite file has no server and no connections to count, so it is not watched."""
        return [target for target, watched in watched_targets(self._diagnostics).items() if watched]

    def check(self, target: str) -> WatchdogEvent | None:
        """Take a sample, keep it, and say whether an episode opened or cleared. A target it does not
        watch (see `targets`; say, a job left in the store from an older version) is not sampled."""
        if target not in self.targets():
            return None
        outcome = self._diagnostics.measure(SAMPLED_CHECK, target, wait=0)
        if outcome.outcome == "busy":
            return None  # a person is running a check on it right now; next interval
        sample = _sample(outcome, self._clock.now())
        now = self._clock.now()
        with transaction(self._sessions) as session:
            store.add_sample(session, WatchdogSample(
                target=target, taken_at=sample.taken_at, in_use=sample.in_use, usable=sample.usable,
                idle_in_transaction=sample.idle_in_transaction,
                oldest_idle_in_transaction_seconds=sample.oldest_idle_in_transaction_seconds,
                refused=sample.refused is not None, error=None if outcome.ok else outcome.headline,
            ))
            session.flush()
            recent = [_from_row(row) for row in store.recent_samples(session, target, TREND_SAMPLES)]
            verdict = assess(recent, self._config)
            current = store.open_alert(session, target)
            snapshot = {"headline": outcome.headline, **(outcome.result.figures if outcome.result else {})}
            if current is None and verdict.reasons:
                alert = WatchdogAlert(target=target, open_key=target, opened_at=now, reasons=verdict.reasons, snapshot=snapshot)
                if store.claim_alert(session, alert):
                    return WatchdogEvent("opened", target, alert.id, verdict.reasons, snapshot)
            elif current is not None and verdict.calm and store.clear_alert(session, current.id, now):
                return WatchdogEvent("cleared", target, current.id, [], snapshot)
        return None

    def recent(self, target: str, limit: int = TREND_SAMPLES) -> list[Sample]:
        with self._sessions() as session:
            return [_from_row(row) for row in store.recent_samples(session, target, limit)]

    def record_message(self, alert_id: int, ts: str) -> None:
        with transaction(self._sessions) as session:
            alert = store.alert_by_id(session, alert_id)
            if alert is not None:
                alert.slack_ts = ts

    def alert(self, alert_id: int) -> WatchdogAlert | None:
        with self._sessions() as session:
            alert = store.alert_by_id(session, alert_id)
            if alert is not None:
                session.expunge(alert)
            return alert

    def link_incident(self, alert_id: int, incident_id: int) -> None:
        with transaction(self._sessions) as session:
            alert = store.alert_by_id(session, alert_id)
            if alert is not None:
                alert.incident_id = incident_id


def _sample(outcome: RunOutcome, at: datetime) -> Sample:
    if outcome.outcome == "refused":
        return Sample(at, None, None, refused=outcome.headline)
    figures = outcome.result.figures if outcome.result else {}

    def number(key: str) -> int | None:
        value = figures.get(key)
        return int(value) if isinstance(value, int | float) else None

    return Sample(at, number("in_use"), number("usable"), number("idle_in_transaction"),
                  number("oldest_idle_in_transaction_seconds"))


def _from_row(row: WatchdogSample) -> Sample:
    return Sample(row.taken_at, row.in_use, row.usable, row.idle_in_transaction, row.oldest_idle_in_transaction_seconds,
                  refused=row.error if row.refused else None)


def _duration(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"
