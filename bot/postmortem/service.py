"""Postmortem versions: requested, drafted from the record, stored, and marked once they are in Slack.

A version is requested in the transaction that asks for it (the close itself, or `/incident
postmortem` with its request key), so an acknowledged request is never lost: drafting happens after,
and a version left undrafted by a crash is drafted at the next start. Old versions are kept.
"""

from __future__ import annotations

import gc
import heapq
import logging
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from bot.charts.incident import Reading
from bot.clock import Clock
from bot.config import REDACTED, Settings
from bot.diagnostics.service import DiagnosticsService
from bot.diagnostics.watchdog import watched_targets
from bot.followups import followup_view
from bot.housekeeping import KEEP_SAMPLES
from bot.incidents.values import OPERATOR, Role
from bot.paging.service import page_view
from bot.postmortem.draft import (
    AlertRecord,
    ChartRef,
    Draft,
    IncidentRecord,
    MessageTally,
    RoleSpell,
    ZoneOffsets,
    build,
    chart_window,
    offset_changes,
)
from bot.postmortem.templates import (
    PostmortemTemplate,
    TemplateProblem,
    default_template,
)
from bot.slack_markup import Lookup, References
from bot.timeline import TimelineItem, item_of_columns
from bot.timeline_words import USER_ID
from storage import followups as followup_store
from storage import incidents as incident_store
from storage import paging as paging_store
from storage import postmortems as store
from storage import timeline as timeline_store
from storage.database import read_only, transaction
from storage.models import Postmortem, PostmortemChart

log = logging.getLogger(__name__)

MAX_NAME_LOOKUPS = 50  # a draft must not wait on hundreds of users.info calls
# A timeline longer than this is drafted streamed (PostmortemService.draft); one this long, read whole,
# holds about 20 MB of entries while it is drafted (bench/postmortem.py).
STREAM_ABOVE_ENTRIES = 20_000


@dataclass(frozen=True)
class PostmortemView:
    id: int
    incident_id: int
    version: int
    requested_by: str | None
    requested_at: datetime
    drafted_at: datetime | None = None
    # The Markdown as stored, or as UTF-8 when the view is the draft just made (draft() keeps a big
    # draft out of a Python str: with one emoji in it, a str takes four bytes a character).
    content: str | bytes | None = None
    template: str | None = None
    problem: str | None = None
    file_id: str | None = None
    permalink: str | None = None

    @property
    def markdown(self) -> str | None:
        return self.content.decode() if isinstance(self.content, bytes) else self.content

    @property
    def drafted(self) -> bool:
        return self.content is not None


@dataclass(frozen=True)
class ChartFile:
    """A chart drawn for a version, as stored: uploaded beside its Markdown under `filename`."""

    filename: str
    title: str
    caption: str  # one sentence; also the image's alt text in Slack
    png: bytes
    width: int  # pixels
    height: int


class PostmortemService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        *,
        zone: ZoneInfo,
        template: PostmortemTemplate,
        team_names: dict[str, str],
        bot_user_id: str | None,
        secrets: list[str],
        lookup: Lookup | None = None,
        targets: dict[str, bool] | None = None,
        stream_above: int = STREAM_ABOVE_ENTRIES,
    ) -> None:
        self._sessions = sessions
        self._stream_above = stream_above  # see `draft`
        self._reads = read_only(sessions)
        self._clock = clock
        self._zone = zone
        self._template = template
        self._team_names = team_names
        self._bot_user_id = bot_user_id
        # As UTF-8 (_encoded redacts the encoded Markdown); a secret inside another: the whole one first.
        self._secrets = [s.encode() for s in sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)]
        self._lookup = lookup  # asks Slack for names the store does not know yet (None: the CLI, no Slack)
        self._targets = targets or {}  # each configured diagnostics target -> whether the watchdog samples it

    @classmethod
    def from_settings(cls, settings: Settings, sessions: sessionmaker[Session], clock: Clock, *,
                      bot_user_id: str | None = None, lookup: Lookup | None = None) -> PostmortemService:
        return cls(
            sessions, clock,
            zone=ZoneInfo(settings.file.postmortem.timezone),
            template=settings.postmortem_template or default_template(),
            team_names={key: team.display_name or key for key, team in settings.file.teams.items()},
            bot_user_id=bot_user_id,
            secrets=settings.secrets(),
            lookup=lookup,
            targets=watched_targets(DiagnosticsService(sessions, clock, settings.file.diagnostics)),
        )

    def request(self, incident_id: int, requested_by: str | None, request_key: str) -> PostmortemView | None:
        """A new version to draft; None when this request was already acted on (a Slack retry)."""
        now = self._clock.now()
        with transaction(self._sessions) as session:
            incident = incident_store.by_id(session, incident_id, for_update=True)  # versions are numbered one at a time
            if incident is None:
                raise LookupError(incident_id)
            if incident_store.processed_request(session, request_key) is not None:
                return None
            row = store.add_version(session, incident_id, requested_by, now)
            incident_store.record_request(session, request_key, incident_id, now)
            return postmortem_view(row)

    def draft(self, postmortem_id: int) -> PostmortemView:
        """Draft the version from the record as it is now; a version already drafted is returned as it is.

        A timeline of more than `stream_above` entries (STREAM_ABOVE_ENTRIES) is streamed, so that a
        100,000-entry one is never in memory at once: a first read takes every entry but the channel
        messages, and counts the messages (_summary); the template then lays the timeline out as a second
        read streams the messages (build's `messages`). A smaller one is read once, whole (_record), which
        costs less than two passes over its messages; both give the same Markdown. The Markdown is kept
        as UTF-8 and stored as such (storage.postmortems.store_markdown). The view returned holds that
        UTF-8 (its `markdown` decodes it)."""
        # The record, the draft and their 100,000 objects are made and freed before the collector runs
        # again: each time it resumed in between, its first pass walked them all (collector_paused).
        with collector_paused():
            made = self._drafted(postmortem_id)
        if isinstance(made, PostmortemView):
            return made
        asked, markdown, template, problem, drawn = made
        with transaction(self._sessions) as session:
            now = self._clock.now()
            # Only while the version is not drafted: another process may have drafted it meanwhile; keep theirs.
            if not store.store_markdown(session, postmortem_id, markdown, template, problem, now):
                row = store.by_id(session, postmortem_id)
                assert row is not None
                return postmortem_view(row)
            store.add_charts(session, [
                PostmortemChart(postmortem_id=postmortem_id, position=i, target=ref.target, filename=ref.filename,
                                title=ref.title, caption=ref.caption, png=png.png, width=png.width, height=png.height)
                for i, (ref, png) in enumerate(drawn)
            ])
        stored = bytes(markdown)  # once the store's copy is freed; the view's copy is immutable
        del markdown
        return replace(asked, drafted_at=now, content=stored, template=template, problem=problem)

    def _drafted(self, postmortem_id: int) -> PostmortemView | tuple[PostmortemView, bytearray, str | None, str | None,
                                                                         list[tuple[ChartRef, ChartFile]]]:
        """draft()'s reading, building, drawing and rendering: the version as stored when it is drafted
        already, else (the version asked for, its Markdown as UTF-8, the team's template if it was used,
        why it was not, the charts drawn)."""
        with self._reads() as session:
            row = store.by_id(session, postmortem_id)
            if row is None:
                raise LookupError(postmortem_id)
            if row.markdown is not None:
                return postmortem_view(row)
            drafted_at = self._clock.now()
            asked = replace(postmortem_view(row), drafted_at=None)
            streamed = timeline_store.entry_count(session, row.incident_id) > self._stream_above
            record, tally = self._summary(session, row.incident_id) if streamed else (self._record(session, row.incident_id), None)
            record = self._with_samples(session, record, drafted_at)
        record = self._with_names(record)  # may ask Slack: outside any transaction
        streams = self._messages(asked.incident_id, tally.last_id) if tally is not None else None
        try:
            draft = build(record, self._zone, version=asked.version, drafted_at=drafted_at,
                          messages=(tally, streams) if tally is not None and streams is not None else None)
            draft, drawn = self._draw(draft)  # outside any transaction
            markdown, template, problem = (self._render_utf8(draft, streams.close) if streams is not None
                                           else self._render_utf8(draft))
        finally:
            if streams is not None:
                streams.close()
        return asked, markdown, template, problem, drawn

    def preview(self, incident_id: int) -> str:
        """A draft of the record so far, not stored (for an incident with no version yet). Its charts are
        described and referenced by file name, not drawn: nothing is written anywhere."""
        drafted_at = self._clock.now()
        with self._reads() as session:
            version = len(store.versions(session, incident_id)) + 1
            record = self._with_samples(session, self._record(session, incident_id), drafted_at)
        return self._render_utf8(build(self._with_names(record), self._zone, version=version, drafted_at=drafted_at))[0].decode()

    def charts(self, postmortem_id: int) -> list[ChartFile]:
        """The PNGs drawn for a version, in the order its Markdown shows them (none before it is drafted)."""
        with self._sessions() as session:
            return [ChartFile(c.filename, c.title, c.caption, c.png, c.width, c.height) for c in store.charts(session, postmortem_id)]

    def record_upload(self, postmortem_id: int, file_id: str, permalink: str | None) -> PostmortemView:
        with transaction(self._sessions) as session:
            row = store.by_id(session, postmortem_id, for_update=True)
            if row is None:
                raise LookupError(postmortem_id)
            row.file_id, row.permalink, row.uploaded_at = file_id, permalink, self._clock.now()
            return postmortem_view(row)

    def get(self, postmortem_id: int) -> PostmortemView:
        with self._sessions() as session:
            row = store.by_id(session, postmortem_id)
            if row is None:
                raise LookupError(postmortem_id)
            return postmortem_view(row)

    def versions(self, incident_id: int) -> list[PostmortemView]:
        with self._sessions() as session:
            return [postmortem_view(row) for row in store.versions(session, incident_id)]

    def latest(self, incident_id: int) -> PostmortemView | None:
        """The newest version that has been drafted."""
        drafted = [v for v in self.versions(incident_id) if v.drafted]
        return drafted[-1] if drafted else None

    def unfinished(self) -> list[PostmortemView]:
        """Versions to finish after a restart: not drafted, or not yet uploaded to the channel."""
        with self._sessions() as session:
            return [postmortem_view(row) for row in store.unfinished(session)]

    def request_missing(self) -> list[PostmortemView]:
        """Request version 1 for incidents closed without one (the process stopped in between)."""
        with self._sessions() as session:
            missing = store.closed_without_postmortem(session)
        requested = [self.request(incident_id, None, f"postmortem-on-close:{incident_id}") for incident_id in missing]
        return [r for r in requested if r is not None]

    def _record(self, session: Session, incident_id: int) -> IncidentRecord:
        """The whole record, every timeline entry an item (preview(), and the benchmark's parts)."""
        items = [i for rows in timeline_store.entry_rows(session, incident_id, into=item_of_columns) for i in rows]
        return self._record_of(session, incident_id, items, References(), set())

    def _summary(self, session: Session, incident_id: int) -> tuple[IncidentRecord, MessageTally]:
        """The record a streamed draft starts from: every entry but the channel messages, and the first
        message shown (the first sign of trouble may be it), as items; the messages counted by the store
        (store.message_groups), and of them only those that may name someone read (their markup and
        data), so that 100,000 messages are not read twice."""
        others = [i for rows in timeline_store.entry_rows(session, incident_id, into=item_of_columns, messages=False) for i in rows]
        first = [i for rows in timeline_store.entry_rows(session, incident_id, into=item_of_columns, messages=True, limit=1) for i in rows]
        items = list(heapq.merge(others, first, key=lambda i: (i.occurred_at, i.id)))
        groups = store.message_groups(session, incident_id)
        last_id = max((g.last_id for g in groups), default=0)
        # bot.timeline.visible: a placeholder never filled (no author yet) is not shown
        by_actor = {g.actor_id: g.shown for g in groups if g.actor_id is not None and g.shown}
        named, people = References(), {g.actor_id for g in groups if g.actor_id}
        for rows in store.message_markup_rows(session, incident_id, last_id):
            for text, data in rows:
                if text is not None:
                    named.add(text)
                if data:
                    _named_in_data(data, named, people)
        tally = MessageTally(sum(by_actor.values()), sum(g.deleted for g in groups), by_actor,
                             self._message_offsets(session, incident_id, last_id), last_id)
        return self._record_of(session, incident_id, items, named, people), tally

    def _message_offsets(self, session: Session, incident_id: int, last_id: int) -> set[timedelta | None]:
        """The zone's UTC offsets at the shown messages' times (MessageTally.offsets). The first and the
        last message have theirs, so when the offset changes at most once between them those are all
        of them; only when it changes back (an incident across a summer) are the times read."""
        span = store.shown_message_span(session, incident_id, last_id)
        if span is None:
            return set()
        changes = offset_changes(*span, self._zone)
        if len(changes) <= 2:
            return set(changes)
        seen = ZoneOffsets(self._zone)
        for times in store.message_times(session, incident_id, last_id):
            for at in times:
                seen.add(at)
        return seen.found

    def _messages(self, incident_id: int, last_id: int) -> _MessageStreams:
        """The visible channel messages up to entry `last_id`, in recorded order, streamed in a read
        transaction of their own at each call."""
        def stream() -> Generator[TimelineItem, None, None]:
            with self._reads() as session:
                for rows in timeline_store.entry_rows(session, incident_id, into=item_of_columns, messages=True, up_to_id=last_id):
                    yield from rows
        return _MessageStreams(stream)

    def _record_of(self, session: Session, incident_id: int, items: list[TimelineItem], named: References,
                   people: set[str]) -> IncidentRecord:
        """The record around these timeline items; `named` and `people`: what other entries (a streamed
        draft's messages) name."""
        row = incident_store.by_id(session, incident_id)
        if row is None:
            raise LookupError(incident_id)
        followups = [followup_view(f) for f in followup_store.for_incident(session, incident_id)]
        pages = [page_view(p) for p in paging_store.for_incident(session, incident_id)]
        incident = incident_store.snapshot(row)
        # One pass over the items (a 10,000-entry timeline's): who acted, what their texts name, and, in
        # the few with data, whom an entry is about and what was forwarded.
        actors: set[str] = set()
        for item in items:
            if item.actor_id:
                actors.add(item.actor_id)
            named.add(item.text)
            if item.data:
                _named_in_data(item.data, named, actors)
        for text in (incident.title, incident.description, incident.resolution_summary, *(f.text for f in followups)):
            named.add(text)
        people = people | {row.reporter_id} | actors | {
            u for f in followups for u in (f.owner_id, f.created_by, f.done_by) if u} | {
            p.acknowledged_by for p in pages if p.acknowledged_by and USER_ID.fullmatch(p.acknowledged_by)} | {
            p.requested_by for p in pages if p.requested_by} | named.users
        return IncidentRecord(
            incident=incident,
            items=items,
            roles=[RoleSpell(Role(r.role), r.user_id, r.assigned_at, r.ended_at) for r in store.role_history(session, incident_id)],
            pages=pages,
            alerts=[AlertRecord(a.target, a.opened_at, a.cleared_at, list(a.reasons or [])) for a in store.linked_alerts(session, incident_id)],
            followups=followups,
            names=timeline_store.names(session, people),
            people=sorted(people),
            channels=sorted(c for c in named.channels if not c.startswith("D")),  # a direct message has no name to show
            usergroups=sorted(named.usergroups),
            team_names=self._team_names,
            bot_user_id=self._bot_user_id,
        )

    def _with_names(self, record: IncidentRecord) -> IncidentRecord:
        """Names the store lacks: people, and the channels and user groups markup named without a label,
        asked of Slack once each per draft (outside any transaction: it may call Slack). What Slack
        cannot name stays unnamed, and the draft says "a channel (C…)"."""
        if self._lookup is None:
            return record
        users = sorted(set(record.people) - set(record.names) - {record.bot_user_id, OPERATOR})[:MAX_NAME_LOOKUPS]  # the operator is no Slack user
        channels = sorted(set(record.channels) - set(record.channel_names))[:MAX_NAME_LOOKUPS]
        usergroups = sorted(set(record.usergroups) - set(record.usergroup_handles))
        if not (users or channels or usergroups):
            return record
        with collector_resumed():  # Slack may take seconds to answer: not with the collector held off meanwhile
            return replace(
                record,
                names={**record.names, **(self._lookup.users(users) if users else {})},
                channel_names={**record.channel_names, **(self._lookup.channels(channels) if channels else {})},
                usergroup_handles={**record.usergroup_handles, **(self._lookup.usergroups(usergroups) if usergroups else {})},
            )

    def _with_samples(self, session: Session, record: IncidentRecord, drafted_at: datetime) -> IncidentRecord:
        """The record with the watchdog's samples of every target in the charts' window (read in the
        same snapshot as the rest), the configured targets, and how long samples are kept."""
        samples: dict[str, list[Reading]] = {}
        window = chart_window(record, drafted_at)
        for row in store.samples_between(session, window.start, window.end):
            samples.setdefault(row.target, []).append(Reading(
                row.taken_at, row.in_use, row.usable, row.idle_in_transaction, refused=row.refused, error=row.error))
        return replace(record, samples=samples, targets=self._targets, samples_kept=KEEP_SAMPLES)

    def _draw(self, draft: Draft) -> tuple[Draft, list[tuple[ChartRef, ChartFile]]]:
        """Each chart of the draft drawn as a PNG. A chart that cannot be drawn must not cost the draft:
        it becomes a line saying so, and the draft references only what was drawn."""
        if not draft.charts:
            return draft, []
        from bot.charts.render import render  # matplotlib loads only when there is something to draw

        drawn: list[tuple[ChartRef, ChartFile]] = []
        failed: list[str] = []
        with collector_resumed():  # matplotlib makes cycles by the thousand: not with the collector held off
            for ref in draft.charts:
                try:
                    png = render(ref.chart)
                except Exception as error:  # noqa: BLE001 - a drawing bug must not lose the postmortem
                    log.exception("incident %s: the chart of %s could not be drawn", draft.number, ref.target)
                    failed.append(f"`{ref.target}`: its chart could not be drawn ({type(error).__name__})")
                    continue
                drawn.append((ref, ChartFile(ref.filename, ref.title, ref.caption, png.data, png.width, png.height)))
        if failed:
            draft = replace(draft, charts=[ref for ref, _ in drawn], no_charts=[*draft.no_charts, *failed])
        return draft, drawn

    def _render_utf8(self, draft: Draft, abandoned: Callable[[], None] = lambda: None) -> tuple[bytearray, str | None, str | None]:
        """(the Markdown as UTF-8, redacted; the team's template if it was used; why it was not). A team's
        template that fails on this incident must not cost the draft: the default one takes over, and
        says why. Laid out from the template's stream (PostmortemTemplate.stream): what is held is the
        encoded Markdown and at most about 64 KiB of text besides. `abandoned` is called when a team's
        template failed part way, before the default one reads the record again."""
        problem = None
        try:
            markdown = self._encoded(self._template.stream(draft))
        except TemplateProblem as error:
            abandoned()
            if self._template.source is None:
                raise
            log.error("incident %s: the postmortem template failed (%s); drafting with the default one", draft.number, error)
            problem = str(error)
            markdown = self._encoded(default_template().stream(draft))
        return markdown, (self._template.source if problem is None else None), problem

    def _encoded(self, pieces: Iterable[str]) -> bytearray:
        """The pieces encoded and redacted, into one buffer that grows (not a list of blocks joined at the
        end: that held the Markdown twice, and the freed blocks stayed in the process's heap). Redacted a
        block of whole lines at a time, of about 64 KiB: secrets hold no line break, so redacting line by
        line redacts what redacting the whole text would. Redacted as UTF-8, which finds a secret's bytes
        exactly where the text holds the secret (no character's encoding starts inside another's), in
        half the time a search of the text takes: a line with an emoji makes the text four bytes a
        character."""
        encoded = bytearray()
        redacted = 0  # encoded[:redacted] is whole lines, redacted
        for piece in pieces:
            encoded += piece.encode()
            if len(encoded) - redacted >= 65536 and "\n" in piece:
                redacted = self._redact_utf8(encoded, redacted, encoded.rfind(b"\n") + 1)
        self._redact_utf8(encoded, redacted, len(encoded))
        return encoded

    def _redact_utf8(self, encoded: bytearray, start: int, end: int) -> int:
        """Redacts encoded[start:end] in place; returns where that block ends now."""
        for secret in self._secrets:
            if encoded.find(secret, start, end) != -1:  # seldom: the block is copied only then
                block = encoded[start:end].replace(secret, REDACTED.encode())
                encoded[start:end] = block
                end = start + len(block)
        return end


def _named_in_data(data: dict[str, Any], named: References, people: set[str]) -> None:
    """What an entry's data names, added to `named` and `people`: whom the entry is about (`user`), and for
    each message it forwards (`shared`, as handlers/capture.py records it) its text, its author and, when
    Slack did not name it, the channel it came from."""
    if data.get("user"):
        people.add(str(data["user"]))
    for share in data.get("shared") or []:
        if isinstance(share, dict):
            named.add(str(share.get("text") or ""))
            if share.get("author_id"):
                people.add(str(share["author_id"]))
            if share.get("channel_id") and not share.get("channel_name"):
                named.channels.add(str(share["channel_id"]))


class _MessageStreams:
    """A streamed draft's reads of the messages (build's `messages`), each in a read transaction of its
    own, and `close` for those not read to the end: a template that failed part way, or read only some,
    leaves its read suspended, and an exception's traceback can keep it alive until a collection, its
    transaction open (on PostgreSQL, holding locks a TRUNCATE or a migration waits on)."""

    def __init__(self, stream: Callable[[], Generator[TimelineItem, None, None]]) -> None:
        self._stream = stream
        self._opened: list[Generator[TimelineItem, None, None]] = []

    def __call__(self) -> Iterator[TimelineItem]:
        read = self._stream()
        self._opened.append(read)
        return read

    def close(self) -> None:
        """Ends every read made so far (their transactions rolled back, connections returned)."""
        opened, self._opened = self._opened, []
        for read in opened:
            read.close()


_pauses = 0
_pauses_lock = threading.Lock()
_was_enabled = True
_held = threading.local()  # .pauses: how many of the pauses this thread holds


def _hold() -> None:
    global _pauses, _was_enabled
    with _pauses_lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1


def _release() -> None:
    global _pauses
    with _pauses_lock:
        _pauses -= 1
        if _pauses == 0 and _was_enabled:
            gc.enable()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off while a draft is made. A 10,000-entry draft makes some
    100,000 objects that live until it is done, and the collector would walk them all several times
    over: 0.15 s of 0.6 s, and most of the slow tail; its first pass after a pause walks every object
    made during it that is still alive, so the pause ends once they are freed. Nothing is lost: cycles
    made meanwhile are collected at the next pass after. Counted, so overlapping drafts resume
    collection only at the end."""
    _hold()
    _held.pauses = getattr(_held, "pauses", 0) + 1
    try:
        yield
    finally:
        _held.pauses -= 1
        _release()


@contextmanager
def collector_resumed() -> Iterator[None]:
    """Inside collector_paused(): this thread's pauses lifted meanwhile, for what may take long or make
    cycles by the thousand (asking Slack for names, drawing charts). The collector runs again unless
    another thread's draft holds it off. Outside a pause, nothing."""
    mine = getattr(_held, "pauses", 0)
    for _ in range(mine):
        _release()
    _held.pauses = 0
    try:
        yield
    finally:
        for _ in range(mine):
            _hold()
        _held.pauses = mine


def postmortem_view(row: Postmortem) -> PostmortemView:
    return PostmortemView(
        id=row.id, incident_id=row.incident_id, version=row.version, requested_by=row.requested_by,
        requested_at=row.requested_at, drafted_at=row.drafted_at, content=row.markdown, template=row.template,
        problem=row.problem, file_id=row.file_id, permalink=row.permalink,
    )
