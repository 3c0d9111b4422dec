"""Connections to the bot's own store (storage/database.py): SQLite's writers' BEGIN, run on the driver,
still fails as the store being unavailable; a PostgreSQL connection the server cut is replaced before
anyone uses it, however recently it was used; a connection kept for one write path (KeptConnection)
is replaced after a cut, and what is safe to repeat is repeated on the fresh one."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url

from bot.clock import ManualClock
from bot.incidents import commands as c
from bot.incidents.service import AlreadyDone, Changed, IncidentService
from bot.incidents.values import EntryKind
from bot.timeline import TimelineService
from storage.database import STORE_UNAVAILABLE, KeptConnection, make_engine, make_session_factory
from tests.conftest import PG_ADMIN


def test_a_sqlite_file_another_process_holds_is_the_store_unavailable_and_then_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=50")  # after make_engine's own 30 s

    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE notes (body TEXT)"))
        other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process writing, and not done
        with pytest.raises(STORE_UNAVAILABLE, match="database is locked"), engine.begin() as connection:
            connection.execute(text("INSERT INTO notes VALUES ('lost?')"))
        other.execute("ROLLBACK")
        other.close()
        with engine.begin() as connection:  # the writers' lock was let go with the failed BEGIN
            connection.execute(text("INSERT INTO notes VALUES ('written')"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT body FROM notes")).scalars().all() == ["written"]
    finally:
        engine.dispose()


def _pid(connection: Connection) -> int:
    return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return _pid(connection)


def _cut(pid: int) -> None:
    """The server ends the connection, as a restart or a failover does, and it is gone before this returns."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        _gone(admin, [pid])


def _gone(admin: psycopg.Connection[tuple[object, ...]], pids: list[int]) -> None:
    """Waits until these backends have exited: pg_terminate_backend only signals them, and one that had
    not yet would still run the next statement sent to it (the cut must come first, as a failover's does)."""
    deadline = time.monotonic() + 10
    while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]).fetchone() != (0,):
        assert time.monotonic() < deadline, f"backends {pids} still there 10 s after pg_terminate_backend"
        time.sleep(0.01)


def test_a_pooled_postgresql_connection_cut_right_after_use_is_replaced_before_the_next(postgres_url: str) -> None:
    """A restart or a failover cuts every connection at once, whenever each was last used: the next
    command must not meet a dead one (an outside check found that pinging only connections idle for a
    second failed the commands, and the publishing after their ack, right after a cut)."""
    engine = make_engine(postgres_url)
    try:
        first = _backend_pid(engine)
        assert _backend_pid(engine) == first  # one connection, pooled between uses
        _cut(first)
        assert _backend_pid(engine) != first  # no error: replaced before it was used
    finally:
        engine.dispose()


def test_a_kept_connection_the_server_cut_is_replaced_at_its_next_use(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    kept = KeptConnection(engine, autocommit=True)
    try:
        first = kept.run(_pid)
        assert kept.run(_pid) == first  # kept between uses, not checked out of the pool each time
        _cut(first)
        with pytest.raises(STORE_UNAVAILABLE):  # work that may not be repeated meets the cut once
            kept.run(_pid)
        assert kept.run(_pid) != first  # and the next use has a fresh connection
        second = kept.run(_pid)
        _cut(second)
        assert kept.run(_pid, retry_lost=True) not in (first, second)  # work safe to repeat: run again at once
    finally:
        kept.close()
        engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # an empty store: no other test's incidents
def test_a_note_after_the_server_cut_its_connection_is_written_once(database_url: str) -> None:
    """Notes are written on a connection kept for them, which no pre-ping checks: the note that meets a
    cut is written on a fresh one, once (its request key makes the repeat safe)."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    clock = ManualClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    incidents = IncidentService(sessions, clock)
    try:
        incident = incidents.declare(c.Declare(title="Cut"), "U0ALICE", "cut-declare").incident
        assert isinstance(incidents.apply(incident.id, c.AddNote("before", EntryKind.ACTION), "U0ALICE", "cut-1"), Changed)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:  # every connection to the store, the kept one too
            cut = admin.execute("SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                                "AND pid <> pg_backend_pid()", [make_url(database_url).database]).fetchall()
            assert cut and all(ended for _, ended in cut)
            _gone(admin, [pid for pid, _ in cut])
        assert isinstance(incidents.apply(incident.id, c.AddNote("after", EntryKind.ACTION), "U0ALICE", "cut-2"), Changed)
        assert isinstance(incidents.apply(incident.id, c.AddNote("after", EntryKind.ACTION), "U0ALICE", "cut-2"), AlreadyDone)
        notes = [i.text for i in TimelineService(sessions, clock).items(incident.id) if i.kind is EntryKind.ACTION]
        assert notes == ["before", "after"]
    finally:
        incidents.close()
        engine.dispose()
