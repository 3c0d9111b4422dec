"""Resident memory of the bot with 100 open incidents.

Starts `incident-bot serve` as a process of its own against the Slack simulator (so the load
generator's memory is not counted), reads its resident set size (VmRSS in /proc/PID/status) once it is
up and idle, then declares `--incidents` incidents through signed slash commands (each one provisioned:
channel created, people invited, summary pinned) and sends `--messages` signed message events into each
one's channel, and reads it again once all is stored and the bot has been quiet for a few seconds; also
after `/incident list` has rendered them all. Prints before, after, the growth per incident and the
peak (VmHWM). Checks that every incident has its channel and every message was stored exactly once.

    .venv/bin/python bench/memory.py [--incidents 100] [--messages 50] [--database-url URL]
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import common

from simulators.slack_requests import SlackRequests

MiB = 2**20


@dataclass
class Result:
    store: str
    incidents: int
    messages: int
    idle: int = 0  # bytes
    after: int = 0
    after_list: int = 0
    peak: int = 0
    open_incidents: int = 0
    stored: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {"store": self.store, "incidents": self.incidents, "messages_each": self.messages,
                "idle_mib": self.idle / MiB, "after_mib": self.after / MiB, "after_list_mib": self.after_list / MiB,
                "peak_mib": self.peak / MiB, "growth_mib": (self.after - self.idle) / MiB,
                "per_incident_kib": (self.after - self.idle) / max(1, self.incidents) / 1024,
                "open_incidents": self.open_incidents, "stored": self.stored, "seconds": self.seconds,
                "problems": self.problems}


def run(incidents: int = 100, messages: int = 50, database_url: str | None = None) -> Result:
    result = Result(common.store_name(database_url), incidents, messages)
    workdir = common.workdir()
    with common.store(database_url) as url, common.simulator() as slack:
        env = common.bot_env(slack, url, workdir)
        port = common.free_port()
        with common.Running(common.bot_command(port), env, port, workdir) as bot:
            requests = SlackRequests(bot.url, common.SECRET, response_url=slack.response_url())
            # Idle, but having answered once (Bolt's first request imports and builds what it lazily needs).
            requests.command("help", user_id=common.ALICE, channel_id=common.ANNOUNCE)
            common.settle(slack, quiet=2)
            result.idle = bot.status("VmRSS")

            started = time.perf_counter()
            channels = [common.declare(slack, bot.url, f"Memory bench incident {n}") for n in range(incidents)]
            base = int(time.time()) - 3600
            bodies = [common.message_body(requests, channel, f"memory bench message {n}-{i} about the checkout outage",
                                          f"{base + n}.{i:06d}", f"EvMem{n:04d}{i:04d}")
                      for n, channel in enumerate(channels) for i in range(messages)]
            _send_all(bot.url, bodies, threads=8)
            common.settle(slack, quiet=3)
            result.seconds = time.perf_counter() - started
            result.after = bot.status("VmRSS")
            listed = requests.command("list", user_id=common.ALICE, channel_id=common.ANNOUNCE)
            said = re.match(r"(\d+) open incident", listed.response.json().get("text", ""))
            result.open_incidents = int(said.group(1)) if said else 0
            result.after_list = bot.status("VmRSS")
            result.peak = bot.status("VmHWM")
            requests.close()
        counted: Counter[str] = Counter()
        for channel in channels:
            counted.update(i.text for i in common.items_of_channel(url, channel)
                           if i.slack_ts and i.text.startswith("memory bench message "))
    result.stored = sum(1 for n in counted.values() if n == 1)
    if len(set(channels)) != incidents:
        result.problems.append(f"{len(set(channels))} channels for {incidents} incidents")
    if result.stored != incidents * messages or len(counted) != incidents * messages:
        result.problems.append(f"{result.stored} of {incidents * messages} messages stored exactly once")
    if result.open_incidents != incidents:
        result.problems.append(f"/incident list shows {result.open_incidents} of the {incidents} open incidents")
    return result


def _send_all(url: str, bodies: list[bytes], threads: int) -> None:
    failures: list[int] = []

    def worker(chunk: list[bytes]) -> None:
        requests = SlackRequests(url, common.SECRET, timeout=30)
        try:
            for body in chunk:
                if requests.send(body, "application/json").response.status_code != 200:
                    failures.append(1)
        finally:
            requests.close()

    workers = [threading.Thread(target=worker, args=(bodies[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        raise SystemExit(f"{len(failures)} message events not acknowledged with 200")


def report(result: Result) -> None:
    f = result.figures()
    print(f"\nstore: {result.store}; {result.incidents} incidents declared, {result.messages} messages each "
          f"(in {result.seconds:.1f} s)")
    print(f"bot RSS idle {f['idle_mib']:.1f} MiB; with {result.incidents} open incidents {f['after_mib']:.1f} MiB "
          f"(+{f['growth_mib']:.1f} MiB, {f['per_incident_kib']:.0f} KiB per incident); after /incident list "
          f"{f['after_list_mib']:.1f} MiB; peak (VmHWM) {f['peak_mib']:.1f} MiB")
    print(f"stored exactly once: {result.stored} of {result.incidents * result.messages} messages; "
          f"/incident list shows {result.open_incidents} open")
    for problem in result.problems:
        print(f"PROBLEM: {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=100)
    parser.add_argument("--messages", type=int, default=50, help="message events into each incident's channel")
    parser.add_argument("--database-url", help="the bot's store (default: a SQLite file in a temporary folder); "
                        "for PostgreSQL, a database of its own is created on that server and dropped at the end")
    args = parser.parse_args()
    result = run(args.incidents, args.messages, args.database_url)
    report(result)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
