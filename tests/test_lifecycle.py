"""Driving an incident through its statuses to close, and every malformed command, over signed HTTP."""

from __future__ import annotations

import pytest

from bot.incidents.values import EntryKind, Role
from tests.conftest import ALICE, ANNOUNCE, BOB, CAROL, GENERAL, RunningBot


def timeline(bot: RunningBot, incident_id: int) -> list[tuple[str, str | None, str]]:
    return [(e.kind, e.actor_id, e.text) for e in bot.runtime.services.timeline.items(incident_id)]


def in_channel(bot: RunningBot, channel: dict, text: str, user: str = ALICE):
    return bot.requests.command(text, user_id=user, channel_id=channel["id"], channel_name=channel["name"],
                                response_url=bot.slack.response_url("in-channel"))


def test_an_incident_goes_from_declared_to_closed(bot: RunningBot) -> None:
    channel = bot.declare("declare sev2 Checkout is timing out")
    cid = channel["id"]
    summary_ts = bot.slack.pins(cid)[0]

    steps = [
        ("status identified", ALICE),
        ("sev sev1", ALICE),
        (f"role commander <@{BOB}|bob>", ALICE),
        (f"role scribe <@{CAROL}>", BOB),
        ("update Connection pool exhausted on primary; rolling back deploy 4512", BOB),
        ("status monitoring", BOB),
        ("resolve Rolled back; pool back to 20% use", BOB),
        ("close", BOB),
    ]
    for text, user in steps:
        sent = in_channel(bot, channel, text, user)
        assert sent.response.status_code == 200 and not sent.response.content, (text, sent.response.text)
        bot.settle()

    incident = bot.runtime.services.incidents.find_by_channel(cid)
    assert incident is not None
    assert (incident.status.value, incident.severity.value) == ("closed", "sev1")
    assert incident.commander == BOB and incident.roles[Role.SCRIBE] == CAROL
    assert incident.resolution_summary == "Rolled back; pool back to 20% use"
    assert incident.resolved_at and incident.closed_at and incident.resolved_at <= incident.closed_at

    kinds = [(kind, actor) for kind, actor, _ in timeline(bot, incident.id)]
    assert kinds == [
        (EntryKind.DECLARED, ALICE),
        (EntryKind.STATUS_CHANGED, ALICE),
        (EntryKind.SEVERITY_CHANGED, ALICE),
        (EntryKind.ROLE_ASSIGNED, ALICE),
        (EntryKind.ROLE_ASSIGNED, BOB),
        (EntryKind.UPDATE, BOB),
        (EntryKind.STATUS_CHANGED, BOB),
        (EntryKind.RESOLVED, BOB),
        (EntryKind.CLOSED, BOB),
    ]

    # The summary was kept current in place, never re-posted.
    updates = [c for c in bot.slack.calls_to("chat.update") if c.params["ts"] == summary_ts]
    assert len(updates) == len(steps)
    final_summary = bot.slack.messages(cid)[0]
    assert final_summary["ts"] == summary_ts and "Closed" in str(final_summary["blocks"])
    assert f"<@{BOB}>" in str(final_summary["blocks"]) and "Rolled back" in str(final_summary["blocks"])

    # The topic followed status, severity and commander.
    topics = [c.params["topic"] for c in bot.slack.calls_to("conversations.setTopic")]
    assert topics[0].startswith("SEV2 · Investigating · Commander: alice")
    assert any(t.startswith("SEV1 · Identified · Commander: bob") for t in topics)
    assert topics[-1].startswith("SEV1 · Closed · Commander: bob")

    # New role holders were invited; the channel heard of every change.
    assert {BOB, CAROL} <= bot.slack.members(cid)
    *changes, draft = bot.slack.messages(cid)[1:]
    channel_texts = [m["text"] for m in changes]
    assert len(channel_texts) == len(steps)
    assert "Investigating → *Identified*" in channel_texts[0]
    assert "Connection pool exhausted" in channel_texts[4]
    assert "closed incident 1" in channel_texts[-1]
    # …and closing posted the postmortem draft after the closing message.
    assert draft["files"][0]["name"] == "incident-1-postmortem-v1.md"

    # The announcement channel heard of the declaration, status changes, the update, resolve and close.
    announced = [m["text"] for m in bot.slack.messages(ANNOUNCE)]
    assert len(announced) == 7  # declared, identified, sev1, update, monitoring, resolved, closed
    assert all(f"<#{cid}|" in text for text in announced)


def test_retried_commands_change_nothing_twice(bot: RunningBot) -> None:
    channel = bot.declare()
    first = in_channel(bot, channel, "update Rolling back now")
    bot.requests.retry(first, 1)
    bot.requests.retry(first, 2)
    bot.settle()

    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    updates = [k for k, _, _ in timeline(bot, incident.id) if k == EntryKind.UPDATE]
    assert len(updates) == 1
    assert sum("Rolling back now" in m["text"] for m in bot.slack.messages(ANNOUNCE)) == 1


def test_status_on_a_closed_incident_is_refused(bot: RunningBot) -> None:
    channel = bot.declare()
    in_channel(bot, channel, "close")
    bot.settle()
    calls_before = len(bot.slack.calls)

    sent = in_channel(bot, channel, "status investigating")
    bot.settle()

    assert sent.response.json()["response_type"] == "ephemeral"
    assert "is closed" in sent.response.json()["text"]
    assert bot.runtime.services.incidents.find_by_channel(channel["id"]).status.value == "closed"
    assert len(bot.slack.calls) == calls_before


def test_no_op_changes_say_so_and_record_nothing(bot: RunningBot) -> None:
    channel = bot.declare("declare sev2 Slow search")
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])

    replies = [in_channel(bot, channel, text).response.json()["text"] for text in
               ("status investigating", "sev sev2", f"role commander <@{ALICE}>")]
    bot.settle()

    assert "already Investigating" in replies[0] and "already SEV2" in replies[1] and "already the commander" in replies[2]
    assert len(timeline(bot, incident.id)) == 1


def test_reopening_a_resolved_incident_clears_its_resolution_time(bot: RunningBot) -> None:
    channel = bot.declare()
    in_channel(bot, channel, "resolve")
    in_channel(bot, channel, "status investigating")
    bot.settle()
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    assert incident.status.value == "investigating" and incident.resolved_at is None


BAD_INPUT = [
    ("frobnicate", "is not an /incident sub-command", "/incident declare"),
    # "declare sev1" with no title opens the form (INTERFACE: "With no title: a modal asks"): test_declare.py
    ("declare sev1 Payroll --privat", "mistyped `--private`", "/incident declare"),
    ("declare sev9 Checkout down", "`sev9` is not a severity", "/incident declare"),
    ("declare " + "x" * 4000, "4,000 characters", "/incident declare"),
    ("status fixed", "`fixed` is not a status", "/incident status &lt;investigating|identified|monitoring|resolved&gt;"),
    ("status", "Which status?", "/incident status"),
    ("sev critical", "`critical` is not a severity", "/incident sev"),
    ("role commander", "Who should be commander?", "/incident role"),
    ("role boss <@U0BOB>", "`boss` is not a role", "/incident role"),
    ("role commander bob", "is not one user mention", "/incident role"),
    ("update", "needs some text", "/incident update"),
    ("close now", "takes no arguments", "/incident close"),
]


@pytest.mark.parametrize(("text", "problem", "usage"), BAD_INPUT)
def test_malformed_commands_say_what_is_wrong_and_change_nothing(bot: RunningBot, text: str, problem: str, usage: str) -> None:
    channel = bot.declare()
    calls_before = len(bot.slack.calls)
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])

    sent = in_channel(bot, channel, text)
    bot.settle()

    reply = sent.response.json()
    assert reply["response_type"] == "ephemeral"
    assert problem in reply["text"] and usage in reply["text"]
    assert len(bot.slack.calls) == calls_before
    assert bot.runtime.services.incidents.find_by_channel(channel["id"]) == incident
    assert len(bot.runtime.services.incidents.list_open()) == 1


@pytest.mark.parametrize("text", ["status identified", "sev sev1", f"role scribe <@{BOB}>", "update hi", "resolve", "close"])
def test_incident_commands_outside_an_incident_channel_explain_where_to_run_them(bot: RunningBot, text: str) -> None:
    sent = bot.command(text, channel=GENERAL)
    bot.settle()

    assert "not an incident's channel" in sent.response.json()["text"]
    assert "/incident list" in sent.response.json()["text"]
    assert [c.method for c in bot.slack.calls if c.method != "auth.test"] == []


def test_list_shows_open_incidents_and_help_lists_every_sub_command(bot: RunningBot) -> None:
    first = bot.declare("declare sev1 Checkout is timing out")
    second = bot.declare("declare sev3 Search is slow")
    in_channel(bot, second, "close")
    bot.settle()

    listing = bot.command("list").response.json()
    text = str(listing["blocks"])
    assert listing["response_type"] == "ephemeral"
    assert "Checkout is timing out" in text and f"<#{first['id']}|" in text
    assert "Search is slow" not in text

    help_text = bot.command("help").response.json()["text"]
    for sub in ("declare", "status", "sev", "role", "update", "resolve", "close", "list", "help"):
        assert f"/incident {sub}" in help_text
