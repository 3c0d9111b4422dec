"""Paging a team for an incident, and what follows: delivery, acknowledgement, escalation, resolution.

A page is recorded (with its timeline entry) before anyone is told it was sent; delivery happens after
Slack has been answered, each provider on lanes of its own (bot.paging.dispatch), so a provider that
hangs delays nobody else. While a team's page is open, paging it again re-sends the same key, so
providers deduplicate it. Escalation jobs claim their page in one UPDATE, so with several processes
only one escalates. What people do in PagerDuty and Opsgenie comes back as `ProviderEvent`s (`apply`):
recorded once per event id, and ordered by when they happened, since providers do not promise order.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import TeamSection
from bot.incidents.values import EntryKind, Incident, Severity
from bot.invitations import Invitation
from bot.paging.dispatch import Dispatcher, Told
from bot.paging.events import Doer, ProviderAction, ProviderEvent
from bot.paging.keys import alert_key
from bot.paging.providers import Alert, Provider, ProviderError
from bot.paging.webhooks import headline
from bot.scheduling import Scheduler
from bot.slack_markup import to_plain
from bot.wording import counted
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
# And who closed it at a provider, when a provider did ("Dana Scully in PagerDuty").
CLOSED_BY = "closed_by"


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
    closed_by: str | None = None  # who resolved it at a provider, and where; None: closed with the incident
    escalation_due_at: datetime | None = None

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
    told: list[Future[Told]]  # telling the team's other providers; each future's error says who was not told


@dataclass(frozen=True)
class Resolved:
    pages: list[PageView]  # the pages this closed
    told: list[Future[Told]]  # closing their alerts at the providers


@dataclass(frozen=True)
class Applied:
    """A provider event, applied. `outcome`: "changed" (the page's state moved), "unchanged" (it was
    already so: often the echo of what the bot itself told the provider), "stale" (an older state
    change that arrived after a newer one: recorded, changes nothing), "recorded" (an event that is
    told, not acted on), "duplicate" (a redelivery: nothing done)."""

    event: ProviderEvent
    outcome: str
    page: PageView | None = None  # None only for a duplicate
    incident: Incident | None = None
    told: list[Future[Told]] = field(default_factory=list)


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
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._teams = teams
        self._providers_for = providers_for
        self._scheduler = scheduler
        self._link_for = link_for
        self.dispatcher = dispatcher or Dispatcher()

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
                minutes = self._teams[team].escalate_after_minutes or 0
                page = Page(
                    incident_id=incident.id, team=team, dedup_key=alert_key(str(incident.number), team),
                    requested_at=now, requested_by=actor, escalated_from_id=escalated_from,
                    escalation_due_at=now + timedelta(minutes=minutes),
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
                        actor: Doer, *, private: bool = False) -> list[Future[Told]]:
        """Page `team` while the bot's own store is down: straight to its providers, recording nothing.
        The incident's number is unknown then, so the alert is keyed by the channel (paging again from it
        updates the same alert) and sent as SEV1: better a loud page than a lost one. One future per
        provider, each holding how it went. `private`: paged from a private channel (or one Slack could
        not say is public), so unless the team's `private_details = true` the channel's name and the
        message stay out of it, as they do of a private incident's page."""
        if team not in self._teams:
            raise UnknownTeam(team, self.team_names())
        note = "incident-bot's database was down: this page is not on the incident's timeline"
        if private and not self._teams[team].private_details:
            summary = "[SEV1] A private incident (details in Slack; incident-bot's database is down)"
            details = {"team": team, "paged_by": f"{actor.name} (in {actor.where})", "note": note}
        else:
            message = to_plain(message)  # read in PagerDuty or Opsgenie: no Slack markup
            summary = f"[SEV1] #{channel_name}: " + (message or "paged from Slack") + " (incident-bot's database is down)"
            details = {"channel": f"#{channel_name}", "team": team, "message": message or "",
                       "paged_by": f"{actor.name} (in {actor.where})", "note": note}
        alert = Alert(
            key=alert_key(channel_id, team), summary=summary, severity=Severity.SEV1, source="incident-bot",
            team=self.display_name(team), timestamp=self._clock.now(), details=details,
        )
        return [self.dispatcher.submit(provider.name, alert.key, partial(_call, provider, "trigger", alert, None))
                for provider in self._providers_for(team)]

    def deliver(self, page_id: int, incident: Incident) -> list[Future[Told]]:
        """Arm the page's escalation and send it through each of the team's providers, each on its own
        lanes; each outcome is recorded as it comes (the page is "sent" once one provider took it,
        "failed" once all refused). One future per provider; a team with none is "sent" at once."""
        page = self.get(page_id)
        self._arm_escalation(page)
        providers = self._providers_for(page.team)
        if not providers:
            with transaction(self._sessions) as session:
                row = store.by_id(session, page_id, for_update=True)
                if row is not None and row.status in ("sending", "failed"):
                    row.status, row.sent_at = "sent", self._clock.now()
            return []
        alert = self.alert(incident, page)
        names = [provider.name for provider in providers]

        def trigger(provider: Provider) -> Told:
            told = self._call(provider, "trigger", alert, page_id)
            self._record_delivery(page_id, incident.id, told, names)
            return told

        return [self.dispatcher.submit(provider.name, alert.key, partial(trigger, provider))
                for provider in providers]

    def _record_delivery(self, page_id: int, incident_id: int, told: Told, providers: list[str]) -> None:
        now = self._clock.now()
        with transaction(self._sessions) as session:
            row = store.by_id(session, page_id, for_update=True)
            if row is None:
                return
            outcome = {"ok": told.error is None, "attempts": told.attempts, **({"error": told.error} if told.error else {}),
                       **({"confirmed_by_webhook": True} if told.confirmed else {})}
            row.deliveries = {**(row.deliveries or {}), told.provider: outcome}
            if row.status in ("sending", "failed"):  # a retry that gets through makes a failed page sent
                outcomes = [row.deliveries.get(name) for name in providers]
                if any(isinstance(o, dict) and o.get("ok") for o in outcomes):
                    row.status, row.sent_at = "sent", now
                elif all(isinstance(o, dict) for o in outcomes):
                    row.status = "failed"
            if told.error is not None:
                log.warning("paging %s via %s failed: %s", row.team, told.provider, told.error)
                incident_row = incident_store.by_id(session, incident_id)
                assert incident_row is not None
                incident_store.add_entry(session, incident_row, EntryKind.PAGE_FAILED, now, None, told.error,
                                         {"team": row.team, "page_id": page_id, "provider": told.provider})

    def acknowledge(self, page_id: int, by: Doer, actor_id: str | None = None) -> Acknowledged | None:
        """Mark the page acknowledged (None if it no longer is open), stop escalation, tell the team's
        providers ("Acknowledged in Slack by Dana Scully"). `actor_id`: the Slack user, when it was one."""
        now = self._clock.now()
        with transaction(self._sessions) as session:
            page = store.by_id(session, page_id, for_update=True)
            if page is None or page.acknowledged_at is not None or page.resolved_at is not None:
                return None
            incident = self._acknowledged(session, page, actor_id or by.name, by.where, actor_id, now)
            view = page_view(page)
        self._cancel_escalation(page_id)
        return Acknowledged(view, self._tell(incident, view, "acknowledge", by))

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
            team, after = page.team, self._teams[page.team].escalate_after_minutes or 0
            # Due later than the page's own deadline: a provider said it was unacknowledged or reopened.
            reopened = page.escalation_due_at is not None and page.escalation_due_at > page.requested_at + timedelta(minutes=after)
        target = self._teams[team].escalate_to
        if target is None or not incident.is_open:
            return None
        within = counted(after, 'minute')
        message = (f"Escalated: {self.display_name(team)}'s page was open again (its acknowledgement was withdrawn or "
                   f"timed out) and nobody acknowledged it within {within}." if reopened
                   else f"Escalated: {self.display_name(team)} did not acknowledge within {within}.")
        return self.request(incident, target, message, None, None, escalated_from=page_id)

    def resolve_all(self, incident: Incident, by: Doer) -> Resolved:
        """Close every page of the incident here at once, and at the providers on their own lanes."""
        now = self._clock.now()
        with transaction(self._sessions) as session:
            rows = store.unresolved(session, incident.id)
            for row in rows:
                row.resolved_at, row.status, row.state_changed_at = now, "resolved", now
            session.flush()
            pages = [page_view(row) for row in rows]
        told: list[Future[Told]] = []
        for page in pages:
            self._cancel_escalation(page.id)
            told += self._tell(incident, page, "resolve", by)
        return Resolved(pages, told)

    def apply(self, event: ProviderEvent) -> Applied | None:
        """What a provider reported, applied to the page it is about (None: no page of ours; providers
        send events about alerts others raised too). A state change older than the page's last one is
        recorded but changes nothing; a redelivered event id does nothing at all. Whatever changed is
        told to the team's other providers: an alert acknowledged or closed in one is so in all."""
        now = self._clock.now()
        at = min(event.occurred_at, now)  # a provider's clock ahead of ours must not write the future
        with transaction(self._sessions) as session:
            page = (store.by_ref(session, event.provider, event.ref) if event.ref else None) or (
                store.latest_by_key(session, event.key) if event.key else None)
            if page is None:
                return None
            if store.event_seen(session, event.provider, event.event_id):
                return Applied(event, "duplicate")
            incident_row = incident_store.by_id(session, page.incident_id)
            assert incident_row is not None
            outcome = self._transition(session, page, event, at, now)
            store.add_event(session, page, event.provider, event.event_id, event.action.value, event.ref,
                            event.occurred_at, now, outcome)
            acknowledged_now = outcome == "changed" and event.action is ProviderAction.ACKNOWLEDGED
            if acknowledged_now:
                self._acknowledged(session, page, event.agent or "someone", event.provider, None, at)
            elif outcome in ("changed", "stale", "recorded") and event.action is not ProviderAction.TRIGGERED:
                data = {"team": page.team, "page_id": page.id, "provider": event.provider, "action": event.action.value,
                        "outcome": outcome, "link": event.link}
                incident_store.add_entry(session, incident_row, EntryKind.PAGE_UPDATED, at, None, headline(event), data)
            session.flush()
            view, incident = page_view(page), incident_store.snapshot(incident_row)
        told: list[Future[Told]] = []
        if outcome == "changed":
            by = Doer(event.agent or event.provider, event.provider)
            if event.action in (ProviderAction.ACKNOWLEDGED, ProviderAction.RESOLVED):
                self._cancel_escalation(view.id)
                action = "acknowledge" if event.action is ProviderAction.ACKNOWLEDGED else "resolve"
                told = self._tell(incident, view, action, by, skip=event.provider)
            else:  # open again: escalation re-armed from now
                self._arm_escalation(view)
        return Applied(event, outcome, view, incident, told)

    def _transition(self, session: Session, page: Page, event: ProviderEvent, at: datetime, now: datetime) -> str:
        if not event.changes_state:
            return "recorded"
        if page.state_changed_at is not None and at < page.state_changed_at:
            return "stale"
        page.state_changed_at = at
        state = "resolved" if page.resolved_at else "acknowledged" if page.acknowledged_at else "open"
        action = event.action
        if state == "resolved" and action is not ProviderAction.REOPENED:
            return "unchanged"  # only a reopen brings a closed page back
        wanted = {ProviderAction.ACKNOWLEDGED: "acknowledged", ProviderAction.RESOLVED: "resolved"}.get(action, "open")
        if wanted == state:
            return "unchanged"
        if action is ProviderAction.RESOLVED:
            page.resolved_at, page.status = at, "resolved"
            page.deliveries = {**(page.deliveries or {}), CLOSED_BY: f"{event.agent or 'someone'} in {event.provider}"}
        elif action is not ProviderAction.ACKNOWLEDGED:  # unacknowledged, reopened: open again
            team = self._teams.get(page.team)
            minutes = (team.escalate_after_minutes or 0) if team else 0
            page.acknowledged_at = page.acknowledged_by = page.resolved_at = None
            page.status = "sent" if page.sent_at else "failed"
            page.escalation_due_at = now + timedelta(minutes=minutes)
            page.deliveries = {k: v for k, v in (page.deliveries or {}).items() if k != CLOSED_BY}
        return "changed"

    def _tell(self, incident: Incident, page: PageView, action: str, by: Doer, skip: str | None = None) -> list[Future[Told]]:
        """Tell each of the page's providers (but `skip`, who told us) to acknowledge or resolve."""
        if page.team not in self._teams:
            return []
        alert = self.alert(incident, page)
        return [self.dispatcher.submit(provider.name, alert.key, partial(self._call, provider, action, alert, page.id, by))
                for provider in self._providers_for(page.team) if provider.name != skip]

    def _call(self, provider: Provider, action: str, alert: Alert, page_id: int, by: Doer | None = None) -> Told:
        """One call about a page. A call that failed (often: it never got an answer) while the provider's
        own webhook said it happened (any event about the alert for a trigger, an acknowledgement or a
        resolution for an acknowledge, a resolution for a resolve) did happen: it counts as done."""
        started = self._clock.now()
        told = _call(provider, action, alert, page_id, by)
        if told.error is None:
            return told
        with self._sessions() as session:
            confirmed = store.reported_since(session, page_id, provider.name, started, CONFIRMED_BY.get(action))
        if confirmed:
            log.info("%s to %s failed (%s), but its webhook says it happened", action, provider.name, told.error)
            return dataclasses.replace(told, error=None, confirmed=True)
        return told

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
        message as plain text (`<@U1|dana>` reads "dana", `&amp;` reads "&"; bot.slack_markup).

        A private incident's page carries only its number and severity (and the team, and a link to its
        channel by id, which opens only for its members), unless the team's `private_details = true`:
        providers keep what they are sent, and show it to everyone in their account (docs/security.md)."""
        team = self._teams.get(page.team)
        if incident.private and not (team and team.private_details):
            return self._minimal_alert(incident, page)
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

    def _minimal_alert(self, incident: Incident, page: PageView) -> Alert:
        """A private incident's page: its number and severity, the team, the channel's link by id with a
        neutral text; not its title, status, channel name nor the page's message."""
        return Alert(
            key=page.dedup_key,
            summary=f"[{incident.severity.label}] Incident {incident.number} (private: details in Slack)",
            severity=incident.severity,
            source="incident-bot",
            team=self.display_name(page.team),
            timestamp=page.requested_at,
            details={"incident": str(incident.number), "severity": incident.severity.label, "team": page.team,
                     "private": "details only in the incident's Slack channel"},
            link=self._link_for(incident),
            link_text="Private incident channel in Slack",
        )

    def _acknowledged(self, session: Session, page: Page, by: str, via: str, actor_id: str | None, at: datetime) -> Incident:
        """Mark `page` acknowledged at `at` by `by` (the Slack user id, or a provider's name for the person)
        via `via` ("Slack", "PagerDuty"…), on the timeline as "<by> via <via>"."""
        at = max(at, page.requested_at)
        stored_by = by if actor_id else f"{by} ({via})"  # a name is shown with where it came from
        page.acknowledged_at, page.acknowledged_by, page.status = at, stored_by[:64], "acknowledged"
        page.state_changed_at = max(page.state_changed_at or at, at)
        incident_row = incident_store.by_id(session, page.incident_id)
        assert incident_row is not None
        incident_store.add_entry(session, incident_row, EntryKind.PAGE_ACKNOWLEDGED, at, actor_id, f"{by} via {via}",
                                 {"team": page.team, "page_id": page.id, "via": via,
                                  "seconds": int((at - page.requested_at).total_seconds())})
        session.flush()
        return incident_store.snapshot(incident_row)

    def _arm_escalation(self, page: PageView) -> None:
        team = self._teams[page.team]
        if self._scheduler is None or not page.is_open or page.escalated_at or not team.escalate_to:
            return
        when = page.escalation_due_at or page.requested_at + timedelta(minutes=team.escalate_after_minutes or 0)
        self._scheduler.at(when, ESCALATE, page.id, job_id=_job_id(page.id))

    def _cancel_escalation(self, page_id: int) -> None:
        if self._scheduler is not None:
            self._scheduler.cancel(_job_id(page_id))


# What a provider's own event must say for a failed call to count as done (None: any event about the alert).
CONFIRMED_BY: dict[str, tuple[str, ...] | None] = {
    "trigger": None,
    "acknowledge": (ProviderAction.ACKNOWLEDGED.value, ProviderAction.RESOLVED.value),
    "resolve": (ProviderAction.RESOLVED.value,),
}


def _job_id(page_id: int) -> str:
    return f"escalate-page-{page_id}"


def _call(provider: Provider, action: str, alert: Alert, page_id: int | None, by: Doer | None = None) -> Told:
    """One provider call, its ProviderError turned into the outcome (so a future never holds one)."""
    try:
        if action == "trigger":
            attempts = provider.trigger(alert)
        else:
            assert by is not None
            attempts = (provider.acknowledge if action == "acknowledge" else provider.resolve)(alert, by)
    except ProviderError as error:
        return Told(provider.name, action, page_id, error.reason, error.attempts)
    return Told(provider.name, action, page_id, None, attempts)


def page_view(page: Page) -> PageView:
    deliveries = dict(page.deliveries or {})
    invited = deliveries.pop(INVITES, None)
    in_thread = deliveries.pop(IN_THREAD, False) is True
    closed_by = deliveries.pop(CLOSED_BY, None)
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
        closed_by=closed_by if isinstance(closed_by, str) else None,
        escalation_due_at=page.escalation_due_at,
    )
