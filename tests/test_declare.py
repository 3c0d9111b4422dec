"""`/incident declare` through the signed HTTP endpoint, checked against what Slack (the simulator) saw
and what the store holds."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from bot.incidents.channel_names import is_valid_channel_name
from bot.incidents.values import EntryKind
from bot.clock import ManualClock
from simulators.slack import SlackSimulator
from tests.conftest import ALICE, ANNOUNCE, BOB, GENERAL, RunningBot, start_bot


def test_declare_opens_announces_and_pins_one_channel(bot: RunningBot) -> None:
    sent = bot.command("declare sev1 Checkout is timing out")

    assert sent.response.status_code == 200
    assert "Declaring incident 1" in sent.response.json()["text"]
    bot.settle()

    [incident] = bot.runtime.services.incidents.list_open()
    today = incident.declared_at.strftime("%Y%m%d")  # the declaration's own day, as the channel is named
    created = bot.slack.calls_to("conversations.create")
    assert [c.params["name"] for c in created] == [f"inc-{today}-checkout-is-timing-out"]
    channel = bot.slack.channel_by_name(f"inc-{today}-checkout-is-timing-out")
    assert channel is not None and ALICE in bot.slack.members(channel["id"])
    assert channel["topic"]["value"].startswith("SEV1 · Investigating · Commander: alice")

    summary = bot.slack.messages(channel["id"])[0]
    assert bot.slack.pins(channel["id"]) == [summary["ts"]]
    assert "Incident 1: Checkout is timing out" in summary["text"]

    announcements = bot.slack.messages(ANNOUNCE)
    assert len(announcements) == 1
    assert f"<#{channel['id']}|{channel['name']}>" in announcements[0]["text"]
    assert "SEV1" in announcements[0]["text"] and "<@U0ALICE>" in announcements[0]["text"]

    assert any(f"<#{channel['id']}" in r.get("text", "") for r in bot.slack.responses("default"))

    incident = bot.runtime.services.incidents.list_open()[0]
    assert (incident.number, incident.severity.value, incident.status.value) == (1, "sev1", "investigating")
    assert incident.channel_id == channel["id"] and incident.summary_ts == summary["ts"]
    assert incident.provisioned_at is not None and incident.commander == ALICE
    entries = bot.runtime.services.timeline.items(incident.id)
    assert [(e.kind, e.actor_id) for e in entries] == [(EntryKind.DECLARED, ALICE)]


def test_a_retried_declare_makes_nothing_more(bot: RunningBot) -> None:
    first = bot.command("declare sev2 Search is down")
    second = bot.requests.retry(first, retry_num=1)
    third = bot.requests.retry(first, retry_num=2)
    bot.settle()

    assert [r.response.status_code for r in (first, second, third)] == [200, 200, 200]
    assert len(bot.slack.calls_to("conversations.create")) == 1
    assert len(bot.runtime.services.incidents.list_open()) == 1
    assert len(bot.slack.messages(ANNOUNCE)) == 1
    assert "already declared" in second.response.json()["text"]


def test_a_double_submit_opens_one_incident(bot: RunningBot) -> None:
    bot.command("declare sev2 Search is down")
    again = bot.command("declare sev2 Search is down")  # a new trigger_id: typed twice
    bot.settle()

    assert len(bot.runtime.services.incidents.list_open()) == 1
    assert len(bot.slack.calls_to("conversations.create")) == 1
    assert "Incident 1" in again.response.json()["text"] and "already declared" in again.response.json()["text"]


def test_a_taken_name_gets_the_next_suffix(tmp_path: Path, slack: SlackSimulator, database_url: str,
                                          clock: ManualClock) -> None:
    # The bot's clock is held still, so the names taken beforehand carry the day the incident is declared
    # on, even when the test runs across midnight.
    bot = start_bot(tmp_path, slack, database_url, clock=clock)
    try:
        today = clock.now().strftime("%Y%m%d")
        bot.slack.add_channel(f"inc-{today}-db-is-slow")
        bot.slack.add_channel(f"inc-{today}-db-is-slow-2")

        channel = bot.declare("declare DB is slow")

        assert channel["name"] == f"inc-{today}-db-is-slow-3"
        assert [c.response.get("error") for c in bot.slack.calls_to("conversations.create")] == ["name_taken", "name_taken", None]
    finally:
        bot.stop()


def test_titles_in_any_script_give_a_valid_channel_name(bot: RunningBot) -> None:
    channel = bot.declare("declare sev2 決済が遅い")
    assert is_valid_channel_name(channel["name"]) and channel["name"].endswith("-incident-1")

    long_one = bot.declare("declare sev3 " + "Élan vital " * 13)
    assert is_valid_channel_name(long_one["name"]) and len(long_one["name"]) <= 80
    assert "elan-vital" in long_one["name"]


def test_concurrent_declarations_get_unique_gap_free_numbers(bot: RunningBot) -> None:
    statuses: list[int] = []

    def declare(i: int) -> None:
        statuses.append(bot.command(f"declare sev3 Outage number {i}", user=BOB).response.status_code)

    threads = [threading.Thread(target=declare, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.settle()

    assert statuses == [200] * 12
    incidents = bot.runtime.services.incidents.list_open()
    assert sorted(i.number for i in incidents) == list(range(1, 13))
    assert len({i.channel_id for i in incidents}) == 12


def test_options_without_a_title_open_the_form_with_them_chosen(bot: RunningBot) -> None:
    """INTERFACE: "With no title: a modal asks". `sev2 --private` is two answers already given."""
    sent = bot.command("declare sev2 --private")
    bot.settle()

    assert sent.response.status_code == 200
    [opened] = bot.slack.calls_to("views.open")
    view = opened.response["view"]
    blocks = {b["block_id"]: b["element"] for b in view["blocks"]}
    assert blocks["severity"]["initial_option"]["value"] == "sev2"
    assert [o["value"] for o in blocks["private"]["initial_options"]] == ["private"]
    assert bot.runtime.services.incidents.list_open() == []  # nothing declared until the form is submitted


def test_declare_without_a_title_opens_the_form_and_its_submission_declares(bot: RunningBot) -> None:
    sent = bot.command("declare")
    bot.settle()

    assert sent.response.status_code == 200
    opened = bot.slack.calls_to("views.open")
    assert len(opened) == 1 and opened[0].response["ok"]
    view = opened[0].response["view"]
    assert {b["block_id"] for b in view["blocks"]} == {"title", "severity", "description", "private"}

    values = {
        "title": {"value": {"type": "plain_text_input", "value": "Payments <failing> & slow"}},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "sev2"}}},
        "description": {"value": {"type": "plain_text_input", "value": "5xx on /pay since 09:15"}},
    }
    submitted = bot.requests.view_submission(view, values, user_id=BOB)
    again = bot.requests.view_submission(view, values, user_id=BOB)  # a double click on Declare
    bot.settle()

    assert submitted.response.status_code == 200 and again.response.status_code == 200
    [incident] = bot.runtime.services.incidents.list_open()
    assert (incident.title, incident.severity.value, incident.reporter_id) == ("Payments &lt;failing&gt; &amp; slow", "sev2", BOB)
    assert incident.description == "5xx on /pay since 09:15"
    assert BOB in bot.slack.members(incident.channel_id)
    assert len(bot.slack.calls_to("conversations.create")) == 1

    # The form closed at the answer: Bob is told by direct message, as the slash command tells in place,
    # that it is declared and where; then that his second click opened nothing new.
    link = f"<#{incident.channel_id}|{incident.channel_name}>"
    assert [m["text"] for m in bot.slack.direct_messages(BOB)] == [
        f":white_check_mark: Incident 1 declared: {link}. You're in it.",
        f":information_source: Incident 1 (“{incident.title}”) was already declared by <@{BOB}>: {link}. "
        "Nothing new was opened; to declare a separate incident, give it a different title.",
    ]


def test_the_form_refuses_a_blank_title(bot: RunningBot) -> None:
    bot.command("declare")
    bot.settle()
    view = bot.slack.calls_to("views.open")[0].response["view"]
    values = {"title": {"value": {"type": "plain_text_input", "value": "   "}}}

    sent = bot.requests.view_submission(view, values, user_id=BOB)

    assert sent.response.json()["response_action"] == "errors"
    assert "title" in sent.response.json()["errors"]
    assert bot.runtime.services.incidents.list_open() == []


def test_slack_rate_limits_and_dropped_connections_are_retried(bot: RunningBot) -> None:
    bot.slack.fail_next("conversations.create", "ratelimited", retry_after=1)
    bot.slack.fail_next("chat.postMessage", drop_connection=True)

    channel = bot.declare("declare sev1 Checkout is timing out")

    creates = bot.slack.calls_to("conversations.create")
    assert [c.http_status for c in creates] == [429, 200]
    assert creates[1].at - creates[0].at >= 0.9  # Retry-After was honoured
    assert len(bot.slack.messages(channel["id"])) == 1  # the summary got there, once
    assert bot.slack.pins(channel["id"])


def test_the_bot_joins_a_public_announce_channel_it_is_not_in(bot: RunningBot) -> None:
    bot.slack.add_channel("other-announce", channel_id="C0ANNOUNC2", bot_is_member=False)
    bot.runtime.services.publisher._slack = bot.runtime.services.publisher._slack.model_copy(
        update={"announce_channel": "C0ANNOUNC2"}
    )

    bot.declare()

    assert len(bot.slack.calls_to("conversations.join")) == 1
    assert len(bot.slack.messages("C0ANNOUNC2")) == 1


def test_a_slack_failure_after_the_ack_is_reported_and_can_be_retried(bot: RunningBot) -> None:
    bot.slack.fail_next("conversations.create", "restricted_action")

    bot.command("declare sev1 Checkout is timing out")
    bot.settle()

    [report] = [r for r in bot.slack.responses("default") if "restricted_action" in r.get("text", "")]
    assert "Incident 1 is recorded" in report["text"]
    [button] = report["blocks"][1]["elements"]
    assert bot.runtime.services.incidents.list_open()[0].channel_id is None

    pressed = bot.requests.block_action(button["action_id"], button["value"], user_id=ALICE, channel_id=GENERAL,
                                        response_url=bot.slack.response_url("retry"))
    bot.settle()

    assert pressed.response.status_code == 200
    incident = bot.runtime.services.incidents.list_open()[0]
    assert incident.channel_id and incident.provisioned_at
    assert "is ready" in bot.slack.responses("retry")[-1]["text"]
    assert len(bot.slack.messages(ANNOUNCE)) == 1


def test_interrupted_set_up_resumes_at_start_without_repeating_steps(bot: RunningBot) -> None:
    # Slack failed to pin the summary; the other steps went through.
    bot.slack.fail_next("pins.add", "internal_error")
    bot.command("declare sev2 Queue backlog")
    bot.settle()
    incident = bot.runtime.services.incidents.list_open()[0]
    assert incident.provisioned_at is None and incident.summary_ts is not None
    assert bot.slack.pins(incident.channel_id) == [] and len(bot.slack.messages(ANNOUNCE)) == 1

    assert bot.runtime.resume() == 1
    bot.settle()

    incident = bot.runtime.services.incidents.list_open()[0]
    assert incident.provisioned_at is not None
    assert len(bot.slack.calls_to("conversations.create")) == 1
    assert len(bot.slack.messages(incident.channel_id)) == 1
    assert bot.slack.pins(incident.channel_id) == [incident.summary_ts]
    assert len(bot.slack.messages(ANNOUNCE)) == 1


def test_forged_and_stale_requests_get_401_and_change_nothing(bot: RunningBot) -> None:
    from urllib.parse import urlencode

    body = urlencode({"command": "/incident", "text": "declare sev1 Forged", "user_id": ALICE,
                      "channel_id": GENERAL, "trigger_id": "1.2.3", "team_id": "T0SIMULATE"}).encode()
    import time

    forged = bot.requests.send(body, "application/x-www-form-urlencoded", signature="v0=" + "0" * 64)
    stale_ts = int(time.time()) - 6 * 60
    stale = bot.requests.send(body, "application/x-www-form-urlencoded", timestamp=stale_ts,
                              signature=bot.requests.sign(body, stale_ts))
    unsigned = bot.requests._http.post(bot.requests.events_url, content=body,
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert [forged.response.status_code, stale.response.status_code, unsigned.status_code] == [401, 401, 401]
    bot.settle()
    assert bot.runtime.services.incidents.list_open() == []
    assert [c.method for c in bot.slack.calls if c.method != "auth.test"] == []


def test_channel_names_follow_the_configured_pattern(bot: RunningBot) -> None:
    channel = bot.declare("declare sev4 Disk 90% full on db-3")
    assert re.fullmatch(r"inc-\d{8}-disk-90-full-on-db-3", channel["name"])


def test_a_reporter_slack_cannot_invite_does_not_cost_the_summary_or_announcement(bot: RunningBot) -> None:
    bot.slack.fail_next("conversations.invite", "user_not_found")

    bot.command("declare sev1 Checkout is timing out")
    bot.settle()

    incident = bot.runtime.services.incidents.list_open()[0]
    assert bot.slack.pins(incident.channel_id) == [incident.summary_ts]
    assert len(bot.slack.messages(ANNOUNCE)) == 1
    assert incident.provisioned_at is None  # not finished: the invitation is still owed
    [report] = [r for r in bot.slack.responses("default") if "user_not_found" in r.get("text", "")]
    assert "inviting the reporter" in report["text"]


def test_a_form_slack_refuses_to_open_says_how_to_declare_instead(bot: RunningBot) -> None:
    bot.slack.fail_next("views.open", "expired_trigger_id")

    sent = bot.command("declare")

    assert "expired_trigger_id" in sent.response.json()["text"]
    assert "/incident declare [sev1|sev2|sev3|sev4] [--private] &lt;title&gt;" in sent.response.json()["text"]  # escaped: not markup
    assert bot.runtime.services.incidents.list_open() == []
