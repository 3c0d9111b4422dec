"""What a postmortem draft says, computed from what was recorded: a pure function from an incident's
record to the values a template lays out.

Truth comes first. Every time is a recorded timestamp shown in one time zone; every duration is the
difference of two of them, all measured from the same start, so the figures cannot contradict each
other. Deleted messages stay out. What the record cannot tell (the root cause, the impact) is left as an
obvious placeholder for the responders, never guessed.
"""

from __future__ import annotations

import heapq
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jinja2.filters import do_indent

from bot.charts.incident import NoChart, Reading, Window, connections_chart, incident_window
from bot.charts.spec import Marker, TimeChart
from bot.figures import KeyFigures, clock_seconds, first_acknowledgements, first_sign, key_figures
from bot.followups import FollowupView
from bot.incidents.values import OPERATOR, OPERATOR_NAME, EntryKind, Incident, Role, Status
from bot.paging.service import PageView
from bot.slack_markup import Names, Renderer
from bot.timeline import TimelineItem, visible
from bot.timeline_words import USER_ID, Wording, describe, severity_label
from bot.wording import counted as counted_words

TO_BE_WRITTEN = "**[To be written]**"


@dataclass(frozen=True, slots=True)
class RoleSpell:
    """One person holding one role for a while."""

    role: Role
    user_id: str
    assigned_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A watchdog alert linked to the incident: often the first sign of trouble."""

    target: str
    opened_at: datetime
    cleared_at: datetime | None
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """Everything recorded about one incident, as the store holds it."""

    incident: Incident
    items: list[TimelineItem]
    roles: list[RoleSpell] = field(default_factory=list)
    pages: list[PageView] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)
    followups: list[FollowupView] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # user id -> display name
    people: list[str] = field(default_factory=list)  # every user id the record mentions
    channel_names: dict[str, str] = field(default_factory=dict)  # channel id -> name, for markup without a label
    usergroup_handles: dict[str, str] = field(default_factory=dict)  # user group id -> handle, likewise
    channels: list[str] = field(default_factory=list)  # channel ids named in markup without a label
    usergroups: list[str] = field(default_factory=list)  # user group ids named in markup without a label
    team_names: dict[str, str] = field(default_factory=dict)  # team key -> display name
    bot_user_id: str | None = None
    # The watchdog's samples for the connection charts: target -> its samples in `chart_window` (the
    # service reads them once the window is known), and every configured target -> whether the watchdog
    # samples it (a SQLite file has no connections to count). `samples_kept`: how long samples are kept.
    samples: dict[str, list[Reading]] = field(default_factory=dict)
    targets: dict[str, bool] = field(default_factory=dict)
    samples_kept: timedelta | None = None


# --- The values templates see.


_TWO_DIGITS = [f"{n:02d}" for n in range(60)]  # an hour's, a minute's or a second's two digits, by number


# Moment and Entry are made once per timeline line (10,000 and more in a big draft): not frozen, though
# nothing changes them, since a frozen dataclass's __init__ costs several times a plain one's (each field
# set through object.__setattr__). Templates cannot assign attributes.
@dataclass(slots=True)
class Moment:
    """A recorded time, in the draft's zone."""

    at: datetime  # aware, UTC
    local: datetime
    marked: bool = False  # the zone's UTC offset changes within the incident: every time shows its offset

    @property
    def date(self) -> str:
        return f"{self.local:%B} {self.local.day}, {self.local.year}"

    @property
    def day(self) -> str:
        return f"{self.local:%A}, {self.date}"

    @property
    def clock(self) -> str:
        """24-hour clock; seconds only when they are not zero, so 09:15 reads as the example does."""
        local, two = self.local, _TWO_DIGITS  # not strftime, nor format specs: they cost 20 and 5 times more, per timeline line
        return f"{two[local.hour]}:{two[local.minute]}:{two[local.second]}" if local.second else f"{two[local.hour]}:{two[local.minute]}"

    @property
    def time(self) -> str:
        """The clock, and the offset too when the offset changes within the incident (the two 02:30s of
        the night summer time ends are then told apart)."""
        return f"{self.clock} {self.offset}" if self.marked else self.clock

    @property
    def offset(self) -> str:
        return offset_label(self.local)

    @property
    def full(self) -> str:
        return f"{self.date}, {self.clock} ({self.offset})"

    @property
    def iso(self) -> str:
        return self.local.isoformat(timespec="seconds")


@dataclass(slots=True)
class Entry:
    moment: Moment
    kind: str  # the EntryKind value, or "watchdog_alert" / "watchdog_clear"
    label: str  # "Detection", "Misleading path", "Message"…
    text: str  # one sentence in words, names resolved, Markdown
    who: str | None
    key_event: bool = False

    @property
    def time(self) -> str:
        return self.moment.time

    @property
    def line(self) -> str:
        """The entry as the default template's timeline shows it: a list item, "- **09:15** · **Detection**
        · text", the text's later lines indented to stay inside the item (Jinja2's `indent(2)`)."""
        key = " · 📌 **Key event**" if self.key_event else ""
        text = self.text
        # Every character str.splitlines() breaks at, which `indent` splits on, is unprintable: most texts
        # are one printable line, which `indent` leaves as it is, and this test costs half a regex search.
        return f"- **{self.moment.time}** · **{self.label}**{key} · {text if text.isprintable() else do_indent(text, 2)}"


@dataclass(frozen=True, slots=True)
class Day:
    heading: str
    entries: Iterable[Entry]  # a list, or, in a streamed draft, read once as the template goes


@dataclass(frozen=True, slots=True)
class MessageTally:
    """What a streamed draft needs of all the timeline's channel messages, counted by the store without
    reading most of them (bot.postmortem.service's _summary): the rest of the record holds only the
    other entries (the bot's own, notes) and the first message shown. `shown` and `by_actor` count
    the visible messages (bot.timeline.visible), `deleted` the deleted ones, `offsets` the zone's UTC
    offsets at the visible messages' times, `last_id` the highest entry id seen (the stream reads no
    later entry, so a message captured meanwhile cannot appear in the lines but not in the counts)."""

    shown: int
    deleted: int
    by_actor: dict[str, int]
    offsets: set[timedelta | None]
    last_id: int


# The visible channel messages in recorded order (occurred_at, id), read afresh at each call.
MessageStream = Callable[[], Iterator[TimelineItem]]


class _StreamedDays:
    """A streamed draft's days: the entries merged in order as the template reads them, again at each
    iteration (a team's template that fails is followed by the default one, which reads them anew)."""

    def __init__(self, entries: Callable[[], Iterator[Entry]]) -> None:
        self._entries = entries

    def __iter__(self) -> Iterator[Day]:
        entries = self._entries()
        first = next(entries, None)
        while first is not None:
            today, later = first.moment.local.date(), list[Entry]()  # `later`: the next day's first entry, once read

            def same_day(first: Entry = first, today: date = today, later: list[Entry] = later) -> Iterator[Entry]:
                yield first
                for entry in entries:
                    if entry.moment.local.date() != today:
                        later.append(entry)
                        return
                    yield entry

            day = same_day()
            yield Day(first.moment.day, day)
            for _ in day:  # a template that did not read the whole day: skip the rest
                pass
            first = later[0] if later else None


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: str | None  # None: not recorded
    seconds: int | None
    measured: str  # from what, to what, in words with times


@dataclass(frozen=True, slots=True)
class RoleLine:
    role: str
    holders: list[str]  # "Alice Martin (from 09:15)", in order


@dataclass(frozen=True, slots=True)
class PageLine:
    team: str
    requested: Moment
    requested_by: str
    escalated_from: str | None
    acknowledged: Moment | None
    acknowledged_by: str | None
    time_to_acknowledge: str | None
    status: str


@dataclass(frozen=True, slots=True)
class DiagnosticLine:
    moment: Moment
    check: str
    target: str
    outcome: str
    headline: str
    who: str


@dataclass(frozen=True, slots=True)
class FollowupLine:
    text: str
    owner: str | None
    added: Moment
    added_by: str
    done: Moment | None
    done_by: str | None


@dataclass(frozen=True, slots=True)
class Participant:
    name: str
    entries: int  # timeline entries they wrote or caused; 0 for someone who only acknowledged a page

    @property
    def described(self) -> str:
        return f"{self.name} ({counted_words(self.entries, 'entry', 'entries')})" if self.entries else self.name


@dataclass(frozen=True, slots=True)
class ChartRef:
    """A chart of one target's connections during the incident: drawn as a PNG by the service and
    uploaded with the Markdown under `filename`, which the Markdown references (a relative link, so the
    two read together once saved side by side)."""

    target: str
    filename: str  # "incident-7-postmortem-v2-connections-primary.png"
    title: str
    caption: str  # one sentence: what it shows and from what (plain text; also the image's alt text)
    chart: TimeChart  # the description the PNG is drawn from

    @property
    def image(self) -> str:
        """The Markdown image: `![caption](filename)`, the caption escaped for a link's text."""
        return f"![{_link_text(self.caption)}]({self.filename})"


@dataclass(frozen=True, slots=True)
class Draft:
    number: int
    title: str
    version: int
    drafted: Moment
    zone: str
    status: str
    severity: str
    severity_history: str
    description: str | None
    start: Moment
    start_reason: str
    end: Moment | None
    end_reason: str
    duration: str | None
    figures: list[Figure]
    resolution_summary: str | None
    resolutions: list[Entry]
    hypotheses: list[Entry]
    misleading: list[Entry]
    days: Iterable[Day]  # a list, or a streamed draft's _StreamedDays
    entry_count: int
    deleted_count: int
    reporter: str
    roles: list[RoleLine]
    participants: list[Participant]
    pages: list[PageLine]
    diagnostics: list[DiagnosticLine]
    followups: list[FollowupLine]
    channel: str | None
    charts: list[ChartRef] = field(default_factory=list)  # one per target the watchdog sampled in the window
    no_charts: list[str] = field(default_factory=list)  # one line per other target: why it has no chart

    @property
    def resolved(self) -> bool:
        return self.end is not None

    @property
    def recap(self) -> str:
        """One sentence of facts for the conclusion."""
        lasted = f"lasted {self.duration}" if self.duration else f"has been open since {self.start.full}"
        counted = [f"{self.entry_count} timeline entr{'y was' if self.entry_count == 1 else 'ies were'} recorded"]
        if self.pages:
            counted.append(f"{counted_words(len(self.pages), 'page')} sent")
        if self.diagnostics:
            counted.append(f"{counted_words(len(self.diagnostics), 'diagnostic run')} made")
        return f"Incident {self.number} {lasted}; {', '.join(counted)}."


ToMoment = Callable[[datetime], Moment]

LABELS: dict[str, str] = {
    EntryKind.DETECTION: "Detection",
    EntryKind.ACTION: "Action",
    EntryKind.HYPOTHESIS: "Hypothesis",
    EntryKind.MISLEADING: "Misleading path",
    EntryKind.ESCALATION: "Escalation",
    EntryKind.RESOLUTION: "Resolution",
    EntryKind.NOTE: "Note",
    EntryKind.MESSAGE: "Message",
    EntryKind.DECLARED: "Declared",
    EntryKind.STATUS_CHANGED: "Status",
    EntryKind.SEVERITY_CHANGED: "Severity",
    EntryKind.ROLE_ASSIGNED: "Role",
    EntryKind.UPDATE: "Status update",
    EntryKind.RESOLVED: "Resolved",
    EntryKind.CLOSED: "Closed",
    EntryKind.PAGED: "Escalation (page)",
    EntryKind.PAGE_FAILED: "Page failed",
    EntryKind.PAGE_ACKNOWLEDGED: "Page acknowledged",
    EntryKind.PAGE_UPDATED: "Page (provider)",
    EntryKind.ALERT: "Alert",
    EntryKind.DIAGNOSTIC: "Diagnostic",
    EntryKind.DIAGNOSTIC_DENIED: "Diagnostic refused",
    EntryKind.FOLLOWUP: "Follow-up",
    EntryKind.CHANNEL_ARCHIVED: "Channel archived",
    EntryKind.CHANNEL_UNARCHIVED: "Channel unarchived",
    EntryKind.MADE_PRIVATE: "Made private",
    "watchdog_alert": "Detection (watchdog)",
    "watchdog_clear": "Watchdog all-clear",
}


def build(record: IncidentRecord, zone: ZoneInfo, *, version: int, drafted_at: datetime,
          messages: tuple[MessageTally, MessageStream] | None = None) -> Draft:
    """The draft of the record. With `messages`, a streamed draft: `record.items` holds every entry
    but the channel messages (and may hold the first message shown, for the first sign of trouble),
    the tally counts the messages, and the timeline's days read the messages from the stream as the
    template lays them out, so a 100,000-entry timeline is never in memory at once. Both give the same
    Markdown for the same record."""
    incident = record.incident
    names = _Names(record.names, record.bot_user_id, Renderer(Names(
        users={**record.names, **({record.bot_user_id: "incident-bot"} if record.bot_user_id else {})},
        channels=record.channel_names, usergroups=record.usergroup_handles), markdown=True, zone=zone))

    items = visible(record.items)
    tally, stream = messages if messages is not None else (None, None)
    # The entries shown that are no channel message: every page, diagnostic and status change is among
    # them, a tenth of a busy timeline, so the passes looking for those kinds go over these alone.
    notable = [i for i in items if i.kind is not _MESSAGE]
    # In a streamed draft, `others` are the entries shown that are no channel message: the stream has those.
    others = items if tally is None else notable
    recorded = [i.occurred_at for i in others] + [a.opened_at for a in record.alerts] + [incident.declared_at]
    marked = len(offsets(recorded, zone) | (tally.offsets if tally else set())) > 1

    def at(moment: datetime) -> Moment:
        return Moment(moment, moment.astimezone(zone), marked)

    wording = Wording(person=names.person, team=lambda key: record.team_names.get(key, key), text=names.text)
    entries = sorted(
        [*_alert_entries(record.alerts, at), *(_entry(item, at, names, wording) for item in others)],
        key=_ENTRY_TIME,
    )
    days: Iterable[Day] = _days(entries)
    if tally is not None and stream is not None:
        def merged() -> Iterator[Entry]:
            """As sorted() above orders them: by time, alerts before entries at the same time, entries in
            recorded order (occurred_at, id), which both the stream and `others` are in."""
            recorded = heapq.merge(others, stream(), key=lambda i: (i.occurred_at, i.id))
            return heapq.merge(_alert_entries(record.alerts, at), (_entry(i, at, names, wording) for i in recorded),
                               key=_ENTRY_TIME)
        days = _StreamedDays(merged)
    key = key_figures(incident, record.alerts, items, record.pages)  # the report across incidents reads the same
    start, start_reason = key.start, key.start_reason
    end_at = incident.resolved_at
    end = at(end_at) if end_at else None
    acknowledged = first_acknowledgements(notable, record.pages)
    charts, no_charts = _charts(record, zone, version, drafted_at, key, notable)
    noted = _noted(entries, (EntryKind.RESOLUTION, EntryKind.HYPOTHESIS, EntryKind.MISLEADING))
    return Draft(
        number=incident.number,
        title=names.text(incident.title),
        version=version,
        drafted=at(drafted_at),
        zone=str(zone.key),
        status=incident.status.label,
        severity=incident.severity.label,
        severity_history=_severity_history(incident, notable, at),
        description=names.text(incident.description) if incident.description else None,
        start=at(start),
        start_reason=start_reason,
        end=end,
        end_reason=_end_reason(incident, notable, names),
        duration=human_duration(timedelta(seconds=clock_seconds(start, end_at))) if end_at else None,
        figures=_figures(incident, key, at, record.team_names, linked_alerts=len(record.alerts)),
        resolution_summary=names.text(incident.resolution_summary) if incident.resolution_summary else None,
        resolutions=noted[EntryKind.RESOLUTION],
        hypotheses=noted[EntryKind.HYPOTHESIS],
        misleading=noted[EntryKind.MISLEADING],
        days=days,
        entry_count=len(entries) + (tally.shown if tally else 0),
        deleted_count=sum(1 for i in record.items if i.deleted) + (tally.deleted if tally else 0),
        reporter=names(incident.reporter_id),
        roles=_roles(record.roles, at, names),
        participants=_participants(others, acknowledged, names, tally.by_actor if tally else None),
        pages=_pages(record.pages, acknowledged, at, names, record.team_names),
        diagnostics=[
            DiagnosticLine(at(i.occurred_at), str(i.data.get("check", "")), str(i.data.get("target", "")),
                           str(i.data.get("outcome", "")), names.text(i.text), names(i.actor_id))
            for i in notable if i.kind is EntryKind.DIAGNOSTIC
        ],
        followups=[
            FollowupLine(names.text(f.text), names(f.owner_id) if f.owner_id else None, at(f.created_at),
                         names(f.created_by), at(f.done_at) if f.done_at else None, names(f.done_by) if f.done_by else None)
            for f in record.followups
        ],
        channel=f"#{incident.channel_name}" if incident.channel_name else None,
        charts=charts,
        no_charts=no_charts,
    )


# --- Times and durations.


def offset_around(at: datetime, zone: ZoneInfo) -> tuple[timedelta | None, datetime, datetime]:
    """The zone's UTC offset at `at` (aware), and the quarter hour of UTC time around it that has it
    too, as aware UTC times [start, end): nearly every offset change in tzdata falls on a quarter hour,
    so one conversion serves every time in it; a quarter hour whose two ends differ (a change inside
    it, as Goose Bay's at 04:01 UTC until 1996) is not shared: its range is `at` alone. Assumes no
    zone changes offset twice within 15 minutes."""
    at = at.astimezone(UTC)  # else times sharing a zone compare by wall clock, and the repeated hour's two 02:30s are one
    start = at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)
    end = start + timedelta(minutes=15)
    offset = at.astimezone(zone).utcoffset()
    if start.astimezone(zone).utcoffset() != offset or (end - timedelta(microseconds=1)).astimezone(zone).utcoffset() != offset:
        return offset, at, at + timedelta(microseconds=1)
    return offset, start, end


class ZoneOffsets:
    """The zone's UTC offsets at the times added (aware), in `found`: one conversion per quarter hour
    they fall in (offset_around), not one per time. Times may come in any order; in order, a stretch is
    converted once."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.found: set[timedelta | None] = set()
        self._since, self._until = datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)  # none yet

    def add(self, at: datetime) -> None:
        if not self._until > at >= self._since:
            offset, self._since, self._until = offset_around(at, self.zone)
            self.found.add(offset)


def offset_changes(first: datetime, last: datetime, zone: ZoneInfo) -> list[timedelta | None]:
    """The zone's UTC offsets from `first` to `last` (aware, first <= last), in order, each one once per
    stretch that has it: [+1h] when none changes between them, [+1h, +2h, +1h] across a summer. Found a
    quarter hour at a time (offset_around): a few steps for an incident of hours, 2,880 for a month."""
    changes: list[timedelta | None] = []
    at = first
    while True:
        offset, _, end = offset_around(at, zone)
        if not changes or changes[-1] != offset:
            changes.append(offset)
        if end > last:
            return changes
        at = end


def offsets(times: Iterable[datetime], zone: ZoneInfo) -> set[timedelta | None]:
    """The zone's UTC offsets at these times (aware): ZoneOffsets over them."""
    seen = ZoneOffsets(zone)
    for at in times:
        seen.add(at)
    return seen.found


def offset_label(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    if not offset:
        return "UTC"
    sign = "+" if offset > timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def human_duration(delta: timedelta) -> str:
    """Exact to the second, in words: "2 hours 30 minutes", "4 minutes 12 seconds", "0 seconds"."""
    seconds = max(0, int(delta.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute"), (seconds, "second")]
    words = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return " ".join(words) or "0 seconds"


def _end_reason(incident: Incident, items: list[TimelineItem], names: _Names) -> str:
    if incident.resolved_at is None:
        return "not resolved yet"
    resolved = [i for i in items if i.kind is EntryKind.RESOLVED or (
        i.kind is EntryKind.STATUS_CHANGED and i.data.get("to") == Status.RESOLVED.value)]
    if resolved:
        return f"resolved by {names(resolved[-1].actor_id)}"
    return "closed without being marked resolved"


def _figures(incident: Incident, key: KeyFigures, at: ToMoment, team_names: dict[str, str], *,
             linked_alerts: int) -> list[Figure]:
    """Time to detect, acknowledge, mitigate and resolve, each measured from the same start
    (bot.figures.key_figures), in words. `linked_alerts`: how many watchdog alerts are linked to the
    incident (those it was declared from, with the alert's button); only those can be its start, so
    the words name them, not every alert the watchdog posted."""
    start, start_reason = key.start, key.start_reason
    since = at(start)
    no_alert = ("no watchdog alert linked to this incident came earlier" if linked_alerts
                else "no watchdog alert linked to this incident")

    def figure(name: str, moment: datetime | None, what: str, missing: str) -> Figure:
        if moment is None:
            return Figure(name, None, None, missing)
        if moment == start == incident.declared_at and what == "the declaration":
            return Figure(name, human_duration(timedelta(0)), 0,
                          f"declared at {since.time}, the first sign of trouble recorded ({no_alert})")
        return Figure(name, human_duration(timedelta(seconds=key.seconds_to(moment))), key.seconds_to(moment),
                      f"from {since.time} ({start_reason}) to {at(moment).time} ({what})")

    first_ack, mitigation = key.acknowledged_page, key.mitigation
    return [
        figure("Time to detect", key.declared_at, "the declaration", ""),
        figure(
            "Time to acknowledge",
            key.acknowledged_at,
            f"{team_names.get(first_ack.team, first_ack.team)} acknowledged the page" if first_ack else "",
            "no team was paged" if not key.paged else "no page was acknowledged",
        ),
        figure(
            "Time to mitigate",
            key.mitigated_at,
            ("the first resolution note" if mitigation and mitigation.kind is EntryKind.RESOLUTION
             else "the status became Monitoring"),
            "no resolution note and no Monitoring status were recorded",
        ),
        figure("Time to resolve", key.resolved_at, "the incident was resolved", "the incident is not resolved yet"),
    ]


def _severity_history(incident: Incident, items: list[TimelineItem], at: ToMoment) -> str:
    changes = [i for i in items if i.kind is EntryKind.SEVERITY_CHANGED]
    if not changes:
        return f"{incident.severity.label} throughout"
    first = changes[0].data.get("from")
    steps = [f"{severity_label(first)} at declaration"]
    steps += [f"{severity_label(i.data.get('to'))} from {at(i.occurred_at).time}" for i in changes]
    return "; ".join(steps)


# --- The timeline.


def _noted(entries: list[Entry], kinds: tuple[EntryKind, ...]) -> dict[EntryKind, list[Entry]]:
    """The entries of each of these kinds, in order, in one pass."""
    found: dict[str, list[Entry]] = {kind.value: [] for kind in kinds}  # by value: an Entry's kind is a str
    for entry in entries:
        if (same := found.get(entry.kind)) is not None:
            same.append(entry)
    return {kind: found[kind.value] for kind in kinds}


def _days(entries: list[Entry]) -> list[Day]:
    """Entries under a heading for each local day, so a night that crosses midnight reads right."""
    days: list[Day] = []
    today, current = None, list[Entry]()
    for entry in entries:
        if entry.moment.local.date() != today:
            today, current = entry.moment.local.date(), list[Entry]()
            days.append(Day(entry.moment.day, current))
        current.append(entry)
    return days


def _alert_entries(alerts: list[AlertRecord], at: ToMoment) -> Iterable[Entry]:
    for alert in alerts:
        reasons = "; ".join(alert.reasons) or "trouble"
        yield Entry(at(alert.opened_at), "watchdog_alert", LABELS["watchdog_alert"],
                    f"The watchdog alerted on `{alert.target}`: {reasons}", None)
        if alert.cleared_at is not None:
            yield Entry(at(alert.cleared_at), "watchdog_clear", LABELS["watchdog_clear"],
                        f"The watchdog saw `{alert.target}` back to normal", None)


_ENTRY_TIME = operator.attrgetter("moment.at")  # sorts entries by time at C speed, not a lambda per entry

# Each kind's value and label, looked up once per timeline line (an enum's `.value` is a property call).
_KIND_LABELS: dict[EntryKind, tuple[str, str]] = {
    kind: (kind.value, LABELS.get(kind, kind.value.capitalize())) for kind in EntryKind}
# Python 3.11 looks an enum's member up on its class at several times a plain attribute's cost: once here,
# not once per timeline line.
_MESSAGE = EntryKind.MESSAGE


def _entry(item: TimelineItem, at: ToMoment, names: _Names, wording: Wording) -> Entry:
    who = wording.who(item.actor_id)
    kind, label = _KIND_LABELS[item.kind]
    if item.kind is _MESSAGE:
        thread = item.thread_ts  # TimelineItem.is_reply, without a property call per line
        where = " (in a thread)" if thread is not None and thread != item.slack_ts else ""
        edited = " _(edited)_" if item.edited else ""
        # Most messages have no file and forward nothing: no generator is made for them (once per line).
        files = "".join(f" 📎 {f.get('title') or f.get('name') or 'file'}" for f in item.files) if item.files else ""
        own = names.text(item.text)
        data = item.data
        shared = [s for s in data["shared"] or [] if isinstance(s, dict)] if data and "shared" in data else []
        if own or files or not shared:
            gap = "" if own.startswith("\n") else " "  # a text that starts with a block (code, a quote) starts on its line
            text = f"{who}{where}:{gap}{own}{edited}{files}"
            if shared:
                text += "".join(f"\n> Forwarded {_forwarded(s, names)}" for s in shared)
        else:  # only the forwarded message: say so first
            text = f"{who}{where}{edited} forwarded {_forwarded(shared[0], names)}" + "".join(
                f"\n> Forwarded {_forwarded(s, names)}" for s in shared[1:])
    else:
        text = describe(item, wording)
    # A text that ends with a code block ends with a line break (bot/slack_markup.py): the entry's own
    # line ends after the closing fence.
    return Entry(at(item.occurred_at), kind, label, text.rstrip("\n"), who, item.key_event)


def _forwarded(share: dict[str, Any], names: _Names) -> str:
    """A forwarded (shared) message as captured (handlers/capture.py): "a message from Bob in #general
    ([original](…)):" and its text quoted below, line by line, so it reads as quoted in Markdown."""
    markup = names.markup
    author = str(share.get("author_id") or "")
    who = markup.user(author, share.get("author_name")) if author else markup.text(str(share.get("author_name") or "")) or "someone"
    channel = str(share.get("channel_id") or "")
    where = f" in {markup.channel(channel, share.get('channel_name'))}" if channel else ""
    link = f" ([original]({share['from_url']}))" if share.get("from_url") else ""
    shown = markup.text(str(share.get("text") or "")).strip("\n")
    quoted = "".join(f"\n> {line}" if line.strip() else "\n>" for line in shown.splitlines())
    return f"a message from {who}{where}{link}:{quoted}"


# --- Charts of the connections.


def chart_window(record: IncidentRecord, drafted_at: datetime) -> Window:
    """The stretch the draft's connection charts show (bot.charts.incident.incident_window): the first
    sign of trouble (bot.figures.first_sign) to the resolution, with a margin. The service reads the
    samples in it before building the draft."""
    start, _ = first_sign(record.incident, record.alerts, visible(record.items))
    return incident_window(start, record.incident.resolved_at, drafted_at)


def chart_filename(number: int, version: int, target: str, taken: set[str] | None = None) -> str:
    """"incident-7-postmortem-v2-connections-primary.png": beside the version's Markdown
    ("incident-7-postmortem-v2.md") once saved, and never the name of another version's chart. The
    target's name is reduced to lower-case letters, digits and dashes; one already `taken` gets -2, -3…"""
    slug = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-") or "target"
    name, n = f"incident-{number}-postmortem-v{version}-connections-{slug}", 1
    while f"{name}{f'-{n}' if n > 1 else ''}.png" in (taken or set()):
        n += 1
    return f"{name}{f'-{n}' if n > 1 else ''}.png"


def incident_moments(key: KeyFigures, items: list[TimelineItem], pages: list[PageView],
                     team_names: dict[str, str]) -> list[Marker]:
    """The response's moments a chart marks: the first sign of trouble (when it came before the
    declaration), the declaration, each page and its first acknowledgement, each status change short of
    resolved, and the resolution; all from recorded timestamps, as the key figures are."""
    marks = [Marker(key.start, "detection", "First sign")] if key.start < key.declared_at else []
    marks.append(Marker(key.declared_at, "declared", "Declared"))
    acknowledged = first_acknowledgements(items, pages)
    for page in pages:
        team = team_names.get(page.team, page.team)
        marks.append(Marker(page.requested_at, "paged", f"Paged {team}"))
        if page.id in acknowledged:
            marks.append(Marker(acknowledged[page.id][0], "acknowledged", f"{team} acknowledged"))
    for item in items:
        to = item.data.get("to")
        if item.kind is EntryKind.STATUS_CHANGED and to in {s.value for s in Status} - {Status.RESOLVED, Status.CLOSED}:
            marks.append(Marker(item.occurred_at, "status", Status(to).label))
    if key.resolved_at is not None:
        marks.append(Marker(key.resolved_at, "resolved", "Resolved"))
    return sorted(marks, key=lambda m: m.at)


def _charts(record: IncidentRecord, zone: ZoneInfo, version: int, drafted_at: datetime, key: KeyFigures,
            items: list[TimelineItem]) -> tuple[list[ChartRef], list[str]]:
    """A chart per target the watchdog sampled in the window (configured or no longer), and for every
    other configured target one line saying why it has none."""
    window = incident_window(key.start, record.incident.resolved_at, drafted_at)
    moments = incident_moments(key, items, record.pages, record.team_names)
    charts: list[ChartRef] = []
    missing: list[str] = []
    for target in sorted(set(record.targets) | set(record.samples)):
        if not record.targets.get(target, True):
            missing.append(f"`{target}`: the watchdog does not sample it (its backend has no connections to count)")
            continue
        alerts = [Marker(a.opened_at, "alert", "Watchdog alert") for a in record.alerts
                  if a.target == target and a.opened_at != key.start]  # the first sign is marked already
        drawn = connections_chart(target, record.samples.get(target, []), [*moments, *alerts], window, zone,
                                  title=f"Incident {record.incident.number}: connections on {target}")
        if isinstance(drawn, NoChart):
            aged = record.samples_kept is not None and window.end < drafted_at - record.samples_kept
            kept = f" (the watchdog keeps samples {human_duration(record.samples_kept)})" if aged and record.samples_kept else ""
            missing.append(f"`{target}`: {drawn.reason}{kept}")
            continue
        filename = chart_filename(record.incident.number, version, target, {c.filename for c in charts})
        charts.append(ChartRef(target, filename, drawn.title, drawn.caption, drawn))
    return charts, missing


def _link_text(text: str) -> str:
    """Text safe inside a Markdown link's brackets: backslashes and brackets escaped (CommonMark)."""
    return re.sub(r"([\\\[\]])", r"\\\1", " ".join(text.split()))


# --- People.


def _roles(spells: list[RoleSpell], at: ToMoment, names: _Names) -> list[RoleLine]:
    lines = []
    for role in Role:
        held = [s for s in spells if s.role is role]
        holders = [
            f"{names(s.user_id)} (from {at(s.assigned_at).time}" + (f" to {at(s.ended_at).time})" if s.ended_at else ")")
            for s in held
        ]
        lines.append(RoleLine(role.label, holders))
    return lines


def _participants(items: list[TimelineItem], acknowledged: dict[int, tuple[datetime, str]], names: _Names,
                  more: dict[str, int] | None = None) -> list[Participant]:
    """Everyone who wrote or acted, busiest first, then those who only acknowledged a page
    (`acknowledged`: first_acknowledgements); the bot itself is not a participant. `more`: entries per
    actor counted elsewhere (a streamed draft's messages)."""
    counts: dict[str, int] = {}
    for actor, count in (more or {}).items():
        if actor != names.bot_user_id:
            counts[actor] = count
    for item in items:
        if item.actor_id and item.actor_id != names.bot_user_id:
            counts[item.actor_id] = counts.get(item.actor_id, 0) + 1
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], names(pair[0])))
    people = [Participant(names(user_id), count) for user_id, count in ranked]
    acknowledgers = {names.person(by) for _, by in acknowledged.values() if by and by not in counts}
    return people + [Participant(name, 0) for name in sorted(acknowledgers - {p.name for p in people})]


def _pages(pages: list[PageView], acks: dict[int, tuple[datetime, str]], at: ToMoment, names: _Names,
           team_names: dict[str, str]) -> list[PageLine]:
    by_id = {p.id: p for p in pages}
    lines = []
    for page in pages:
        source = by_id.get(page.escalated_from_id) if page.escalated_from_id else None
        acknowledged, acknowledged_by = acks.get(page.id, (None, None))
        lines.append(PageLine(
            team=team_names.get(page.team, page.team),
            requested=at(page.requested_at),
            requested_by=names(page.requested_by) if page.requested_by else "incident-bot (escalation)",
            escalated_from=team_names.get(source.team, source.team) if source else None,
            acknowledged=at(acknowledged) if acknowledged else None,
            acknowledged_by=names.person(acknowledged_by) if acknowledged_by else None,
            time_to_acknowledge=human_duration(timedelta(seconds=clock_seconds(page.requested_at, acknowledged))) if acknowledged else None,
            status=page.status,
        ))
    return lines


class _Names:
    """User ids to names; an unknown id shows as @id rather than being dropped. `text` renders Slack
    markup in recorded text as Markdown, with the names the draft knows (bot/slack_markup.py)."""

    def __init__(self, names: dict[str, str], bot_user_id: str | None, markup: Renderer) -> None:
        self._names = names
        self.bot_user_id = bot_user_id
        self.markup = markup
        self.text = markup.text
        self._people: dict[str, str] = {}  # person()'s answers: asked once per timeline line, of a few people

    def __call__(self, user_id: object) -> str:
        if not user_id:
            return "someone"
        if user_id == self.bot_user_id:
            return "incident-bot"
        if user_id == OPERATOR:
            return OPERATOR_NAME
        return self._names.get(str(user_id), f"@{user_id}")

    def person(self, who: str) -> str:
        """A user id resolved to a name; anything else (a name PagerDuty sent) as it is."""
        if (known := self._people.get(who)) is None:
            known = self._people[who] = self(who) if USER_ID.fullmatch(who) else who
        return known
