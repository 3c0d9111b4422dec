"""The inputs Slack refused, end to end: signed requests to the real app, the Slack simulator holding
every payload to Block Kit's rules (simulators.block_kit), on both stores.

* `/incident page database <2,900 characters>`: the page is posted with its Acknowledge button, which works;
* the declare form with a description of 40 `&` and 2,850 other characters: the summary is posted whole
  and pinned;
* `/incident timeline` from page 2 on: "◀ Earlier" and "Later ▶" have their own action_ids and both work;
* an incident spanning days: each entry whose day differs from the one before shows its date, days
  counted in the configured zone.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.incidents.values import MAX_TEXT_LENGTH
from handlers import mrkdwn, paging_blocks, timeline_view
from simulators.block_kit import message_problems
from simulators.paging import PagerDutyReceiver
from simulators.slack import SlackSimulator
from tests.conftest import ALICE, ANNOUNCE, BOB, DBA, RunningBot, database_team, start_bot

_ts = itertools.count(1)


def refused(slack: SlackSimulator) -> list[tuple[str, Any]]:
    """Every Slack call the simulator refused for its content."""
    return [(c.method, c.response.get("error")) for c in slack.calls
            if c.response.get("error") in ("invalid_blocks", "invalid_arguments", "msg_too_long", "no_text")]


@pytest.fixture
def paged_bot(tmp_path: Path, slack: SlackSimulator, database_url: str, pagerduty: PagerDutyReceiver) -> Iterator[RunningBot]:
    slack.add_user(DBA, "dba1")
    config = f'[slack]\nannounce_channel = "{ANNOUNCE}"\n{database_team()}'
    running = start_bot(tmp_path, slack, database_url, config, env={"PAGERDUTY_EVENTS_URL": pagerduty.events_url})
    yield running
    running.stop()


def test_a_page_of_2900_characters_is_posted_with_its_acknowledge_button(paged_bot: RunningBot, pagerduty: PagerDutyReceiver) -> None:
    bot = paged_bot
    channel = bot.declare("declare sev1 Checkout is timing out")
    # 2,900 characters as Slack sends them (the bot's limit): escaped entities, mentions and a link.
    unit = "Pool &amp; replicas &lt;saturated&gt; <@U0BOB> see <https://grafana.example/d/pool?from=now-1h&amp;to=now|pool> · "
    message = (unit * (MAX_TEXT_LENGTH // len(unit) + 1))[:MAX_TEXT_LENGTH].rsplit(" ", 1)[0]
    message += "x" * (MAX_TEXT_LENGTH - len(message))
    assert len(message) == MAX_TEXT_LENGTH

    sent = bot.requests.command(f"page database {message}", user_id=ALICE, channel_id=channel["id"], response_url=bot.slack.response_url("p"))
    bot.settle()

    assert sent.response.status_code == 200
    assert refused(bot.slack) == []
    [page] = [m for m in bot.slack.messages(channel["id"]) if m.get("text", "").startswith("Paging")]
    assert message_problems(page) == []
    sections = [b["text"]["text"] for b in page["blocks"] if b["type"] == "section"]
    assert all(mrkdwn.length(s) <= mrkdwn.SECTION_TEXT for s in sections) and len(sections) > 1
    shown = "\n".join(sections)
    assert shown.count("<@U0BOB>") == message.count("<@U0BOB>")  # every mention whole: nothing cut or lost
    assert shown.count("|pool>") == message.count("|pool>")
    [button] = [e for b in page["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == paging_blocks.ACKNOWLEDGE_ACTION]
    assert pagerduty.alerts() == {"incident-bot-1-database": "triggered"}  # escalation and delivery as before

    bot.requests.block_action(button["action_id"], button["value"], user_id=BOB, channel_id=channel["id"],
                              response_url=bot.slack.response_url("button"))
    bot.settle()

    assert pagerduty.alerts() == {"incident-bot-1-database": "acknowledged"}
    [updated] = [m for m in bot.slack.messages(channel["id"]) if m.get("text", "").startswith("Paging")]
    assert "Acknowledged" in json.dumps(updated["blocks"]) and all(b["type"] != "actions" for b in updated["blocks"])
    assert refused(bot.slack) == []


def test_a_form_description_full_of_ampersands_is_posted_whole_and_pinned(bot: RunningBot) -> None:
    bot.command("declare")
    bot.settle()
    view = bot.slack.calls_to("views.open")[0].response["view"]
    description = ("&" * 40 + "Checkout p99 over 4 s <since> the 09:15 deploy; " * 60)[:2889] + "!"
    assert len(description) == 2890 and description.count("&") == 40
    values = {
        "title": {"value": {"type": "plain_text_input", "value": "Checkout <slow> & failing"}},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "sev2"}}},
        "description": {"value": {"type": "plain_text_input", "value": description}},
    }

    sent = bot.requests.view_submission(view, values, user_id=BOB)
    bot.settle()

    assert sent.response.status_code == 200
    assert refused(bot.slack) == []
    [incident] = bot.runtime.services.incidents.list_open()
    assert incident.channel_id is not None and incident.description is not None
    assert incident.description == mrkdwn.escape(description) and len(incident.description) > mrkdwn.SECTION_TEXT
    summary = bot.slack.messages(incident.channel_id)[0]
    assert bot.slack.pins(incident.channel_id) == [summary["ts"]]
    assert message_problems(summary) == []
    sections = [b["text"]["text"] for b in summary["blocks"] if b["type"] == "section" and "text" in b]
    described = [t for t in sections if t.startswith(("*Description*", mrkdwn.CONTINUED))]
    assert len(described) == 2 and all(mrkdwn.length(t) <= mrkdwn.SECTION_TEXT for t in described)
    shown = "".join(described).removeprefix("*Description*\n").replace(mrkdwn.CONTINUED, "")
    assert re.sub(r"\s", "", shown) == re.sub(r"\s", "", mrkdwn.escape(description))  # all of it, no entity cut in two
    assert not [d for d in bot.slack.direct_messages(BOB) if "Retry" in json.dumps(d)]  # nothing to retry


def message(channel: str, text: str, at: datetime, user: str = ALICE) -> dict[str, Any]:
    ts = f"{int(at.timestamp())}.{next(_ts):06d}"
    return {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "event_ts": ts,
            "channel_type": "channel", "team": "T0SIMULATE"}


def timeline(bot: RunningBot, channel: dict, reply_to: str = "t") -> dict[str, Any]:
    sent = bot.requests.command("timeline", user_id=ALICE, channel_id=channel["id"], response_url=bot.slack.response_url(reply_to))
    assert sent.response.status_code == 200
    return sent.response.json()


def page_buttons(page: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["text"]["text"]: e for b in page["blocks"] if b["type"] == "actions" for e in b["elements"]}


def test_timeline_pages_have_their_own_earlier_and_later_buttons_and_both_work(bot: RunningBot) -> None:
    channel = bot.declare()
    start = datetime.now(UTC) - timedelta(hours=2)
    for i in range(14):  # a section each, four to a page: four pages
        assert bot.requests.event(message(channel["id"], f"entry {i:02d} " + "details " * 340, start + timedelta(minutes=i))).response.status_code == 200

    first = timeline(bot, channel)
    assert list(page_buttons(first)) == ["Later ▶"]
    later = page_buttons(first)["Later ▶"]
    bot.requests.block_action(later["action_id"], later["value"], user_id=ALICE, channel_id=channel["id"], response_url=bot.slack.response_url("t"))
    bot.settle()
    second = bot.slack.responses("t")[-1]

    assert "page 2 of" in second["text"] and message_problems(second) == []
    buttons = page_buttons(second)
    assert list(buttons) == ["◀ Earlier", "Later ▶"]
    assert buttons["◀ Earlier"]["action_id"] != buttons["Later ▶"]["action_id"]
    assert (buttons["◀ Earlier"]["action_id"], buttons["Later ▶"]["action_id"]) == (timeline_view.EARLIER_ACTION, timeline_view.LATER_ACTION)

    for label, expected in (("◀ Earlier", "page 1 of"), ("Later ▶", "page 3 of")):
        pressed = buttons[label]
        bot.requests.block_action(pressed["action_id"], pressed["value"], user_id=ALICE, channel_id=channel["id"],
                                  response_url=bot.slack.response_url("t"))
        bot.settle()
        shown = bot.slack.responses("t")[-1]
        assert expected in shown["text"] and shown["replace_original"] is True and message_problems(shown) == []
    assert refused(bot.slack) == []


@pytest.fixture
def paris_bot(tmp_path: Path, slack: SlackSimulator, database_url: str) -> Iterator[RunningBot]:
    config = f'[slack]\nannounce_channel = "{ANNOUNCE}"\n\n[postmortem]\ntimezone = "Europe/Paris"\n'
    running = start_bot(tmp_path, slack, database_url, config)
    yield running
    running.stop()


def test_a_timeline_spanning_days_shows_the_date_whenever_it_changes(paris_bot: RunningBot) -> None:
    bot = paris_bot
    paris = ZoneInfo("Europe/Paris")
    channel = bot.declare()
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    assert incident is not None
    declared = incident.declared_at
    # 22:00 in Paris on the Paris day after the declaration's, whatever the hour the test runs at (counted
    # from the UTC date, an 00:30 Paris declaration put "evening" on its own Paris day, undated).
    base = datetime.combine(declared.astimezone(paris).date() + timedelta(days=1), time(22), paris).astimezone(UTC)
    moments = {
        "evening": base,                                   # Paris: day 1, late evening
        "late": base + timedelta(minutes=50),              # Paris: day 1, still (same day)
        "past midnight": base + timedelta(hours=2),        # Paris: day 2, after midnight; still day 1 in UTC
        "morning": base + timedelta(hours=11),             # Paris: day 2 (same day)
        "two days on": base + timedelta(days=2),           # Paris: day 3
    }
    for text, at in moments.items():
        assert bot.requests.event(message(channel["id"], f"{text} update", at)).response.status_code == 200

    page = timeline(bot, channel)
    assert message_problems(page) == []
    lines = [line for b in page["blocks"] if b["type"] == "section" for line in b["text"]["text"].split("\n")]
    stamps = {}
    for line in lines:
        found = re.match(r"<!date\^(\d+)\^(\{date_short_pretty\} )?\{time_secs\}\|([^>]+)>", line)
        assert found, line
        for text in moments:
            if f"{text} update" in line:
                stamps[text] = (bool(found.group(2)), found.group(3))
    assert {text: dated for text, (dated, _) in stamps.items()} == {
        "evening": True, "late": False, "past midnight": True, "morning": False, "two days on": True,
    }
    for text, at in moments.items():  # the fallback, for clients that cannot render a date, is in the configured zone, named
        local = at.astimezone(paris)
        shape = "%Y-%m-%d %H:%M:%S" if stamps[text][0] else "%H:%M:%S"
        assert stamps[text][1] == f"{local.strftime(shape)} {local.tzname()}"


def test_a_form_title_only_escaping_makes_too_long_is_refused_saying_so(bot: RunningBot) -> None:
    bot.command("declare")
    bot.settle()
    view = bot.slack.calls_to("views.open")[0].response["view"]
    title = ("R&D <eu> " * 20)[:150]  # what the form takes: 150 characters typed

    sent = bot.requests.view_submission(view, {"title": {"value": {"type": "plain_text_input", "value": title}}}, user_id=BOB)

    answer = sent.response.json()
    assert answer["response_action"] == "errors"
    assert "The title is 150 characters, but Slack sends each ampersand and angle bracket as several" in answer["errors"]["title"]
    assert "which makes it 317; keep it to 150 counted that way" in answer["errors"]["title"]
    assert bot.runtime.services.incidents.list_open() == []


def test_an_update_is_counted_as_typed_and_posted_whole_however_slack_escaped_it(bot: RunningBot) -> None:
    channel = bot.declare()
    typed = ("&" * 40 + "Pool at 100/100 <since> 09:15; " * 100)[:2889] + "!"
    assert len(typed) == MAX_TEXT_LENGTH - 10
    sent_text = mrkdwn.escape(typed)  # what Slack sends: 40 `&amp;` and every `<`/`>` escaped
    assert len(sent_text) > MAX_TEXT_LENGTH

    answer = bot.command(f"update {sent_text}", channel=channel["id"]).response
    bot.settle()

    assert answer.status_code == 200 and ":warning:" not in answer.text, answer.text
    assert refused(bot.slack) == []
    posted = [m for m in bot.slack.messages(channel["id"]) if "Status update" in json.dumps(m)]
    announced = [m for m in bot.slack.messages(ANNOUNCE) if "Update on" in json.dumps(m)]
    for shown in posted + announced:
        assert message_problems(shown) == []
        assert re.sub(r"\s", "", sent_text) in re.sub(r"\s", "", "".join(
            b["text"]["text"].replace(mrkdwn.CONTINUED, "") for b in shown.get("blocks", []) if "text" in b) or shown["text"])
    assert posted and announced

    too_long = bot.command(f"update {mrkdwn.escape(typed + '&' * 11)}", channel=channel["id"]).response.json()
    assert "The text is 2,901 characters long; keep it to 2,900." in too_long["text"]
