"""Recording the incident channel: Slack events in, timeline entries out.

An event is acknowledged only after it is stored: listeners run before Bolt answers. While the store is
down it is stored in the local spool instead, and written to the store when it is back (see bot/spool.py).
Events from channels that are no open incident's are acknowledged and dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext

from bot.incidents.commands import without_nul
from bot.timeline import Captured, ChannelMessage, ts_to_datetime
from handlers.metrics import Children
from handlers.services import Services

log = logging.getLogger(__name__)

CAPTURED_SUBTYPES = {None, "thread_broadcast", "file_share", "me_message"}
KEY_EVENT_REACTIONS = {"pushpin"}
EVENT_TYPES = ("message", "app_mention", "reaction_added", "reaction_removed", "pin_added", "pin_removed")


class Capture:
    """Every timeline event, to the store: what Bolt's listener and the HTTP edge's fast path for channel
    messages (handlers/http.py) both call. `handle` returns once the event is stored (or needs no
    storing) and raises when it could be neither stored nor spooled: the caller must then not
    acknowledge with a 200, so that Slack retries."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._timeline = services.timeline
        self._counted = Children(services.metrics.events)  # by what and outcome

    def handle(self, event: dict[str, Any], event_id: object, bot_user_id: str | None) -> None:
        """One event of a kind in `EVENT_TYPES`, from an `event_callback` payload with that `event_id`."""
        key = f"event:{event_id}"
        match event.get("type"):
            case "message":
                self._on_message(event, key)
            case "app_mention":  # the same message also arrives as a message event: one entry by its ts
                self._capture(event, key)
            case "reaction_added" | "reaction_removed":
                self._on_reaction(event, key, bot_user_id)
            case "pin_added" | "pin_removed":
                self._on_pin(event, key, bot_user_id)

    def _on_message(self, event: dict[str, Any], key: str) -> None:
        subtype = event.get("subtype")
        if subtype == "message_changed":
            self._on_change(event, key)
        elif subtype == "message_deleted":
            if not _from_a_bot(event.get("previous_message") or {}):
                deleted_at = ts_to_datetime(event.get("event_ts") or event["ts"])
                self._stored(lambda: self._timeline.delete(event["channel"], event["deleted_ts"], deleted_at, key), "deletion")
        elif subtype in CAPTURED_SUBTYPES:
            self._capture(event, key)

    def _on_change(self, event: dict[str, Any], key: str) -> None:
        """Slack: the `message_changed` event: `message` is the message as it reads now ("look for an
        existing message with the same message.ts"), `previous_message` as it read before, with the same
        ts. When `message` lacks its ts (or author), the previous message's are the same message's; an
        event naming no message at all is logged and acknowledged (Slack would only send it again)."""
        after, before = event.get("message") or {}, event.get("previous_message") or {}
        if _from_a_bot(after) or _from_a_bot(before):
            return
        ts = after.get("ts") or before.get("ts")
        changed = {**after, "ts": ts, "user": after.get("user") or before.get("user")}
        message = _channel_message(changed, event.get("channel", ""), self._services.workspace_url) if ts else None
        if message is None:
            log.warning("message_changed in %s (%s) not recorded: it names no %s", event.get("channel"), key,
                        "message ts" if not ts else "author or channel")
            return
        edited = str((after.get("edited") or {}).get("ts") or event.get("event_ts") or event.get("ts") or ts)
        self._stored(lambda: self._timeline.edit(message, ts_to_datetime(edited), key), "edit")

    def _capture(self, event: dict[str, Any], key: str) -> None:
        message = _channel_message(event, event.get("channel", ""), self._services.workspace_url)
        if message is not None and message.is_empty:  # an empty entry would only puzzle its readers
            log.info("message %s in %s by %s not recorded: no text, file or forwarded message (%s)",
                     message.ts, message.channel_id, message.user_id, key)
            return
        if message is not None and self._stored(lambda: self._timeline.capture(message, key), "message") is Captured.STORED:
            self._services.users.learn(message.user_id)

    def _on_reaction(self, event: dict[str, Any], key: str, bot_user_id: str | None) -> None:
        item = event.get("item") or {}
        if event.get("reaction") not in KEY_EVENT_REACTIONS or item.get("type") != "message":
            return
        if event.get("item_user") == bot_user_id:
            return  # a pushpin on the bot's own post: its actions are entries already
        on, mark = event["type"] == "reaction_added", f"reaction:{event.get('user')}"
        self._stored(lambda: self._timeline.mark_key_event(item["channel"], item["ts"], mark, on, key), "key_event")

    def _on_pin(self, event: dict[str, Any], key: str, bot_user_id: str | None) -> None:
        item = event.get("item") or {}
        message = item.get("message") or {}
        channel = event.get("channel_id") or item.get("channel")
        if item.get("type") != "message" or not message.get("ts") or not channel:
            return
        if _from_a_bot(message) or message.get("user") == bot_user_id:
            return
        on = event["type"] == "pin_added"
        self._stored(lambda: self._timeline.mark_key_event(channel, message["ts"], "pin", on, key), "key_event")

    def _stored(self, record: Callable[[], Captured], what: str) -> Captured:
        outcome = record()
        self._counted(what, outcome.value).inc()
        return outcome


def register(app: App, services: Services) -> None:
    capture = Capture(services)

    # One listener for every event type the timeline uses: Bolt matches a request against each listener
    # in turn, and this is the busiest of them (every message in every channel the bot is in). Over
    # HTTP, plain channel messages do not come this way: handlers/http.py hands them to a Capture first.
    @app.event(re.compile(f"^({'|'.join(EVENT_TYPES)})$"))
    def on_event(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        capture.handle(event, body.get("event_id"), context.bot_user_id)


def _channel_message(message: dict[str, Any], channel_id: str, workspace_url: str) -> ChannelMessage | None:
    """A human's message as the timeline keeps it; None for bots (the bot's own posts included)."""
    if _from_a_bot(message) or not message.get("user") or not message.get("ts") or not channel_id:
        return None
    ts, thread_ts = message["ts"], message.get("thread_ts")
    permalink = f"{workspace_url}archives/{channel_id}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        permalink += f"?thread_ts={thread_ts}&cid={channel_id}"
    files = [
        {k: f[k] for k in ("id", "name", "title", "mimetype", "permalink") if k in f}
        for f in message.get("files") or []
        if isinstance(f, dict)
    ]
    return ChannelMessage(
        channel_id=channel_id,
        ts=ts,
        user_id=message["user"],
        text=without_nul(message.get("text") or ""),
        thread_ts=thread_ts,
        files=files,
        permalink=permalink,
        shared=_shared_messages(message.get("attachments")),
    )


SHARED_FIELDS = ("author_id", "author_name", "channel_id", "channel_name", "ts", "from_url")


def _shared_messages(attachments: object) -> list[dict[str, Any]]:
    """The messages a message forwards. Slack puts a forwarded (shared) message in `attachments`, one
    with `is_share: true`, its author (`author_id`, `author_name`), where it was (`channel_id`, and
    `channel_name` when Slack names it), its `ts`, its mrkdwn `text` and `from_url`, its permalink;
    the forwarding message's own `text` is often "". An attachment with `is_msg_unfurl` alone is the
    preview of a message link already in the text, and other attachments are link previews: neither is
    kept. (Undocumented by Slack; the shape as events carry it, e.g. slackapi/java-slack-sdk#1179.)"""
    shared = []
    for attachment in attachments if isinstance(attachments, list) else []:
        if not isinstance(attachment, dict) or not attachment.get("is_share"):
            continue
        entry = {k: without_nul(str(attachment[k])) for k in SHARED_FIELDS if attachment.get(k)}
        # `fallback` ("[August 29th, 2024 10:24 AM] lev: 123") only when there is no text.
        entry["text"] = without_nul(str(attachment.get("text") or attachment.get("fallback") or ""))
        shared.append(entry)
    return shared


def _from_a_bot(message: dict[str, Any]) -> bool:
    return bool(message.get("bot_id")) or message.get("subtype") == "bot_message"
