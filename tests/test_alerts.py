"""Alerts from monitoring at POST /webhooks/alertmanager, end to end through the real app over HTTP:
Alertmanager's webhook v4 and Grafana's contact point, one Slack message per group kept current, the
Declare button, rules that declare and page, a linked incident told of later alerts, and a storm."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.clock import ManualClock
from bot.incidents.values import EntryKind
from bot.paging.providers import RetryPolicy, Transport
from handlers import alert_blocks
from simulators.paging import PagerDutyReceiver
from simulators.slack import SlackSimulator
from tests.conftest import ALICE, ANNOUNCE, BOB, DBA, ROUTING_KEY, RunningBot, start_bot

TOKEN = "alertmanager-webhook-token-for-tests"
ALERTS = "C0ALERTS"

CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"

[teams.database]
display_name = "Database team"
pagerduty_routing_key = "{ROUTING_KEY}"
slack_members = ["{DBA}"]

[alerts]
channel = "{ALERTS}"
webhook_token = "{TOKEN}"

[[alerts.rules]]
match = {{ severity = "page", team = "db" }}
declare = true
incident_severity = "sev1"
page = "database"

[[alerts.rules]]
match = {{ severity = "critical" }}
incident_severity = "sev2"
"""


@pytest.fixture
def bot(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
        pagerduty: PagerDutyReceiver) -> Iterator[RunningBot]:
    slack.add_user(DBA, "dba1")
    slack.add_channel("alerts", channel_id=ALERTS, members=[ALICE, BOB])
    running = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock,
                        env={"PAGERDUTY_EVENTS_URL": pagerduty.events_url},
                        paging_transport=Transport(RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1), timeout=2))
    yield running
    running.stop()


STARTED = datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)


def alert(name: str = "PostgresIdleInTransaction", *, status: str = "firing", instance: str = "db-1",
          started: datetime = STARTED, ended: datetime | None = None, **labels: str) -> dict[str, Any]:
    """One alert as Alertmanager's webhook v4 sends it (prometheus/alertmanager docs/configuration.md,
    <webhook_config>)."""
    all_labels = {"alertname": name, "instance": instance, "severity": "critical", "team": "db", **labels}
    fingerprint = format(abs(hash(tuple(sorted(all_labels.items())))) % (1 << 64), "016x")
    return {
        "status": status, "labels": all_labels,
        "annotations": {"summary": f"{instance}: 8 connections idle in transaction",
                        "description": "Connections are held open by a transaction that never ends.",
                        "runbook_url": "https://runbooks.example.com/postgres/idle-in-transaction"},
        "startsAt": started.isoformat().replace("+00:00", "Z"),
        "endsAt": (ended.isoformat().replace("+00:00", "Z") if ended else "0001-01-01T00:00:00Z"),
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=pg_idle",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any], group: str = "PostgresIdleInTransaction") -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    common = {k: v for k, v in alerts[0]["labels"].items() if all(a["labels"].get(k) == v for a in alerts)}
    return {
        "version": "4", "groupKey": f'{{}}:{{alertname="{group}"}}', "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved", "receiver": "incident-bot",
        "groupLabels": {"alertname": group}, "commonLabels": common, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093", "alerts": list(alerts),
    }


def send(bot: RunningBot, body: dict[str, Any] | bytes, token: str | None = TOKEN) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    answer = httpx.post(bot.url + "/webhooks/alertmanager", content=content, headers=headers)
    bot.settle()
    return answer


def group_messages(bot: RunningBot) -> list[dict[str, Any]]:
    return [m for m in bot.slack.messages(ALERTS) if m.get("blocks")]


def test_the_webhook_needs_its_token_and_says_what_was_wrong(bot: RunningBot) -> None:
    body = notification(alert())
    assert send(bot, body, token=None).status_code == 401
    assert send(bot, body, token="wrong").status_code == 401
    bad = send(bot, b'{"version": "4", "alerts": "none"}')
    assert bad.status_code == 400 and bad.json()["error"]
    assert group_messages(bot) == []
    assert send(bot, body).status_code == 200
    assert len(group_messages(bot)) == 1


def test_one_message_per_group_updated_in_place_and_repeats_change_nothing(bot: RunningBot) -> None:
    first = alert(instance="db-1")
    send(bot, notification(first))
    [message] = group_messages(bot)
    shown = json.dumps(message["blocks"])
    assert "FIRING" in shown and "db-1: 8 connections idle in transaction" in shown
    assert "https://runbooks.example.com/postgres/idle-in-transaction" in shown
    assert alert_blocks.DECLARE_ACTION in shown

    updates = len(bot.slack.calls_to("chat.update"))
    send(bot, notification(first))  # Alertmanager's retry, or its repeat_interval
    assert len(bot.slack.calls_to("chat.update")) == updates and len(group_messages(bot)) == 1

    second = alert(instance="db-2", started=STARTED + timedelta(minutes=1))
    send(bot, notification(first, second))
    [message] = group_messages(bot)
    assert "db-2" in json.dumps(message["blocks"]) and "(2 of 2)" in json.dumps(message["blocks"])

    send(bot, notification({**first, "status": "resolved", "endsAt": "2026-11-30T09:20:00Z"},
                           {**second, "status": "resolved", "endsAt": "2026-11-30T09:20:00Z"}))
    [message] = group_messages(bot)
    assert "RESOLVED" in json.dumps(message["blocks"])
    assert len(bot.slack.calls_to("chat.postMessage")) - len([c for c in bot.slack.calls_to("chat.postMessage")
                                                              if c.params.get("channel") != ALERTS]) == 1


def test_declaring_from_a_group_once_with_detection_at_the_alerts_start(bot: RunningBot) -> None:
    send(bot, notification(alert(instance="db-1"), alert(instance="db-2", started=STARTED + timedelta(minutes=2))))
    [message] = group_messages(bot)
    group_id = next(e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])

    for user in (ALICE, BOB, ALICE):  # three presses, one incident
        sent = bot.requests.block_action(alert_blocks.DECLARE_ACTION, group_id, user_id=user, channel_id=ALERTS,
                                         response_url=bot.slack.response_url("declare"))
        assert sent.response.status_code == 200
    bot.settle()

    incidents = bot.runtime.services.incidents.list_open()
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident.title.startswith("PostgresIdleInTransaction") and incident.severity.value == "sev2"
    assert "team=db" in (incident.description or "") and "runbooks.example.com" in (incident.description or "")
    items = bot.runtime.services.timeline.items(incident.id)
    assert items[0].kind is EntryKind.DETECTION and items[0].occurred_at == STARTED
    draft = bot.runtime.services.postmortems.preview(incident.id)
    detect = draft.split("| Time to detect |")[1].split("\n")[0]
    assert "from 09:00 (the alert from alertmanager)" in detect, detect
    [message] = group_messages(bot)
    assert f"Incident {incident.number}" in json.dumps(message["blocks"])
    assert alert_blocks.DECLARE_ACTION not in json.dumps(message["blocks"])


def test_a_rule_declares_at_once_and_pages_its_team(bot: RunningBot, pagerduty: PagerDutyReceiver) -> None:
    send(bot, notification(alert("PgPoolExhausted", severity="page"), group="PgPoolExhausted"))
    bot.settle()
    [incident] = bot.runtime.services.incidents.list_open()
    assert incident.severity.value == "sev1" and incident.title.startswith("PgPoolExhausted")
    pagerduty.wait_for(lambda r: r.events())
    [event] = pagerduty.events()
    assert event["event_action"] == "trigger" and "PgPoolExhausted" in event["payload"]["summary"]


def test_later_notifications_reach_the_open_incidents_timeline_and_channel(bot: RunningBot) -> None:
    first = alert(instance="db-1")
    send(bot, notification(first))
    [message] = group_messages(bot)
    group_id = next(e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
    bot.requests.block_action(alert_blocks.DECLARE_ACTION, group_id, user_id=ALICE, channel_id=ALERTS,
                              response_url=bot.slack.response_url("declare"))
    bot.settle()
    [incident] = bot.runtime.services.incidents.list_open()

    second = alert(instance="db-2", started=STARTED + timedelta(minutes=5))
    send(bot, notification(first, second))
    send(bot, notification({**first, "status": "resolved", "endsAt": "2026-11-30T09:30:00Z"}, second))

    alerts = [i for i in bot.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.ALERT]
    assert [(a.data["status"], a.occurred_at) for a in alerts] == [
        ("firing", STARTED + timedelta(minutes=5)), ("resolved", datetime(2026, 11, 30, 9, 30, tzinfo=UTC))]
    told = [m["text"] for m in bot.slack.messages(incident.channel_id) if m.get("text", "").startswith("Monitoring:")]
    assert len(told) == 2 and "firing" in told[0] and "resolved" in told[1]
    assert "Monitoring: PostgresIdleInTransaction resolved" in bot.runtime.services.postmortems.preview(incident.id)


def test_grafanas_contact_point_is_taken_too(bot: RunningBot) -> None:
    grafana = {
        "receiver": "incident-bot", "status": "firing", "orgId": 1,
        "alerts": [{
            "status": "firing", "labels": {"alertname": "High memory", "team": "db", "grafana_folder": "Databases"},
            "annotations": {"summary": "Memory above 90%"}, "startsAt": "2026-11-30T09:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "https://grafana.example.com/alerting/grafana/abc/view",
            "fingerprint": "c6eadffa33fcdf37", "silenceURL": "https://grafana.example.com/alerting/silence/new",
            "dashboardURL": "https://grafana.example.com/d/abc", "panelURL": "https://grafana.example.com/d/abc?viewPanel=2",
            "values": {"B": 91.2}, "valueString": "[ var='B' labels={} value=91.2 ]",
        }],
        "groupLabels": {"alertname": "High memory"}, "commonLabels": {"alertname": "High memory", "team": "db"},
        "commonAnnotations": {"summary": "Memory above 90%"}, "externalURL": "https://grafana.example.com/",
        "version": "1", "groupKey": '{}:{alertname="High memory"}', "truncatedAlerts": 0,
        "title": "[FIRING:1] High memory (Databases)", "state": "alerting", "message": "Memory above 90%",
    }
    assert send(bot, grafana).status_code == 200
    [message] = group_messages(bot)
    shown = json.dumps(message["blocks"])
    assert "High memory" in shown and "https://grafana.example.com/d/abc" in shown
    assert "[FIRING" not in shown  # Grafana's title carries its state; the message says it once


def test_a_storm_is_stored_whole_and_shown_in_few_slack_calls(bot: RunningBot) -> None:
    # Faster than Slack's limits (bench/ measures those), slow enough that a storm outruns Slack.
    bot.runtime.services.slack_pacing.posts.interval = 0.01
    bot.runtime.services.slack_pacing.updates.interval, bot.runtime.services.slack_pacing.updates.burst = 0.05, 1
    groups, per_group = 50, 20
    bodies = []
    for g in range(groups):
        alerts = [alert(f"Storm{g}", instance=f"db-{i}", started=STARTED + timedelta(seconds=i)) for i in range(per_group)]
        bodies += [notification(*alerts[: i + 1], group=f"Storm{g}") for i in range(per_group)]  # each a growing group
    started = time.monotonic()
    with httpx.Client() as client, ThreadPoolExecutor(8) as pool:  # as Alertmanager's notifiers send, in parallel
        answers = list(pool.map(lambda body: client.post(bot.url + "/webhooks/alertmanager", json=body,
                                                         headers={"Authorization": f"Bearer {TOKEN}"}), bodies))
    assert {a.status_code for a in answers} == {200}
    assert bot.runtime.wait_idle(120)
    elapsed = time.monotonic() - started

    with bot.runtime.engine.connect() as connection:
        from sqlalchemy import text
        stored = connection.execute(text("SELECT count(*) FROM alert_instances")).scalar_one()
    assert stored == groups * per_group
    posts = [c for c in bot.slack.calls_to("chat.postMessage") if c.params.get("channel") == ALERTS]
    assert len(posts) == groups  # one post per group
    updates = len(bot.slack.calls_to("chat.update"))
    assert updates < len(bodies) - groups, f"{updates} updates for {len(bodies)} notifications: nothing coalesced"
    assert all("(20 of 20)" in json.dumps(m["blocks"]) for m in group_messages(bot)), "a group shows a stale state"
    print(f"{len(bodies)} notifications, {stored} alerts stored, {len(posts)} posts + {updates} updates in {elapsed:.1f} s")


def test_a_group_that_fires_again_after_resolving_is_a_new_episode_with_its_own_message_and_incident(
    bot: RunningBot, pagerduty: PagerDutyReceiver,
) -> None:
    first = alert("PgPoolExhausted", severity="page")
    send(bot, notification(first, group="PgPoolExhausted"))
    [incident] = bot.runtime.services.incidents.list_open()
    send(bot, notification({**first, "status": "resolved", "endsAt": "2026-11-30T09:10:00Z"}, group="PgPoolExhausted"))
    for text in ("resolve Pool back", "close"):
        sent = bot.requests.command(text, user_id=ALICE, channel_id=incident.channel_id, response_url=bot.slack.response_url("c"))
        assert sent.response.status_code == 200
        bot.settle()

    again = alert("PgPoolExhausted", severity="page", started=STARTED + timedelta(hours=2))
    send(bot, notification(again, group="PgPoolExhausted"))
    bot.settle()

    messages = group_messages(bot)
    assert len(messages) == 2, "the recurrence edited yesterday's message instead of posting"
    assert "(1 of 1)" in json.dumps(messages[-1]["blocks"]) and "RESOLVED" in json.dumps(messages[0]["blocks"])
    [second] = bot.runtime.services.incidents.list_open()
    assert second.number != incident.number
    assert bot.runtime.services.timeline.items(second.id)[0].occurred_at == STARTED + timedelta(hours=2)
    pagerduty.wait_for(lambda r: len([e for e in r.events() if e["event_action"] == "trigger"]) == 2)


def test_groups_a_stopped_run_did_not_show_are_shown_at_the_next_start(
    tmp_path: Path, slack: SlackSimulator, database_url: str, pagerduty: PagerDutyReceiver,
) -> None:
    slack.add_user(DBA, "dba1")
    slack.add_channel("alerts", channel_id=ALERTS, members=[ALICE, BOB])
    env = {"PAGERDUTY_EVENTS_URL": pagerduty.events_url}
    first = start_bot(tmp_path, slack, database_url, CONFIG, env=env)
    slack.fail_next("chat.postMessage", "fatal_error")  # Slack cannot take the post: the run stops meanwhile
    send(first, notification(alert()))
    first.stop()
    assert group_messages(first) == []

    second = start_bot(tmp_path, slack, database_url, CONFIG, env=env)
    try:
        second.runtime.resume()
        second.settle()
        assert len(group_messages(second)) == 1
    finally:
        second.stop()


def test_declaring_and_paging_do_not_wait_behind_a_storms_paced_posts(bot: RunningBot, pagerduty: PagerDutyReceiver) -> None:
    bot.runtime.services.slack_pacing.posts.interval = 0.5  # Slack's pace, halved: 40 groups take ~18 s to post
    send(bot, notification(alert("Early"), group="Early"))
    [message] = group_messages(bot)
    group_id = next(e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
    for g in range(40):
        httpx.post(bot.url + "/webhooks/alertmanager", json=notification(alert(f"Noise{g}"), group=f"Noise{g}"),
                   headers={"Authorization": f"Bearer {TOKEN}"})
    started = time.monotonic()
    bot.requests.block_action(alert_blocks.DECLARE_ACTION, group_id, user_id=ALICE, channel_id=ALERTS,
                              response_url=bot.slack.response_url("declare"))
    while not bot.runtime.services.incidents.list_open() or not bot.runtime.services.incidents.list_open()[0].channel_id:
        assert time.monotonic() - started < 5, "the declaration waited behind the storm's posts"
        time.sleep(0.05)
    assert bot.runtime.wait_idle(60)


def test_a_notification_past_slacks_body_limit_is_taken_whole(bot: RunningBot) -> None:
    """Alertmanager never retries a 4xx: a large group (400 alerts with 2.5 KB descriptions, about 1.2 MB)
    must be stored, not refused with 413 as Slack's 1 MiB limit would."""
    many = [{**alert(instance=f"pod-{i}"), "annotations": {"summary": f"pod-{i} crash looping", "description": "x" * 2500}}
            for i in range(400)]
    body = json.dumps(notification(*many)).encode()
    assert len(body) > 1 << 20
    answer = send(bot, body)
    assert answer.status_code == 200 and answer.json()["stored"] == 400
    assert "(400 of 400)" in json.dumps(group_messages(bot)[0]["blocks"])
    too_big = httpx.post(bot.url + "/webhooks/pagerduty", content=b"x" * ((1 << 20) + 1))
    assert too_big.status_code == 413 and "error" in too_big.json()  # the other paths keep Slack's 1 MiB


def test_a_declaration_whose_channel_slack_cannot_create_is_told_to_the_presser(bot: RunningBot) -> None:
    send(bot, notification(alert()))
    [message] = group_messages(bot)
    group_id = next(e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
    bot.slack.fail_next("conversations.create", "fatal_error", count=10)  # Slack cannot make the incident's channel
    bot.requests.block_action(alert_blocks.DECLARE_ACTION, group_id, user_id=ALICE, channel_id=ALERTS,
                              response_url=bot.slack.response_url("declare"))
    bot.settle()
    told = [r.get("text", "") for r in bot.slack.responses("declare")] + [
        m.get("text", "") for c in bot.slack.calls_to("chat.postMessage") for m in [c.params] if c.params.get("channel") == ALICE]
    assert any(":warning:" in t for t in told), told
