"""An incident whose channel a person archived can still be resolved and closed: `incident-bot resolve`
and `incident-bot close` from the operator's shell (through the real CLI entry point, beside a running
bot, on SQLite and PostgreSQL), Slack's `is_archived` met by every post into the channel (the message
goes to the announcement thread instead), the channel_archive / group_archive / channel_unarchive
events, and the simulator's archive semantics (conversations.unarchive refused to a bot token)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.clock import ManualClock
from bot.incidents.values import OPERATOR, EntryKind, Incident, Status
from bot.paging.providers import RetryPolicy, Transport
from handlers import paging_blocks
from handlers.cli import main
from simulators.paging import OpsgenieReceiver, PagerDutyReceiver
from simulators.slack import SlackSimulator
from tests.conftest import (
    ALICE,
    ANNOUNCE,
    BOB,
    CAROL,
    DBA,
    GENERAL,
    SRE,
    RunningBot,
    escalating_teams,
    start_bot,
    tick,
)

CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"
channel_prefix = "inc"

{escalating_teams()}"""


@pytest.fixture
def running(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
            pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver) -> Iterator[RunningBot]:
    slack.add_user(DBA, "dba1")
    slack.add_user(SRE, "sre1")
    bot = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock, env=_pager_env(pagerduty, opsgenie),
                    paging_transport=Transport(RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1), timeout=2))
    yield bot
    bot.stop()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, database_url: str,
        slack: SlackSimulator, pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver):
    """`incident-bot …` through handlers.cli.main, with the environment the operator's shell would have:
    the bot's database and configuration file, its bot token (unless `token=False`), no signing secret."""

    def run(*args: str, token: bool = True) -> tuple[int, str, str]:
        for name in ("SLACK_BOT_TOKEN", "SLACK_API_URL", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "INCIDENT_BOT_SPOOL"):
            monkeypatch.delenv(name, raising=False)
        env = {"DATABASE_URL": database_url, "INCIDENT_BOT_CONFIG": str(tmp_path / "incident-bot.toml"),
               **_pager_env(pagerduty, opsgenie)}
        if token:
            env |= {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_API_URL": slack.base_url}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _pager_env(pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver) -> dict[str, str]:
    return {"PAGERDUTY_EVENTS_URL": pagerduty.events_url, "OPSGENIE_API_URL": opsgenie.url}


def incident_of(bot: RunningBot, channel: dict) -> Incident:
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    assert incident is not None
    return incident


def in_thread(slack: SlackSimulator, incident: Incident) -> list[str]:
    """Replies in the thread of the incident's announcement."""
    assert incident.announcement_ts
    return [m["text"] for m in slack.messages(ANNOUNCE)
            if m.get("thread_ts") == incident.announcement_ts and m["ts"] != incident.announcement_ts]


def top_level(slack: SlackSimulator) -> list[str]:
    return [m["text"] for m in slack.messages(ANNOUNCE) if m.get("thread_ts") in (None, m["ts"])]


def kinds(bot: RunningBot, incident: Incident) -> list[EntryKind]:
    return [i.kind for i in bot.runtime.services.timeline.items(incident.id)]


def command(bot: RunningBot, text: str, channel: str, user: str = ALICE) -> dict:
    sent = bot.requests.command(text, user_id=user, channel_id=channel, response_url=bot.slack.response_url("c"))
    assert sent.response.status_code == 200, sent.response.text
    bot.settle()
    return sent.response.json() if sent.response.content else {}


# --- the CLI on an incident whose channel a person archived


@pytest.mark.parametrize("by", ["number", "channel name"])
def test_the_cli_resolves_then_closes_an_incident_whose_channel_was_archived(
        running: RunningBot, slack: SlackSimulator, cli, by: str) -> None:
    channel = running.declare("declare sev2 Checkout is timing out")
    slack.archive_channel(channel["id"], by=BOB)  # Slack's event is not delivered: the bot learns it from Slack's answer
    reference = "1" if by == "number" else channel["name"]
    before = len(slack.messages(channel["id"]))

    code, out, err = cli("resolve", reference, "Rolled", "back", "deploy", "&", "drained", "the", "pool")

    assert (code, err) == (0, "")
    assert "Incident 1 (“Checkout is timing out”) resolved by the operator (incident-bot CLI)." in out
    assert "Status-update reminders for it are stopped." in out
    assert f"its channel #{channel['name']} is archived, so this went to the incident's announcement thread" in out
    incident = incident_of(running, channel)
    assert incident.status is Status.RESOLVED and incident.resolution_summary == "Rolled back deploy &amp; drained the pool"
    assert incident.channel_archived_at is not None
    resolved = [i for i in running.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.RESOLVED]
    assert [i.actor_id for i in resolved] == [OPERATOR]
    # Slack: nothing reached the archived channel; the thread says why, then what happened; the
    # announcement channel is told as for the slash command.
    assert len(slack.messages(channel["id"])) == before
    notice, change = in_thread(slack, incident)
    assert "was archived before the incident was closed (it is *Resolved*)" in notice and "Unarchive channel" in notice
    assert "an operator runs `incident-bot close 1`" in notice  # resolved already: closing is what is left
    assert change.startswith(":file_cabinet: _For incident 1, whose channel is archived:_\n")
    assert "the operator (incident-bot CLI) marked incident 1 *resolved*." in change and ">Rolled back deploy &amp; drained" in change
    # The announcement channel sees that reply (broadcast), not a second top-level copy of the news.
    assert [m["text"] for m in slack.messages(ANNOUNCE) if m.get("subtype") == "thread_broadcast"] == [change]
    assert not any("*resolved*" in text for text in top_level(slack))
    assert [c.response["error"] for c in slack.calls_to("chat.postMessage") if not c.response["ok"]] == ["is_archived"]

    again = cli("resolve", reference)
    assert again[0] == 0 and "Incident 1 is already resolved" in again[1] and "`incident-bot close 1` closes it" in again[1]
    assert len(in_thread(slack, incident)) == 2 and kinds(running, incident).count(EntryKind.RESOLVED) == 1

    code, out, err = cli("close", reference)

    assert (code, err) == (0, "")
    assert "Incident 1 (“Checkout is timing out”) closed by the operator (incident-bot CLI)." in out
    assert "Postmortem: version 1 drafted and posted: https://simulated.slack.com/files/" in out
    assert "`incident-bot postmortem 1` prints it" in out
    incident = incident_of(running, channel)
    assert incident.status is Status.CLOSED
    [upload] = slack.files()
    assert upload["channels"] == [ANNOUNCE] and upload["shares"]["public"][ANNOUNCE][0]["thread_ts"] == incident.announcement_ts
    assert "the operator (incident-bot CLI)" in upload["content"] and "Rolled back deploy & drained the pool" in upload["content"]
    assert any("the operator (incident-bot CLI) closed incident 1" in text for text in in_thread(slack, incident))

    code, out, _ = cli("close", reference)
    assert code == 0 and "Incident 1 is already closed" in out and "Postmortem: version 1 drafted and posted" in out
    assert len(slack.files()) == 1 and kinds(running, incident).count(EntryKind.CLOSED) == 1
    assert len(running.runtime.services.postmortems.versions(incident.id)) == 1


def test_a_page_escalation_does_not_fire_after_the_cli_resolves(
        running: RunningBot, slack: SlackSimulator, clock: ManualClock, cli,
        pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver) -> None:
    channel = running.declare("declare sev1 Checkout is timing out")
    command(running, "page database Connections exhausted", channel["id"])
    scheduler = running.runtime.services.scheduler
    assert {"escalate-page-1", "status-reminder-1"} <= set(scheduler.pending())
    slack.archive_channel(channel["id"], by=BOB)

    code, out, _ = cli("resolve", "1")

    assert code == 0
    assert "Paging: 1 open page resolved (Database team); their escalations are cancelled." in out
    assert pagerduty.alerts() == {"incident-bot-1-database": "resolved"}
    # The running bot reads its jobs from the shared store: the CLI removed them there.
    assert "escalate-page-1" not in scheduler.pending() and "status-reminder-1" not in scheduler.pending()
    tick(running, clock, timedelta(minutes=30))
    assert opsgenie.received == [] and [e["event_action"] for e in pagerduty.events()] == ["trigger", "resolve"]
    page = running.runtime.services.paging.get(1)
    assert page.resolved_at is not None and page.escalated_at is None
    incident = incident_of(running, channel)
    assert not any(text.startswith(":alarm_clock:") for text in in_thread(slack, incident))


def test_closing_before_resolving_resolves_too_as_the_slash_command_does(running: RunningBot, cli) -> None:
    channel = running.declare("declare sev3 Search is slow")

    code, out, _ = cli("close", "#1")

    assert code == 0
    assert "It was Investigating, not resolved: closing resolves it too, as `/incident close` does." in out
    incident = incident_of(running, channel)
    assert incident.status is Status.CLOSED and incident.resolved_at == incident.closed_at
    # The channel is not archived here: the change is posted in it, as `/incident close` would.
    assert any("the operator (incident-bot CLI) closed incident 1" in m["text"] for m in running.slack.messages(channel["id"]))
    assert "Postmortem: version 1 drafted and posted" in out


def test_without_a_token_the_change_stands_and_serve_shows_it_at_its_next_start(
        tmp_path: Path, slack: SlackSimulator, database_url: str, cli) -> None:
    bot = start_bot(tmp_path, slack, database_url, CONFIG)
    try:
        channel = bot.declare("declare sev2 Checkout is timing out")
    finally:
        bot.stop()

    code, out, err = cli("resolve", "1", "Restarted", "the", "pool", token=False)
    assert (code, err) == (0, "")
    assert "Slack: the change is not shown (SLACK_BOT_TOKEN is not set); `serve` shows it at its next start" in out
    code, out, err = cli("close", "1", token=False)
    assert (code, err) == (0, "")
    assert "Postmortem: version 1 drafted, not posted in Slack yet; `incident-bot postmortem 1` prints it." in out
    assert not any("operator" in m["text"] for m in slack.messages(channel["id"])) and slack.files() == []

    again = start_bot(tmp_path, slack, database_url, CONFIG)
    try:
        again.runtime.resume()
        again.settle()
        texts = [m["text"] for m in slack.messages(channel["id"])]
        assert any("the operator (incident-bot CLI) marked incident 1 *resolved*." in t for t in texts)
        assert any("the operator (incident-bot CLI) closed incident 1" in t for t in texts)
        [upload] = slack.files()
        assert upload["channels"] == [channel["id"]] and "Restarted the pool" in upload["content"]
    finally:
        again.stop()


def test_when_slack_fails_the_cli_says_what_was_not_shown(running: RunningBot, slack: SlackSimulator, cli) -> None:
    first = running.declare("declare sev2 Checkout is timing out")
    second = running.declare("declare sev3 Search is slow")

    slack.fail_next("auth.test", "invalid_auth")
    code, out, _ = cli("resolve", "1")
    assert code == 0
    assert "Slack: the change is not shown (Slack did not answer the bot token: Slack said `invalid_auth`)" in out

    slack.fail_next("chat.postMessage", "not_in_channel")  # someone removed the bot from the channel
    code, out, err = cli("resolve", "2")
    assert code == 0
    assert ("Slack: the change is not shown (posting the change in the channel failed: Slack said `not_in_channel`); "
            "`serve` shows it at its next start") in out
    assert "the change itself is saved" in err
    for channel in (first, second):
        incident = incident_of(running, channel)
        assert incident.status is Status.RESOLVED and incident.channel_archived_at is None
        assert not any("operator" in m["text"] for m in slack.messages(channel["id"]))


def test_a_passing_channel_not_found_is_not_taken_for_a_deleted_channel(running: RunningBot, slack: SlackSimulator) -> None:
    channel = running.declare()
    slack.fail_next("chat.postMessage", "channel_not_found")

    reply = command(running, "update Still looking", channel["id"])

    assert reply == {}
    incident = incident_of(running, channel)
    assert incident.channel_archived_at is None and in_thread(slack, incident) == []
    assert [c.params["channel"] for c in slack.calls_to("conversations.info")] == [channel["id"]]
    [told] = [r["text"] for r in slack.responses("c") if "is saved" in r.get("text", "")]
    assert "posting the change in the channel failed: Slack said `channel_not_found`" in told


def test_the_cli_says_what_was_wrong_and_the_right_form(running: RunningBot, cli) -> None:
    running.declare()

    code, _, err = cli("resolve", "42")
    assert code == 1 and "no incident '42'" in err and "Usage: incident-bot resolve INCIDENT [SUMMARY]" in err
    code, _, err = cli("close", "inc-nope")
    assert code == 1 and "no incident 'inc-nope'" in err and "Usage: incident-bot close INCIDENT" in err
    code, _, err = cli("resolve", "1", "x" * 3000)
    assert code == 1 and "keep it to 2,900" in err and "Usage: incident-bot resolve INCIDENT [SUMMARY]" in err
    assert running.runtime.services.incidents.find("1").status is Status.INVESTIGATING
    with pytest.raises(SystemExit) as usage:  # argparse: a missing INCIDENT is a usage error
        main(["close"])
    assert usage.value.code == 2


def test_the_console_entry_point_resolves_in_its_own_process(tmp_path: Path, slack: SlackSimulator, database_url: str,
                                                             running: RunningBot) -> None:
    channel = running.declare()
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "INCIDENT_BOT_CONFIG": str(tmp_path / "incident-bot.toml"),
           "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_API_URL": slack.base_url}

    done = subprocess.run([sys.executable, "-m", "handlers.cli", "resolve", channel["name"], "fixed"], env=env,
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert "resolved by the operator (incident-bot CLI)" in done.stdout
    assert any("the operator (incident-bot CLI) marked incident 1 *resolved*." in m["text"] for m in slack.messages(channel["id"]))


# --- serve: Slack's is_archived, and the archive events


def test_a_post_meeting_is_archived_goes_to_the_announcement_thread(
        running: RunningBot, slack: SlackSimulator, clock: ManualClock) -> None:
    channel = running.declare("declare sev1 Checkout is timing out")
    incident = incident_of(running, channel)
    slack.archive_channel(channel["id"], by=BOB)

    tick(running, clock, timedelta(minutes=16))  # a status-update reminder falls due

    incident = incident_of(running, channel)
    assert incident.channel_archived_at is not None
    notice, reminder = in_thread(slack, incident)
    assert f"<#{channel['id']}|{channel['name']}>, the channel of incident 1, was archived before" in notice
    assert "Slack refuses posts there" in notice and "incident-bot resolve 1" in notice
    assert reminder.startswith(":file_cabinet: _For incident 1, whose channel is archived:_\n:alarm_clock: No status update")
    archived = [i for i in running.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.CHANNEL_ARCHIVED]
    assert [(i.actor_id, i.data["seen"]) for i in archived] == [(None, "is_archived")]
    shown = command(running, "timeline", GENERAL)  # outside the channel: not an incident channel
    assert "not an incident's channel" in shown["text"]

    # Every later post goes to the thread too; the notice is not repeated, and reminders now say what works.
    tick(running, clock, timedelta(minutes=16))
    *_, later = in_thread(slack, incident)
    assert len(in_thread(slack, incident)) == 3
    assert ":alarm_clock: Incident 1 is still Investigating and its channel is archived" in later
    assert "`incident-bot resolve 1 [summary]`" in later
    assert kinds(running, incident).count(EntryKind.CHANNEL_ARCHIVED) == 1


def test_an_escalated_page_in_an_archived_channel_keeps_its_acknowledge_button_in_the_thread(
        running: RunningBot, slack: SlackSimulator, clock: ManualClock, opsgenie: OpsgenieReceiver) -> None:
    channel = running.declare("declare sev1 Checkout is timing out")
    command(running, "page database", channel["id"])
    slack.archive_channel(channel["id"], by=BOB)

    tick(running, clock, timedelta(minutes=11))
    opsgenie.wait_for(lambda r: r.alerts())
    running.settle()

    incident = incident_of(running, channel)
    replies = [m for m in slack.messages(ANNOUNCE) if m.get("thread_ts") == incident.announcement_ts and m.get("blocks")]
    [page] = [m for m in replies if any(b["type"] == "actions" for b in m["blocks"])]
    assert page["blocks"][0]["elements"][0]["text"].startswith(":file_cabinet: _For incident 1")
    [button] = [e for b in page["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == paging_blocks.ACKNOWLEDGE_ACTION
    sent = running.requests.block_action(button["action_id"], button["value"], user_id=SRE, channel_id=ANNOUNCE,
                                         response_url=slack.response_url("ack"))
    assert sent.response.status_code == 200
    running.settle()
    assert opsgenie.alerts() == {"incident-bot-1-sre": "acknowledged"}
    assert any("acknowledged the page to *SRE on call*" in text for text in in_thread(slack, incident))


def test_the_channel_archive_event_is_recorded_and_told_once_then_unarchive_brings_the_bot_back(
        running: RunningBot, slack: SlackSimulator) -> None:
    channel = running.declare("declare sev2 Checkout is timing out")
    event = slack.archive_channel(channel["id"], by=BOB)
    assert event == {"type": "channel_archive", "channel": channel["id"], "user": BOB, "event_ts": event["event_ts"]}

    first = running.requests.event(event)
    assert first.response.status_code == 200
    running.requests.retry(first)  # Slack's retry of the same event
    running.requests.event(event)  # and the same news again
    running.settle()

    incident = incident_of(running, channel)
    assert incident.channel_archived_at is not None
    [entry] = [i for i in running.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.CHANNEL_ARCHIVED]
    assert (entry.actor_id, entry.data["seen"], entry.data["deleted"]) == (BOB, "channel_archive", False)
    [notice] = in_thread(slack, incident)
    assert notice.startswith(f":file_cabinet: <@{BOB}> archived <#{channel['id']}|{channel['name']}>, the channel of incident 1")
    [announcement] = [m["text"] for m in slack.messages(ANNOUNCE) if m["ts"] == incident.announcement_ts]
    assert "to help" not in announcement and "Its channel is archived: follow this thread." in announcement
    listed = command(running, "list", GENERAL)
    assert "archived: `incident-bot resolve|close` ends it" in str(listed["blocks"])
    timeline = command(running, "timeline", channel["id"], user=CAROL)
    assert f"<@{BOB}> archived the incident channel" in str(timeline["blocks"])

    back = slack.unarchive_channel(channel["id"], by=CAROL)
    assert running.requests.event(back).response.status_code == 200
    running.settle()

    incident = incident_of(running, channel)
    assert incident.channel_archived_at is None
    assert running.slack.channel(channel["id"])["is_member"] is True  # the bot joined again
    assert any("The bot is back in it" in text and f"<@{CAROL}> unarchived" in text for text in in_thread(slack, incident))
    [announcement] = [m["text"] for m in slack.messages(ANNOUNCE) if m["ts"] == incident.announcement_ts]
    assert f"Join <#{channel['id']}|{channel['name']}> to help." in announcement
    assert "archived: `incident-bot" not in str(command(running, "list", GENERAL)["blocks"])
    command(running, "resolve Back to normal", channel["id"])
    assert incident_of(running, channel).status is Status.RESOLVED
    assert any("marked incident 1 *resolved*" in m["text"] for m in slack.messages(channel["id"]))


def test_group_archive_and_channel_deleted_are_followed_too_but_not_for_closed_incidents(
        running: RunningBot, slack: SlackSimulator) -> None:
    first = running.declare("declare sev2 Checkout is timing out")
    second = running.declare("declare sev3 Search is slow")
    third = running.declare("declare sev4 Typo on the status page")
    command(running, "close", third["id"])

    slack.archive_channel(first["id"], by=BOB)
    running.requests.event({"type": "group_archive", "channel": first["id"], "user": BOB, "event_ts": "1.000001"})
    running.requests.event(slack.delete_channel(second["id"], by=CAROL))
    running.requests.event(slack.archive_channel(third["id"], by=BOB))
    running.settle()

    one, two, three = (incident_of(running, c) for c in (first, second, third))
    assert one.channel_archived_at is not None and two.channel_archived_at is not None and three.channel_archived_at is None
    [deleted] = [i for i in running.runtime.services.timeline.items(two.id) if i.kind is EntryKind.CHANNEL_ARCHIVED]
    assert (deleted.actor_id, deleted.data["deleted"]) == (CAROL, True)
    assert any(f"<@{CAROL}> deleted #{second['name']}" in text for text in in_thread(slack, two))
    assert EntryKind.CHANNEL_ARCHIVED not in kinds(running, three)


# --- once the channel is known archived: each thing shown once, in the place it can be


def refused(slack: SlackSimulator) -> list[tuple[str, str]]:
    return [(c.method, c.response.get("error", "")) for c in slack.calls if c.response and not c.response.get("ok", True)]


def test_a_page_posted_before_the_archive_has_its_end_shown_once_in_the_thread(
        running: RunningBot, slack: SlackSimulator, cli) -> None:
    channel = running.declare("declare sev1 Checkout is timing out")
    command(running, "page database Connections exhausted", channel["id"])
    [page_ts] = [m["ts"] for m in slack.messages(channel["id"]) if m["text"].startswith("Paging Database team")]
    slack.archive_channel(channel["id"], by=BOB)  # the event is not delivered: the bot learns it from Slack

    assert cli("resolve", "1")[0] == 0
    assert cli("close", "1")[0] == 0

    # One refusal taught the bot; the page's ts is never looked for where it does not live.
    assert refused(slack) == [("chat.update", "is_archived")]
    assert not any(c.params.get("ts") == page_ts for c in slack.calls_to("chat.update") if c.params["channel"] == ANNOUNCE)
    incident = incident_of(running, channel)
    pages = [m for m in slack.messages(ANNOUNCE)
             if m.get("thread_ts") == incident.announcement_ts and "Paging Database team" in m["text"]]
    [page] = pages  # its closed state, shown once (close updates it in place), with no button left to press
    assert "Closed with the incident" in str(page["blocks"])
    assert not any(b["type"] == "actions" for b in page["blocks"])


def test_once_known_archived_nothing_is_tried_in_the_channel(
        running: RunningBot, slack: SlackSimulator, clock: ManualClock, cli) -> None:
    channel = running.declare("declare sev1 Checkout is timing out")
    running.requests.event(slack.archive_channel(channel["id"], by=BOB))
    running.settle()
    known = len(slack.calls)

    tick(running, clock, timedelta(minutes=16))  # a status-update reminder
    assert cli("resolve", "1", "Rolled", "back")[0] == 0
    assert cli("close", "1")[0] == 0

    assert [c.method for c in slack.calls[known:] if channel["id"] in (c.params.get("channel"), c.params.get("channel_id"))] == []
    assert refused(slack) == []
    incident = incident_of(running, channel)
    moved = [t.split("\n")[1] for t in in_thread(slack, incident) if "whose channel is archived" in t]
    assert [t.split(" ")[0] for t in moved] == [":alarm_clock:", ":white_check_mark:", ":lock:", ":memo:"]  # the last: the postmortem


def test_the_postmortem_of_a_known_archived_channel_is_uploaded_once_to_the_thread(
        running: RunningBot, slack: SlackSimulator, cli) -> None:
    channel = running.declare("declare sev2 Checkout is timing out")
    slack.archive_channel(channel["id"], by=BOB)
    assert cli("resolve", "1")[0] == 0  # Slack's refusal marks it

    assert cli("close", "1")[0] == 0

    assert len(slack.calls_to("files.getUploadURLExternal")) == 1
    [complete] = slack.calls_to("files.completeUploadExternal")
    assert complete.response["ok"] and complete.params["channel_id"] == ANNOUNCE
    [upload] = slack.files()
    assert upload["shares"]["public"][ANNOUNCE][0]["thread_ts"] == incident_of(running, channel).announcement_ts


def test_the_announcement_channel_shows_each_change_once_and_invites_nobody_to_an_archived_channel(
        running: RunningBot, slack: SlackSimulator, cli) -> None:
    channel = running.declare("declare sev2 Checkout is timing out")
    running.requests.event(slack.archive_channel(channel["id"], by=BOB))
    running.settle()

    assert cli("resolve", "1", "Rolled", "back")[0] == 0
    assert cli("close", "1")[0] == 0

    incident = incident_of(running, channel)
    resolved = [m for m in slack.messages(ANNOUNCE) if "*resolved*" in m["text"]]
    closed = [m for m in slack.messages(ANNOUNCE) if "closed incident 1" in m["text"] or "*closed*" in m["text"]]
    # One message each: a reply in the incident's thread, broadcast to the channel (Slack: thread_broadcast).
    for [message] in (resolved, closed):
        assert message["thread_ts"] == incident.announcement_ts and message.get("subtype") == "thread_broadcast"
    link = f"<#{channel['id']}|"
    assert not any(link in m["text"] for m in slack.messages(ANNOUNCE) if m.get("subtype") == "thread_broadcast")
    [announcement] = [m for m in slack.messages(ANNOUNCE) if m["ts"] == incident.announcement_ts]
    assert "to help" not in announcement["text"] and "archived" in announcement["text"]
    assert ":memo: Postmortem draft: <https://" in announcement["text"]


# --- the simulator: archiving as Slack does it


def test_the_simulator_archives_as_slack_does(slack: SlackSimulator) -> None:
    client = WebClient(token=slack.bot_token, base_url=slack.base_url)
    channel = client.conversations_create(name="inc-archive-me")["channel"]["id"]
    ts = client.chat_postMessage(channel=channel, text="summary")["ts"]
    assert error_code(client.conversations_unarchive, channel=channel) == "not_archived"

    event = slack.archive_channel(channel, by=ALICE)

    assert event["type"] == "channel_archive" and slack.channel(channel)["is_archived"] is True
    assert slack.channel(channel)["is_member"] is False  # apps are taken out of an archived channel
    writes = [
        (client.chat_postMessage, {"channel": channel, "text": "hi"}),
        (client.chat_update, {"channel": channel, "ts": ts, "text": "edited"}),
        (client.chat_postEphemeral, {"channel": channel, "user": ALICE, "text": "psst"}),
        (client.conversations_invite, {"channel": channel, "users": BOB}),
        (client.conversations_setTopic, {"channel": channel, "topic": "t"}),
        (client.conversations_join, {"channel": channel}),
        (client.pins_add, {"channel": channel, "timestamp": ts}),
        (client.files_upload_v2, {"channel": channel, "content": "x", "filename": "x.md"}),
    ]
    assert [error_code(call, **kwargs) for call, kwargs in writes] == ["is_archived"] * len(writes)
    # Slack: conversations.unarchive, "Bot tokens (xoxb-...) cannot currently be used to unarchive".
    assert error_code(client.conversations_unarchive, channel=channel) == "not_in_channel"
    assert error_code(client.conversations_unarchive, channel="C0NOPE0000") == "channel_not_found"
    assert error_code(client.conversations_unarchive, channel=client.chat_postMessage(channel=ALICE, text="dm")["channel"]) \
        == "method_not_supported_for_channel_type"

    back = slack.unarchive_channel(channel, by=ALICE)
    assert back == {"type": "channel_unarchive", "channel": channel, "user": ALICE, "event_ts": back["event_ts"]}
    assert error_code(client.chat_postMessage, channel=channel, text="hi") == "not_in_channel"
    client.conversations_join(channel=channel)
    assert client.chat_postMessage(channel=channel, text="back")["ok"] is True

    gone = slack.delete_channel(channel, by=ALICE)
    assert gone["type"] == "channel_deleted"
    assert error_code(client.chat_postMessage, channel=channel, text="hi") == "channel_not_found"
    assert error_code(client.conversations_unarchive, channel=channel) == "channel_not_found"


def error_code(call, **kwargs) -> str:
    with pytest.raises(SlackApiError) as raised:
        call(**kwargs)
    return str(raised.value.response["error"])
