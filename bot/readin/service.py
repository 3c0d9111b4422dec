"""Reading what a read-in is built from out of the store, and remembering which Slack events got one."""

from __future__ import annotations

from collections.abc import Mapping
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.followups import followup_view
from bot.incidents.values import Role
from bot.paging.service import page_view
from bot.postmortem.draft import RoleSpell
from bot.readin.content import ReadIn, ReadInRecord, WatchdogReading, build
from bot.timeline import item_of
from storage import diagnostics as diagnostics_store
from storage import followups as followup_store
from storage import incidents as incident_store
from storage import paging as paging_store
from storage import postmortems as postmortem_store
from storage import timeline as timeline_store
from storage.database import read_only, transaction


class ReadInService:
    """`team_names`: team key -> display name; `escalate_to`: team key -> the team it escalates to;
    `targets`: the diagnostics targets the watchdog samples (Watchdog.targets: those with connections to
    count); no other target is given a watchdog reading."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, *, team_names: Mapping[str, str],
                 escalate_to: Mapping[str, str], targets: list[str]) -> None:
        self._sessions = sessions
        self._reads = read_only(sessions)
        self._clock = clock
        self._team_names = dict(team_names)
        self._escalate_to = dict(escalate_to)
        self._targets = sorted(targets)

    def read_in(self, incident_id: int) -> ReadIn:
        """Where the incident stands now. A few reads, no Slack call: fit for a slash command's 3 s.
        Raises LookupError for an unknown incident."""
        now = self._clock.now()
        with self._reads() as session:
            record = self._record(session, incident_id)
        return build(record, now)

    def claim(self, key: str, incident_id: int) -> bool:
        """Remember that the Slack event `key` got its read-in; False when it already did (Slack's retry
        of the same event, or a second process given it). Forgotten with the other request keys after
        two days (bot/housekeeping.py)."""
        with transaction(self._sessions) as session:
            return timeline_store.claim_event(session, key, incident_id, self._clock.now())

    def _record(self, session: Session, incident_id: int) -> ReadInRecord:
        row = incident_store.by_id(session, incident_id)
        if row is None:
            raise LookupError(incident_id)
        return ReadInRecord(
            incident=incident_store.snapshot(row),
            items=[item_of(entry) for entry in timeline_store.entries(session, incident_id)],
            roles=[RoleSpell(Role(r.role), r.user_id, r.assigned_at, r.ended_at)
                   for r in postmortem_store.role_history(session, incident_id)],
            pages=[page_view(p) for p in paging_store.for_incident(session, incident_id)],
            followups=[followup_view(f) for f in followup_store.for_incident(session, incident_id)],
            watchdog=[self._watchdog(session, target) for target in self._targets],
            team_names=self._team_names,
            escalate_to=self._escalate_to,
        )

    @staticmethod
    def _watchdog(session: Session, target: str) -> WatchdogReading:
        episode = diagnostics_store.open_alert(session, target)
        since = episode.opened_at if episode is not None else None
        reasons = list(episode.reasons or []) if episode is not None else []
        latest = diagnostics_store.recent_samples(session, target, 1)
        if not latest:
            return WatchdogReading(target, alerting_since=since, reasons=reasons)
        sample = latest[-1]
        problem = (sample.error or "the target refuses new connections") if sample.refused else sample.error
        failing = diagnostics_store.failing_since(session, target) if problem else None
        return WatchdogReading(target, sample.taken_at, sample.in_use, sample.usable, sample.idle_in_transaction,
                               sample.oldest_idle_in_transaction_seconds, problem, since, reasons, failing)
