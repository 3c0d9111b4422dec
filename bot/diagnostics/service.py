"""Running a read-only check against a target, safely, and keeping what it found.

Safety first: the bot must never make a struggling database worse. Each run opens one fresh connection
(no pool is kept) with a connect timeout, the target's statement timeout and a read-only transaction,
and closes it whatever happens; runs against one target never overlap. When the target refuses the
connection because it is full, that is reported plainly: it is itself the finding. Only checks from
the drivers' allowlist run; nobody can send SQL of their own.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import DiagnosticsSection
from bot.diagnostics.drivers import (
    CHECKS,
    CheckResult,
    CheckTimedOut,
    TargetError,
    TargetRefused,
    TargetUnreachable,
    UnsupportedCheck,
    driver_for,
)
from bot.incidents.values import EntryKind, Incident
from storage import diagnostics as store
from storage import incidents as incident_store
from storage.database import transaction
from storage.models import DiagnosticRun

CONNECT_TIMEOUT_SECONDS = 5.0
WAIT_FOR_TURN_SECONDS = 15.0  # a person's run waits this long behind another run on the same target


@dataclass(frozen=True)
class RunOutcome:
    target: str
    check: str
    outcome: str  # ok, refused, unreachable, timeout, unsupported, error, busy, denied
    headline: str  # the finding, or in plain words why there is none
    duration_ms: int
    result: CheckResult | None = None
    run_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class UnknownTarget(LookupError):
    def __init__(self, target: str, known: list[str]) -> None:
        super().__init__(target)
        self.target, self.known = target, known


class DiagnosticsService:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, config: DiagnosticsSection) -> None:
        self._sessions = sessions
        self._clock = clock
        self._config = config
        self._turns = {name: threading.Lock() for name in config.targets}

    def targets(self) -> list[str]:
        return sorted(self._config.targets)

    def checks(self, target: str) -> tuple[str, ...]:
        try:
            return driver_for(make_url(self._config.targets[target].url)).checks
        except TargetError:
            return ()

    def allowed(self, user_id: str) -> bool:
        """`allowed_users` decides; an empty list lets every incident participant run checks."""
        return not self._config.allowed_users or user_id in self._config.allowed_users

    def refuse(self, incident: Incident, user_id: str, check: str, target: str) -> None:
        """Record an attempt by someone not allowed: who tried what is part of the incident's story."""
        now = self._clock.now()
        with transaction(self._sessions) as session:
            store.add_run(session, DiagnosticRun(incident_id=incident.id, target=target, check=check, requested_by=user_id,
                                                 started_at=now, duration_ms=0, outcome="denied", headline="not allowed"))
            row = incident_store.by_id(session, incident.id)
            assert row is not None
            incident_store.add_entry(session, row, EntryKind.DIAGNOSTIC_DENIED, now, user_id, f"{check} on {target}",
                                     {"check": check, "target": target})

    def run(self, check: str, target: str, *, incident: Incident | None, user_id: str | None,
            wait: float = WAIT_FOR_TURN_SECONDS) -> RunOutcome:
        """Run one check and, for an incident, store it (a run and a timeline entry)."""
        outcome = self.measure(check, target, wait=wait)
        if incident is None:
            return outcome
        now = self._clock.now()
        with transaction(self._sessions) as session:
            run = store.add_run(session, DiagnosticRun(
                incident_id=incident.id, target=target, check=check, requested_by=user_id, started_at=now,
                duration_ms=outcome.duration_ms, outcome=outcome.outcome, headline=outcome.headline,
                result=dataclasses.asdict(outcome.result) if outcome.result else None,
            ))
            row = incident_store.by_id(session, incident.id)
            assert row is not None
            figures: dict[str, Any] = dict(outcome.result.figures) if outcome.result else {}
            incident_store.add_entry(session, row, EntryKind.DIAGNOSTIC, now, user_id, outcome.headline,
                                     {"check": check, "target": target, "outcome": outcome.outcome,
                                      "run_id": run.id, "figures": figures})
            return dataclasses.replace(outcome, run_id=run.id)

    def measure(self, check: str, target: str, *, wait: float = 0.0) -> RunOutcome:
        """Run one check, storing nothing: one connection, opened and closed here."""
        if target not in self._config.targets:
            raise UnknownTarget(target, self.targets())
        if check not in CHECKS:
            raise UnsupportedCheck(f"`{check}` is not a check; the checks are {', '.join(CHECKS)}")
        turn = self._turns[target]
        if not turn.acquire(timeout=wait):
            return RunOutcome(target, check, "busy", f"another check is running on {target}; try again in a moment", 0)
        started = time.monotonic()
        try:
            return self._run_once(check, target, started)
        finally:
            turn.release()

    def _run_once(self, check: str, target: str, started: float) -> RunOutcome:
        config = self._config.targets[target]

        def done(outcome: str, headline: str, result: CheckResult | None = None) -> RunOutcome:
            return RunOutcome(target, check, outcome, headline, int((time.monotonic() - started) * 1000), result)

        try:
            driver = driver_for(make_url(config.url))
            if check not in driver.checks:
                return done("unsupported", f"`{check}` does not apply to a {driver.backend} target")
            connection = driver.connect(make_url(config.url), connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                        statement_timeout_ms=config.statement_timeout_ms)
        except TargetRefused as error:
            return done("refused", error.reason)
        except TargetUnreachable as error:
            return done("unreachable", error.reason)
        except TargetError as error:
            return done("error", error.reason)
        try:
            result = driver.run(connection, check)
        except CheckTimedOut as error:
            return done("timeout", f"{error.reason} (statement timeout {config.statement_timeout_ms} ms)")
        except UnsupportedCheck as error:
            return done("unsupported", error.reason)
        except TargetError as error:
            return done("error", error.reason)
        finally:
            driver.close(connection)
        return done("ok", result.headline, result)
