"""Queries about alert groups (Alertmanager, Grafana) and their alerts."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.models import AlertGroup, AlertInstance


def key_hash(group_key: str) -> str:
    return hashlib.sha256(group_key.encode("utf-8", "surrogatepass")).hexdigest()


def by_key(session: Session, key: str) -> AlertGroup | None:
    """The group whose key (its sender and groupKey, bot.alerts.service) this is."""
    query = select(AlertGroup).where(AlertGroup.key_hash == key_hash(key)).with_for_update()
    return session.execute(query).scalar_one_or_none()


def by_id(session: Session, group_id: int, *, for_update: bool = False) -> AlertGroup | None:
    query = select(AlertGroup).where(AlertGroup.id == group_id)
    return session.execute(query.with_for_update() if for_update else query).scalar_one_or_none()



def instances(session: Session, group_id: int) -> list[AlertInstance]:
    query = select(AlertInstance).where(AlertInstance.group_id == group_id).order_by(AlertInstance.starts_at, AlertInstance.id)
    return list(session.execute(query).scalars())


def mark_shown(session: Session, group_id: int, version: int) -> None:
    """Slack now shows `version` of the group (never moves back: two posters may finish out of order)."""
    session.execute(update(AlertGroup).where(AlertGroup.id == group_id, AlertGroup.shown_version < version)
                    .values(shown_version=version))



def bump_for_incident(session: Session, incident_id: int) -> list[int]:
    """A new version of every group linked to `incident_id` (what its message shows of the incident changed)."""
    groups = list(session.execute(select(AlertGroup).where(AlertGroup.incident_id == incident_id)
                                  .order_by(AlertGroup.id).with_for_update()).scalars())
    for group in groups:
        group.version += 1
    return [group.id for group in groups]


def unshown(session: Session) -> list[int]:
    query = select(AlertGroup.id).where(AlertGroup.version > AlertGroup.shown_version).order_by(AlertGroup.id)
    return list(session.execute(query).scalars())
