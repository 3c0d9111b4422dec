"""The bot at the end of the real monitoring chain: a connection leak in PostgreSQL → prometheus-postgres-
exporter → Prometheus (a rule on idle-in-transaction sessions) → Alertmanager → POST /webhooks/alertmanager
→ one Slack message for the group; declaring from it; the resolution when the leak closes. And alerts
posted to Alertmanager's own API (groups, repeats, resolutions) reaching one message per group.

Real processes on loopback (tests/monitoring.py); under CI a missing binary fails the test."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.incidents.values import EntryKind
from handlers import alert_blocks
from simulators.slack import SlackSimulator
from tests.conftest import ALICE, ANNOUNCE, BOB, RunningBot, start_bot
from tests.monitoring import ALERT_NAME, Leak, MonitoringChain, require_monitoring

TOKEN = "alertmanager-webhook-token-for-tests"
ALERTS = "C0ALERTS"
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"

[alerts]
channel = "{ALERTS}"
webhook_token = "{TOKEN}"
"""


@pytest.fixture
def leak_database() -> Iterator[str]:
    """A database of this test's own to leak into: the chain's rule counts only its sessions, so other
    tests' leaks (diagnostics, the demo) neither fire nor hold this alert."""
    name = f"alertchain_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def bot(tmp_path: Path, slack: SlackSimulator, database_url: str) -> Iterator[RunningBot]:
    require_monitoring()
    slack.add_channel("alerts", channel_id=ALERTS, members=[ALICE, BOB])
    running = start_bot(tmp_path, slack, database_url, CONFIG)
    yield running
    running.stop()


def eventually(check: Callable[[], Any], timeout: float, what: str) -> float:
    """Seconds until `check()` holds; AssertionError naming `what` past `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def group_messages(bot: RunningBot) -> list[dict[str, Any]]:
    return [m for m in bot.slack.messages(ALERTS) if m.get("blocks")]


def shown(bot: RunningBot) -> str:
    return json.dumps([m["blocks"] for m in group_messages(bot)])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_real_leak_reaches_slack_is_declared_from_and_resolves(bot: RunningBot, leak_database: str) -> None:
    with MonitoringChain(bot.url + "/webhooks/alertmanager", bearer_token=TOKEN, postgres_dsn=leak_database,
                         idle_threshold=5) as chain:
        chain.wait_ready()
        leaked_at = datetime.now(UTC)
        with Leak(leak_database, connections=8):
            seconds = eventually(lambda: "FIRING" in shown(bot), 30, "the alert's message in Slack")
            print(f"leak → Slack message: {seconds:.1f} s")
            [message] = group_messages(bot)
            assert ALERT_NAME in json.dumps(message["blocks"]) and "runbooks.example.com" in json.dumps(message["blocks"])
            group_id = next(e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
            sent = bot.requests.block_action(alert_blocks.DECLARE_ACTION, group_id, user_id=ALICE, channel_id=ALERTS,
                                             response_url=bot.slack.response_url("declare"))
            assert sent.response.status_code == 200
            bot.settle()
        eventually(lambda: "RESOLVED" in shown(bot), 30, "the resolution, once the leak closed")
        bot.settle()

    [incident] = bot.runtime.services.incidents.list_open()
    items = bot.runtime.services.timeline.items(incident.id)
    detection = items[0]
    assert detection.kind is EntryKind.DETECTION and ALERT_NAME in detection.text
    # Monitoring's own start: after the leak opened, before the incident was declared.
    assert leaked_at - timedelta(seconds=2) <= detection.occurred_at <= incident.declared_at
    assert [i.data["status"] for i in items if i.kind is EntryKind.ALERT] == ["resolved"]
    assert any(m.get("text", "").startswith("Monitoring:") for m in bot.slack.messages(incident.channel_id))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_alerts_posted_to_alertmanager_reach_one_message_per_group(bot: RunningBot, leak_database: str) -> None:
    with MonitoringChain(bot.url + "/webhooks/alertmanager", bearer_token=TOKEN, postgres_dsn=leak_database) as chain:
        chain.wait_ready()
        now = datetime.now(UTC)

        def alert(name: str, instance: str, ends: datetime | None = None) -> dict[str, Any]:
            return {"labels": {"alertname": name, "instance": instance, "severity": "warning"},
                    "annotations": {"summary": f"{name} on {instance}"},
                    "startsAt": now.isoformat(), **({"endsAt": ends.isoformat()} if ends else {}),
                    "generatorURL": "http://prometheus.local:9090/graph"}

        chain.post_alerts([alert("DiskFull", "db-1"), alert("DiskFull", "db-2"), alert("HighLatency", "web-1")])
        eventually(lambda: len(group_messages(bot)) == 2 and "db-2" in shown(bot), 20, "two groups, DiskFull with both")
        bot.settle()
        posts = len(bot.slack.calls_to("chat.postMessage"))

        chain.post_alerts([alert("DiskFull", "db-1"), alert("DiskFull", "db-2")])  # the same alerts again
        time.sleep(3)  # past group_interval: Alertmanager would have sent anything new by now
        bot.settle()
        assert len(bot.slack.calls_to("chat.postMessage")) == posts and len(group_messages(bot)) == 2

        chain.post_alerts([alert("DiskFull", "db-1", ends=datetime.now(UTC)),
                           alert("DiskFull", "db-2", ends=datetime.now(UTC))])
        eventually(lambda: any("RESOLVED" in json.dumps(m["blocks"]) and "DiskFull" in json.dumps(m["blocks"])
                               for m in group_messages(bot)), 20, "DiskFull resolved in place")
        assert len(group_messages(bot)) == 2
