"""Slack's side of private incidents: who may read one's details in `/incident list`, and `/incident private`.

`/incident list` is answered in Slack's 3 seconds, so whether the caller is in a private incident's channel
is asked of Slack (conversations.members) with the no-retry client, all channels at once, within
LIST_BUDGET_SECONDS; whatever is not known by then (an error, a timeout, a channel Slack does not show)
counts as "not a member": the incident is then counted, not named, and the list says Slack did not say.

`/incident private` stores the change first (bot.incidents.service.make_private) and acknowledges; then the
announcement is edited to its private form and the channel told (handlers.publisher), and the channel
itself is made private if Slack lets the bot: only `admin.conversations.convertToPrivate` does that, an
Admin API method for Enterprise Grid that takes a user token with admin.conversations:write, never a bot
token. Where it fails, the caller and the channel are told how a person does it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.incidents.service import AlreadyDone, Changed, Unchanged
from bot.incidents.values import Incident
from handlers import alerts, mrkdwn
from handlers.publisher import what_failed
from handlers.services import Services
from handlers.slack_client import slack_error

log = logging.getLogger(__name__)

LIST_BUDGET_SECONDS = 1.5  # of Slack's 3 s for `/incident list`'s answer, what asking for memberships may take
MEMBERS_PAGE = 200  # Slack: conversations.members, "We recommend no more than 200 results at a time"
MEMBERS_LOOKUPS = 4  # channels asked about at once

# How a person makes a channel private. Slack's help, "Convert a channel to private"
# (https://slack.com/help/articles/213185467): "Click the channel name in the conversation header. Select
# the Settings tab. Scroll down and click Change to a private channel. Click Change to Private to confirm."
# By default workspace owners and admins, org owners and admins, and Channel Managers may; it is permanent.
HOW_TO_CONVERT = ("a workspace owner or admin, or a Channel Manager of this channel, clicks the channel's name in its "
                  "header → *Settings* → *Change to a private channel* → *Change to Private*")


@dataclass(frozen=True, slots=True)
class Membership:
    """What Slack said of the caller and the private incidents' channels, by incident id: `members`, those
    whose channel the caller is in; `unknown`, those Slack did not say about in time (an error, or no
    answer within the budget), which are shown as to a non-member (fail closed)."""

    members: frozenset[int] = frozenset()
    unknown: frozenset[int] = frozenset()


def members_of(client: WebClient, incidents: Iterable[Incident], user_id: str, *, here: str | None,
               budget: float = LIST_BUDGET_SECONDS) -> Membership:
    """Which private incidents among `incidents` have `user_id` in their channel. `here`: the channel the
    command came from (whoever types in a channel can read it, so it needs no asking). Slack is asked for
    the rest at once (at most `budget` seconds in all, at most MEMBERS_LOOKUPS at a time); an error or no
    answer in time counts as "not in it" (fail closed), and is told apart as `unknown`."""
    asked = [i for i in incidents if i.private and i.channel_id]
    known = {i.id for i in asked if i.channel_id == here}
    ask = [i for i in asked if i.id not in known]
    if not ask:
        return Membership(frozenset(known))
    deadline = time.monotonic() + budget
    pool = ThreadPoolExecutor(max_workers=min(MEMBERS_LOOKUPS, len(ask)), thread_name_prefix="members")
    try:
        futures = {pool.submit(in_channel, client, str(i.channel_id), user_id, deadline): i for i in ask}
        done, _ = wait(futures, timeout=budget)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a late answer is not waited for: the caller sees a count
    said = {futures[f].id: f.result() for f in done if f.exception() is None}
    return Membership(frozenset(known | {i for i, member in said.items() if member}),
                      frozenset(i.id for i in ask if said.get(i.id) is None))


def in_channel(client: WebClient, channel_id: str, user_id: str, deadline: float) -> bool | None:
    """Whether `user_id` is in the channel, page by page (Slack: conversations.members, cursor
    pagination, `response_metadata.next_cursor` empty on the last page). None when Slack did not say: on
    any error (`channel_not_found` is also Slack's answer for a private channel the bot is not in) or
    once `deadline` (time.monotonic()) has passed."""
    cursor: str | None = None
    try:
        while time.monotonic() < deadline:
            answer = client.conversations_members(channel=channel_id, limit=MEMBERS_PAGE, cursor=cursor)
            if user_id in (answer.get("members") or []):
                return True
            cursor = str((answer.get("response_metadata") or {}).get("next_cursor") or "") or None
            if cursor is None:
                return False
    except (SlackApiError, OSError) as error:
        log.warning("conversations.members for %s failed (%s): counted as not a member", channel_id, slack_error(error))
    return None


def make_private_command(services: Services, incident: Incident, user_id: str, request_key: str,
                         respond: Callable[..., Any]) -> str | None:
    """`/incident private` in the incident's channel: stored before the answer (what to tell the caller at
    once, or None for a Slack retry), then shown in Slack on the incident's lane."""
    outcome = services.incidents.make_private(incident.id, user_id, request_key)
    match outcome:
        case AlreadyDone():
            return None
        case Unchanged(reason=reason):
            return f":information_source: {reason}"
    assert isinstance(outcome, Changed)
    services.background.submit(incident.id, lambda: show(services, outcome, respond), on_error=report(services, outcome, respond))
    return (f":lock: Incident {incident.number} is private from now on: its announcement is being edited to leave out "
            "the title and this channel, nothing more about it is announced, and pagers get only its number and "
            "severity. Next, this channel itself: the bot asks Slack to make it private and tells you how that went.")


def show(services: Services, change: Changed, respond: Callable[..., Any]) -> None:
    """After the acknowledgement: the change shown (the announcement edited, the channel told, the summary
    marked private), then the channel made private where Slack lets the bot, else told how. The
    announcement calls the channel private only once Slack says it is."""
    services.publisher.publish(change)
    alerts.show_again(services, services.alerts.reshow_for(change.incident.id))  # their messages named its channel
    incident = services.incidents.get(change.incident.id)
    if incident.channel_id is None:  # not created yet: it will be created private
        return
    if services.publisher.channel_is_private(incident.channel_id):
        services.publisher.announce_channel_private(incident)
        respond(response_type="ephemeral", replace_original=False,
                text=f":lock: Its channel <#{incident.channel_id}> is private already.")
        return
    try:
        services.client.admin_conversations_convertToPrivate(channel_id=incident.channel_id)
    except SlackApiError as error:
        told = not_converted(slack_error(error))
        log.info("incident %s: admin.conversations.convertToPrivate: %s", incident.number, slack_error(error))
        services.publisher.post(incident, told)
        respond(response_type="ephemeral", replace_original=False, text=told)
        return
    services.publisher.announce_channel_private(incident)
    services.publisher.post(incident, ":lock: Slack made this channel private: only its members can find and read it now.")
    respond(response_type="ephemeral", replace_original=False,
            text=f":lock: Done: incident {incident.number} and its channel are private.")


def not_converted(error: str) -> str:
    """What the caller and the channel are told when Slack would not make the channel private (`error`:
    Slack's code, such as `not_allowed_token_type`, `missing_scope`, `not_an_enterprise`,
    `feature_not_enabled`)."""
    return mrkdwn.fallback(
        ":warning: This channel is still *public*: anyone in the workspace can find it and read what is said here. "
        "Slack lets an app make a channel private only through its Enterprise Grid Admin API "
        f"(`admin.conversations.convertToPrivate`, a user token with `admin.conversations:write`); it said "
        f"`{mrkdwn.escape(error)}`. To make it private, {HOW_TO_CONVERT}. It cannot be made public again afterwards. "
        "Until then, keep details out of this channel.")


def report(services: Services, change: Changed, respond: Callable[..., Any]) -> Callable[[BaseException], None]:
    """A failure after the acknowledgement, told to the caller: the incident is private in the record
    whatever Slack did."""

    def told(error: BaseException) -> None:
        services.metrics.background_failures.inc()
        what = what_failed(error)
        respond(response_type="ephemeral", replace_original=False, text=mrkdwn.fallback(
            f":warning: Incident {change.incident.number} is private in the bot's record (nothing more is announced, "
            f"pagers get only its number and severity), but {what}. Check the announcement, and make this channel "
            f"private by hand: {HOW_TO_CONVERT}."))

    return told
