"""Timeline capture under load: signed message events over HTTP at a fixed concurrency.

Prints events/s and p50/p99 acknowledgement latency for the bot and, measured the same way in the same
run, for a bare Bolt app on the same server that only acknowledges (the floor), and for the same app
writing each event durably before it answers (`bare_bolt.py --durable`: the raw driver, a group commit,
on the same disk or server as the bot's store; what waiting for a durable write costs by itself), and checks that every sent event
was stored exactly once. The servers are up throughout and take turns, `--rounds` times
(closed loop through bench/loadgen.py, which reports its own CPU and event-loop lateness): throughput is
the median round's, latencies are pooled; each server's CPU (user and system, from /proc) per event
answered says why (a Python server is bound by one core). A PostgreSQL URL names a server: the bench
creates a database of its own there and drops it at the end.

    .venv/bin/python bench/capture.py [--events 3000] [--concurrency 16] [--rounds 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import common
import loadgen

from simulators.slack_requests import SlackRequests


@dataclass
class Figures:
    """One server's rounds, pooled: latencies of every request, and each round's throughput."""

    name: str
    sent: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)  # events/s answered 200, per round
    generator_cpu: float = 0.0  # seconds of CPU the load generator itself used
    generator_seconds: float = 0.0  # the rounds' wall time
    generator_lags: list[float] = field(default_factory=list)  # p99 of its event loop's lateness per round, seconds
    server_cpu: float = 0.0  # seconds of CPU the server process used in the rounds (user and system)

    @property
    def rate(self) -> float:
        """The median round's events/s."""
        return statistics.median(self.rates)

    def percentile(self, p: float) -> float:
        return common.percentile(self.latencies, p) * 1000

    @property
    def cpu_per_event_us(self) -> float:
        """The server's CPU per event answered, µs: with the GIL, a Python server's throughput is about one
        core divided by this."""
        return self.server_cpu / max(self.ok, 1) * 1e6

    def add(self, out: dict[str, Any], server_cpu: float) -> None:
        self.server_cpu += server_cpu
        ok = sum(1 for status in out["status"] if status == 200)
        self.sent += len(out["status"])
        self.ok += ok
        self.latencies += out["latency"]
        self.rates.append(ok / out["seconds"])
        self.generator_cpu += out["cpu_seconds"]
        self.generator_seconds += out["seconds"]
        self.generator_lags.append(out["loop_lag_p99"])


@dataclass
class Result:
    store: str
    events: int
    concurrency: int
    rounds: int
    floor: Figures
    durable: Figures  # the floor writing each event durably
    bot: Figures
    stored: int
    problems: list[str]

    def figures(self) -> dict[str, Any]:
        def one(f: Figures) -> dict[str, Any]:
            return {"rate": f.rate, "rates": f.rates, "p50_ms": f.percentile(50), "p99_ms": f.percentile(99),
                    "errors": f.sent - f.ok, "cpu_per_event_us": f.cpu_per_event_us,
                    "generator_cores": f.generator_cpu / f.generator_seconds,
                    "generator_lag_p99_ms": max(f.generator_lags) * 1000}

        return {"store": self.store, "events": self.events, "concurrency": self.concurrency, "rounds": self.rounds,
                "floor": one(self.floor), "bot": one(self.bot),
                "ratio_p50": self.bot.percentile(50) / self.floor.percentile(50),
                "ratio_p99": self.bot.percentile(99) / self.floor.percentile(99),
                "ratio_rate": self.bot.rate / self.floor.rate,
                "ratio_cpu": self.bot.cpu_per_event_us / self.floor.cpu_per_event_us,
                "stored": self.stored, "problems": self.problems, "durable": one(self.durable),
                "durable_ratio_rate": self.durable.rate / self.floor.rate, "bot_to_durable_rate": self.bot.rate / self.durable.rate}


def run(events: int = 3000, concurrency: int = 16, database_url: str | None = None, rounds: int = 3) -> Result:
    """`rounds` rounds of `events` events each, floor, durable floor then bot, all up throughout: a moment of
    noise on the shared machine lands in one round of one of them, and the median round shows through."""
    workdir = common.workdir()
    floor, bot = Figures("bare Bolt (floor)"), Figures("incident-bot capture")
    durable = Figures("bare Bolt, durable write")
    with common.store(database_url) as url, common.simulator() as slack:
        env = common.bot_env(slack, url, workdir)
        floor_port, durable_port, bot_port = common.free_port(), common.free_port(), common.free_port()
        with common.Running(common.floor_command(floor_port), env, floor_port, workdir) as floor_server, \
                common.Running(common.floor_command(durable_port, common.durable_floor_store(url)), env, durable_port,
                               workdir) as durable_server, \
                common.Running(common.bot_command(bot_port), env, bot_port, workdir) as bot_server:
            channel = common.declare(slack, f"http://127.0.0.1:{bot_port}", "Benchmark")
            common.settle(slack)
            for port, target in ((floor_port, "C0FLOOR"), (durable_port, "C0FLOOR"), (bot_port, channel)):  # warm-up
                loadgen.run(port, common.SECRET, _events(port, target, min(events, 300), "warm-up"), concurrency=concurrency)
            for n in range(rounds):
                for figures, server, port, target in ((floor, floor_server, floor_port, "C0FLOOR"),
                                                      (durable, durable_server, durable_port, "C0FLOOR"),
                                                      (bot, bot_server, bot_port, channel)):
                    bodies = _events(port, target, events, f"r{n}")
                    before = server.cpu_seconds()
                    out = loadgen.run(port, common.SECRET, bodies, concurrency=concurrency)
                    figures.add(out, server.cpu_seconds() - before)
        counted = Counter(item.text for item in common.items_of_channel(url, channel)
                          if item.slack_ts and not item.text.startswith("warm-up"))
    sent = events * rounds
    stored = sum(1 for n in counted.values() if n == 1)
    problems = []
    if stored != sent or len(counted) != sent:
        problems.append(f"{stored} of {sent} sent events stored exactly once "
                        f"({sent - len(counted)} missing, {sum(1 for n in counted.values() if n > 1)} duplicated)")
    for figures in (floor, durable, bot):  # a floor that failed measured nothing
        if figures.ok != figures.sent:
            problems.append(f"{figures.name}: {figures.sent - figures.ok} of {figures.sent} events not acknowledged with 200")
    return Result(common.store_name(database_url), events, concurrency, rounds, floor, durable, bot, stored, problems)


def report(result: Result) -> None:
    floor, bot = result.floor, result.bot
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"store: {result.store}; {result.rounds} rounds of {result.events} events at concurrency {result.concurrency}")
    print(f"{'':24} {'events/s (rounds)':>26} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU us/ev':>9} "
          f"{'gen. cores':>10} {'gen. lag p99':>12}")
    for f in (floor, result.durable, bot):
        rounds = "/".join(f"{r:.0f}" for r in f.rates)
        print(f"{f.name:24} {f.rate:6.0f} ({rounds:>17}) {f.percentile(50):8.2f} {f.percentile(99):8.2f} {f.sent - f.ok:7d} "
              f"{f.cpu_per_event_us:9.0f} {f.generator_cpu / f.generator_seconds:10.2f} {max(f.generator_lags) * 1000:9.2f} ms")
    print(f"ratio bot/floor: p50 {bot.percentile(50) / floor.percentile(50):.2f}x, "
          f"p99 {bot.percentile(99) / floor.percentile(99):.2f}x, throughput {bot.rate / floor.rate:.2f}x (median rounds), "
          f"server CPU per event {bot.cpu_per_event_us / floor.cpu_per_event_us:.2f}x")
    print(f"the floor writing each event durably: throughput {result.durable.rate / floor.rate:.2f}x the floor's; "
          f"the bot's {bot.rate / result.durable.rate:.2f}x its")
    print(f"stored exactly once: {result.stored} of {result.events * result.rounds} sent events")
    for problem in result.problems:
        print(f"PROBLEM: {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="floor, durable floor then bot, this many times, all up")
    parser.add_argument("--database-url", help="the bot's store (default: a SQLite file in a temporary folder); "
                        "for PostgreSQL, a database of its own is created on that server and dropped at the end")
    args = parser.parse_args()
    result = run(args.events, args.concurrency, args.database_url, args.rounds)
    report(result)
    return 1 if result.problems else 0


def _events(port: int, channel: str, count: int, prefix: str) -> list[tuple[str, bytes]]:
    """Signed-to-be message events, each with its own ts and event id (built before the clock starts)."""
    requests = SlackRequests(f"http://127.0.0.1:{port}", common.SECRET)
    base = int(time.time()) - 3600 + sum(prefix.encode()) % 1000  # another second per round: ts never repeat
    bodies = []
    for i in range(count):
        ts = f"{base + i // 100000}.{i % 100000:06d}"
        event = {"type": "message", "channel": channel, "user": "U0ALICE", "text": f"{prefix} event {i}", "ts": ts,
                 "event_ts": ts}
        bodies.append(("application/json", requests.event_body(event, event_id=f"Ev{prefix}x{i:08d}")))
    requests.close()
    return bodies


if __name__ == "__main__":
    sys.exit(main())
