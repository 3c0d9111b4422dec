"""Connections to the bot's own store (storage/database.py): SQLite's writers' BEGIN, run on the driver,
still fails as the store being unavailable; a PostgreSQL connection the server cut is replaced before
anyone uses it, however recently it was used."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import event, text

from storage.database import STORE_UNAVAILABLE, make_engine
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


def _backend_pid(engine: object) -> int:
    with engine.connect() as connection:  # type: ignore[attr-defined]
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_pooled_postgresql_connection_cut_right_after_use_is_replaced_before_the_next(postgres_url: str) -> None:
    """A restart or a failover cuts every connection at once, whenever each was last used: the next
    command must not meet a dead one (an outside check found that pinging only connections idle for a
    second failed the commands, and the publishing after their ack, right after a cut)."""
    engine = make_engine(postgres_url)
    try:
        first = _backend_pid(engine)
        assert _backend_pid(engine) == first  # one connection, pooled between uses
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:  # the server cuts it at once
            assert admin.execute("SELECT pg_terminate_backend(%s)", [first]).fetchone() == (True,)
        assert _backend_pid(engine) != first  # no error: replaced before it was used
    finally:
        engine.dispose()
