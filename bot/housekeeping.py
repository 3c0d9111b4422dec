"""A daily job that keeps the store from growing without end.

Request keys exist so a Slack retry changes nothing; Slack retries within minutes (events: after about
1 and 5 minutes), so keys older than two days only take space. Watchdog samples are kept a week: the
trend needs minutes of them, a person looking back after an incident needs days.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from storage import housekeeping as store
from storage.database import transaction

KEEP_REQUEST_KEYS = timedelta(days=2)
KEEP_SAMPLES = timedelta(days=7)


def tidy(sessions: sessionmaker[Session], clock: Clock) -> tuple[int, int]:
    """Delete what has aged out; returns (request keys, samples) deleted."""
    now = clock.now()
    with transaction(sessions) as session:
        return (store.forget_requests_before(session, now - KEEP_REQUEST_KEYS),
                store.forget_samples_before(session, now - KEEP_SAMPLES))
