"""Alert groups from monitoring: stored as they come (every alert, every occurrence), one view per group
for Slack, and incidents declared from them.

A notification is stored before the sender is answered (Alertmanager retries on 5xx, so nothing is lost
while the store is down). Alertmanager re-sends the same notification (retries, repeat_interval): what it
carries is merged by each alert's fingerprint and start, so a repeat changes nothing and bumps no version.
Declaring from a group is idempotent per group (one incident however many presses or notifications),
puts a Detection entry at the earliest alert's own start (time to detect counts from when monitoring
first saw it) and links the group; while that incident is open, what later notifications change is added
to its timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.alerts.notification import Alert, Notification, identity
from bot.alerts.rules import Rule, first_match
from bot.clock import Clock
from bot.incidents import commands as c
from bot.incidents.service import IncidentService
from bot.incidents.values import MAX_TITLE_LENGTH, EntryKind, Incident, Severity, Status
from bot.wording import counted
from storage import alerts as store
from storage import incidents as incident_store
from storage.database import transaction
from storage.models import AlertGroup, AlertInstance

ENTRY_TEXT = 3000  # characters of an alert's words kept on a timeline entry
DESCRIBED_ALERTS = 10  # alerts listed in a declared incident's description


@dataclass(frozen=True)
class AlertView:
    fingerprint: str
    name: str
    status: str  # firing, resolved
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    links: dict[str, str]  # "source", "dashboard", "panel", "silence", "runbook", "image" -> http(s) URL

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.annotations.get("description") or ""


@dataclass(frozen=True)
class GroupView:
    id: int
    group_key: str
    source: str  # alertmanager, grafana
    status: str
    labels: dict[str, str]  # group labels, then common labels
    annotations: dict[str, str]
    external_url: str | None
    title: str | None
    first_seen_at: datetime
    version: int  # bumped by every change to what the group's message shows
    shown_version: int  # what Slack shows
    slack_channel: str | None
    slack_ts: str | None
    incident_id: int | None
    alerts: list[AlertView] = field(default_factory=list)  # this episode's alerts, every occurrence, oldest first
    episode: int = 1

    @property
    def firing(self) -> list[AlertView]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def name(self) -> str:
        names = sorted({a.name for a in self.alerts}) or [self.labels.get("alertname", "alert")]
        return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"


@dataclass(frozen=True)
class Received:
    """A notification, stored. `fired`/`resolved`: alerts it made firing or resolved (empty for a
    repeat); `rule`: the first rule the group's labels match."""

    group: GroupView
    changed: bool
    fired: list[AlertView]
    resolved: list[AlertView]
    rule: Rule | None


@dataclass(frozen=True)
class DeclaredFromAlerts:
    incident: Incident
    created: bool  # False: the group's incident already existed (another press, a repeat)
    group: GroupView


class AlertService:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, incidents: IncidentService,
                 rules: list[Rule]) -> None:
        self._sessions = sessions
        self._clock = clock
        self._incidents = incidents
        self._rules = rules

    def receive(self, notification: Notification) -> Received:
        """Store the notification (its group and alerts). Raises the store's errors (the caller answers 503)."""
        try:
            return self._receive(notification)
        except IntegrityError:  # the group's first two notifications at once: the other stored it; merge into it
            return self._receive(notification)

    def _receive(self, notification: Notification) -> Received:
        now = self._clock.now()
        labels = notification.labels_for_rules
        with transaction(self._sessions) as session:
            # Grafana's default groupKey is "{}:{}", and two Alertmanager clusters may share theirs: a group is
            # its key as its sender sent it.
            key = "\n".join((notification.source, notification.external_url or "", notification.group_key))
            group = store.by_key(session, key)
            created = group is None
            if group is None:
                group = AlertGroup(key_hash=store.key_hash(key), group_key=notification.group_key,
                                   source=notification.source, receiver=notification.receiver, status=notification.status,
                                   first_seen_at=now, updated_at=now, version=1, shown_version=0)
                session.add(group)
            changed = created or group.status != notification.status or (group.labels or {}) != labels
            group.status, group.labels = notification.status, labels
            group.annotations = dict(notification.common_annotations)
            group.external_url, group.title, group.receiver = notification.external_url, notification.title, notification.receiver
            session.flush()
            fired: list[AlertInstance] = []
            resolved: list[AlertInstance] = []
            rows = store.instances(session, group.id)  # one query, not one per alert: a storm's groups are large
            known = {(r.fingerprint, r.starts_at): r for r in rows}
            current = [r for r in rows if r.episode == group.episode]
            fires_anew = any(a.status == "firing" and identity(a) not in known for a in notification.alerts)
            if current and fires_anew and not any(r.status == "firing" for r in current):
                # Everything had resolved: this is a new episode of the group, with a message and an incident of its own.
                group.episode += 1
                group.slack_ts = group.slack_channel = None
                group.incident_id = None
                changed = True
            for alert in notification.alerts:
                row = known.get(identity(alert))
                if row is None:
                    row = _instance(group.id, group.episode, alert, now)
                    session.add(row)
                    rows.append(row)
                    known[(row.fingerprint, row.starts_at)] = row
                    (fired if alert.status == "firing" else resolved).append(row)
                    changed = True
                elif row.status != alert.status or row.ends_at != alert.ends_at or (row.annotations or {}) != alert.annotations:
                    if row.status != alert.status:
                        (fired if alert.status == "firing" else resolved).append(row)
                    row.status, row.ends_at, row.updated_at = alert.status, alert.ends_at, now
                    row.annotations, row.links = dict(alert.annotations), dict(alert.links)
                    changed = True
            if changed and not created:
                group.version += 1
                group.updated_at = now
            session.flush()
            fired_views, resolved_views = [_alert_view(r) for r in fired], [_alert_view(r) for r in resolved]
            if changed and group.incident_id is not None:
                self._record_on_incident(session, group, fired_views, resolved_views, now)
            view = _group_view(session, group, sorted(rows, key=lambda r: (r.starts_at, r.id or 0)))
        return Received(view, changed, fired_views, resolved_views, first_match(self._rules, labels))

    def group(self, group_id: int) -> GroupView:
        with self._sessions() as session:
            row = store.by_id(session, group_id)
            if row is None:
                raise LookupError(group_id)
            return _group_view(session, row)

    def unshown(self) -> list[int]:
        """Groups whose latest version Slack does not show yet."""
        with self._sessions() as session:
            return store.unshown(session)

    def reshow_for(self, incident_id: int) -> list[int]:
        """The groups whose message names `incident_id`, marked to be shown again (their version bumped):
        after `/incident private` their messages must name it by number only. Returns their ids."""
        with transaction(self._sessions) as session:
            return store.bump_for_incident(session, incident_id)

    def rule_for(self, group: GroupView) -> Rule | None:
        return first_match(self._rules, group.labels)

    def mark_shown(self, group_id: int, version: int, channel: str, ts: str) -> None:
        """Slack shows `version` of the group in the message `ts` of `channel`."""
        with transaction(self._sessions) as session:
            row = store.by_id(session, group_id, for_update=True)
            if row is not None:
                row.slack_channel, row.slack_ts = channel, ts
                store.mark_shown(session, group_id, version)

    def declare(self, group_id: int, actor_id: str) -> DeclaredFromAlerts:
        """Declare an incident from a group (severity from the first matching rule, else SEV2): once per
        group, however many presses or notifications ask."""
        view = self.group(group_id)
        rule = self.rule_for(view)
        severity = rule.incident_severity if rule and rule.incident_severity else Severity.SEV2
        declared = self._incidents.declare(c.Declare(title=_title(view), severity=severity, description=_description(view)),
                                           actor_id, f"alert-group:{group_id}:{view.episode}")
        if declared.created:
            earliest = min(view.alerts, key=lambda a: a.starts_at, default=None)
            at = min(earliest.starts_at, declared.incident.declared_at) if earliest else declared.incident.declared_at
            with transaction(self._sessions) as session:
                row = store.by_id(session, group_id, for_update=True)
                incident_row = incident_store.by_id(session, declared.incident.id)
                assert row is not None and incident_row is not None
                row.incident_id = incident_row.id
                row.version += 1  # its message now names the incident
                name = earliest.name if earliest else view.name
                words = f"{name} firing (monitoring: {view.source})" + (f": {earliest.summary}" if earliest and earliest.summary else "")
                incident_store.add_entry(session, incident_row, EntryKind.DETECTION, at, None, _escape(words)[:ENTRY_TEXT],
                                         {"alert_group": group_id, "source": view.source})
            view = self.group(group_id)
        return DeclaredFromAlerts(declared.incident, declared.created, view)

    def _record_on_incident(self, session: Session, group: AlertGroup, fired: list[AlertView],
                            resolved: list[AlertView], now: datetime) -> None:
        incident_row = incident_store.by_id(session, group.incident_id or 0)
        if incident_row is None or incident_row.status == Status.CLOSED.value:
            return
        for alert, what in [(a, "firing") for a in fired] + [(a, "resolved") for a in resolved]:
            at = alert.starts_at if what == "firing" else (alert.ends_at or now)
            words = f"{alert.name} {what}" + (f": {alert.summary}" if alert.summary else "")
            incident_store.add_entry(session, incident_row, EntryKind.ALERT, min(at, now), None, _escape(words)[:ENTRY_TEXT],
                                     {"alert_group": group.id, "status": what, "fingerprint": alert.fingerprint})


def _instance(group_id: int, episode: int, alert: Alert, now: datetime) -> AlertInstance:
    return AlertInstance(group_id=group_id, episode=episode, fingerprint=alert.fingerprint, starts_at=alert.starts_at, ends_at=alert.ends_at,
                         status=alert.status, name=alert.name, labels=dict(alert.labels), annotations=dict(alert.annotations),
                         links=dict(alert.links), first_seen_at=now, updated_at=now)


def _alert_view(row: AlertInstance) -> AlertView:
    return AlertView(row.fingerprint, row.name, row.status, dict(row.labels or {}), dict(row.annotations or {}),
                     row.starts_at, row.ends_at, dict(row.links or {}))


def _group_view(session: Session, row: AlertGroup, instances: list[AlertInstance] | None = None) -> GroupView:
    return GroupView(
        id=row.id, group_key=row.group_key, source=row.source, status=row.status, labels=dict(row.labels or {}),
        annotations=dict(row.annotations or {}), external_url=row.external_url, title=row.title,
        first_seen_at=row.first_seen_at, version=row.version, shown_version=row.shown_version,
        slack_channel=row.slack_channel, slack_ts=row.slack_ts, incident_id=row.incident_id,
        alerts=[_alert_view(a) for a in (store.instances(session, row.id) if instances is None else instances)
                if a.episode == row.episode],
        episode=row.episode,
    )


def _escape(text: str) -> str:
    """Entry text and titles are stored as mrkdwn; what monitoring sent is plain text (Slack, "Formatting
    text for app surfaces": escape &, < and >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _title(group: GroupView) -> str:
    """The earliest alert's own name and summary (never one alert's name with another's summary)."""
    first = min(group.alerts, key=lambda a: a.starts_at, default=None)
    name = first.name if first else group.name
    others = len(group.alerts) - 1
    words = name + (f": {first.summary}" if first and first.summary else "") + (
        f" (and {counted(others, 'more alert')})" if others > 0 else "")
    words = " ".join(words.split())
    if len(_escape(words)) <= MAX_TITLE_LENGTH:
        return _escape(words)
    while len(_escape(words)) > MAX_TITLE_LENGTH - 1:  # cut the words, never an escape such as &amp;
        words = words[:-1]
    return _escape(words) + "…"


def _description(group: GroupView) -> str:
    """The group's labels and each alert's links, as the incident's description (mrkdwn)."""
    labels = ", ".join(f"{k}={v}" for k, v in sorted(group.labels.items()))
    lines = [_escape(f"From {group.source}: {labels}")]
    for alert in group.alerts[:DESCRIBED_ALERTS]:
        links = " · ".join(f"<{url}|{name}>" for name, url in alert.links.items())
        lines.append("• " + _escape(alert.name + (f" — {alert.summary}" if alert.summary else "")) + (f" ({links})" if links else ""))
    if len(group.alerts) > DESCRIBED_ALERTS:
        lines.append(f"…and {len(group.alerts) - DESCRIBED_ALERTS} more alerts")
    return "\n".join(lines)[:ENTRY_TEXT]
