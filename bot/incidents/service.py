"""What changing an incident does to the store. Every method is one transaction.

A change is written together with its timeline entry and the key of the Slack request that asked for
it, so a retried request finds its own work done instead of doing it twice. Methods return values
(`Declared`, `Changed`, `Unchanged`, `AlreadyDone`); the Slack edge turns them into messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.incidents import commands as c
from bot.incidents.values import EntryKind, Incident, Role, Status
from bot.timeline import ts_to_datetime
from storage import held_texts as held_store
from storage import incidents as store
from storage import postmortems as postmortem_store
from storage.database import KeptConnection, read_only, transaction
from storage.models import Incident as IncidentRow
from storage.models import TimelineEntry

log = logging.getLogger(__name__)

# The same person declaring the same title again this soon is a double submit, not a new incident.
DOUBLE_SUBMIT_WINDOW = timedelta(minutes=2)
# Channels whose incident `IncidentService.of_channel` remembers, at most (a few hundred bytes each).
MAX_REMEMBERED_CHANNELS = 10_000
# A declare form opened from a message and not submitted within this long is taken for abandoned.
KEEP_HELD_TEXTS = timedelta(days=2)
DECLARED_FROM_MESSAGE = "message"  # a Detection entry's data["declared_from"]


@dataclass(frozen=True)
class Declared:
    incident: Incident
    created: bool  # False: this request (or its double) had already declared `incident`


@dataclass(frozen=True)
class Changed:
    incident: Incident  # as it is after the change
    kind: EntryKind
    actor_id: str
    before: str | None = None
    after: str | None = None
    text: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    entry_id: int | None = None  # its timeline entry, marked once the change is shown in Slack


@dataclass(frozen=True)
class Unchanged:
    incident: Incident
    reason: str  # shown to the person who asked


@dataclass(frozen=True)
class AlreadyDone:
    """A retry of a request that was already acted on."""

    incident: Incident


Outcome = Changed | Unchanged | AlreadyDone


@dataclass(frozen=True)
class DeclaredFrom:
    """The message an incident was declared from, as its Detection entry holds it."""

    message: c.SourceMessage
    linked_ts: str | None  # the incident channel's line linking it, once posted


class IncidentNotFound(LookupError):
    pass


class ChannelIncident(NamedTuple):
    """The incident a channel belongs to, by what never changes once recorded: its id and number."""

    id: int
    number: int


class _Undone(Exception):
    """Raised inside a transaction to roll it back and answer `outcome` instead."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__()
        self.outcome = outcome


# Changes after which the status-update reminder must be re-armed (or stopped).
REMINDER_KINDS = frozenset({EntryKind.DECLARED, EntryKind.UPDATE, EntryKind.SEVERITY_CHANGED, EntryKind.STATUS_CHANGED,
                            EntryKind.RESOLVED, EntryKind.CLOSED})


class IncidentService:
    def __init__(
        self, sessions: sessionmaker[Session], clock: Clock, after_change: Callable[[Incident], None] | None = None
    ) -> None:
        self._sessions = sessions
        self._engine: Engine = sessions.kw["bind"]
        # Notes and status updates, Slack's answer waiting on each: on a connection of their own, not one
        # checked out of the pool each time (on PostgreSQL its pre-ping is a round trip more).
        self._entries = KeptConnection(self._engine, autocommit=self._engine.dialect.name == "postgresql")
        # Reads only: on SQLite they take no writers' lock (WAL gives them a snapshot), so a lookup
        # never queues behind a write, nor a write (a slash command's) behind a lookup.
        self._reads = read_only(sessions)
        self._clock = clock
        self._after_change = after_change  # told of every committed change that moves the reminder clock
        # channel id -> its incident's (id, number). Both are set once, when the channel is recorded, and
        # never change after (`record_channel` is the only writer of channel_id, and a channel id names one
        # channel for good), so every replica may keep its own copy without hearing of others' changes.
        # A channel that is no incident's is not remembered: another replica may provision it any moment.
        self._channels: dict[str, ChannelIncident] = {}

    def _changed(self, incident: Incident, kind: EntryKind) -> None:
        if self._after_change is None or kind not in REMINDER_KINDS:
            return
        try:
            self._after_change(incident)
        except Exception:  # the change is committed; a reminder that cannot be armed must not undo the answer
            log.exception("incident %s: re-arming the status-update reminder failed", incident.number)

    # --- declaring

    def declare(self, command: c.Declare, reporter_id: str, request_key: str) -> Declared:
        now = self._clock.now()
        with transaction(self._sessions) as session:
            counter = store.lock_counter(session)  # from here on, declarations run one at a time
            done = store.processed_request(session, request_key)
            earlier = store.by_id(session, done.incident_id) if done is not None and done.incident_id else None
            if earlier is not None:
                return Declared(store.snapshot(earlier), created=False)
            twin = store.recent_declaration(session, reporter_id, command.title, now - DOUBLE_SUBMIT_WINDOW)
            if twin is not None:
                return Declared(store.snapshot(twin), created=False)
            counter.value += 1
            row = IncidentRow(
                number=counter.value,
                title=command.title,
                description=command.description,
                severity=command.severity.value,
                status=Status.INVESTIGATING.value,
                reporter_id=reporter_id,
                declared_at=now,
                updated_at=now,
                private=command.private,
            )
            session.add(row)
            session.flush()
            # Whoever declares leads until someone else is named: an incident always has a commander.
            store.assign_role(session, row, Role.COMMANDER.value, reporter_id, reporter_id, now)
            if command.source is not None:
                _add_detection(session, row, command.source, now)
            store.add_entry(
                session, row, EntryKind.DECLARED, now, reporter_id, command.title,
                {"severity": command.severity.value, "description": command.description,
                 **({"private": True} if command.private else {})},
            )
            store.record_request(session, request_key, row.id, now)
            session.flush()
            declared = Declared(store.snapshot(row), created=True)
        self._changed(declared.incident, EntryKind.DECLARED)
        return declared

    # --- changing

    def apply(self, incident_id: int, command: c.IncidentCommand, actor_id: str, request_key: str, *,
              publish: bool = True) -> Outcome:
        """`publish`: the change is to be shown in Slack (its entry stays pending until it has been).

        The request's key is claimed first, under the incident's row lock, in the change's transaction:
        a retry finds it and is AlreadyDone; a command that changes nothing (Unchanged) rolls the claim
        back with the rest, so its retry is told the same reason again."""
        now = self._clock.now()
        try:
            if isinstance(command, ENTRY_ONLY):
                return self._add_entry(incident_id, command, actor_id, request_key, publish, now)
            return self._apply(incident_id, command, actor_id, request_key, publish, now)
        except _Undone as undone:
            return undone.outcome

    def _add_entry(self, incident_id: int, command: EntryOnly, actor_id: str, request_key: str, publish: bool,
                   now: datetime) -> Outcome:
        """`_apply` for a note or an update when it is news: the same rows as `_apply` writes, in as few
        round trips as the store allows, without an ORM session (store.add_entry_unless_closed): Slack's
        answer waits on this write, and a session's set-up and flush cost more than its statements.
        Anything else (closed, a retry, no such incident) changes nothing there and is left to `_apply`,
        which says which."""
        effect = _entry_effect(command)
        written = self._entries.run(lambda connection: store.add_entry_unless_closed(
            connection, incident_id, request_key, effect.kind.value, now, actor_id, effect.text or "", to_publish=publish),
            retry_lost=True)  # keyed by the request: a repeat writes nothing twice
        if written is None:
            return self._apply(incident_id, command, actor_id, request_key, publish, now)
        incident, entry_id = written
        changed = Changed(incident, effect.kind, actor_id, None, None, effect.text, {}, entry_id)
        self._changed(changed.incident, effect.kind)
        return changed

    def _apply(self, incident_id: int, command: c.IncidentCommand, actor_id: str, request_key: str, publish: bool,
               now: datetime) -> Outcome:
        with transaction(self._sessions) as session:
            row = store.by_id(session, incident_id, for_update=True)
            if row is None:
                raise IncidentNotFound(incident_id)
            if not store.claim_request(session, request_key, row.id, now):
                return AlreadyDone(store.snapshot(row))
            effect = _change(row, command)
            if isinstance(effect, Unchanged):
                raise _Undone(effect)
            kind, before, after, text, data = effect
            row.updated_at = now
            if kind is EntryKind.RESOLVED or (kind is EntryKind.CLOSED and row.resolved_at is None):
                row.resolved_at = now
            if kind is EntryKind.CLOSED:
                row.closed_at = now
            if kind is EntryKind.STATUS_CHANGED and before == Status.RESOLVED.value:
                row.status_reminded_at = now  # reopened: the status-update clock starts again from now
            if kind is EntryKind.ROLE_ASSIGNED:
                data["previous"] = store.assign_role(session, row, data["role"], data["user"], actor_id, now)
            if kind is EntryKind.CLOSED:  # the draft is owed from this commit on: a crash cannot lose it
                data["postmortem_id"] = postmortem_store.add_version(session, row.id, actor_id, now).id
            recorded = {**data, **({"from": before, "to": after} if after is not None else {})}
            entry = store.add_entry(session, row, kind, now, actor_id, text or "", recorded or None, to_publish=publish)
            session.flush()
            changed = Changed(store.snapshot(row), kind, actor_id, before, after, text, data, entry.id)
        self._changed(changed.incident, kind)
        return changed

    def make_private(self, incident_id: int, actor_id: str, request_key: str) -> Outcome:
        """`/incident private`: from this commit on nothing outside the incident's channel names it
        (docs/design.md, "Private incidents"). One transaction with its timeline entry (marked to be
        shown in Slack) and the request's key: a retried request is AlreadyDone. A closed incident can
        still be made private (its announcement is then edited). Never undone: an incident already
        private is Unchanged, saying so."""
        now = self._clock.now()
        with transaction(self._sessions) as session:
            row = _locked_unless_done(session, incident_id, request_key)
            if isinstance(row, AlreadyDone):
                return row
            if row.private:
                return Unchanged(store.snapshot(row), f"Incident {row.number} is already private. A private incident stays "
                                 "private: the bot never makes one public again, and Slack lets no app make a private "
                                 "channel public.")
            row.private = True
            row.updated_at = now
            entry = store.add_entry(session, row, EntryKind.MADE_PRIVATE, now, actor_id, "", {"channel": row.channel_id},
                                    to_publish=True)
            store.record_request(session, request_key, row.id, now)
            session.flush()
            return Changed(store.snapshot(row), EntryKind.MADE_PRIVATE, actor_id, data={"channel": row.channel_id},
                           entry_id=entry.id)

    # --- Slack provisioning progress

    def record_channel(self, incident_id: int, channel_id: str, channel_name: str) -> Incident:
        incident = self._update(incident_id, channel_id=channel_id, channel_name=channel_name)
        self._channels[channel_id] = ChannelIncident(incident.id, incident.number)
        return incident

    def record_summary(self, incident_id: int, ts: str) -> Incident:
        return self._update(incident_id, summary_ts=ts)

    def record_announcement(self, incident_id: int, ts: str) -> Incident:
        return self._update(incident_id, announcement_ts=ts)

    def mark_provisioned(self, incident_id: int) -> Incident:
        return self._update(incident_id, provisioned_at=self._clock.now())

    # --- the channel archived (or deleted) in Slack, and back

    def record_channel_archived(self, incident_id: int, *, by: str | None, seen: str, deleted: bool = False) -> Incident | None:
        """Note that Slack no longer takes posts in the incident's channel, with a timeline entry.

        `by`: who archived it (a Slack user id from the channel_archive event), None when the bot only
        found out from Slack's answer; `seen`: how it was learnt ("event", or Slack's error code such as
        "is_archived"). Returns the incident when this is news, None when it was already recorded (a
        second event, an event retried, a later post refused the same way), so the news is told once.
        """
        return self._mark_channel(incident_id, archived=True, by=by, data={"seen": seen, "deleted": deleted})

    def record_channel_unarchived(self, incident_id: int, *, by: str | None) -> Incident | None:
        """The channel takes posts again (someone unarchived it). None when it was not marked archived."""
        return self._mark_channel(incident_id, archived=False, by=by, data={})

    def _mark_channel(self, incident_id: int, *, archived: bool, by: str | None, data: dict[str, object]) -> Incident | None:
        """Set or clear the archived mark with its timeline entry, under the row's lock; None when the
        mark already reads so (the news is told once)."""
        now = self._clock.now()
        with transaction(self._sessions) as session:
            row = store.by_id(session, incident_id, for_update=True)
            if row is None:
                raise IncidentNotFound(incident_id)
            if (row.channel_archived_at is not None) == archived:
                return None
            row.channel_archived_at = now if archived else None
            kind = EntryKind.CHANNEL_ARCHIVED if archived else EntryKind.CHANNEL_UNARCHIVED
            store.add_entry(session, row, kind, now, by, "", {"channel": row.channel_id, **data})
            session.flush()
            return store.snapshot(row)

    # --- shown in Slack

    def mark_published(self, entry_id: int) -> None:
        with transaction(self._sessions) as session:
            store.mark_published(session, entry_id, self._clock.now())

    def unpublished(self, since: datetime, before: datetime) -> list[Changed]:
        """Changes acknowledged in [since, before) but never shown in Slack (the process stopped first),
        as the changes they were; the incident as it is now."""
        with self._reads() as session:
            changes = []
            for entry in store.unpublished(session, since, before):
                row = store.by_id(session, entry.incident_id)
                if row is None:
                    continue
                data = dict(entry.data or {})
                before_value, after_value = data.pop("from", None), data.pop("to", None)
                changes.append(Changed(store.snapshot(row), EntryKind(entry.kind), entry.actor_id or "", before_value,
                                       after_value, entry.text or None, data, entry.id))
            return changes

    # --- declaring from a message

    def hold_text(self, key: str, text: str) -> None:
        """Keep a message's text under `key` (the declare form's view id) until the form is submitted: for
        a text too long to ride in the form's private_metadata. Texts held over two days are forgotten."""
        now = self._clock.now()
        with transaction(self._sessions) as session:
            held_store.hold(session, key, text, now, forget_before=now - KEEP_HELD_TEXTS)

    def held_text(self, key: str) -> str | None:
        with self._reads() as session:
            return held_store.held(session, key)

    def declared_from(self, incident_id: int) -> DeclaredFrom | None:
        """The message the incident was declared from, as its Detection entry holds it; None when it was
        declared otherwise."""
        with self._reads() as session:
            entry = _source_entry(session, incident_id)
            if entry is None:
                return None
            data = entry.data or {}
            message = c.SourceMessage(
                channel_id=str(data.get("channel") or ""), ts=str(data.get("ts") or ""), author_id=entry.actor_id,
                text=entry.text, permalink=data.get("permalink"), bot_name=data.get("bot_name"),
                invite_author=bool(data.get("invite_author", True)))
            return DeclaredFrom(message, data.get("linked_ts"))

    def record_source_linked(self, incident_id: int, ts: str) -> None:
        """The incident channel's line linking the source message is posted (its ts): not posted again."""
        with transaction(self._sessions) as session:
            entry = _source_entry(session, incident_id, for_update=True)
            if entry is not None:
                entry.data = {**(entry.data or {}), "linked_ts": ts}  # a new dict: JSON columns track assignment

    # --- reading

    def get(self, incident_id: int) -> Incident:
        return self._get(incident_id)

    def find_by_channel(self, channel_id: str) -> Incident | None:
        with self._reads() as session:
            row = store.by_channel(session, channel_id)
            return store.snapshot(row) if row else None

    def of_channel(self, channel_id: str) -> ChannelIncident | None:
        """The incident whose channel this is, by id and number; None when the channel is no incident's.
        Asked of the store once per channel per process (see `_channels`): what may change (status,
        severity, title, roles) is never cached here, so read it with `get` or inside a change's
        transaction. Raises what the store raises when it is down, for a channel not yet remembered."""
        known = self._channels.get(channel_id)
        if known is not None:
            return known
        with self._reads() as session:
            found = store.id_and_number_of_channel(session, channel_id)
        if found is None:
            return None
        if len(self._channels) >= MAX_REMEMBERED_CHANNELS:  # a bound, never reached in practice: forget them all
            self._channels.clear()
        self._channels[channel_id] = known = ChannelIncident(*found)
        return known

    def close(self) -> None:
        """Closes the connection kept for notes and status updates (a later one opens another)."""
        self._entries.close()

    def find(self, reference: str) -> Incident | None:
        """By number (`42`, `#42`) or channel name (`inc-20261127-checkout`)."""
        reference = reference.strip().lstrip("#")
        with self._reads() as session:
            row = store.by_number(session, int(reference)) if reference.isdigit() else store.by_channel_name(session, reference)
            return store.snapshot(row) if row else None

    def list_open(self) -> list[Incident]:
        with self._reads() as session:
            return [store.snapshot(row) for row in store.open_incidents(session)]

    def unprovisioned(self) -> list[Incident]:
        with self._reads() as session:
            return [store.snapshot(row) for row in store.unprovisioned(session)]

    def _get(self, incident_id: int) -> Incident:
        with self._reads() as session:
            incident = store.current(session, incident_id)
        if incident is None:
            raise IncidentNotFound(incident_id)
        return incident

    def _update(self, incident_id: int, **fields: Any) -> Incident:
        with transaction(self._sessions) as session:
            row = store.by_id(session, incident_id, for_update=True)
            if row is None:
                raise IncidentNotFound(incident_id)
            for name, value in fields.items():
                setattr(row, name, value)
            session.flush()
            return store.snapshot(row)


def _add_detection(session: Session, row: IncidentRow, source: c.SourceMessage, now: datetime) -> None:
    """The message declared from, as the incident's first entry: a Detection at the message's own time
    (not later than now: a clock behind Slack's must not put it after the declaration), by its author,
    with its text as Slack stored it. Time to detect counts from it (bot/figures.py, `first_sign`).
    Its channel and ts go in `data`, not in the captured-message columns: those are unique per message,
    and the same message may start more than one incident."""
    data: dict[str, Any] = {"declared_from": DECLARED_FROM_MESSAGE, "channel": source.channel_id, "ts": source.ts,
                            "permalink": source.permalink, "invite_author": source.invite_author}
    if source.bot_name:
        data["bot_name"] = source.bot_name
    at = min(ts_to_datetime(source.ts), now)
    store.add_entry(session, row, EntryKind.DETECTION, at, source.author_id, c.without_nul(source.text), data)


def _source_entry(session: Session, incident_id: int, *, for_update: bool = False) -> TimelineEntry | None:
    return next((e for e in store.entries_of(session, incident_id, EntryKind.DETECTION.value, for_update=for_update)
                 if (e.data or {}).get("declared_from") == DECLARED_FROM_MESSAGE), None)


def _locked_unless_done(session: Session, incident_id: int, request_key: str) -> IncidentRow | AlreadyDone:
    """The incident's row, locked for the change; AlreadyDone when this request was already acted on
    (a Slack retry). Raises IncidentNotFound."""
    row = store.by_id(session, incident_id, for_update=True)
    if row is None:
        raise IncidentNotFound(incident_id)
    if store.processed_request(session, request_key) is not None:
        return AlreadyDone(store.snapshot(row))
    return row


class _Effect(NamedTuple):
    """What a command did, as the timeline records it."""

    kind: EntryKind
    before: str | None
    after: str | None
    text: str | None
    data: dict[str, Any]


# Commands that only add a timeline entry (and touch `updated_at`): `IncidentService._add_entry`.
EntryOnly = c.AddNote | c.PostUpdate
ENTRY_ONLY = (c.AddNote, c.PostUpdate)


def _refusal(incident: Incident, command: c.IncidentCommand) -> Unchanged | None:
    """Why the command cannot change the incident at all (it is closed), or None."""
    if incident.status is not Status.CLOSED:
        return None
    if isinstance(command, c.Close):
        return Unchanged(incident, f"Incident {incident.number} is already closed.")
    return Unchanged(
        incident,
        f"Incident {incident.number} is closed, so it can no longer change. "
        "If the problem is back, declare a new incident with `/incident declare`.",
    )


def _entry_effect(command: EntryOnly) -> _Effect:
    match command:
        case c.PostUpdate(text):
            return _Effect(EntryKind.UPDATE, None, None, text, {})
        case c.AddNote(text, kind):
            return _Effect(kind, None, None, text, {})
    raise TypeError(f"not an entry-only command: {command!r}")


def _change(row: IncidentRow, command: c.IncidentCommand) -> _Effect | Unchanged:
    """The rules: what a command does to an incident in its current state (mutating the row), or why
    it does nothing."""
    incident = store.snapshot(row)
    status = incident.status
    refusal = _refusal(incident, command)
    if refusal is not None:
        return refusal
    match command:
        case c.SetStatus(Status.RESOLVED) | c.Resolve():
            if status is Status.RESOLVED:
                return Unchanged(incident, f"Incident {incident.number} is already resolved; `/incident close` closes it.")
            summary = command.summary if isinstance(command, c.Resolve) else None
            row.status = Status.RESOLVED.value
            row.resolution_summary = summary or row.resolution_summary
            return _Effect(EntryKind.RESOLVED, status.value, Status.RESOLVED.value, summary, {})
        case c.SetStatus(new_status):
            if status is new_status:
                return Unchanged(incident, f"The status is already {status.label}.")
            row.status = new_status.value
            if status is Status.RESOLVED:
                row.resolved_at = None  # reopened: it is not resolved any more
            return _Effect(EntryKind.STATUS_CHANGED, status.value, new_status.value, None, {})
        case c.SetSeverity(severity):
            if incident.severity is severity:
                return Unchanged(incident, f"The severity is already {severity.label}.")
            row.severity = severity.value
            return _Effect(EntryKind.SEVERITY_CHANGED, incident.severity.value, severity.value, None, {})
        case c.AssignRole(role, user_id):
            if incident.roles.get(role) == user_id:
                return Unchanged(incident, f"<@{user_id}> is already the {role.label.lower()}.")
            return _Effect(EntryKind.ROLE_ASSIGNED, incident.roles.get(role), user_id, None, {"role": role.value, "user": user_id})
        case c.PostUpdate() | c.AddNote():
            return _entry_effect(command)
        case c.Close():
            row.status = Status.CLOSED.value
            return _Effect(EntryKind.CLOSED, status.value, Status.CLOSED.value, None, {})
    raise TypeError(f"not an incident command: {command!r}")
