"""The real monitoring chain (tests/monitoring.py) delivers what the bot's Alertmanager webhook will receive: a
connection leak in PostgreSQL fires a webhook v4 notification and closing it resolves it; alerts posted to
Alertmanager's API in one group arrive in one notification. The receiver here is a plain stdlib HTTP server,
so these tests check the chain and the payload's shape, not the bot.

Payload fields: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config (version "4").
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from tests.conftest import PG_ADMIN
from tests import monitoring
from tests.monitoring import ALERT_NAME, Leak, MonitoringChain, require_monitoring

TOKEN = "chain-test-token"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt for an alert still firing


@dataclass(frozen=True)
class Notification:
    at: float  # time.monotonic() when it arrived
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that answers 200 to every POST and keeps what came, in order."""

    def __init__(self) -> None:
        self.notifications: queue.Queue[Notification] = queue.Queue()
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.put(Notification(time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/alertmanager"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, timeout: float, where: Callable[[Notification], bool] = lambda _: True) -> Notification:
        """The next notification that `where` accepts (others are dropped); AssertionError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                notification = self.notifications.get(timeout=left)
            except queue.Empty:
                break
            if where(notification):
                return notification
        raise AssertionError(f"no matching webhook within {timeout} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def database() -> Iterator[str]:
    """A database of its own, so no other test's sessions count toward this chain's rule (it filters on datname)."""
    name = f"monitoring_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def status(wanted: str) -> Callable[[Notification], bool]:
    return lambda notification: notification.body.get("status") == wanted


def instant(text: str) -> datetime:
    """An RFC 3339 time as Alertmanager writes it (nanoseconds cut to what datetime holds)."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00"))


@pytest.mark.postgres
def test_a_leak_fires_a_webhook_and_closing_it_resolves_it(receiver: WebhookReceiver, database: str) -> None:
    require_monitoring()
    database_name = database.rsplit("/", 1)[1]
    with MonitoringChain(receiver.url, bearer_token=TOKEN, postgres_dsn=database, idle_threshold=5) as chain:
        chain.wait_ready()

        # Below the threshold: Prometheus sees the sessions, and nothing is sent.
        with Leak(database, connections=4):
            seen = f'pg_stat_activity_count{{state="idle in transaction",datname="{database_name}"}} == 4'
            deadline = time.monotonic() + 10
            while not chain.query(seen):
                assert time.monotonic() < deadline, "Prometheus never saw the 4 sessions"
                time.sleep(0.2)
            time.sleep(2.5)  # two evaluations and a group_wait past the scrape that saw them
        assert receiver.notifications.empty(), "a notification came below the threshold"

        with Leak(database, connections=8) as leak:
            assert leak.opened_at is not None
            firing = receiver.next(15, status("firing"))
            fired_after = firing.at - leak.opened_at
        closed_at = time.monotonic()
        resolved = receiver.next(15, status("resolved"))
        resolved_after = resolved.at - closed_at
    print(f"\nleak of 8 -> firing webhook: {fired_after:.2f} s; leak closed -> resolved webhook: {resolved_after:.2f} s")

    assert firing.headers.get("authorization") == f"Bearer {TOKEN}"
    body = firing.body
    assert body["version"] == "4"
    assert body["receiver"] == "webhook"
    assert body["externalURL"] == chain.alertmanager_url
    assert body["groupLabels"] == {"alertname": ALERT_NAME}
    assert body["groupKey"] == f'{{}}:{{alertname="{ALERT_NAME}"}}'
    assert body["truncatedAlerts"] == 0
    [alert] = body["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == {"alertname": ALERT_NAME, "datname": database_name, "severity": "critical",
                               "team": "db"}
    assert alert["annotations"]["summary"] == f"8 connections idle in transaction on {database_name}"
    assert alert["annotations"]["runbook_url"].startswith("https://")
    assert database_name in alert["annotations"]["description"]
    assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"])
    assert alert["endsAt"] == ZERO_TIME
    assert alert["generatorURL"].startswith(chain.prometheus_url + "/graph?g0.expr=")
    assert "pg_stat_activity_count" in alert["generatorURL"]

    assert resolved.headers.get("authorization") == f"Bearer {TOKEN}"
    assert resolved.body["groupKey"] == body["groupKey"]
    [gone] = resolved.body["alerts"]
    assert gone["status"] == "resolved"
    assert gone["fingerprint"] == alert["fingerprint"]
    assert gone["startsAt"] == alert["startsAt"]
    assert instant(gone["endsAt"]) > instant(alert["startsAt"])
    # The figure on this kind of machine is about 2 s; 15 s leaves room for a loaded CI.
    assert fired_after < 15 and resolved_after < 15


def test_posted_alerts_of_one_group_arrive_in_one_notification(receiver: WebhookReceiver) -> None:
    require_monitoring()
    alerts = [{"labels": {"alertname": "DiskFull", "instance": f"db-{n}", "severity": "warning"},
               "annotations": {"summary": f"Disk 95% full on db-{n}"},
               "generatorURL": "http://prometheus.example/graph"} for n in (1, 2)]
    with MonitoringChain(receiver.url) as chain:
        posted_at = time.monotonic()
        chain.post_alerts(alerts)
        notification = receiver.next(10)
        time.sleep(2.5)  # two more group_intervals: a second notification would have come by now
    print(f"\ntwo posted alerts -> one webhook: {notification.at - posted_at:.2f} s")

    assert receiver.notifications.empty(), "the group's alerts were split over several notifications"
    assert "authorization" not in notification.headers  # no bearer_token given
    body = notification.body
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["groupLabels"] == {"alertname": "DiskFull"}
    assert body["commonLabels"] == {"alertname": "DiskFull", "severity": "warning"}
    assert sorted(alert["labels"]["instance"] for alert in body["alerts"]) == ["db-1", "db-2"]
    assert len({alert["fingerprint"] for alert in body["alerts"]}) == 2
    assert all(alert["generatorURL"] == "http://prometheus.example/graph" for alert in body["alerts"])


def test_a_missing_binary_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="prometheus.*not installed"):
        require_monitoring()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        require_monitoring()


def test_a_port_taken_before_a_process_binds_it_is_picked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another worker's server may take the port picked free before our process binds it, and may even answer
    the readiness URL (another chain's Prometheus would): the harness must notice and pick another port."""
    require_monitoring()
    class Ready(BaseHTTPRequestHandler):  # answers 200 to any GET, as another chain's /-/ready would
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    impostor = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    taken = impostor.server_address[1]
    real_free_port = monitoring._free_port
    calls = iter(range(1000))  # each process's first pick is the taken port, its second a free one
    monkeypatch.setattr(monitoring, "_free_port", lambda: real_free_port() if next(calls) % 2 else taken)
    try:
        with MonitoringChain("http://127.0.0.1:9/unused") as chain:
            urls = [chain.exporter_url, chain.alertmanager_url, chain.prometheus_url]
            assert chain.directory is not None
            logs = {log.stem: log.read_text() for log in chain.directory.glob("*.log")}
            chain.post_alerts([{"labels": {"alertname": "Probe"}}])  # the real Alertmanager took it
    finally:
        impostor.shutdown()
        impostor.server_close()
    assert all(url.startswith("http://127.0.0.1:") and not url.endswith(f":{taken}") for url in urls)
    for name in ("alertmanager", "postgres_exporter", "prometheus"):
        assert re.match(rf"--- attempt 1 on 127.0.0.1:{taken}\n(.*\n)*--- attempt 2 on ", logs[name]), logs[name]
