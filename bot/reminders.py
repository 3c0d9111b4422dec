"""Status-update reminders: while an incident is open and unresolved, its channel is reminded to post
an update when none was posted for its severity's interval (sev1 every 15 minutes by default).

Each incident has one scheduled job in the bot's database, so reminders survive a restart. The job
decides whether a reminder is due from what is stored (the last update, the last reminder), claims it
on the incident's row so two processes remind once, and schedules the next check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import StatusUpdateMinutes
from bot.incidents.values import EntryKind, Incident, Severity, Status
from bot.scheduling import Scheduler
from storage import incidents as store
from storage.database import transaction

JOB = "status-reminder"


@dataclass(frozen=True)
class Reminder:
    incident: Incident
    interval: timedelta
    last_update: datetime | None  # None: no update since the declaration


def job_id(incident_id: int) -> str:
    return f"status-reminder-{incident_id}"


class StatusReminders:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, scheduler: Scheduler, minutes: StatusUpdateMinutes) -> None:
        self._sessions = sessions
        self._clock = clock
        self._scheduler = scheduler
        self._minutes = minutes

    def interval(self, severity: Severity) -> timedelta:
        return timedelta(minutes=getattr(self._minutes, severity.value))

    def follow(self, incident: Incident) -> None:
        """Arm the reminder for the incident as it is now, or stop it once it is resolved or closed."""
        if not _needs_updates(incident):
            self._scheduler.cancel(job_id(incident.id))
            return
        with self._sessions() as session:
            row = store.by_id(session, incident.id)
            if row is None:
                return
            due = self._due(session, row.id, row.declared_at, row.status_reminded_at, incident.severity)
        self._scheduler.at(due, JOB, incident.id, job_id=job_id(incident.id))

    def check(self, incident_id: int) -> Reminder | None:
        """The scheduled job: the reminder to post now, if one is due (claimed), and the next check armed."""
        now = self._clock.now()
        with transaction(self._sessions) as session:
            row = store.by_id(session, incident_id, for_update=True)
            if row is None:
                return None
            incident = store.snapshot(row)
            if not _needs_updates(incident):
                return None
            due = self._due(session, row.id, row.declared_at, row.status_reminded_at, incident.severity)
            reminder = None
            if due <= now:
                row.status_reminded_at = now
                reminder = Reminder(incident, self.interval(incident.severity), store.last_entry_at(session, row.id, EntryKind.UPDATE))
                due = now + self.interval(incident.severity)
        self._scheduler.at(due, JOB, incident_id, job_id=job_id(incident_id))
        return reminder

    def _due(self, session: Session, incident_id: int, declared_at: datetime, reminded_at: datetime | None,
             severity: Severity) -> datetime:
        """An interval after the latest of: the declaration, the last update, the last reminder."""
        last_update = store.last_entry_at(session, incident_id, EntryKind.UPDATE)
        since = max(t for t in (declared_at, last_update, reminded_at) if t is not None)
        return since + self.interval(severity)


def _needs_updates(incident: Incident) -> bool:
    return incident.status not in (Status.RESOLVED, Status.CLOSED)
