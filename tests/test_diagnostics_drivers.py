"""The diagnostics drivers against the real local PostgreSQL and MariaDB: real connection leaks, a real
running statement, a real row-lock wait, a real connection limit. Every role, user and table is named
for this run and dropped at the end; every diagnostics connection must be gone after close()."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import URL, make_url

from bot.diagnostics.drivers import (
    APPLICATION_NAME,
    CHECKS,
    CheckResult,
    CheckTimedOut,
    Table,
    TargetError,
    TargetRefused,
    TargetUnreachable,
    UnsupportedCheck,
    driver_for,
    normalize_sql,
)
from bot.diagnostics.drivers import mysql as mysql_driver
from bot.diagnostics.drivers import postgres as postgres_driver

RUN = uuid.uuid4().hex[:8]
LEAKS = 4
STATEMENT_MS = 3000
SLEEP_SECONDS = 3
SECRET_LITERAL = "card 4111-1111"
PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "dbname": "test"}
MY: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "database": "test"}


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition",
             every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def table(result: CheckResult, title: str) -> Table:
    matches = [t for t in result.tables if t.title == title]
    assert matches, f"no table {title!r} in {[t.title for t in result.tables]}"
    return matches[0]


def figures_of(result: CheckResult) -> dict[str, Any]:
    """The figures, typed loosely: each test knows which are numbers."""
    return dict(result.figures)


def records(t: Table) -> list[dict[str, Any]]:
    """The table's rows keyed by column name."""
    return [dict(zip(t.columns, row, strict=True)) for row in t.rows]


def column(t: Table, name: str) -> list[Any]:
    index = t.columns.index(name)
    return [row[index] for row in t.rows]


class Background:
    """A statement that blocks, run in its own thread and joined at the end."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], object]) -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def join(self) -> None:
        self._thread.join(15)
        assert not self._thread.is_alive(), "the background statement never finished"


# --- the two servers -------------------------------------------------------------------------------


class PostgresServer:
    name = "postgresql"
    group_table = "Top applications"
    leaker = "leaky-web"
    sleep_sql = f"SELECT pg_sleep({SLEEP_SECONDS}), '{SECRET_LITERAL}' AS note"
    normalized_sleep = "SELECT pg_sleep(?), ? AS note"

    def __init__(self) -> None:
        self.admin = psycopg.connect(**PG, user="postgres", autocommit=True)
        self.rows = f"diag_rows_{RUN}"
        self.limited = f"diag_limited_{RUN}"
        self.admin.execute(f"CREATE TABLE {self.rows} (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)")
        self.admin.execute(f"INSERT INTO {self.rows} (id) SELECT generate_series(1, 20)")
        self.url = URL.create("postgresql+psycopg", username="postgres", password=f"pg-secret-{RUN}",
                              host=PG["host"], port=PG["port"], database="test")

    def value(self, statement: Any, params: Any = None) -> Any:
        row = self.admin.execute(statement, params).fetchone()
        assert row is not None
        return row[0]

    def teardown(self) -> None:
        self.admin.execute(f"DROP TABLE IF EXISTS {self.rows}")
        self.admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                           [self.limited])
        self.admin.execute(f"DROP ROLE IF EXISTS {self.limited}")
        self.admin.close()

    def app(self, autocommit: bool = False) -> psycopg.Connection[Any]:
        return psycopg.connect(**PG, user="postgres", application_name=self.leaker, autocommit=autocommit)

    @staticmethod
    def session_id(connection: psycopg.Connection[Any]) -> int:
        return connection.info.backend_pid

    @contextlib.contextmanager
    def leak(self, count: int, gap: float = 0.0) -> Iterator[list[int]]:
        """Connections that BEGIN, read, and are never given back: idle in transaction."""
        connections = []
        try:
            for number in range(1, count + 1):
                connection = self.app()
                connection.execute(f"SELECT id FROM {self.rows} WHERE id = {10 + number}")
                connections.append(connection)
                time.sleep(gap)
            yield [self.session_id(c) for c in connections]
        finally:
            for connection in connections:
                connection.close()

    def diagnostic_sessions(self) -> int:
        return self.value("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                  [APPLICATION_NAME])

    @contextlib.contextmanager
    def running_sleep(self) -> Iterator[int]:
        connection = self.app(autocommit=True)
        pid = self.session_id(connection)
        worker = Background(lambda: connection.execute(self.sleep_sql))
        try:
            wait_for(lambda: self.value(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active'", [pid]
            ) == 1, what="the sleep to start")
            yield pid
        finally:
            worker.join()
            connection.close()

    @contextlib.contextmanager
    def lock_wait(self) -> Iterator[tuple[int, int]]:
        blocker, waiter = self.app(), self.app()
        blocker.execute(f"UPDATE {self.rows} SET v = v + 1 WHERE id = 1")
        waiter.execute("SET lock_timeout = '15s'")
        worker = Background(lambda: waiter.execute(f"UPDATE {self.rows} SET v = v + 2 WHERE id = 1"))
        pid = self.session_id(waiter)
        try:
            wait_for(lambda: self.value(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", [pid]
            ) == 1, what="the second UPDATE to wait on the lock")
            yield self.session_id(blocker), pid
        finally:
            blocker.rollback()
            worker.join()
            for connection in (blocker, waiter):
                connection.close()

    def show_max_connections(self) -> int:
        return int(self.value("SHOW max_connections"))

    def check_server_timeouts(self, figures: dict[str, Any]) -> None:
        """The settings check reports the server's statement_timeout, not the diagnostics session's own."""
        assert str(figures["statement_timeout"]) == self.value("SHOW statement_timeout")
        assert str(figures["lock_timeout"]) == self.value("SHOW lock_timeout")

    def insert(self, connection: psycopg.Connection[Any]) -> None:
        connection.execute(f"INSERT INTO {self.rows} (id) VALUES (1000)")

    @staticmethod
    def is_read_only_error(error: BaseException) -> bool:
        return isinstance(error, psycopg.errors.ReadOnlySqlTransaction)

    def rows_inserted(self) -> int:
        return self.value(f"SELECT count(*) FROM {self.rows} WHERE id = 1000")

    @contextlib.contextmanager
    def at_its_limit(self) -> Iterator[URL]:
        """A role allowed one connection, already holding it."""
        password = f"limited-secret-{RUN}"
        self.admin.execute(f"CREATE ROLE {self.limited} LOGIN PASSWORD '{password}' CONNECTION LIMIT 1")
        holder = psycopg.connect(**PG, user=self.limited, password=password)
        try:
            yield self.url.set(username=self.limited, password=password)
        finally:
            holder.close()


class MariaServer:
    name = "mariadb"
    group_table = "Top users"
    sleep_sql = f"SELECT SLEEP({SLEEP_SECONDS}), '{SECRET_LITERAL}' AS note"
    normalized_sleep = "SELECT SLEEP(?), ? AS note"

    def __init__(self) -> None:
        self.admin = pymysql.connect(**MY, user="root", autocommit=True)
        self.rows = f"diag_rows_{RUN}"
        self.diag, self.leaker, self.limited = f"diag_{RUN}", f"leaky_web_{RUN}", f"diag_limited_{RUN}"
        self.diag_password, self.leaker_password = f"diag-secret-{RUN}", f"leaky-secret-{RUN}"
        self.sql(f"CREATE TABLE {self.rows} (id INT PRIMARY KEY, v INT NOT NULL DEFAULT 0) ENGINE=InnoDB")
        self.sql(f"INSERT INTO {self.rows} (id) SELECT seq FROM seq_1_to_20")
        self.sql(f"CREATE USER '{self.diag}'@'127.0.0.1' IDENTIFIED BY '{self.diag_password}'")
        self.sql(f"GRANT PROCESS ON *.* TO '{self.diag}'@'127.0.0.1'")
        # INSERT too, so that only the read-only transaction can stop the driver from writing.
        self.sql(f"GRANT SELECT, INSERT ON test.* TO '{self.diag}'@'127.0.0.1'")
        self.sql(f"CREATE USER '{self.leaker}'@'127.0.0.1' IDENTIFIED BY '{self.leaker_password}'")
        self.sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON test.* TO '{self.leaker}'@'127.0.0.1'")
        self.url = URL.create("mysql+pymysql", username=self.diag, password=self.diag_password,
                              host=MY["host"], port=MY["port"], database="test")

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.admin.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall())

    def teardown(self) -> None:
        users = (self.diag, self.leaker, self.limited)
        for (thread,) in self.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER IN %s", [users]):
            with contextlib.suppress(pymysql.MySQLError):
                self.sql(f"KILL {int(thread)}")
        for user in users:
            self.sql(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
        self.sql(f"DROP TABLE IF EXISTS {self.rows}")
        self.admin.close()

    def app(self) -> pymysql.connections.Connection:
        return pymysql.connect(**MY, user=self.leaker, password=self.leaker_password, autocommit=False)

    @staticmethod
    def session_id(connection: pymysql.connections.Connection) -> int:
        return connection.thread_id()

    @staticmethod
    def execute(connection: pymysql.connections.Connection, statement: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            cursor.fetchall()

    @contextlib.contextmanager
    def leak(self, count: int, gap: float = 0.0) -> Iterator[list[int]]:
        """Connections that lock a row in a transaction and are never given back."""
        connections = []
        try:
            for number in range(1, count + 1):
                connection = self.app()
                self.execute(connection, "START TRANSACTION")
                self.execute(connection, f"SELECT id FROM {self.rows} WHERE id = {10 + number} FOR UPDATE")
                connections.append(connection)
                time.sleep(gap)
            yield [self.session_id(c) for c in connections]
        finally:
            for connection in connections:
                connection.close()

    def diagnostic_sessions(self) -> int:
        return self.sql("SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = %s", [self.diag])[0][0]

    @contextlib.contextmanager
    def running_sleep(self) -> Iterator[int]:
        connection = self.app()
        thread = self.session_id(connection)
        worker = Background(lambda: self.execute(connection, self.sleep_sql))
        try:
            wait_for(lambda: self.sql("SELECT count(*) FROM information_schema.PROCESSLIST "
                                      "WHERE ID = %s AND COMMAND = 'Query'", [thread])[0][0] == 1,
                     what="the sleep to start")
            yield thread
        finally:
            worker.join()
            connection.close()

    @contextlib.contextmanager
    def lock_wait(self) -> Iterator[tuple[int, int]]:
        blocker, waiter = self.app(), self.app()
        self.execute(blocker, "START TRANSACTION")
        self.execute(blocker, f"UPDATE {self.rows} SET v = v + 1 WHERE id = 1")
        self.execute(waiter, "SET SESSION innodb_lock_wait_timeout = 15")
        self.execute(waiter, "START TRANSACTION")
        worker = Background(lambda: self.execute(waiter, f"UPDATE {self.rows} SET v = v + 2 WHERE id = 1"))
        thread = self.session_id(waiter)
        try:
            wait_for(lambda: self.sql("SELECT count(*) FROM information_schema.INNODB_TRX "
                                      "WHERE trx_mysql_thread_id = %s AND trx_state = 'LOCK WAIT'",
                                      [thread])[0][0] == 1,
                     what="the second UPDATE to wait on the row lock",
                     every=0.25)  # InnoDB refreshes INNODB_TRX only once it has gone unread for 0.1 s
            yield self.session_id(blocker), thread
        finally:
            blocker.rollback()
            worker.join()
            waiter.rollback()
            for connection in (blocker, waiter):
                connection.close()

    def show_max_connections(self) -> int:
        return int(self.sql("SHOW VARIABLES LIKE 'max_connections'")[0][1])

    def check_server_timeouts(self, figures: dict[str, Any]) -> None:
        """The settings check reports the server's max_statement_time, not the diagnostics session's own."""
        assert figures["max_statement_time"] == float(self.sql("SELECT @@GLOBAL.max_statement_time")[0][0])
        assert figures["wait_timeout"] == int(self.sql("SELECT @@GLOBAL.wait_timeout")[0][0])

    def insert(self, connection: pymysql.connections.Connection) -> None:
        self.execute(connection, f"INSERT INTO {self.rows} (id) VALUES (1000)")

    @staticmethod
    def is_read_only_error(error: BaseException) -> bool:
        return isinstance(error, pymysql.MySQLError) and error.args[0] == 1792

    def rows_inserted(self) -> int:
        return self.sql(f"SELECT count(*) FROM {self.rows} WHERE id = 1000")[0][0]

    @contextlib.contextmanager
    def at_its_limit(self) -> Iterator[URL]:
        """A user allowed one connection, already holding it."""
        password = f"limited-secret-{RUN}"
        self.sql(f"CREATE USER '{self.limited}'@'127.0.0.1' IDENTIFIED BY '{password}' WITH MAX_USER_CONNECTIONS 1")
        self.sql(f"GRANT PROCESS ON *.* TO '{self.limited}'@'127.0.0.1'")
        self.sql(f"GRANT SELECT ON test.* TO '{self.limited}'@'127.0.0.1'")
        holder = pymysql.connect(**MY, user=self.limited, password=password)
        try:
            yield self.url.set(username=self.limited, password=password)
        finally:
            holder.close()


Server = PostgresServer | MariaServer


@pytest.fixture(scope="module")
def postgresql_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.teardown()


@pytest.fixture(scope="module")
def mariadb_server() -> Iterator[MariaServer]:
    server = MariaServer()
    yield server
    server.teardown()


@pytest.fixture(params=["postgresql", "mariadb"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue(f"{request.param}_server")


def no_diagnostic_sessions(server: Server) -> int:
    """How many diagnostics sessions remain once the server has had a moment to notice the close."""
    with contextlib.suppress(AssertionError):
        wait_for(lambda: server.diagnostic_sessions() == 0, timeout=3)
    return server.diagnostic_sessions()


def run_check(server: Server, check: str) -> CheckResult:
    """connect, run, close: as the diagnostics service does, proving nothing is left behind."""
    driver = driver_for(server.url)
    connection = driver.connect(server.url, connect_timeout=5, statement_timeout_ms=STATEMENT_MS)
    try:
        assert server.diagnostic_sessions() == 1
        return driver.run(connection, check)
    finally:
        driver.close(connection)
        assert no_diagnostic_sessions(server) == 0, "the diagnostics connection outlived close()"


# --- the checks on real trouble ---------------------------------------------------------------------


def test_connections_sees_the_leak(server: Server) -> None:
    with server.leak(LEAKS):
        time.sleep(1.1)  # the leak must have a measurable age
        result = run_check(server, "connections")
    figures = figures_of(result)
    assert figures["in_use"] >= LEAKS
    assert figures["idle_in_transaction"] >= LEAKS
    assert figures["oldest_idle_in_transaction_seconds"] >= 1
    assert figures["max_connections"] == server.show_max_connections()
    assert figures["usable"] == figures["max_connections"] - figures["reserved"]
    assert figures["usage_percent"] == round(figures["in_use"] / figures["usable"] * 100, 1)
    assert "idle in transaction" in figures["by_state"]
    assert result.headline.startswith(f"{figures['in_use']} of {figures['usable']} usable connections in use")
    groups = table(result, server.group_table)
    names = column(groups, groups.columns[0])
    assert server.leaker in names[:2], groups.rows
    leak_row = records(groups)[names.index(server.leaker)]
    assert leak_row["sessions"] >= LEAKS and leak_row["idle in transaction"] >= LEAKS
    assert column(groups, "sessions") == sorted(column(groups, "sessions"), reverse=True)
    # The diagnostics connection is not part of the problem.
    everyone = [row[0] for t in result.tables for row in t.rows]
    assert APPLICATION_NAME not in everyone and getattr(server, "diag", APPLICATION_NAME) not in everyone
    assert sum(column(table(result, "By state"), "sessions")) <= figures["in_use"]


def test_idle_in_tx_lists_the_leak_oldest_first(server: Server) -> None:
    with server.leak(LEAKS, gap=0.3) as opened:
        time.sleep(1.1)
        result = run_check(server, "idle-in-tx")
    listed = table(result, "Idle in a transaction, oldest first")
    ids = column(listed, listed.columns[0])
    assert [i for i in ids if i in opened] == opened  # the first opened is the oldest
    ages = column(listed, "transaction age s")
    assert ages == sorted(ages, reverse=True)
    assert figures_of(result)["count"] >= LEAKS
    assert figures_of(result)["oldest_seconds"] == ages[0] >= 1
    if isinstance(server, PostgresServer):
        queries = {q for i, q in zip(ids, column(listed, "last query"), strict=True) if i in opened}
        assert queries == {f"SELECT id FROM {server.rows} WHERE id = ?"}


def test_long_queries_sees_a_running_statement_without_its_literals(server: Server) -> None:
    with server.running_sleep() as session:
        time.sleep(0.5)
        result = run_check(server, "long-queries")
    running = table(result, "Running statements, longest first")
    mine = [row for row in records(running) if row[running.columns[0]] == session]
    assert mine, running.rows
    assert mine[0]["query"] == server.normalized_sleep
    assert mine[0]["running for s"] >= 0.4
    durations = column(running, "running for s")
    assert durations == sorted(durations, reverse=True)
    assert figures_of(result)["count"] >= 1 and figures_of(result)["longest_seconds"] >= 0.4
    assert all(SECRET_LITERAL not in str(row) for row in running.rows)


def test_blocking_names_the_blocker(server: Server) -> None:
    with server.lock_wait() as (blocker, waiter):
        time.sleep(1.1)
        result = run_check(server, "blocking")
    blocked = result.tables[0]
    blocked_id, blocking_id = blocked.columns[0], blocked.columns[4]  # "blocked pid" / "blocked thread", …
    pairs = [row for row in records(blocked) if row[blocked_id] == waiter and row[blocking_id] == blocker]
    assert pairs, blocked.rows
    assert pairs[0]["blocking state"] == "idle in transaction"
    assert pairs[0]["blocked query"] == f"UPDATE {server.rows} SET v = v + ? WHERE id = ?"
    assert pairs[0]["blocked for s"] >= 1
    assert figures_of(result)["blocked"] >= 1 and figures_of(result)["longest_wait_seconds"] >= 1
    assert str(blocker) in result.headline


def involving_this_run(server: Server, result: CheckResult, sessions: Iterable[int] = ()) -> list[dict[str, Any]]:
    """The blocking rows about this run's table or the given sessions: what a test may assert on when
    the server is shared (another client's lock wait is none of its business)."""
    waits = table(result, "Blocked sessions and who blocks them")
    blocked_id, blocking_id = waits.columns[0], waits.columns[4]
    ids = set(sessions)
    return [row for row in records(waits)
            if server.rows in f"{row['blocked query']} {row['blocking query']}"
            or row[blocked_id] in ids or row[blocking_id] in ids]


def test_nothing_blocked_when_nobody_waits(server: Server) -> None:
    """In file order this runs straight after test_blocking_names_the_blocker, whose wait InnoDB's cached
    snapshot may still hold (see test_mariadb_an_ended_wait_in_a_stale_snapshot_is_not_reported)."""
    with server.leak(2) as leaked:  # idle transactions holding locks nobody wants
        result = run_check(server, "blocking")
    assert involving_this_run(server, result, leaked) == []
    rows = table(result, "Blocked sessions and who blocks them").rows
    assert figures_of(result)["blocked"] == len({row[0] for row in rows})
    if not rows:
        assert result.figures == {"blocked": 0, "longest_wait_seconds": None}


class SnapshotReader:
    """Another client reading INNODB_TRX every 30 ms, as an eager monitoring agent might: InnoDB then
    never refreshes its snapshot. Records, per read, when it began and which threads were in LOCK WAIT."""

    def __init__(self) -> None:
        self.reads: list[tuple[float, set[int]]] = []
        self._connection = pymysql.connect(**MY, user="root", autocommit=True)
        self._stop = threading.Event()
        self._worker = Background(self._poll)

    def _poll(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX "
                               "WHERE trx_state = 'LOCK WAIT'")
                self.reads.append((began, {int(row[0]) for row in cursor.fetchall()}))
            self._stop.wait(0.03)

    def saw_waiting(self, thread: int, since: float = 0.0) -> bool:
        return any(thread in waiting for began, waiting in list(self.reads) if began >= since)

    def read_since(self, since: float) -> bool:
        return any(began >= since for began, _ in list(self.reads))

    def close(self) -> None:
        self._stop.set()
        self._worker.join()
        self._connection.close()
        assert self._worker.error is None, repr(self._worker.error)


def blocking_check_after_a_wait_ended(server: MariaServer) -> tuple[CheckResult, list[int], bool]:
    """A lock wait that ends while a SnapshotReader keeps reading; then the blocking check. Returns the
    result, the two sessions, and whether a read begun after the check still showed the ended wait,
    which proves the snapshot stayed stale throughout."""
    with server.lock_wait() as (blocker, waiter):
        reader = SnapshotReader()
        try:
            wait_for(lambda: reader.saw_waiting(waiter), what="the reader to see the wait")
        except BaseException:
            reader.close()
            raise
    try:  # the wait has ended: the waiter rolled back and disconnected
        result = run_check(server, "blocking")
        checked = time.monotonic()
        with contextlib.suppress(AssertionError):  # a machine too busy to read again says "not stale"
            wait_for(lambda: reader.read_since(checked), timeout=1, what="a read after the check")
        return result, [blocker, waiter], reader.saw_waiting(waiter, since=checked)
    finally:
        reader.close()


def test_mariadb_an_ended_wait_in_a_stale_snapshot_is_not_reported(mariadb_server: MariaServer) -> None:
    """INNODB_TRX and INNODB_LOCK_WAITS are one snapshot that InnoDB refreshes only once nobody has read
    it for 0.1 s (MySQL manual, 'Persistence and Consistency of InnoDB Transaction and Locking
    Information'). With another client reading it non-stop, a wait that has ended stays in it: the check
    must not report it, and must say its snapshot was old. The reader's own reads prove the snapshot
    really stayed stale through the check; a machine too busy to keep it so gets another try."""
    for _ in range(3):
        result, sessions, stale_throughout = blocking_check_after_a_wait_ended(mariadb_server)
        if stale_throughout:
            break
    else:
        raise AssertionError("InnoDB refreshed its snapshot during every try: the reader could not keep it stale")
    assert involving_this_run(mariadb_server, result, sessions) == []
    assert any("snapshot is older than this check" in note for note in result.notes), result.notes
    # Unread for 0.1 s, InnoDB refreshes it: the check then says nothing about its age.
    time.sleep(0.2)
    assert run_check(mariadb_server, "blocking").notes == []


def test_settings_are_the_servers(server: Server) -> None:
    result = run_check(server, "settings")
    assert figures_of(result)["max_connections"] == server.show_max_connections()
    server.check_server_timeouts(result.figures)
    assert [row[0] for row in result.tables[0].rows] == list(result.figures)


# --- the connection protects the server --------------------------------------------------------------


def test_connection_is_read_only(server: Server) -> None:
    driver = driver_for(server.url)
    connection = driver.connect(server.url, connect_timeout=5, statement_timeout_ms=STATEMENT_MS)
    try:
        for _ in range(2):  # straight after connect(), and in the fresh transaction a check opens
            with pytest.raises(Exception) as raised:
                server.insert(connection)
            assert server.is_read_only_error(raised.value), repr(raised.value)
            driver.run(connection, "settings")
    finally:
        driver.close(connection)
    assert server.rows_inserted() == 0
    assert no_diagnostic_sessions(server) == 0


def test_postgres_statement_timeout_is_enforced_by_the_server(postgresql_server: PostgresServer) -> None:
    driver = driver_for(postgresql_server.url)
    connection = driver.connect(postgresql_server.url, connect_timeout=5, statement_timeout_ms=500)
    try:
        shown = {name: connection.execute(f"SHOW {name}").fetchone()[0] for name in (  # type: ignore[index]
            "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "application_name",
            "transaction_read_only")}
        assert shown == {"statement_timeout": "500ms", "lock_timeout": "500ms",
                         "idle_in_transaction_session_timeout": "2s", "application_name": APPLICATION_NAME,
                         "transaction_read_only": "on"}
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            connection.execute("SELECT pg_sleep(3)")
        assert time.monotonic() - started < 1.0
        connection.rollback()
        started = time.monotonic()
        with pytest.raises(CheckTimedOut) as raised:
            postgres_driver._fetch(connection, "long-queries", "SELECT pg_sleep(3)")  # run()'s own path
        assert time.monotonic() - started < 1.0
        assert "statement timeout" in raised.value.reason
    finally:
        driver.close(connection)
    assert no_diagnostic_sessions(postgresql_server) == 0


def test_mariadb_statement_timeout_is_enforced_by_the_server(mariadb_server: MariaServer) -> None:
    driver = driver_for(mariadb_server.url)
    connection = driver.connect(mariadb_server.url, connect_timeout=5, statement_timeout_ms=500)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.max_statement_time, @@SESSION.tx_read_only")
            assert cursor.fetchone() == (0.5, 1)
        assert connection._read_timeout == 2.5  # the socket backstop behind the server's own timeout
        started = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError) as raw:
            mariadb_server.execute(connection, "SELECT SLEEP(3)")
        assert raw.value.args[0] == 1969
        assert time.monotonic() - started < 1.0
        started = time.monotonic()
        with pytest.raises(CheckTimedOut) as raised:
            mysql_driver._fetch(connection, "long-queries", "SELECT SLEEP(3)")  # run()'s own path
        assert time.monotonic() - started < 1.0
        assert "statement timeout" in raised.value.reason
    finally:
        driver.close(connection)
    assert no_diagnostic_sessions(mariadb_server) == 0


def test_a_full_server_is_the_finding(server: Server) -> None:
    with server.at_its_limit() as url:
        started = time.monotonic()
        with pytest.raises(TargetRefused) as raised:
            driver_for(url).connect(url, connect_timeout=3, statement_timeout_ms=STATEMENT_MS)
        assert time.monotonic() - started < 3
    reason = raised.value.reason
    assert "refused a new connection: it is at its connection limit" in reason
    assert str(url.password) not in reason and "://" not in reason


@pytest.mark.parametrize("where", ["closed port", "silent listener"])
def test_unreachable_within_the_connect_timeout(server: Server, where: str) -> None:
    with contextlib.ExitStack() as stack:
        if where == "closed port":
            port = 9
        else:  # the kernel completes the TCP handshake, then nothing ever answers
            listener = stack.enter_context(socket.create_server(("127.0.0.1", 0)))
            port = listener.getsockname()[1]
        url = server.url.set(port=port)
        started = time.monotonic()
        with pytest.raises(TargetUnreachable) as raised:
            driver_for(url).connect(url, connect_timeout=2, statement_timeout_ms=STATEMENT_MS)
        assert time.monotonic() - started < 3
    reason = raised.value.reason
    assert str(url.password) not in reason and "://" not in reason and str(url.username) not in reason


def test_an_unknown_check_is_unsupported(postgresql_server: PostgresServer) -> None:
    driver = driver_for(postgresql_server.url)
    connection = driver.connect(postgresql_server.url, connect_timeout=5, statement_timeout_ms=STATEMENT_MS)
    try:
        with pytest.raises(UnsupportedCheck):
            driver.run(connection, "DROP TABLE users")
        assert driver.checks == CHECKS
    finally:
        driver.close(connection)


# --- SQLite and the pure parts -------------------------------------------------------------------------


def test_sqlite_settings_read_only(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    with contextlib.closing(sqlite3.connect(path)) as app:
        app.execute("PRAGMA journal_mode = wal")
        app.execute("CREATE TABLE t (a)")
        app.commit()
    url = make_url(f"sqlite:///{path}")
    driver = driver_for(url)
    connection = driver.connect(url, connect_timeout=1, statement_timeout_ms=500)
    try:
        result = driver.run(connection, "settings")
        assert figures_of(result)["journal_mode"] == "wal"
        assert figures_of(result)["page_size"] == 4096 and figures_of(result)["page_count"] >= 2
        assert figures_of(result)["busy_timeout"] == 500
        with pytest.raises(UnsupportedCheck):
            driver.run(connection, "connections")
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only"):
            connection.execute("INSERT INTO t VALUES (1)")
    finally:
        driver.close(connection)
    with contextlib.closing(sqlite3.connect(path)) as app:
        assert app.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_sqlite_missing_file_is_unreachable(tmp_path: Path) -> None:
    url = make_url(f"sqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(TargetUnreachable):
        driver_for(url).connect(url, connect_timeout=1, statement_timeout_ms=500)
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize(("url", "backend"), [
    ("postgresql+psycopg://u@h/db", "postgresql"), ("postgresql://u@h/db", "postgresql"),
    ("mysql+pymysql://u@h/db", "mysql"), ("mariadb+pymysql://u@h/db", "mysql"), ("sqlite:///x.db", "sqlite"),
])
def test_driver_for_picks_the_backend(url: str, backend: str) -> None:
    assert driver_for(make_url(url)).backend == backend


def test_driver_for_names_what_is_supported() -> None:
    with pytest.raises(TargetError) as raised:
        driver_for(make_url("mssql+pyodbc://sa:hunter2@h/db"))
    assert "postgresql" in raised.value.reason and "hunter2" not in raised.value.reason


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT * FROM t WHERE name = 'O''Brien' AND id = 42", "SELECT * FROM t WHERE name = ? AND id = ?"),
    ("select  *\n\tfrom t\nwhere id in (1, 2,3) and s IN ('a','b')", "select * from t where id in (?) and s IN (?)"),
    ("SELECT $$it's$$, $fn$ x 'y' $fn$, E'a\\'b', 'c'", "SELECT ?, ?, ?, ?"),
    ("SELECT * FROM t1 WHERE col2 = 3.5e3 AND x = -7 AND h = 0xFF", "SELECT * FROM t1 WHERE col2 = ? AND x = -? AND h = ?"),
    ("UPDATE t SET a = $1 WHERE id = ANY($2)", "UPDATE t SET a = $1 WHERE id = ANY($2)"),
    ("SELECT id FROM t WHERE id IN ($1, $2, $3)", "SELECT id FROM t WHERE id IN (?)"),
    ('SELECT "col 1", "it\'s" FROM "t2"', 'SELECT "col 1", "it\'s" FROM "t2"'),
    ("SELECT 1 -- don't\nFROM t", "SELECT ? FROM t"),
    ("SELECT /* app='checkout' */ 1", "SELECT /* app='checkout' */ ?"),
    ("INSERT INTO t VALUES ('truncated by the serv", "INSERT INTO t VALUES (?"),
    ("SELECT '4111 1111'::text, 12::int", "SELECT ?::text, ?::int"),
])
def test_normalize_sql(sql: str, expected: str) -> None:
    assert normalize_sql(sql) == expected


def test_normalize_sql_mysql_escapes_and_double_quotes() -> None:
    assert normalize_sql("SELECT 'It\\'s', \"x\" FROM `t 1` WHERE a IN (1,2)", dialect="mysql") == \
        "SELECT ?, ? FROM `t 1` WHERE a IN (?)"


def test_normalize_sql_cuts_to_the_limit() -> None:
    cut = normalize_sql("SELECT " + ", ".join(f"column_{n}" for n in range(100)), limit=40)
    assert len(cut) == 40 and cut.endswith("…")
    assert normalize_sql("SELECT 1", limit=40) == "SELECT ?"
