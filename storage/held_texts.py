"""Texts held by a key until a later request asks for them (a message's text, by the view id of the
declare form opened from it). Functions take a Session and leave committing to the caller."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from storage.models import HeldText


def hold(session: Session, key: str, text: str, at: datetime, *, forget_before: datetime) -> None:
    """Keep `text` under `key` (replacing what the key held), and delete texts held before `forget_before`."""
    session.execute(delete(HeldText).where(HeldText.held_at < forget_before))
    session.merge(HeldText(key=key, text=text, held_at=at))


def held(session: Session, key: str) -> str | None:
    row = session.get(HeldText, key)
    return row.text if row is not None else None
