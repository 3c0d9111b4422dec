"""Queries about incidents, their roles, their timeline and processed Slack requests.

Functions take a Session and leave committing to the caller, so the domain composes them into one
transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from bot.incidents import values
from storage.models import (
    Counter,
    Incident,
    RoleAssignment,
    SlackRequest,
    TimelineEntry,
)

OPEN = [s.value for s in values.Status if s.is_open]


def lock_counter(session: Session, counter: str = "incident") -> Counter:
    """Lock the counter row until the transaction ends. Declarations racing queue up here, so numbers
    taken with `row.value += 1` come out unique and without gaps."""
    return session.execute(select(Counter).where(Counter.name == counter).with_for_update()).scalar_one()


def processed_request(session: Session, key: str) -> SlackRequest | None:
    return session.get(SlackRequest, key)


def record_request(session: Session, key: str, incident_id: int | None, at: datetime) -> None:
    session.add(SlackRequest(key=key, incident_id=incident_id, received_at=at))


def recent_declaration(session: Session, reporter_id: str, title: str, since: datetime) -> Incident | None:
    return session.execute(
        select(Incident)
        .where(Incident.reporter_id == reporter_id, Incident.title == title, Incident.declared_at >= since)
        .where(Incident.status.in_(OPEN))
        .order_by(Incident.number.desc())
        .limit(1)
    ).scalar_one_or_none()


def by_id(session: Session, incident_id: int, *, for_update: bool = False) -> Incident | None:
    query = _with_roles().where(Incident.id == incident_id)
    if for_update:
        query = query.with_for_update(of=Incident)
    return session.execute(query).scalar_one_or_none()


def by_channel(session: Session, channel_id: str) -> Incident | None:
    return session.execute(_with_roles().where(Incident.channel_id == channel_id)).scalar_one_or_none()


def by_number(session: Session, number: int) -> Incident | None:
    return session.execute(_with_roles().where(Incident.number == number)).scalar_one_or_none()


def by_channel_name(session: Session, name: str) -> Incident | None:
    return session.execute(_with_roles().where(Incident.channel_name == name)).scalar_one_or_none()


def open_incidents(session: Session) -> list[Incident]:
    return list(session.execute(_with_roles().where(Incident.status.in_(OPEN)).order_by(Incident.number)).scalars())


def unprovisioned(session: Session) -> list[Incident]:
    """Incidents whose Slack channel set-up did not finish (a crash, or Slack failing mid-way)."""
    return list(
        session.execute(
            _with_roles().where(Incident.provisioned_at.is_(None), Incident.status.in_(OPEN)).order_by(Incident.number)
        ).scalars()
    )


def assign_role(session: Session, incident: Incident, role: str, user_id: str, by: str, at: datetime) -> str | None:
    """Make user_id the holder of role; returns the previous holder, if any."""
    previous = None
    for assignment in incident.roles:
        if assignment.role == role and assignment.ended_at is None:
            assignment.ended_at = at
            previous = assignment.user_id
    incident.roles.append(RoleAssignment(role=role, user_id=user_id, assigned_by=by, assigned_at=at))
    return previous


def add_entry(
    session: Session,
    incident: Incident,
    kind: str,
    at: datetime,
    actor_id: str | None,
    text: str = "",
    data: dict[str, Any] | None = None,
    *,
    to_publish: bool = False,
) -> TimelineEntry:
    entry = TimelineEntry(incident_id=incident.id, kind=kind, occurred_at=at, actor_id=actor_id, text=text, data=data,
                          published_at=None if to_publish else at)
    session.add(entry)
    return entry


def entries_of(session: Session, incident_id: int, kind: str, *, for_update: bool = False) -> list[TimelineEntry]:
    """The incident's entries of one kind, oldest first."""
    query = (select(TimelineEntry).where(TimelineEntry.incident_id == incident_id, TimelineEntry.kind == kind)
             .order_by(TimelineEntry.occurred_at, TimelineEntry.id))
    return list(session.execute(query.with_for_update() if for_update else query).scalars())


def mark_published(session: Session, entry_id: int, at: datetime) -> None:
    entry = session.get(TimelineEntry, entry_id)
    if entry is not None and entry.published_at is None:
        entry.published_at = at


def unpublished(session: Session, since: datetime, before: datetime) -> list[TimelineEntry]:
    """Changes recorded in [since, before) and never shown in Slack, oldest first."""
    query = (select(TimelineEntry)
             .where(TimelineEntry.published_at.is_(None), TimelineEntry.occurred_at >= since, TimelineEntry.occurred_at < before)
             .order_by(TimelineEntry.occurred_at, TimelineEntry.id))
    return list(session.execute(query).scalars())


def _with_roles() -> Select[Incident]:
    return select(Incident).options(selectinload(Incident.roles))


def snapshot(row: Incident) -> values.Incident:
    """A detached, immutable copy for the rest of the bot."""
    return values.Incident(
        id=row.id,
        number=row.number,
        title=row.title,
        description=row.description,
        severity=values.Severity(row.severity),
        status=values.Status(row.status),
        reporter_id=row.reporter_id,
        declared_at=row.declared_at,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
        closed_at=row.closed_at,
        resolution_summary=row.resolution_summary,
        channel_id=row.channel_id,
        channel_name=row.channel_name,
        summary_ts=row.summary_ts,
        announcement_ts=row.announcement_ts,
        provisioned_at=row.provisioned_at,
        roles={values.Role(a.role): a.user_id for a in row.roles if a.ended_at is None},
        channel_archived_at=row.channel_archived_at,
        private=row.private,
    )


def last_entry_at(session: Session, incident_id: int, kind: str) -> datetime | None:
    """When the incident last got an entry of this kind (its last status update, say)."""
    return session.execute(
        select(func.max(TimelineEntry.occurred_at)).where(TimelineEntry.incident_id == incident_id, TimelineEntry.kind == kind)
    ).scalar()
