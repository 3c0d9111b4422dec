"""Tests for simulators.slack, driven through a real slack_sdk.WebClient as the bot would."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from simulators.slack import ApiCall, SlackSimulator

ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"


@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    with SlackSimulator() as simulator:
        simulator.add_user(ALICE, "alice", real_name="Alice Martin", display_name="alice.m")
        simulator.add_user(BOB, "bob", tz="America/New_York")
        simulator.add_user(CAROL, "carol")
        yield simulator


@pytest.fixture
def client(sim: SlackSimulator) -> WebClient:
    # No retry handlers: every failure must reach the test as-is.
    return WebClient(token=sim.bot_token, base_url=sim.base_url, retry_handlers=[])


def slack_error(call, *args, **kwargs) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        call(*args, **kwargs)
    return info.value


def error_code(call, *args, **kwargs) -> str:
    return slack_error(call, *args, **kwargs).response["error"]


def raw_post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_auth_test_identifies_the_bot(sim: SlackSimulator, client: WebClient) -> None:
    resp = client.auth_test()
    assert resp["ok"] is True
    assert (resp["user_id"], resp["bot_id"], resp["team_id"]) == ("U0INCBOT", "B0INCBOT", "T0SIMULATE")
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    [call] = sim.calls
    assert isinstance(call, ApiCall)
    assert (call.method, call.token, call.http_status) == ("auth.test", sim.bot_token, 200)
    assert abs(call.at - time.time()) < 5


def test_create_channel_then_name_taken(sim: SlackSimulator, client: WebClient) -> None:
    created = client.conversations_create(name="inc-42-db-down", is_private=True)["channel"]
    assert created["id"].startswith("C") and len(created["id"]) == 11
    assert created["name"] == "inc-42-db-down" and created["is_private"] is True
    assert created["is_member"] is True and created["creator"] == "U0INCBOT" and created["num_members"] == 1
    assert sim.channel_by_name("inc-42-db-down") == created
    assert sim.members(created["id"]) == {"U0INCBOT"}

    err = slack_error(client.conversations_create, name="inc-42-db-down")
    assert err.response["error"] == "name_taken"
    assert len(sim.channels()) == 1
    assert [c.response["ok"] for c in sim.calls_to("conversations.create")] == [True, False]


@pytest.mark.parametrize(
    ("name", "error"),
    [("Inc-42", "invalid_name_specials"), ("inc 42", "invalid_name_specials"),
     ("a" * 81, "invalid_name_maxlength"), ("", "invalid_name_required")],
)
def test_create_rejects_invalid_names(sim: SlackSimulator, client: WebClient, name: str, error: str) -> None:
    assert error_code(client.conversations_create, name=name) == error
    assert sim.channels() == []


def test_archived_channel_keeps_its_name_and_refuses_posts(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-1")["channel"]["id"]
    assert client.conversations_archive(channel=channel_id)["ok"] is True
    assert sim.channel(channel_id)["is_archived"] is True
    assert error_code(client.conversations_archive, channel=channel_id) == "already_archived"
    assert error_code(client.chat_postMessage, channel=channel_id, text="hi") == "is_archived"
    assert error_code(client.conversations_create, name="inc-1") == "name_taken"


def test_invite_errors_and_success(sim: SlackSimulator, client: WebClient) -> None:
    foreign = sim.add_channel("ops", members=[ALICE], bot_is_member=False)
    assert error_code(client.conversations_invite, channel=foreign, users=BOB) == "not_in_channel"
    assert error_code(client.conversations_invite, channel="C0NOPE", users=BOB) == "channel_not_found"

    channel_id = client.conversations_create(name="inc-7")["channel"]["id"]
    assert error_code(client.conversations_invite, channel=channel_id, users="U0GHOST") == "user_not_found"
    assert error_code(client.conversations_invite, channel=channel_id, users="U0INCBOT") == "cant_invite_self"

    resp = client.conversations_invite(channel=channel_id, users=[ALICE, BOB])
    assert resp["channel"]["num_members"] == 3
    assert sim.members(channel_id) == {"U0INCBOT", ALICE, BOB}
    assert sim.calls_to("conversations.invite")[-1].params["users"] == f"{ALICE},{BOB}"

    err = slack_error(client.conversations_invite, channel=channel_id, users=ALICE)
    assert err.response["error"] == "already_in_channel"
    assert err.response["errors"] == [{"user": ALICE, "ok": False, "error": "already_in_channel"}]


def test_invite_of_several_invites_nobody_when_one_fails_unless_forced(sim: SlackSimulator, client: WebClient) -> None:
    """Slack: conversations.invite, "Partially failed calls": one bad id and nobody is invited; each
    failing user is named in `errors`, the first one's code is `error`; `force=true` invites the rest."""
    channel_id = client.conversations_create(name="inc-8")["channel"]["id"]
    client.conversations_invite(channel=channel_id, users=ALICE)

    err = slack_error(client.conversations_invite, channel=channel_id, users=[BOB, ALICE, "U0GHOST"])
    assert err.response["error"] == "already_in_channel"
    assert err.response["errors"] == [{"user": ALICE, "ok": False, "error": "already_in_channel"},
                                      {"user": "U0GHOST", "ok": False, "error": "user_not_found"}]
    assert sim.members(channel_id) == {"U0INCBOT", ALICE}  # Bob was valid, yet not invited

    err = slack_error(client.conversations_invite, channel=channel_id, users=[BOB, ALICE, "U0INCBOT"], force=True)
    assert [e["user"] for e in err.response["errors"]] == [ALICE, "U0INCBOT"]
    assert sim.calls_to("conversations.invite")[-1].params["force"] in ("1", "true", True)
    assert sim.members(channel_id) == {"U0INCBOT", ALICE, BOB}

    assert client.conversations_invite(channel=channel_id, users=CAROL, force=True)["channel"]["num_members"] == 4


def test_a_deactivated_user_fails_alone_and_the_others_are_invited(sim: SlackSimulator, client: WebClient) -> None:
    """Slack: conversations.invite: users in a "removed" state fail, but all other users are invited."""
    sim.add_user("U0GONE", "gone", deleted=True)
    channel_id = client.conversations_create(name="inc-10")["channel"]["id"]

    err = slack_error(client.conversations_invite, channel=channel_id, users=["U0GONE", ALICE])
    assert err.response["error"] == "cant_invite"
    assert err.response["errors"] == [{"user": "U0GONE", "ok": False, "error": "cant_invite"}]
    assert sim.members(channel_id) == {"U0INCBOT", ALICE}


def test_set_topic(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-9")["channel"]["id"]
    assert error_code(client.conversations_setTopic, channel=channel_id, topic="x" * 251) == "too_long"
    resp = client.conversations_setTopic(channel=channel_id, topic="SEV1 | db down | IC: @alice")
    assert resp["channel"]["topic"]["value"] == "SEV1 | db down | IC: @alice"
    topic = sim.channel(channel_id)["topic"]
    assert topic["value"] == "SEV1 | db down | IC: @alice" and topic["creator"] == "U0INCBOT"
    assert abs(topic["last_set"] - time.time()) < 5


def test_post_update_and_pin(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-3")["channel"]["id"]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*SEV1* declared"}}]
    posted = client.chat_postMessage(channel=channel_id, text="SEV1 declared", blocks=blocks)
    assert posted["channel"] == channel_id
    assert posted["message"]["bot_id"] == "B0INCBOT" and posted["message"]["user"] == "U0INCBOT"
    assert posted["message"]["blocks"] == blocks
    assert sim.calls_to("chat.postMessage")[0].params["blocks"] == blocks  # slack_sdk sends chat.* as JSON

    ts = posted["ts"]
    updated = client.chat_update(channel=channel_id, ts=ts, text="SEV1 resolved")
    assert updated["ts"] == ts and updated["text"] == "SEV1 resolved"
    [message] = sim.messages(channel_id)
    assert message["text"] == "SEV1 resolved" and message["blocks"] == blocks  # omitted blocks are kept
    assert message["edited"]["user"] == "U0INCBOT" and float(message["edited"]["ts"]) > float(ts)

    assert client.pins_add(channel=channel_id, timestamp=ts)["ok"] is True
    assert sim.pins(channel_id) == [ts]
    assert error_code(client.pins_add, channel=channel_id, timestamp=ts) == "already_pinned"
    assert error_code(client.pins_add, channel=channel_id, timestamp="1.000001") == "message_not_found"
    assert client.pins_remove(channel=channel_id, timestamp=ts)["ok"] is True
    assert error_code(client.pins_remove, channel=channel_id, timestamp=ts) == "no_pin"
    assert sim.pins(channel_id) == []

    link = client.chat_getPermalink(channel=channel_id, message_ts=ts)["permalink"]
    assert link == f"https://simulated.slack.com/archives/{channel_id}/p{ts.replace('.', '')}"


def test_form_encoded_json_fields_are_decoded(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-form")["channel"]["id"]
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "SEV2"}}]
    # params= makes slack_sdk form-encode the body, so blocks travel as a JSON string.
    client.api_call("chat.postMessage", params={"channel": channel_id, "text": "SEV2", "blocks": json.dumps(blocks)})
    call = sim.calls_to("chat.postMessage")[0]
    assert call.params == {"channel": channel_id, "text": "SEV2", "blocks": blocks}
    assert sim.messages(channel_id)[0]["blocks"] == blocks
    long_header = [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]
    err = slack_error(client.api_call, "chat.postMessage",
                      params={"channel": channel_id, "text": "t", "blocks": json.dumps(long_header)})
    assert err.response["error"] == "invalid_blocks"
    bad = slack_error(client.api_call, "chat.postMessage", params={"channel": channel_id, "blocks": "{oops"})
    assert bad.response["error"] == "invalid_blocks_format"


def test_update_rejects_messages_from_humans(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = sim.add_channel("inc-4", members=[ALICE])
    ts = sim.add_message(channel_id, "I'm on it", user=ALICE)
    assert error_code(client.chat_update, channel=channel_id, ts=ts, text="x") == "cant_update_message"
    assert error_code(client.chat_update, channel=channel_id, ts="9.9", text="x") == "message_not_found"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
def test_message_validation(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-5")["channel"]["id"]
    assert error_code(client.chat_postMessage, channel=channel_id) == "no_text"
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    err = slack_error(client.chat_postMessage, channel=channel_id, text="t", blocks=long_section)
    assert err.response["error"] == "invalid_blocks"
    # As Slack answers: the problems bare in `errors`, and prefixed in response_metadata.messages.
    assert err.response["errors"] == ["failed to match all allowed schemas [json-pointer:/blocks/0/text]",
                                      "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
    assert err.response["response_metadata"]["messages"] == [f"[ERROR] {e}" for e in err.response["errors"]]
    too_many = [{"type": "divider"}] * 51
    assert error_code(client.chat_postMessage, channel=channel_id, text="t", blocks=too_many) == "invalid_blocks"
    assert error_code(client.chat_postMessage, channel="C0NOPE", text="t") == "channel_not_found"
    assert sim.messages(channel_id) == []


def test_block_kit_refusals_post_nothing(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = sim.add_channel("inc-bk", members=[ALICE])
    # /incident timeline page 2 as it once was: two buttons sharing an action_id in one block.
    pages = [{"type": "actions", "block_id": "timeline_pages", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "◀ Earlier"}, "action_id": "page", "value": "1"},
        {"type": "button", "text": {"type": "plain_text", "text": "Later ▶"}, "action_id": "page", "value": "3"}]}]
    duplicate = '[ERROR] `action_id` "page" already exists [json-pointer:/blocks/0/elements/1/action_id]'
    err = slack_error(client.chat_postMessage, channel=channel_id, text="Timeline", blocks=pages)
    assert (err.response["error"], err.response["response_metadata"]["messages"]) == ("invalid_blocks", [duplicate])
    err = slack_error(client.chat_postEphemeral, channel=channel_id, user=ALICE, text="Timeline", blocks=pages)
    assert (err.response["error"], err.response["response_metadata"]["messages"]) == ("invalid_blocks", [duplicate])
    assert sim.messages(channel_id) == [] and sim.ephemerals() == []

    ts = client.chat_postMessage(channel=channel_id, text="Timeline")["ts"]
    twice = [{"type": "divider", "block_id": "d"}, {"type": "divider", "block_id": "d"}]
    err = slack_error(client.chat_update, channel=channel_id, ts=ts, text="Timeline", blocks=twice)
    assert err.response["response_metadata"]["messages"] == [
        '[ERROR] `block_id` "d" already exists [json-pointer:/blocks/1/block_id]']
    assert "blocks" not in sim.messages(channel_id)[0] and "edited" not in sim.messages(channel_id)[0]
    attachments = [{"text": "a"}] * 101
    assert error_code(client.chat_postMessage, channel=channel_id, text="t", attachments=attachments) == \
        "too_many_attachments"


def test_text_over_40000_characters_is_posted_cut_with_a_warning(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = sim.add_channel("inc-long", members=[ALICE])
    long_text = "x" * 40_000 + "tail"
    resp = client.chat_postMessage(channel=channel_id, text=long_text)
    assert resp["warning"] == "message_truncated"
    assert resp["response_metadata"] == {
        "messages": ["[WARN] Your message was truncated but still posted. "
                     "The `text` field accepts up to 40,000 characters."],
        "warnings": ["message_truncated"]}
    assert sim.messages(channel_id)[0]["text"] == "x" * 40_000
    updated = client.chat_update(channel=channel_id, ts=resp["ts"], text=long_text)
    assert updated["warning"] == "message_truncated" and updated["text"] == "x" * 40_000
    ephemeral = client.chat_postEphemeral(channel=channel_id, user=ALICE, text=long_text)
    assert ephemeral["response_metadata"]["warnings"] == ["message_truncated"]
    assert sim.ephemerals()[0]["text"] == "x" * 40_000
    assert "warning" not in client.chat_postMessage(channel=channel_id, text="x" * 40_000)


def test_not_in_channel_until_joined(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = sim.add_channel("general-ops", members=[ALICE], bot_is_member=False)
    assert error_code(client.chat_postMessage, channel=channel_id, text="hello") == "not_in_channel"
    assert sim.channel(channel_id)["is_member"] is False

    joined = client.conversations_join(channel=channel_id)
    assert joined["channel"]["is_member"] is True and "warning" not in joined
    assert client.conversations_join(channel=channel_id)["warning"] == "already_in_channel"
    client.chat_postMessage(channel=channel_id, text="hello")
    assert [m["text"] for m in sim.messages(channel_id)] == ["hello"]

    private = sim.add_channel("secret", is_private=True, bot_is_member=False)
    err = slack_error(client.conversations_join, channel=private)
    assert err.response["error"] == "method_not_supported_for_channel_type"


def test_direct_message_by_user_id(sim: SlackSimulator, client: WebClient) -> None:
    first = client.chat_postMessage(channel=ALICE, text="You are the incident commander")
    second = client.chat_postMessage(channel=ALICE, text="Reminder")
    assert first["channel"].startswith("D") and first["channel"] == second["channel"]
    assert [m["text"] for m in sim.messages(first["channel"])] == ["You are the incident commander", "Reminder"]
    assert sim.channel(first["channel"])["user"] == ALICE
    assert sim.channels() == []  # IMs are not listed as channels
    assert error_code(client.chat_postMessage, channel="U0GHOST", text="hi") == "channel_not_found"


def test_thread_replies_and_ephemerals(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-6")["channel"]["id"]
    client.conversations_invite(channel=channel_id, users=ALICE)
    parent = client.chat_postMessage(channel=channel_id, text="timeline")["ts"]
    reply = client.chat_postMessage(channel=channel_id, text="10:02 paged", thread_ts=parent)
    assert reply["message"]["thread_ts"] == parent
    assert sim.messages(channel_id)[0]["reply_count"] == 1

    resp = client.chat_postEphemeral(channel=channel_id, user=ALICE, text="only you can see this")
    [ephemeral] = sim.ephemerals(channel_id)
    assert ephemeral == {"channel": channel_id, "user": ALICE, "text": "only you can see this",
                         "blocks": [], "message_ts": resp["message_ts"]}
    err = slack_error(client.chat_postEphemeral, channel=channel_id, user=BOB, text="x")
    assert err.response["error"] == "user_not_in_channel"
    assert len(sim.messages(channel_id)) == 2  # ephemerals are not channel messages


def test_users_info(sim: SlackSimulator, client: WebClient) -> None:
    alice = client.users_info(user=ALICE)["user"]
    assert alice["real_name"] == "Alice Martin" and alice["profile"]["display_name"] == "alice.m"
    assert alice["tz"] == "Europe/Paris" and alice["tz_offset"] in (3600, 7200) and alice["is_bot"] is False
    assert client.users_info(user="U0INCBOT")["user"]["is_bot"] is True
    assert error_code(client.users_info, user="U0GHOST") == "user_not_found"
    slackbot = client.users_info(user="USLACKBOT")["user"]  # every workspace has it, and Slack says it is no bot
    assert (slackbot["name"], slackbot["is_bot"], slackbot["deleted"]) == ("slackbot", False, False)
    sim.add_user("U0GONE", "gone", deleted=True)
    assert client.users_info(user="U0GONE")["user"]["deleted"] is True


def test_wrong_token_is_invalid_auth(sim: SlackSimulator) -> None:
    bad = WebClient(token="xoxb-wrong", base_url=sim.base_url, retry_handlers=[])
    err = slack_error(bad.auth_test)
    assert err.response["error"] == "invalid_auth"
    assert sim.calls[0].token == "xoxb-wrong" and sim.calls[0].response == {"ok": False, "error": "invalid_auth"}


def test_raw_requests_missing_token_and_unknown_method(sim: SlackSimulator) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, headers, body = raw_post(sim.base_url + "auth.test", b"", form)
    assert status == 200 and json.loads(body) == {"ok": False, "error": "not_authed"}
    status, _, body = raw_post(sim.base_url + "auth.test", f"token={sim.bot_token}".encode(), form)
    assert status == 200 and json.loads(body)["ok"] is True
    status, headers, body = raw_post(sim.base_url + "files.frobnicate", f"token={sim.bot_token}".encode(), form)
    assert status == 404 and headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(body) == {"ok": False, "error": "unknown_method", "req_method": "files.frobnicate"}


def test_ratelimited_without_and_with_retry_handler(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-rl")["channel"]["id"]
    sim.fail_next("chat.postMessage", "ratelimited", retry_after=1)
    err = slack_error(client.chat_postMessage, channel=channel_id, text="hi")
    assert err.response.status_code == 429
    assert err.response.headers["Retry-After"] == "1"
    assert err.response["error"] == "ratelimited"

    sim.fail_next("chat.postMessage", "ratelimited", retry_after=1)
    retrying = WebClient(token=sim.bot_token, base_url=sim.base_url,
                         retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    assert retrying.chat_postMessage(channel=channel_id, text="hi")["ok"] is True
    statuses = [c.http_status for c in sim.calls_to("chat.postMessage")]
    assert statuses == [429, 429, 200]  # one failure for the plain client, then a 429 + retry
    assert len(sim.messages(channel_id)) == 1


def test_scripted_server_error(sim: SlackSimulator, client: WebClient) -> None:
    sim.fail_next("auth.test", "internal_error", http_status=503, count=2)
    for _ in range(2):
        err = slack_error(client.auth_test)
        assert err.response.status_code == 503 and err.response["error"] == "internal_error"
    assert client.auth_test()["ok"] is True


def test_dropped_connection_is_retried(sim: SlackSimulator, client: WebClient) -> None:
    sim.fail_next("auth.test", drop_connection=True)
    with pytest.raises(ConnectionError):  # http.client.RemoteDisconnected
        client.auth_test()

    sim.fail_next("auth.test", drop_connection=True)
    retrying = WebClient(token=sim.bot_token, base_url=sim.base_url,
                         retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)])
    assert retrying.auth_test()["user_id"] == "U0INCBOT"
    assert [c.http_status for c in sim.calls_to("auth.test")] == [0, 0, 200]
    assert sim.calls[0].response == {}


def test_response_url_posts_are_recorded(sim: SlackSimulator) -> None:
    url = sim.response_url("declare")
    assert url.startswith(sim.url) and url.endswith("/response/declare")
    status, _, body = raw_post(url, json.dumps({"text": "Incident declared", "response_type": "in_channel"}).encode(),
                               {"Content-Type": "application/json"})
    assert (status, body) == (200, b"ok")
    raw_post(sim.response_url(), json.dumps({"text": "other"}).encode(), {"Content-Type": "application/json"})
    assert sim.responses("declare") == [{"text": "Incident declared", "response_type": "in_channel"}]
    assert [r["text"] for r in sim.responses()] == ["Incident declared", "other"]
    status, _, _ = raw_post(url, b"not json", {"Content-Type": "application/json"})
    assert status == 400 and len(sim.responses()) == 2


def test_views_open_and_update(sim: SlackSimulator, client: WebClient) -> None:
    modal = {"type": "modal", "callback_id": "declare", "title": {"type": "plain_text", "text": "Declare"},
             "submit": {"type": "plain_text", "text": "Go"},
             "blocks": [{"type": "input", "block_id": "title", "label": {"type": "plain_text", "text": "Title"},
                         "element": {"type": "plain_text_input", "action_id": "v"}}]}
    view = client.views_open(trigger_id="123.456.abc", view=modal)["view"]
    assert view["id"].startswith("V") and view["callback_id"] == "declare"
    assert view["blocks"] == modal["blocks"] and view["state"] == {"values": {}} and view["bot_id"] == "B0INCBOT"
    assert sim.views() == [view]

    assert error_code(client.views_open, trigger_id="", view=modal) == "invalid_trigger_id"
    untitled = {k: v for k, v in modal.items() if k != "title"}
    err = slack_error(client.views_open, trigger_id="1.2.3", view=untitled)
    assert err.response["error"] == "invalid_arguments"
    assert error_code(client.views_open, trigger_id="1.2.3", view={**modal, "type": "popup"}) == "invalid_arguments"

    updated = client.views_update(view_id=view["id"], view={**modal, "callback_id": "declare2"})["view"]
    assert updated["id"] == view["id"] and updated["callback_id"] == "declare2"
    assert [v["callback_id"] for v in sim.views()] == ["declare2"]
    assert error_code(client.views_update, view_id="V0NOPE", view=modal) == "not_found"


def test_views_refuse_what_slack_refuses(sim: SlackSimulator, client: WebClient) -> None:
    field = {"type": "input", "block_id": "title", "label": {"type": "plain_text", "text": "Title"},
             "element": {"type": "plain_text_input", "action_id": "v"}}
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Declare an incident"},
             "submit": {"type": "plain_text", "text": "Declare"}, "blocks": [field]}
    view = client.views_open(trigger_id="1.2.3", view=modal)["view"]

    long_title = {**modal, "title": {"type": "plain_text", "text": "Declare a new incident now"}}  # 26
    err = slack_error(client.views_open, trigger_id="1.2.3", view=long_title)
    assert (err.response["error"], err.response["response_metadata"]["messages"]) == (
        "invalid_arguments", ["[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"])
    no_submit = {k: v for k, v in modal.items() if k != "submit"}
    assert slack_error(client.views_open, trigger_id="1.2.3", view=no_submit).response["response_metadata"] == {
        "messages": ["[ERROR] missing required field: submit [json-pointer:/view]"]}
    twice = {**modal, "blocks": [field, field]}
    err = slack_error(client.views_update, view_id=view["id"], view=twice)
    assert err.response["response_metadata"]["messages"] == [
        '[ERROR] `block_id` "title" already exists [json-pointer:/view/blocks/1/block_id]']
    assert sim.views() == [view]  # nothing opened or changed by the refusals


def test_response_url_refuses_invalid_blocks_like_a_webhook(sim: SlackSimulator) -> None:
    webhook = WebhookClient(sim.response_url("declare"))  # what the bot answers slash commands with
    too_long = [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]
    resp = webhook.send(text="SEV1", blocks=too_long)
    assert (resp.status_code, resp.body) == (400, "invalid_blocks")
    assert (webhook.send(text="").status_code, webhook.send(text="").body) == (400, "no_text")
    assert sim.responses() == []
    assert webhook.send_dict({"delete_original": True}).status_code == 200
    long_text = webhook.send(text="y" * 40_001)
    assert (long_text.status_code, long_text.body) == (200, "ok")
    assert sim.responses("declare")[-1]["text"] == "y" * 40_000


def begin_upload(client: WebClient, content: bytes, filename: str = "notes.txt", **kwargs) -> tuple[str, str]:
    """Steps 1 and 2 of files_upload_v2 by hand: returns (file_id, upload_url)."""
    resp = client.files_getUploadURLExternal(filename=filename, length=len(content), **kwargs)
    status, _, body = raw_post(resp["upload_url"], content, {})
    assert (status, body) == (200, f"OK - {len(content)}".encode())
    return resp["file_id"], resp["upload_url"]


def test_files_upload_v2_shares_markdown_in_channel(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-50")["channel"]["id"]
    resp = client.files_upload_v2(channel=channel_id, content="# hello", filename="postmortem.md",
                                  title="Postmortem", initial_comment="Draft")
    assert [c.method for c in sim.calls] == [
        "conversations.create", "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    assert all(c.http_status == 200 for c in sim.calls)
    url_call = sim.calls_to("files.getUploadURLExternal")[0]
    assert url_call.params == {"filename": "postmortem.md", "length": "7"}
    assert url_call.response["upload_url"].startswith(f"{sim.url}/upload/v1/")
    upload = sim.calls_to("upload")[0]
    assert (upload.token, upload.params, upload.response) == (
        None, {"file_id": resp["file"]["id"], "length": 7}, {"ok": True, "body": "OK - 7"})

    file = resp["file"]
    assert resp["files"] == [file]
    assert file["id"].startswith("F") and len(file["id"]) == 11
    assert (file["name"], file["title"], file["size"]) == ("postmortem.md", "Postmortem", 7)
    assert (file["mimetype"], file["filetype"], file["pretty_type"]) == ("text/markdown", "markdown", "Markdown (raw)")
    assert (file["user"], file["mode"], file["is_external"], file["is_public"]) == ("U0INCBOT", "hosted", False, True)
    assert file["created"] == file["timestamp"] and abs(file["created"] - time.time()) < 5
    assert file["permalink"] == f"https://simulated.slack.com/files/U0INCBOT/{file['id']}/postmortem.md"
    assert file["url_private"] == f"https://simulated.slack.com/files-pri/T0SIMULATE-{file['id']}/postmortem.md"
    assert file["url_private_download"].endswith(f"{file['id']}/download/postmortem.md")
    assert file["channels"] == [channel_id] and file["groups"] == [] and file["ims"] == []

    [message] = sim.messages(channel_id)
    assert (message["text"], message["upload"], message["user"], message["bot_id"]) == (
        "Draft", True, "U0INCBOT", "B0INCBOT")
    assert [f["id"] for f in message["files"]] == [file["id"]]
    assert message["files"][0]["permalink"] == file["permalink"] and "shares" not in message["files"][0]
    [share] = file["shares"]["public"][channel_id]
    assert share["ts"] == message["ts"] and share["channel_name"] == "inc-50"
    assert "private" not in file["shares"]

    [stored] = sim.files()
    assert stored == {**file, "content": "# hello"}
    assert sim.file_content(file["id"]) == b"# hello"


def test_files_info(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = sim.add_channel("inc-51", is_private=True, members=[ALICE])
    file = client.files_upload_v2(channel=channel_id, content="timeline", filename="timeline.txt")["file"]
    info = client.files_info(file=file["id"])
    assert info["content"] == "timeline" and info["comments"] == []
    assert info["file"]["id"] == file["id"] and info["file"]["title"] == "timeline.txt"  # title defaults to name
    assert (info["file"]["filetype"], info["file"]["mimetype"]) == ("text", "text/plain")
    assert list(info["file"]["shares"]["private"]) == [channel_id] and info["file"]["groups"] == [channel_id]
    assert info["file"]["is_public"] is False
    assert sim.calls_to("files.info")[0].params["file"] == file["id"]

    binary = client.files_upload_v2(channel=channel_id, content=b"\x89PNG\xff", filename="graph.png")["file"]
    assert (binary["filetype"], binary["mimetype"]) == ("binary", "application/octet-stream")
    assert "content" not in client.files_info(file=binary["id"]).data
    assert sim.file_content(binary["id"]) == b"\x89PNG\xff"

    pending, _ = begin_upload(client, b"not completed")
    assert error_code(client.files_info, file=pending) == "file_not_found"
    assert error_code(client.files_info, file="F0NOPE0000") == "file_not_found"


def a_png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def test_several_files_share_one_message_and_a_png_is_an_image_only_when_its_bytes_are(
    sim: SlackSimulator, client: WebClient
) -> None:
    channel_id = client.conversations_create(name="inc-52")["channel"]["id"]
    png = a_png(1200, 600)
    resp = client.files_upload_v2(channel=channel_id, initial_comment="Draft", file_uploads=[
        {"content": "# Draft\n![Connections](chart.png)", "filename": "draft.md", "title": "The draft"},
        {"file": png, "filename": "chart.png", "title": "The chart", "alt_txt": "Connections over two hours"},
        {"file": png[:-12], "filename": "cut.png"},  # its IEND chunk lost: no image
        {"file": png[:60] + b"\x00" + png[61:], "filename": "corrupt.png"},  # a byte changed: a CRC no longer matches
    ])
    assert [c.method for c in sim.calls[1:]] == ["files.getUploadURLExternal"] * 4 + ["upload"] * 4 + [
        "files.completeUploadExternal"]
    [complete] = sim.calls_to("files.completeUploadExternal")
    assert [f["title"] for f in complete.params["files"]] == ["The draft", "The chart", "cut.png", "corrupt.png"]
    assert "file" not in resp.data  # files_upload_v2 sets `file` only for a single file
    draft, chart, cut, corrupt = resp["files"]
    assert [f["name"] for f in resp["files"]] == ["draft.md", "chart.png", "cut.png", "corrupt.png"]
    assert (chart["filetype"], chart["pretty_type"], chart["mimetype"]) == ("png", "PNG", "image/png")
    assert (chart["original_w"], chart["original_h"], chart["size"]) == (1200, 600, len(png))
    assert (chart["thumb_360_w"], chart["thumb_360_h"], chart["thumb_1024_w"], chart["thumb_1024_h"]) == (360, 180, 1024, 512)
    assert chart["alt_txt"] == "Connections over two hours" and chart["title"] == "The chart"
    for broken in (cut, corrupt):
        assert (broken["filetype"], broken["mimetype"]) == ("binary", "application/octet-stream")
        assert "original_w" not in broken and "thumb_360" not in broken
    assert sim.file_content(chart["id"]) == png and sim.file_content(cut["id"]) == png[:-12]
    assert sim.file_content(draft["id"]) == b"# Draft\n![Connections](chart.png)"
    [message] = sim.messages(channel_id)
    assert message["text"] == "Draft" and [f["id"] for f in message["files"]] == [f["id"] for f in resp["files"]]
    assert message["files"][1]["original_w"] == 1200
    small = client.files_upload_v2(channel=channel_id, file=a_png(200, 100), filename="small.png")["file"]
    assert (small["original_w"], small["thumb_360_w"], small["thumb_360_h"]) == (200, 200, 100)  # never scaled up
    assert "thumb_480" not in small


def test_files_upload_v2_in_thread_and_without_channel(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-52")["channel"]["id"]
    parent = client.chat_postMessage(channel=channel_id, text="timeline")["ts"]
    file = client.files_upload_v2(channel=channel_id, content="a\nb", filename="log.txt", thread_ts=parent)["file"]
    parent_message, reply = sim.messages(channel_id)
    assert reply["thread_ts"] == parent and reply["files"][0]["id"] == file["id"] and reply["text"] == ""
    assert parent_message["reply_count"] == 1
    assert file["shares"]["public"][channel_id][0]["thread_ts"] == parent

    private = client.files_upload_v2(content="only mine", filename="draft.md")["file"]  # no channel: stays private
    assert private["shares"] == {} and private["channels"] == [] and private["is_public"] is False
    assert [f["id"] for f in sim.files()] == [file["id"], private["id"]]
    assert len(sim.messages(channel_id)) == 2


def test_files_share_to_dm_by_user_id(sim: SlackSimulator, client: WebClient) -> None:
    file_id, _ = begin_upload(client, b"for alice")
    resp = client.files_completeUploadExternal(files=[{"id": file_id, "title": "Handover"}], channels=[ALICE])
    [im] = resp["files"][0]["ims"]
    assert im.startswith("D") and sim.channel(im)["user"] == ALICE
    assert [m["files"][0]["title"] for m in sim.messages(im)] == ["Handover"]


def test_files_upload_v2_channel_errors(sim: SlackSimulator, client: WebClient) -> None:
    foreign = sim.add_channel("ops", members=[ALICE], bot_is_member=False)
    archived = client.conversations_create(name="inc-old")["channel"]["id"]
    client.conversations_archive(channel=archived)
    cases = [("C0NOPE0000", "channel_not_found"), (foreign, "not_in_channel"), (archived, "is_archived")]
    for channel, error in cases:
        assert error_code(client.files_upload_v2, channel=channel, content="x", filename="x.md") == error
    err = slack_error(client.files_upload_v2, channel="general", content="x", filename="x.md")
    assert err.response["error"] == "invalid_arguments"
    assert "[json-pointer:/channel_id]" in err.response["response_metadata"]["messages"][0]
    assert sim.files() == [] and sim.messages(foreign) == []

    # A failed completion changes nothing: the same upload can still be shared elsewhere.
    file_id = sim.calls_to("files.getUploadURLExternal")[-1].response["file_id"]
    target = client.conversations_create(name="inc-53")["channel"]["id"]
    assert client.files_completeUploadExternal(files=[{"id": file_id}], channel_id=target)["files"][0]["id"] == file_id


def test_complete_upload_file_errors(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-54")["channel"]["id"]
    complete = client.files_completeUploadExternal
    assert error_code(complete, files=[{"id": "F0NOPE0000"}], channel_id=channel_id) == "file_not_found"

    file_id, upload_url = begin_upload(client, b"report")
    assert complete(files=[{"id": file_id, "title": "Report"}], channel_id=channel_id)["ok"] is True
    assert error_code(complete, files=[{"id": file_id}], channel_id=channel_id) == "file_not_found"  # only once
    assert raw_post(upload_url, b"again", {})[0] == 404  # completion consumed the upload URL
    assert len(sim.messages(channel_id)) == 1 and len(sim.files()) == 1

    never_sent = client.files_getUploadURLExternal(filename="a.txt", length=3)["file_id"]
    assert error_code(complete, files=[{"id": never_sent}]) == "file_not_found"
    short = client.files_getUploadURLExternal(filename="b.txt", length=10)
    status, _, body = raw_post(short["upload_url"], b"abc", {})
    assert (status, body) == (200, b"OK - 3")  # the upload URL takes any size...
    assert sim.file_content(short["file_id"]) == b"abc"
    assert error_code(complete, files=[{"id": short["file_id"]}]) == "file_not_found"  # ...completion does not
    with pytest.raises(KeyError):
        sim.file_content(never_sent)

    for files, problem in [("", "missing required field: files"), ("[{oops", "must be an array"),
                           ("[]", "at least 1 items"), ('[{"title": "x"}]', "missing required field: id")]:
        err = slack_error(client.api_call, "files.completeUploadExternal", params={"files": files})
        assert err.response["error"] == "invalid_arguments", files
        assert problem in err.response["response_metadata"]["messages"][0]
    assert len(sim.files()) == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [({"length": 5}, "[ERROR] missing required field: filename"),
     ({"filename": "a.md"}, "[ERROR] missing required field: length"),
     ({"filename": "a.md", "length": "many"}, "[ERROR] must be an integer [json-pointer:/length]"),
     ({"filename": "a.md", "length": "1.5"}, "[ERROR] must be an integer [json-pointer:/length]"),
     ({"filename": "a.md", "length": 0}, "[ERROR] must be greater than 1 [json-pointer:/length]"),
     ({"filename": "a.md", "length": -3}, "[ERROR] must be greater than 1 [json-pointer:/length]")],
)
def test_get_upload_url_rejects_bad_arguments(
    sim: SlackSimulator, client: WebClient, params: dict[str, object], message: str
) -> None:
    err = slack_error(client.api_call, "files.getUploadURLExternal", params=params)
    assert err.response["error"] == "invalid_arguments"
    assert err.response["response_metadata"]["messages"] == [message]


def test_get_upload_url_other_errors(sim: SlackSimulator, client: WebClient) -> None:
    get_url = client.files_getUploadURLExternal
    assert error_code(get_url, filename="a.png", length=3, alt_txt="x" * 1001) == "alt_txt_too_large"
    assert error_code(get_url, filename="a.txt", length=3, snippet_type="cobol") == "unknown_snippet_type"
    assert error_code(get_url, filename="a.txt", length=2_000_000, snippet_type="text") == "snippet_too_large"
    err = slack_error(client.files_getUploadURLExternal, filename=None, length=None)  # slack_sdk drops Nones
    assert len(err.response["response_metadata"]["messages"]) == 2
    bad = WebClient(token="xoxb-wrong", base_url=sim.base_url, retry_handlers=[])
    assert error_code(bad.files_getUploadURLExternal, filename="a.txt", length=3) == "invalid_auth"


def test_snippet_upload(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-55")["channel"]["id"]
    file = client.files_upload_v2(channel=channel_id, content="print(1)", filename="fix.py",
                                  snippet_type="python", alt_txt="the fix")["file"]
    assert (file["mode"], file["filetype"], file["mimetype"]) == ("snippet", "python", "text/plain")
    assert file["editable"] is True and file["alt_txt"] == "the fix"


def test_upload_url_failures_and_unknown_urls(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-56")["channel"]["id"]
    status, headers, body = raw_post(f"{sim.url}/upload/v1/bogus", b"data", {})
    assert (status, body) == (404, b"not_found") and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert sim.calls_to("upload")[-1].params == {"length": 4}

    sim.fail_next("upload", "internal_error", http_status=503)
    with pytest.raises(urllib.error.HTTPError) as info:  # slack_sdk lets the upload URL's error through
        client.files_upload_v2(channel=channel_id, content="x", filename="x.md")
    assert info.value.code == 503 and info.value.read() == b"internal_error"
    assert sim.calls_to("upload")[-1].response == {"ok": False, "error": "internal_error"}
    assert sim.calls_to("files.completeUploadExternal") == [] and sim.files() == []

    sim.fail_next("upload", drop_connection=True)
    with pytest.raises(ConnectionError):
        client.files_upload_v2(channel=channel_id, content="x", filename="x.md")
    assert sim.calls_to("upload")[-1].http_status == 0

    sim.fail_next("files.completeUploadExternal", "ratelimited", retry_after=2)
    err = slack_error(client.files_upload_v2, channel=channel_id, content="x", filename="x.md")
    assert err.response.status_code == 429 and err.response.headers["Retry-After"] == "2"
    assert client.files_upload_v2(channel=channel_id, content="x", filename="x.md")["ok"] is True
    assert len(sim.files()) == 1 and len(sim.messages(channel_id)) == 1


def test_reset_forgets_files(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-57")["channel"]["id"]
    file_id = client.files_upload_v2(channel=channel_id, content="x", filename="x.md")["file"]["id"]
    sim.reset()
    assert sim.files() == []
    assert error_code(client.files_info, file=file_id) == "file_not_found"
    assert sim.messages(channel_id)[0]["files"][0]["id"] == file_id  # the workspace keeps its messages


def test_wait_for_returns_value_or_times_out(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-w")["channel"]["id"]
    threading.Timer(0.05, lambda: client.chat_postMessage(channel=channel_id, text="late")).start()
    messages = sim.wait_for(lambda s: s.messages(channel_id), timeout=5)
    assert [m["text"] for m in messages] == ["late"]

    started = time.monotonic()
    with pytest.raises(AssertionError) as info:
        sim.wait_for(lambda s: s.channel_by_name("never"), timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 2
    assert "conversations.create -> ok" in str(info.value)
    assert "chat.postMessage -> ok" in str(info.value)


def test_concurrent_posts_get_distinct_ts(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-load")["channel"]["id"]
    results: list[str] = []
    errors: list[BaseException] = []

    def post(i: int) -> None:
        try:
            results.append(client.chat_postMessage(channel=channel_id, text=f"msg {i}")["ts"])
        except BaseException as exc:  # noqa: BLE001 - surfaced below; a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(results) == 50 and len(set(results)) == 50
    stored = [m["ts"] for m in sim.messages(channel_id)]
    assert stored == sorted(stored, key=float) and set(stored) == set(results)
    assert len(sim.calls_to("chat.postMessage")) == 50


def test_reset_keeps_workspace(sim: SlackSimulator, client: WebClient) -> None:
    channel_id = client.conversations_create(name="inc-r")["channel"]["id"]
    sim.fail_next("auth.test", "ratelimited")
    sim.reset()
    assert sim.calls == [] and sim.responses() == []
    assert client.auth_test()["ok"] is True  # the scripted failure was forgotten
    assert sim.channel(channel_id)["name"] == "inc-r"


def test_stop_is_idempotent() -> None:
    simulator = SlackSimulator().start()
    url = simulator.base_url
    simulator.stop()
    simulator.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "auth.test", timeout=2)
