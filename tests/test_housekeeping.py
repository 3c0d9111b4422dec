"""The daily housekeeping job forgets request keys and samples that have aged out, and nothing else."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import ManualClock
from bot.housekeeping import tidy
from storage import incidents as requests
from storage.database import make_engine, make_session_factory, migrate, transaction
from storage.models import SlackRequest, WatchdogSample


def test_old_request_keys_and_samples_are_forgotten(database_url: str, clock: ManualClock) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_session_factory(engine)
    now = clock.now()
    with transaction(sessions) as session:
        requests.record_request(session, "command:old", None, now - timedelta(days=3))
        requests.record_request(session, "command:new", None, now - timedelta(hours=1))
        session.add(WatchdogSample(target="primary", taken_at=now - timedelta(days=8), refused=False))
        session.add(WatchdogSample(target="primary", taken_at=now - timedelta(days=1), refused=False))

    assert tidy(sessions, clock) == (1, 1)

    with sessions() as session:
        assert [r.key for r in session.query(SlackRequest)] == ["command:new"]
        assert [s.taken_at for s in session.query(WatchdogSample)] == [now - timedelta(days=1)]
    engine.dispose()
