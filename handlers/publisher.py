"""Slack's side of an incident: its channel, topic, pinned summary and announcements.

`provision` sets an incident up in Slack step by step, recording each step's result, so that running it
again (after a crash, a Slack failure, or a Retry press) finishes the job without doing any step twice.
`publish` shows a recorded change: a message in the channel, the summary and topic brought up to date,
an announcement where the change matters beyond the channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.clock import Clock
from bot.config import SlackSection
from bot.incidents.channel_names import channel_name
from bot.incidents.service import Changed, IncidentService
from bot.incidents.values import EntryKind, Incident
from handlers import blocks
from handlers.slack_client import slack_error
from handlers.users import UserDirectory

log = logging.getLogger(__name__)

MAX_NAME_ATTEMPTS = 50
HARMLESS = {"already_in_channel", "already_pinned", "cant_invite_self"}


class StepFailed(Exception):
    """One step of talking to Slack failed; `step` says which, in words for the person who asked."""

    def __init__(self, step: str, error: str) -> None:
        super().__init__(f"{step} failed: {error}")
        self.step = step
        self.error = error


class IncidentPublisher:
    def __init__(
        self, client: WebClient, incidents: IncidentService, users: UserDirectory, slack: SlackSection, clock: Clock
    ) -> None:
        self._client = client
        self._incidents = incidents
        self._users = users
        self._slack = slack
        self._clock = clock

    def provision(self, incident_id: int) -> Incident:
        """Without a channel nothing else can happen, so a failure to create it stops here. Every later
        step is tried even when an earlier one failed (a reporter Slack cannot invite must not cost the
        channel its summary and announcement); the first failure is raised at the end, and the incident
        counts as provisioned only when every step worked."""
        incident = self._incidents.get(incident_id)
        if incident.channel_id is None:
            incident = self._create_channel(incident)
        channel = incident.channel_id
        assert channel is not None
        failures: list[StepFailed] = []

        def attempt(step: str, action: Callable[[], object]) -> None:
            try:
                with _step(step):
                    action()
            except StepFailed as failure:
                log.warning("incident %s: %s", incident.number, failure)
                failures.append(failure)

        attempt("inviting the reporter to the channel",
                lambda: self._ignore_harmless(self._client.conversations_invite, channel=channel, users=incident.reporter_id))
        attempt("setting the channel topic",
                lambda: self._client.conversations_setTopic(channel=channel, topic=blocks.topic(incident, self._users.name_of)))
        if incident.summary_ts is None:
            text, summary_blocks = blocks.summary(incident)
            attempt("posting the summary", lambda: self._incidents.record_summary(
                incident.id, self._client.chat_postMessage(channel=channel, text=text, blocks=summary_blocks)["ts"]))
            incident = self._incidents.get(incident.id)
        if incident.summary_ts is not None:
            ts = incident.summary_ts
            attempt("pinning the summary", lambda: self._ignore_harmless(self._client.pins_add, channel=channel, timestamp=ts))
        if incident.announcement_ts is None and self._slack.announce_channel:
            announcement = blocks.declared_announcement(incident)
            attempt(f"announcing in <#{self._slack.announce_channel}>",
                    lambda: self._incidents.record_announcement(incident.id, self._announce(announcement)))
        if failures:
            raise failures[0]
        return self._incidents.mark_provisioned(incident.id)

    def publish(self, change: Changed) -> None:
        incident = change.incident
        if incident.channel_id is None:  # provisioning will show the current state when it finishes
            return
        if change.kind is EntryKind.ROLE_ASSIGNED:
            with _step(f"inviting <@{change.after}> to the channel"):
                self._ignore_harmless(self._client.conversations_invite, channel=incident.channel_id, users=change.after)
        with _step("posting the change in the channel"):
            self._client.chat_postMessage(channel=incident.channel_id, text=blocks.change_message(change))
        self.refresh(incident.id, topic=blocks.changes_topic(change))
        announcement = blocks.change_announcement(change)
        if announcement and self._slack.announce_channel:
            self._announce(announcement)
        if change.entry_id is not None:
            self._incidents.mark_published(change.entry_id)

    def refresh(self, incident_id: int, *, topic: bool) -> None:
        """Bring the pinned summary (and the topic) in line with what is stored now."""
        incident = self._incidents.get(incident_id)
        if incident.channel_id is None:
            return
        if incident.summary_ts:
            text, summary_blocks = blocks.summary(incident)
            with _step("updating the pinned summary"):
                self._client.chat_update(channel=incident.channel_id, ts=incident.summary_ts, text=text, blocks=summary_blocks)
        if topic:
            with _step("updating the channel topic"):
                self._client.conversations_setTopic(channel=incident.channel_id, topic=blocks.topic(incident, self._users.name_of))

    def _create_channel(self, incident: Incident) -> Incident:
        day = incident.declared_at.date()
        for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
            name = channel_name(self._slack.channel_prefix, day, incident.title, incident.number, attempt)
            try:
                channel = self._client.conversations_create(name=name)["channel"]
            except SlackApiError as error:
                if slack_error(error) == "name_taken":
                    continue
                raise StepFailed(f"creating the channel #{name}", slack_error(error)) from error
            log.info("incident %s: created channel %s (%s)", incident.number, channel["name"], channel["id"])
            return self._incidents.record_channel(incident.id, channel["id"], channel["name"])
        raise StepFailed("creating the channel", f"name_taken for {MAX_NAME_ATTEMPTS} names in a row")

    def _announce(self, text: str) -> str:
        channel = self._slack.announce_channel
        assert channel is not None, "only called when an announcement channel is configured"
        with _step(f"announcing in <#{channel}>"):
            try:
                return self._client.chat_postMessage(channel=channel, text=text)["ts"]
            except SlackApiError as error:
                if slack_error(error) != "not_in_channel":
                    raise
            # A public announcement channel the bot was never added to: join it once and post again.
            self._client.conversations_join(channel=channel)
            return self._client.chat_postMessage(channel=channel, text=text)["ts"]

    @staticmethod
    def _ignore_harmless(call: object, **kwargs: object) -> None:
        try:
            call(**kwargs)  # type: ignore[operator]
        except SlackApiError as error:
            if slack_error(error) not in HARMLESS:
                raise


@contextmanager
def _step(step: str) -> Iterator[None]:
    try:
        yield
    except StepFailed:
        raise
    except SlackApiError as error:
        raise StepFailed(step, slack_error(error)) from error
    except OSError as error:
        raise StepFailed(step, f"Slack could not be reached ({type(error).__name__})") from error
