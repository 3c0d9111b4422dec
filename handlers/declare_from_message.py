"""The message shortcut **Declare incident** (callback_id `declare_from_message`): the declare form,
prefilled from the message it was used on; submitted, the message becomes the incident's first timeline
entry, a Detection at the message's own time (bot.incidents.service, `declare`).

Slack (https://api.slack.com/interactivity/shortcuts/using#message_shortcuts) sends a `message_action`
payload: `trigger_id`, `user`, `channel` {id, name}, `message` {ts, text, user or bot_id, thread_ts,
files…}, `response_url`, `team`. The trigger_id lives 3 seconds, so the form is opened before Slack is
answered, with the instant client: what Slack can tell within a second (the message's permalink from
chat.getPermalink, the names of the people it mentions) is asked for side by side first; what does not
answer in time is done without (a DM or a channel the bot cannot see gives no permalink, and the
incident is declared without it).

The message travels to the submission in the form's private_metadata (JSON, at most 3,000 characters):
channel, ts, author, permalink and the text as Slack stored it. A longer text is held in the store by
the form's view id (IncidentService.hold_text), and the metadata carries it shortened as a fallback.
It is held rather than fetched again at submission: conversations.history and conversations.replies
answer only in channels the bot is in (and DMs would need the im:history scope), and what the person
declared from is the message as it read when they chose it, not as it may have been edited since.
"""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.incidents import commands as c
from bot.slack_markup import Names, Renderer, references
from handlers import mrkdwn, source_blocks
from handlers.services import Services
from handlers.slack_client import slack_error
from storage.database import STORE_UNAVAILABLE

log = logging.getLogger(__name__)

CALLBACK_ID = "declare_from_message"
# What may be asked of Slack before the form opens: views.open itself may then take the instant
# client's 2 s and the whole still fits Slack's 3.
LOOKUP_SECONDS = 1.0
MAX_NAME_LOOKUPS = 8  # users.info calls for people the message mentions whose names the bot does not know
_TS = re.compile(r"\d{1,12}\.\d{1,9}")
METADATA_KEY = "declared_from"


def register(app: App, services: Services) -> None:
    lookups = ThreadPoolExecutor(max_workers=MAX_NAME_LOOKUPS + 1, thread_name_prefix="shortcut-lookup")

    @app.shortcut(CALLBACK_ID)
    def declare_from_message(ack: Ack, body: dict[str, Any]) -> None:
        user_id = str((body.get("user") or {}).get("id") or "")
        channel_id = str((body.get("channel") or {}).get("id") or "")
        source = source_message(body)
        if source is None:
            ack()
            log.warning("a %s shortcut without a message ts in channel %s", CALLBACK_ID, channel_id)
            _tell(services, channel_id, user_id, source_blocks.unreadable_message())
            return
        permalink, names = _ask_slack(services, lookups, source)
        source = replace(source, permalink=permalink)
        plain = Renderer(names, markdown=False, at_names=True).text(source.text)
        description = "\n".join(part for part in (plain.strip(), _files(body.get("message") or {})) if part)
        metadata, held = form_metadata(source)
        form = source_blocks.prefilled_form(source, user_id, title=source_blocks.title_suggestion(description),
                                            description=description, metadata=metadata)
        try:
            opened = services.instant_client.views_open(trigger_id=body["trigger_id"], view=form)
        except (SlackApiError, OSError) as error:
            ack()
            log.warning("the declare form from a message could not open: %s", slack_error(error))
            _tell(services, channel_id, user_id, source_blocks.form_failed(slack_error(error)))
            return
        if held:
            try:
                services.incidents.hold_text(f"view:{opened['view']['id']}", source.text)
            except STORE_UNAVAILABLE:  # the submission falls back to the shortened text in the metadata
                log.warning("the store is down: the long text of a message declared from is kept shortened")
        ack()


def source_message(body: dict[str, Any]) -> c.SourceMessage | None:
    """The message of a `message_action` payload; None when it has no usable ts. A message from a bot or
    an app (a `bot_id`, or the bot_message subtype) has no author to invite: its name is kept instead."""
    message = body.get("message") or {}
    ts = str(message.get("ts") or body.get("message_ts") or "")
    channel_id = str((body.get("channel") or {}).get("id") or "")
    if not _TS.fullmatch(ts) or not channel_id:
        return None
    from_app = bool(message.get("bot_id")) or message.get("subtype") == "bot_message" or not message.get("user")
    bot_name = str(message.get("username") or (message.get("bot_profile") or {}).get("name") or "") or None
    return c.SourceMessage(channel_id=channel_id, ts=ts, author_id=None if from_app else str(message["user"]),
                           text=c.without_nul(str(message.get("text") or "")), bot_name=bot_name if from_app else None)


def form_metadata(source: c.SourceMessage) -> tuple[str, bool]:
    """(private_metadata, whether the text must be held by the view id). Within 3,000 characters as
    Slack counts them: a text that does not fit rides shortened, marked `held`."""
    carried = {"channel": source.channel_id, "ts": source.ts, "author": source.author_id, "permalink": source.permalink,
               "bot_name": source.bot_name}
    whole = json.dumps({METADATA_KEY: {**carried, "text": source.text}}, ensure_ascii=False)
    if mrkdwn.length(whole) <= mrkdwn.PRIVATE_METADATA:
        return whole, False
    bare = json.dumps({METADATA_KEY: {**carried, "held": True, "text": ""}}, ensure_ascii=False)
    room = mrkdwn.PRIVATE_METADATA - mrkdwn.length(bare)
    text = mrkdwn.clip(source.text, room)
    while True:  # JSON escapes quotes, backslashes and control characters: shorten until it fits
        shown = json.dumps({METADATA_KEY: {**carried, "held": True, "text": text}}, ensure_ascii=False)
        excess = mrkdwn.length(shown) - mrkdwn.PRIVATE_METADATA
        if excess <= 0:
            return shown, True
        room -= excess
        text = mrkdwn.clip(source.text, max(room, 0))


def submitted_source(services: Services, view: dict[str, Any], values: dict[str, Any]) -> c.SourceMessage | None:
    """The message a submitted declare form was opened from; None for the form `/incident declare` opens
    (its private_metadata is a channel id). The text is the one held by the view id when there is one."""
    raw = str(view.get("private_metadata") or "")
    if not raw.startswith("{"):
        return None
    try:
        carried = json.loads(raw)[METADATA_KEY]
    except (ValueError, KeyError, TypeError):
        log.warning("a declare form's private_metadata is not what the bot wrote; declared without its message")
        return None
    text = str(carried.get("text") or "")
    if carried.get("held"):
        try:
            text = services.incidents.held_text(f"view:{view.get('id')}") or text
        except STORE_UNAVAILABLE:
            log.warning("the store is down: the message declared from is recorded shortened")
    ticked = (values.get(source_blocks.INVITE_AUTHOR_BLOCK) or {}).get("value", {}).get("selected_options") or []
    return c.SourceMessage(channel_id=str(carried["channel"]), ts=str(carried["ts"]), author_id=carried.get("author"),
                           text=text, permalink=carried.get("permalink"), bot_name=carried.get("bot_name"),
                           invite_author=bool(ticked))


def _ask_slack(services: Services, lookups: ThreadPoolExecutor, source: c.SourceMessage) -> tuple[str | None, Names]:
    """The message's permalink and the names of the people it mentions, as far as Slack answers within
    LOOKUP_SECONDS (calls still running then are left to finish on their own, their answers unused)."""
    people = references(source.text).users | ({source.author_id} if source.author_id else set())
    unknown = sorted(people - services.users.known(people).keys())[:MAX_NAME_LOOKUPS]
    permalink: Future[Any] = lookups.submit(services.instant_client.chat_getPermalink, channel=source.channel_id,
                                            message_ts=source.ts)
    named = [lookups.submit(services.users.profile, user_id, services.instant_client) for user_id in unknown]
    wait([permalink, *named], timeout=LOOKUP_SECONDS)
    link: str | None = None
    if permalink.done():
        try:
            link = str(permalink.result()["permalink"]) or None
        except (SlackApiError, OSError, KeyError) as error:
            log.info("no permalink for the message declared from (%s): declared without it", slack_error(error))
    else:
        log.info("chat.getPermalink did not answer within %s s: declared without the permalink", LOOKUP_SECONDS)
    for future in named:
        if future.done() and (failure := future.exception()) is not None:
            log.info("users.info failed for a person a message names: %s", slack_error(failure))
    return link, Names(users=services.users.known(people))  # profile() put what it learnt in the cache


def _files(message: dict[str, Any]) -> str:
    """The message's files, named on one line (the form's description is plain text)."""
    names = [str(f.get("title") or f.get("name") or "a file") for f in message.get("files") or [] if isinstance(f, dict)]
    return f"Files: {', '.join(names)}" if names else ""


def _tell(services: Services, channel_id: str, user_id: str, text: str) -> None:
    """Tell the person, after the acknowledgement: ephemerally where they used the shortcut, else (a
    channel the bot is not in, a DM) in the app's DM."""

    def send() -> None:
        try:
            services.client.chat_postEphemeral(channel=channel_id, user=user_id, text=text)
        except SlackApiError as error:
            log.info("could not tell %s in %s (%s): telling them in the app's DM", user_id, channel_id, slack_error(error))
            services.client.chat_postMessage(channel=user_id, text=text)

    services.background.submit(f"user:{user_id}", send)
