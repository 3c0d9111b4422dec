"""Slack failing: 429 storms and 5xx from the Web API are retried within Slack's rules (Retry-After honoured,
within the client's retry counts), no acknowledged action is lost or done twice, and a person is told
when Slack keeps failing beyond the retries, without anything being done twice when they try again.

The client's retries (handlers/slack_client.py): rate limits 5 times, honouring Retry-After; 500 and 503
3 times with backoff; one counter per call across all handlers."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy.exc import OperationalError

from bot.incidents.values import EntryKind
from handlers.publisher import StepFailed, what_failed
from handlers.slack_client import make_web_client
from simulators.slack import ApiCall, SlackSimulator
from tests.conftest import ALICE, ANNOUNCE, BOB, GENERAL, RunningBot

RATE_LIMIT_RETRIES = 5
SERVER_ERROR_RETRIES = 3


def test_the_client_is_configured_with_the_retries_these_tests_assume() -> None:
    handlers = {type(h).__name__: h.max_retry_count for h in make_web_client("xoxb-test", "http://127.0.0.1:9/api/").retry_handlers}
    assert handlers["RateLimitErrorRetryHandler"] == RATE_LIMIT_RETRIES
    assert handlers["ServerErrorRetryHandler"] == SERVER_ERROR_RETRIES


def in_channel(bot: RunningBot, channel: dict, text: str, user: str = ALICE, respond_to: str = "r"):
    started = time.monotonic()
    sent = bot.requests.command(text, user_id=user, channel_id=channel["id"], channel_name=channel["name"],
                                response_url=bot.slack.response_url(respond_to))
    assert sent.response.status_code == 200, (text, sent.response.text)
    assert time.monotonic() - started < 2.5, f"{text!r} was acknowledged too late for Slack"  # retries are never on the ack path
    return sent


def kinds(bot: RunningBot, channel: dict) -> Counter[EntryKind]:
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    assert incident is not None
    return Counter(item.kind for item in bot.runtime.services.timeline.items(incident.id))


def texts(slack: SlackSimulator, channel_id: str) -> list[str]:
    return [m.get("text", "") for m in slack.messages(channel_id)]


def assert_waits_honoured(calls: list[ApiCall]) -> None:
    """Every call that follows a 429 to the same method came at least Retry-After seconds later."""
    for before, after in zip(calls, calls[1:], strict=False):
        if before.http_status == 429:
            assert after.at - before.at >= 1.0, (before.method, after.at - before.at)


def test_a_429_storm_within_the_retries_loses_nothing_and_posts_everything_once(bot: RunningBot) -> None:
    slack = bot.slack
    slack.fail_next("conversations.create", "ratelimited", retry_after=1)
    slack.fail_next("chat.postMessage", "ratelimited", count=2, retry_after=1)  # the summary
    channel = bot.declare("declare sev2 Checkout is timing out")
    assert [c.http_status for c in slack.calls_to("conversations.create")] == [429, 200]

    slack.fail_next("chat.postMessage", "ratelimited", count=RATE_LIMIT_RETRIES - 1, retry_after=1)
    slack.fail_next("chat.update", "ratelimited", count=2, retry_after=1)
    in_channel(bot, channel, "status identified")
    in_channel(bot, channel, "update Rolling back deploy 4512")
    in_channel(bot, channel, "note action Failed over to the replica")
    in_channel(bot, channel, "sev sev1")
    bot.settle()

    stored = kinds(bot, channel)
    assert stored[EntryKind.STATUS_CHANGED] == 1 and stored[EntryKind.UPDATE] == 1 and stored[EntryKind.ACTION] == 1
    assert stored[EntryKind.SEVERITY_CHANGED] == 1 and stored[EntryKind.DECLARED] == 1
    posted = texts(slack, channel["id"])
    assert len(posted) == 5 and len(set(posted)) == 5  # the summary and the four changes, each once, in order
    assert "→ *Identified*" in posted[1] and "Rolling back deploy 4512" in posted[2]
    assert "Failed over to the replica" in posted[3] and "→ *SEV1*" in posted[4]
    announced = texts(slack, ANNOUNCE)
    assert len(announced) == 4 and len(set(announced)) == 4  # declared, identified, the update, sev1
    assert "SEV1" in str(slack.messages(channel["id"])[0]["blocks"])  # the summary caught up, in place

    statuses = [c.http_status for c in slack.calls_to("chat.postMessage")]
    assert statuses.count(429) == 2 + RATE_LIMIT_RETRIES - 1
    for method in ("conversations.create", "chat.postMessage", "chat.update"):
        assert_waits_honoured(slack.calls_to(method))
    assert slack.responses("r") == []  # nobody was told of a failure: there was none in the end


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_retry_after_is_honoured_for_longer_waits_too(bot: RunningBot) -> None:
    channel = bot.declare()
    bot.slack.fail_next("chat.postMessage", "ratelimited", retry_after=3)
    in_channel(bot, channel, "update Still investigating")
    bot.settle()
    first, second = [c for c in bot.slack.calls_to("chat.postMessage") if c.params.get("channel") == channel["id"]][-2:]
    assert (first.http_status, second.http_status) == (429, 200)
    assert second.at - first.at >= 3
    assert sum("Still investigating" in t for t in texts(bot.slack, channel["id"])) == 1


def test_500s_and_503s_within_the_retries_lose_nothing_and_post_everything_once(bot: RunningBot) -> None:
    slack = bot.slack
    slack.fail_next("conversations.setTopic", "internal_error", http_status=500, count=SERVER_ERROR_RETRIES)
    channel = bot.declare("declare sev2 Search is slow")
    assert [c.http_status for c in slack.calls_to("conversations.setTopic")] == [500] * SERVER_ERROR_RETRIES + [200]

    slack.fail_next("chat.postMessage", "internal_error", http_status=500, count=1)
    slack.fail_next("chat.postMessage", "service_unavailable", http_status=503, count=1)
    slack.fail_next("chat.update", "service_unavailable", http_status=503, count=2)
    in_channel(bot, channel, "status monitoring")
    in_channel(bot, channel, "note hypothesis The index rebuild starves the cache")
    bot.settle()

    stored = kinds(bot, channel)
    assert stored[EntryKind.STATUS_CHANGED] == 1 and stored[EntryKind.HYPOTHESIS] == 1
    posted = texts(slack, channel["id"])
    assert len(posted) == 3 and "→ *Monitoring*" in posted[1] and "starves the cache" in posted[2]
    assert [c.http_status for c in slack.calls_to("chat.update")][:3] == [503, 503, 200]
    assert "Monitoring" in str(slack.messages(channel["id"])[0]["blocks"])
    assert len(texts(slack, ANNOUNCE)) == 2  # declared, monitoring
    assert slack.responses("r") == []


def test_a_rate_limit_beyond_the_retries_is_told_and_trying_again_does_nothing_twice(bot: RunningBot) -> None:
    slack = bot.slack
    channel = bot.declare("declare sev2 Checkout is timing out")
    slack.fail_next("chat.postMessage", "ratelimited", count=RATE_LIMIT_RETRIES + 1, retry_after=1)
    first = in_channel(bot, channel, "status identified", respond_to="told")
    assert bot.runtime.services.background.wait_idle(20)

    attempts = [c for c in slack.calls_to("chat.postMessage") if c.http_status == 429]
    assert len(attempts) == RATE_LIMIT_RETRIES + 1  # the first try and five retries, then it gave up
    assert_waits_honoured(slack.calls_to("chat.postMessage"))
    [told] = slack.responses("told")
    assert told["response_type"] == "ephemeral"
    assert "Your change to incident 1 is saved" in told["text"] and "`ratelimited`" in told["text"]
    assert kinds(bot, channel)[EntryKind.STATUS_CHANGED] == 1

    # Slack delivers the same request again, and the person runs the command again: nothing is done twice.
    bot.requests.retry(first, 1)
    again = in_channel(bot, channel, "status identified", respond_to="again")
    bot.settle()
    assert "already Identified" in again.response.json()["text"]
    assert kinds(bot, channel)[EntryKind.STATUS_CHANGED] == 1
    assert len(texts(slack, ANNOUNCE)) == 1  # only the declaration: the change never got as far

    # As told, the next change tells the channel, and the summary and topic catch up.
    in_channel(bot, channel, f"update Identified: bad deploy; <@{BOB}> rolls back")
    bot.settle()
    posted = texts(slack, channel["id"])
    assert len(posted) == 2 and "rolls back" in posted[1]
    assert "Identified" in str(slack.messages(channel["id"])[0]["blocks"])
    assert len(texts(slack, ANNOUNCE)) == 2
    assert slack.responses("again") == []


def test_server_errors_beyond_the_retries_are_told_and_the_retry_button_repeats_no_step(bot: RunningBot) -> None:
    slack = bot.slack
    slack.fail_next("chat.postMessage", "internal_error", http_status=500, count=SERVER_ERROR_RETRIES + 1)  # the summary
    sent = bot.command("declare sev1 Checkout is timing out", respond_to="declare")
    assert sent.response.status_code == 200
    assert bot.runtime.services.background.wait_idle(20)

    assert [c.http_status for c in slack.calls_to("chat.postMessage")][:SERVER_ERROR_RETRIES + 1] == [500] * (SERVER_ERROR_RETRIES + 1)
    [report] = [r for r in slack.responses("declare") if "internal_error" in r.get("text", "")]
    assert "Incident 1 is recorded" in report["text"] and "posting the summary" in report["text"]
    [button] = report["blocks"][1]["elements"]
    incident = bot.runtime.services.incidents.list_open()[0]
    assert incident.channel_id and incident.summary_ts is None and incident.provisioned_at is None
    assert len(slack.messages(ANNOUNCE)) == 1  # the later steps went on without the summary

    for _ in range(2):  # pressed twice: the second press finds nothing left to do
        pressed = bot.requests.block_action(button["action_id"], button["value"], user_id=ALICE, channel_id=GENERAL,
                                            response_url=slack.response_url("retry"))
        assert pressed.response.status_code == 200
        bot.settle()

    incident = bot.runtime.services.incidents.list_open()[0]
    assert incident.provisioned_at is not None and incident.summary_ts is not None
    assert len(slack.calls_to("conversations.create")) == 1
    assert len(slack.messages(incident.channel_id)) == 1  # one summary
    assert slack.pins(incident.channel_id) == [incident.summary_ts]
    assert len(slack.messages(ANNOUNCE)) == 1  # announced once
    assert all("is ready" in r["text"] for r in slack.responses("retry"))
    assert len(bot.runtime.services.incidents.list_open()) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_rate_limited_form_is_answered_within_slacks_three_seconds(bot: RunningBot) -> None:
    bot.slack.fail_next("views.open", "ratelimited", retry_after=3)
    started = time.monotonic()
    sent = bot.command("declare")
    elapsed = time.monotonic() - started
    assert sent.response.status_code == 200
    assert elapsed < 3, f"acknowledged after {elapsed:.1f}s"


def test_a_failure_after_the_ack_is_told_as_what_failed_not_always_as_slack() -> None:
    """The publishing after an ack talks to Slack and then writes that it did: when the bot's own
    database is what failed (a connection cut), the person who asked is not told Slack failed."""
    assert what_failed(StepFailed("Posting to the channel", "channel_not_found")) == (
        "Posting to the channel failed: Slack said `channel_not_found`")
    lost = OperationalError("UPDATE timeline_entries SET published_at", None, Exception("server closed the connection"))
    assert what_failed(lost) == "the bot's database did not answer while it was being shown in Slack (OperationalError)"
    assert what_failed(TimeoutError()) == "Slack failed (TimeoutError)"
