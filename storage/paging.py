"""Queries about pages: the open page of a team, pages by dedup key or provider reference, the events
providers reported, and the atomic escalation claim."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.models import Page, PageEvent

OPEN = ("sending", "sent", "failed")  # not acknowledged, not resolved


def by_id(session: Session, page_id: int, *, for_update: bool = False) -> Page | None:
    query = select(Page).where(Page.id == page_id)
    return session.execute(query.with_for_update() if for_update else query).scalar_one_or_none()


def open_for_team(session: Session, incident_id: int, team: str) -> Page | None:
    """The team's page for this incident that is not resolved yet (acknowledged ones included)."""
    return session.execute(
        select(Page)
        .where(Page.incident_id == incident_id, Page.team == team, Page.resolved_at.is_(None))
        .order_by(Page.id.desc())
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()


def unresolved(session: Session, incident_id: int) -> list[Page]:
    return list(
        session.execute(
            select(Page).where(Page.incident_id == incident_id, Page.resolved_at.is_(None)).order_by(Page.id).with_for_update()
        ).scalars()
    )


def for_incident(session: Session, incident_id: int) -> list[Page]:
    return list(session.execute(select(Page).where(Page.incident_id == incident_id).order_by(Page.id)).scalars())


def latest_by_key(session: Session, dedup_key: str) -> Page | None:
    return session.execute(
        select(Page).where(Page.dedup_key == dedup_key).order_by(Page.id.desc()).limit(1).with_for_update()
    ).scalar_one_or_none()


def sending(session: Session) -> list[Page]:
    """Pages recorded but never delivered (the process stopped between the two)."""
    return list(session.execute(select(Page).where(Page.status == "sending").order_by(Page.id)).scalars())


def awaiting_escalation(session: Session) -> list[Page]:
    """Pages nobody acknowledged, resolved or escalated yet."""
    query = select(Page).where(Page.acknowledged_at.is_(None), Page.resolved_at.is_(None), Page.escalated_at.is_(None))
    return list(session.execute(query.order_by(Page.id)).scalars())


def claim_escalation(session: Session, page_id: int, at: datetime) -> bool:
    """Mark the page escalated if nobody acknowledged, resolved or escalated it yet. One UPDATE, so of
    several processes firing the same job, exactly one gets True."""
    result = session.execute(
        update(Page)
        .where(
            Page.id == page_id,
            Page.escalated_at.is_(None),
            Page.acknowledged_at.is_(None),
            Page.resolved_at.is_(None),
        )
        .values(escalated_at=at)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def event_seen(session: Session, provider: str, event_id: str) -> bool:
    """Whether this provider's event was already recorded (a redelivery)."""
    query = select(PageEvent.id).where(PageEvent.provider == provider, PageEvent.event_id == event_id)
    return session.execute(query).first() is not None


def by_ref(session: Session, provider: str, ref: str) -> Page | None:
    """The page a provider's own alert id (PagerDuty incident id, Opsgenie alertId) was seen with."""
    page_id = session.execute(
        select(PageEvent.page_id).where(PageEvent.provider == provider, PageEvent.ref == ref)
        .order_by(PageEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    return by_id(session, page_id, for_update=True) if page_id is not None else None


def add_event(session: Session, page: Page, provider: str, event_id: str, action: str, ref: str | None,
              occurred_at: datetime, received_at: datetime, outcome: str) -> None:
    session.add(PageEvent(page_id=page.id, provider=provider, event_id=event_id[:128], action=action,
                          ref=ref[:64] if ref else None, occurred_at=occurred_at, received_at=received_at,
                          outcome=outcome))


def reported_since(session: Session, page_id: int, provider: str, since: datetime,
                   actions: Collection[str] | None = None) -> bool:
    """Whether `provider` reported an event about the page (one of `actions`, when given) since `since`."""
    query = select(PageEvent.id).where(PageEvent.page_id == page_id, PageEvent.provider == provider,
                                       PageEvent.received_at >= since)
    if actions is not None:
        query = query.where(PageEvent.action.in_(actions))
    return session.execute(query.limit(1)).first() is not None
