"""Acknowledgement latency at a fixed rate (open loop), for slash commands and for message events: the
bot next to a bare Bolt app on the same waitress server that only acknowledges (the floor), in the
same run.

Requests go out on a schedule (request i at start + i / rate, from a load generator of its own,
`loadgen.py`) whether or not earlier ones were answered, and each is timed from when it was meant to
be sent, so a stall is charged to every request it held up (no coordinated omission).

The slash command is `/incident note action <text>` in the incident's channel: it parses, stores a
timeline entry (its own transaction, keyed by the trigger_id so a retry finds it done), acknowledges,
and only then publishes to Slack in the background; nothing waits on Slack before the ack. The events
are channel messages captured into the incident's timeline (acknowledged once stored). A second floor,
the same app writing each request's id durably before it answers (`bare_bolt.py --durable`: the raw
driver, a group commit, on the same disk or server as the bot's store), says what waiting for a durable write costs by itself.
The three servers are up for the whole run and the phases alternate: floor, durable floor and bot
commands, then the same for events. Checks that every note and every message was stored exactly once.

    .venv/bin/python bench/ack_latency.py [--command-rate 20] [--event-rate 100] [--seconds 20] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import common
import httpx
import loadgen

from bot.incidents.values import EntryKind
from simulators.slack_requests import SlackRequests


@dataclass
class Phase:
    server: str  # "floor", "durable floor" or "bot"
    kind: str  # "commands" or "events"
    rate: float
    latencies: list[float]  # seconds, from when each request was meant to go
    lags: list[float]  # seconds the load generator sent each late
    statuses: list[int]
    seconds: float
    connections: int
    generator_cpu: float  # seconds of CPU the load generator itself used
    generator_lag: float  # p99 of its event loop's lateness, seconds

    @property
    def sent(self) -> int:
        return len(self.statuses)

    @property
    def ok(self) -> int:
        return sum(1 for s in self.statuses if s == 200)

    def ms(self, p: float) -> float:
        return common.percentile(self.latencies, p) * 1000

    def summary(self) -> dict[str, Any]:
        return {"server": self.server, "kind": self.kind, "rate": self.rate, "sent": self.sent, "ok": self.ok,
                "achieved_rate": self.sent / self.seconds, "p50_ms": self.ms(50), "p99_ms": self.ms(99),
                "max_ms": max(self.latencies) * 1000, "mean_ms": statistics.fmean(self.latencies) * 1000,
                "send_lag_p99_ms": common.percentile(self.lags, 99) * 1000, "connections": self.connections,
                "generator_cores": self.generator_cpu / self.seconds, "generator_lag_p99_ms": self.generator_lag * 1000}


@dataclass
class Result:
    store: str
    seconds: float
    phases: list[Phase] = field(default_factory=list)
    stored: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (stored once, sent)
    problems: list[str] = field(default_factory=list)

    def phase(self, server: str, kind: str) -> Phase:
        return next(p for p in self.phases if p.server == server and p.kind == kind)

    def figures(self) -> dict[str, Any]:
        rows = []
        for kind in ("commands", "events"):
            floor, durable, bot = self.phase("floor", kind), self.phase("durable floor", kind), self.phase("bot", kind)
            rows.append({"kind": kind, "rate": bot.rate, "floor": floor.summary(), "bot": bot.summary(),
                         "ratio_p50": bot.ms(50) / floor.ms(50), "ratio_p99": bot.ms(99) / floor.ms(99),
                         "stored": self.stored.get(kind), "durable": durable.summary(),
                         "durable_ratio_p50": durable.ms(50) / floor.ms(50), "durable_ratio_p99": durable.ms(99) / floor.ms(99)})
        return {"store": self.store, "seconds": self.seconds, "rows": rows, "problems": self.problems}


def run(command_rate: float = 20, event_rate: float = 100, seconds: float = 20, database_url: str | None = None) -> Result:
    result = Result(common.store_name(database_url), seconds)
    workdir = common.workdir()
    with common.store(database_url) as url, common.simulator() as slack:
        env = common.bot_env(slack, url, workdir)
        floor_port, durable_port, bot_port = common.free_port(), common.free_port(), common.free_port()
        with common.Running(common.floor_command(floor_port), env, floor_port, workdir), \
                common.Running(common.floor_command(durable_port, common.durable_floor_store(url)), env, durable_port, workdir), \
                common.Running(common.bot_command(bot_port), env, bot_port, workdir):
            channel = common.declare(slack, f"http://127.0.0.1:{bot_port}", "Acknowledgement latency")
            requests = SlackRequests(f"http://127.0.0.1:{bot_port}", common.SECRET)
            commands = int(command_rate * seconds)
            events = int(event_rate * seconds)
            base = int(time.time()) - 3600

            def command_bodies(target: str, prefix: str, count: int) -> list[bytes]:
                return [common.command_body(f"note action {prefix} {i}", target, response_url=slack.response_url())
                        for i in range(count)]

            def event_bodies(target: str, prefix: str, count: int, offset: int) -> list[bytes]:
                return [common.message_body(requests, target, f"{prefix} {i}", f"{base + offset + i // 1000}.{i % 1000:06d}",
                                            f"Ev{prefix.replace(' ', '')}{i:08d}") for i in range(count)]

            # Warm up the three servers, one of each, unmeasured (first imports, statement caches, connections).
            for port, target in ((floor_port, "C0FLOOR"), (durable_port, "C0FLOOR"), (bot_port, channel)):
                _closed_loop(port, "application/x-www-form-urlencoded", command_bodies(target, "warm-up note", 50))
                _closed_loop(port, "application/json", event_bodies(target, "warm-up message", 50, 0))
            common.settle(slack)

            form, json_type = "application/x-www-form-urlencoded", "application/json"
            for server, port, target in (("floor", floor_port, "C0FLOOR"), ("durable floor", durable_port, "C0FLOOR"),
                                         ("bot", bot_port, channel)):
                result.phases.append(_phase(server, "commands", port, command_rate, form, command_bodies(target, "bench note", commands)))
            common.settle(slack)  # the notes' publishing, done after their acks, must not overlap the next phases
            for server, port, target in (("floor", floor_port, "C0FLOOR"), ("durable floor", durable_port, "C0FLOOR"),
                                         ("bot", bot_port, channel)):
                result.phases.append(_phase(server, "events", port, event_rate, json_type, event_bodies(target, "bench message", events, 100)))
            common.settle(slack)
            requests.close()
        items = common.items_of_channel(url, channel)

    notes = Counter(i.text for i in items if i.kind is EntryKind.ACTION and i.text.startswith("bench note "))
    messages = Counter(i.text for i in items if i.slack_ts and i.text.startswith("bench message "))
    for kind, counted, sent in (("commands", notes, commands), ("events", messages, events)):
        once = sum(1 for n in counted.values() if n == 1)
        result.stored[kind] = (once, sent)
        if once != sent or len(counted) != sent:
            result.problems.append(f"{kind}: {once} of {sent} stored exactly once "
                                   f"({sent - len(counted)} missing, {sum(1 for n in counted.values() if n > 1)} duplicated)")
    for phase in result.phases:
        if phase.ok != phase.sent:
            result.problems.append(f"{phase.server} {phase.kind}: {phase.sent - phase.ok} of {phase.sent} requests not answered 200")
    return result


def _phase(server: str, kind: str, port: int, rate: float, content_type: str, bodies: list[bytes]) -> Phase:
    out = loadgen.run(port, common.SECRET, [(content_type, body) for body in bodies], rate=rate)
    return Phase(server, kind, rate, out["latency"], out["lag"], out["status"], out["seconds"], out["connections"],
                 out["cpu_seconds"], out["loop_lag_p99"])


def _closed_loop(port: int, content_type: str, bodies: list[bytes]) -> None:
    requests = SlackRequests(f"http://127.0.0.1:{port}", common.SECRET)
    try:
        for body in bodies:
            requests.send(body, content_type)
    except httpx.HTTPError:
        pass
    finally:
        requests.close()


def report(result: Result) -> None:
    print(f"\nstore: {result.store}; open loop, {result.seconds:g} s per phase; latency from when each request was "
          "meant to be sent to its answer")
    print(f"{'':28} {'rate/s':>7} {'sent':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'lag p99':>8} {'errors':>7} "
          f"{'gen. cores':>10} {'gen. loop lag p99':>17}")
    for phase in result.phases:
        s = phase.summary()
        print(f"{phase.server + ' ' + phase.kind:28} {s['achieved_rate']:7.1f} {s['sent']:6d} {s['p50_ms']:8.2f} "
              f"{s['p99_ms']:8.2f} {s['max_ms']:8.1f} {s['send_lag_p99_ms']:8.2f} {phase.sent - phase.ok:7d} "
              f"{s['generator_cores']:10.3f} {s['generator_lag_p99_ms']:14.2f} ms")
    for row in result.figures()["rows"]:
        once, sent = row["stored"]
        print(f"{row['kind']}: bot/floor p50 {row['ratio_p50']:.2f}x, p99 {row['ratio_p99']:.2f}x (the durable floor: "
              f"p50 {row['durable_ratio_p50']:.2f}x, p99 {row['durable_ratio_p99']:.2f}x the floor's); "
              f"stored exactly once: {once} of {sent}")
    for problem in result.problems:
        print(f"PROBLEM: {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--command-rate", type=float, default=20, help="slash commands per second")
    parser.add_argument("--event-rate", type=float, default=100, help="message events per second")
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--database-url", help="the bot's store (default: a SQLite file in a temporary folder); "
                        "for PostgreSQL, a database of its own is created on that server and dropped at the end")
    args = parser.parse_args()
    result = run(args.command_rate, args.event_rate, args.seconds, args.database_url)
    report(result)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
