"""Connecting to the bot's own store, and bringing its schema up to date."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.driver import as_sqlalchemy_raises

# What the store raises when it is down or unreachable (not when a statement is wrong): callers that can
# carry on without it (capture spools, commands say what is degraded) catch these and only these.
STORE_UNAVAILABLE = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError, exc.DisconnectionError)

T = TypeVar("T")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings each backend needs for many threads writing at once."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _serialize_sqlite_writers(engine)
        return engine
    # A store that is unreachable (not refusing) must fail fast: Slack waits 3 seconds for an answer.
    connect_args = {"connect_timeout": 2} if parsed.get_backend_name() == "postgresql" else {}
    # pool_pre_ping: every checkout asks the connection first (a round trip) and replaces one the server
    # cut. Pinging only connections that idled a while saved that round trip, but a cut (a restart, a
    # failover) then failed the next commands and the work after their ack, and it was put back.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, pool_timeout=10,
                         connect_args=connect_args, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class KeptConnection:
    """One connection kept open for a write path that runs often and one write at a time (a slash
    command's note, a batch of captured messages): a pool checkout per write costs more than the write
    itself, and on PostgreSQL it is a round trip more (the pool's pre-ping). `autocommit`: each
    statement is its own transaction (PostgreSQL's AUTOCOMMIT isolation level).

    `run(work)` calls `work(connection)` under a lock and returns what it returns. A connection the store
    cut (invalidated: storage.driver.as_sqlalchemy_raises marks it so) or that `work` failed on with
    STORE_UNAVAILABLE is closed, and the next run connects anew; with `retry_lost`, `work` is run once
    more on a fresh connection when its connection turned out cut: for work that a repeat cannot do
    twice (a write keyed by its request), since a cut seen only at the next use (a restart, a failover,
    idle connections closed by a proxy) is what the pre-ping caught before. Raises what `work` raised."""

    def __init__(self, engine: Engine, *, autocommit: bool = False) -> None:
        self._engine = engine
        self._autocommit = autocommit
        self._lock = threading.Lock()
        self._connection: Connection | None = None

    def run(self, work: Callable[[Connection], T], *, retry_lost: bool = False) -> T:
        with self._lock:
            try:
                return work(self._connected())
            except exc.DBAPIError as error:
                self._drop_unless_usable(error)
                if not (retry_lost and error.connection_invalidated):
                    raise
            return work(self._connected())  # its connection was cut: once more, on a fresh one

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _connected(self) -> Connection:
        if self._connection is None or self._connection.invalidated or self._connection.closed:
            connection = self._engine.connect()
            self._connection = connection.execution_options(isolation_level="AUTOCOMMIT") if self._autocommit else connection
        return self._connection

    def _drop_unless_usable(self, error: exc.DBAPIError) -> None:
        """A connection the store went away from is not used again (closed, as the pool would)."""
        if self._connection is not None and (error.connection_invalidated or isinstance(error, STORE_UNAVAILABLE)):
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None


def read_only(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions for reading only. On SQLite their transactions start deferred, without the writers'
    lock: a long read (a 10,000-entry timeline) then never holds up capture, WAL giving it a snapshot."""
    bind = factory.kw["bind"]
    return sessionmaker(bind.execution_options(incident_bot_read_only=True), expire_on_commit=False)


def safe_url(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def ping(engine: Engine) -> None:
    """Raises when the store does not answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def migrate(engine: Engine, revision: str = "head") -> None:
    """Run Alembic's upgrade to `revision` on this engine."""
    from alembic import command

    _run_alembic(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Undo migrations down to `revision` ("base": an empty store). For rolling back a release."""
    from alembic import command

    _run_alembic(engine, command.downgrade, revision)


def _run_alembic(engine: Engine, step: Any, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        step(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("storage") / "migrations"))
    return config


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error."""
    with factory() as session, session.begin():
        yield session


def _serialize_sqlite_writers(engine: Engine) -> None:
    # pysqlite starts transactions lazily at the first write, so two "read, then write" transactions can
    # interleave. BEGIN IMMEDIATE takes the write lock up front: SQLite then behaves like a store with
    # row locks for our purposes (declarations and status changes never lose an update).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk, even if the machine dies
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    # Within the process, writers queue on a lock instead of SQLite's busy handler, which sleeps in
    # growing steps (up to 100 ms) and gave a long tail of latency under concurrent capture.
    writer = threading.RLock()

    def reading(connection: Any) -> bool:
        return bool(connection.get_execution_options().get("incident_bot_read_only"))

    # On the driver's connection: SQLAlchemy's exec_driver_sql costs several times the BEGIN itself, and
    # every write (each slash command, each batch of captured messages) starts with one.
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if reading(connection):
            _begin(connection, "BEGIN")
            return
        writer.acquire()
        try:
            _begin(connection, "BEGIN IMMEDIATE")
        except BaseException:
            writer.release()
            raise

    def _begin(connection: Any, statement: str) -> None:
        """As SQLAlchemy would raise it: a sqlite3 error (the file locked past the busy timeout, say) as
        its OperationalError, which callers that can wait for the store (capture's spool) catch."""
        with as_sqlalchemy_raises(connection, statement):
            connection.connection.driver_connection.execute(statement)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(connection: Any) -> None:
        if not reading(connection):
            writer.release()
