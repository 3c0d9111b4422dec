"""Forgetting what is no longer needed: request keys Slack can no longer retry, old watchdog samples."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from storage.models import SlackRequest, WatchdogSample


def forget_requests_before(session: Session, cutoff: datetime) -> int:
    return int(session.execute(delete(SlackRequest).where(SlackRequest.received_at < cutoff)).rowcount)  # type: ignore[attr-defined]


def forget_samples_before(session: Session, cutoff: datetime) -> int:
    return int(session.execute(delete(WatchdogSample).where(WatchdogSample.taken_at < cutoff)).rowcount)  # type: ignore[attr-defined]
