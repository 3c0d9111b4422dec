"""Each diagnostic check's wall time on a PostgreSQL with 90% of its connections in use, and how many
connections the bot held at the peak (it must be 1: one fresh connection per run, no pool).

    .venv/bin/python bench/diagnostics.py [--admin "host=127.0.0.1 user=postgres dbname=test"] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from bot.clock import SystemClock
from bot.config import DiagnosticsSection, TargetSection
from bot.diagnostics.drivers import CHECKS
from bot.diagnostics.service import DiagnosticsService

APPLICATION = "incident-bot-diagnostics"
ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@dataclass
class Result:
    max_connections: int
    usable: int
    leaked: int
    in_use: int
    runs: int
    timings: dict[str, list[float]]  # check -> ms of each run
    headlines: dict[str, str]
    peak: int  # connections the bot held at the peak

    @property
    def problems(self) -> list[str]:
        return [] if self.peak == 1 else [f"the bot held {self.peak} connections at the peak (must be 1)"]

    def figures(self) -> dict[str, Any]:
        return {"max_connections": self.max_connections, "usable": self.usable, "leaked": self.leaked,
                "in_use": self.in_use, "runs": self.runs, "peak": self.peak, "problems": self.problems,
                "checks": [{"check": check, "median_ms": statistics.median(ms), "max_ms": max(ms),
                            "result": self.headlines[check]} for check, ms in self.timings.items()]}


def run(admin: str = ADMIN, runs: int = 5) -> Result:
    with psycopg.connect(admin, autocommit=True) as connection:
        max_connections = int(connection.execute("SHOW max_connections").fetchone()[0])
        reserved = int(connection.execute("SHOW superuser_reserved_connections").fetchone()[0])
        in_use = connection.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'").fetchone()[0]
    usable = max_connections - reserved
    to_open = max(0, int(usable * 0.9) - in_use)
    leak = [psycopg.connect(admin, application_name="bench-leak") for _ in range(to_open)]
    for connection in leak:
        connection.execute("SELECT 1")  # idle in transaction, as a leak leaves them

    params = dict(part.split("=", 1) for part in admin.split())
    url = f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:{params.get('port', '5432')}/{params.get('dbname', 'postgres')}"
    service = DiagnosticsService(_no_sessions(), SystemClock(),
                                 DiagnosticsSection(targets={"bench": TargetSection(url=url, statement_timeout_ms=3000)}))
    peak = _PeakCounter(admin)
    timings: dict[str, list[float]] = {check: [] for check in CHECKS}
    headlines: dict[str, str] = {}
    try:
        peak.start()
        for _ in range(runs):
            for check in CHECKS:
                started = time.perf_counter()
                outcome = service.measure(check, "bench")
                timings[check].append((time.perf_counter() - started) * 1000)
                headlines[check] = f"{outcome.outcome}: {outcome.headline}"
    finally:
        peak.stop()
        for connection in leak:
            connection.close()
    return Result(max_connections, usable, to_open, in_use, runs, timings, headlines, peak.peak)


def report(result: Result) -> None:
    print(f"PostgreSQL max_connections {result.max_connections} (usable {result.usable}); held open by a leak: "
          f"{result.leaked} + {result.in_use} already in use = {100 * (result.leaked + result.in_use) / result.usable:.0f}% "
          f"of usable; {result.runs} runs per check")
    print(f"{'check':14} {'median ms':>10} {'max ms':>8}  result")
    for check, ms in result.timings.items():
        print(f"{check:14} {statistics.median(ms):10.1f} {max(ms):8.1f}  {result.headlines[check][:80]}")
    print(f"connections the bot held at the peak: {result.peak} (sampled every 2 ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--admin", default=ADMIN)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    result = run(args.admin, args.runs)
    report(result)
    return 1 if result.problems else 0


class _PeakCounter(threading.Thread):
    """Watches pg_stat_activity from outside for the bot's own sessions."""

    def __init__(self, admin: str) -> None:
        super().__init__(daemon=True)
        self._admin = admin
        self._halt = threading.Event()
        self.peak = 0

    def run(self) -> None:
        with psycopg.connect(self._admin, autocommit=True) as watcher:
            while not self._halt.is_set():
                count = watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APPLICATION,)).fetchone()[0]
                self.peak = max(self.peak, count)
                time.sleep(0.002)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _no_sessions():  # type: ignore[no-untyped-def]
    """measure() stores nothing, so it needs no store."""
    return None


if __name__ == "__main__":
    sys.exit(main())
