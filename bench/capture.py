"""Timeline capture under load: signed message events over HTTP at a fixed concurrency.

Prints events/s and p50/p99 acknowledgement latency for the bot and, measured the same way in the same
run, for a bare Bolt app on the same server that only acknowledges (the floor), and checks that every
sent event was stored exactly once.

    .venv/bin/python bench/capture.py [--events 3000] [--concurrency 16] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bot.clock import SystemClock
from bot.timeline import TimelineService
from simulators.slack import SlackSimulator
from simulators.slack_requests import SlackRequests
from storage.database import make_engine, make_session_factory

SECRET = "bench-signing-secret"
HERE = Path(__file__).resolve().parent


@dataclass
class Figures:
    name: str
    sent: int
    ok: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", help="the bot's store (default: a SQLite file in a temporary folder)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="incident-bot-bench-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    with SlackSimulator() as slack:
        slack.add_user("U0ALICE", "alice")
        slack.add_channel("incidents", channel_id="C0INCIDENTS", members=["U0ALICE"])
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": database_url,
            "INCIDENT_BOT_CONFIG": str(_config(workdir)),
        }
        env.pop("SLACK_APP_TOKEN", None)

        floor_port, bot_port = _free_port(), _free_port()
        with _running([sys.executable, str(HERE / "bare_bolt.py"), str(floor_port)], env, floor_port, workdir):
            floor = _load("bare Bolt (floor)", floor_port, "C0FLOOR", args.events, args.concurrency)
        bot_command = [str(Path(sys.executable).with_name("incident-bot")), "serve", "--host", "127.0.0.1", "--port", str(bot_port)]
        with _running(bot_command, env, bot_port, workdir):
            channel = _declare(slack, bot_port)
            bot = _load("incident-bot capture", bot_port, channel, args.events, args.concurrency)
        stored = _stored(database_url, channel)

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"store: {database_url.split(':')[0]}; {args.events} events at concurrency {args.concurrency}")
    print(f"{'':24} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for f in (floor, bot):
        print(f"{f.name:24} {f.rate:9.0f} {f.percentile(50):8.2f} {f.percentile(99):8.2f} {f.sent - f.ok:7d}")
    print(f"ratio bot/floor: p50 {bot.percentile(50) / floor.percentile(50):.2f}x, "
          f"p99 {bot.percentile(99) / floor.percentile(99):.2f}x, throughput {bot.rate / floor.rate:.2f}x")
    lost = args.events - stored
    print(f"stored {stored} of {args.events} sent events: {'no loss, no duplicate' if lost == 0 else f'{lost} missing or extra'}")
    return 0 if lost == 0 and bot.ok == bot.sent else 1


def _load(name: str, port: int, channel: str, events: int, concurrency: int) -> Figures:
    requests = SlackRequests(f"http://127.0.0.1:{port}", SECRET)
    base = int(time.time()) - 3600
    bodies = []
    for i in range(events):  # built and signed before the clock starts: only the server is measured
        ts = f"{base + i // 1000}.{i % 1000:03d}{i:03d}"[:17]
        event = {"type": "message", "channel": channel, "user": "U0ALICE", "text": f"event {i}", "ts": ts, "event_ts": ts}
        bodies.append(requests.event_body(event, event_id=f"Ev{i:08d}"))
    latencies: list[float] = []
    ok = 0
    lock = threading.Lock()

    def worker(chunk: list[bytes]) -> None:
        nonlocal ok
        with httpx.Client(timeout=30) as client:
            for body in chunk:
                stamp = int(time.time())
                headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": str(stamp),
                           "X-Slack-Signature": requests.sign(body, stamp)}
                started = time.perf_counter()
                status = client.post(requests.events_url, content=body, headers=headers).status_code
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    ok += status == 200

    threads = [threading.Thread(target=worker, args=(bodies[i::concurrency],)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Figures(name, events, ok, time.perf_counter() - started, latencies)


def _declare(slack: SlackSimulator, port: int) -> str:
    requests = SlackRequests(f"http://127.0.0.1:{port}", SECRET, response_url=slack.response_url())
    requests.command("declare sev2 Benchmark", user_id="U0ALICE", channel_id="C0INCIDENTS")
    slack.wait_for(lambda s: s.calls_to("pins.add"), timeout=20)
    return str(slack.calls_to("conversations.create")[-1].response["channel"]["id"])


def _stored(database_url: str, channel: str) -> int:
    engine = make_engine(database_url)
    from bot.incidents.service import IncidentService

    sessions = make_session_factory(engine)
    incident = IncidentService(sessions, SystemClock()).find_by_channel(channel)
    assert incident is not None
    count = sum(1 for item in TimelineService(sessions, SystemClock()).items(incident.id) if item.slack_ts)
    engine.dispose()
    return count


class _running:
    """A server process, up (its port answering) for the length of a `with`."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, cwd: Path) -> None:
        self._process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError as error:
                if self._process.poll() is not None:
                    raise SystemExit(f"{command[0]} exited: {self._process.stderr.read() if self._process.stderr else ''}") from error
                time.sleep(0.1)
        raise SystemExit(f"{command} did not start")

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=20)


def _config(workdir: Path) -> Path:
    path = workdir / "incident-bot.toml"
    path.write_text('[slack]\nannounce_channel = "C0INCIDENTS"\n')
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
