"""Follow-ups: the action items an incident leaves behind, with an owner reminded until they are done.

An item is recorded with its timeline entry and the Slack request that asked for it, in one
transaction, so a retried command adds nothing twice. Reminders are claimed in the store before they
are sent, so several bot processes remind each owner once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.incidents.values import EntryKind, Incident
from storage import followups as store
from storage import incidents as incident_store
from storage.database import transaction
from storage.models import Followup


@dataclass(frozen=True)
class FollowupView:
    id: int
    incident_id: int
    text: str
    owner_id: str | None
    created_by: str
    created_at: datetime
    done_at: datetime | None = None
    done_by: str | None = None
    reminders: int = 0

    @property
    def done(self) -> bool:
        return self.done_at is not None


@dataclass(frozen=True)
class Due:
    """A reminder claimed for sending."""

    followup: FollowupView
    incident: Incident


class FollowupService:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, remind_every: timedelta) -> None:
        self._sessions = sessions
        self._clock = clock
        self._every = remind_every

    def add(self, incident_id: int, text: str, owner_id: str | None, actor_id: str, request_key: str) -> FollowupView | None:
        """The new item; None when this request was already acted on (a Slack retry)."""
        now = self._clock.now()
        with transaction(self._sessions) as session:
            incident = incident_store.by_id(session, incident_id, for_update=True)
            if incident is None:
                raise LookupError(incident_id)
            if incident_store.processed_request(session, request_key) is not None:
                return None
            row = Followup(incident_id=incident_id, text=text, owner_id=owner_id, created_by=actor_id, created_at=now, reminders=0)
            session.add(row)
            session.flush()
            incident_store.add_entry(session, incident, EntryKind.FOLLOWUP, now, actor_id, text,
                                     {"followup_id": row.id, "owner": owner_id})
            incident_store.record_request(session, request_key, incident_id, now)
            return followup_view(row)

    def mark_done(self, followup_id: int, by: str) -> tuple[FollowupView, bool]:
        """The item as it is now, and whether this call marked it done (False: it already was)."""
        with transaction(self._sessions) as session:
            row = store.by_id(session, followup_id, for_update=True)
            if row is None:
                raise LookupError(followup_id)
            if row.done_at is not None:
                return followup_view(row), False
            row.done_at, row.done_by = self._clock.now(), by
            return followup_view(row), True

    def for_incident(self, incident_id: int) -> list[FollowupView]:
        with self._sessions() as session:
            return [followup_view(row) for row in store.for_incident(session, incident_id)]

    def claim_due(self) -> list[Due]:
        """Reminders due now, each claimed for this process."""
        with transaction(self._sessions) as session:
            claimed = store.claim_due(session, self._clock.now(), self._every)
            return [Due(followup_view(row), incident_store.snapshot(incident)) for row, incident in claimed]


def followup_view(row: Followup) -> FollowupView:
    return FollowupView(
        id=row.id, incident_id=row.incident_id, text=row.text, owner_id=row.owner_id, created_by=row.created_by,
        created_at=row.created_at, done_at=row.done_at, done_by=row.done_by, reminders=row.reminders,
    )
