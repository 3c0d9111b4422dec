"""Queries behind the report across incidents: the incidents declared in a window and what their key
figures and counts are made from, each read in one query for the whole window (not one per incident).

Functions take a Session and a window [since, until) on incidents' declaration time.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.orm import Session, selectinload

from storage.models import Followup, Incident, Page, TimelineEntry, WatchdogAlert


def declared_between(session: Session, since: datetime, until: datetime) -> list[Incident]:
    """Incidents declared in [since, until), by number."""
    query = (select(Incident).options(selectinload(Incident.roles))
             .where(Incident.declared_at >= since, Incident.declared_at < until).order_by(Incident.number))
    return list(session.execute(query).scalars())


def first_declared_at(session: Session) -> datetime | None:
    """When the first incident the store holds was declared (None: none yet): before it nothing was recorded."""
    return session.execute(select(func.min(Incident.declared_at))).scalar_one_or_none()


def figure_entries(session: Session, since: datetime, until: datetime, kinds: Collection[str]) -> Sequence[Row[Any]]:
    """Entries of the window's incidents that are of `kinds`, or recorded before their incident's
    declaration (a first sign of trouble may be any entry), as plain rows with the model's column names,
    by incident then in recorded order. Channel messages, the bulk of a timeline, are not read."""
    return session.execute(
        select(*TimelineEntry.__table__.columns)
        .join(Incident, Incident.id == TimelineEntry.incident_id)
        .where(Incident.declared_at >= since, Incident.declared_at < until)
        .where(or_(TimelineEntry.kind.in_(list(kinds)), TimelineEntry.occurred_at < Incident.declared_at))
        .order_by(TimelineEntry.incident_id, TimelineEntry.occurred_at, TimelineEntry.id)
    ).all()


def pages_between(session: Session, since: datetime, until: datetime) -> list[Page]:
    query = (select(Page).join(Incident, Incident.id == Page.incident_id)
             .where(Incident.declared_at >= since, Incident.declared_at < until).order_by(Page.id))
    return list(session.execute(query).scalars())


def alerts_between(session: Session, since: datetime, until: datetime) -> list[WatchdogAlert]:
    """Watchdog alerts linked to the window's incidents."""
    query = (select(WatchdogAlert).join(Incident, Incident.id == WatchdogAlert.incident_id)
             .where(Incident.declared_at >= since, Incident.declared_at < until).order_by(WatchdogAlert.opened_at))
    return list(session.execute(query).scalars())


def open_followups_between(session: Session, since: datetime, until: datetime) -> list[Followup]:
    """Follow-ups not done of the window's incidents, oldest first."""
    query = (select(Followup).join(Incident, Incident.id == Followup.incident_id)
             .where(Incident.declared_at >= since, Incident.declared_at < until, Followup.done_at.is_(None))
             .order_by(Followup.created_at, Followup.id))
    return list(session.execute(query).scalars())


def open_followups_before(session: Session, since: datetime) -> int:
    """How many follow-ups not done belong to incidents declared before `since`."""
    query = (select(func.count(Followup.id)).join(Incident, Incident.id == Followup.incident_id)
             .where(Incident.declared_at < since, Followup.done_at.is_(None)))
    return int(session.execute(query).scalar_one())
