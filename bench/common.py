"""What the benchmarks share: the store each one gets, the bot and the floor as server processes of their
own against the Slack simulator, and percentiles."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from sqlalchemy.engine import make_url

from simulators.slack import SlackSimulator
from simulators.slack_requests import SlackRequests

SECRET = "bench-signing-secret"
HERE = Path(__file__).resolve().parent
ANNOUNCE = "C0INCIDENTS"
ALICE = "U0ALICE"


@contextmanager
def store(database_url: str | None) -> Iterator[str]:
    """The store to use: a temporary SQLite file, the given SQLite file, or a fresh database on the
    given PostgreSQL server, dropped (and the temporary folder removed) at the end."""
    if database_url is None:
        workdir = Path(tempfile.mkdtemp(prefix="incident-bot-bench-"))
        try:
            yield f"sqlite:///{workdir / 'bench.db'}"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        yield database_url
        return
    name = f"incident_bot_bench_{uuid.uuid4().hex[:8]}"
    admin = {"host": url.host or "127.0.0.1", "port": url.port or 5432, "user": url.username, "password": url.password,
             "dbname": "postgres"}
    with psycopg.connect(**{k: v for k, v in admin.items() if v is not None}, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**{k: v for k, v in admin.items() if v is not None}, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def store_name(database_url: str | None) -> str:
    return "SQLite" if database_url is None else make_url(database_url).get_backend_name()


def simulator() -> SlackSimulator:
    slack = SlackSimulator()
    slack.add_user(ALICE, "alice")
    slack.add_channel("incidents", channel_id=ANNOUNCE, members=[ALICE])
    return slack


def bot_env(slack: SlackSimulator, database_url: str, workdir: Path) -> dict[str, str]:
    config = workdir / "incident-bot.toml"
    config.write_text(f'[slack]\nannounce_channel = "{ANNOUNCE}"\n')
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.base_url,
        "DATABASE_URL": database_url,
        "INCIDENT_BOT_CONFIG": str(config),
    }
    env.pop("SLACK_APP_TOKEN", None)
    return env


def bot_command(port: int) -> list[str]:
    return [str(Path(sys.executable).with_name("incident-bot")), "serve", "--host", "127.0.0.1", "--port", str(port)]


def floor_command(port: int, durable: str | None = None) -> list[str]:
    """`bare_bolt.py` on `port`; with `durable` (durable_floor_store), writing each event and command there first."""
    return [sys.executable, str(HERE / "bare_bolt.py"), str(port), *(["--durable", durable] if durable else [])]


def durable_floor_store(database_url: str) -> str:
    """Where `bare_bolt.py --durable` writes, on the same disk or server as the bot's store: a SQLite file
    of its own beside the bot's, or on PostgreSQL a table of its own in the benchmark's database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return str(Path(url.database or "").with_name("durable-floor.db"))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Running:
    """A server process, up (its port answering) for the length of a `with`."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, cwd: Path) -> None:
        self.port = port
        # Its log goes to a file, not a pipe nobody reads while it runs (a full pipe would stall the server).
        self.log = cwd / f"server-{port}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError as error:
                if self.process.poll() is not None:
                    raise SystemExit(f"{command[0]} exited: {self.log.read_text()[-4000:]}") from error
                time.sleep(0.1)
        self.process.kill()
        raise SystemExit(f"{command} did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self, field: str) -> int:
        """A figure from the process's /proc status, in bytes (VmRSS: resident now; VmHWM: its peak)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def cpu_seconds(self) -> float:
        """The CPU time the process has used so far, user and system, in seconds (/proc/PID/stat)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="incident-bot-bench-"))


def command_body(text: str, channel: str, *, user: str = ALICE, response_url: str = "http://127.0.0.1:9/response",
                 trigger: str = "") -> bytes:
    """The form body of an `/incident` slash command, as Slack posts it (unsigned)."""
    fields = {
        "token": "deprecated-verification-token", "team_id": "T0SIMULATE", "team_domain": "simulated",
        "channel_id": channel, "channel_name": "bench", "user_id": user, "user_name": user.lower(),
        "command": "/incident", "text": text, "api_app_id": "A0INCBOT", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": trigger or f"bench.{uuid.uuid4().hex}",
    }
    return urlencode(fields).encode()


def message_body(requests: SlackRequests, channel: str, text: str, ts: str, event_id: str) -> bytes:
    """The JSON body of a message event in a channel, as Slack posts it (unsigned)."""
    event = {"type": "message", "channel": channel, "user": ALICE, "text": text, "ts": ts, "event_ts": ts}
    return requests.event_body(event, event_id=event_id)


def declare(slack: SlackSimulator, url: str, title: str, timeout: float = 30) -> str:
    """Declare an incident through a signed slash command, wait until its channel is set up, and return
    the channel's id."""
    requests = SlackRequests(url, SECRET, response_url=slack.response_url())
    try:
        before = len(slack.calls_to("pins.add"))
        sent = requests.command(f"declare sev2 {title}", user_id=ALICE, channel_id=ANNOUNCE)
        assert sent.response.status_code == 200, sent.response.text
        slack.wait_for(lambda s: len(s.calls_to("pins.add")) > before, timeout=timeout)
    finally:
        requests.close()
    return str(slack.calls_to("conversations.create")[-1].response["channel"]["id"])


def settle(slack: SlackSimulator, quiet: float = 1.0, timeout: float = 120) -> None:
    """Wait until the bot has called Slack for nothing more for `quiet` seconds (its work after the
    acknowledgements is done)."""
    deadline = time.monotonic() + timeout
    count, since = len(slack.calls), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = len(slack.calls)
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


def items_of_channel(database_url: str, channel: str) -> list[Any]:
    """The timeline of the incident whose channel this is, read from the store."""
    from bot.clock import SystemClock
    from bot.incidents.service import IncidentService
    from bot.timeline import TimelineService
    from storage.database import make_engine, make_session_factory

    engine = make_engine(database_url)
    try:
        sessions = make_session_factory(engine)
        incident = IncidentService(sessions, SystemClock()).find_by_channel(channel)
        assert incident is not None, f"no incident has channel {channel}"
        timeline = TimelineService(sessions, SystemClock())
        try:
            return timeline.items(incident.id)
        finally:
            timeline.close()
    finally:
        engine.dispose()


def safe_server(database_url: str) -> str:
    """Which server a URL names, without its password."""
    url = make_url(database_url)
    return f"{url.get_backend_name()}://{url.username + '@' if url.username else ''}{url.host or ''}:{url.port or ''}"


def durable_write(database_url: str | None, count: int = 300, rate: float | None = None) -> dict[str, float]:
    """What one durable write costs on this store and disk, with the raw driver and nothing else: `count`
    transactions of one small INSERT each, committed as the bot commits its writes (SQLite: WAL,
    `synchronous=FULL`, `BEGIN IMMEDIATE` … `COMMIT`; PostgreSQL: the statement alone in autocommit, its
    own transaction in one round trip, as the bot writes a note or a batch of captured messages there;
    the server's own durability settings). An acknowledgement that waits for its write can be no faster
    than this plus the floor's answer.

    `rate`: writes per second, each started on a fixed schedule (write i at start + i / rate), the store
    idle in between, as it is between requests at that rate; None: back to back. On the 2-core machine
    a commit after 50 ms of idle costs four to six times one right after another (SQLite: 0.65-0.8
    against 0.11-0.17 ms p50), so only a write at the requests' own rate says what their acks wait for.
    Returns p50/p99/max ms."""
    timings: list[float] = []
    with store(database_url) as url:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            import sqlite3

            connection: Any = sqlite3.connect(str(parsed.database), isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            begin, mark, commit = "BEGIN IMMEDIATE", "?", "COMMIT"
        else:
            connection = psycopg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username,
                                         password=parsed.password, dbname=parsed.database, autocommit=True)
            begin, mark, commit = None, "%s", None
        try:
            connection.execute("CREATE TABLE durable_write (id integer PRIMARY KEY, text varchar(200))")
            start = time.perf_counter()
            for i in range(count):
                if rate is not None:
                    time.sleep(max(0.0, start + i / rate - time.perf_counter()))
                started = time.perf_counter()
                if begin is not None:
                    connection.execute(begin)
                connection.execute(f"INSERT INTO durable_write (id, text) VALUES ({mark}, {mark})", (i, f"write {i}"))
                if commit is not None:
                    connection.execute(commit)
                timings.append(time.perf_counter() - started)
        finally:
            connection.close()
    return {"p50_ms": percentile(timings, 50) * 1000, "p99_ms": percentile(timings, 99) * 1000,
            "max_ms": max(timings) * 1000}
