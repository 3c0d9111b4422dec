"""The read-in in Slack: whoever joins an incident's channel is told, privately, where it stands.

Slack: the `member_joined_channel` event {"type", "user", "channel", "channel_type", "team",
"inviter"?} (https://api.slack.com/events/member_joined_channel; scopes channels:read and groups:read),
sent for every channel the bot is in. The read-in is derived from the record, so there is nothing to
store first: the event is acknowledged at once and the read-in is built and posted (chat.postEphemeral:
only that person sees it) on the incident's lane. Nobody gets two:

- bots get nothing: the bot itself, and anyone users.info says `is_bot`;
- when the bot invited the person (`inviter` is the bot) the event is skipped: the bot gives the read-in
  itself where that is wanted, to a paged team's members (handlers/paging.py) and to a role holder it
  invites (handlers/publisher.py), not to the reporter it invites into the channel they declared;
- Slack's retry of an event (`X-Slack-Retry-Num`, the same `event_id`) finds the event's key claimed in
  the store (the request keys a slash command's retry is checked against; ReadInService.claim), so one
  read-in goes out however often, and to however many bot processes, Slack delivers it.

A read-in that cannot be posted is logged: the person can run `/incident summary`, which gives the same
to its caller in the command's answer. `user_not_in_channel` means they left again: nothing to do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.incidents.values import Incident
from handlers import readin_blocks
from handlers.logs import about
from handlers.mrkdwn import Block
from handlers.services import Services
from handlers.slack_client import slack_error
from storage.database import STORE_UNAVAILABLE

log = logging.getLogger(__name__)

EVENT = "member_joined_channel"


def register(app: App, services: Services) -> None:
    @app.event(EVENT)
    def on_member_joined(event: dict[str, Any], body: dict[str, Any]) -> None:
        user, channel = event.get("user"), event.get("channel")
        if not isinstance(user, str) or not isinstance(channel, str) or not user or not channel:
            return
        if services.bot_user_id in (user, event.get("inviter")):
            return  # the bot joining, or someone the bot invited (it gives those the read-in itself)
        try:
            incident = services.incidents.find_by_channel(channel)
        except STORE_UNAVAILABLE as error:
            log.warning("%s in %s: no read-in for %s, the store does not answer (%s)", EVENT, channel, user, type(error).__name__)
            return
        if incident is None or not incident.is_open:
            return  # not an incident's channel; or a closed one, whose channel holds its postmortem
        # Slack keeps an event's id across its retries; without one (never seen), who joined where and when.
        key = f"readin:{body.get('event_id') or ':'.join((channel, user, str(event.get('event_ts'))))}"
        with about(incident.number):
            give(services, incident, [user], event_key=key, humans_only=True)


def summary(services: Services, incident: Incident) -> tuple[str, list[Block]]:
    """`/incident summary`: the read-in as the command's answer. A few reads and no Slack call, so it
    fits in Slack's 3 seconds."""
    return readin_blocks.message(services.readin.read_in(incident.id), _zone(services))


def give(services: Services, incident: Incident, users: Iterable[str], *, event_key: str | None = None,
         humans_only: bool = False) -> None:
    """Post the read-in to each of `users` in the incident's channel, on the incident's lane (after the
    Slack work already queued there, so it tells what that work shows). `event_key`: the Slack event
    this answers, given once; `humans_only`: ask Slack first whether each is a bot (a paged team's
    configured members are people)."""
    people = [u for u in dict.fromkeys(users) if u != services.bot_user_id]
    if people and incident.channel_id:
        services.background.submit(incident.id, lambda: _post(services, incident.id, people, event_key, humans_only))


def _post(services: Services, incident_id: int, users: list[str], event_key: str | None, humans_only: bool) -> None:
    if event_key is not None and not services.readin.claim(event_key, incident_id):
        return  # Slack's retry of an event already answered
    if humans_only:
        users = [u for u in users if _a_person(services, u)]
    if not users:
        return
    incident = services.incidents.get(incident_id)
    if incident.channel_id is None:
        return
    text, blocks = readin_blocks.message(services.readin.read_in(incident_id), _zone(services))
    for user in users:
        try:
            services.client.chat_postEphemeral(channel=incident.channel_id, user=user, text=text, blocks=blocks)
        except SlackApiError as error:
            if slack_error(error) == "user_not_in_channel":
                log.info("incident %s: %s left its channel before the read-in reached them", incident.number, user)
                continue
            log.warning("incident %s: the read-in for %s could not be posted (Slack said %s); `/incident summary` gives it",
                        incident.number, user, slack_error(error))
        except OSError as error:
            log.warning("incident %s: the read-in for %s could not be posted (%s); `/incident summary` gives it",
                        incident.number, user, type(error).__name__)


def _a_person(services: Services, user_id: str) -> bool:
    """Whether users.info says a person (Slack: the user object's `is_bot` false; `user_not_found`: no
    one). When Slack cannot say now, taken for a person: a read-in too many costs less than one missing."""
    try:
        profile = services.users.profile(user_id)
    except (SlackApiError, OSError) as error:
        log.warning("read-in: users.info failed for %s (%s); taken for a person", user_id,
                    slack_error(error) if isinstance(error, SlackApiError) else type(error).__name__)
        return True
    return profile is not None and not profile.is_bot


def _zone(services: Services) -> ZoneInfo:
    """The zone of the dates' fallback text and of "today": the postmortem's (`[postmortem] timezone`)."""
    return ZoneInfo(services.settings.file.postmortem.timezone)
