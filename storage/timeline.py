"""Queries behind the timeline: captured messages by (channel, ts), entries in order, people's names."""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    JSON,
    Insert,
    Row,
    String,
    Table,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from bot.incidents.values import Status
from storage.driver import as_sqlalchemy_raises, driver_rows
from storage.models import Base, Incident, Person, SlackRequest, TimelineEntry

T = TypeVar("T")


def capturing_incidents(connection: Connection, channel_ids: Collection[str]) -> dict[str, tuple[int, str]]:
    """The incidents these channels are, in one indexed query: channel id -> (incident id, status), for
    those that are an incident's channel."""
    channels = list(channel_ids)
    mark = marker(connection.dialect)
    rows = driver_rows(connection, f"SELECT channel_id, id, status FROM {Incident.__tablename__} "
                                    f"WHERE channel_id IN ({', '.join([mark] * len(channels))})", channels)
    return {str(channel): (incident_id, status) for channel, incident_id, status in rows}


def insert_messages(connection: Connection, rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    """Store captured messages, each in the incident whose channel it was said in, unless that incident
    is closed, under its (channel, ts), in one statement whatever their number: each row has a timeline
    entry's columns but `incident_id`, which the statement finds by the row's `channel_id`. The
    (channel_id, slack_ts) inserted now come back; a pair missing from the answer was there already, is
    twice in `rows`, or its channel is no open incident's (`capturing_incidents` tells which).

    One statement, rather than the incidents first and then the messages: on PostgreSQL, one round trip
    for each batch of captured messages, which is each message's own when they come one at a time.
    Core statements rather than the ORM: this runs for every message in the channel, under load."""
    if not rows:
        return set()
    sql, params = _CaptureInsert.statement(connection.dialect, rows)
    return {(channel, ts) for channel, ts in driver_rows(connection, sql, params)}


def claim_event(session: Session | Connection, key: str, incident_id: int, at: datetime) -> bool:
    """Record that the event with this key was acted on; False if it already was (a retry)."""
    return _insert_new(session, SlackRequest, {"key": key, "incident_id": incident_id, "received_at": at}, ["key"])


def fill_placeholder(connection: Connection, channel_id: str, ts: str, values: dict[str, Any]) -> bool:
    """Complete an entry an edit, deletion or mark created before its message arrived."""
    result = connection.execute(
        update(TimelineEntry)
        .where(TimelineEntry.channel_id == channel_id, TimelineEntry.slack_ts == ts, TimelineEntry.actor_id.is_(None))
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _insert_new(session: Session | Connection, model: type[Base], values: dict[str, Any], unique: list[str]) -> bool:
    connection = session.connection() if isinstance(session, Session) else session
    statement = _insert_ignoring_conflicts(connection.dialect.name, model.__table__, tuple(unique))
    return connection.execute(statement, values).first() is not None


# The capture path's statements run on the driver's own cursor, inside the session's transaction:
# SQLAlchemy's execution path (statement cache, execution context, result objects) cost several times
# the statements themselves, per batch of captured events (bench/README.md, capture.py). Values still
# go through each column type's own bind processor, so they are stored exactly as the ORM stores them.


def marker(dialect: Dialect) -> str:
    """The driver's parameter marker: sqlite3 takes `?` (qmark), psycopg `%s` (format, pyformat)."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


class _CaptureInsert:
    """WITH given (columns) AS (VALUES (...), (...)) INSERT INTO timeline_entries (columns, incident_id)
    SELECT given.*, incidents.id FROM given JOIN incidents ON incidents.channel_id = given.channel_id
    WHERE incidents.status <> 'closed' ON CONFLICT (channel_id, slack_ts) DO NOTHING RETURNING channel_id,
    slack_ts: for any number of rows of the same columns, one statement, one round trip (both stores
    speak it: SQLite since 3.35, PostgreSQL since 9.5). Columns the rows leave out are left out of the
    INSERT, as SQLAlchemy's own insert does.

    On PostgreSQL the parameters of a VALUES list are typed by their values, not by the columns they go
    to: each is cast to its column's type, a string's without its length (an explicit cast to VARCHAR(32)
    cuts a longer value short, where the INSERT's own assignment to the column refuses it, as a plain
    INSERT does). On SQLite none is cast (CAST to JSON there is CAST to NUMERIC): a column takes what it is
    given, as from VALUES in a plain INSERT."""

    _made: dict[tuple[str, tuple[str, ...]], _CaptureInsert] = {}  # by dialect and the rows' keys

    def __init__(self, dialect: Dialect, columns: tuple[str, ...]) -> None:
        table: Table = TimelineEntry.__table__  # type: ignore[assignment]
        self.columns = columns
        self.processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
        # What each processor makes of None, found once: a JSON column's None is serialized ('null') at every
        # row otherwise, and most captured messages have neither files nor forwarded messages.
        self.nones = [process(None) if process is not None else None for process in self.processors]
        mark = marker(dialect)
        typed = dialect.name == "postgresql"
        self.row = "(" + ", ".join(f"CAST({mark} AS {_unbounded(table.c[name].type).compile(dialect=dialect)})"
                                   if typed else mark for name in columns) + ")"
        incidents = Incident.__tablename__
        self.head = f"WITH given ({', '.join(columns)}) AS (VALUES "
        self.tail = (f") INSERT INTO {table.name} ({', '.join(columns)}, incident_id) "
                     f"SELECT {', '.join(f'given.{name}' for name in columns)}, {incidents}.id "
                     f"FROM given JOIN {incidents} ON {incidents}.channel_id = given.channel_id "
                     f"WHERE {incidents}.status <> '{Status.CLOSED.value}' "
                     "ON CONFLICT (channel_id, slack_ts) DO NOTHING RETURNING channel_id, slack_ts")

    @classmethod
    def statement(cls, dialect: Dialect, rows: Sequence[dict[str, Any]]) -> tuple[str, list[Any]]:
        """The SQL and its flat parameters, for rows that all have the same keys."""
        key = (dialect.name, tuple(rows[0]))  # the rows' keys as given: one dict lookup a batch
        made = cls._made.get(key)
        if made is None:
            columns = tuple(column.name for column in TimelineEntry.__table__.columns if column.name in rows[0])
            made = cls._made.setdefault(key, cls(dialect, columns))
        params: list[Any] = []
        for row in rows:
            for name, process, none in zip(made.columns, made.processors, made.nones, strict=True):
                value = row[name]
                params.append(value if process is None else none if value is None else process(value))
        return made.head + ", ".join([made.row] * len(rows)) + made.tail, params


def _unbounded(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """A string type without its length (VARCHAR(32) -> VARCHAR); any other type as it is."""
    return type(type_)() if isinstance(type_, String) and type_.length is not None else type_


@functools.cache
def _insert_ignoring_conflicts(dialect: str, table: Table, unique: tuple[str, ...]) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the key, built once per table (both stores speak it):
    a row comes back only when one was inserted. Not the rowcount: with psycopg 3 under SQLAlchemy 2.1
    it reads -1 for this statement, which would make every conflict look like an insert on PostgreSQL."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing(index_elements=list(unique)).returning(*(table.c[u] for u in unique))


def entry_count(session: Session, incident_id: int) -> int:
    """How many timeline entries the incident has, of every kind (deleted messages included)."""
    return int(session.execute(select(func.count()).select_from(TimelineEntry).where(TimelineEntry.incident_id == incident_id))
               .scalar_one())


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


# The columns a timeline reader needs, in the order `entry_rows` yields them.
ENTRY_COLUMNS = ("id", "kind", "occurred_at", "actor_id", "text", "data", "slack_ts", "thread_ts", "permalink",
                 "files", "edited_at", "earlier_texts", "deleted_at", "key_marks")


def entry_rows(session: Session, incident_id: int, *, into: Callable[..., T], messages: bool | None = None,
               up_to_id: int | None = None, limit: int | None = None, chunk: int = 2000) -> Iterator[list[T]]:
    """The incident's entries in order (occurred_at, id), `chunk` rows at a time, each what `into` makes
    of its values, given positionally in ENTRY_COLUMNS order: times aware UTC datetimes (as UTCDateTime
    gives them), JSON columns decoded (SQL NULL and JSON null both None). The caller's object is made
    from the values directly, not from a tuple of them: a tuple a row was a tenth of reading 10,000
    entries.

    `messages`: None for every entry; True for the channel messages a reader sees (not deleted, not a
    placeholder whose message never came: bot.timeline.visible); False for every entry but channel
    messages. `up_to_id`: entries with ids up to it only. `limit`: at most that many rows.

    On the driver's own cursor, in the session's transaction: for 10,000 rows SQLAlchemy's result layer
    (Row objects) and its per-value JSON and DateTime processors cost several times what the driver does;
    here each value is converted once, only when it needs it (bench/postmortem.py measures both against
    a bare fetchall())."""
    dialect = session.get_bind().dialect
    table, mark = TimelineEntry.__tablename__, marker(dialect)
    columns = [json_as_text(dialect, name) if name in _JSON_COLUMNS else name for name in ENTRY_COLUMNS]
    sql = [f"SELECT {', '.join(columns)} FROM {table} WHERE incident_id = {mark}"]
    params: list[Any] = [incident_id]
    if messages is not None:
        sql.append(f"kind = {mark} AND deleted_at IS NULL AND actor_id IS NOT NULL" if messages else f"kind <> {mark}")
        params.append("message")
    if up_to_id is not None:
        sql.append(f"id <= {mark}")
        params.append(up_to_id)
    query = " AND ".join(sql) + " ORDER BY occurred_at, id" + (f" LIMIT {int(limit)}" if limit is not None else "")

    # NULL is tested for inline, not in json_value: most values are NULL, and a call costs more than the test.
    for rows in driver_chunks(session.connection(), query, params, chunk):
        yield [into(id_, kind, utc(occurred_at), actor_id, text, json_value(data) if data is not None else None, slack_ts,
                    thread_ts, permalink, json_value(files) if files is not None else None,
                    utc(edited_at) if edited_at is not None else None, json_value(earlier) if earlier is not None else None,
                    utc(deleted_at) if deleted_at is not None else None, json_value(marks) if marks is not None else None)
               for (id_, kind, occurred_at, actor_id, text, data, slack_ts, thread_ts, permalink, files, edited_at,
                    earlier, deleted_at, marks) in rows]


_JSON_COLUMNS = {column.name for column in TimelineEntry.__table__.columns if isinstance(column.type, JSON)}


def json_as_text(dialect: Dialect, column: str) -> str:
    """A JSON column, selected as its text: on PostgreSQL `column::text`, on SQLite the column (stored as
    text). psycopg would decode every value itself, a json.loads() even for the `null` most rows hold
    (a captured message's `data`): decoded by the reader instead (json_value), `null` costs a string
    comparison."""
    return f"{json_text(dialect, column)} AS {column}"


def json_text(dialect: Dialect, column: str) -> str:
    """A JSON column's text, as an expression (json_as_text selects it): `null` for JSON null, which a
    JSON column without none_as_null stores for None."""
    return f"{column}::text" if dialect.name == "postgresql" else column


def json_value(text: str) -> Any:
    """A JSON column's value from its text (json_as_text); JSON null is None, as SQL NULL is."""
    return None if text == "null" else json.loads(text)


def driver_chunks(connection: Connection, sql: str, params: Sequence[Any], chunk: int) -> Iterator[list[tuple[Any, ...]]]:
    """A SELECT's rows from the driver's own cursor, `chunk` at a time, in the connection's transaction.
    On PostgreSQL through a server-side (named) cursor, so a 100,000-row result is never in memory at
    once; sqlite3's cursor steps through its result as it is fetched. The cursor is closed when the
    rows run out or the caller stops early. A chunk of fewer rows than asked for is the last: no FETCH
    (a round trip on PostgreSQL) follows it to find nothing more."""
    postgres = connection.dialect.name == "postgresql"
    cursor = connection.connection.cursor(f"entries_{next(_cursor_names)}") if postgres else connection.connection.cursor()
    try:
        with as_sqlalchemy_raises(connection, sql):
            cursor.execute(sql, params)
            rows = cursor.fetchmany(chunk)
        while rows:
            yield cast(list[tuple[Any, ...]], rows)  # both drivers' fetchmany() give a list of tuples
            if len(rows) < chunk:
                return
            with as_sqlalchemy_raises(connection, sql):
                rows = cursor.fetchmany(chunk)
    finally:
        cursor.close()


_cursor_names = itertools.count(1)  # a server-side cursor's name is unique in its session, while it is open


_from_iso = datetime.fromisoformat  # looked up once: the lookup costs twice the parse, once per stored time read


def utc(value: str | datetime) -> datetime:
    """A stored time as UTCDateTime reads it: SQLite's text ("2026-11-27 08:00:00.000000", UTC without
    an offset), or the driver's datetime (PostgreSQL's timestamptz, in the session's zone)."""
    if value.__class__ is str:
        return _from_iso(value + "+00:00")  # type: ignore[operator]
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
