"""Queries behind postmortems: their versions, and everything a draft is made from."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Text,
    bindparam,
    cast,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from storage import timeline as timeline_store
from storage.models import (
    Incident,
    Postmortem,
    PostmortemChart,
    RoleAssignment,
    TimelineEntry,
    WatchdogAlert,
    WatchdogSample,
)

Newer = aliased(Postmortem)


def add_version(session: Session, incident_id: int, requested_by: str | None, at: datetime) -> Postmortem:
    """The next version of the incident's postmortem, requested and not yet drafted. Callers hold the
    incident's row lock, so two requests cannot take the same number (the unique constraint backs it)."""
    latest = session.execute(select(func.max(Postmortem.version)).where(Postmortem.incident_id == incident_id)).scalar()
    row = Postmortem(incident_id=incident_id, version=(latest or 0) + 1, requested_by=requested_by, requested_at=at)
    session.add(row)
    session.flush()
    return row


def by_id(session: Session, postmortem_id: int, *, for_update: bool = False) -> Postmortem | None:
    query = select(Postmortem).where(Postmortem.id == postmortem_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def versions(session: Session, incident_id: int) -> list[Postmortem]:
    query = select(Postmortem).where(Postmortem.incident_id == incident_id).order_by(Postmortem.version)
    return list(session.execute(query).scalars())


def unfinished(session: Session) -> list[Postmortem]:
    """Versions not drafted yet, and newest versions drafted but not yet in the incident's channel (an
    older version that never reached Slack is superseded, not uploaded late)."""
    newer = select(Newer.id).where(Newer.incident_id == Postmortem.incident_id, Newer.version > Postmortem.version)
    not_uploaded = Postmortem.file_id.is_(None) & Incident.channel_id.is_not(None) & ~newer.exists()
    query = (
        select(Postmortem)
        .join(Incident, Incident.id == Postmortem.incident_id)
        .where(Postmortem.markdown.is_(None) | not_uploaded)
        .order_by(Postmortem.id)
    )
    return list(session.execute(query).scalars())


def closed_without_postmortem(session: Session) -> list[int]:
    """Incidents closed with no version requested: the process stopped between the two."""
    has_one = select(Postmortem.id).where(Postmortem.incident_id == Incident.id).exists()
    query = select(Incident.id).where(Incident.closed_at.is_not(None), ~has_one).order_by(Incident.id)
    return list(session.execute(query).scalars())


def role_history(session: Session, incident_id: int) -> list[RoleAssignment]:
    query = select(RoleAssignment).where(RoleAssignment.incident_id == incident_id).order_by(RoleAssignment.id)
    return list(session.execute(query).scalars())


def linked_alerts(session: Session, incident_id: int) -> list[WatchdogAlert]:
    query = select(WatchdogAlert).where(WatchdogAlert.incident_id == incident_id).order_by(WatchdogAlert.opened_at)
    return list(session.execute(query).scalars())


def samples_between(session: Session, start: datetime, end: datetime) -> list[WatchdogSample]:
    """Every target's watchdog samples taken from `start` to `end` (both included), by target and time."""
    query = (
        select(WatchdogSample)
        .where(WatchdogSample.taken_at >= start, WatchdogSample.taken_at <= end)
        .order_by(WatchdogSample.target, WatchdogSample.taken_at, WatchdogSample.id)
    )
    return list(session.execute(query).scalars())


def add_charts(session: Session, charts: list[PostmortemChart]) -> None:
    session.add_all(charts)


def charts(session: Session, postmortem_id: int) -> list[PostmortemChart]:
    """A version's charts, in the order its Markdown shows them."""
    query = select(PostmortemChart).where(PostmortemChart.postmortem_id == postmortem_id).order_by(PostmortemChart.position)
    return list(session.execute(query).scalars())


class MessageGroup(NamedTuple):
    """The channel messages of one author, as message_groups counts them."""

    actor_id: str | None
    shown: int  # not deleted
    deleted: int
    last_id: int  # the highest entry id among them


def message_groups(session: Session, incident_id: int) -> list[MessageGroup]:
    """The incident's channel messages counted by the store, by author: what a streamed draft needs of
    all of them (bot.postmortem.service), but the names their markup mentions (message_markup_rows) and
    their times (shown_message_span, message_times). One statement, so its counts and ids agree."""
    kept = TimelineEntry.deleted_at.is_(None)
    rows = session.execute(
        select(TimelineEntry.actor_id, func.count().filter(kept), func.count().filter(~kept), func.max(TimelineEntry.id))
        .where(TimelineEntry.incident_id == incident_id, TimelineEntry.kind == "message")
        .group_by(TimelineEntry.actor_id)
    ).all()
    return [MessageGroup(*row) for row in rows]


def shown_message_span(session: Session, incident_id: int, up_to_id: int) -> tuple[datetime, datetime] | None:
    """When the first and the last channel message a reader sees (bot.timeline.visible) up to entry
    `up_to_id` occurred (aware UTC); None when there is none. Each found by the timeline's time index,
    stopping at the first that qualifies."""
    shown = select(TimelineEntry.occurred_at).where(
        TimelineEntry.incident_id == incident_id, TimelineEntry.kind == "message", TimelineEntry.deleted_at.is_(None),
        TimelineEntry.actor_id.is_not(None), TimelineEntry.id <= up_to_id).limit(1)
    first = session.execute(shown.order_by(TimelineEntry.occurred_at)).scalar()
    last = session.execute(shown.order_by(TimelineEntry.occurred_at.desc())).scalar()
    return (first, last) if first is not None and last is not None else None


def message_markup_rows(session: Session, incident_id: int, up_to_id: int, *,
                        chunk: int = 5000) -> Iterator[list[tuple[str | None, Any]]]:
    """(text, data) of the incident's channel messages up to entry `up_to_id`, deleted ones too, that may
    name someone: `text` when it holds markup ("<"), else None; `data` (decoded) when set (a forwarded
    message's "shared"), else None. The others (most) are not read. `chunk` rows at a time, in no order,
    on the driver's own cursor (storage.timeline.entry_rows says why)."""
    dialect = session.get_bind().dialect
    mark, data = timeline_store.marker(dialect), timeline_store.json_text(dialect, "data")
    query = (f"SELECT CASE WHEN text LIKE {mark} THEN text END, {data} FROM {TimelineEntry.__tablename__} "
             f"WHERE incident_id = {mark} AND kind = {mark} AND id <= {mark} "
             f"AND (text LIKE {mark} OR ({data} IS NOT NULL AND {data} <> 'null'))")
    params = ["%<%", incident_id, "message", up_to_id, "%<%"]
    for rows in timeline_store.driver_chunks(session.connection(), query, params, chunk):
        yield [(text, timeline_store.json_value(value) if value is not None else None) for text, value in rows]


def message_times(session: Session, incident_id: int, up_to_id: int, *, chunk: int = 5000) -> Iterator[list[datetime]]:
    """occurred_at (aware UTC) of the incident's channel messages a reader sees (bot.timeline.visible), up
    to entry `up_to_id`, `chunk` at a time, in no order."""
    dialect = session.get_bind().dialect
    mark = timeline_store.marker(dialect)
    query = (f"SELECT occurred_at FROM {TimelineEntry.__tablename__} WHERE incident_id = {mark} AND kind = {mark} "
             f"AND deleted_at IS NULL AND actor_id IS NOT NULL AND id <= {mark}")
    utc = timeline_store.utc
    for rows in timeline_store.driver_chunks(session.connection(), query, [incident_id, "message", up_to_id], chunk):
        yield [utc(at) for (at,) in rows]


def store_markdown(session: Session, postmortem_id: int, markdown: bytes | bytearray, template: str | None,
                   problem: str | None, at: datetime) -> bool:
    """Store a drafted version's Markdown, given as UTF-8, unless the version was drafted meanwhile
    (False then). The store turns the bytes into text itself (SQLite's CAST, PostgreSQL's
    convert_from), so a 22 MB draft never becomes a Python str here: one with an emoji in it would
    take four bytes a character (88 MB)."""
    connection = session.connection()
    value = bindparam("markdown", markdown, type_=LargeBinary)  # both drivers take a bytearray as it is
    text: ColumnElement[Any] = (func.convert_from(value, "UTF8") if connection.dialect.name == "postgresql"
                                else cast(value, Text))
    result = connection.execute(
        update(Postmortem)
        .where(Postmortem.id == postmortem_id, Postmortem.markdown.is_(None))
        .values(markdown=text, template=template, problem=problem, drafted_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
