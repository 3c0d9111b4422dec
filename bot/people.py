"""Display names of the people in incidents, kept in the store so a postmortem can name them without
asking Slack. Names are learnt after the fact: an entry never waits for, or depends on, its author's name."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from storage import timeline as store
from storage.database import transaction


class People:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def names(self, user_ids: set[str]) -> dict[str, str]:
        """The names known for these ids; unknown ids are simply missing."""
        with self._sessions() as session:
            return store.names(session, user_ids)

    def remember(self, user_id: str, name: str) -> None:
        with transaction(self._sessions) as session:
            store.remember_name(session, user_id, name, self._clock.now())
