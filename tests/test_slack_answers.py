"""Slack's answers the bot must handle (issue #12), through signed HTTP against the Slack simulator:

- `conversations.invite` with several users invites nobody when one of them cannot be invited (Slack:
  conversations.invite, "Partially failed calls"): a page must still get every team member it can into
  the channel, and say who was invited, who already was there and who could not be;
- Slack's unsigned `ssl_check` is answered 200 by the real HTTP server, and nothing else gets past the
  signature check through it;
- a `message_changed` whose `message` lacks its ts is matched by `previous_message.ts`, and one naming
  no message is logged and acknowledged;
- a role or a follow-up owner Slack does not know, deactivated, a bot (this one or another) or Slackbot
  is refused and nothing is stored; when Slack cannot say, the command goes through with a caveat.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import make_url

from bot.incidents.values import EntryKind, Role
from bot.invitations import Invitation
from handlers import paging_blocks
from handlers.invites import invite
from simulators.paging import PagerDutyReceiver
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
    database_team,
    start_bot,
)
from tests.tcp_proxy import TcpProxy

GHOST, GONE, OTHER_BOT = "U0GHOST", "U0GONE", "U0DEPLOYBOT"

_counter = itertools.count(1)


def new_ts(offset: float = 0.0) -> str:
    return f"{int(time.time() + offset)}.{next(_counter):06d}"


@pytest.fixture
def people(slack: SlackSimulator) -> SlackSimulator:
    """The workspace plus the on-call people, a deactivated account and another app's bot user."""
    slack.add_user(DBA, "dba1")
    slack.add_user(SRE, "sre1")
    slack.add_user(GONE, "gone", real_name="Former Colleague", deleted=True)
    slack.add_user(OTHER_BOT, "deploybot", is_bot=True)
    return slack


# --- conversations.invite with several users ------------------------------------------------------


@pytest.fixture
def paging_bot(tmp_path: Path, people: SlackSimulator, database_url: str, pagerduty: PagerDutyReceiver) -> Iterator[RunningBot]:
    config = f'[slack]\nannounce_channel = "{ANNOUNCE}"\n{database_team(DBA, GHOST, GONE, SRE)}'
    running = start_bot(tmp_path, people, database_url, config, env={"PAGERDUTY_EVENTS_URL": pagerduty.events_url})
    yield running
    running.stop()


def page_text(bot: RunningBot, channel_id: str) -> str:
    [page] = [m for m in bot.slack.messages(channel_id) if m.get("text", "").startswith("Paging")]
    return page["blocks"][0]["text"]["text"]


def test_a_page_invites_every_member_it_can_and_says_who_was_invited_already_there_or_could_not_be(
    paging_bot: RunningBot, pagerduty: PagerDutyReceiver
) -> None:
    """The reported bug: one member already in the channel made Slack invite nobody, while the page
    said it reached them all. Here DBA joined first; an unknown id and a deactivated account are
    configured too."""
    bot = paging_bot
    channel = bot.declare()
    WebClient(token=bot.slack.bot_token, base_url=bot.slack.base_url).conversations_invite(channel=channel["id"], users=DBA)

    sent = bot.command("page database disk full on db-1", channel=channel["id"])
    assert sent.response.status_code == 200
    bot.settle()

    assert {DBA, SRE} <= bot.slack.members(channel["id"])
    assert not {GHOST, GONE} & bot.slack.members(channel["id"])
    text = page_text(bot, channel["id"])
    assert f"invited <@{SRE}>" in text
    assert f"already here: <@{DBA}>" in text
    assert f"<@{GHOST}> (no such user in this workspace, `user_not_found`)" in text
    assert f"<@{GONE}> (Slack refused: deactivated, or not allowed in this channel, `cant_invite`)" in text
    assert pagerduty.alerts() == {"incident-bot-1-database": "triggered"}

    # The page message is rebuilt from the store when it changes: what the invitation found stays on it.
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    [page] = bot.runtime.services.paging.pages(incident.id)
    bot.requests.block_action(paging_blocks.ACKNOWLEDGE_ACTION, str(page.id), user_id=SRE, channel_id=channel["id"])
    bot.settle()
    text = page_text(bot, channel["id"])
    assert "Acknowledged" in text and f"invited <@{SRE}>" in text and f"<@{GHOST}> (no such user" in text


def test_a_page_whose_members_are_all_in_the_channel_says_so_and_invites_nobody_twice(
    paging_bot: RunningBot,
) -> None:
    bot = paging_bot
    channel = bot.declare()
    WebClient(token=bot.slack.bot_token, base_url=bot.slack.base_url).conversations_invite(
        channel=channel["id"], users=[DBA, SRE])
    calls_before = len(bot.slack.calls_to("conversations.invite"))

    bot.command("page database", channel=channel["id"])
    bot.settle()

    text = page_text(bot, channel["id"])
    assert f"already here: <@{DBA}>, <@{SRE}>" in text and "invited <@" not in text
    # One call, refused, naming each of them: nobody is left to ask again.
    assert len(bot.slack.calls_to("conversations.invite")) - calls_before == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_page_sent_while_the_store_is_down_says_who_is_in_the_channel_too(
    tmp_path: Path, people: SlackSimulator, database_url: str, pagerduty: PagerDutyReceiver
) -> None:
    """The other call of the kind: `/incident page` while the bot's store is down invites the team too."""
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    config = f'[slack]\nannounce_channel = "{ANNOUNCE}"\n{database_team(DBA, GHOST, SRE)}'
    bot = start_bot(tmp_path, people, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                    config, env={"PAGERDUTY_EVENTS_URL": pagerduty.events_url})
    try:
        channel = bot.declare()["id"]
        WebClient(token=people.bot_token, base_url=people.base_url).conversations_invite(channel=channel, users=DBA)
        proxy.cut()

        sent = bot.command("page database Connections exhausted", channel=channel)
        assert "going out now to Database team" in sent.response.json()["text"]
        bot.settle()

        [told] = [m["text"] for m in people.messages(channel) if "this page is not on the timeline" in m["text"]]
        assert f"invited <@{SRE}>" in told and f"already here: <@{DBA}>" in told
        assert f"<@{GHOST}> (no such user in this workspace, `user_not_found`)" in told
        assert {DBA, SRE} <= people.members(channel)
    finally:
        proxy.restore()
        bot.stop()
        proxy.close()


@pytest.fixture
def web(people: SlackSimulator) -> WebClient:
    return WebClient(token=people.bot_token, base_url=people.base_url, retry_handlers=[])


def test_invite_sorts_everyone_into_exactly_one_outcome(people: SlackSimulator, web: WebClient) -> None:
    channel = web.conversations_create(name="inc-invite")["channel"]["id"]
    web.conversations_invite(channel=channel, users=BOB)

    outcome = invite(web, channel, [ALICE, BOB, GHOST, ALICE, "U0INCBOT", GONE, CAROL])

    assert outcome == Invitation(invited=(ALICE, CAROL), already=(BOB,),
                                 failed={GHOST: "user_not_found", "U0INCBOT": "cant_invite_self", GONE: "cant_invite"})
    assert people.members(channel) == {"U0INCBOT", ALICE, BOB, CAROL}
    assert invite(web, channel, [ALICE]) == Invitation(already=(ALICE,))
    assert invite(web, channel, [DBA]) == Invitation(invited=(DBA,))


def test_invite_counts_people_a_deactivated_colleague_let_through_as_invited(people: SlackSimulator, web: WebClient) -> None:
    """Slack: a "removed" user fails alone and the others are invited by the same call; the next call
    then finds them in the channel, yet it was the bot that invited them."""
    channel = web.conversations_create(name="inc-removed")["channel"]["id"]

    assert invite(web, channel, [GONE, ALICE, BOB]) == Invitation(invited=(ALICE, BOB), failed={GONE: "cant_invite"})
    assert people.members(channel) == {"U0INCBOT", ALICE, BOB}


def test_invite_raises_what_is_about_the_channel_not_the_people(people: SlackSimulator, web: WebClient) -> None:
    channel = web.conversations_create(name="inc-archived")["channel"]["id"]
    web.conversations_archive(channel=channel)
    with pytest.raises(SlackApiError) as archived:
        invite(web, channel, [ALICE, BOB])
    assert archived.value.response["error"] == "is_archived"

    people.fail_next("conversations.invite", "ratelimited")
    open_channel = web.conversations_create(name="inc-limited")["channel"]["id"]
    with pytest.raises(SlackApiError) as limited:
        invite(web, open_channel, [ALICE, BOB])
    assert limited.value.response["error"] == "ratelimited"


# --- ssl_check -------------------------------------------------------------------------------------


def unsigned(bot: RunningBot, body: bytes, content_type: str = "application/x-www-form-urlencoded",
             query: str = "", method: str = "POST") -> httpx.Response:
    url = bot.requests.events_url + (f"?{query}" if query else "")
    return httpx.request(method, url, content=body, headers={"Content-Type": content_type}, timeout=10)


def command_fields(**extra: str) -> dict[str, str]:
    return {"command": "/incident", "text": "declare sev1 Forged through ssl_check", "user_id": ALICE,
            "channel_id": GENERAL, "team_id": "T0SIMULATE", "trigger_id": "1.2.3", **extra}


def nothing_declared(bot: RunningBot) -> None:
    assert bot.runtime.services.incidents.list_open() == []
    assert bot.slack.calls_to("conversations.create") == []


def test_slacks_unsigned_ssl_check_is_answered_200_by_the_real_server(bot: RunningBot) -> None:
    """Slack: "Implementing slash commands", "SSL": `ssl_check=1` (and a `token`), unsigned; answer 200."""
    calls = len(bot.slack.calls)
    for response in (
        unsigned(bot, urlencode({"ssl_check": "1", "token": "verification-token"}).encode()),
        unsigned(bot, b"ssl_check=1"),
        unsigned(bot, b"", query="ssl_check=1&token=verification-token", method="GET"),
    ):
        assert response.status_code == 200, response.text
        assert response.content == b""
    signed = bot.requests.send(b"ssl_check=1&token=t", "application/x-www-form-urlencoded")
    assert signed.response.status_code == 200  # signed or not, it is only a check
    assert len(bot.slack.calls) == calls  # nothing was done


@pytest.mark.parametrize("body, content_type, query", [
    (urlencode({"ssl_check": "1", **command_fields()}).encode(), "application/x-www-form-urlencoded", ""),
    (urlencode({**command_fields(), "ssl_check": "1"}).encode(), "application/x-www-form-urlencoded", ""),
    (urlencode({"ssl_check": "1", "payload": '{"type": "block_actions", "user": {"id": "U0ALICE"}, "actions": []}'}).encode(),
     "application/x-www-form-urlencoded", ""),
    (urlencode(command_fields()).encode(), "application/x-www-form-urlencoded", "ssl_check=1"),
    (b"ssl_check=1&ssl_check=1", "application/x-www-form-urlencoded", ""),
    (b"ssl_check=0", "application/x-www-form-urlencoded", ""),
    (b'{"ssl_check": "1", "type": "event_callback", "event": {}}', "application/json", ""),
    (b"ssl_check=1&token=a&" + b"\xff", "application/x-www-form-urlencoded", ""),
], ids=["check-then-command", "command-then-check", "check-and-payload", "command-with-check-in-query",
        "check-twice", "not-a-check", "json", "not-utf8"])
def test_nothing_slips_past_the_signature_check_through_ssl_check(bot: RunningBot, body: bytes, content_type: str,
                                                                 query: str) -> None:
    response = unsigned(bot, body, content_type, query)
    assert response.status_code == 401, response.text
    bot.settle()
    nothing_declared(bot)


# --- message_changed -------------------------------------------------------------------------------


def send_event(bot: RunningBot, event: dict[str, Any]) -> None:
    sent = bot.requests.event(event)
    assert sent.response.status_code == 200, sent.response.text


def messages(bot: RunningBot, channel_id: str) -> list:
    incident = bot.runtime.services.incidents.find_by_channel(channel_id)
    return [i for i in bot.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.MESSAGE]


def changed(channel_id: str, message: dict[str, Any] | None, previous: dict[str, Any] | None) -> dict[str, Any]:
    ts = new_ts()
    event: dict[str, Any] = {"type": "message", "subtype": "message_changed", "hidden": True, "channel": channel_id,
                             "ts": ts, "event_ts": ts, "channel_type": "channel"}
    if message is not None:
        event["message"] = message
    if previous is not None:
        event["previous_message"] = previous
    return event


def test_a_message_changed_without_message_ts_updates_the_entry_by_previous_message_ts(bot: RunningBot) -> None:
    channel = bot.declare()["id"]
    ts = new_ts(-10)
    send_event(bot, {"type": "message", "channel": channel, "user": BOB, "text": "pool at 80%", "ts": ts,
                     "event_ts": ts, "channel_type": "channel"})

    send_event(bot, changed(channel, {"type": "message", "user": BOB, "text": "pool at 100%"},
                            {"type": "message", "user": BOB, "text": "pool at 80%", "ts": ts}))
    # And one whose `message` lacks its author too.
    send_event(bot, changed(channel, {"type": "message", "text": "pool at 100%, failing over"},
                            {"type": "message", "user": BOB, "text": "pool at 100%", "ts": ts}))

    [entry] = messages(bot, channel)
    assert (entry.slack_ts, entry.actor_id, entry.text) == (ts, BOB, "pool at 100%, failing over")
    assert [e["text"] for e in entry.earlier_texts] == ["pool at 80%", "pool at 100%"]


def test_a_message_changed_naming_no_message_is_logged_and_acknowledged(bot: RunningBot,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    channel = bot.declare()["id"]
    ts = new_ts(-10)
    send_event(bot, {"type": "message", "channel": channel, "user": BOB, "text": "pool at 80%", "ts": ts,
                     "event_ts": ts, "channel_type": "channel"})
    before = [(e.text, e.edited) for e in messages(bot, channel)]

    with caplog.at_level(logging.WARNING, logger="handlers.capture"):
        send_event(bot, changed(channel, {"type": "message", "user": BOB, "text": "no ts anywhere"},
                                {"type": "message", "user": BOB, "text": "pool at 80%"}))
        send_event(bot, changed(channel, None, None))

    assert [(e.text, e.edited) for e in messages(bot, channel)] == before
    warnings = [r.getMessage() for r in caplog.records if r.name == "handlers.capture"]
    assert len(warnings) == 2 and all(f"message_changed in {channel}" in w and "message ts" in w for w in warnings)


# --- people named in commands ----------------------------------------------------------------------


@pytest.fixture
def named_bot(tmp_path: Path, people: SlackSimulator, database_url: str) -> Iterator[RunningBot]:
    running = start_bot(tmp_path, people, database_url)
    yield running
    running.stop()


def state(bot: RunningBot, channel_id: str) -> tuple[Any, ...]:
    incident = bot.runtime.services.incidents.find_by_channel(channel_id)
    assert incident is not None
    items = [(i.kind, i.text) for i in bot.runtime.services.timeline.items(incident.id)]
    return incident.roles, items, bot.runtime.services.followups.for_incident(incident.id)


def reply(sent: Any) -> str:
    assert sent.response.status_code == 200, sent.response.text
    return sent.response.json()["text"] if sent.response.content else ""


REFUSED = [
    (GHOST, "Slack has no user <@U0GHOST> in this workspace"),
    (GONE, "<@U0GONE> (Former Colleague) is deactivated in Slack"),
    (OTHER_BOT, "<@U0DEPLOYBOT> (deploybot) is an app, not a person"),
    ("U0INCBOT", "<@U0INCBOT> is this bot"),
    ("USLACKBOT", "Slackbot can't be"),
]


@pytest.mark.parametrize("person, why", REFUSED, ids=["unknown", "deactivated", "another-bot", "this-bot", "slackbot"])
def test_a_role_for_someone_who_cannot_hold_it_is_refused_and_nothing_is_stored(
    named_bot: RunningBot, person: str, why: str
) -> None:
    bot = named_bot
    channel = bot.declare()["id"]
    before, posts = state(bot, channel), len(bot.slack.messages(channel))

    text = reply(bot.command(f"role commander <@{person}>", channel=channel))
    bot.settle()

    assert why in text and "the commander" in text and "/incident role &lt;commander|comms|scribe&gt; &lt;@user&gt;" in text
    assert state(bot, channel) == before
    assert len(bot.slack.messages(channel)) == posts
    assert not any(person in str(c.params.get("users")) for c in bot.slack.calls_to("conversations.invite"))


def test_a_role_for_a_person_slack_knows_is_assigned(named_bot: RunningBot) -> None:
    bot = named_bot
    channel = bot.declare()["id"]

    assert reply(bot.command(f"role scribe <@{BOB}|bob>", channel=channel)) == ""
    bot.settle()

    incident = bot.runtime.services.incidents.find_by_channel(channel)
    assert incident.roles[Role.SCRIBE] == BOB and BOB in bot.slack.members(channel)
    assert bot.slack.calls_to("users.info")[-1].params["user"] == BOB


@pytest.mark.parametrize("failure", [{"error": "ratelimited"}, {"error": "internal_error", "http_status": 500}],
                         ids=["ratelimited", "5xx"])
def test_when_slack_cannot_say_who_it_is_the_role_is_assigned_with_a_caveat(named_bot: RunningBot,
                                                                            failure: dict[str, Any]) -> None:
    bot = named_bot
    channel = bot.declare()["id"]
    bot.slack.fail_next("users.info", **failure)

    text = reply(bot.command(f"role comms <@{CAROL}>", channel=channel))
    bot.settle()

    assert f"Slack could not confirm who <@{CAROL}> is (users.info: `{failure['error']}`)" in text
    assert "the comms lead unchecked" in text
    assert bot.runtime.services.incidents.find_by_channel(channel).roles[Role.COMMS] == CAROL


@pytest.mark.parametrize("person, why", REFUSED, ids=["unknown", "deactivated", "another-bot", "this-bot", "slackbot"])
def test_a_followup_owned_by_someone_who_cannot_own_it_is_refused_and_nothing_is_stored(
    named_bot: RunningBot, person: str, why: str
) -> None:
    bot = named_bot
    channel = bot.declare()["id"]
    before = state(bot, channel)

    text = reply(bot.command(f"followup Add an alert on pool usage <@{person}>", channel=channel))
    bot.settle()

    assert why in text and "this follow-up's owner" in text and "/incident followup &lt;text&gt; [@owner]" in text
    assert state(bot, channel) == before


def test_a_followup_owned_by_a_person_is_recorded(named_bot: RunningBot) -> None:
    bot = named_bot
    channel = bot.declare()["id"]

    text = reply(bot.command(f"followup Add an alert on pool usage <@{BOB}>", channel=channel))

    assert f"Follow-up recorded for <@{BOB}>" in text
    incident = bot.runtime.services.incidents.find_by_channel(channel)
    [followup] = bot.runtime.services.followups.for_incident(incident.id)
    assert followup.owner_id == BOB
