"""Paging through signed Slack requests against real loopback receivers for PagerDuty and Opsgenie:
payloads, retries and failures, acknowledgement (button and webhook), escalation by moving the clock,
a restart in between, and two bot instances on one database."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from bot.clock import ManualClock
from bot.incidents.values import EntryKind
from bot.paging.providers import RetryPolicy, Transport
from handlers import paging_blocks
from simulators.paging import OpsgenieReceiver, PagerDutyReceiver
from simulators.slack import SlackSimulator
from tests.conftest import (
    ALICE,
    ANNOUNCE,
    BOB,
    DBA,
    GENIE_KEY,
    ROUTING_KEY,
    SRE,
    RunningBot,
    escalating_teams,
    start_bot,
)

WEBHOOK_SECRET = "pagerduty-webhook-secret-for-tests"

CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"
{escalating_teams()}
[paging]
pagerduty_webhook_secret = "{WEBHOOK_SECRET}"
"""




@pytest.fixture
def paged_bot(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
              pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver) -> Iterator[RunningBot]:
    slack.add_user(DBA, "dba1")
    slack.add_user(SRE, "sre1")
    running = start_bot(
        tmp_path, slack, database_url, CONFIG, clock=clock,
        env={"PAGERDUTY_EVENTS_URL": pagerduty.events_url, "OPSGENIE_API_URL": opsgenie.url},
        paging_transport=Transport(RetryPolicy(attempts=5, base_delay=0.01, max_delay=2), timeout=0.5),
    )
    yield running
    running.stop()


def stop(running: RunningBot) -> None:
    running.stop()


def command(bot: RunningBot, channel: dict, text: str, user: str = ALICE) -> dict:
    sent = bot.requests.command(text, user_id=user, channel_id=channel["id"], response_url=bot.slack.response_url("p"))
    assert sent.response.status_code == 200
    bot.settle()
    return sent.response.json() if sent.response.content else {}


def page_messages(bot: RunningBot, channel: dict) -> list[dict]:
    return [m for m in bot.slack.messages(channel["id"]) if m.get("blocks") and m.get("text", "").startswith("Paging")]


def press(bot: RunningBot, channel: dict, action_id: str, value: str, user: str = BOB) -> None:
    sent = bot.requests.block_action(action_id, value, user_id=user, channel_id=channel["id"],
                                     response_url=bot.slack.response_url("button"))
    assert sent.response.status_code == 200
    bot.settle()


def escalations(bot: RunningBot) -> list[str]:
    return [job for job in bot.runtime.services.scheduler.pending() if job.startswith("escalate-")]


def timeline_kinds(bot: RunningBot, channel: dict) -> list[str]:
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    return [i.kind for i in bot.runtime.services.timeline.items(incident.id)]


def test_paging_sends_pagerduty_v2_invites_members_and_offers_acknowledge(paged_bot: RunningBot, pagerduty: PagerDutyReceiver) -> None:
    bot = paged_bot
    channel = bot.declare("declare sev1 Checkout is timing out")
    reply = command(bot, channel, "page database Connections look exhausted on primary")

    assert reply == {}
    [event] = pagerduty.events()
    assert event["routing_key"] == ROUTING_KEY and event["event_action"] == "trigger"
    assert event["dedup_key"] == "incident-bot-1-database"
    payload = event["payload"]
    assert payload["severity"] == "critical" and payload["source"] == "incident-bot"
    assert payload["summary"] == "[SEV1] Incident 1: Checkout is timing out — Connections look exhausted on primary"
    assert payload["custom_details"]["incident"] == "1" and payload["custom_details"]["team"] == "database"
    assert event["links"][0]["href"] == f"https://simulated.slack.com/archives/{channel['id']}"

    assert DBA in bot.slack.members(channel["id"])
    [message] = page_messages(bot, channel)
    assert f"<@{DBA}>" in json.dumps(message["blocks"]) and "PagerDuty: :white_check_mark: sent" in json.dumps(message["blocks"])
    [button] = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == paging_blocks.ACKNOWLEDGE_ACTION
    assert EntryKind.PAGED in timeline_kinds(bot, channel)
    assert escalations(bot) == ["escalate-page-1"]

    press(bot, channel, paging_blocks.ACKNOWLEDGE_ACTION, button["value"])

    assert [e["event_action"] for e in pagerduty.events()] == ["trigger", "acknowledge"]
    assert pagerduty.events()[1]["dedup_key"] == "incident-bot-1-database"
    assert pagerduty.alerts() == {"incident-bot-1-database": "acknowledged"}
    assert escalations(bot) == []
    updated = page_messages(bot, channel)[0]
    assert "Acknowledged" in json.dumps(updated["blocks"]) and all(b["type"] != "actions" for b in updated["blocks"])
    assert any("acknowledged the page to *Database team* after 0 s; no escalation to SRE on call." in m["text"]
               for m in bot.slack.messages(channel["id"]))
    assert EntryKind.PAGE_ACKNOWLEDGED in timeline_kinds(bot, channel)
    shown = json.dumps(bot.requests.command("timeline", user_id=ALICE, channel_id=channel["id"]).response.json()["blocks"])
    assert "paged *Database team*: Connections look exhausted on primary" in shown
    assert "*Database team* acknowledged the page: <@U0BOB> via Slack" in shown


def test_unknown_teams_are_listed_and_repages_reuse_the_dedup_key(paged_bot: RunningBot, pagerduty: PagerDutyReceiver) -> None:
    bot = paged_bot
    channel = bot.declare()

    unknown = command(bot, channel, "page networking")
    assert "There is no team `networking`" in unknown["text"] and "`database` (Database team)" in unknown["text"]
    assert pagerduty.received == []

    command(bot, channel, "page database")
    again = command(bot, channel, "page database still nobody?")
    assert "reminder, not a second alert" in again["text"]
    assert pagerduty.triggers("incident-bot-1-database") == 2 and len(pagerduty.alerts()) == 1


def test_escalation_fires_when_the_clock_passes_the_deadline(
    paged_bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    bot = paged_bot
    channel = bot.declare("declare sev1 Checkout is timing out")
    command(bot, channel, "page database")

    clock.advance(timedelta(minutes=9))
    bot.runtime.services.scheduler.wakeup()
    bot.settle()
    assert opsgenie.received == []

    clock.advance(timedelta(minutes=1, seconds=1))
    bot.runtime.services.scheduler.wakeup()
    opsgenie.wait_for(lambda r: r.alerts())
    bot.settle()

    [create] = [r for r in opsgenie.received if r.path == "/v2/alerts"]
    assert create.headers["authorization"] == f"GenieKey {GENIE_KEY}"
    assert create.body["alias"] == "incident-bot-1-sre" and create.body["priority"] == "P1"
    assert create.body["message"].startswith("[SEV1] Incident 1: Checkout is timing out")
    assert SRE in bot.slack.members(channel["id"])
    assert any("Database team did not acknowledge within 10 minutes" in m["text"] for m in bot.slack.messages(channel["id"]))

    press(bot, channel, paging_blocks.ACKNOWLEDGE_ACTION, "2", user=SRE)
    assert opsgenie.alerts() == {"incident-bot-1-sre": "acknowledged"}
    [told] = [m["text"] for m in bot.slack.messages(channel["id"]) if "acknowledged the page to *SRE on call*" in m["text"]]
    assert told.endswith(" after 0 s.") and "escalation" not in told  # the SRE team escalates to nobody
    [ack] = [r for r in opsgenie.received if r.path.endswith("/acknowledge")]
    assert ack.path == "/v2/alerts/incident-bot-1-sre/acknowledge" and ack.query == {"identifierType": "alias"}

    command(bot, channel, "resolve Rolled back")
    assert opsgenie.alerts() == {"incident-bot-1-sre": "closed"}
    assert pagerduty.alerts() == {"incident-bot-1-database": "resolved"}
    assert escalations(bot) == []


def test_acknowledging_stops_escalation(paged_bot: RunningBot, clock: ManualClock, opsgenie: OpsgenieReceiver) -> None:
    bot = paged_bot
    channel = bot.declare()
    command(bot, channel, "page database")
    press(bot, channel, paging_blocks.ACKNOWLEDGE_ACTION, "1")

    clock.advance(timedelta(minutes=30))
    bot.runtime.services.scheduler.wakeup()
    bot.settle()
    assert opsgenie.received == []


def test_a_429_is_retried_after_retry_after_and_a_timeout_is_retried(paged_bot: RunningBot, pagerduty: PagerDutyReceiver) -> None:
    bot = paged_bot
    channel = bot.declare()
    pagerduty.fail_next(429, retry_after=1)
    pagerduty.fail_next(200, hang_seconds=2)  # the client gives up after 0.5 s
    command(bot, channel, "page database")

    statuses = [r.status for r in pagerduty.received]
    assert statuses == [429, 0, 202]
    page = bot.runtime.services.paging.get(1)
    assert page.status == "sent" and page.deliveries["PagerDuty"] == {"ok": True, "attempts": 3}


def test_five_500s_fail_the_page_visibly_and_retry_recovers(paged_bot: RunningBot, pagerduty: PagerDutyReceiver) -> None:
    bot = paged_bot
    channel = bot.declare()
    pagerduty.fail_next(500, count=5)
    command(bot, channel, "page database")

    assert [r.status for r in pagerduty.received] == [500] * 5
    page = bot.runtime.services.paging.get(1)
    assert page.status == "failed" and "HTTP 500" in page.failed["PagerDuty"] and "after 5 attempts" in page.failed["PagerDuty"]
    assert any(m["text"].startswith(":x: Paging *Database team* through PagerDuty failed: HTTP 500")
               for m in bot.slack.messages(channel["id"]))
    assert EntryKind.PAGE_FAILED in timeline_kinds(bot, channel)
    [retry] = [e for m in page_messages(bot, channel) for b in m["blocks"] if b["type"] == "actions"
               for e in b["elements"] if e["action_id"] == paging_blocks.RETRY_ACTION]

    press(bot, channel, paging_blocks.RETRY_ACTION, retry["value"])

    assert pagerduty.alerts() == {"incident-bot-1-database": "triggered"}
    retried = bot.runtime.services.paging.get(1)
    assert retried.deliveries["PagerDuty"]["ok"] is True and retried.status == "sent"


def test_a_400_is_not_retried_and_its_text_is_shown(paged_bot: RunningBot, pagerduty: PagerDutyReceiver) -> None:
    bot = paged_bot
    channel = bot.declare()
    pagerduty.fail_next(400, body={"status": "invalid event", "message": "Event object is invalid",
                                   "errors": ["'payload.summary' is missing or blank"]})
    command(bot, channel, "page database")

    assert [r.status for r in pagerduty.received] == [400]
    failure = [m["text"] for m in bot.slack.messages(channel["id"]) if m["text"].startswith(":x:")][0]
    assert "HTTP 400: Event object is invalid: 'payload.summary' is missing or blank" in failure


def _signed(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_pagerduty_webhooks_acknowledge_only_when_signed(paged_bot: RunningBot, pagerduty: PagerDutyReceiver) -> None:
    bot = paged_bot
    channel = bot.declare()
    command(bot, channel, "page database")
    body = json.dumps({"event": {
        "id": "01DEN4HPBQAAAG05V5QQYBRZMF", "event_type": "incident.acknowledged", "resource_type": "incident",
        "occurred_at": "2026-11-27T10:00:00Z", "agent": {"id": "PU1", "type": "user_reference", "summary": "Dana DBA"},
        "data": {"id": "Q1", "type": "incident", "number": 42, "status": "acknowledged",
                 "incident_key": "incident-bot-1-database", "title": "Incident 1"}}}).encode()
    url = bot.url + "/webhooks/pagerduty"

    forged = httpx.post(url, content=body, headers={"X-PagerDuty-Signature": _signed(body, "wrong-secret")})
    assert forged.status_code == 401
    assert bot.runtime.services.paging.get(1).acknowledged_at is None

    good = httpx.post(url, content=body, headers={"X-PagerDuty-Signature": f"v1=deadbeef, {_signed(body)}"})
    bot.settle()
    assert good.status_code == 202 and good.json() == {"matched": True, "outcome": "changed"}
    page = bot.runtime.services.paging.get(1)
    assert page.acknowledged_by == "Dana DBA (PagerDuty)"
    assert [e["event_action"] for e in pagerduty.events()] == ["trigger"]  # PagerDuty told us; not told back
    assert escalations(bot) == []
    assert any("Dana DBA (PagerDuty) acknowledged" in m["text"] for m in bot.slack.messages(channel["id"]))


def test_escalation_survives_a_restart(
    tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
    pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver,
) -> None:
    slack.add_user(DBA, "dba1")
    slack.add_user(SRE, "sre1")
    env = {"PAGERDUTY_EVENTS_URL": pagerduty.events_url, "OPSGENIE_API_URL": opsgenie.url}
    first = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock, env=env)
    channel = first.declare()
    command(first, channel, "page database")
    first.stop()

    clock.advance(timedelta(minutes=11))  # the deadline passes while no bot runs
    second = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock, env=env)
    try:
        opsgenie.wait_for(lambda r: r.alerts(), timeout=10)
        second.settle()
        assert opsgenie.creates("incident-bot-1-sre") == 1
        assert second.runtime.services.paging.get(1).escalated_at is not None
    finally:
        second.stop()


@pytest.fixture
def two_bots(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
             pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver) -> Iterator[tuple[RunningBot, RunningBot]]:
    """Two bot instances sharing one database, as two replicas would."""
    slack.add_user(DBA, "dba1")
    slack.add_user(SRE, "sre1")
    env = {"PAGERDUTY_EVENTS_URL": pagerduty.events_url, "OPSGENIE_API_URL": opsgenie.url}
    bots = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        bots.append(start_bot(tmp_path / name, slack, database_url, CONFIG, clock=clock, env=env))
    yield bots[0], bots[1]
    for running in bots:
        running.stop()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_instances_on_one_database_escalate_once(
    two_bots: tuple[RunningBot, RunningBot], clock: ManualClock, opsgenie: OpsgenieReceiver
) -> None:
    one, two = two_bots
    channel = one.declare()
    command(one, channel, "page database")
    two.runtime.services.scheduler.wakeup()  # the second instance sees the job in the shared store too

    clock.advance(timedelta(minutes=11))
    one.runtime.services.scheduler.wakeup()
    two.runtime.services.scheduler.wakeup()
    opsgenie.wait_for(lambda r: r.alerts(), timeout=10)
    one.settle()
    two.settle()

    assert opsgenie.creates("incident-bot-1-sre") == 1
    pages = one.runtime.services.paging.pages(one.runtime.services.incidents.find_by_channel(channel["id"]).id)
    assert [p.team for p in pages] == ["database", "sre"]
    assert sum("did not acknowledge" in m["text"] for m in one.slack.messages(channel["id"])) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_escalation_claim_is_atomic_across_instances(two_bots: tuple[RunningBot, RunningBot]) -> None:
    one, two = two_bots
    channel = one.declare()
    command(one, channel, "page database")
    results: list[object] = []
    barrier = threading.Barrier(4)

    def fire(bot: RunningBot) -> None:
        barrier.wait()
        results.append(bot.runtime.services.paging.escalate(1))

    threads = [threading.Thread(target=fire, args=(b,)) for b in (one, two, one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(r is not None for r in results) == 1


def test_a_page_goes_out_even_when_slack_will_not_show_it(paged_bot: RunningBot, pagerduty: PagerDutyReceiver) -> None:
    bot = paged_bot
    channel = bot.declare()
    bot.slack.fail_next("chat.postMessage", "channel_not_found")

    command(bot, channel, "page database")

    assert pagerduty.alerts() == {"incident-bot-1-database": "triggered"}
    [warning] = [r for r in bot.slack.responses("p") if "went to the team's providers" in r.get("text", "")]
    assert "posting the page (`channel_not_found`)" in warning["text"]
