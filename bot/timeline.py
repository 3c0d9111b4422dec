"""The incident timeline: captured channel messages and the bot's own entries, in the order they happened.

Capture is exactly-once: a message is stored under its (channel, ts), which Slack keeps for the message
whatever path or retry delivers it, and each event's id is stored with the change it made. Edits keep
the earlier text, deletions only mark the entry (the postmortem leaves it out), and pins or :pushpin:
reactions mark key events. An edit, deletion or mark that arrives before its message leaves a
placeholder under that ts, which the message fills when it comes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, Row
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.incidents.values import EntryKind, Status
from bot.spool import Spool
from storage import timeline as store
from storage.database import STORE_UNAVAILABLE, KeptConnection, read_only
from storage.models import TimelineEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelMessage:
    """A human's message in a channel, as captured."""

    channel_id: str
    ts: str
    user_id: str
    text: str
    thread_ts: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    permalink: str | None = None
    # Messages it forwards (shares), as Slack attached them: [{author_id, author_name, channel_id,
    # channel_name, ts, text (mrkdwn), from_url}], keys present only when Slack gave them. Stored in
    # the entry's `data` as "shared".
    shared: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """Nothing a reader could read: no text, no file, no forwarded message."""
        return not self.text.strip() and not self.files and not self.shared


class Captured(StrEnum):
    STORED = "stored"
    UPDATED = "updated"
    DUPLICATE = "duplicate"  # already stored: a retry, or a second path
    SPOOLED = "spooled"  # the store is down: kept on local disk, written to the store when it is back
    NOT_AN_INCIDENT = "not_an_incident"  # the channel is no incident's, or its incident is closed


# Not frozen, though nothing changes one (dataclasses.replace makes another): a frozen dataclass's
# __init__ sets each of its 14 fields through object.__setattr__, 4.5 µs an item against 0.5, and a
# postmortem reads every entry of the incident (bench/postmortem.py).
@dataclass(slots=True)
class TimelineItem:
    id: int
    kind: EntryKind
    occurred_at: datetime
    actor_id: str | None
    text: str
    data: dict[str, Any]
    slack_ts: str | None = None
    thread_ts: str | None = None
    permalink: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    edited: bool = False
    earlier_texts: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    key_event: bool = False

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.slack_ts


def visible(items: list[TimelineItem]) -> list[TimelineItem]:
    """What readers see: deleted messages, and placeholders their message never filled, are left out."""
    message = EntryKind.MESSAGE  # looked up once, not at each of a timeline's entries
    return [i for i in items if not i.deleted and (i.actor_id is not None or i.kind is not message)]


def ts_to_datetime(ts: str) -> datetime:
    """Slack's `ts` ("1700000000.000100") as an exact UTC time (float would round the microseconds)."""
    seconds = Decimal(ts)
    whole = int(seconds)
    return datetime.fromtimestamp(whole, UTC).replace(microsecond=int((seconds - whole) * 1_000_000))


class TimelineService:
    """Records the channel and reads the timeline. Writes from captured events go through a
    `BatchWriter`: under load many events share one transaction (and one commit), and each caller
    still returns only once its own event is committed."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, *, max_batch: int = 200,
                 spool: Spool | None = None) -> None:
        self._reads = read_only(sessions)
        self._writer = BatchWriter(sessions, clock, max_batch)
        self._spool = spool
        self._stopping = threading.Event()
        self._spooled = threading.Event()  # set when something waits in the spool
        self._drainer: threading.Thread | None = None
        if spool is not None:
            self._drainer = threading.Thread(target=self._drain, name="spool-drainer", daemon=True)
            self._drainer.start()
            if len(spool):
                self._spooled.set()  # left by an earlier run

    def capture(self, message: ChannelMessage, event_key: str) -> Captured:
        # The spool's JSON only if it is spooled: a deep copy of every message otherwise costs for nothing.
        return self._record(lambda: {"op": "capture", "message": dataclasses.asdict(message), "key": event_key},
                            CaptureMessage(message, event_key))

    def edit(self, message: ChannelMessage, edited_at: datetime, event_key: str) -> Captured:
        """`message` as it reads after the edit. An edit of a message never captured captures it."""
        return self._record(lambda: {"op": "edit", "message": dataclasses.asdict(message), "at": edited_at.isoformat(),
                                     "key": event_key})

    def delete(self, channel_id: str, ts: str, deleted_at: datetime, event_key: str) -> Captured:
        return self._record(lambda: {"op": "delete", "channel": channel_id, "ts": ts, "at": deleted_at.isoformat(), "key": event_key})

    def mark_key_event(self, channel_id: str, ts: str, mark: str, on: bool, event_key: str) -> Captured:
        """`mark` says who marked it and how ("pin", "reaction:U0ALICE"): it stays a key event while any
        mark remains, so one person removing their :pushpin: does not undo another's."""
        return self._record(lambda: {"op": "mark", "channel": channel_id, "ts": ts, "mark": mark, "on": on, "key": event_key})

    @property
    def spooled(self) -> int:
        """Writes waiting on local disk for the store."""
        return len(self._spool) if self._spool is not None else 0

    def _record(self, write: Callable[[], dict[str, Any]], operation: Operation | None = None) -> Captured:
        """Write to the store; when it is down, to the spool. While anything waits in the spool, new
        writes queue behind it, so they reach the store in the order they came. `write` gives the JSON
        the spool keeps; `operation` applies it (made from that JSON when not given)."""
        if self._spool is not None and len(self._spool):
            return self._to_spool(write())
        try:
            return self._writer.run(operation or _operation(write()))
        except STORE_UNAVAILABLE:
            if self._spool is None:
                raise
            return self._to_spool(write())

    def _to_spool(self, write: dict[str, Any]) -> Captured:
        assert self._spool is not None
        self._spool.append(write)
        self._spooled.set()
        return Captured.SPOOLED

    def _drain(self, pause: float = 1.0) -> None:
        """Write what waits in the spool to the store, oldest first, as soon as the store takes it."""
        assert self._spool is not None
        while not self._stopping.is_set():
            self._spooled.wait(timeout=pause)
            oldest = self._spool.oldest()
            if oldest is None:
                self._spooled.clear()
                continue
            spooled_id, write = oldest
            try:
                self._writer.run(_operation(write))
            except STORE_UNAVAILABLE:
                self._stopping.wait(pause)  # still down: try again shortly
                continue
            except Exception:  # a write the store refuses for good must not block the ones behind it
                log.exception("a spooled timeline write was refused by the store and is dropped: %s", write.get("key"))
            self._spool.remove(spooled_id)

    def items(self, incident_id: int) -> list[TimelineItem]:
        """Everything recorded for the incident, in order; deleted messages and unfilled placeholders
        included (callers decide what to show)."""
        with self._reads() as session:
            return [item for rows in store.entry_rows(session, incident_id, into=item_of_columns) for item in rows]

    def close(self) -> None:
        self._stopping.set()
        self._spooled.set()
        if self._drainer is not None:
            self._drainer.join(timeout=10)
        self._writer.close()


class Batch:
    """The timeline writes of one transaction, each exactly once: a captured message is stored under its
    (channel, ts), unique; an edit, deletion or mark claims its event's key first, and a key already
    claimed means a retry."""

    def __init__(self, connection: Connection, clock: Clock) -> None:
        self._connection = connection
        self._clock = clock
        self._orm: Session | None = None
        self._incidents: dict[str, tuple[int, str] | None] = {}  # channel -> (incident id, status), this batch

    @property
    def _session(self) -> Session:
        """An ORM session in this batch's transaction, made when an edit, deletion or mark first needs
        one: captured messages, nearly every batch, need only the connection."""
        if self._orm is None:
            self._orm = Session(bind=self._connection, autoflush=True)
        return self._orm

    def finish(self) -> None:
        """Write what the ORM session holds; the caller then commits the connection's transaction."""
        if self._orm is not None:
            self._orm.flush()
            self._orm.close()

    def apply(self, operations: list[Operation]) -> list[Captured]:
        """Each operation's outcome, in order. Consecutive captured messages, the bulk of any batch, are
        written together (`capture_many`); other operations one by one, between them."""
        results: list[Captured] = []
        run: list[CaptureMessage] = []
        for operation in operations:
            if isinstance(operation, CaptureMessage):
                run.append(operation)
                continue
            results += self.capture_many(run)
            run = []
            results.append(operation(self))
        return results + self.capture_many(run)

    def capture_many(self, captures: list[CaptureMessage]) -> list[Captured]:
        """`capture` for each, with the same outcomes as one by one in order, in one statement whatever
        their number: each message is inserted into its channel's incident unless that is closed. A
        captured message needs no claimed event key: its (channel, ts) is unique, so a retry, or the same
        message by another path or replica, finds it there (a duplicate), and a placeholder waiting for it
        is filled. Only what was not inserted costs more statements: one asking whose channels theirs are,
        and the fills.

        When the statement cannot be made or fails (a ts that is no time, a value the store refuses), the
        messages of no open incident's channel are set aside and the rest written again: those are
        acknowledged and dropped, as every such message is, and only an open incident's can fail."""
        if not captures:
            return []
        first: dict[tuple[str, str], int] = {}  # (channel, ts) -> the index of its first capture here
        for i, c in enumerate(captures):
            first.setdefault((c.message.channel_id, c.message.ts), i)
        if self._orm is not None:
            self._orm.flush()  # an edit's placeholder this batch made must be there for the statements below
        try:
            inserted = store.insert_messages(self._connection, [_message_row(captures[i].message) for i in first.values()])
        except Exception as error:
            try:  # in a PostgreSQL transaction the failed statement aborted it: the writer then retries alone
                self._learn_incidents({c.message.channel_id for c in captures})
            except Exception:
                raise error from None
            kept = [i for i in first.values() if self._open_incident(captures[i].message.channel_id) is not None]
            if len(kept) == len(first):
                raise
            inserted = store.insert_messages(self._connection, [_message_row(captures[i].message) for i in kept])
        stored = [(c.message.channel_id, c.message.ts) in inserted and first[c.message.channel_id, c.message.ts] == i
                  for i, c in enumerate(captures)]
        self._learn_incidents({c.message.channel_id for c, done in zip(captures, stored, strict=True) if not done})
        results = [Captured.STORED if done else self._not_inserted(c.message) for c, done in zip(captures, stored, strict=True)]
        if self._orm is not None:
            self._orm.expire_all()  # what the session read before these statements may have changed
        return results

    def _not_inserted(self, message: ChannelMessage) -> Captured:
        """Why a captured message was not inserted: its channel is no open incident's, it is there already,
        or it was a placeholder an edit, deletion or mark left, now filled."""
        if self._open_incident(message.channel_id) is None:
            return Captured.NOT_AN_INCIDENT
        filled = store.fill_placeholder(self._connection, message.channel_id, message.ts, _content(message))
        return Captured.STORED if filled else Captured.DUPLICATE

    def edit(self, message: ChannelMessage, edited_at: datetime, event_key: str) -> Captured:
        incident_id = self._claim(message.channel_id, event_key)
        if isinstance(incident_id, Captured):
            return incident_id
        entry = store.by_ts(self._session, message.channel_id, message.ts)
        if entry is None or entry.actor_id is None:
            _fill(entry or self._placeholder(incident_id, message.channel_id, message.ts), message)
            return Captured.STORED
        if entry.text == message.text:
            return Captured.DUPLICATE  # Slack also says "changed" for unfurls and reply counts
        entry.earlier_texts = [*(entry.earlier_texts or []), {"text": entry.text, "until": edited_at.isoformat()}]
        entry.text = message.text
        entry.files = message.files or entry.files
        entry.edited_at = edited_at
        return Captured.UPDATED

    def delete(self, channel_id: str, ts: str, deleted_at: datetime, event_key: str) -> Captured:
        incident_id = self._claim(channel_id, event_key)
        if isinstance(incident_id, Captured):
            return incident_id
        entry = store.by_ts(self._session, channel_id, ts) or self._placeholder(incident_id, channel_id, ts)
        if entry.deleted_at is not None:
            return Captured.DUPLICATE
        entry.deleted_at = deleted_at
        return Captured.UPDATED

    def mark_key_event(self, channel_id: str, ts: str, mark: str, on: bool, event_key: str) -> Captured:
        incident_id = self._claim(channel_id, event_key)
        if isinstance(incident_id, Captured):
            return incident_id
        entry = store.by_ts(self._session, channel_id, ts) or self._placeholder(incident_id, channel_id, ts)
        marks = set(entry.key_marks or [])
        if (mark in marks) == on:
            return Captured.DUPLICATE
        entry.key_marks = sorted(marks | {mark} if on else marks - {mark}) or None
        return Captured.UPDATED

    def _learn_incidents(self, channel_ids: set[str]) -> None:
        """Ask, in one query, which incidents the channels this batch has not asked about yet are."""
        unknown = channel_ids - self._incidents.keys()
        if unknown:
            found = store.capturing_incidents(self._connection, unknown)
            self._incidents.update({channel: found.get(channel) for channel in unknown})

    def _open_incident(self, channel_id: str) -> int | None:
        """The id of the open incident this channel is; None if it is a closed one's, or none's."""
        self._learn_incidents({channel_id})
        incident = self._incidents[channel_id]
        return incident[0] if incident is not None and incident[1] != Status.CLOSED.value else None

    def _claim(self, channel_id: str, event_key: str) -> int | Captured:
        """The id of the open incident this channel belongs to, with the event claimed; or why not."""
        incident_id = self._open_incident(channel_id)
        if incident_id is None:
            return Captured.NOT_AN_INCIDENT
        if not store.claim_event(self._connection, event_key, incident_id, self._clock.now()):
            return Captured.DUPLICATE
        return incident_id

    def _placeholder(self, incident_id: int, channel_id: str, ts: str) -> TimelineEntry:
        entry = TimelineEntry(
            incident_id=incident_id, kind=EntryKind.MESSAGE, channel_id=channel_id, slack_ts=ts,
            occurred_at=ts_to_datetime(ts), actor_id=None, text="",
        )
        self._session.add(entry)
        self._session.flush()  # visible to the Core statements that follow in this batch
        return entry


Operation = Callable[[Batch], Captured]


@dataclass(frozen=True, slots=True)
class CaptureMessage:
    """Capturing one message, as an operation a batch can also apply together with others."""

    message: ChannelMessage
    key: str

    def __call__(self, batch: Batch) -> Captured:
        return batch.capture_many([self])[0]


class _Waiting:
    """One operation waiting to be written, and how its thread is woken: with its outcome, or to lead.

    Its thread sleeps on a lock held from the start, which waking releases: each wake is one futex call,
    where an Event's condition takes several lock operations and a list of waiters (about 6 µs of CPU per
    captured message under load here). Each wait is matched by one wake, and a thread is woken at most
    once before it waits again: to lead (then its own batch settles it, with nobody waiting), or settled."""

    __slots__ = ("operation", "outcome", "error", "lead", "_asleep")

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        self.outcome: Captured | None = None
        self.error: BaseException | None = None
        self.lead = False
        self._asleep = threading.Lock()
        self._asleep.acquire()

    def wait(self) -> None:
        self._asleep.acquire()

    def wake(self) -> None:
        self._asleep.release()

    def settle(self, outcome: Captured | None = None, error: BaseException | None = None) -> None:
        self.outcome, self.error = outcome, error
        self.wake()


class BatchWriter:
    """Group commit, as databases do it for their own log: the caller that finds nobody writing writes
    (its own operation, with every one waiting at that moment, in one transaction, or on PostgreSQL, for
    a batch of captured messages only, in autocommit: see __init__); callers arriving
    meanwhile wait, and when the write is done the first of them leads the next one. Alone, a caller
    writes on its own thread, without a hand-off to another; under load, batches grow by themselves.
    When a batch fails, its operations are retried one transaction each, so one bad event fails alone."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, max_batch: int) -> None:
        self._engine: Engine = sessions.kw["bind"]
        self._clock = clock
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._writing = False
        # One connection for every batch, used by one leader at a time: a pool checkout per batch (with
        # PostgreSQL's pre-ping, a round trip) and the rollback of its return cost more than its writes.
        # On PostgreSQL a second one, in autocommit, for batches of captured messages only (nearly all):
        # each of their statements stands alone (a message is stored once under its (channel, ts) by
        # whichever statement stores it), so they need no BEGIN and COMMIT, two of their four round trips.
        self._autocommit_captures = self._engine.dialect.name == "postgresql"
        self._connections = {autocommit: KeptConnection(self._engine, autocommit=autocommit)  # by: in autocommit?
                             for autocommit in {False, self._autocommit_captures}}

    def run(self, operation: Operation) -> Captured:
        """Apply `operation` and return once it is committed; raises what the store raised."""
        mine = _Waiting(operation)
        with self._lock:
            self._waiting.append(mine)
            mine.lead = not self._writing
            self._writing = True
        if not mine.lead:
            mine.wait()
        if mine.lead:  # first in line: write the batch this operation heads
            with self._lock:
                batch = [self._waiting.popleft() for _ in range(min(self._max_batch, len(self._waiting)))]
            try:
                self._write(batch)
            finally:
                with self._lock:
                    if self._waiting:
                        following = self._waiting[0]
                        following.lead = True
                        following.wake()
                    else:
                        self._writing = False
        if mine.error is not None:
            raise mine.error
        assert mine.outcome is not None
        return mine.outcome

    def close(self) -> None:
        """Writes happen on their callers' threads: only the connections are left to close."""
        for kept in self._connections.values():
            kept.close()

    def _write(self, batch: list[_Waiting]) -> None:
        operations = [waiting.operation for waiting in batch]
        autocommit = self._autocommit_captures and all(isinstance(operation, CaptureMessage) for operation in operations)

        def write(connection: Connection) -> list[Captured]:
            # Core: an ORM session per batch cost more than its statements.
            with contextlib.nullcontext() if autocommit else connection.begin():
                writes = Batch(connection, self._clock)
                outcomes = writes.apply(operations)
                writes.finish()
            return outcomes

        try:
            outcomes = self._connections[autocommit].run(write)  # a connection the store went away from is dropped
        except Exception as error:
            if len(batch) > 1 and not isinstance(error, STORE_UNAVAILABLE):  # one bad event fails alone
                for waiting in batch:
                    self._write([waiting])
            else:
                for waiting in batch:
                    waiting.settle(error=error)
            return
        for waiting, outcome in zip(batch, outcomes, strict=True):
            waiting.settle(outcome)


def _operation(write: dict[str, Any]) -> Operation:
    """A recorded write (as spooled: plain JSON) as the Batch operation that applies it."""
    key = write["key"]
    match write["op"]:
        case "capture":
            return CaptureMessage(ChannelMessage(**write["message"]), key)
        case "edit":
            edited, at = ChannelMessage(**write["message"]), datetime.fromisoformat(write["at"])
            return lambda batch: batch.edit(edited, at, key)
        case "delete":
            return lambda batch: batch.delete(write["channel"], write["ts"], datetime.fromisoformat(write["at"]), key)
        case "mark":
            return lambda batch: batch.mark_key_event(write["channel"], write["ts"], write["mark"], write["on"], key)
    raise ValueError(f"not a timeline write: {write.get('op')!r}")


def _fill(entry: TimelineEntry, message: ChannelMessage) -> None:
    for name, value in _content(message).items():
        setattr(entry, name, value)


def _message_row(message: ChannelMessage) -> dict[str, Any]:
    """The timeline row of a captured message, but its incident: storage.timeline.insert_messages finds it."""
    return {**_content(message), "kind": EntryKind.MESSAGE.value,
            "channel_id": message.channel_id, "slack_ts": message.ts, "occurred_at": ts_to_datetime(message.ts)}


def _content(message: ChannelMessage) -> dict[str, Any]:
    return {
        "actor_id": message.user_id,
        "text": message.text,
        "thread_ts": message.thread_ts,
        "files": message.files or None,
        "permalink": message.permalink,
        "data": {"shared": message.shared} if message.shared else None,
    }


def item_of(entry: TimelineEntry | Row[Any]) -> TimelineItem:
    """A stored entry (an ORM object, or a row with the same column names) as the domain sees it."""
    return TimelineItem(
        id=entry.id,
        kind=EntryKind(entry.kind),
        occurred_at=entry.occurred_at,
        actor_id=entry.actor_id,
        text=entry.text,
        data=entry.data or {},
        slack_ts=entry.slack_ts,
        thread_ts=entry.thread_ts,
        permalink=entry.permalink,
        files=entry.files or [],
        edited=entry.edited_at is not None,
        earlier_texts=entry.earlier_texts or [],
        deleted=entry.deleted_at is not None,
        key_event=bool(entry.key_marks),
    )


_KINDS = {kind.value: kind for kind in EntryKind}  # a dict lookup: EntryKind(value) costs ten times more


def item_of_columns(id_: int, kind: str, occurred_at: datetime, actor_id: str | None, text: str, data: Any,
                    slack_ts: str | None, thread_ts: str | None, permalink: str | None, files: Any,
                    edited_at: datetime | None, earlier_texts: Any, deleted_at: datetime | None, key_marks: Any) -> TimelineItem:
    """A row of storage.timeline.entry_rows (its ENTRY_COLUMNS, converted) as the domain sees it: the
    same item `item_of` makes of the stored entry, built positionally (entry_rows' `into`)."""
    return TimelineItem(id_, _KINDS[kind], occurred_at, actor_id, text, data or {}, slack_ts, thread_ts, permalink,
                        files or [], edited_at is not None, earlier_texts or [], deleted_at is not None, bool(key_marks))
