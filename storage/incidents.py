"""Queries about incidents, their roles, their timeline and processed Slack requests.

Functions take a Session and leave committing to the caller, so the domain composes them into one
transaction.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Insert, Select, Table, bindparam, func, insert, select, true, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from bot.incidents import values
from storage.driver import DriverStatement
from storage.models import (
    Counter,
    Incident,
    RoleAssignment,
    SlackRequest,
    TimelineEntry,
)

OPEN = [s.value for s in values.Status if s.is_open]
_INCIDENTS: Table = Incident.__table__  # type: ignore[assignment]
_ROLES: Table = RoleAssignment.__table__  # type: ignore[assignment]
_ENTRIES: Table = TimelineEntry.__table__  # type: ignore[assignment]


def lock_counter(session: Session, counter: str = "incident") -> Counter:
    """Lock the counter row until the transaction ends. Declarations racing queue up here, so numbers
    taken with `row.value += 1` come out unique and without gaps."""
    return session.execute(select(Counter).where(Counter.name == counter).with_for_update()).scalar_one()


def processed_request(session: Session, key: str) -> SlackRequest | None:
    return session.get(SlackRequest, key)


def record_request(session: Session, key: str, incident_id: int | None, at: datetime) -> None:
    session.add(SlackRequest(key=key, incident_id=incident_id, received_at=at))


def claim_request(session: Session, key: str, incident_id: int | None, at: datetime) -> bool:
    """Record the request's key now, in the caller's transaction; False when it is already recorded (a
    retry, acted on). One statement (INSERT … ON CONFLICT DO NOTHING RETURNING, both stores) where
    `processed_request` then `record_request` take a query and an insert. A concurrent claim of the
    same key waits on it and gets False once the first commits, or True if it rolls back."""
    connection = session.connection()
    statement = _claim_statement(connection.dialect.name)
    return connection.execute(statement, {"key": key, "incident_id": incident_id, "received_at": at}).first() is not None


_CLAIMS: dict[str, Insert] = {}


def _claim_statement(dialect: str) -> Insert:
    """Built once per dialect. The row that comes back says it was inserted (not the rowcount, which
    psycopg 3 under SQLAlchemy 2.1 reads -1 for this statement)."""
    statement = _CLAIMS.get(dialect)
    if statement is None:
        table: Table = SlackRequest.__table__  # type: ignore[assignment]
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)
        _CLAIMS[dialect] = statement
    return statement


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


def current(session: Session, incident_id: int) -> values.Incident | None:
    """The incident as stored, read in one Core statement with its current roles: what
    `snapshot(by_id(…))` gives, without its two queries and ORM objects, which cost more than a
    slash command's write itself."""
    row = session.connection().execute(_CURRENT, {"incident_id": incident_id}).first()
    return _with_role_columns(row) if row is not None else None


def add_entry_unless_closed(connection: Connection, incident_id: int, request_key: str, kind: str, at: datetime,
                            actor_id: str | None, text: str, *, to_publish: bool) -> tuple[values.Incident, int] | None:
    """A note or a status update as a slash command records it, committed before this returns:
    `updated_at` moved to `at` unless the incident is closed (its row locked meanwhile), the request's
    key claimed, the entry added (`to_publish`: left unpublished, for the bot to show in Slack). Returns
    the incident as it is now and the entry's id; None, with nothing changed, when the incident is
    closed or not there, or the key was claimed before (a retry).

    Slack's answer waits on this, so it is as few round trips as each store allows, on the driver's
    cursor (storage/driver.py): on PostgreSQL one statement (data-modifying WITH queries), which is its
    own transaction, on a `connection` in autocommit; on SQLite three in one BEGIN IMMEDIATE transaction
    begun on `connection` (in none yet), rolled back unless all three took effect. A repeat with the same
    key writes nothing (None): safe to run again when the connection was cut."""
    entry = {"incident_id": incident_id, "kind": kind, "occurred_at": at, "actor_id": actor_id, "text": text,
             "data": None, "published_at": None if to_publish else at}
    if connection.dialect.name == "postgresql":
        written = _NOTE_ON_POSTGRESQL.rows(connection, {**entry, "key": request_key, "at": at})
        if not written:
            return None
        *touched, entry_id = written[0]
    else:
        with connection.begin() as transaction:
            found = _TOUCH_ON_DRIVER.rows(connection, {"incident_id": incident_id, "at": at})
            if not found or not _CLAIM_ON_DRIVER.rows(
                    connection, {"key": request_key, "incident_id": incident_id, "received_at": at}):
                transaction.rollback()
                return None
            touched, entry_id = list(found[0]), _ADD_ENTRY_ON_DRIVER.rows(connection, entry)[0][0]
    row = SimpleNamespace(**dict(zip(_TOUCHED_NAMES, touched, strict=True)))
    return _with_role_columns(row), int(entry_id)


def _note_on_postgresql() -> Select[Any]:
    """`add_entry_unless_closed` as one statement, in data-modifying WITH queries (PostgreSQL only): the
    incident locked unless closed, the key claimed for it, then (only if claimed) `updated_at` moved
    and the entry added; the incident and the entry's id come back, or no row."""
    requests: Table = SlackRequest.__table__  # type: ignore[assignment]
    at = bindparam("at", type_=_INCIDENTS.c.updated_at.type)
    open_ = (select(_INCIDENTS.c.id)
             .where(_INCIDENTS.c.id == bindparam("incident_id"), _INCIDENTS.c.status != values.Status.CLOSED.value)
             .with_for_update().cte("open"))
    claimed = (postgresql_insert(requests)
               .from_select(["key", "incident_id", "received_at"],
                            select(bindparam("key", type_=requests.c.key.type), open_.c.id, at))
               .on_conflict_do_nothing(index_elements=["key"])
               .returning(requests.c.incident_id).cte("claimed"))
    touched = (update(_INCIDENTS).where(_INCIDENTS.c.id.in_(select(claimed.c.incident_id))).values(updated_at=at)
               .returning(*_INCIDENTS.c, *_ROLE_COLUMNS).cte("touched"))
    columns = ("kind", "occurred_at", "actor_id", "text", "data", "published_at")
    added = (insert(_ENTRIES)
             .from_select(["incident_id", *columns],
                          select(claimed.c.incident_id, *(bindparam(name, type_=_ENTRIES.c[name].type) for name in columns)))
             .returning(_ENTRIES.c.id).cte("added"))
    return select(*touched.c, added.c.id).select_from(touched).join(added, true())


def _current_holder(role: values.Role) -> Any:
    """The role's current holder, as a scalar subquery (the latest if ever two). By the `incident_id`
    parameter, not correlated to the incidents row: in UPDATE … RETURNING, SQLite's compiler names
    the outer row's columns unqualified, and `id` inside the subquery would be role_assignments.id."""
    return (select(_ROLES.c.user_id)
            .where(_ROLES.c.incident_id == bindparam("incident_id"), _ROLES.c.role == role.value, _ROLES.c.ended_at.is_(None))
            .order_by(_ROLES.c.id.desc()).limit(1).scalar_subquery().label(f"role_{role.value}"))


def _with_role_columns(row: Any) -> values.Incident:
    holders = {role: getattr(row, f"role_{role.value}") for role in values.Role}
    return _snapshot(row, {role: user for role, user in holders.items() if user})


# The statements above, built once: building and keying a statement costs more than running it here.
_ROLE_COLUMNS = [_current_holder(role) for role in values.Role]
_CURRENT = select(_INCIDENTS, *_ROLE_COLUMNS).where(_INCIDENTS.c.id == bindparam("incident_id"))
_TOUCH = (update(_INCIDENTS)
          .where(_INCIDENTS.c.id == bindparam("incident_id"), _INCIDENTS.c.status != values.Status.CLOSED.value)
          .values(updated_at=bindparam("at"))
          .returning(*_INCIDENTS.c, *_ROLE_COLUMNS))
_TOUCHED_NAMES = [str(column.key) for column in _TOUCH.exported_columns]
_TOUCH_ON_DRIVER = DriverStatement(_TOUCH)
_CLAIM_ON_DRIVER = DriverStatement(_claim_statement)
_ADD_ENTRY_ON_DRIVER = DriverStatement(insert(_ENTRIES).values(
    {name: bindparam(name) for name in ("incident_id", "kind", "occurred_at", "actor_id", "text", "data", "published_at")}
).returning(_ENTRIES.c.id))
_NOTE_ON_POSTGRESQL = DriverStatement(_note_on_postgresql())
_MARK_PUBLISHED = (update(_ENTRIES).where(_ENTRIES.c.id == bindparam("entry_id"), _ENTRIES.c.published_at.is_(None))
                   .values(published_at=bindparam("at")))


def by_channel(session: Session, channel_id: str) -> Incident | None:
    return session.execute(_with_roles().where(Incident.channel_id == channel_id)).scalar_one_or_none()


def id_and_number_of_channel(session: Session, channel_id: str) -> tuple[int, int] | None:
    """(id, number) of the incident whose channel this is: one indexed lookup, no ORM objects."""
    row = session.execute(select(Incident.id, Incident.number).where(Incident.channel_id == channel_id)).first()
    return (row[0], row[1]) if row else None


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
    """One UPDATE (no read first, no ORM): an entry already marked keeps its first mark."""
    session.connection().execute(_MARK_PUBLISHED, {"entry_id": entry_id, "at": at})


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
    return _snapshot(row, {values.Role(a.role): a.user_id for a in row.roles if a.ended_at is None})


def _snapshot(row: Any, roles: dict[values.Role, str]) -> values.Incident:
    """From anything with the incidents table's columns as attributes: an ORM row or a Core row."""
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
        roles=roles,
        channel_archived_at=row.channel_archived_at,
        private=row.private,
    )


def last_entry_at(session: Session, incident_id: int, kind: str) -> datetime | None:
    """When the incident last got an entry of this kind (its last status update, say)."""
    return session.execute(
        select(func.max(TimelineEntry.occurred_at)).where(TimelineEntry.incident_id == incident_id, TimelineEntry.kind == kind)
    ).scalar()
