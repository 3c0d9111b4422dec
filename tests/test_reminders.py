"""Reminders that keep an incident moving: status updates while it is open, follow-ups after it closes.
Both are jobs in the bot's own store, driven here by moving one clock for the bot and its scheduler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import ManualClock
from handlers import followups
from simulators.slack import SlackSimulator
from tests.conftest import (
    ALICE,
    ANNOUNCE,
    BOB,
    CAROL,
    GENERAL,
    RunningBot,
    settle_jobs,
    start_bot,
    tick,
)

CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"

[reminders]
status_update_minutes = {{ sev1 = 15, sev2 = 30, sev3 = 60, sev4 = 240 }}
followup_after_days = 3
"""


@pytest.fixture
def bot(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock) -> Iterator[RunningBot]:
    running = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock)
    yield running
    running.stop()


def command(bot: RunningBot, channel: dict, text: str, user: str = ALICE) -> dict:
    sent = bot.requests.command(text, user_id=user, channel_id=channel["id"], response_url=bot.slack.response_url("r"))
    assert sent.response.status_code == 200, sent.response.text
    bot.settle()
    return sent.response.json() if sent.response.content else {}


def reminders(bot: RunningBot, channel: dict, *, at_least: int = 0) -> list[str]:
    """The channel's reminders; with `at_least`, wait (a few seconds at most) until there are that many."""
    def found(slack: SlackSimulator) -> list[str]:
        return [m["text"] for m in slack.messages(channel["id"]) if m["text"].startswith(":alarm_clock:")]

    if at_least:
        bot.slack.wait_for(lambda slack: len(found(slack)) >= at_least)
    return found(bot.slack)


def test_a_sev1_channel_is_reminded_every_15_minutes_without_an_update(bot: RunningBot, clock: ManualClock) -> None:
    channel = bot.declare("declare sev1 Checkout down")
    tick(bot, clock, timedelta(minutes=14))
    assert reminders(bot, channel) == []
    tick(bot, clock, timedelta(minutes=1, seconds=1))
    (first,) = reminders(bot, channel, at_least=1)
    assert "No status update for 15 minutes since the incident was declared" in first and f"<@{ALICE}>" in first
    assert f"<#{ANNOUNCE}>" in first and "`/incident update &lt;text&gt;`" in first

    tick(bot, clock, timedelta(minutes=5))
    command(bot, channel, "update Rolling back deploy 4512")  # an update restarts the interval
    tick(bot, clock, timedelta(minutes=14))
    assert len(reminders(bot, channel)) == 1
    tick(bot, clock, timedelta(minutes=1, seconds=1))
    assert len(reminders(bot, channel, at_least=2)) == 2 and "since the last one" in reminders(bot, channel)[-1]
    tick(bot, clock, timedelta(minutes=15))  # still nothing posted: reminded again, once
    assert len(reminders(bot, channel, at_least=3)) == 3


def test_the_interval_follows_the_severity_and_resolving_stops_reminders(bot: RunningBot, clock: ManualClock) -> None:
    channel = bot.declare("declare sev1 Search degraded")
    tick(bot, clock, timedelta(minutes=10))
    command(bot, channel, "sev sev3")  # sev3: an hour from the declaration
    tick(bot, clock, timedelta(minutes=10))
    assert reminders(bot, channel) == []
    tick(bot, clock, timedelta(minutes=40, seconds=1))
    assert len(reminders(bot, channel, at_least=1)) == 1 and "60 minutes" in reminders(bot, channel)[0]

    command(bot, channel, "resolve Reindexed")
    tick(bot, clock, timedelta(hours=5))
    assert len(reminders(bot, channel)) == 1
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    assert incident is not None
    assert f"status-reminder-{incident.id}" not in bot.runtime.services.scheduler.pending()

    command(bot, channel, "status investigating")  # reopened: reminders again, an interval from now
    assert f"status-reminder-{incident.id}" in bot.runtime.services.scheduler.pending()
    tick(bot, clock, timedelta(minutes=59))
    assert len(reminders(bot, channel)) == 1
    tick(bot, clock, timedelta(minutes=1, seconds=1))
    assert len(reminders(bot, channel, at_least=2)) == 2


def test_a_reminder_survives_a_restart(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock) -> None:
    first = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock)
    channel = first.declare("declare sev2 Queue backlog")
    first.stop()
    clock.advance(timedelta(minutes=31))  # the reminder falls due while no bot runs

    second = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock)
    try:
        settle_jobs(second)
        assert len(reminders(second, channel, at_least=1)) == 1  # run once at start, from the job kept in the store
    finally:
        second.stop()


def test_two_bots_on_one_store_remind_once(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock) -> None:
    one = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock)
    (tmp_path / "second").mkdir()
    two = start_bot(tmp_path / "second", slack, database_url, CONFIG, clock=clock)
    try:
        channel = one.declare("declare sev1 Login broken")
        two.runtime.services.scheduler.wakeup()
        clock.advance(timedelta(minutes=16))
        one.runtime.services.scheduler.wakeup()
        two.runtime.services.scheduler.wakeup()
        settle_jobs(one)
        settle_jobs(two)
        assert len(reminders(one, channel, at_least=1)) == 1
        time.sleep(0.5)  # and no second one follows
        assert len(reminders(one, channel)) == 1
    finally:
        one.stop()
        two.stop()


def followup(bot: RunningBot, channel: dict, text: str, user: str = ALICE) -> str:
    return command(bot, channel, f"followup {text}", user).get("text", "")


def test_followups_are_recorded_with_their_owner_and_told_to_the_channel(bot: RunningBot) -> None:
    channel = bot.declare("declare sev2 Pool exhausted")
    said = followup(bot, channel, f"Patch the pool to reclaim idle connections <@{BOB}>")
    assert f"Follow-up recorded for <@{BOB}>" in said and "3 days after the incident closes" in said
    said = followup(bot, channel, "Write the runbook")
    assert "without an owner; nobody will be reminded" in said
    posted = [m["text"] for m in bot.slack.messages(channel["id"]) if "added a follow-up" in m["text"]]
    assert posted == [f":ballot_box_with_check: <@{ALICE}> added a follow-up for <@{BOB}>: Patch the pool to reclaim idle connections",
                      f":ballot_box_with_check: <@{ALICE}> added a follow-up: Write the runbook"]

    for text, complaint in [("followup", "needs some text"), (f"followup <@{BOB}>", "needs some text")]:
        reply = command(bot, channel, text)
        assert complaint in reply["text"] and "/incident followup &lt;text&gt; [@owner]" in reply["text"]
    outside = bot.requests.command("followup Something", user_id=ALICE, channel_id=GENERAL, response_url=bot.slack.response_url("o"))
    assert "not an incident's channel" in outside.response.json()["text"]

    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    assert incident is not None
    items = bot.runtime.services.followups.for_incident(incident.id)
    assert [(f.text, f.owner_id) for f in items] == [("Patch the pool to reclaim idle connections", BOB), ("Write the runbook", None)]


def test_owners_are_reminded_after_the_close_until_they_press_done(bot: RunningBot, clock: ManualClock) -> None:
    channel = bot.declare("declare sev2 Pool exhausted")
    followup(bot, channel, f"Patch the pool <@{BOB}>")
    followup(bot, channel, f"Add a connection alert <@{CAROL}>")
    followup(bot, channel, "Unowned item")
    tick(bot, clock, timedelta(days=5))  # open for days: nobody is reminded before the close
    command(bot, channel, "close")
    assert bot.slack.direct_messages(BOB) == []

    tick(bot, clock, timedelta(days=2, hours=23))
    assert bot.slack.direct_messages(BOB) == []
    tick(bot, clock, timedelta(hours=2))
    bot.slack.wait_for(lambda slack: slack.direct_messages(BOB) and slack.direct_messages(CAROL))
    (reminder,) = bot.slack.direct_messages(BOB)
    assert "A follow-up from incident 1" in reminder["text"] and "Patch the pool" in reminder["text"]
    button = reminder["blocks"][1]["elements"][0]
    assert button["action_id"] == followups.DONE_ACTION and button["text"]["text"] == "Done"
    assert len(bot.slack.direct_messages(CAROL)) == 1

    pressed = bot.requests.block_action(followups.DONE_ACTION, button["value"], user_id=BOB, channel_id=reminder.get("channel", "D0"),
                                        response_url=bot.slack.response_url("done"))
    assert pressed.response.status_code == 200
    bot.settle()
    assert bot.slack.responses("done")[-1]["text"].startswith(":white_check_mark: Done: Patch the pool")

    tick(bot, clock, timedelta(days=3, hours=1))  # Bob is done; Carol is reminded again
    bot.slack.wait_for(lambda slack: len(slack.direct_messages(CAROL)) == 2)
    assert len(bot.slack.direct_messages(BOB)) == 1
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    assert incident is not None
    done = {f.text: f.done_by for f in bot.runtime.services.followups.for_incident(incident.id)}
    assert done == {"Patch the pool": BOB, "Add a connection alert": None, "Unowned item": None}
