"""The message shortcut Declare incident (`declare_from_message`), end to end: the form opens prefilled
from the message, its submission declares, and the message is the incident's first Detection entry at
its own time, so the postmortem's time to detect counts from it."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.incidents.values import MAX_TITLE_LENGTH, EntryKind, Incident
from bot.timeline import ts_to_datetime
from handlers import blocks, source_blocks
from simulators.slack import SlackSimulator
from tests.conftest import ALICE, ANNOUNCE, BOB, CAROL, GENERAL, RunningBot, start_bot

SHORTCUT = "declare_from_message"
MESSAGE = ("<@U0CAROL> checkout returns 500s &amp; payments &lt;fail&gt;, see <https://grafana.example.com/d/abc|the dashboard>\n"
           "since the 09:12 deploy, *all* regions")


@pytest.fixture
def clocked_bot(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock) -> Iterator[RunningBot]:
    running = start_bot(tmp_path, slack, database_url, clock=clock)
    yield running
    running.stop()


def message_in(bot: RunningBot, channel: str, ts: str) -> dict[str, Any]:
    """The message as Slack stored it, which is what a message_action payload carries."""
    return next(m for m in bot.slack.messages(channel) if m["ts"] == ts)


def open_form(bot: RunningBot, message: dict[str, Any], *, user: str = ALICE, channel: str = GENERAL) -> dict[str, Any]:
    sent = bot.requests.message_shortcut(SHORTCUT, message, user_id=user, channel_id=channel)
    assert sent.response.status_code == 200, sent.response.text
    opened = bot.slack.calls_to("views.open")[-1]
    assert opened.response["ok"], opened.response  # the simulator checks the view against Block Kit
    return opened.response["view"]


def channel_of(incident: Incident) -> str:
    assert incident.channel_id, "the incident got no channel"
    return incident.channel_id


def by_id(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if "block_id" in b}


def submit(bot: RunningBot, view: dict[str, Any], *, user: str = ALICE, private: bool = False, invite: bool = True) -> Any:
    """Submit the form as the person left it: its prefilled title and description, SEV2."""
    inputs = by_id(view)
    values: dict[str, Any] = {
        "title": {"value": {"type": "plain_text_input", "value": inputs["title"]["element"].get("initial_value", "")}},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "sev2"}}},
        "description": {"value": {"type": "plain_text_input",
                                  "value": inputs["description"]["element"].get("initial_value")}},
        "private": {"value": {"type": "checkboxes", "selected_options": (
            [{"value": blocks.PRIVATE_OPTION}] if private else [])}},
    }
    if "invite_author" in inputs:
        options = inputs["invite_author"]["element"]["options"]
        values["invite_author"] = {"value": {"type": "checkboxes", "selected_options": options if invite else []}}
    sent = bot.requests.view_submission(view, values, user_id=user)
    assert sent.response.status_code == 200, sent.response.text
    return sent


def test_the_form_opens_prefilled_from_the_message(bot: RunningBot) -> None:
    ts = bot.slack.add_message(GENERAL, MESSAGE, user=BOB)

    view = open_form(bot, message_in(bot, GENERAL, ts))
    bot.settle()

    inputs = by_id(view)
    description = inputs["description"]["element"]["initial_value"]
    # Slack's markup as words: the mention as @name (asked of Slack), the link as label and address,
    # the entities unescaped, the formatting marks gone.
    assert description == ("@Carol Weiss checkout returns 500s & payments <fail>, see the dashboard "
                           "(https://grafana.example.com/d/abc)\nsince the 09:12 deploy, all regions")
    title = inputs["title"]["element"]["initial_value"]
    assert title.startswith("@Carol Weiss checkout returns 500s & payments <fail>") and "\n" not in title
    assert len(title) <= MAX_TITLE_LENGTH
    [permalink_call] = bot.slack.calls_to("chat.getPermalink")
    permalink = permalink_call.response["permalink"]
    context = json.dumps(view["blocks"][0])
    assert view["blocks"][0]["type"] == "context"
    assert permalink in context and "<@U0BOB>" in context and f"<#{GENERAL}>" in context
    assert [o["value"] for o in inputs["invite_author"]["element"]["initial_options"]] == [BOB]
    carried = json.loads(view["private_metadata"])["declared_from"]
    assert carried == {"channel": GENERAL, "ts": ts, "author": BOB, "permalink": permalink, "bot_name": None, "text": MESSAGE}
    assert bot.runtime.services.incidents.list_open() == []  # nothing is declared until the form is submitted


def test_the_message_is_the_first_detection_and_time_to_detect_counts_from_it(clocked_bot: RunningBot,
                                                                               clock: ManualClock) -> None:
    bot = clocked_bot
    ts = bot.slack.add_message(GENERAL, MESSAGE, user=BOB)
    posted_at = ts_to_datetime(ts)
    clock.advance(posted_at + timedelta(minutes=7) - clock.now())  # someone reads it, and declares 7 minutes later
    view = open_form(bot, message_in(bot, GENERAL, ts))
    permalink = json.loads(view["private_metadata"])["declared_from"]["permalink"]

    submit(bot, view)
    bot.settle()

    [incident] = bot.runtime.services.incidents.list_open()
    assert incident.title.startswith("@Carol Weiss checkout returns 500s &amp; payments &lt;fail&gt;")
    assert incident.reporter_id == ALICE and "all regions" in (incident.description or "")
    first, declared = bot.runtime.services.timeline.items(incident.id)[:2]
    assert (first.kind, first.occurred_at, first.actor_id, first.text) == (EntryKind.DETECTION, posted_at, BOB, MESSAGE)
    linked = first.data.pop("linked_ts")  # the channel's line linking the message, once posted
    assert first.data == {"declared_from": "message", "channel": GENERAL, "ts": ts, "permalink": permalink,
                          "invite_author": True}
    assert declared.kind is EntryKind.DECLARED and declared.occurred_at == incident.declared_at
    assert incident.declared_at - posted_at == timedelta(minutes=7)

    draft = bot.runtime.services.postmortems.preview(incident.id)
    assert f"Start Time: {posted_at:%B} {posted_at.day}, {posted_at.year}" in draft
    assert "the message it was declared from" in draft.split("Start Time:")[1].split("\n")[0]
    detect = draft.split("| Time to detect |")[1].split("\n")[0]
    assert "7 minutes" in detect and "(the message it was declared from)" in detect, detect
    assert f"[the message]({permalink})" in draft  # the Detection entry links it

    # The author is invited, and the channel says where the incident started.
    assert BOB in bot.slack.members(channel_of(incident)) and ALICE in bot.slack.members(channel_of(incident))
    said = [m["text"] for m in bot.slack.messages(channel_of(incident))]
    assert any(f"Declared from <{permalink}|a message> by <@{BOB}> in <#{GENERAL}>" in t for t in said), said
    assert linked in [m["ts"] for m in bot.slack.messages(channel_of(incident))]
    assert incident.provisioned_at is not None  # every set-up step worked
    assert [m["ts"] for m in bot.slack.messages(GENERAL)] == [ts]  # the source channel is told nothing

    timeline = bot.command("timeline", channel=channel_of(incident))
    assert f"<@{BOB}> posted <{permalink}|the message> the incident was declared from" in json.dumps(timeline.response.json())


def test_a_double_submit_declares_once(bot: RunningBot) -> None:
    ts = bot.slack.add_message(GENERAL, "search is down", user=BOB)
    view = open_form(bot, message_in(bot, GENERAL, ts))

    submit(bot, view)
    submit(bot, view)  # a double click on Declare: the same view id
    bot.settle()

    [incident] = bot.runtime.services.incidents.list_open()
    assert len(bot.slack.calls_to("conversations.create")) == 1
    detections = [i for i in bot.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.DETECTION]
    assert len(detections) == 1
    links = [m for m in bot.slack.messages(channel_of(incident)) if "Declared from" in m["text"]]
    assert len(links) == 1

    # Told by direct message (the form has no response_url, and nothing goes to the message's channel):
    # declared, with its channel; then that the second click opened nothing new.
    declared, again = [m["text"] for m in bot.slack.direct_messages(ALICE)]
    assert declared == f":white_check_mark: Incident 1 declared: <#{incident.channel_id}|{incident.channel_name}>. You're in it."
    assert again.startswith(":information_source: Incident 1 (“search is down”) was already declared") and "Nothing new" in again
    assert [m["ts"] for m in bot.slack.messages(GENERAL)] == [ts] and bot.slack.ephemerals(GENERAL) == []


def test_a_message_from_an_app_has_no_author_to_invite(bot: RunningBot) -> None:
    ts = bot.slack.add_bot_message(GENERAL, "[FIRING:1] HighErrorRate checkout", bot_id="B0GRAFANA", username="Grafana")
    view = open_form(bot, message_in(bot, GENERAL, ts))

    assert "invite_author" not in by_id(view)
    assert "by Grafana (an app)" in json.dumps(view["blocks"][0])
    submit(bot, view)
    bot.settle()

    [incident] = bot.runtime.services.incidents.list_open()
    first = bot.runtime.services.timeline.items(incident.id)[0]
    assert (first.kind, first.actor_id, first.text) == (EntryKind.DETECTION, None, "[FIRING:1] HighErrorRate checkout")
    assert first.data["bot_name"] == "Grafana"
    assert bot.slack.members(channel_of(incident)) == {ALICE, bot.slack.bot_user_id}
    assert incident.provisioned_at is not None  # every set-up step worked
    timeline = json.dumps(bot.command("timeline", channel=channel_of(incident)).response.json())
    assert "Grafana (an app) posted" in timeline and "the bot posted" not in timeline


def test_a_message_longer_than_the_description_is_shortened_visibly_and_recorded_whole(bot: RunningBot) -> None:
    text = "Latency spike on checkout. " + " ".join(f"<@U0BOB> line {i} &amp; more" for i in range(400))
    ts = bot.slack.add_message(GENERAL, text, user=CAROL)
    view = open_form(bot, message_in(bot, GENERAL, ts))

    description = by_id(view)["description"]["element"]["initial_value"]
    assert len(description) <= blocks.MAX_DESCRIPTION and description.endswith("…")
    assert description.startswith("Latency spike on checkout. @bob line 0 & more")
    assert len(view["private_metadata"]) <= 3000 and json.loads(view["private_metadata"])["declared_from"]["held"]

    submit(bot, view)
    bot.settle()

    [incident] = bot.runtime.services.incidents.list_open()
    first = bot.runtime.services.timeline.items(incident.id)[0]
    assert first.kind is EntryKind.DETECTION and first.text == text  # whole, as Slack stored it
    assert CAROL in bot.slack.members(channel_of(incident))


def test_the_author_left_unticked_or_deactivated_is_not_invited_and_set_up_finishes(bot: RunningBot) -> None:
    ts = bot.slack.add_message(GENERAL, "the payroll export leaked", user=BOB)
    view = open_form(bot, message_in(bot, GENERAL, ts))
    submit(bot, view, private=True, invite=False)
    bot.settle()
    [private] = bot.runtime.services.incidents.list_open()
    assert private.private and BOB not in bot.slack.members(channel_of(private))
    assert bot.runtime.services.incidents.get(private.id).provisioned_at is not None
    assert [m["ts"] for m in bot.slack.messages(GENERAL)] == [ts] and bot.slack.ephemerals(GENERAL) == []
    [announcement] = bot.slack.messages(ANNOUNCE)
    assert "payroll" not in announcement["text"]

    bot.slack.add_user("U0GONE", "gone", deleted=True)
    bot.slack.add_members(GENERAL, "U0GONE")
    ts = bot.slack.add_message(GENERAL, "disk full on db-2", user="U0GONE")
    view = open_form(bot, message_in(bot, GENERAL, ts))
    submit(bot, view)
    bot.settle()
    incident = next(i for i in bot.runtime.services.incidents.list_open() if not i.private)
    assert "U0GONE" not in bot.slack.members(channel_of(incident))
    assert bot.runtime.services.incidents.get(incident.id).provisioned_at is not None
    told = [m["text"] for m in bot.slack.direct_messages(ALICE)]  # each declared, with its channel; no failure report
    assert len(told) == 2 and all(t.startswith(":white_check_mark: Incident") and t.endswith("You're in it.") for t in told)


def test_a_message_slack_gives_no_permalink_for_is_declared_without_it(bot: RunningBot) -> None:
    # A DM between two people: the bot is not in it, and chat.getPermalink answers channel_not_found.
    message = {"type": "message", "user": BOB, "text": "prod db is read-only?", "ts": "1764490000.000100", "team": "T0SIMULATE"}
    sent = bot.requests.message_shortcut(SHORTCUT, message, user_id=ALICE, channel_id="D0HUMANDM", channel_name="directmessage")
    assert sent.response.status_code == 200
    [permalink_call] = bot.slack.calls_to("chat.getPermalink")
    assert permalink_call.response["error"] == "channel_not_found"
    view = bot.slack.calls_to("views.open")[-1].response["view"]
    assert "in a direct message (Slack gave no link to it)" in json.dumps(view["blocks"][0])

    submit(bot, view)
    bot.settle()

    [incident] = bot.runtime.services.incidents.list_open()
    first = bot.runtime.services.timeline.items(incident.id)[0]
    assert (first.kind, first.occurred_at, first.data["permalink"]) == (EntryKind.DETECTION, ts_to_datetime("1764490000.000100"), None)
    said = [m["text"] for m in bot.slack.messages(channel_of(incident))]
    assert any("Declared from a message by <@U0BOB> in a direct message" in t for t in said), said


def test_a_form_that_cannot_open_is_told_to_the_person(bot: RunningBot) -> None:
    ts = bot.slack.add_message(GENERAL, "checkout is down", user=BOB)
    bot.slack.fail_next("views.open", "expired_trigger_id")

    sent = bot.requests.message_shortcut(SHORTCUT, message_in(bot, GENERAL, ts), user_id=ALICE, channel_id=GENERAL)
    bot.settle()

    assert sent.response.status_code == 200
    [told] = bot.slack.ephemerals(GENERAL)
    assert told["user"] == ALICE and "expired_trigger_id" in told["text"] and "/incident declare" in told["text"]
    assert bot.runtime.services.incidents.list_open() == []

    # Where the bot cannot post (a channel it is not in), the app's DM says it instead.
    elsewhere = bot.slack.add_channel("random", members=[ALICE, BOB], bot_is_member=False)
    ts = bot.slack.add_message(elsewhere, "is anyone else seeing 502s?", user=BOB)
    bot.slack.fail_next("views.open", "expired_trigger_id")
    bot.requests.message_shortcut(SHORTCUT, message_in(bot, elsewhere, ts), user_id=ALICE, channel_id=elsewhere)
    bot.settle()
    [dm] = bot.slack.direct_messages(ALICE)
    assert "expired_trigger_id" in dm["text"]


def test_the_title_suggestion_fits_the_title_as_it_is_stored() -> None:
    # Each & is stored as &amp;: a suggestion of 150 ampersands would be refused at submission.
    suggestion = source_blocks.title_suggestion("&" * 200 + "\nsecond line")
    assert suggestion.endswith("…") and len(html.escape(suggestion, quote=False)) <= MAX_TITLE_LENGTH
    assert source_blocks.title_suggestion("\n\n>  the *first*   line with words \nnext") == "the *first* line with words"
    assert source_blocks.title_suggestion("   \n") == ""


def test_a_message_with_only_files_suggests_them_as_title(bot: RunningBot) -> None:
    message = {"type": "message", "subtype": "file_share", "user": BOB, "text": "", "ts": "1764490000.000200",
               "files": [{"id": "F0TRACE", "name": "trace.log", "title": "trace.log"}, {"id": "F0SHOT", "name": "graph.png"}]}
    view = open_form(bot, message)
    inputs = by_id(view)
    assert inputs["title"]["element"]["initial_value"] == "Files: trace.log, graph.png"
    assert inputs["description"]["element"]["initial_value"] == "Files: trace.log, graph.png"
