"""MySQL and MariaDB diagnostics through PyMySQL, from information_schema and InnoDB's transaction tables.

The server limits our statements (MariaDB max_statement_time, MySQL max_execution_time) and PyMySQL's
socket timeouts back them up, so a check never waits on a server that stopped answering. The session is
READ ONLY and every check runs in its own read-only transaction.

What MySQL does not tell: there is no application name (connections are grouped by user and client host
instead), an idle session's last statement is not kept, and a transaction that has not touched an
InnoDB table yet is invisible to INNODB_TRX, so its session counts as plain idle. Other users' threads
and InnoDB's tables need the PROCESS privilege.

InnoDB's INNODB_TRX, INNODB_LOCKS and INNODB_LOCK_WAITS are one cached snapshot, refreshed only when
nobody has read it for 0.1 s (MySQL manual, 'Persistence and Consistency of InnoDB Transaction and
Locking Information'): read again within 0.1 s of any client's read, it still shows waits that have
ended, and a server that something polls non-stop keeps showing them. PROCESSLIST is live. So the
blocking check first makes sure the snapshot is newer than its own transaction (waiting out the 0.1 s
once if not), keeps only waiters that are still running a statement, and says so when the snapshot
stayed old.
Needs MySQL 8 or MariaDB 10.2+ (window functions).
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, LiteralString

import pymysql  # type: ignore[import-untyped]
from pymysql.connections import Connection  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

from bot.diagnostics.drivers.common import (
    APPLICATION_NAME,
    CHECKS,
    Capacity,
    CheckResult,
    CheckTimedOut,
    Figure,
    Session,
    Table,
    TargetError,
    TargetRefused,
    TargetUnreachable,
    check_timeouts,
    connections_result,
    describe_target,
    duration_text,
    normalize_sql,
    scrub,
    seconds,
    settings_value,
    unsupported,
)
from bot.wording import counted

DEFAULT_PORT = 3306
STATE_ORDER = ("active", "idle", "idle in transaction")
SSL_PARAMETERS = ("ssl_ca", "ssl_cert", "ssl_key")  # passed on from the URL

FULL = {1040: "too many connections", 1203: "max_user_connections", 1226: "user resource limit"}
UNREACHABLE = {2003, 2005, 2006, 2013}  # can't connect, unknown host, gone away, lost during handshake
STATEMENT_TIMEOUT = {1969, 3024}  # MariaDB max_statement_time, MySQL max_execution_time
NEEDS_PROCESS = {1227}  # "Access denied; you need (at least one of) the PROCESS privilege(s)"

SQL_THREADS_CONNECTED: LiteralString = "SHOW GLOBAL STATUS LIKE 'Threads_connected'"
SQL_MAX_CONNECTIONS: LiteralString = "SELECT @@GLOBAL.max_connections"

# System threads (event scheduler, InnoDB) are not client connections.
SQL_SESSIONS: LiteralString = """
SELECT p.COMMAND, p.USER, p.HOST, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), t.trx_state
FROM information_schema.PROCESSLIST p
LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
WHERE p.ID <> CONNECTION_ID() AND p.COMMAND <> 'Daemon' AND p.USER <> 'system user'"""

SQL_SESSIONS_WITHOUT_TRX: LiteralString = """
SELECT p.COMMAND, p.USER, p.HOST, NULL, NULL
FROM information_schema.PROCESSLIST p
WHERE p.ID <> CONNECTION_ID() AND p.COMMAND <> 'Daemon' AND p.USER <> 'system user'"""

SQL_IDLE_IN_TX: LiteralString = """
SELECT p.ID, p.USER, p.HOST, p.DB, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), p.TIME,
       t.trx_rows_locked, LEFT(t.trx_query, 2000), COUNT(*) OVER ()
FROM information_schema.INNODB_TRX t
JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
WHERE p.COMMAND = 'Sleep' AND t.trx_state = 'RUNNING' AND p.ID <> CONNECTION_ID()
ORDER BY t.trx_started, p.ID
LIMIT 20"""

# MariaDB has the duration in milliseconds, MySQL in whole seconds.
SQL_LONG_QUERIES_MARIADB: LiteralString = """
SELECT p.ID, p.USER, p.HOST, p.DB, p.TIME_MS / 1000, p.STATE, LEFT(p.INFO, 2000), COUNT(*) OVER ()
FROM information_schema.PROCESSLIST p
WHERE p.COMMAND IN ('Query', 'Execute') AND p.ID <> CONNECTION_ID()
ORDER BY 5 DESC, p.ID
LIMIT 10"""

SQL_LONG_QUERIES_MYSQL: LiteralString = """
SELECT p.ID, p.USER, p.HOST, p.DB, p.TIME, p.STATE, LEFT(p.INFO, 2000), COUNT(*) OVER ()
FROM information_schema.PROCESSLIST p
WHERE p.COMMAND IN ('Query', 'Execute') AND p.ID <> CONNECTION_ID()
ORDER BY 5 DESC, p.ID
LIMIT 10"""

# Lock waits: MariaDB (and MySQL 5.7) in information_schema, MySQL 8 in performance_schema.
# A row-lock wait happens inside a statement: a waiter that is gone or idle in the live PROCESSLIST is
# a wait that has ended, however InnoDB's cached snapshot still shows it.
_BLOCKING_COLUMNS: LiteralString = """
SELECT DISTINCT r.trx_mysql_thread_id, pr.USER, TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()),
       LEFT(r.trx_query, 2000), b.trx_mysql_thread_id, pb.USER, pb.COMMAND, LEFT(b.trx_query, 2000)"""
_BLOCKING_SESSIONS: LiteralString = """
JOIN information_schema.PROCESSLIST pr ON pr.ID = r.trx_mysql_thread_id AND pr.COMMAND IN ('Query', 'Execute')
LEFT JOIN information_schema.PROCESSLIST pb ON pb.ID = b.trx_mysql_thread_id"""
SQL_BLOCKING_INFORMATION_SCHEMA: LiteralString = f"""{_BLOCKING_COLUMNS}
FROM information_schema.INNODB_LOCK_WAITS w
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id{_BLOCKING_SESSIONS}"""
SQL_BLOCKING_PERFORMANCE_SCHEMA: LiteralString = f"""{_BLOCKING_COLUMNS}
FROM performance_schema.data_lock_waits w
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.REQUESTING_ENGINE_TRANSACTION_ID
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.BLOCKING_ENGINE_TRANSACTION_ID{_BLOCKING_SESSIONS}"""

# A consistent snapshot makes InnoDB list this read-only transaction in INNODB_TRX (a plain one is
# listed only once it reads an InnoDB table): seeing it there proves the cached snapshot is newer.
SQL_BEGIN_LISTED: LiteralString = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
SQL_OWN_TRANSACTION_LISTED: LiteralString = """
SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = CONNECTION_ID()"""
TRX_CACHE_IDLE_SECONDS = 0.15  # InnoDB refreshes the snapshot once unread for 0.1 s; a margin on top
STALE_LOCK_VIEW_NOTE = ("InnoDB's lock snapshot is older than this check: another client reads it more often "
                        "than every 0.1 s, which stops InnoDB refreshing it. Waits that began since are missing "
                        "and waits shown may have ended; run the check again in a moment")

SQL_SETTINGS: LiteralString = "SHOW GLOBAL VARIABLES WHERE Variable_name IN %s"
SETTINGS_COMMON = ("max_connections", "max_user_connections", "wait_timeout", "interactive_timeout",
                   "innodb_lock_wait_timeout")
SETTINGS_MARIADB = (*SETTINGS_COMMON, "max_statement_time", "lock_wait_timeout")
SETTINGS_MYSQL = (*SETTINGS_COMMON, "max_execution_time", "lock_wait_timeout")


class MissingPrivilege(TargetError):
    """The diagnostics user lacks PROCESS: the caller may fall back to what it can still see."""


def is_mariadb(connection: Connection) -> bool:
    # The handshake carries the server version (e.g. "5.5.5-10.11.19-MariaDB"): no query needed.
    return "mariadb" in connection.get_server_info().lower()


def _mysql_major(connection: Connection) -> int:
    match = re.match(r"(\d+)\.", connection.get_server_info())
    return int(match.group(1)) if match else 0


def _error_parts(exc: pymysql.MySQLError) -> tuple[int | None, str]:
    args = exc.args
    code = args[0] if args and isinstance(args[0], int) else None
    return code, str(args[1] if len(args) > 1 else (args[0] if args else exc))


def classify_connect_error(exc: pymysql.MySQLError, target: str, password: str | None) -> TargetError:
    """Map a failed connect to what it means for the people looking at the incident."""
    code, message = _error_parts(exc)
    message = scrub(message, password)
    if code in FULL:
        return TargetRefused(f"MySQL refused a new connection: it is at its connection limit "
                             f"({FULL[code]}, error {code}: {message})")
    if code in UNREACHABLE:
        return TargetUnreachable(f"could not reach MySQL at {target} (error {code}: {message})")
    return TargetError(f"MySQL at {target} did not accept the diagnostics connection (error {code}: {message})")


def _run_error(exc: pymysql.MySQLError, check: str) -> TargetError:
    code, message = _error_parts(exc)
    if code in STATEMENT_TIMEOUT:
        return CheckTimedOut(f"the '{check}' check was stopped by the server at the statement timeout "
                             "(the server may be overloaded)")
    if code == 2013 and "timed out" in message:
        return CheckTimedOut(f"the '{check}' check got no answer within the statement timeout")
    if code in NEEDS_PROCESS:
        return MissingPrivilege(f"the '{check}' check needs the PROCESS privilege for the diagnostics user")
    return TargetError(f"MySQL failed the '{check}' check (error {code}: {scrub(message, None)})")


def _fetch(connection: Connection, check: str, statement: LiteralString,
           params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one of this module's fixed statements, mapping server errors to TargetError kinds."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall())
    except pymysql.MySQLError as exc:
        raise _run_error(exc, check) from exc


class MySQLDriver:
    backend = "mysql"
    checks = CHECKS

    def connect(self, url: URL, *, connect_timeout: float, statement_timeout_ms: int) -> Connection:
        check_timeouts(connect_timeout, statement_timeout_ms)
        password = None if url.password is None else str(url.password)
        io_timeout = statement_timeout_ms / 1000 + 2  # the server's own limit should fire first
        ssl = {key: str(url.query[key]) for key in SSL_PARAMETERS if key in url.query}
        try:
            # PyMySQL's connect_timeout covers only the TCP connect: the read and write timeouts must
            # bound the handshake and login, so a server that accepts but never answers fails in time.
            connection = pymysql.connect(
                host=url.host or "localhost", port=url.port or DEFAULT_PORT, user=url.username or "",
                password=password or "", database=url.database, connect_timeout=connect_timeout,
                read_timeout=connect_timeout, write_timeout=connect_timeout, autocommit=False,
                charset="utf8mb4", program_name=APPLICATION_NAME, **ssl)  # program_name: connect attrs
        except pymysql.MySQLError as exc:
            raise classify_connect_error(exc, describe_target(url, DEFAULT_PORT), password) from None
        # From here on statements get the server's statement timeout plus a margin. PyMySQL reads these
        # attributes before every socket operation and offers no public setter.
        connection._read_timeout = connection._write_timeout = io_timeout
        try:
            _limit_session(connection, statement_timeout_ms)
        except TargetError:
            self.close(connection)
            raise
        return connection

    def run(self, connection: Connection, check: str) -> CheckResult:
        if check not in CHECKS:
            raise unsupported(self.backend, check, self.checks)
        _begin(connection, check)
        return _RUNNERS[check](connection)

    def close(self, connection: Connection) -> None:
        for step in (connection.rollback, connection.close):
            with contextlib.suppress(Exception):  # closing must never hide the finding being reported
                step()


def _limit_session(connection: Connection, statement_timeout_ms: int) -> None:
    """Statement timeout, short metadata-lock waits, read-only: refuse to go on without any of them."""
    if is_mariadb(connection):
        _fetch(connection, "connect", "SET SESSION max_statement_time = %s", [statement_timeout_ms / 1000])
    else:  # MySQL: applies to SELECT, which is all the checks run
        _fetch(connection, "connect", "SET SESSION max_execution_time = %s", [statement_timeout_ms])
    lock_wait_seconds = max(1, math.ceil(statement_timeout_ms / 1000))  # metadata locks, whole seconds
    _fetch(connection, "connect", "SET SESSION lock_wait_timeout = %s", [lock_wait_seconds])
    _fetch(connection, "connect", "SET SESSION TRANSACTION READ ONLY")
    _fetch(connection, "connect", "START TRANSACTION READ ONLY")


def _begin(connection: Connection, check: str) -> None:
    """A fresh read-only transaction for each check."""
    try:
        connection.rollback()
    except pymysql.MySQLError as exc:
        raise _run_error(exc, check) from exc
    _fetch(connection, check, "START TRANSACTION READ ONLY")


def _client(host: str | None) -> str | None:
    """PROCESSLIST's HOST without the client's port: 10.0.0.7:51234 -> 10.0.0.7."""
    if host is None:
        return None
    address, _, port = host.rpartition(":")
    return address if address and port.isdigit() else host


def _state(command: str, in_transaction: bool) -> str:
    if command == "Sleep":
        return "idle in transaction" if in_transaction else "idle"
    if command in ("Query", "Execute"):
        return "active"
    return command.lower()


def _session(command: str, user: str | None, host: str | None, transaction_age: int | None,
             trx_state: str | None) -> Session:
    state = _state(command, trx_state is not None)
    return Session(state=state, user=user, application=None, client=_client(host),
                   idle_in_transaction_seconds=(transaction_age or 0) if state == "idle in transaction" else None)


# --- connections -------------------------------------------------------------------------------------


def check_connections(connection: Connection) -> CheckResult:
    threads = int(_fetch(connection, "connections", SQL_THREADS_CONNECTED)[0][1])
    max_connections = int(_fetch(connection, "connections", SQL_MAX_CONNECTIONS)[0][0])
    notes = ["MySQL keeps no application name: connections are grouped by user and client host"]
    try:
        rows = _fetch(connection, "connections", SQL_SESSIONS)
    except MissingPrivilege:
        rows = _fetch(connection, "connections", SQL_SESSIONS_WITHOUT_TRX)
        notes.append("without the PROCESS privilege InnoDB's transactions are hidden: idle in transaction "
                     "cannot be told from idle")
    sessions = [_session(*row) for row in rows]
    # Threads_connected is what the server counts against max_connections; it includes us.
    # The one extra connection MySQL keeps for SUPER / CONNECTION ADMIN lies beyond max_connections,
    # so nothing is reserved out of it.
    capacity = Capacity(in_use=threads - 1, max_connections=max_connections, reserved=0)
    hidden = capacity.in_use - len(sessions)
    if hidden > 0:
        notes.append(f"{counted(hidden, 'connection')} counted by the server {'is' if hidden == 1 else 'are'} not visible to the diagnostics user: "
                     "it needs the PROCESS privilege to see other users' threads")
    return connections_result(capacity, sessions, state_order=STATE_ORDER, applications=False, notes=notes)


# --- idle in transaction -----------------------------------------------------------------------------


def check_idle_in_tx(connection: Connection) -> CheckResult:
    rows = _fetch(connection, "idle-in-tx", SQL_IDLE_IN_TX)
    count = int(rows[0][-1]) if rows else 0
    oldest = rows[0][4] if rows else None
    table = Table("Idle in a transaction, oldest first",
                  ["thread id", "user", "client", "database", "transaction age s", "idle for s", "rows locked",
                   "last query"],
                  [[thread, user, _client(host), db, age, idle, locked, _text(query)]
                   for thread, user, host, db, age, idle, locked, query, _ in rows])
    notes = []
    if rows and all(row[7] is None for row in rows):
        notes.append("MySQL does not keep the last statement of an idle session")
    if count:
        headline = f"{counted(count, 'session')} idle in a transaction; the oldest has been open {duration_text(oldest)}"
    else:
        headline = "No session is idle in a transaction"
    return CheckResult("idle-in-tx", headline, {"count": count, "oldest_seconds": oldest}, [table], notes)


# --- long queries ------------------------------------------------------------------------------------


def check_long_queries(connection: Connection) -> CheckResult:
    statement = SQL_LONG_QUERIES_MARIADB if is_mariadb(connection) else SQL_LONG_QUERIES_MYSQL
    rows = _fetch(connection, "long-queries", statement)
    count = int(rows[0][-1]) if rows else 0
    longest = seconds(rows[0][4]) if rows else None
    table = Table("Running statements, longest first",
                  ["thread id", "user", "client", "database", "running for s", "state", "query"],
                  [[thread, user, _client(host), db, seconds(duration), state or None, _text(query)]
                   for thread, user, host, db, duration, state, query, _ in rows])
    if count:
        headline = f"{counted(count, 'statement')} running; the longest for {duration_text(longest)}"
    else:
        headline = "No statement is running"
    return CheckResult("long-queries", headline, {"count": count, "longest_seconds": longest}, [table])


# --- blocking ----------------------------------------------------------------------------------------


def check_blocking(connection: Connection) -> CheckResult:
    """Row-lock waits, longest first, each with the session that blocks it.

    Figures: blocked (sessions waiting), longest_wait_seconds (None when nobody waits). Only waiters
    the live PROCESSLIST still shows running a statement are counted; a note says when InnoDB's
    snapshot stayed older than the check (see the module docstring).
    """
    fresh = _lock_snapshot_is_fresh(connection)
    mysql8 = not is_mariadb(connection) and _mysql_major(connection) >= 8
    statement = SQL_BLOCKING_PERFORMANCE_SCHEMA if mysql8 else SQL_BLOCKING_INFORMATION_SCHEMA
    waits = _fetch(connection, "blocking", statement)
    rows: list[list[Any]] = [
        [waiter, user, seconds(waited), _text(query), blocker, b_user,
         None if b_command is None else _state(b_command, in_transaction=True), _text(b_query)]
        for waiter, user, waited, query, blocker, b_user, b_command, b_query in waits]
    rows.sort(key=lambda row: (-(row[2] or 0), row[0]))
    blocked = len({row[0] for row in rows})
    longest = rows[0][2] if rows else None
    table = Table("Blocked sessions and who blocks them",
                  ["blocked thread", "blocked user", "blocked for s", "blocked query", "blocking thread",
                   "blocking user", "blocking state", "blocking query"], rows)
    return CheckResult("blocking", _blocking_headline(rows, blocked, longest),
                       {"blocked": blocked, "longest_wait_seconds": longest}, [table],
                       [] if fresh else [STALE_LOCK_VIEW_NOTE])


def _lock_snapshot_is_fresh(connection: Connection) -> bool:
    """Whether InnoDB's cached transaction and lock snapshot was taken after this check began.

    Starts the check's transaction so that InnoDB lists it, then looks for it. Missing means another
    client read the snapshot within the last 0.1 s: wait that out once and look again. Still missing
    means someone reads it non-stop and it will not be refreshed for us.
    """
    _fetch(connection, "blocking", SQL_BEGIN_LISTED)
    for attempt in range(2):
        if attempt:
            time.sleep(TRX_CACHE_IDLE_SECONDS)
        if _fetch(connection, "blocking", SQL_OWN_TRANSACTION_LISTED)[0][0]:
            return True
    return False


def _blocking_headline(rows: list[list[Any]], blocked: int, longest: float | None) -> str:
    if not rows:
        return "No session is waiting on a row lock held by another"
    waiting = {row[0] for row in rows}
    roots = sorted({(row[4], row[6] or "unknown state") for row in rows if row[4] not in waiting})
    headline = f"{counted(blocked, 'session')} blocked, the longest for {duration_text(longest)}"
    if roots:
        headline += "; blocked by thread " + ", ".join(f"{thread} ({state})" for thread, state in roots[:3])
    return headline


# --- settings ----------------------------------------------------------------------------------------


def check_settings(connection: Connection) -> CheckResult:
    names = SETTINGS_MARIADB if is_mariadb(connection) else SETTINGS_MYSQL
    values = dict(_fetch(connection, "settings", SQL_SETTINGS, [names]))
    present = [name for name in names if name in values]
    figures: dict[str, Figure] = {name: settings_value(values[name]) for name in present}
    table = Table("Settings (global values)", ["setting", "value"], [[name, values[name]] for name in present])
    headline = ", ".join(f"{name} {figures[name]}" for name in present[:3])
    return CheckResult("settings", headline, figures, [table])


def _text(query: str | None) -> str | None:
    return None if query is None else normalize_sql(query, dialect="mysql")


_RUNNERS: dict[str, Callable[[Connection], CheckResult]] = {
    "connections": check_connections,
    "idle-in-tx": check_idle_in_tx,
    "long-queries": check_long_queries,
    "blocking": check_blocking,
    "settings": check_settings,
}
