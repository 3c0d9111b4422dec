"""Timeline capture through signed Slack events, and `/incident timeline` and notes, on both stores."""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

from bot.incidents.values import EntryKind
from handlers import timeline_view
from tests.conftest import ALICE, BOB, CAROL, GENERAL, RunningBot

_counter = itertools.count(1)


def new_ts(offset: float = 0.0) -> str:
    """A Slack ts near now, unique within the test run."""
    return f"{int(time.time() + offset)}.{next(_counter):06d}"


def message(channel: str, text: str, *, user: str = ALICE, ts: str | None = None, **extra: Any) -> dict[str, Any]:
    ts = ts or new_ts()
    return {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "event_ts": ts,
            "channel_type": "channel", "team": "T0SIMULATE", **extra}


def captured(bot: RunningBot, channel: dict) -> list:
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    return [i for i in bot.runtime.services.timeline.items(incident.id) if i.kind is EntryKind.MESSAGE]


def send(bot: RunningBot, event: dict[str, Any], **kwargs: Any):
    sent = bot.requests.event(event, **kwargs)
    assert sent.response.status_code == 200, sent.response.text
    return sent


def timeline_text(bot: RunningBot, channel: dict, user: str = ALICE) -> str:
    sent = bot.requests.command("timeline", user_id=user, channel_id=channel["id"], response_url=bot.slack.response_url("t"))
    reply = sent.response.json()
    assert reply["response_type"] == "ephemeral"
    return json.dumps(reply["blocks"], ensure_ascii=False)


def test_messages_are_kept_in_ts_order_with_author_permalink_and_files(bot: RunningBot) -> None:
    channel = bot.declare()
    first, second, third = new_ts(-30), new_ts(-20), new_ts(-10)
    send(bot, message(channel["id"], "third: rolling back", ts=third, user=BOB))
    send(bot, message(channel["id"], "first: 5xx on checkout", ts=first))
    send(bot, message(channel["id"], "second: graph attached", ts=second, subtype="file_share",
                      files=[{"id": "F0GRAPH", "name": "pool.png", "title": "Pool usage", "permalink": "https://x/f"}]))

    entries = captured(bot, channel)
    assert [e.slack_ts for e in entries] == [first, second, third]
    assert [e.actor_id for e in entries] == [ALICE, ALICE, BOB]
    assert entries[1].files == [{"id": "F0GRAPH", "name": "pool.png", "title": "Pool usage", "permalink": "https://x/f"}]
    assert entries[0].permalink == f"https://simulated.slack.com/archives/{channel['id']}/p{first.replace('.', '')}"

    shown = timeline_text(bot, channel)
    assert shown.index("first: 5xx") < shown.index("second: graph") < shown.index("third: rolling back")
    assert ":paperclip: Pool usage" in shown


def test_thread_replies_are_linked_to_their_parent(bot: RunningBot) -> None:
    channel = bot.declare()
    parent = new_ts(-5)
    send(bot, message(channel["id"], "Is it the network?", ts=parent))
    reply_ts = new_ts()
    send(bot, message(channel["id"], "No: latency between hosts is flat", ts=reply_ts, user=BOB, thread_ts=parent,
                      parent_user_id=ALICE))

    parent_entry, reply = captured(bot, channel)
    assert reply.thread_ts == parent and reply.is_reply and not parent_entry.is_reply
    assert reply.permalink.endswith(f"?thread_ts={parent}&cid={channel['id']}")
    assert "↳ *<@U0BOB>*: No: latency" in timeline_text(bot, channel)


def test_edits_keep_the_earlier_text_and_deletions_leave_the_timeline(bot: RunningBot) -> None:
    channel = bot.declare()
    ts, gone = new_ts(-5), new_ts(-4)
    send(bot, message(channel["id"], "pool at 80%", ts=ts))
    send(bot, message(channel["id"], "oops wrong channel", ts=gone, user=BOB))
    edit_ts = new_ts()
    send(bot, {"type": "message", "subtype": "message_changed", "channel": channel["id"], "hidden": True, "ts": edit_ts,
               "event_ts": edit_ts,
               "message": {"type": "message", "user": ALICE, "text": "pool at 100%", "ts": ts, "edited": {"user": ALICE, "ts": edit_ts}},
               "previous_message": {"type": "message", "user": ALICE, "text": "pool at 80%", "ts": ts}})
    delete_ts = new_ts()
    send(bot, {"type": "message", "subtype": "message_deleted", "channel": channel["id"], "hidden": True, "ts": delete_ts,
               "event_ts": delete_ts, "deleted_ts": gone,
               "previous_message": {"type": "message", "user": BOB, "text": "oops wrong channel", "ts": gone}})

    edited, deleted = captured(bot, channel)
    assert edited.text == "pool at 100%" and edited.edited
    assert [e["text"] for e in edited.earlier_texts] == ["pool at 80%"]
    assert deleted.deleted and deleted.text == "oops wrong channel"
    shown = timeline_text(bot, channel)
    assert "pool at 100%" in shown and "_(edited)_" in shown
    assert "oops wrong channel" not in shown and "1 deleted message left out" in shown


def test_pushpins_and_pins_mark_key_events_until_every_mark_is_removed(bot: RunningBot) -> None:
    channel = bot.declare()
    ts, other = new_ts(-5), new_ts(-4)
    send(bot, message(channel["id"], "connections: 498/500", ts=ts))
    send(bot, message(channel["id"], "restarting app pods", ts=other))

    def reaction(kind: str, user: str, target: str = ts) -> dict[str, Any]:
        return {"type": kind, "user": user, "reaction": "pushpin", "item_user": ALICE,
                "item": {"type": "message", "channel": channel["id"], "ts": target}, "event_ts": new_ts()}

    send(bot, reaction("reaction_added", BOB))
    send(bot, reaction("reaction_added", CAROL))
    send(bot, reaction("reaction_removed", BOB))
    assert captured(bot, channel)[0].key_event  # Carol's pushpin still stands
    send(bot, reaction("reaction_removed", CAROL))
    assert not captured(bot, channel)[0].key_event

    send(bot, {"type": "reaction_added", "user": BOB, "reaction": "eyes", "item_user": ALICE,
               "item": {"type": "message", "channel": channel["id"], "ts": other}, "event_ts": new_ts()})
    assert not captured(bot, channel)[1].key_event

    pin = {"type": "pin_added", "user": BOB, "channel_id": channel["id"], "event_ts": new_ts(),
           "item": {"type": "message", "channel": channel["id"], "created_by": BOB,
                    "message": {"type": "message", "user": ALICE, "text": "restarting app pods", "ts": other}}}
    send(bot, pin)
    assert captured(bot, channel)[1].key_event
    assert ":pushpin: *<@U0ALICE>*: restarting app pods" in timeline_text(bot, channel)
    send(bot, {**pin, "type": "pin_removed", "event_ts": new_ts()})
    assert not captured(bot, channel)[1].key_event


def test_retried_and_doubled_deliveries_store_each_message_once(bot: RunningBot) -> None:
    channel = bot.declare()
    event = message(channel["id"], "DB CPU 40%, not the cause")
    first = send(bot, event, event_id="Ev0RETRY01")
    assert bot.requests.retry(first, 1).response.status_code == 200
    assert bot.requests.retry(first, 2).response.status_code == 200
    # The same message by a second path: an app_mention event with its own event id.
    send(bot, {**event, "type": "app_mention"}, event_id="Ev0MENTION1")

    assert [e.text for e in captured(bot, channel)] == ["DB CPU 40%, not the cause"]


def test_two_hundred_concurrent_messages_lose_nothing_and_double_nothing(bot: RunningBot) -> None:
    channel = bot.declare()
    events = [message(channel["id"], f"message {i}", user=(ALICE, BOB, CAROL)[i % 3]) for i in range(200)]
    statuses: list[int] = []
    lock = threading.Lock()

    def deliver(chunk: list[dict[str, Any]]) -> None:
        for event in chunk:
            code = bot.requests.event(event).response.status_code
            with lock:
                statuses.append(code)

    threads = [threading.Thread(target=deliver, args=(events[i::10],)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert statuses == [200] * 200
    entries = captured(bot, channel)
    assert sorted(e.text for e in entries) == sorted(e["text"] for e in events)
    assert [e.slack_ts for e in entries] == sorted(e["ts"] for e in events)


def test_other_channels_closed_incidents_and_bots_are_not_recorded(bot: RunningBot) -> None:
    channel = bot.declare()
    send(bot, message(GENERAL, "lunch?"))
    send(bot, {**message(channel["id"], "Deploy 4512 finished"), "bot_id": "B0CIBOT", "subtype": "bot_message", "username": "ci"})
    summary_ts = bot.slack.pins(channel["id"])[0]
    send(bot, {"type": "message", "subtype": "message_changed", "channel": channel["id"], "ts": new_ts(), "hidden": True,
               "message": {"type": "message", "user": "U0INCBOT", "bot_id": "B0INCBOT", "text": "summary", "ts": summary_ts}})
    assert captured(bot, channel) == []

    bot.requests.command("close", user_id=ALICE, channel_id=channel["id"])
    bot.settle()
    send(bot, message(channel["id"], "after close"))
    assert captured(bot, channel) == []


def test_an_unknown_user_is_recorded_and_known_ones_are_named(bot: RunningBot) -> None:
    channel = bot.declare()
    send(bot, message(channel["id"], "I am new here", user="U0GHOST"))
    send(bot, message(channel["id"], "hello", user=BOB))
    bot.settle()

    assert [e.actor_id for e in captured(bot, channel)] == ["U0GHOST", BOB]
    assert any(c.response.get("error") == "user_not_found" for c in bot.slack.calls_to("users.info"))
    names = bot.runtime.services.users._people.names({"U0GHOST", BOB, ALICE})
    assert names == {BOB: "bob", ALICE: "alice"}


def test_notes_are_typed_entries_and_bad_ones_say_how(bot: RunningBot) -> None:
    channel = bot.declare()

    def note(text: str) -> dict[str, Any]:
        sent = bot.requests.command(text, user_id=BOB, channel_id=channel["id"], response_url=bot.slack.response_url("n"))
        bot.settle()
        return sent.response.json() if sent.response.content else {}

    note("note misleading Tuned the DB buffers: no change")
    note("note hypothesis Network latency between web and DB?")
    note("note Somebody should look at the pool")
    bad = note("note escalation")

    assert "The escalation note needs some text." in bad["text"]
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    notes = [(i.kind, i.text) for i in bot.runtime.services.timeline.items(incident.id) if i.kind not in (EntryKind.DECLARED,)]
    assert notes == [
        (EntryKind.MISLEADING, "Tuned the DB buffers: no change"),
        (EntryKind.HYPOTHESIS, "Network latency between web and DB?"),
        (EntryKind.NOTE, "Somebody should look at the pool"),
    ]
    assert any("misleading note to the timeline" in m["text"] for m in bot.slack.messages(channel["id"]))
    assert "*Misleading* by <@U0BOB>: Tuned the DB buffers" in timeline_text(bot, channel)


def test_long_timelines_page_within_slack_limits_and_nothing_is_cut(bot: RunningBot) -> None:
    channel = bot.declare()
    texts = [f"step {i:03d} " + "details " * 40 for i in range(150)]
    huge = "start " + "x" * 9000 + " finish"
    base = time.time() - 1000
    for i, text in enumerate([*texts, huge]):
        send(bot, message(channel["id"], text, ts=f"{int(base) + i}.{next(_counter):06d}"))

    first = bot.requests.command("timeline", user_id=ALICE, channel_id=channel["id"], response_url=bot.slack.response_url("pages"))
    pages = [first.response.json()]
    while True:
        buttons = [e for b in pages[-1]["blocks"] if b["type"] == "actions" for e in b["elements"] if "Later" in e["text"]["text"]]
        if not buttons:
            break
        assert buttons[0]["action_id"] == timeline_view.LATER_ACTION
        bot.requests.block_action(buttons[0]["action_id"], buttons[0]["value"], user_id=ALICE, channel_id=channel["id"],
                                  response_url=bot.slack.response_url("pages"))
        bot.settle()
        pages.append(bot.slack.responses("pages")[-1])
        assert pages[-1]["replace_original"] is True

    assert len(pages) > 3
    for page in pages:
        assert len(page["blocks"]) <= 50
        assert all(len(b["text"]["text"]) <= 3000 for b in page["blocks"] if b["type"] == "section")
    everything = "\n".join(b["text"]["text"] for p in pages for b in p["blocks"] if b["type"] == "section")
    for text in texts:
        assert everything.count(text.strip()) == 1
    assert "start " in everything and " finish" in everything and "_…continued:_" in everything
    assert everything.count("x") >= 9000
