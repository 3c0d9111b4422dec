"""Private incidents end to end, over signed HTTP against the Slack simulator and the pager receivers, on
SQLite and PostgreSQL: a private channel with a neutral name, an announcement that names nothing, nothing
announced later, `/incident list` whole for the channel's members and counted for everyone else, pages
with the minimum unless the team's `private_details = true`, `/incident private` (the store, the timeline,
the announcement edited, Slack's refusal explained, an admin's token converting the channel), an archived
private channel that sends nothing to the announcement thread, the postmortem in its channel only."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from bot.clock import ManualClock
from bot.config import ConfigError, TeamSection, parse_config_file
from bot.incidents.channel_names import channel_name
from bot.incidents.values import EntryKind, Incident, Severity, Status
from bot.paging.dispatch import Dispatcher
from bot.paging.events import Doer
from bot.paging.providers import Alert, RetryPolicy, Transport
from bot.paging.service import PagingService
from handlers import alert_blocks, blocks
from handlers.cli import main
from handlers.private import Membership, members_of
from simulators.paging import OpsgenieReceiver, PagerDutyReceiver
from simulators.slack import SlackSimulator
from tests import test_alerts as alerting
from tests.conftest import (
    ALICE,
    ANNOUNCE,
    BOB,
    CAROL,
    DBA,
    GENERAL,
    GENIE_KEY,
    ROUTING_KEY,
    SRE,
    RunningBot,
    start_bot,
)
from tests.tcp_proxy import TcpProxy
from tests.test_block_kit_builders import BUILDERS, assert_posts, incidents

TITLE = "Payroll export sent to a contractor"
TITLE_WORDS = ("Payroll", "payroll", "contractor")


def day_of(incident: object) -> str:
    """The day a channel name carries: the incident's own declaration (UTC), as the publisher names it.
    Never a date taken when the module loads: a run that crosses midnight would expect yesterday."""
    return incident.declared_at.strftime("%Y%m%d")  # type: ignore[attr-defined]


def pager_config(private_details: bool = False) -> str:
    details = "private_details = true\n" if private_details else ""
    return f"""
[slack]
announce_channel = "{ANNOUNCE}"

[teams.database]
display_name = "Database team"
pagerduty_routing_key = "{ROUTING_KEY}"
slack_members = ["{DBA}"]
{details}
[teams.sre]
display_name = "SRE on call"
opsgenie_api_key = "{GENIE_KEY}"
slack_members = ["{SRE}"]
{details}"""


def command(bot: RunningBot, text: str, *, channel: str, user: str = ALICE, respond_to: str = "default") -> dict[str, Any]:
    sent = bot.requests.command(text, user_id=user, channel_id=channel, response_url=bot.slack.response_url(respond_to))
    assert sent.response.status_code == 200, sent.response.text
    bot.settle()
    return sent.response.json() if sent.response.content else {}


def incident_in(bot: RunningBot, channel: dict[str, Any]) -> Incident:
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    assert incident is not None
    return incident


def announcements(slack: SlackSimulator) -> list[dict[str, Any]]:
    """Everything in the announcement channel, thread replies included."""
    return slack.messages(ANNOUNCE)


def shown(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False)


def assert_names_nothing(text: str, channel: dict[str, Any]) -> None:
    """No title, no channel (by id or by name)."""
    for word in TITLE_WORDS:
        assert word not in text, text
    assert channel["id"] not in text and channel["name"] not in text, text


# --- declaring a private incident


def test_a_private_declaration_opens_a_private_neutral_channel_and_announces_only_who_leads_it(bot: RunningBot) -> None:
    channel = bot.declare(f"declare sev2 --private {TITLE}")

    [created] = bot.slack.calls_to("conversations.create")
    assert created.params["name"] == f"inc-{day_of(incident_in(bot, channel))}-incident-1" == channel["name"]
    assert created.params["is_private"] in (True, "1", "true")
    assert channel["is_private"] is True and ALICE in bot.slack.members(channel["id"])
    assert incident_in(bot, channel).private

    [announcement] = announcements(bot.slack)
    text = announcement["text"]
    assert "private" in text and "SEV2" in text and f"<@{ALICE}>" in text and "incident 1" in text
    assert "Its channel is private" in text  # Slack created it private: it said so
    assert_names_nothing(shown(announcement), channel)

    # Inside the channel, everything as usual: the title in the pinned summary, which says it is private.
    summary = bot.slack.messages(channel["id"])[0]
    assert TITLE in summary["text"] and "Private" in shown(summary["blocks"])


def test_nothing_later_is_announced_and_the_postmortem_goes_to_its_channel_only(
        bot: RunningBot, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        database_url: str) -> None:
    channel = bot.declare(f"declare sev2 --private {TITLE}")
    [announcement] = announcements(bot.slack)

    for text in ("status identified", f"update The {TITLE.lower()} is contained", "sev sev1", "role comms <@U0BOB|bob>",
                 "resolve The export is revoked", "close"):
        command(bot, text, channel=channel["id"])

    assert announcements(bot.slack) == [announcement], "nothing more is announced, nor edited"
    in_channel = bot.slack.messages(channel["id"])
    assert any("Status update" in m["text"] for m in in_channel) and any("closed incident 1" in m["text"] for m in in_channel)
    [upload] = bot.slack.files()
    assert upload["groups"] == [channel["id"]] and upload["channels"] == [] and TITLE in upload["content"]

    # The operator can still read it from the shell.
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INCIDENT_BOT_CONFIG", str(tmp_path / "incident-bot.toml"))
    capsys.readouterr()
    assert main(["postmortem", "1"]) == 0
    assert TITLE in capsys.readouterr().out


def test_the_forms_private_box_declares_a_private_incident(bot: RunningBot) -> None:
    command(bot, "declare --private", channel=GENERAL)
    [opened] = bot.slack.calls_to("views.open")
    view = opened.response["view"]
    [box] = [b for b in view["blocks"] if b["block_id"] == "private"]
    assert [o["value"] for o in box["element"]["initial_options"]] == [blocks.PRIVATE_OPTION]

    values = {
        "title": {"value": {"type": "plain_text_input", "value": TITLE}},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "sev1"}}},
        "private": {"value": {"type": "checkboxes", "selected_options": [{"value": blocks.PRIVATE_OPTION}]}},
    }
    assert bot.requests.view_submission(view, values, user_id=BOB).response.status_code == 200
    bot.settle()

    [incident] = bot.runtime.services.incidents.list_open()
    assert incident.private and incident.severity is Severity.SEV1
    channel = bot.slack.channel(str(incident.channel_id))
    assert channel is not None and channel["is_private"] and channel["name"] == f"inc-{day_of(incident)}-incident-1"
    [announcement] = announcements(bot.slack)
    assert_names_nothing(shown(announcement), channel)


@pytest.mark.parametrize("typed", ["--private Payroll export", "Payroll export \u2014private."])
def test_private_typed_into_the_forms_title_declares_a_private_incident(bot: RunningBot, typed: str) -> None:
    command(bot, "declare", channel=GENERAL)
    [opened] = bot.slack.calls_to("views.open")
    values = {
        "title": {"value": {"type": "plain_text_input", "value": typed}},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "sev2"}}},
    }
    assert bot.requests.view_submission(opened.response["view"], values, user_id=BOB).response.status_code == 200
    bot.settle()

    [incident] = bot.runtime.services.incidents.list_open()
    assert incident.private and incident.title == "Payroll export"
    channel = bot.slack.channel(str(incident.channel_id))
    assert channel is not None and channel["is_private"]
    [announcement] = announcements(bot.slack)
    assert_names_nothing(shown(announcement), channel)


def test_a_slip_of_private_in_the_forms_title_keeps_the_form_open_saying_how(bot: RunningBot) -> None:
    command(bot, "declare", channel=GENERAL)
    [opened] = bot.slack.calls_to("views.open")
    values = {"title": {"value": {"type": "plain_text_input", "value": "Payroll export -- private"}}}
    answer = bot.requests.view_submission(opened.response["view"], values, user_id=BOB).response
    assert answer.status_code == 200
    assert answer.json()["response_action"] == "errors"
    assert "Tick Private" in answer.json()["errors"]["title"]
    bot.settle()
    assert bot.runtime.services.incidents.list_open() == []
    assert bot.slack.calls_to("conversations.create") == []


# --- /incident list


def test_the_list_names_a_private_incident_only_to_its_channels_members(bot: RunningBot) -> None:
    private = bot.declare(f"declare sev2 --private {TITLE}")
    public = bot.declare("declare sev3 Checkout is slow", user=BOB)

    command(bot, "sev sev1", channel=private["id"])
    command(bot, "status identified", channel=private["id"])
    seen_by_bob = command(bot, "list", channel=GENERAL, user=BOB)
    listed = shown(seen_by_bob)
    assert re.search(r":lock: Incident 1 · private · open for \d+ min", listed), listed
    assert_names_nothing(listed, private)
    assert f"<@{ALICE}>" not in listed  # not even who leads it
    # Nor its severity and status: never announced, they would tell its changes (SEV3 is the public one's).
    assert "SEV1" not in listed and "SEV2" not in listed and "Identified" not in listed
    assert "Slack did not say" not in listed  # Slack said: Bob is not in the channel
    assert "Checkout is slow" in listed and public["id"] in listed  # a public one, whole
    assert [c.params["channel"] for c in bot.slack.calls_to("conversations.members")] == [private["id"]]

    seen_by_alice = shown(command(bot, "list", channel=GENERAL, user=ALICE))
    assert TITLE in seen_by_alice and private["id"] in seen_by_alice and ":lock: private" in seen_by_alice

    # Typed in the private channel itself: its reader is a member, and Slack need not be asked.
    asked = len(bot.slack.calls_to("conversations.members"))
    assert TITLE in shown(command(bot, "list", channel=private["id"], user=ALICE))
    assert len(bot.slack.calls_to("conversations.members")) == asked

    # Carol is added to the channel among 300 others: she is on the second page of members.
    others = [f"U0A{i:07d}" for i in range(300)]
    bot.slack.add_members(private["id"], *others, CAROL)
    asked = len(bot.slack.calls_to("conversations.members"))
    assert TITLE in shown(command(bot, "list", channel=GENERAL, user=CAROL))
    pages = bot.slack.calls_to("conversations.members")[asked:]
    assert len(pages) == 2 and pages[1].params["cursor"] == pages[0].response["response_metadata"]["next_cursor"]

    # Slack failing to say is "not a member": counted, not named, and the list says why.
    bot.slack.fail_next("conversations.members", "fatal_error")
    failed = command(bot, "list", channel=GENERAL, user=ALICE)
    assert ":lock: Incident 1 · private" in shown(failed) and TITLE not in shown(failed)
    [why] = [b for b in failed["blocks"] if b["type"] == "context"]
    assert why["elements"][0]["text"] == blocks.LIST_UNKNOWN_MEMBERSHIP
    assert "`/incident summary`" in blocks.LIST_UNKNOWN_MEMBERSHIP


def test_a_membership_slack_does_not_tell_in_time_is_unknown_not_a_no(bot: RunningBot, client: WebClient) -> None:
    private_channel = bot.declare(f"declare sev2 --private {TITLE}")
    incident = incident_in(bot, private_channel)
    assert members_of(client, [incident], ALICE, here=None) == Membership(frozenset({incident.id}))
    assert members_of(client, [incident], BOB, here=None) == Membership()
    # No time left to ask (Slack late): neither a member nor known not to be.
    late = members_of(client, [incident], ALICE, here=None, budget=0.0)
    assert late == Membership(unknown=frozenset({incident.id}))
    text, late_blocks = blocks.open_incidents([incident], incident.declared_at, members_of=late.members, unknown=late.unknown)
    assert TITLE not in shown(late_blocks) and blocks.LIST_UNKNOWN_MEMBERSHIP in shown(late_blocks)
    # Typed in its channel: known without asking.
    here = members_of(client, [incident], ALICE, here=private_channel["id"], budget=0.0)
    assert here == Membership(frozenset({incident.id}))

    # However many there are, the line saying why still fits in the one message.
    many = [replace(incident, id=n, number=n) for n in range(1, 5001)]
    text, crowded = blocks.open_incidents(many, incident.declared_at, unknown={i.id for i in many})
    assert_posts(text, crowded)
    assert crowded[-1]["elements"][0]["text"] == blocks.LIST_UNKNOWN_MEMBERSHIP
    assert "more open incidents, not shown" in shown(crowded[-2])


# --- paging


@pytest.fixture
def pagers(pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver) -> dict[str, Any]:
    return {"env": {"PAGERDUTY_EVENTS_URL": pagerduty.events_url, "OPSGENIE_API_URL": opsgenie.url},
            "paging_transport": Transport(RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1), timeout=2)}


def paging_bot(tmp_path: Path, slack: SlackSimulator, database_url: str, pagers: dict[str, Any], *,
               private_details: bool) -> RunningBot:
    slack.add_user(DBA, "dba1")
    slack.add_user(SRE, "sre1")
    return start_bot(tmp_path, slack, database_url, pager_config(private_details), env=pagers["env"],
                     paging_transport=pagers["paging_transport"])


def page_both(bot: RunningBot, channel: dict[str, Any]) -> None:
    command(bot, "page database the payroll export went to the contractor's mailbox", channel=channel["id"])
    command(bot, "page sre please check the contractor VPN", channel=channel["id"])


def test_pages_for_a_private_incident_tell_providers_its_number_and_severity_only(
        tmp_path: Path, slack: SlackSimulator, database_url: str, pagers: dict[str, Any],
        pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver) -> None:
    bot = paging_bot(tmp_path, slack, database_url, pagers, private_details=False)
    try:
        channel = bot.declare(f"declare sev2 --private {TITLE}")
        page_both(bot, channel)
    finally:
        bot.stop()

    [event] = pagerduty.events()
    payload = event["payload"]
    assert payload["summary"] == "[SEV2] Incident 1 (private: details in Slack)"
    assert payload["severity"] == "error" and payload["custom_details"]["incident"] == "1"
    assert set(payload["custom_details"]) == {"incident", "severity", "team", "private"}
    assert event["links"] == [{"href": f"https://simulated.slack.com/archives/{channel['id']}",
                               "text": "Private incident channel in Slack"}]  # by id: it opens for members only
    [create] = [r.body for r in opsgenie.received if r.path == "/v2/alerts"]
    assert create is not None and create["priority"] == "P2" and "Incident 1" in create["message"]
    for sent in (event, create):
        text = shown(sent)
        for word in (*TITLE_WORDS, "mailbox", "VPN", channel["name"], "Investigating"):
            assert word not in text, (word, text)
    # In the private channel itself, the page is shown as usual.
    assert any("mailbox" in m["text"] or "mailbox" in shown(m.get("blocks", [])) for m in slack.messages(channel["id"]))


def test_a_team_with_private_details_gets_the_whole_page(
        tmp_path: Path, slack: SlackSimulator, database_url: str, pagers: dict[str, Any],
        pagerduty: PagerDutyReceiver, opsgenie: OpsgenieReceiver) -> None:
    bot = paging_bot(tmp_path, slack, database_url, pagers, private_details=True)
    try:
        channel = bot.declare(f"declare sev2 --private {TITLE}")
        page_both(bot, channel)
    finally:
        bot.stop()

    [event] = pagerduty.events()
    assert TITLE in event["payload"]["summary"] and "mailbox" in event["payload"]["summary"]
    assert event["payload"]["custom_details"]["title"] == TITLE
    [create] = [r.body for r in opsgenie.received if r.path == "/v2/alerts"]
    assert create is not None and TITLE in create["description"] and "VPN" in shown(create)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_page_from_a_private_channel_while_the_store_is_down_tells_providers_nothing_more(
        tmp_path: Path, slack: SlackSimulator, database_url: str, pagers: dict[str, Any],
        pagerduty: PagerDutyReceiver) -> None:
    """Without its store the bot cannot know the incident: Slack says the channel is private."""
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    slack.add_user(DBA, "dba1")
    slack.add_user(SRE, "sre1")
    bot = start_bot(tmp_path, slack, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                    pager_config(), env=pagers["env"], paging_transport=pagers["paging_transport"])
    try:
        channel = bot.declare(f"declare sev2 --private {TITLE}")
        proxy.cut()
        answered = bot.requests.command("page database the payroll export leaked", user_id=ALICE, channel_id=channel["id"],
                                        response_url=slack.response_url("down"))
        assert "going out now to Database team" in answered.response.json()["text"]
        bot.settle()
        pagerduty.wait_for(lambda receiver: receiver.events())
    finally:
        proxy.restore()
        bot.stop()
        proxy.close()
    [event] = pagerduty.events()
    assert event["payload"]["summary"].startswith("[SEV1] A private incident")
    for word in ("payroll", channel["name"]):
        assert word not in shown(event), event


# --- /incident private


def test_making_a_public_incident_private_edits_its_announcement_and_says_how_to_convert_the_channel(
        bot: RunningBot) -> None:
    channel = bot.declare(f"declare sev1 {TITLE}")
    command(bot, "status identified", channel=channel["id"])
    first, status_news = announcements(bot.slack)
    assert TITLE in first["text"] and TITLE in status_news["text"]

    answered = command(bot, "private", channel=channel["id"], respond_to="p")
    assert "private from now on" in answered["text"]

    incident = incident_in(bot, channel)
    assert incident.private
    made = [i for i in bot.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.MADE_PRIVATE]
    assert len(made) == 1 and made[0].actor_id == ALICE
    edited, _ = announcements(bot.slack)
    assert edited["ts"] == first["ts"] and "incident 1 was made private" in edited["text"]
    assert_names_nothing(edited["text"], channel)
    # Its channel is still public in Slack: the announcement must not say it is private.
    assert "Its channel is private" not in edited["text"] and "Its details are kept in its channel" in edited["text"]

    # Slack refuses the bot's token; the caller and the channel are told how a person does it.
    [tried] = bot.slack.calls_to("admin.conversations.convertToPrivate")
    assert tried.params["channel_id"] == channel["id"] and tried.response["error"] == "not_allowed_token_type"
    assert bot.slack.channel(channel["id"])["is_private"] is False  # type: ignore[index]
    [how] = [r["text"] for r in bot.slack.responses("p") if "still *public*" in r.get("text", "")]
    assert "not_allowed_token_type" in how and "*Settings* → *Change to a private channel*" in how
    in_channel = [m["text"] for m in bot.slack.messages(channel["id"])]
    assert any("made incident 1 *private*" in t for t in in_channel) and how in in_channel

    # From now on: nothing announced; the timeline says what happened; asking again changes nothing.
    command(bot, "update Contained", channel=channel["id"])
    assert len(announcements(bot.slack)) == 2
    timeline = command(bot, "timeline", channel=channel["id"])
    assert "made the incident *private*" in shown(timeline)
    again = command(bot, "private", channel=channel["id"])
    assert "already private" in again["text"] and "never makes one public" in again["text"]
    assert len(bot.slack.calls_to("admin.conversations.convertToPrivate")) == 1


def test_a_slack_retry_of_private_changes_nothing_more(bot: RunningBot) -> None:
    channel = bot.declare(f"declare sev1 {TITLE}")
    sent = bot.requests.command("private", user_id=ALICE, channel_id=channel["id"], response_url=bot.slack.response_url())
    retried = bot.requests.retry(sent)
    bot.settle()

    assert retried.response.status_code == 200
    incident = incident_in(bot, channel)
    assert [i.kind for i in bot.runtime.services.timeline.items(incident.id)].count(EntryKind.MADE_PRIVATE) == 1
    assert len(bot.slack.calls_to("admin.conversations.convertToPrivate")) == 1


def test_where_slack_lets_the_bot_the_channel_itself_is_made_private(bot: RunningBot) -> None:
    bot.slack.grant_admin_api()
    channel = bot.declare(f"declare sev1 {TITLE}")

    command(bot, "private", channel=channel["id"], respond_to="p")

    assert bot.slack.channel(channel["id"])["is_private"] is True  # type: ignore[index]
    assert any("Slack made this channel private" in m["text"] for m in bot.slack.messages(channel["id"]))
    assert any("Done" in r.get("text", "") for r in bot.slack.responses("p"))
    # Slack converted it: now the announcement may say so.
    [announcement] = announcements(bot.slack)
    assert "was made private" in announcement["text"] and "Its channel is private" in announcement["text"]
    assert_names_nothing(announcement["text"], channel)


def test_a_channel_an_admin_already_made_private_is_not_converted_again(bot: RunningBot) -> None:
    channel = bot.declare(f"declare sev1 {TITLE}")
    bot.slack.convert_to_private(channel["id"])

    command(bot, "private", channel=channel["id"], respond_to="p")

    assert incident_in(bot, channel).private
    assert bot.slack.calls_to("admin.conversations.convertToPrivate") == []
    assert any("private already" in r.get("text", "") for r in bot.slack.responses("p"))
    [announcement] = announcements(bot.slack)  # conversations.info said is_private
    assert "was made private" in announcement["text"] and "Its channel is private" in announcement["text"]


def test_an_alerts_message_names_an_incident_made_private_by_number_only(
        tmp_path: Path, slack: SlackSimulator, database_url: str, pagers: dict[str, Any]) -> None:
    slack.add_user(DBA, "dba1")
    slack.add_channel("alerts", channel_id=alerting.ALERTS, members=[ALICE, BOB])
    bot = start_bot(tmp_path, slack, database_url, alerting.CONFIG, env=pagers["env"],
                    paging_transport=pagers["paging_transport"])
    try:
        alerting.send(bot, alerting.notification(alerting.alert()))
        [message] = alerting.group_messages(bot)
        group_id = next(e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
        bot.requests.block_action(alert_blocks.DECLARE_ACTION, group_id, user_id=ALICE, channel_id=alerting.ALERTS)
        bot.settle()
        [incident] = bot.runtime.services.incidents.list_open()
        assert f"<#{incident.channel_id}|" in shown(alerting.group_messages(bot)[0]["blocks"])

        command(bot, "private", channel=str(incident.channel_id))

        [updated] = alerting.group_messages(bot)
        assert updated["ts"] == message["ts"]
        assert str(incident.channel_id) not in shown(updated) and ":lock: Incident 1 (private)" in shown(updated)
    finally:
        bot.stop()


# --- an archived private channel


def test_an_archived_private_channel_sends_nothing_to_the_announcement_thread(
        bot: RunningBot, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        database_url: str, slack: SlackSimulator) -> None:
    channel = bot.declare(f"declare sev2 --private {TITLE}")
    [announcement] = announcements(slack)
    assert bot.requests.event(slack.archive_channel(channel["id"], by=BOB)).response.status_code == 200
    bot.settle()
    assert incident_in(bot, channel).channel_archived_at is not None

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INCIDENT_BOT_CONFIG", str(tmp_path / "incident-bot.toml"))
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    monkeypatch.setenv("SLACK_API_URL", slack.base_url)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    capsys.readouterr()
    assert main(["resolve", "1", "Export", "revoked"]) == 0
    resolved = capsys.readouterr().out
    assert main(["close", "1"]) == 0
    closed = capsys.readouterr().out
    bot.settle()

    assert "is private, so Slack was not told" in resolved
    assert "is private and its channel is archived" in closed  # the postmortem was not uploaded anywhere
    assert announcements(slack) == [announcement]
    assert slack.files() == []
    assert bot.runtime.services.incidents.get(incident_in(bot, channel).id).status is Status.CLOSED


# --- the pieces


def test_a_private_incidents_channel_name_never_tells_its_title() -> None:
    assert channel_name("inc", date(2026, 11, 30), TITLE, 7, private=True) == "inc-20261130-incident-7"
    assert channel_name("inc", date(2026, 11, 30), TITLE, 7, 3, private=True) == "inc-20261130-incident-7-3"
    assert channel_name("inc", date(2026, 11, 30), TITLE, 7) == "inc-20261130-payroll-export-sent-to-a-contractor"


@BUILDERS
@given(incidents(), st.integers(0, 10**6))
def test_private_announcements_and_list_lines_name_nothing_and_fit(incident: Incident, minutes: int) -> None:
    """Whatever the title, channel and description, the announcement is the same (and so is the list line
    for a non-member, whoever leads it); each is a message Slack takes."""
    private = replace(incident, private=True)
    other = replace(private, title="Something else entirely", description="other", channel_id="C0OTHER",
                    channel_name="inc-20240101-other", channel_archived_at=private.declared_at)
    for made_private in (False, True):
        for channel_private in (False, True):
            announcement = blocks.declared_announcement(private, made_private=made_private, channel_private=channel_private)
            assert_posts(announcement)
            assert announcement == blocks.declared_announcement(other, made_private=made_private,
                                                                channel_private=channel_private)
            assert ("Its channel is private" in announcement) is channel_private
    now = incident.declared_at + timedelta(minutes=minutes)
    listed = blocks.open_incidents([private], now)
    assert_posts(*listed)
    # Whoever leads it, whatever its severity and status now (changes never announced).
    changed = replace(other, roles={}, severity=Severity.SEV4 if private.severity is not Severity.SEV4 else Severity.SEV1,
                      status=Status.MONITORING if private.status is not Status.MONITORING else Status.IDENTIFIED)
    assert listed == blocks.open_incidents([changed], now)
    assert ":lock: Incident" in shown(listed[1]) and "C0INC1" not in shown(listed[1])
    assert "C0INC1" in shown(blocks.open_incidents([private], now, members_of={private.id})[1])


class _Pager:
    """A provider that keeps what it was asked to send."""

    name = "PagerDuty"

    def __init__(self) -> None:
        self.sent: list[Alert] = []

    def trigger(self, alert: Alert) -> int:
        self.sent.append(alert)
        return 1

    def acknowledge(self, alert: Alert, by: Doer) -> int:
        raise AssertionError("only a trigger is expected")

    def resolve(self, alert: Alert, by: Doer) -> int:
        raise AssertionError("only a trigger is expected")


@pytest.mark.parametrize(("private", "details", "told"), [(True, False, False), (True, True, True), (False, False, True)])
def test_a_page_sent_while_the_store_is_down_from_a_private_channel_keeps_the_minimum(
        private: bool, details: bool, told: bool) -> None:
    """The store is down, so the incident is unknown: what Slack says of the channel decides (handlers.paging
    asks conversations.info and takes "cannot say" as private)."""
    pager, dispatcher = _Pager(), Dispatcher()
    teams = {"sec": TeamSection(display_name="Security", pagerduty_routing_key=ROUTING_KEY, private_details=details)}
    paging = PagingService(sessionmaker(), ManualClock(datetime(2026, 11, 30, tzinfo=UTC)), teams, lambda _: [pager],
                           None, lambda incident: None, dispatcher)
    try:
        [future] = paging.page_unrecorded("sec", "the payroll export leaked", "C0PRIV", "inc-20261130-payroll-leak",
                                          Doer("Alice Martin", "Slack"), private=private)
        assert future.result(timeout=10).error is None
    finally:
        dispatcher.shutdown()
    [alert] = pager.sent
    text = shown({"summary": alert.summary, "details": alert.details})
    assert ("payroll" in text) is told and ("inc-20261130" in text) is told
    assert alert.severity is Severity.SEV1 and "Alice Martin" in text


@pytest.mark.parametrize("value", ['"yes"', "1", '"true"'])
def test_private_details_must_be_true_or_false(tmp_path: Path, value: str) -> None:
    path = tmp_path / "incident-bot.toml"
    path.write_text(pager_config().replace('display_name = "Database team"',
                                           f'display_name = "Database team"\nprivate_details = {value}'))
    with pytest.raises(ConfigError) as refused:
        parse_config_file(path)
    [problem] = refused.value.problems
    assert problem.startswith(f"{path}: teams.database.private_details: expected true or false"), problem


def test_private_details_defaults_to_false_and_takes_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "incident-bot.toml"
    path.write_text(pager_config(private_details=True))
    config = parse_config_file(path)
    assert config.teams["database"].private_details and config.teams["sre"].private_details
    path.write_text(pager_config())
    assert not parse_config_file(path).teams["database"].private_details


# --- the simulator answers as Slack does


@pytest.fixture
def client(slack: SlackSimulator) -> Iterator[WebClient]:
    yield WebClient(token=slack.bot_token, base_url=slack.base_url)


def test_conversations_members_pages_with_a_cursor(slack: SlackSimulator, client: WebClient) -> None:
    members = [f"U0M{i:05d}" for i in range(250)]
    channel = slack.add_channel("big", members=members)
    first = client.conversations_members(channel=channel)
    assert len(first["members"]) == 100 and first["response_metadata"]["next_cursor"]
    cursor = first["response_metadata"]["next_cursor"]
    assert base64.b64decode(cursor).decode().startswith("user:")
    rest = client.conversations_members(channel=channel, cursor=cursor, limit=1000)
    assert rest["response_metadata"]["next_cursor"] == ""
    assert sorted(first["members"] + rest["members"]) == sorted([*members, slack.bot_user_id])


@pytest.mark.parametrize(("arguments", "error"), [
    ({"channel": "C0NOTHERE"}, "channel_not_found"),
    ({"channel": GENERAL, "limit": 1001}, "invalid_limit"),
    ({"channel": GENERAL, "limit": 0}, "invalid_limit"),
    ({"channel": GENERAL, "cursor": "not a cursor"}, "invalid_cursor"),
])
def test_conversations_members_refuses_as_slack_does(client: WebClient, arguments: dict[str, Any], error: str) -> None:
    with pytest.raises(SlackApiError) as refused:
        client.conversations_members(**arguments)
    assert refused.value.response["error"] == error


def test_a_private_channel_the_bot_is_not_in_is_not_found(slack: SlackSimulator, client: WebClient) -> None:
    hidden = slack.add_channel("hr-only", is_private=True, members=[ALICE], bot_is_member=False)
    with pytest.raises(SlackApiError) as refused:
        client.conversations_members(channel=hidden)
    assert refused.value.response["error"] == "channel_not_found"


def test_convert_to_private_is_refused_to_a_bot_token_and_works_for_an_admins(slack: SlackSimulator, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as refused:
        client.admin_conversations_convertToPrivate(channel_id=GENERAL)
    assert refused.value.response["error"] == "not_allowed_token_type"
    slack.grant_admin_api()
    assert client.admin_conversations_convertToPrivate(channel_id=GENERAL)["ok"]
    assert slack.channel(GENERAL)["is_private"] is True  # type: ignore[index]
    with pytest.raises(SlackApiError) as again:
        client.admin_conversations_convertToPrivate(channel_id=GENERAL)
    assert again.value.response["error"] == "channel_type_not_supported"
