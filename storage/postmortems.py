"""Queries behind postmortems: their versions, and everything a draft is made from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from storage.models import Incident, Postmortem, PostmortemChart, RoleAssignment, WatchdogAlert, WatchdogSample

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
