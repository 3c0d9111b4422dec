"""Paging a team for an incident, and what follows: delivery, acknowledgement, escalation, resolution.

A page is recorded (with its timeline entry) before anyone is told it was sent; delivery happens after
Slack has been answered. While a team's page is open, paging it again re-sends the same key, so
providers deduplicate it. Escalation jobs claim their page in one UPDATE, so with several processes
only one escalates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import TeamSection
from bot.incidents.values import EntryKind, Incident, Severity
from bot.invitations import Invitation
from bot.paging.providers import Alert, Provider, ProviderError
from bot.scheduling import Scheduler
from bot.slack_markup import to_plain
from storage import incidents as incident_store
from storage import paging as store
from storage.database import transaction
from storage.models import Page

log = logging.getLogger(__name__)

ESCALATE = "escalate"
# Kept in a page's `deliveries` beside the providers' outcomes: who its Slack invitation reached.
INVITES = "slack_invites"
# And whether its Slack message is in the incident's announcement thread (its channel was archived).
IN_THREAD = "slack_in_thread"


@dataclass(frozen=True)
class PageView:
    id: int
    incident_id: int
    team: str
    message: str
    dedup_key: str
    status: str
    requested_by: str | None
    requested_at: datetime
    escalated_from_id: int | None
    deliveries: dict[str, Any] = field(default_factory=dict)
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    escalated_at: datetime | None = None
    resolved_at: datetime | None = None
    slack_ts: str | None = None
    slack_in_thread: bool = False  # the message at slack_ts is in the announcement thread, not the channel
    invitation: Invitation | None = None  # who inviting the team's Slack members reached, once tried

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None and self.resolved_at is None

    @property
    def failed(self) -> dict[str, str]:
        """Providers that could not be reached, with why."""
        return {name: d["error"] for name, d in self.deliveries.items() if not d.get("ok")}


@dataclass(frozen=True)
class Requested:
    page: PageView
    repeated: bool  # the team's page was still open: the same alert was sent again
    retried: bool = False  # a retry of a Slack request already acted on


@dataclass(frozen=True)
class Acknowledged:
    page: PageView
    notify_errors: dict[str, str]  # providers we could not tell


class UnknownTeam(LookupError):
    def __init__(self, team: str, known: list[str]) -> None:
        super().__init__(team)
        self.team = team
        self.known = known


ProvidersFor = Callable[[str], list[Provider]]
LinkFor = Callable[[Incident], str | None]


class PagingService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        teams: dict[str, TeamSection],
        providers_for: ProvidersFor,
        scheduler: Scheduler | None,
        link_for: LinkFor,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._teams = teams
        self._providers_for = providers_for
        self._scheduler = scheduler
        self._link_for = link_for

    def team_names(self) -> list[str]:
        return sorted(self._teams)

    def team(self, name: str) -> TeamSection:
        return self._teams[name]

    def display_name(self, name: str) -> str:
        team = self._teams.get(name)
        return (team.display_name if team and team.display_name else name)

    def request(
        self,
        incident: Incident,
        team: str,
        message: str | None,
        actor: str | None,
        request_key: str | None,
        escalated_from: int | None = None,
    ) -> Requested:
        """Record that `team` is being paged (the page, a timeline entry); deliver() sends it."""
        if team not in self._teams:
            raise UnknownTeam(team, self.team_names())
        now = self._clock.now()
        with transaction(self._sessions) as session:
            page = store.open_for_team(session, incident.id, team)
            if page is not None and request_key and incident_store.processed_request(session, request_key):
                return Requested(page_view(page), repeated=False, retried=True)
            repeated = page is not None
            if page is None:
                page = Page(
                    incident_id=incident.id, team=team, dedup_key=f"incident-bot-{incident.number}-{team}",
                    requested_at=now, requested_by=actor, escalated_from_id=escalated_from,
                )
                session.add(page)
            page.message = message or page.message or ""
            page.status = "sending" if page.acknowledged_at is None else page.status
            session.flush()
            row = incident_store.by_id(session, incident.id)
            assert row is not None
            data = {"team": team, "page_id": page.id, "repeated": repeated, "escalated_from": escalated_from}
            incident_store.add_entry(session, row, EntryKind.PAGED, now, actor, message or "", data)
            if request_key:
                incident_store.record_request(session, request_key, incident.id, now)
            session.flush()
            return Requested(page_view(page), repeated)

    def page_unrecorded(self, team: str, message: str | None, channel_id: str, channel_name: str,
                        actor: str) -> dict[str, str | None]:
        """Page `team` while the bot's own store is down: straight to its providers, recording nothing.
        The incident's number is unknown then, so the alert is keyed by the channel (paging again from it
        updates the same alert) and sent as SEV1: better a loud page than a lost one. Returns each
        provider's error, or None where it went out."""
        if team not in self._teams:
            raise UnknownTeam(team, self.team_names())
        message = to_plain(message)  # read in PagerDuty or Opsgenie: no Slack markup
        summary = f"[SEV1] #{channel_name}: " + (message or "paged from Slack") + " (incident-bot's database is down)"
        alert = Alert(
            key=f"incident-bot-{channel_id}-{team}", summary=summary, severity=Severity.SEV1, source="incident-bot",
            team=self.display_name(team), timestamp=self._clock.now(),
            details={"channel": f"#{channel_name}", "team": team, "message": message or "", "paged_by": actor,
                     "note": "incident-bot's database was down: this page is not on the incident's timeline"},
        )
        outcome: dict[str, str | None] = {}
        for provider in self._providers_for(team):
            try:
                provider.trigger(alert)
                outcome[provider.name] = None
            except ProviderError as error:
                outcome[provider.name] = error.reason
        return outcome

    def deliver(self, page_id: int, incident: Incident) -> PageView:
        """Send the page through every provider the team has; record each outcome; arm escalation."""
        page = self.get(page_id)
        alert = self.alert(incident, page)
        deliveries: dict[str, Any] = {}
        for provider in self._providers_for(page.team):
            try:
                attempts = provider.trigger(alert)
                deliveries[provider.name] = {"ok": True, "attempts": attempts}
            except ProviderError as error:
                log.warning("incident %s: paging %s via %s failed: %s", incident.number, page.team, provider.name, error.reason)
                deliveries[provider.name] = {"ok": False, "error": error.reason, "attempts": error.attempts}
        now = self._clock.now()
        with transaction(self._sessions) as session:
            row = store.by_id(session, page_id, for_update=True)
            assert row is not None
            row.deliveries = {**(row.deliveries or {}), **deliveries}
            if row.status in ("sending", "failed"):  # a retry that gets through makes a failed page sent
                reached = not deliveries or any(d["ok"] for d in deliveries.values())
                row.status = "sent" if reached else "failed"
                row.sent_at = now if reached else row.sent_at
            incident_row = incident_store.by_id(session, incident.id)
            assert incident_row is not None
            for name, outcome in deliveries.items():
                if not outcome["ok"]:
                    incident_store.add_entry(session, incident_row, EntryKind.PAGE_FAILED, now, None, outcome["error"],
                                             {"team": page.team, "page_id": page_id, "provider": name})
            session.flush()
            view = page_view(row)
        self._arm_escalation(view)
        return view

    def acknowledge(self, page_id: int, by: str, via: str, actor_id: str | None = None) -> Acknowledged | None:
        """Mark the page acknowledged (None if it no longer is open), stop escalation, tell providers."""
        with transaction(self._sessions) as session:
            acknowledged = self._acknowledged(session, store.by_id(session, page_id, for_update=True), by, via, actor_id)
        return self._notify_acknowledged(*acknowledged, by, via) if acknowledged else None

    def acknowledge_by_key(self, dedup_key: str, by: str, via: str) -> Acknowledged | None:
        with transaction(self._sessions) as session:
            acknowledged = self._acknowledged(session, store.latest_by_key(session, dedup_key), by, via, None)
        return self._notify_acknowledged(*acknowledged, by, via) if acknowledged else None

    def escalate(self, page_id: int) -> Requested | None:
        """The escalation job: page the next team, unless the page was acknowledged, resolved or
        escalated in the meantime (by this process or another)."""
        with transaction(self._sessions) as session:
            if not store.claim_escalation(session, page_id, self._clock.now()):
                return None
            page = store.by_id(session, page_id)
            assert page is not None
            incident_row = incident_store.by_id(session, page.incident_id)
            assert incident_row is not None
            incident = incident_store.snapshot(incident_row)
            team, after = page.team, self._teams[page.team].escalate_after_minutes
        target = self._teams[team].escalate_to
        if target is None or not incident.is_open:
            return None
        message = f"Escalated: {self.display_name(team)} did not acknowledge within {after} minutes."
        return self.request(incident, target, message, None, None, escalated_from=page_id)

    def resolve_all(self, incident: Incident, by: str) -> dict[str, str]:
        """Close every page of the incident, here and at the providers; returns providers' errors."""
        now = self._clock.now()
        with transaction(self._sessions) as session:
            rows = store.unresolved(session, incident.id)
            for row in rows:
                row.resolved_at, row.status = now, "resolved"
            session.flush()
            pages = [page_view(row) for row in rows]
        errors: dict[str, str] = {}
        for page in pages:
            self._cancel_escalation(page.id)
            alert = self.alert(incident, page)
            for provider in self._providers_for(page.team):
                try:
                    provider.resolve(alert, by)
                except ProviderError as error:
                    errors[f"{provider.name} ({self.display_name(page.team)})"] = error.reason
        return errors

    def get(self, page_id: int) -> PageView:
        with self._sessions() as session:
            page = store.by_id(session, page_id)
            if page is None:
                raise LookupError(page_id)
            return page_view(page)

    def pages(self, incident_id: int) -> list[PageView]:
        with self._sessions() as session:
            return [page_view(p) for p in store.for_incident(session, incident_id)]

    def undelivered(self, before: datetime) -> list[PageView]:
        """Pages recorded before `before` (this process's start) and never delivered: an earlier run
        stopped between the two. Later ones are this process's own, being delivered right now."""
        with self._sessions() as session:
            return [page_view(p) for p in store.sending(session) if p.requested_at < before]

    def rearm_escalations(self) -> int:
        """Arm again the escalation of every open page not yet escalated: APScheduler drops a job from
        the store when it hands it to a worker, so one picked up by a process that died before claiming
        it would be lost. Arming one that is still there replaces it; escalating twice is refused by the
        claim. Returns how many were armed."""
        with self._sessions() as session:
            pages = [page_view(p) for p in store.awaiting_escalation(session)]
        armed = [page for page in pages if page.team in self._teams and self._teams[page.team].escalate_to]
        for page in armed:
            self._arm_escalation(page)
        return len(armed)

    def record_invitation(self, page_id: int, invitation: Invitation) -> PageView:
        """Who inviting the team's Slack members to the channel reached (the latest attempt)."""
        with transaction(self._sessions) as session:
            page = store.by_id(session, page_id, for_update=True)
            if page is None:
                raise LookupError(page_id)
            page.deliveries = {**(page.deliveries or {}), INVITES: invitation.as_json()}
            session.flush()
            return page_view(page)

    def record_message(self, page_id: int, ts: str, *, in_thread: bool = False) -> None:
        """The page's Slack message: its ts, and whether it is in the announcement thread (a ts names
        a message in one channel only)."""
        with transaction(self._sessions) as session:
            page = store.by_id(session, page_id, for_update=True)
            if page is not None:
                page.slack_ts = ts
                deliveries = {key: value for key, value in (page.deliveries or {}).items() if key != IN_THREAD}
                page.deliveries = {**deliveries, IN_THREAD: True} if in_thread else deliveries

    def alert(self, incident: Incident, page: PageView) -> Alert:
        """What PagerDuty and Opsgenie show, to people outside Slack: Slack markup in the title and
        message as plain text (`<@U1|dana>` reads "dana", `&amp;` reads "&"; bot.slack_markup)."""
        title, message = to_plain(incident.title), to_plain(page.message)
        summary = f"[{incident.severity.label}] Incident {incident.number}: {title}"
        if message:
            summary += f" — {message}"
        link = self._link_for(incident)
        return Alert(
            key=page.dedup_key,
            summary=summary,
            severity=incident.severity,
            source="incident-bot",
            team=self.display_name(page.team),
            timestamp=page.requested_at,
            details={
                "incident": str(incident.number),
                "title": title,
                "severity": incident.severity.label,
                "status": incident.status.label,
                "team": page.team,
                "message": message,
            },
            link=link,
            link_text=f"#{incident.channel_name}" if incident.channel_name else None,
        )

    def _acknowledged(
        self, session: Session, page: Page | None, by: str, via: str, actor_id: str | None
    ) -> tuple[PageView, Incident] | None:
        if page is None or page.acknowledged_at is not None or page.resolved_at is not None:
            return None
        now = self._clock.now()
        page.acknowledged_at, page.acknowledged_by, page.status = now, by[:64], "acknowledged"
        incident_row = incident_store.by_id(session, page.incident_id)
        assert incident_row is not None
        incident_store.add_entry(session, incident_row, EntryKind.PAGE_ACKNOWLEDGED, now, actor_id, f"{by} via {via}",
                                 {"team": page.team, "page_id": page.id, "via": via,
                                  "seconds": int((now - page.requested_at).total_seconds())})
        session.flush()
        return page_view(page), incident_store.snapshot(incident_row)

    def _notify_acknowledged(self, page: PageView, incident: Incident, by: str, via: str) -> Acknowledged:
        """After the acknowledgement is committed: no provider call ever holds a transaction open."""
        self._cancel_escalation(page.id)
        errors: dict[str, str] = {}
        for provider in self._providers_for(page.team):
            if provider.name == via:
                continue  # it told us
            try:
                provider.acknowledge(self.alert(incident, page), by)
            except ProviderError as error:
                errors[provider.name] = error.reason
        return Acknowledged(page, errors)

    def _arm_escalation(self, page: PageView) -> None:
        team = self._teams[page.team]
        if self._scheduler is None or not page.is_open or page.escalated_at or not team.escalate_to:
            return
        minutes = team.escalate_after_minutes or 0
        when = page.requested_at + timedelta(minutes=minutes)
        self._scheduler.at(when, ESCALATE, page.id, job_id=_job_id(page.id))

    def _cancel_escalation(self, page_id: int) -> None:
        if self._scheduler is not None:
            self._scheduler.cancel(_job_id(page_id))


def _job_id(page_id: int) -> str:
    return f"escalate-page-{page_id}"


def page_view(page: Page) -> PageView:
    deliveries = dict(page.deliveries or {})
    invited = deliveries.pop(INVITES, None)
    in_thread = deliveries.pop(IN_THREAD, False) is True
    return PageView(
        id=page.id,
        incident_id=page.incident_id,
        team=page.team,
        message=page.message or "",
        dedup_key=page.dedup_key,
        status=page.status,
        requested_by=page.requested_by,
        requested_at=page.requested_at,
        escalated_from_id=page.escalated_from_id,
        deliveries=deliveries,
        acknowledged_at=page.acknowledged_at,
        acknowledged_by=page.acknowledged_by,
        escalated_at=page.escalated_at,
        resolved_at=page.resolved_at,
        slack_ts=page.slack_ts,
        slack_in_thread=in_thread,
        invitation=Invitation.from_json(invited) if isinstance(invited, dict) else None,
    )
