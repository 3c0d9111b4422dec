"""The providers' side of a page, end to end: the loopback PagerDuty and Opsgenie receivers send their
webhooks (signed as they sign them) to the real bot over HTTP, as people act in the providers' apps; the
bot's channel, timeline, escalations and what it tells the other provider are checked. Also: a provider
that hangs delays nobody else, and /metrics counts provider calls."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.clock import ManualClock
from bot.incidents.values import EntryKind
from bot.paging.providers import RetryPolicy, Transport
from handlers import paging_blocks
from simulators.paging import OpsgenieReceiver, PagerDutyReceiver
from simulators.slack import SlackSimulator
from tests.conftest import ALICE, ANNOUNCE, BOB, DBA, GENIE_KEY, ROUTING_KEY, SRE, RunningBot, start_bot, tick

PD_SECRET = "pagerduty-webhook-secret-for-tests"
OG_TOKEN = "opsgenie-webhook-token-for-tests"
DB_KEY, SRE_KEY, BOTH_KEY = "incident-bot-1-database", "incident-bot-1-sre", "incident-bot-1-both"

CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"

[teams.database]
display_name = "Database team"
pagerduty_routing_key = "{ROUTING_KEY}"
slack_members = ["{DBA}"]
escalate_after_minutes = 10
escalate_to = "sre"

[teams.sre]
display_name = "SRE on call"
opsgenie_api_key = "{GENIE_KEY}"
slack_members = ["{SRE}"]
escalate_after_minutes = 10
escalate_to = "lead"

[teams.lead]
display_name = "Engineering lead"
slack_members = ["{BOB}"]

[teams.both]
display_name = "Platform"
pagerduty_routing_key = "{ROUTING_KEY}"
opsgenie_api_key = "{GENIE_KEY}"

[paging]
pagerduty_webhook_secret = "{PD_SECRET}"
opsgenie_webhook_token = "{OG_TOKEN}"
"""


def make_bot(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
             pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver, transport: Transport) -> RunningBot:
    slack.add_user(DBA, "dba1", real_name="Dana Scully", display_name="dana")
    slack.add_user(SRE, "sre1")
    running = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock,
                        env={"PAGERDUTY_EVENTS_URL": pagerduty.events_url, "OPSGENIE_API_URL": opsgenie.url},
                        paging_transport=transport)
    pagerduty.subscribe(running.url + "/webhooks/pagerduty", [PD_SECRET])
    opsgenie.subscribe(running.url + "/webhooks/opsgenie", {"Authorization": f"Bearer {OG_TOKEN}"})
    return running


@pytest.fixture
def bot(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
        pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver) -> Iterator[RunningBot]:
    running = make_bot(tmp_path, slack, database_url, clock, pagerduty, opsgenie,
                       Transport(RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.1), timeout=0.5))
    yield running
    running.stop()


def command(bot: RunningBot, channel: dict, text: str, user: str = ALICE) -> None:
    sent = bot.requests.command(text, user_id=user, channel_id=channel["id"], response_url=bot.slack.response_url("p"))
    assert sent.response.status_code == 200, sent.response.text


def settle(bot: RunningBot, *receivers: PagerDutyReceiver | OpsgenieReceiver) -> None:
    """Until the bot, and the echo webhooks the receivers send back to it, are all done."""
    for _ in range(3):
        bot.settle()
        for receiver in receivers:
            receiver.wait_webhooks()
    bot.settle()


def texts(bot: RunningBot, channel: dict) -> list[str]:
    return [m.get("text", "") for m in bot.slack.messages(channel["id"])]


def entries(bot: RunningBot, channel: dict) -> list[Any]:
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    return bot.runtime.services.timeline.items(incident.id)


def page(bot: RunningBot, page_id: int = 1) -> Any:
    return bot.runtime.services.paging.get(page_id)


def escalations(bot: RunningBot) -> list[str]:
    return [job for job in bot.runtime.services.scheduler.pending() if job.startswith("escalate-")]


def paged(bot: RunningBot, team: str, *receivers: PagerDutyReceiver | OpsgenieReceiver) -> dict:
    channel = bot.declare()
    command(bot, channel, f"page {team} Connections look exhausted")
    settle(bot, *receivers)
    return channel


def test_resolved_in_pagerduty_without_an_acknowledgement_stops_the_escalation(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "database", pagerduty, opsgenie)
    assert escalations(bot) == ["escalate-page-1"]

    delivery = pagerduty.resolve(DB_KEY, by="Dana Scully", at=clock.now())
    settle(bot, pagerduty, opsgenie)

    assert delivery.status == 202
    assert page(bot).resolved_at is not None and page(bot).closed_by == "Dana Scully in PagerDuty"
    assert escalations(bot) == []
    tick(bot, clock, timedelta(minutes=11))
    assert opsgenie.received == [], "escalated over an alert PagerDuty had already closed"
    [shown] = [t for t in texts(bot, channel) if t.startswith(":heavy_check_mark:")]
    assert "Dana Scully" in shown and "PagerDuty" in shown and "*Database team* is closed" in shown
    assert "no escalation to SRE on call" in shown
    assert EntryKind.PAGE_UPDATED in [e.kind for e in entries(bot, channel)]


def test_unacknowledged_in_pagerduty_rearms_the_escalation(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "database", pagerduty, opsgenie)
    pagerduty.acknowledge(DB_KEY, by="Dana Scully", at=clock.now())
    settle(bot, pagerduty, opsgenie)
    assert page(bot).acknowledged_by == "Dana Scully (PagerDuty)" and escalations(bot) == []

    clock.advance(timedelta(minutes=30))  # PagerDuty's acknowledgement timeout
    pagerduty.unacknowledge(DB_KEY, at=clock.now())
    settle(bot, pagerduty, opsgenie)

    reopened = page(bot)
    assert reopened.is_open and reopened.escalation_due_at == clock.now() + timedelta(minutes=10)
    assert escalations(bot) == ["escalate-page-1"]
    assert any(t.startswith(":rotating_light:") and "open again" in t and "escalates to SRE on call" in t for t in texts(bot, channel))
    tick(bot, clock, timedelta(minutes=9))
    assert opsgenie.creates(SRE_KEY) == 0  # ten minutes from the unacknowledgement, not from the page
    tick(bot, clock, timedelta(minutes=2))
    opsgenie.wait_for(lambda r: r.creates(SRE_KEY) == 1)


def test_redelivered_and_reordered_events_change_nothing_twice(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "database", pagerduty, opsgenie)
    acknowledged = pagerduty.build_event("incident.acknowledged", DB_KEY, by="Dana Scully", at=clock.now() + timedelta(seconds=1))
    timed_out = pagerduty.build_event("incident.unacknowledged", DB_KEY, by=None, at=clock.now() + timedelta(seconds=2))
    clock.advance(timedelta(seconds=5))

    later_first = pagerduty.deliver(timed_out)
    earlier_after = pagerduty.deliver(acknowledged)
    again = pagerduty.deliver(acknowledged, webhook_id="redelivery-of-the-same-webhook")
    settle(bot, pagerduty, opsgenie)

    assert [d.status for d in (later_first, earlier_after, again)] == [202, 202, 202]
    assert '"outcome": "stale"' in earlier_after.response and '"outcome": "duplicate"' in again.response
    assert page(bot).is_open and escalations(bot) == ["escalate-page-1"], "an older acknowledgement won over a newer timeout"
    late = [e for e in entries(bot, channel) if e.kind is EntryKind.PAGE_UPDATED and e.data.get("outcome") == "stale"]
    assert len(late) == 1 and abs(late[0].occurred_at - (clock.now() - timedelta(seconds=4))) < timedelta(milliseconds=1)
    assert not any("acknowledged the page" in t for t in texts(bot, channel))

    before = (len(texts(bot, channel)), len(entries(bot, channel)))
    for event in (timed_out, acknowledged):
        pagerduty.deliver(event)
    settle(bot, pagerduty, opsgenie)
    assert (len(texts(bot, channel)), len(entries(bot, channel))) == before


def test_an_opsgenie_acknowledgement_stops_the_escalation_and_is_told_to_pagerduty(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "both", pagerduty, opsgenie)
    delivery = opsgenie.acknowledge(BOTH_KEY, user="sam@example.com", at=clock.now())
    settle(bot, pagerduty, opsgenie)

    assert delivery.status == 202
    assert page(bot).acknowledged_by == "sam@example.com (Opsgenie)"
    assert [e["event_action"] for e in pagerduty.events()] == ["trigger", "acknowledge"]
    assert pagerduty.alerts()[BOTH_KEY] == "acknowledged"
    assert any("sam@example.com (Opsgenie) acknowledged the page to *Platform*" in t for t in texts(bot, channel))
    draft = bot.runtime.services.postmortems.preview(1)
    assert "sam@example.com via Opsgenie" in draft
    asked = [c.params.get("user") for c in bot.slack.calls_to("users.info")]
    assert all(str(user).startswith("U") for user in asked), f"asked Slack to name a provider's person: {asked}"


def test_an_opsgenie_acknowledgement_stops_its_escalation(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    paged(bot, "sre", pagerduty, opsgenie)
    opsgenie.acknowledge(SRE_KEY, user="sam@example.com", at=clock.now())
    settle(bot, pagerduty, opsgenie)
    tick(bot, clock, timedelta(minutes=11))
    pages = bot.runtime.services.paging.pages(1)
    assert [p.team for p in pages] == ["sre"] and pages[0].acknowledged_at is not None


def test_what_the_bot_tells_a_provider_names_who_and_where(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "both", pagerduty, opsgenie)
    pagerduty.acknowledge(BOTH_KEY, by="Dana Scully", at=clock.now())
    settle(bot, pagerduty, opsgenie)
    [told] = [r for r in opsgenie.received if r.path.endswith("/acknowledge")]
    assert told.body["user"] == "Dana Scully" and told.body["note"] == "Acknowledged in PagerDuty by Dana Scully"

    command(bot, channel, "resolve Pool fixed", user=DBA)
    settle(bot, pagerduty, opsgenie)
    [closed] = [r for r in opsgenie.received if r.path.endswith("/close")]
    assert closed.body["user"] == "dana" and "in Slack by dana" in closed.body["note"], closed.body
    assert all(not str(r.body).count(DBA) for r in opsgenie.received), "a raw Slack id reached Opsgenie"


def test_slack_acknowledgement_is_told_with_the_persons_name(
    bot: RunningBot, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "both", pagerduty, opsgenie)
    sent = bot.requests.block_action(paging_blocks.ACKNOWLEDGE_ACTION, "1", user_id=DBA, channel_id=channel["id"],
                                     response_url=bot.slack.response_url("button"))
    assert sent.response.status_code == 200
    settle(bot, pagerduty, opsgenie)
    [told] = [r for r in opsgenie.received if r.path.endswith("/acknowledge")]
    assert told.body["user"] == "dana" and told.body["note"] == "Acknowledged in Slack by dana"
    assert page(bot).acknowledged_by == DBA  # shown in Slack as a mention


def test_informational_events_are_shown_and_recorded(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "database", pagerduty, opsgenie)
    pagerduty.reassign(DB_KEY, to="Eve Li", by="Dana Scully", at=clock.now())
    pagerduty.annotate(DB_KEY, "Pool at 100/100 <since deploy>", by="Dana Scully", at=clock.now())
    settle(bot, pagerduty, opsgenie)

    shown = [t for t in texts(bot, channel) if t.startswith(":pager:") and "Eve Li" in t or "Pool at 100/100" in t]
    assert len(shown) == 2
    assert any("&lt;since deploy&gt;" in t for t in shown), "a provider's text reached Slack unescaped"
    assert page(bot).is_open and escalations(bot) == ["escalate-page-1"]
    updates = [e for e in entries(bot, channel) if e.kind is EntryKind.PAGE_UPDATED]
    assert [e.data["action"] for e in updates] == ["reassigned", "note_added"]


def test_echoes_of_the_bots_own_calls_are_not_shown(
    bot: RunningBot, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "both", pagerduty, opsgenie)
    before = texts(bot, channel)
    command(bot, channel, "resolve Pool fixed")
    settle(bot, pagerduty, opsgenie)
    assert any(d.payload.get("event", {}).get("event_type") == "incident.resolved" for d in pagerduty.deliveries)
    assert any(d.payload.get("action") == "Close" for d in opsgenie.deliveries)
    new = texts(bot, channel)[len(before):]
    assert not any("PagerDuty" in t and "closed" in t or "Opsgenie" in t for t in new), new


def test_webhooks_refuse_bad_credentials_and_say_what_was_wrong(
    bot: RunningBot, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    paged(bot, "both", pagerduty, opsgenie)
    event = pagerduty.build_event("incident.acknowledged", BOTH_KEY, by="Mallory")
    forged = pagerduty.deliver(event, signature="v1=" + "0" * 64)
    assert forged.status == 401 and page(bot).is_open

    og_event = opsgenie.build_event("Acknowledge", BOTH_KEY, user="mallory@example.com")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"GenieKey {OG_TOKEN}"}):
        assert opsgenie.deliver(og_event, headers=headers).status == 401
    assert page(bot).is_open

    url = bot.url + "/webhooks/opsgenie"
    bad = httpx.post(url, content=b'{"action": "Acknowledge"}', headers={"Authorization": f"Bearer {OG_TOKEN}"})
    assert bad.status_code == 400 and "alert" in bad.json()["error"]
    assert opsgenie.deliver(og_event, headers={"Authorization": f"bearer {OG_TOKEN}"}).status == 202


def test_an_event_about_someone_elses_alert_is_accepted_and_ignored(
    bot: RunningBot, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    other = {"routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "some-other-tools-key",
             "payload": {"summary": "Disk full on build-7", "source": "build-7", "severity": "warning"}}
    assert httpx.post(pagerduty.events_url, json=other).status_code == 202  # another tool, same service
    pagerduty.wait_webhooks()
    answered = pagerduty.acknowledge("some-other-tools-key", by="Dana Scully")
    assert answered.status == 202 and '"matched": false' in answered.response
    assert all(d.status == 202 for d in pagerduty.deliveries)  # its trigger's echo too


def eventually(check: Callable[[], Any], timeout: float) -> float:
    """Seconds until `check()` holds; AssertionError past `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - started


def test_a_hanging_provider_delays_neither_the_other_provider_nor_the_next_command(
    tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
    pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver,
) -> None:
    # Attempts of 3 s, five of them: before lanes per provider, Opsgenie held PagerDuty's resolve ~15 s.
    bot = make_bot(tmp_path, slack, database_url, clock, pagerduty, opsgenie,
                   Transport(RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.1), timeout=3))
    try:
        channel = paged(bot, "sre", pagerduty, opsgenie)  # Opsgenie's page first: closed first
        command(bot, channel, "page database")
        command(bot, channel, "page both")
        settle(bot, pagerduty, opsgenie)
        opsgenie.fail_next(200, count=20, hang_seconds=60)  # accepts, never answers

        command(bot, channel, "resolve Pool fixed")
        resolved_in = eventually(lambda: {pagerduty.alerts().get(k) for k in (DB_KEY, BOTH_KEY)} == {"resolved"}, timeout=10)
        command(bot, channel, "close")
        closed_in = eventually(lambda: bot.slack.files(), timeout=10)  # the drafted postmortem, uploaded

        print(f"PagerDuty resolved after {resolved_in:.3f} s, close done after {closed_in:.3f} s")
        assert resolved_in < 1.0 and closed_in < 1.0, (resolved_in, closed_in)
        assert bot.runtime.services.incidents.find_by_channel(channel["id"]).status.value == "closed"
    finally:
        bot.stop()


def test_metrics_count_provider_attempts_failures_and_latency(
    bot: RunningBot, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    opsgenie.fail_next(500, count=3)
    paged(bot, "both", pagerduty, opsgenie)
    metrics = httpx.get(bot.url + "/metrics").text
    assert 'incident_bot_provider_attempts_total{outcome="ok",provider="PagerDuty"} 1.0' in metrics
    assert 'incident_bot_provider_attempts_total{outcome="http_500",provider="Opsgenie"} 3.0' in metrics
    assert 'incident_bot_provider_failures_total{provider="Opsgenie"} 1.0' in metrics
    assert 'incident_bot_provider_request_seconds_count{provider="PagerDuty"} 1.0' in metrics


def test_an_opsgenie_unacknowledgement_rearms_and_a_close_stops_the_escalation(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "sre", pagerduty, opsgenie)
    opsgenie.acknowledge(SRE_KEY, user="sam@example.com", at=clock.now())
    settle(bot, pagerduty, opsgenie)
    assert escalations(bot) == []

    clock.advance(timedelta(minutes=3))
    opsgenie.unacknowledge(SRE_KEY, user="sam@example.com", at=clock.now())
    settle(bot, pagerduty, opsgenie)
    assert page(bot).is_open and escalations(bot) == ["escalate-page-1"]
    assert any("sam@example.com unacknowledged it in Opsgenie" in t and "open again" in t for t in texts(bot, channel))

    clock.advance(timedelta(minutes=1))
    opsgenie.close(SRE_KEY, user="sam@example.com", at=clock.now())
    settle(bot, pagerduty, opsgenie)
    assert page(bot).closed_by == "sam@example.com in Opsgenie" and escalations(bot) == []
    tick(bot, clock, timedelta(minutes=11))
    assert [p.team for p in bot.runtime.services.paging.pages(1)] == ["sre"]  # the lead was never paged


def test_closed_in_opsgenie_is_resolved_in_pagerduty_too(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "both", pagerduty, opsgenie)
    opsgenie.close(BOTH_KEY, user="sam@example.com", at=clock.now())
    settle(bot, pagerduty, opsgenie)

    assert pagerduty.alerts()[BOTH_KEY] == "resolved"  # an alert closed in one is closed in all
    assert [e["event_action"] for e in pagerduty.events()] == ["trigger", "resolve"]
    assert sum(t.startswith(":heavy_check_mark:") for t in texts(bot, channel)) == 1  # PagerDuty's echo is not shown again


def test_reopened_in_pagerduty_is_open_again_with_its_escalation(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    paged(bot, "database", pagerduty, opsgenie)
    pagerduty.resolve(DB_KEY, by="Dana Scully", at=clock.now())
    settle(bot, pagerduty, opsgenie)
    clock.advance(timedelta(minutes=2))
    pagerduty.reopen(DB_KEY, by="Dana Scully", at=clock.now())
    settle(bot, pagerduty, opsgenie)

    reopened = page(bot)
    assert reopened.is_open and reopened.closed_by is None and escalations(bot) == ["escalate-page-1"]
    tick(bot, clock, timedelta(minutes=11))
    opsgenie.wait_for(lambda r: r.creates(SRE_KEY) == 1)


def test_either_secret_verifies_during_a_rotation(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    paged(bot, "database", pagerduty, opsgenie)
    pagerduty.subscribe(bot.url + "/webhooks/pagerduty", ["the-new-secret-not-configured-yet", PD_SECRET], echo=False)
    delivery = pagerduty.acknowledge(DB_KEY, by="Dana Scully", at=clock.now())
    assert delivery.headers["X-PagerDuty-Signature"].count("v1=") == 2
    assert delivery.status == 202 and page(bot).acknowledged_at is not None


def test_a_team_reached_only_in_slack_is_shown_sent_at_once(
    bot: RunningBot, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "lead", pagerduty, opsgenie)
    assert page(bot).status == "sent"
    [message] = [m for m in bot.slack.messages(channel["id"]) if m.get("text", "").startswith("Paging Engineering lead")]
    shown = str(message["blocks"])
    assert "sending" not in shown and "Acknowledge" in shown


def test_a_provider_that_cannot_be_told_is_named_in_the_channel(
    bot: RunningBot, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "both", pagerduty, opsgenie)
    opsgenie.fail_next(500, count=3)  # every attempt of the acknowledgement
    sent = bot.requests.block_action(paging_blocks.ACKNOWLEDGE_ACTION, "1", user_id=DBA, channel_id=channel["id"],
                                     response_url=bot.slack.response_url("button"))
    assert sent.response.status_code == 200
    settle(bot, pagerduty, opsgenie)
    opsgenie.fail_next(422, body={"message": "Request body is not processable.", "took": 0.0})
    command(bot, channel, "resolve Pool fixed")
    settle(bot, pagerduty, opsgenie)

    warnings = [t for t in texts(bot, channel) if t.startswith(":warning:")]
    assert any("Could not tell Opsgenie (Platform) that the page was acknowledged: HTTP 500" in t
               and "Acknowledge it there too" in t for t in warnings), warnings
    assert any("Opsgenie (Platform) could not be told to close its alert: HTTP 422" in t for t in warnings), warnings
    assert pagerduty.alerts()[BOTH_KEY] == "resolved"  # the other provider was told regardless


@pytest.fixture
def impatient_bot(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
                  pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver) -> Iterator[RunningBot]:
    """Gives up on an unanswered attempt after 0.3 s, three times."""
    running = make_bot(tmp_path, slack, database_url, clock, pagerduty, opsgenie,
                       Transport(RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.1), timeout=0.3))
    yield running
    running.stop()


def test_a_call_never_answered_but_confirmed_by_the_providers_webhook_is_not_called_failed(
    impatient_bot: RunningBot, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    bot = impatient_bot
    pagerduty.fail_next(200, count=3, hang_seconds=2)  # takes each trigger, answers none; its webhook says triggered
    channel = paged(bot, "database", pagerduty, opsgenie)

    sent = page(bot)
    assert sent.status == "sent" and sent.deliveries["PagerDuty"]["ok"] is True, sent.deliveries
    assert sent.deliveries["PagerDuty"]["confirmed_by_webhook"] is True
    assert not any(t.startswith(":x:") for t in texts(bot, channel)), "told the channel nobody was reached"
    assert EntryKind.PAGE_FAILED not in [e.kind for e in entries(bot, channel)]

    opsgenie_page = paged_again(bot, channel, "both", pagerduty, opsgenie)
    opsgenie.fail_next(200, count=3, hang_seconds=2)  # the close goes through, unanswered; its Close webhook comes
    command(bot, channel, "resolve Pool fixed")
    settle(bot, pagerduty, opsgenie)
    assert opsgenie.alerts()[BOTH_KEY] == "closed" and bot.runtime.services.paging.get(opsgenie_page).resolved_at
    assert not any("could not be told" in t for t in texts(bot, channel)), "asked people to close a closed alert"


def paged_again(bot: RunningBot, channel: dict, team: str, *receivers: PagerDutyReceiver | OpsgenieReceiver) -> int:
    command(bot, channel, f"page {team}")
    settle(bot, *receivers)
    return max(p.id for p in bot.runtime.services.paging.pages(1))


def test_an_acknowledgement_that_timed_out_is_escalated_in_true_words_and_still_counts_in_the_postmortem(
    bot: RunningBot, clock: ManualClock, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver
) -> None:
    channel = paged(bot, "database", pagerduty, opsgenie)
    clock.advance(timedelta(seconds=3))
    pagerduty.acknowledge(DB_KEY, by="Dana Scully", at=clock.now())
    settle(bot, pagerduty, opsgenie)
    clock.advance(timedelta(minutes=1))
    pagerduty.unacknowledge(DB_KEY, at=clock.now())
    settle(bot, pagerduty, opsgenie)
    tick(bot, clock, timedelta(minutes=11))
    opsgenie.wait_for(lambda r: r.creates(SRE_KEY) == 1)

    [escalated] = [t for t in texts(bot, channel) if "Escalated:" in t]
    assert "Database team's page was open again" in escalated and "within 10 minutes" in escalated
    assert "did not acknowledge" not in escalated
    assert [e.text for e in entries(bot, channel) if e.kind is EntryKind.PAGE_ACKNOWLEDGED] == ["Dana Scully via PagerDuty"]

    draft = bot.runtime.services.postmortems.preview(bot.runtime.services.incidents.find_by_channel(channel["id"]).id)
    assert "(Database team acknowledged the page) |" in draft, draft  # withdrawn later, it still happened
    assert "Dana Scully via PagerDuty" in draft
    asked = [c.params.get("user") for c in bot.slack.calls_to("users.info")]
    assert all(str(user).startswith("U") for user in asked), f"asked Slack to name a provider's person: {asked}"
