"""An alert storm: 1,000 alerts in 50 groups sent at once to POST /webhooks/alertmanager, as Alertmanager's
notifiers would in an outage (each group's notification re-sent as alerts join it: 20 per group).

Prints: whether every alert was stored, the Slack calls the bot made for them (posts and updates), the
time until Slack showed every group's last state, and the webhook's answer latency p50/p99 next to the
floor measured the same way in the same run (`bare_webhook.py`: the same server, reading the body and
answering, nothing else). The bot paces Slack calls to Slack's limits (chat.postMessage about one per
second per channel, chat.update Tier 3), so "time until Slack shows" is bounded below by them.

    .venv/bin/python bench/alert_storm.py [--groups 50] [--per-group 20] [--concurrency 16] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import common
import httpx
import sqlalchemy

TOKEN = "bench-alertmanager-token"
ALERTS = "C0ALERTS"


@dataclass
class Result:
    store: str
    groups: int
    alerts: int
    notifications: int
    stored: int
    posts: int
    updates: int
    shown_seconds: float | None
    floor_ms: tuple[float, float]
    bot_ms: tuple[float, float]
    problems: list[str]

    def figures(self) -> dict[str, Any]:
        return {"store": self.store, "groups": self.groups, "alerts": self.alerts, "notifications": self.notifications,
                "stored": self.stored, "slack_posts": self.posts, "slack_updates": self.updates,
                "seconds_until_slack_shows_all": self.shown_seconds,
                "floor_p50_ms": self.floor_ms[0], "floor_p99_ms": self.floor_ms[1],
                "bot_p50_ms": self.bot_ms[0], "bot_p99_ms": self.bot_ms[1], "problems": self.problems}


def notifications(groups: int, per_group: int) -> list[dict[str, Any]]:
    """Alertmanager's webhook v4 bodies: for each group, one per alert joining it (so the last holds all)."""
    started = datetime.now(UTC) - timedelta(minutes=5)
    bodies = []
    for g in range(groups):
        alerts = []
        for i in range(per_group):
            labels = {"alertname": f"Storm{g}", "instance": f"db-{i}", "severity": "critical", "team": "db"}
            alerts.append({
                "status": "firing", "labels": labels, "annotations": {"summary": f"db-{i}: connections exhausted"},
                "startsAt": (started + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus.local:9090/graph",
                "fingerprint": f"{g:08x}{i:08x}",
            })
            bodies.append({
                "version": "4", "groupKey": f'{{}}:{{alertname="Storm{g}"}}', "truncatedAlerts": 0, "status": "firing",
                "receiver": "incident-bot", "groupLabels": {"alertname": f"Storm{g}"},
                "commonLabels": {"alertname": f"Storm{g}", "severity": "critical", "team": "db"},
                "commonAnnotations": {}, "externalURL": "http://alertmanager.local:9093", "alerts": list(alerts),
            })
    return bodies


def send_all(url: str, bodies: list[bytes], concurrency: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    failed: list[int] = []

    def worker(chunk: list[bytes]) -> None:
        with httpx.Client(timeout=60) as client:
            for body in chunk:
                started = time.perf_counter()
                status = client.post(url, content=body, headers={"Content-Type": "application/json",
                                                                  "Authorization": f"Bearer {TOKEN}"}).status_code
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if status != 200:
                        failed.append(status)

    threads = [threading.Thread(target=worker, args=(bodies[i::concurrency],)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise SystemExit(f"{len(failed)} notifications not answered 200: {sorted(set(failed))}")
    return latencies


def run(groups: int = 50, per_group: int = 20, concurrency: int = 16, database_url: str | None = None) -> Result:
    workdir = common.workdir()
    bodies = [json.dumps(b).encode() for b in notifications(groups, per_group)]
    with common.store(database_url) as url, common.simulator() as slack:
        slack.add_channel("alerts", channel_id=ALERTS, members=[common.ALICE])
        env = common.bot_env(slack, url, workdir)
        config = workdir / "incident-bot.toml"
        config.write_text(config.read_text() + f'\n[alerts]\nchannel = "{ALERTS}"\nwebhook_token = "{TOKEN}"\n')
        floor_port, bot_port = common.free_port(), common.free_port()
        with common.Running([sys.executable, str(common.HERE / "bare_webhook.py"), str(floor_port)], env, floor_port, workdir):
            floor = send_all(f"http://127.0.0.1:{floor_port}/webhooks/alertmanager", bodies, concurrency)
        with common.Running(common.bot_command(bot_port), env, bot_port, workdir):
            started = time.monotonic()
            bot = send_all(f"http://127.0.0.1:{bot_port}/webhooks/alertmanager", bodies, concurrency)
            shown = _wait_shown(slack, groups, per_group, started)
            common.settle(slack)
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            stored = connection.execute(sqlalchemy.text("SELECT count(*) FROM alert_instances")).scalar_one()
        engine.dispose()
        posts = sum(1 for c in slack.calls_to("chat.postMessage") if c.params.get("channel") == ALERTS)
        updates = len(slack.calls_to("chat.update"))
    problems = []
    if stored != groups * per_group:
        problems.append(f"{stored} of {groups * per_group} alerts stored")
    if posts != groups:
        problems.append(f"{posts} posts for {groups} groups (one each expected)")
    if shown is None:
        problems.append("Slack did not show every group's last state within the wait")

    def ms(values: list[float]) -> tuple[float, float]:
        return common.percentile(values, 50) * 1000, common.percentile(values, 99) * 1000

    return Result(common.store_name(database_url), groups, groups * per_group, len(bodies), stored, posts, updates,
                  shown, ms(floor), ms(bot), problems)


def _wait_shown(slack: Any, groups: int, per_group: int, started: float, timeout: float = 300) -> float | None:
    """Seconds from the first notification until every group's message shows all its alerts firing."""
    done = f"({per_group} of {per_group})"
    while time.monotonic() - started < timeout:
        messages = [m for m in slack.messages(ALERTS) if m.get("blocks")]
        if len(messages) == groups and all(done in json.dumps(m["blocks"]) for m in messages):
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def report(result: Result) -> None:
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"store: {result.store}; {result.alerts} alerts in {result.groups} groups, {result.notifications} notifications")
    print(f"stored: {result.stored} of {result.alerts} alerts")
    print(f"Slack calls: {result.posts} posts, {result.updates} updates "
          f"(for {result.notifications} notifications: coalesced)")
    shown = f"{result.shown_seconds:.1f} s" if result.shown_seconds is not None else "not within the wait"
    print(f"until Slack showed every group's last state: {shown}")
    print(f"{'webhook answer':24} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'bare webhook (floor)':24} {result.floor_ms[0]:8.2f} {result.floor_ms[1]:8.2f}")
    print(f"{'incident-bot':24} {result.bot_ms[0]:8.2f} {result.bot_ms[1]:8.2f}")
    print(f"ratio bot/floor: p50 {result.bot_ms[0] / result.floor_ms[0]:.1f}x, p99 {result.bot_ms[1] / result.floor_ms[1]:.1f}x")
    for problem in result.problems:
        print(f"PROBLEM: {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--per-group", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", help="the bot's store (default: a SQLite file in a temporary folder)")
    args = parser.parse_args()
    result = run(args.groups, args.per_group, args.concurrency, args.database_url)
    report(result)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
