"""The bot's own store goes away mid-incident (PostgreSQL behind a proxy the test cuts): the channel is
still recorded (spooled on local disk, written in order once the store is back, nothing twice), slash
commands say what is degraded, pages still go out, and /healthz says 503 meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from bot.incidents.values import EntryKind
from bot.paging.providers import RetryPolicy, Transport
from simulators.paging import PagerDutyReceiver
from simulators.slack import SlackSimulator
from tests.conftest import (
    ALICE,
    ANNOUNCE,
    BOB,
    ROUTING_KEY,
    RunningBot,
    database_team,
    start_bot,
)
from tests.tcp_proxy import TcpProxy
from tests.test_timeline import message

WEBHOOK_SECRET = "pagerduty-webhook-secret-for-tests"
ALERTS_TOKEN = "alertmanager-webhook-token-for-tests"
CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"
{database_team(BOB)}
[paging]
pagerduty_webhook_secret = "{WEBHOOK_SECRET}"

[alerts]
webhook_token = "{ALERTS_TOKEN}"
"""


@pytest.fixture
def proxied(tmp_path: Path, slack: SlackSimulator, database_url: str,
            pagerduty: PagerDutyReceiver) -> Iterator[tuple[RunningBot, TcpProxy, PagerDutyReceiver]]:
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    bot = start_bot(tmp_path, slack, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                    CONFIG, env={"PAGERDUTY_EVENTS_URL": pagerduty.events_url},
                    paging_transport=Transport(RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.1), timeout=2))
    try:
        yield bot, proxy, pagerduty
    finally:
        proxy.restore()
        bot.stop()
        proxy.close()


def wait(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_channel_is_recorded_through_an_outage_in_order_and_once(
        proxied: tuple[RunningBot, TcpProxy, PagerDutyReceiver]) -> None:
    bot, proxy, _ = proxied
    channel = bot.declare()
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    assert incident is not None
    before = message(channel["id"], "pool at 95% before the outage")
    assert bot.requests.event(before).response.status_code == 200

    proxy.cut()
    texts = [f"during the outage {n}" for n in range(5)]
    events = [message(channel["id"], text, user=BOB) for text in texts]
    answers = []
    for event in events:
        started = time.monotonic()
        answers.append(bot.requests.event(event))
        assert time.monotonic() - started < 3  # Slack's deadline, with the store gone
    assert [a.response.status_code for a in answers] == [200] * 5
    assert bot.requests.retry(answers[2], 1).response.status_code == 200  # Slack retrying one
    edited = {**events[1], "text": "during the outage 1 (corrected)"}
    bot.requests.event({"type": "message", "subtype": "message_changed", "channel": channel["id"], "hidden": True,
                        "message": {**edited, "edited": {"user": BOB, "ts": edited["ts"]}}, "ts": edited["ts"],
                        "event_ts": edited["ts"]})
    bot.requests.event({"type": "reaction_added", "user": ALICE, "reaction": "pushpin", "item_user": BOB,
                        "item": {"type": "message", "channel": channel["id"], "ts": events[3]["ts"]}})
    health = httpx.get(f"{bot.url}/healthz", timeout=10)
    assert health.status_code == 503 and health.json()["spooled"] >= 7

    proxy.restore()
    wait(lambda: bot.runtime.services.timeline.spooled == 0)
    items = [i for i in bot.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.MESSAGE]
    assert [i.text for i in items] == ["pool at 95% before the outage", "during the outage 0", "during the outage 1 (corrected)",
                                       "during the outage 2", "during the outage 3", "during the outage 4"]
    assert [i.key_event for i in items] == [False, False, False, False, True, False]
    assert httpx.get(f"{bot.url}/healthz", timeout=10).json() == {"status": "ok", "database": "ok", "spooled": 0}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_spooled_messages_survive_a_restart_of_the_bot(tmp_path: Path, slack: SlackSimulator, database_url: str) -> None:
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    bot = start_bot(tmp_path, slack, proxied_url)
    try:
        channel = bot.declare()
        proxy.cut()
        assert bot.requests.event(message(channel["id"], "kept on disk")).response.status_code == 200
    finally:
        bot.stop()  # stopped while the store is still away: the write waits in the spool file
    proxy.restore()
    again = start_bot(tmp_path, slack, proxied_url)
    try:
        incident = again.runtime.services.incidents.find_by_channel(channel["id"])
        assert incident is not None
        wait(lambda: again.runtime.services.timeline.spooled == 0)
        assert [i.text for i in again.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.MESSAGE] == ["kept on disk"]
    finally:
        again.stop()
        proxy.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_commands_say_what_is_degraded_and_pages_still_go_out(
        proxied: tuple[RunningBot, TcpProxy, PagerDutyReceiver], slack: SlackSimulator) -> None:
    bot, proxy, pagerduty = proxied
    channel = bot.declare()
    proxy.cut()

    def command(text: str) -> dict:
        sent = bot.requests.command(text, user_id=ALICE, channel_id=channel["id"], response_url=slack.response_url("down"))
        assert sent.response.status_code == 200, sent.response.text
        return sent.response.json()

    note = command("note action Restarting the web tier")
    assert note["response_type"] == "ephemeral"
    assert "database is not answering" in note["text"] and "nothing was recorded" in note["text"]
    assert "`/incident page &lt;team&gt;` still pages" in note["text"]
    assert "/incident" in command("help")["text"]  # help needs no database

    page = command("page database Connections exhausted")
    assert "going out now to Database team" in page["text"]
    bot.settle()
    wait(lambda: len(pagerduty.events()) == 1)
    sent = pagerduty.events()[0]
    assert sent["routing_key"] == ROUTING_KEY and sent["event_action"] == "trigger"
    assert sent["dedup_key"] == f"incident-bot-{channel['id']}-database"
    assert "Connections exhausted" in sent["payload"]["summary"]
    told = [m["text"] for m in slack.messages(channel["id"]) if "database is down: this page is not on the timeline" in m["text"]]
    assert len(told) == 1 and "Reached: PagerDuty" in told[0] and f"<@{BOB}>" in told[0]
    assert any("Paged Database team: reached PagerDuty" in r.get("text", "") for r in slack.responses("down"))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_pager_failing_while_the_store_is_down_is_told_plainly(
        proxied: tuple[RunningBot, TcpProxy, PagerDutyReceiver], slack: SlackSimulator) -> None:
    bot, proxy, pagerduty = proxied
    channel = bot.declare()
    proxy.cut()
    pagerduty.fail_next(500, count=3)  # every attempt the bot makes
    sent = bot.requests.command("page database Connections exhausted", user_id=ALICE, channel_id=channel["id"],
                                response_url=slack.response_url("down"))
    assert "going out now to Database team" in sent.response.json()["text"]
    bot.settle()
    told = [m["text"] for m in slack.messages(channel["id"]) if "this page is not on the timeline" in m["text"]]
    assert len(told) == 1 and "Reached: no pager" in told[0] and ":x: PagerDuty failed:" in told[0]
    assert f"<@{BOB}>" in told[0]  # the team's Slack members are still called in
    assert any("no pager answered: call them" in r.get("text", "") for r in slack.responses("down"))
    assert pagerduty.events() == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_bot_started_while_its_store_is_down_serves_and_catches_up(
        tmp_path: Path, slack: SlackSimulator, database_url: str) -> None:
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    first = start_bot(tmp_path, slack, proxied_url)
    channel = first.declare()
    first.stop()
    proxy.cut()  # the store goes away, and the bot is restarted meanwhile (a deploy, a crash)
    bot = start_bot(tmp_path, slack, proxied_url)
    try:
        assert bot.runtime.migrations_pending
        assert bot.runtime.resume(retry_every=0.2) == 0  # tried again in the background
        assert bot.requests.event(message(channel["id"], "said while the store was away")).response.status_code == 200
        sent = bot.requests.command("update Still down", user_id=ALICE, channel_id=channel["id"],
                                    response_url=slack.response_url("down"))
        assert "database is not answering" in sent.response.json()["text"]
        assert httpx.get(f"{bot.url}/healthz", timeout=10).status_code == 503

        proxy.restore()
        wait(lambda: bot.runtime.services.timeline.spooled == 0 and not bot.runtime.migrations_pending)
        incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
        assert incident is not None
        assert [i.text for i in bot.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.MESSAGE] == [
            "said while the store was away"]
        assert httpx.get(f"{bot.url}/healthz", timeout=10).status_code == 200
    finally:
        proxy.restore()
        bot.stop()
        proxy.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_provider_webhook_while_the_store_is_down_is_answered_503_and_applied_when_sent_again(
        proxied: tuple[RunningBot, TcpProxy, PagerDutyReceiver], slack: SlackSimulator) -> None:
    bot, proxy, pagerduty = proxied
    channel = bot.declare()
    sent = bot.requests.command("page database", user_id=ALICE, channel_id=channel["id"], response_url=slack.response_url("p"))
    assert sent.response.status_code == 200
    bot.settle()
    pagerduty.subscribe(bot.url + "/webhooks/pagerduty", [WEBHOOK_SECRET], echo=False)
    proxy.cut()

    refused = pagerduty.acknowledge("incident-bot-1-database", by="Dana Scully")
    assert refused.status == 503, refused.response  # PagerDuty retries a 5xx (developer-docs webhooks/Behavior)

    proxy.restore()
    retried = pagerduty.deliver(refused.payload, webhook_id=refused.headers["X-Webhook-Id"])
    bot.settle()
    assert retried.status == 202 and '"outcome": "changed"' in retried.response
    assert bot.runtime.services.paging.get(1).acknowledged_by == "Dana Scully (PagerDuty)"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_alert_while_the_store_is_down_is_answered_503_and_stored_when_sent_again(
        proxied: tuple[RunningBot, TcpProxy, PagerDutyReceiver], slack: SlackSimulator) -> None:
    bot, proxy, _ = proxied
    body = {"version": "4", "groupKey": '{}:{alertname="PgDown"}', "status": "firing", "receiver": "incident-bot",
            "groupLabels": {"alertname": "PgDown"}, "commonLabels": {"alertname": "PgDown"}, "commonAnnotations": {},
            "externalURL": "http://alertmanager.local:9093", "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": {"alertname": "PgDown"}, "annotations": {"summary": "primary down"},
                        "startsAt": "2026-11-30T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://prometheus.local:9090/graph", "fingerprint": "aa11"}]}
    headers = {"Authorization": f"Bearer {ALERTS_TOKEN}"}
    proxy.cut()
    refused = httpx.post(bot.url + "/webhooks/alertmanager", json=body, headers=headers, timeout=30)
    assert refused.status_code == 503, refused.text  # Alertmanager retries a 5xx (its notifier's retry)

    proxy.restore()
    accepted = httpx.post(bot.url + "/webhooks/alertmanager", json=body, headers=headers, timeout=30)
    bot.settle()
    assert accepted.status_code == 200 and accepted.json()["stored"] == 1
    assert any("PgDown" in m.get("text", "") for m in slack.messages(ANNOUNCE))
