"""Diagnostics through Slack against the real PostgreSQL with a real connection leak, and the watchdog
raising one alert for a growing leak and clearing it, with the clock moved rather than slept."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from bot.clock import ManualClock
from bot.incidents.values import EntryKind
from handlers import diagnostics_blocks
from simulators.slack import SlackSimulator
from tests.conftest import ALICE, ANNOUNCE, BOB, CAROL, RunningBot, start_bot

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"
TARGET_URL = "postgresql+psycopg://postgres:not-a-real-password-123@127.0.0.1:5432/test"


def config(*, interval: int = 30, allowed: str = f'["{ALICE}", "{BOB}"]') -> str:
    return f"""
[slack]
announce_channel = "{ANNOUNCE}"

[diagnostics]
allowed_users = {allowed}

[diagnostics.targets.primary]
url = "{TARGET_URL}"
statement_timeout_ms = 3000

[diagnostics.watchdog]
interval_seconds = {interval}
usage_alert_percent = 95
idle_in_transaction_alert_seconds = 3600
exhaustion_horizon_minutes = 15
"""


class Leak:
    """A fake web application that opens connections and leaves them idle in a transaction."""

    def __init__(self, application: str = "leaky-web") -> None:
        self.application = application
        self.connections: list[psycopg.Connection] = []

    def grow(self, count: int) -> None:
        for _ in range(count):
            connection = psycopg.connect(PG, application_name=self.application)
            connection.execute("SELECT 1")  # opens a transaction and never ends it
            self.connections.append(connection)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.connections.clear()


@pytest.fixture
def leak() -> Iterator[Leak]:
    opened = Leak()
    yield opened
    opened.close()


def diagnostics_sessions(settle: float = 3.0) -> int:
    """How many diagnostics sessions the server lists, once it has had up to `settle` seconds to drop
    closed ones: a backend leaves pg_stat_activity a moment after its client hangs up, not at once."""
    deadline = time.monotonic() + settle
    with psycopg.connect(PG, autocommit=True) as admin:
        while True:
            count = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'incident-bot-diagnostics'"
            ).fetchone()[0]
            if count == 0 or time.monotonic() > deadline:
                return count
            time.sleep(0.05)


@pytest.fixture
def diag_bot(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock) -> Iterator[RunningBot]:
    running = start_bot(tmp_path, slack, database_url, config(), clock=clock)
    yield running
    running.stop()


def run(bot: RunningBot, channel: dict, text: str, user: str = ALICE) -> dict:
    sent = bot.requests.command(text, user_id=user, channel_id=channel["id"], response_url=bot.slack.response_url("d"))
    assert sent.response.status_code == 200
    bot.settle()
    return sent.response.json() if sent.response.content else {}


def tick(bot: RunningBot, clock: ManualClock, target: str = "primary") -> None:
    """Move the clock one watchdog interval and wait for the sample the scheduler then takes."""
    watchdog = bot.runtime.services.watchdog
    before = len(watchdog.recent(target, 100))
    clock.advance(timedelta(seconds=30))
    bot.runtime.services.scheduler.wakeup()
    deadline = time.monotonic() + 10
    while len(watchdog.recent(target, 100)) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    bot.settle()


def results(bot: RunningBot, channel: dict) -> list[dict]:
    return [m for m in bot.slack.messages(channel["id"]) if "read-only" in json.dumps(m.get("blocks", []))]


def test_connections_shows_the_leak_and_leaves_no_connection_behind(diag_bot: RunningBot, leak: Leak) -> None:
    bot = diag_bot
    channel = bot.declare()
    leak.grow(12)

    reply = run(bot, channel, "diag connections primary")

    assert "Running `connections` on *primary*" in reply["text"]
    [message] = results(bot, channel)
    shown = json.dumps(message["blocks"])
    assert "connections in use" in message["blocks"][0]["text"]["text"]
    assert "leaky-web" in shown
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    [entry] = [i for i in bot.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.DIAGNOSTIC]
    figures = entry.data["figures"]
    assert figures["idle_in_transaction"] >= 12 and figures["in_use"] >= 12
    assert entry.data["outcome"] == "ok" and entry.data["check"] == "connections"
    assert diagnostics_sessions() == 0
    assert "not-a-real-password-123" not in json.dumps([c.params for c in bot.slack.calls])
    shown = bot.requests.command("timeline", user_id=ALICE, channel_id=channel["id"]).response.json()
    assert "ran `connections` on `primary`: " in json.dumps(shown["blocks"])


def test_every_check_runs_and_list_names_them(diag_bot: RunningBot, leak: Leak) -> None:
    bot = diag_bot
    channel = bot.declare()
    leak.grow(3)
    listing = run(bot, channel, "diag list")
    for check in ("connections", "idle-in-tx", "long-queries", "blocking", "settings"):
        assert f"`{check}`" in listing["text"]
        run(bot, channel, f"diag {check}")  # one target: it is the default
        assert diagnostics_sessions() == 0
    outcomes = [json.dumps(m["blocks"]) for m in results(bot, channel)]
    assert len(outcomes) == 5
    assert "max_connections" in outcomes[-1]


def test_a_user_not_allowed_is_refused_and_the_attempt_recorded(diag_bot: RunningBot) -> None:
    bot = diag_bot
    channel = bot.declare()
    reply = run(bot, channel, "diag connections primary", user=CAROL)

    assert "not among the people allowed" in reply["text"]
    assert results(bot, channel) == []
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    kinds = [(i.kind, i.actor_id) for i in bot.runtime.services.timeline.items(incident.id)]
    assert (EntryKind.DIAGNOSTIC_DENIED, CAROL) in kinds


def test_free_form_sql_and_unknown_targets_are_refused(diag_bot: RunningBot) -> None:
    bot = diag_bot
    channel = bot.declare()
    assert "is not a check" in run(bot, channel, "diag SELECT pg_terminate_backend(1)")["text"]
    assert "There is no target `replica`" in run(bot, channel, "diag connections replica")["text"]
    assert results(bot, channel) == []


def test_an_unreachable_target_answers_plainly(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock) -> None:
    unreachable = config().replace("127.0.0.1:5432/test", "127.0.0.1:9/test")
    bot = start_bot(tmp_path, slack, database_url, unreachable, clock=clock)
    try:
        channel = bot.declare()
        started = time.monotonic()
        run(bot, channel, "diag connections primary")
        assert time.monotonic() - started < 8
        [message] = [m for m in bot.slack.messages(channel["id"]) if "primary" in m.get("text", "") and ":electric_plug:" in m.get("text", "")]
        assert "127.0.0.1:9" in message["text"] or "connect" in message["text"]
        assert "not-a-real-password-123" not in message["text"]
    finally:
        bot.stop()


def test_the_watchdog_alerts_once_on_a_growing_leak_and_clears_when_it_closes(
    diag_bot: RunningBot, clock: ManualClock, leak: Leak
) -> None:
    bot = diag_bot
    tick(bot, clock)  # a calm baseline
    for _ in range(4):  # the leak grows by 8 connections every 30 s: the pool runs out within minutes
        leak.grow(8)
        tick(bot, clock)
    alerts = [m for m in bot.slack.messages(ANNOUNCE) if "Watchdog: connection trouble on primary" in m.get("text", "")]
    assert len(alerts) == 1
    assert "run out in about" in json.dumps(alerts[0]["blocks"])
    [button] = [e for b in alerts[0]["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == diagnostics_blocks.WATCHDOG_DECLARE_ACTION

    leak.close()
    for _ in range(7):  # the trend needs a few calm samples to flatten
        tick(bot, clock)
    cleared = [m for m in bot.slack.messages(ANNOUNCE) if "back to normal" in m.get("text", "")]
    assert len(cleared) == 1
    assert len([m for m in bot.slack.messages(ANNOUNCE) if "connection trouble" in m.get("text", "")]) == 1

    bot.requests.block_action(button["action_id"], button["value"], user_id=BOB, channel_id=ANNOUNCE)
    bot.requests.block_action(button["action_id"], button["value"], user_id=BOB, channel_id=ANNOUNCE)
    bot.settle()
    [incident] = bot.runtime.services.incidents.list_open()
    assert incident.title == "Connection trouble on primary"
    kinds = [i.kind for i in bot.runtime.services.timeline.items(incident.id)]
    assert EntryKind.DETECTION in kinds


@pytest.fixture
def mariadb_leak() -> Iterator[str]:
    """Five connections as a web app's user, each holding an open InnoDB transaction."""
    import pymysql

    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test", autocommit=True)
    suffix = str(int(time.time() * 1000))[-8:]
    user, table = f"leaky_{suffix}", f"leak_{suffix}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY) ENGINE=InnoDB")
        cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'leak-pass-1'")
        cursor.execute(f"GRANT ALL ON test.* TO '{user}'@'%'")
    leaked = []
    for i in range(5):
        connection = pymysql.connect(host="127.0.0.1", port=3306, user=user, password="leak-pass-1", database="test")
        connection.begin()
        connection.cursor().execute(f"INSERT INTO {table} VALUES (%s)", (i,))
        leaked.append(connection)
    yield user
    for connection in leaked:
        connection.close()
    with admin.cursor() as cursor:
        cursor.execute(f"DROP USER '{user}'@'%'")
        cursor.execute(f"DROP TABLE {table}")
    admin.close()


def test_connections_on_mariadb_names_the_leaking_user(
    tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock, mariadb_leak: str
) -> None:
    mariadb = config().replace(TARGET_URL, "mysql+pymysql://root@127.0.0.1:3306/test")
    bot = start_bot(tmp_path, slack, database_url, mariadb, clock=clock)
    try:
        channel = bot.declare()
        run(bot, channel, "diag connections primary")
        [message] = results(bot, channel)
        assert mariadb_leak in json.dumps(message["blocks"])
        incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
        [entry] = [i for i in bot.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.DIAGNOSTIC]
        assert entry.data["figures"]["idle_in_transaction"] >= 5
    finally:
        bot.stop()


def test_auto_declare_turns_an_alert_into_an_incident(
    tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock, leak: Leak
) -> None:
    auto = config().replace("exhaustion_horizon_minutes = 15", "exhaustion_horizon_minutes = 15\nauto_declare = true")
    bot = start_bot(tmp_path, slack, database_url, auto, clock=clock)
    try:
        for step in range(4):
            leak.grow(8 if step else 0)
            tick(bot, clock)
        [incident] = bot.runtime.services.incidents.list_open()
        assert incident.title == "Connection trouble on primary" and incident.reporter_id == "U0INCBOT"
        assert incident.channel_id is not None
        [alert] = [m for m in bot.slack.messages(ANNOUNCE) if "Watchdog: connection trouble" in m.get("text", "")]
        assert f"incident {incident.number}" in json.dumps(alert["blocks"])
    finally:
        bot.stop()


def test_the_postmortem_lists_each_run_with_its_headline_and_no_password(diag_bot: RunningBot, leak: Leak) -> None:
    bot = diag_bot
    channel = bot.declare()
    leak.grow(5)
    run(bot, channel, "diag connections primary")
    run(bot, channel, "diag idle-in-tx primary", user=BOB)
    run(bot, channel, "close")

    [draft] = [f["content"] for f in bot.slack.files()]
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    headlines = [i.text for i in bot.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.DIAGNOSTIC]
    table = draft.split("\n## Diagnostics\n")[1].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    assert [row.split(" | ")[1:3] for row in rows] == [["`connections`", "`primary`"], ["`idle-in-tx`", "`primary`"]]
    assert all(headline in draft for headline in headlines)  # the figures as the run reported them
    assert "· **Diagnostic** · alice ran `connections` on `primary`: " in draft
    assert "not-a-real-password-123" not in draft
