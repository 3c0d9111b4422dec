"""Queries for diagnostics: runs, the watchdog's samples, and alert episodes claimed atomically."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import DiagnosticRun, WatchdogAlert, WatchdogSample


def add_run(session: Session, run: DiagnosticRun) -> DiagnosticRun:
    session.add(run)
    session.flush()
    return run


def runs_for(session: Session, incident_id: int) -> list[DiagnosticRun]:
    return list(
        session.execute(
            select(DiagnosticRun).where(DiagnosticRun.incident_id == incident_id).order_by(DiagnosticRun.started_at)
        ).scalars()
    )


def add_sample(session: Session, sample: WatchdogSample) -> None:
    session.add(sample)


def recent_samples(session: Session, target: str, limit: int) -> list[WatchdogSample]:
    """The last `limit` samples of a target, oldest first."""
    rows = session.execute(
        select(WatchdogSample).where(WatchdogSample.target == target).order_by(WatchdogSample.taken_at.desc()).limit(limit)
    ).scalars()
    return list(reversed(list(rows)))


def failing_since(session: Session, target: str) -> datetime | None:
    """When the target's latest run of samples without figures (refused, or with an error) began: the
    first sample after its last one with figures, else its oldest kept. None when its latest sample has
    figures, or it has none."""
    failed = WatchdogSample.refused.is_(True) | WatchdogSample.error.is_not(None)
    last_read = session.execute(
        select(func.max(WatchdogSample.taken_at)).where(WatchdogSample.target == target, ~failed)
    ).scalar()
    first_failed = select(func.min(WatchdogSample.taken_at)).where(WatchdogSample.target == target)
    if last_read is not None:
        first_failed = first_failed.where(WatchdogSample.taken_at > last_read)
    return session.execute(first_failed).scalar()


def open_alert(session: Session, target: str) -> WatchdogAlert | None:
    return session.execute(select(WatchdogAlert).where(WatchdogAlert.open_key == target)).scalar_one_or_none()


def claim_alert(session: Session, alert: WatchdogAlert) -> bool:
    """Open an episode unless one is open already (the unique open_key makes this a claim)."""
    try:
        with session.begin_nested():
            session.add(alert)
        return True
    except IntegrityError:
        return False


def clear_alert(session: Session, alert_id: int, at: datetime) -> bool:
    result = session.execute(
        update(WatchdogAlert)
        .where(WatchdogAlert.id == alert_id, WatchdogAlert.cleared_at.is_(None))
        .values(cleared_at=at, open_key=None)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def alert_by_id(session: Session, alert_id: int) -> WatchdogAlert | None:
    return session.get(WatchdogAlert, alert_id)
