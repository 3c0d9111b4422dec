"""Queries behind the timeline: captured messages by (channel, ts), entries in order, people's names."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Row, Table, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import Base, Incident, Person, SlackRequest, TimelineEntry


def capturing_incident(session: Session, channel_id: str) -> tuple[int, str] | None:
    """(id, status) of the incident whose channel this is: one indexed lookup per captured event."""
    row = session.execute(select(Incident.id, Incident.status).where(Incident.channel_id == channel_id)).first()
    return (row[0], row[1]) if row else None


def claim_event(session: Session, key: str, incident_id: int, at: datetime) -> bool:
    """Record that the event with this key was acted on; False if it already was (a retry)."""
    return _insert_new(session, SlackRequest, {"key": key, "incident_id": incident_id, "received_at": at}, ["key"])


def insert_message(session: Session, values: dict[str, Any]) -> bool:
    """Store a captured message under its (channel, ts); False if that ts is already there.

    Core statements rather than the ORM: this runs once per message in the channel, under load."""
    return _insert_new(session, TimelineEntry, values, ["channel_id", "slack_ts"])


def fill_placeholder(session: Session, channel_id: str, ts: str, values: dict[str, Any]) -> bool:
    """Complete an entry an edit, deletion or mark created before its message arrived."""
    result = session.execute(
        update(TimelineEntry)
        .where(TimelineEntry.channel_id == channel_id, TimelineEntry.slack_ts == ts, TimelineEntry.actor_id.is_(None))
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _insert_new(session: Session, model: type[Base], values: dict[str, Any], unique: list[str]) -> bool:
    connection = session.connection()
    statement = _insert_ignoring_conflicts(connection.dialect.name, model.__table__, tuple(unique))
    return connection.execute(statement, values).first() is not None


@functools.cache
def _insert_ignoring_conflicts(dialect: str, table: Table, unique: tuple[str, ...]) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the key, built once per table (both stores speak it):
    a row comes back only when one was inserted. Not the rowcount: with psycopg 3 under SQLAlchemy 2.1
    it reads -1 for this statement, which would make every conflict look like an insert on PostgreSQL."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing(index_elements=list(unique)).returning(*(table.c[u] for u in unique))


def by_ts(session: Session, channel_id: str, ts: str) -> TimelineEntry | None:
    return session.execute(
        select(TimelineEntry).where(TimelineEntry.channel_id == channel_id, TimelineEntry.slack_ts == ts)
    ).scalar_one_or_none()


def entries(session: Session, incident_id: int) -> Sequence[Row[Any]]:
    """The incident's entries in order, as plain rows with the model's column names: timelines run to
    thousands of entries, and ORM objects (identity map, change tracking) would triple the cost of
    reading them for nothing, since readers never change them."""
    return session.execute(
        select(*TimelineEntry.__table__.columns)
        .where(TimelineEntry.incident_id == incident_id)
        .order_by(TimelineEntry.occurred_at, TimelineEntry.id)
    ).all()


def names(session: Session, user_ids: set[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    rows = session.execute(select(Person.user_id, Person.name).where(Person.user_id.in_(user_ids)))
    return {user_id: name for user_id, name in rows}


def remember_name(session: Session, user_id: str, name: str, at: datetime) -> None:
    person = session.get(Person, user_id)
    if person is None:
        session.add(Person(user_id=user_id, name=name, updated_at=at))
    else:
        person.name, person.updated_at = name, at
