"""Timeline capture under load: signed message events over HTTP at a fixed concurrency.

Prints events/s and p50/p99 acknowledgement latency for the bot and, measured the same way in the same
run, for a bare Bolt app on the same server that only acknowledges (the floor), and checks that every
sent event was stored exactly once. A PostgreSQL URL names a server: the bench creates a database of its
own there and drops it at the end.

    .venv/bin/python bench/capture.py [--events 3000] [--concurrency 16] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import common
import loadgen

from simulators.slack_requests import SlackRequests


@dataclass
class Figures:
    name: str
    sent: int
    ok: int
    seconds: float
    latencies: list[float]
    generator_cpu: float  # seconds of CPU the load generator itself used
    generator_lag: float  # p99 of its event loop's lateness, seconds

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def percentile(self, p: float) -> float:
        return common.percentile(self.latencies, p) * 1000


@dataclass
class Result:
    store: str
    events: int
    concurrency: int
    floor: Figures
    bot: Figures
    stored: int
    problems: list[str]

    def figures(self) -> dict[str, Any]:
        def one(f: Figures) -> dict[str, Any]:
            return {"rate": f.rate, "p50_ms": f.percentile(50), "p99_ms": f.percentile(99), "errors": f.sent - f.ok,
                    "generator_cores": f.generator_cpu / f.seconds, "generator_lag_p99_ms": f.generator_lag * 1000}

        return {"store": self.store, "events": self.events, "concurrency": self.concurrency,
                "floor": one(self.floor), "bot": one(self.bot),
                "ratio_p50": self.bot.percentile(50) / self.floor.percentile(50),
                "ratio_p99": self.bot.percentile(99) / self.floor.percentile(99),
                "ratio_rate": self.bot.rate / self.floor.rate, "stored": self.stored, "problems": self.problems}


def run(events: int = 3000, concurrency: int = 16, database_url: str | None = None) -> Result:
    workdir = common.workdir()
    with common.store(database_url) as url, common.simulator() as slack:
        env = common.bot_env(slack, url, workdir)
        floor_port, bot_port = common.free_port(), common.free_port()
        with common.Running(common.floor_command(floor_port), env, floor_port, workdir):
            floor = _load("bare Bolt (floor)", floor_port, "C0FLOOR", events, concurrency)
        with common.Running(common.bot_command(bot_port), env, bot_port, workdir):
            channel = common.declare(slack, f"http://127.0.0.1:{bot_port}", "Benchmark")
            bot = _load("incident-bot capture", bot_port, channel, events, concurrency)
        counted = Counter(item.text for item in common.items_of_channel(url, channel) if item.slack_ts)
    stored = sum(1 for n in counted.values() if n == 1)
    problems = []
    if stored != events or len(counted) != events:
        problems.append(f"{stored} of {events} sent events stored exactly once "
                        f"({events - len(counted)} missing, {sum(1 for n in counted.values() if n > 1)} duplicated)")
    if bot.ok != bot.sent:
        problems.append(f"{bot.sent - bot.ok} of {bot.sent} events not acknowledged with 200")
    return Result(common.store_name(database_url), events, concurrency, floor, bot, stored, problems)


def report(result: Result) -> None:
    floor, bot = result.floor, result.bot
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"store: {result.store}; {result.events} events at concurrency {result.concurrency}")
    print(f"{'':24} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'gen. cores':>10} {'gen. lag p99':>12}")
    for f in (floor, bot):
        print(f"{f.name:24} {f.rate:9.0f} {f.percentile(50):8.2f} {f.percentile(99):8.2f} {f.sent - f.ok:7d} "
              f"{f.generator_cpu / f.seconds:10.2f} {f.generator_lag * 1000:9.2f} ms")
    print(f"ratio bot/floor: p50 {bot.percentile(50) / floor.percentile(50):.2f}x, "
          f"p99 {bot.percentile(99) / floor.percentile(99):.2f}x, throughput {bot.rate / floor.rate:.2f}x")
    print(f"stored exactly once: {result.stored} of {result.events} sent events")
    for problem in result.problems:
        print(f"PROBLEM: {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", help="the bot's store (default: a SQLite file in a temporary folder); "
                        "for PostgreSQL, a database of its own is created on that server and dropped at the end")
    args = parser.parse_args()
    result = run(args.events, args.concurrency, args.database_url)
    report(result)
    return 1 if result.problems else 0


def _load(name: str, port: int, channel: str, events: int, concurrency: int) -> Figures:
    requests = SlackRequests(f"http://127.0.0.1:{port}", common.SECRET)
    base = int(time.time()) - 3600
    bodies = []
    for i in range(events):  # built and signed before the clock starts: only the server is measured
        ts = f"{base + i // 1000}.{i % 1000:03d}{i:03d}"[:17]
        event = {"type": "message", "channel": channel, "user": "U0ALICE", "text": f"event {i}", "ts": ts, "event_ts": ts}
        bodies.append(("application/json", requests.event_body(event, event_id=f"Ev{i:08d}")))
    requests.close()
    out = loadgen.run(port, common.SECRET, bodies, concurrency=concurrency)
    ok = sum(1 for status in out["status"] if status == 200)
    return Figures(name, events, ok, out["seconds"], out["latency"], out["cpu_seconds"], out["loop_lag_p99"])


if __name__ == "__main__":
    sys.exit(main())
