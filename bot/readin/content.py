"""What a read-in says: a pure function from an incident's record to where it stands at a moment.

Someone joining an incident late needs the state of play, not the whole timeline: who leads, how bad it
is and for how long, the latest status update, the key events, the hypotheses, and above all the paths
already ruled out, so they do not walk them again (the example outage: the database team, brought in at
10:00, was not told the servers had been tuned and the network checked). Everything comes from recorded
facts, each with its time; nothing is guessed or summarised by a model.

The read-in is of the record as it stood at `now`: what was recorded later is left out, so a replayed
incident reads as it did to someone joining then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.followups import FollowupView
from bot.incidents.values import EntryKind, Incident, Role, Severity, Status
from bot.paging.service import PageView
from bot.postmortem.draft import RoleSpell
from bot.timeline import TimelineItem, visible

# Entries that move the status, each with the status it moved to in `data["to"]`.
STATUS_MOVES = (EntryKind.STATUS_CHANGED, EntryKind.RESOLVED, EntryKind.CLOSED)


@dataclass(frozen=True, slots=True)
class WatchdogReading:
    """The watchdog's view of one target it samples (bot/diagnostics/watchdog.py): its latest sample
    and its open alert episode, if any. Figures are connection counts; `problem` says why the latest
    sample has none (the target refused connections, could not be reached, or the check failed): the
    watchdog could not read the target then, which is no sign of calm. `failing_since`: the first of the
    samples without figures since the last one with them (the oldest kept when none had any). Text is
    plain, not mrkdwn."""

    target: str
    taken_at: datetime | None = None  # None: not sampled yet
    in_use: int | None = None
    usable: int | None = None
    idle_in_transaction: int | None = None
    oldest_idle_in_transaction_seconds: int | None = None
    problem: str | None = None
    alerting_since: datetime | None = None  # the open episode's start; None: calm
    reasons: list[str] = field(default_factory=list)  # what the open episode is about
    failing_since: datetime | None = None  # set with `problem`

    @property
    def usage_percent(self) -> float | None:
        if self.in_use is None or not self.usable:
            return None
        return self.in_use / self.usable * 100


@dataclass(frozen=True, slots=True)
class ReadInRecord:
    """What the read-in is built from, as the store holds it. `team_names`: team key -> display name
    (plain text); `escalate_to`: team key -> the key of the team its unacknowledged page escalates to."""

    incident: Incident
    items: list[TimelineItem]
    roles: list[RoleSpell] = field(default_factory=list)
    pages: list[PageView] = field(default_factory=list)
    followups: list[FollowupView] = field(default_factory=list)
    watchdog: list[WatchdogReading] = field(default_factory=list)
    team_names: Mapping[str, str] = field(default_factory=dict)
    escalate_to: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Said:
    """Something recorded on the timeline: when, by whom (a Slack user id; None: the bot), and what, as
    mrkdwn as Slack sent it. `link`: a captured message's permalink."""

    at: datetime
    who: str | None
    text: str
    link: str | None = None


@dataclass(frozen=True, slots=True)
class RoleHolder:
    role: Role
    user_id: str | None  # None: nobody holds it
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class PageState:
    """A page not resolved at `now`: waiting for an acknowledgement, or acknowledged. Team names are
    display names, plain text; `acknowledged_by` a Slack user id or a pager's "<name> via <provider>"."""

    team: str
    requested_at: datetime
    requested_by: str | None  # None: the bot, escalating
    escalated_from: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    escalated_at: datetime | None = None  # not acknowledged in time: the next team was paged then
    escalates_to: str | None = None
    escalation_due_at: datetime | None = None  # when it escalates unless acknowledged


@dataclass(frozen=True, slots=True)
class DiagnosticResult:
    """The last check run on a target (`/incident diag`): plain text, not mrkdwn."""

    target: str
    check: str
    outcome: str  # ok, refused, unreachable, timeout… (bot/diagnostics/service.RunOutcome)
    headline: str
    at: datetime
    who: str | None


@dataclass(frozen=True, slots=True)
class OpenFollowup:
    text: str  # mrkdwn as typed
    owner_id: str | None
    added_at: datetime
    added_by: str


@dataclass(frozen=True, slots=True)
class ReadIn:
    """Where an incident stands at `now`. Lists are oldest first; text is mrkdwn as Slack sent it
    except where a field says plain text."""

    number: int
    title: str
    description: str | None
    private: bool
    now: datetime
    reporter_id: str
    declared_at: datetime
    severity: Severity
    status: Status
    status_since: datetime  # the last status change, else the declaration
    roles: list[RoleHolder]
    latest_update: Said | None
    resolution: Said | None  # set while resolved or closed: when, by whom, the summary given
    key_events: list[Said]
    hypotheses: list[Said]
    ruled_out: list[Said]
    pages: list[PageState]
    diagnostics: list[DiagnosticResult]  # the last result per target, by target name
    watchdog: list[WatchdogReading]  # by target name
    followups: list[OpenFollowup]


def build(record: ReadInRecord, now: datetime) -> ReadIn:
    """The read-in of `record` as it stood at `now` (aware): entries, pages, roles and follow-ups
    recorded later are left out; deleted messages never count. `record.watchdog` is taken as the
    watchdog's state at `now`."""
    incident = record.incident
    items = [i for i in visible(record.items) if i.occurred_at <= now]
    status, status_since = Status.INVESTIGATING, incident.declared_at
    for item in items:
        if item.kind in STATUS_MOVES and item.data.get("to"):
            status, status_since = _status(item.data["to"], status), item.occurred_at
    updates = [i for i in items if i.kind is EntryKind.UPDATE]
    return ReadIn(
        number=incident.number,
        title=incident.title,
        description=incident.description,
        private=incident.private,
        now=now,
        reporter_id=incident.reporter_id,
        declared_at=incident.declared_at,
        severity=_severity(items, incident.severity),
        status=status,
        status_since=status_since,
        roles=_roles(record.roles, now),
        latest_update=_said(updates[-1]) if updates else None,
        resolution=_resolution(items, status),
        key_events=[_said(i, _key_event_text(i)) for i in items if i.key_event],
        hypotheses=[_said(i) for i in items if i.kind is EntryKind.HYPOTHESIS],
        ruled_out=[_said(i) for i in items if i.kind is EntryKind.MISLEADING],
        pages=_pages(record, now),
        diagnostics=_diagnostics(items),
        watchdog=sorted(record.watchdog, key=lambda w: w.target),
        followups=[
            OpenFollowup(f.text, f.owner_id, f.created_at, f.created_by)
            for f in sorted(record.followups, key=lambda f: f.created_at)
            if f.created_at <= now and (f.done_at is None or f.done_at > now)
        ],
    )


def _said(item: TimelineItem, text: str | None = None) -> Said:
    return Said(item.occurred_at, item.actor_id, item.text if text is None else text, item.permalink)


def _status(value: object, otherwise: Status) -> Status:
    try:
        return Status(str(value))
    except ValueError:
        return otherwise


def _severity(items: list[TimelineItem], current: Severity) -> Severity:
    """The severity at the last entry that set it (the declaration, then each change)."""
    severity = None
    for item in items:
        value = item.data.get("to") if item.kind is EntryKind.SEVERITY_CHANGED else (
            item.data.get("severity") if item.kind is EntryKind.DECLARED else None)
        if value:
            try:
                severity = Severity(str(value))
            except ValueError:
                continue
    return severity or current


def _roles(spells: list[RoleSpell], now: datetime) -> list[RoleHolder]:
    holders = []
    for role in Role:
        held = [s for s in spells if s.role is role and s.assigned_at <= now and (s.ended_at is None or s.ended_at > now)]
        latest = max(held, key=lambda s: s.assigned_at, default=None)
        holders.append(RoleHolder(role, latest.user_id, latest.assigned_at) if latest else RoleHolder(role, None))
    return holders


def _resolution(items: list[TimelineItem], status: Status) -> Said | None:
    if status not in (Status.RESOLVED, Status.CLOSED):
        return None
    resolved = [i for i in items if i.kind is EntryKind.RESOLVED or (
        i.kind is EntryKind.STATUS_CHANGED and i.data.get("to") == Status.RESOLVED.value)]
    return _said(resolved[-1]) if resolved else None


def _key_event_text(item: TimelineItem) -> str:
    """A key event's words: its text, else the files it shared, else that it forwarded a message."""
    if item.text.strip():
        return item.text
    files = ", ".join(str(f.get("title") or f.get("name") or "a file") for f in item.files)
    return f"shared {files}" if files else "forwarded a message"


def _pages(record: ReadInRecord, now: datetime) -> list[PageState]:
    names = record.team_names
    by_id = {p.id: p for p in record.pages}
    states = []
    for page in record.pages:
        if page.requested_at > now or (page.resolved_at is not None and page.resolved_at <= now):
            continue
        source = by_id.get(page.escalated_from_id) if page.escalated_from_id else None
        acknowledged = page.acknowledged_at is not None and page.acknowledged_at <= now
        escalated = page.escalated_at is not None and page.escalated_at <= now
        following = record.escalate_to.get(page.team)
        states.append(PageState(
            team=names.get(page.team, page.team),
            requested_at=page.requested_at,
            requested_by=page.requested_by,
            escalated_from=names.get(source.team, source.team) if source else None,
            acknowledged_at=page.acknowledged_at if acknowledged else None,
            acknowledged_by=page.acknowledged_by if acknowledged else None,
            escalated_at=page.escalated_at if escalated else None,
            escalates_to=names.get(following, following) if following else None,
            escalation_due_at=page.escalation_due_at if following and not acknowledged and not escalated else None,
        ))
    return states


def _diagnostics(items: list[TimelineItem]) -> list[DiagnosticResult]:
    last: dict[str, DiagnosticResult] = {}
    for item in items:
        if item.kind is EntryKind.DIAGNOSTIC:
            target = str(item.data.get("target") or "")
            last[target] = DiagnosticResult(target, str(item.data.get("check") or ""), str(item.data.get("outcome") or ""),
                                            item.text, item.occurred_at, item.actor_id)
    return [last[target] for target in sorted(last)]
