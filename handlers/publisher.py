"""Slack's side of an incident: its channel, topic, pinned summary and announcements.

`provision` sets an incident up in Slack step by step, recording each step's result, so that running it
again (after a crash, a Slack failure, or a Retry press) finishes the job without doing any step twice.
`publish` shows a recorded change: a message in the channel, the summary and topic brought up to date,
an announcement where the change matters beyond the channel.

Someone may archive (or delete) the incident channel while the incident is open. Every call into it
then meets `is_archived` (or `channel_not_found`); `post`, `update` and `upload` handle that for all of
the bot: the channel is marked archived (once, with a timeline entry and a notice), and what was meant
for it goes to the incident's announcement thread. Apps cannot unarchive channels, so none is tried.

A private incident is named nowhere but its own channel (docs/design.md, "Private incidents"): its
channel is created private with a neutral name, its announcement says only that it was declared, and
nothing about it ever goes to the announcement thread, its channel archived or not: what was meant for
an archived private channel is logged and withheld (`post` returns None, `upload` raises `Withheld`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.clock import Clock
from bot.config import SlackSection
from bot.incidents.channel_names import channel_name
from bot.incidents.service import Changed, IncidentService
from bot.incidents.values import EntryKind, Incident
from handlers import archived_blocks, blocks, invites, mrkdwn, source_blocks
from handlers.slack_client import slack_error
from handlers.users import UserDirectory
from storage.database import STORE_UNAVAILABLE

log = logging.getLogger(__name__)

MAX_NAME_ATTEMPTS = 50
HARMLESS = {"already_in_channel", "already_pinned", "cant_invite_self"}
# Slack's answers meaning the channel takes nothing any more (Slack: chat.postMessage, "Errors"):
# `is_archived` "Channel has been archived", `channel_not_found` once it is deleted.
GONE = frozenset({"is_archived", "channel_not_found"})
DELETED = frozenset({"channel_not_found", "channel_deleted", "group_deleted"})  # answers and events meaning deleted


def channel_gone(error: BaseException) -> str | None:
    """`is_archived` or `channel_not_found` when that is what Slack answered; None for anything else."""
    code = slack_error(error) if isinstance(error, SlackApiError) else getattr(error, "error", None)
    return code if code in GONE else None


def is_gone(incident: Incident) -> bool:
    """The incident's channel is marked archived or deleted: Slack would refuse anything sent there."""
    return incident.channel_archived_at is not None


class Placed(NamedTuple):
    """Where `IncidentPublisher.place` put a message: its ts, in the incident channel or (`in_thread`)
    in the incident's announcement thread."""

    ts: str
    in_thread: bool


class StepFailed(Exception):
    """One step of talking to Slack failed; `step` says which, in words for the person who asked."""

    def __init__(self, step: str, error: str) -> None:
        super().__init__(f"{step} failed: {error}")
        self.step = step
        self.error = error

    @property
    def said(self) -> str:
        """Why, for the person who asked (mrkdwn): Slack's answer."""
        return f"Slack said `{self.error}`"


def what_failed(error: BaseException) -> str:
    """What went wrong in the work after an acknowledgement, in words for the person who asked: a step of
    talking to Slack, the bot's own database (a publishing also writes that it was shown), or else Slack."""
    if isinstance(error, StepFailed):
        return f"{error.step} failed: {error.said}"
    if isinstance(error, STORE_UNAVAILABLE):
        return f"the bot's database did not answer while it was being shown in Slack ({type(error).__name__})"
    return f"Slack failed ({type(error).__name__})"


class Withheld(StepFailed):
    """Not sent, on purpose: the incident is private and its channel archived or deleted, and a private
    incident is shown nowhere else (not even in the announcement thread). `error` says so in words."""

    def __init__(self, step: str, incident: Incident) -> None:
        super().__init__(step, f"incident {incident.number} is private and its channel is archived or deleted; "
                               "a private incident is shown nowhere else, so nothing was posted")

    @property
    def said(self) -> str:
        return self.error


class IncidentPublisher:
    def __init__(
        self, client: WebClient, incidents: IncidentService, users: UserDirectory, slack: SlackSection, clock: Clock
    ) -> None:
        self._client = client
        self._incidents = incidents
        self._users = users
        self._slack = slack
        self._clock = clock
        # Told who the bot itself invited into an incident's channel, as it invites them (set once at start:
        # handlers/readin.py gives them the read-in, since the events of the bot's own invitations are skipped).
        self.on_invited: Callable[[Incident, Sequence[str]], None] | None = None

    def provision(self, incident_id: int) -> Incident:
        """Without a channel nothing else can happen, so a failure to create it stops here. Every later
        step is tried even when an earlier one failed (a reporter Slack cannot invite must not cost the
        channel its summary and announcement); the first failure is raised at the end, and the incident
        counts as provisioned only when every step worked."""
        incident = self._incidents.get(incident_id)
        created_private: bool | None = None  # what Slack said of a channel created here
        if incident.channel_id is None:
            incident, created_private = self._create_channel(incident)
        channel = incident.channel_id
        assert channel is not None
        failures: list[StepFailed] = []

        def attempt(step: str, action: Callable[[], object], *, in_channel: bool = True) -> None:
            try:
                with _step(step):
                    action()
            except StepFailed as failure:
                seen = self._confirmed_gone(incident, failure.error) if in_channel else None
                if seen is not None:  # archived or deleted already: nothing to finish there
                    self.note_gone(incident, seen=seen)
                    return
                log.warning("incident %s: %s", incident.number, failure)
                failures.append(failure)

        attempt("inviting the reporter to the channel",
                lambda: self._ignore_harmless(self._client.conversations_invite, channel=channel, users=incident.reporter_id))
        source = self._incidents.declared_from(incident.id)  # declared from a message (handlers/declare_from_message.py)
        author = source.message.author_id if source is not None and source.message.invite_author else None
        if author and author != incident.reporter_id:
            attempt("inviting the message's author to the channel", lambda: self._invite_author(incident, channel, author))
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
        if source is not None and source.linked_ts is None and incident.summary_ts is not None:
            line = source_blocks.declared_from_line(source.message)
            attempt("linking the message it was declared from", lambda: self._incidents.record_source_linked(
                incident.id, self._client.chat_postMessage(channel=channel, text=line)["ts"]))
        if incident.announcement_ts is None and self._slack.announce_channel:
            # A private incident's announcement calls its channel private only when Slack said so.
            private = incident.private and (created_private if created_private is not None else self.channel_is_private(channel))
            announcement = blocks.declared_announcement(incident, channel_private=private)
            attempt(f"announcing in <#{self._slack.announce_channel}>",
                    lambda: self._incidents.record_announcement(incident.id, self._announce(announcement)), in_channel=False)
        if failures:
            raise failures[0]
        return self._incidents.mark_provisioned(incident.id)

    def publish(self, change: Changed) -> None:
        incident = self._incidents.get(change.incident.id)  # as stored now: the mark may be newer than the change
        if incident.channel_id is None:  # provisioning will show the current state when it finishes
            return
        if change.kind is EntryKind.MADE_PRIVATE and self._slack.announce_channel and incident.announcement_ts:
            # The announcement named it: from now on it says only what a private incident's does. Its
            # channel is still public (until converted: announce_channel_private), so not called private.
            with _step("editing the announcement to leave the title and channel out"):
                self._client.chat_update(channel=self._slack.announce_channel, ts=incident.announcement_ts,
                                         text=blocks.declared_announcement(incident, made_private=True))
        if change.kind is EntryKind.ROLE_ASSIGNED and not is_gone(incident):
            invited = False  # stays so when the channel turns out archived
            with _step(f"inviting <@{change.after}> to the channel"), self._unless_gone(incident):
                invited = self._ignore_harmless(self._client.conversations_invite, channel=incident.channel_id, users=change.after)
            if invited and self.on_invited is not None and isinstance(change.after, str):
                self.on_invited(incident, [change.after])
        announcement = blocks.change_announcement(change) if self._slack.announce_channel and not incident.private else None
        with _step("posting the change in the channel"):
            # In the thread (the channel archived), the announcement channel's news is that reply,
            # broadcast: not told twice there, once linking a channel nobody can join.
            placed = self.place(incident, *blocks.change_message(change), broadcast=announcement is not None)
        self.refresh(incident.id, topic=blocks.changes_topic(change))
        if announcement and not (placed and placed.in_thread):
            text, announcement_blocks = announcement
            self._announce(text, blocks=announcement_blocks)
        if change.entry_id is not None:
            self._incidents.mark_published(change.entry_id)

    def refresh(self, incident_id: int, *, topic: bool) -> None:
        """Bring the pinned summary (and the topic) in line with what is stored now."""
        incident = self._incidents.get(incident_id)
        if incident.channel_id is None or is_gone(incident):  # archived: Slack keeps both as they were
            return
        if incident.summary_ts:
            text, summary_blocks = blocks.summary(incident)
            with _step("updating the pinned summary"):
                if not self.update(incident, incident.summary_ts, text, summary_blocks):
                    return  # archived: the topic cannot change either
        if topic:
            with _step("updating the channel topic"), self._unless_gone(incident):
                self._client.conversations_setTopic(channel=incident.channel_id, topic=blocks.topic(incident, self._users.name_of))

    # --- the incident channel, or the announcement thread when Slack no longer takes posts there

    def post(self, incident: Incident, text: str, message_blocks: list[dict[str, Any]] | None = None) -> str | None:
        """`place`, for a message whose place does not matter later: its ts, or None."""
        placed = self.place(incident, text, message_blocks)
        return placed.ts if placed else None

    def place(self, incident: Incident, text: str, message_blocks: list[dict[str, Any]] | None = None, *,
              broadcast: bool = False) -> Placed | None:
        """chat.postMessage into the incident channel; into the incident's announcement thread, under a
        line saying why, once the channel is archived or deleted (known from the mark, or learnt from
        Slack's refusal, see `note_gone`). `broadcast`: in the thread, shown in the announcement channel
        too (Slack: chat.postMessage, `reply_broadcast`). Returns where the message is (a ts names a
        message in one channel only); None when there was nowhere to post (no channel yet; or no
        announcement channel configured, which is logged). Other errors raise."""
        if incident.channel_id is None:
            return None
        if not is_gone(incident):
            extra: dict[str, Any] = {"blocks": message_blocks} if message_blocks else {}
            try:
                return Placed(str(self._client.chat_postMessage(channel=incident.channel_id, text=text, **extra)["ts"]), False)
            except SlackApiError as error:
                seen = self._confirmed_gone(incident, channel_gone(error))
                if seen is None:
                    raise
            incident = self.note_gone(incident, seen=seen)
        # Known gone: straight to the thread, the channel not tried. The mark is only as old as Slack's
        # channel_unarchive / group_unarchive event (note_back clears it), and a deleted channel never
        # comes back, so trying the channel would only meet the refusal again.
        if incident.private:
            log.warning("incident %s: its private channel is archived or deleted; withheld (a private incident is "
                        "shown nowhere else): %s", incident.number, text[:80])
            return None
        text, extra = _redirected(incident, text, message_blocks)
        if broadcast:
            extra["reply_broadcast"] = True
        ts = self._in_thread(incident, text, **extra)
        return Placed(ts, True) if ts else None

    def update(self, incident: Incident, ts: str, text: str, message_blocks: list[dict[str, Any]] | None = None, *,
               in_thread: bool = False) -> bool:
        """chat.update of a message the bot placed for the incident: in the announcement thread when
        `in_thread` (`Placed.in_thread`), else in the incident channel. False when the message is in a
        channel archived or deleted (known, or learnt from Slack's refusal): Slack keeps it as it was,
        and its ts names nothing elsewhere, so the caller decides whether to `place` the new state."""
        extra: dict[str, Any] = {"blocks": message_blocks} if message_blocks is not None else {}
        if in_thread:
            if not self._slack.announce_channel or incident.private:  # made private since: the thread is left as it was
                return False
            text, extra = _redirected(incident, text, message_blocks)
            self._client.chat_update(channel=self._slack.announce_channel, ts=ts, text=text, **extra)
            return True
        if incident.channel_id is None or is_gone(incident):
            return False
        try:
            self._client.chat_update(channel=incident.channel_id, ts=ts, text=text, **extra)
            return True
        except SlackApiError as error:
            seen = self._confirmed_gone(incident, channel_gone(error))
            if seen is None:
                raise
        self.note_gone(incident, seen=seen)
        return False

    def upload(self, incident: Incident, **upload: Any) -> Any:
        """files_upload_v2 into the incident channel (`upload`: content, filename, title,
        initial_comment); into the announcement thread when the channel is known archived or deleted,
        chosen before uploading: files_upload_v2 uploads the content before Slack says whether the
        channel takes it (files.completeUploadExternal), so a refusal leaves an upload shared nowhere.
        Returns Slack's answer; raises when neither place took the file."""
        assert incident.channel_id is not None
        if not is_gone(incident):
            try:
                return self._client.files_upload_v2(channel=incident.channel_id, **upload)
            except SlackApiError as error:  # archived since the mark was read: this one upload is orphaned
                seen = self._confirmed_gone(incident, channel_gone(error))
                if seen is None:
                    raise
            incident = self.note_gone(incident, seen=seen)
        if incident.private:
            raise Withheld("uploading the file", incident)
        if not self._slack.announce_channel:
            raise StepFailed("uploading the file", "its channel is archived and there is no announce_channel to post in instead")
        comment = f"{archived_blocks.redirected(incident)}\n{upload.pop('initial_comment', '')}"
        return self._client.files_upload_v2(channel=self._slack.announce_channel, initial_comment=comment,
                                            thread_ts=incident.announcement_ts, **upload)

    def note_gone(self, incident: Incident, *, seen: str, by: str | None = None) -> Incident:
        """Record that the channel takes no posts (`seen`: Slack's answer, or the event's type; `by`: who
        archived it) and, the first time, tell the announcement thread what still works. Returns the
        incident as stored now."""
        deleted = seen in DELETED
        recorded = self._incidents.record_channel_archived(incident.id, by=by, seen=seen, deleted=deleted)
        if recorded is None:
            return self._incidents.get(incident.id)
        self.tell_gone(recorded, by, deleted=deleted)
        return recorded

    def tell_gone(self, incident: Incident, by: str | None, *, deleted: bool) -> None:
        """The notice, once the mark is stored: a courtesy, so a failure is only logged."""
        log.warning("incident %s: its channel %s is %s", incident.number, incident.channel_id, "deleted" if deleted else "archived")
        if incident.private:  # the thread would tell everyone that it exists and what its channel is
            return
        try:
            self._in_thread(incident, archived_blocks.gone_notice(incident, by, deleted=deleted))
        except StepFailed as failure:
            log.warning("incident %s: %s", incident.number, failure)
        self._reannounce(incident)

    def note_back(self, incident: Incident, by: str | None, *, tell: bool) -> None:
        """The channel was unarchived: join it again (a public channel; a private one needs an invite,
        Slack: conversations.join, `method_not_supported_for_channel_type`) and, if `tell`, say so in
        the announcement thread."""
        assert incident.channel_id is not None
        try:
            self._client.conversations_join(channel=incident.channel_id)
            joined = True
        except (SlackApiError, OSError) as error:
            log.warning("incident %s: could not join its unarchived channel: %s", incident.number, slack_error(error))
            joined = False
        if incident.private:
            if not joined:  # Slack: a bot joins a private channel only by invitation
                log.warning("incident %s: its private channel was unarchived; invite the bot back with "
                            "`/invite @incident-bot` in it", incident.number)
            return
        if tell or not joined:
            self._in_thread(incident, archived_blocks.back_notice(incident, by, joined=joined))
        if tell:
            self._reannounce(incident)

    def announce_channel_private(self, incident: Incident) -> None:
        """An incident made private whose channel Slack now says is private (conversations.info's
        `is_private`, or the Admin API's conversion): its announcement may say so. A courtesy: a failure
        is only logged (the announcement already names nothing)."""
        if not self._slack.announce_channel or not incident.announcement_ts or not incident.private:
            return
        try:
            self._client.chat_update(channel=self._slack.announce_channel, ts=incident.announcement_ts,
                                     text=blocks.declared_announcement(incident, made_private=True, channel_private=True))
        except (SlackApiError, OSError) as error:
            log.warning("incident %s: saying in the announcement that its channel is private failed: %s",
                        incident.number, error)

    def channel_is_private(self, channel_id: str) -> bool:
        """Slack says the channel is private (conversations.info: someone converted it, or it was
        created so); False when it cannot say."""
        try:
            return bool(self._client.conversations_info(channel=channel_id)["channel"].get("is_private"))
        except (SlackApiError, OSError) as error:
            log.warning("conversations.info for %s failed (%s): its channel is not called private", channel_id, slack_error(error))
            return False

    def _reannounce(self, incident: Incident) -> None:
        """The announcement brought in line with the mark: it invites people to the channel only while
        the channel takes them (blocks.declared_announcement). A courtesy: a failure is only logged."""
        if not self._slack.announce_channel or not incident.announcement_ts:
            return
        try:
            self._client.chat_update(channel=self._slack.announce_channel, ts=incident.announcement_ts,
                                     text=blocks.declared_announcement(incident))
        except (SlackApiError, OSError) as error:
            log.warning("incident %s: updating the announcement failed: %s", incident.number, error)

    def _confirmed_gone(self, incident: Incident, seen: str | None) -> str | None:
        """`is_archived` is what it says. `channel_not_found` is also Slack's answer for a channel the
        token cannot see for a moment, so conversations.info is asked once before believing it deleted
        (None: the channel is there after all, and the original error stands)."""
        if seen not in GONE:
            return None
        if seen == "is_archived" or incident.channel_id is None:
            return seen
        try:
            found = self._client.conversations_info(channel=incident.channel_id)["channel"]
        except SlackApiError as error:
            return seen if slack_error(error) == "channel_not_found" else None
        except OSError:
            return None
        return "is_archived" if found.get("is_archived") else None

    def _in_thread(self, incident: Incident, text: str, **extra: Any) -> str | None:
        if incident.private:
            log.warning("incident %s: private, so not told in the announcement thread: %s", incident.number, text[:80])
            return None
        if not self._slack.announce_channel:
            log.warning("incident %s: its channel is archived and there is no announce_channel to post in instead; "
                        "not shown: %s", incident.number, text[:200])
            return None
        return self._announce(text, thread_ts=incident.announcement_ts, **extra)

    @contextmanager
    def _unless_gone(self, incident: Incident) -> Iterator[None]:
        """Skip a channel-only call (topic, invite) when the channel is archived or deleted, marking it so."""
        try:
            yield
        except SlackApiError as error:
            seen = self._confirmed_gone(incident, channel_gone(error))
            if seen is None:
                raise
            self.note_gone(incident, seen=seen)

    def _create_channel(self, incident: Incident) -> tuple[Incident, bool]:
        """The incident with its new channel, and whether Slack says that channel is private."""
        day = incident.declared_at.date()
        for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
            name = channel_name(self._slack.channel_prefix, day, incident.title, incident.number, attempt,
                                private=incident.private)
            try:
                # Slack: conversations.create, `is_private` (scope groups:write; channels:manage otherwise).
                private: dict[str, Any] = {"is_private": True} if incident.private else {}
                channel = self._client.conversations_create(name=name, **private)["channel"]
            except SlackApiError as error:
                if slack_error(error) == "name_taken":
                    continue
                raise StepFailed(f"creating the channel #{name}", slack_error(error)) from error
            log.info("incident %s: created channel %s (%s)", incident.number, channel["name"], channel["id"])
            return self._incidents.record_channel(incident.id, channel["id"], channel["name"]), bool(channel.get("is_private"))
        raise StepFailed("creating the channel", f"name_taken for {MAX_NAME_ATTEMPTS} names in a row")

    def _announce(self, text: str, *, thread_ts: str | None = None, **extra: Any) -> str:
        """Post in the announcement channel (`thread_ts`: in the thread of that message)."""
        channel = self._slack.announce_channel
        assert channel is not None, "only called when an announcement channel is configured"
        if thread_ts:
            extra["thread_ts"] = thread_ts
        with _step(f"announcing in <#{channel}>"):
            try:
                return self._client.chat_postMessage(channel=channel, text=text, **extra)["ts"]
            except SlackApiError as error:
                if slack_error(error) != "not_in_channel":
                    raise
            # A public announcement channel the bot was never added to: join it once and post again.
            self._client.conversations_join(channel=channel)
            return self._client.chat_postMessage(channel=channel, text=text, **extra)["ts"]

    def _invite_author(self, incident: Incident, channel: str, author: str) -> None:
        """The author of the message declared from, invited: Slack refusing this one person (deactivated,
        a guest, an external user: invites.PER_USER_ERRORS) is logged, never a failed set-up."""
        refused = invites.invite(self._client, channel, [author]).failed
        if refused:
            log.info("incident %s: the message's author %s was not invited: %s", incident.number, author, refused[author])

    @staticmethod
    def _ignore_harmless(call: object, **kwargs: object) -> bool:
        """True when the call did it; False when Slack answered it was so already (`already_in_channel`…)."""
        try:
            call(**kwargs)  # type: ignore[operator]
        except SlackApiError as error:
            if slack_error(error) not in HARMLESS:
                raise
            return False
        return True


def _redirected(incident: Incident, text: str, message_blocks: list[dict[str, Any]] | None) -> tuple[str, dict[str, Any]]:
    """A message meant for the channel as posted in the announcement thread: a line above it saying why."""
    note = archived_blocks.redirected(incident)
    shown = mrkdwn.fallback(f"{note}\n{text}")
    if not message_blocks:
        return shown, {}
    if len(message_blocks) >= mrkdwn.MESSAGE_BLOCKS:  # no room for the note's block: the fallback text says it
        return shown, {"blocks": message_blocks}
    return shown, {"blocks": [mrkdwn.context(note), *message_blocks]}


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
