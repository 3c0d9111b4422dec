"""Queries behind follow-ups: adding them, marking them done, and claiming the reminders that are due."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Followup, Incident


def for_incident(session: Session, incident_id: int) -> list[Followup]:
    return list(session.execute(select(Followup).where(Followup.incident_id == incident_id).order_by(Followup.id)).scalars())


def by_id(session: Session, followup_id: int, *, for_update: bool = False) -> Followup | None:
    query = select(Followup).where(Followup.id == followup_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def claim_due(session: Session, now: datetime, every: timedelta, limit: int = 200) -> list[tuple[Followup, Incident]]:
    """Open, owned follow-ups of incidents closed at least `every` ago, not reminded within `every`.
    Claimed by stamping `reminded_at` in the caller's transaction; SKIP LOCKED lets two processes share
    the work without both taking an item (SQLite serialises writers anyway)."""
    query = (
        select(Followup, Incident)
        .join(Incident, Incident.id == Followup.incident_id)
        .where(
            Followup.done_at.is_(None),
            Followup.owner_id.is_not(None),
            Incident.closed_at.is_not(None),
            Incident.closed_at <= now - every,
            Followup.reminded_at.is_(None) | (Followup.reminded_at <= now - every),
        )
        .order_by(Followup.id)
        .limit(limit)
        .with_for_update(of=Followup, skip_locked=True)
    )
    claimed = [(followup, incident) for followup, incident in session.execute(query).all()]
    for followup, _ in claimed:
        followup.reminded_at = now
        followup.reminders += 1
    return claimed
