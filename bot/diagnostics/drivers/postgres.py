"""PostgreSQL diagnostics through psycopg 3, from pg_stat_activity, pg_settings and pg_blocking_pids().

The connection protects the server from us: the statement, lock and idle-in-transaction timeouts and
read-only mode are startup options, so they hold from the first statement and the server enforces them
even if the bot hangs. Every check starts its own READ ONLY transaction, because PostgreSQL freezes
pg_stat_activity and now() for the length of a transaction.

Sessions of other roles show no state or query unless the diagnostics role has pg_read_all_stats
(or pg_monitor); they are still counted, and a note says so.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any, LiteralString

import psycopg
from psycopg import errors
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

DEFAULT_PORT = 5432
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")
STATE_ORDER = ("active", "idle", *IDLE_IN_TRANSACTION)
SSL_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl")  # passed on from the URL
SETTINGS = ("max_connections", "superuser_reserved_connections", "reserved_connections", "statement_timeout",
            "idle_in_transaction_session_timeout", "idle_session_timeout", "lock_timeout", "tcp_keepalives_idle")
HEADLINE_SETTINGS = ("max_connections", "statement_timeout", "idle_in_transaction_session_timeout")

# The server's own words when it is full (SQLSTATE 53300, too_many_connections).
FULL_MESSAGES = ("too many clients already", "too many connections for role",
                 "too many connections for database", "remaining connection slots are reserved")
UNREACHABLE_MESSAGES = ("connection refused", "timeout expired", "timed out", "could not translate host name",
                        "name or service not known", "no route to host", "network is unreachable",
                        "could not connect", "no such file or directory", "server closed the connection")

# Client backends are what max_connections limits. Without pg_read_all_stats, other roles' backends
# hide their backend_type; a hidden row with a database and a role is one of them.
_CLIENT_BACKEND: LiteralString = """(a.backend_type = 'client backend'
        OR (a.backend_type IS NULL AND a.datid IS NOT NULL AND a.usesysid IS NOT NULL))"""
_CLIENT: LiteralString = """CASE WHEN a.client_addr IS NOT NULL THEN host(a.client_addr)
            WHEN a.client_port = -1 THEN 'local socket' END"""

SQL_CAPACITY: LiteralString = """
SELECT name, setting::int FROM pg_settings
WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')"""

SQL_SESSIONS: LiteralString = f"""
SELECT a.state, a.usename, a.application_name, {_CLIENT},
       floor(extract(epoch FROM clock_timestamp() - a.xact_start))::int
FROM pg_stat_activity a
WHERE a.pid <> pg_backend_pid() AND {_CLIENT_BACKEND}"""

SQL_IDLE_IN_TX: LiteralString = f"""
SELECT a.pid, a.application_name, a.usename, {_CLIENT},
       floor(extract(epoch FROM clock_timestamp() - a.xact_start))::int,
       floor(extract(epoch FROM clock_timestamp() - a.state_change))::int,
       left(a.query, 2000), count(*) OVER ()
FROM pg_stat_activity a
WHERE a.pid <> pg_backend_pid()
  AND a.state IN ('idle in transaction', 'idle in transaction (aborted)')
ORDER BY a.xact_start NULLS LAST, a.pid
LIMIT 20"""

SQL_LONG_QUERIES: LiteralString = f"""
SELECT a.pid, a.usename, a.application_name, {_CLIENT},
       extract(epoch FROM clock_timestamp() - a.query_start)::float8,
       concat_ws(': ', a.wait_event_type, a.wait_event), left(a.query, 2000), count(*) OVER ()
FROM pg_stat_activity a
WHERE a.pid <> pg_backend_pid() AND a.state = 'active' AND a.backend_type = 'client backend'
ORDER BY a.query_start NULLS LAST, a.pid
LIMIT 10"""

# pg_blocking_pids() briefly locks the lock manager: only call it for sessions waiting on a lock.
SQL_LOCK_WAITERS: LiteralString = """
SELECT a.pid, a.usename, extract(epoch FROM clock_timestamp() - a.state_change)::float8,
       left(a.query, 2000), pg_blocking_pids(a.pid)
FROM pg_stat_activity a
WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()"""

SQL_SESSIONS_BY_PID: LiteralString = """
SELECT a.pid, a.usename, a.state, left(a.query, 2000) FROM pg_stat_activity a WHERE a.pid = ANY(%s)"""

# pg_locks.waitstart (PostgreSQL 14+) says when the wait began, not just when the statement did.
SQL_WAIT_STARTS: LiteralString = """
SELECT l.pid, extract(epoch FROM clock_timestamp() - min(l.waitstart))::float8
FROM pg_locks l WHERE l.pid = ANY(%s) AND NOT l.granted GROUP BY l.pid"""

SQL_SETTINGS: LiteralString = """
SELECT s.name, current_setting(s.name), s.source, s.boot_val, s.unit,
       has_table_privilege('pg_catalog.pg_file_settings', 'SELECT')
FROM pg_settings s WHERE s.name = ANY(%s) ORDER BY array_position(%s, s.name::text)"""

SQL_SETTING_OVERRIDES: LiteralString = """
SELECT coalesce(r.rolname, '(all roles)'), coalesce(d.datname, '(all databases)'),
       s.setrole = 0, d.datname = current_database(),
       split_part(c.entry, '=', 1), substr(c.entry, strpos(c.entry, '=') + 1)
FROM pg_db_role_setting s
CROSS JOIN LATERAL unnest(s.setconfig) AS c(entry)
LEFT JOIN pg_roles r ON r.oid = s.setrole
LEFT JOIN pg_database d ON d.oid = s.setdatabase
WHERE split_part(c.entry, '=', 1) = ANY(%s)
ORDER BY 1, 2, 5"""

SQL_FILE_SETTINGS: LiteralString = """
SELECT name, setting FROM pg_file_settings WHERE applied AND name = ANY(%s)"""


def startup_options(statement_timeout_ms: int) -> str:
    """Server-side limits for our session, enforced from its first statement."""
    idle_ms = 2 * statement_timeout_ms + 1000  # the server ends our session if the bot stalls mid-check
    return (f"-c statement_timeout={statement_timeout_ms} -c lock_timeout={statement_timeout_ms} "
            f"-c idle_in_transaction_session_timeout={idle_ms} -c default_transaction_read_only=on")


def classify_connect_error(message: str, target: str) -> TargetError:
    """Map psycopg's connection failure text to what it means for the people looking at the incident."""
    lowered = message.lower()
    if any(text in lowered for text in FULL_MESSAGES):
        server_words = message.rpartition("FATAL:")[2].strip()  # past libpq's "connection to server at …"
        return TargetRefused(f"PostgreSQL refused a new connection: it is at its connection limit ({server_words})")
    if any(text in lowered for text in UNREACHABLE_MESSAGES):
        return TargetUnreachable(f"could not reach PostgreSQL at {target}: {message}")
    return TargetError(f"PostgreSQL at {target} did not accept the diagnostics connection: {message}")


def _fetch(connection: psycopg.Connection[Any], check: str, statement: LiteralString,
           params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one of this module's fixed statements, mapping server errors to TargetError kinds."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    except errors.QueryCanceled as exc:
        raise CheckTimedOut(f"the '{check}' check was cancelled by PostgreSQL at the statement timeout "
                            "(the server may be overloaded)") from exc
    except errors.LockNotAvailable as exc:
        raise CheckTimedOut(f"the '{check}' check gave up waiting for a lock (lock timeout)") from exc
    except psycopg.Error as exc:
        raise TargetError(f"PostgreSQL failed the '{check}' check: {scrub(exc, None)}") from exc


class PostgresDriver:
    backend = "postgresql"
    checks = CHECKS

    def connect(self, url: URL, *, connect_timeout: float, statement_timeout_ms: int) -> psycopg.Connection[Any]:
        check_timeouts(connect_timeout, statement_timeout_ms)
        ssl: dict[str, Any] = {key: str(url.query[key]) for key in SSL_PARAMETERS if key in url.query}
        try:
            connection = psycopg.connect(
                host=url.host or "localhost", port=url.port or DEFAULT_PORT, user=url.username,
                password=url.password, dbname=url.database, connect_timeout=math.ceil(connect_timeout),
                application_name=APPLICATION_NAME, options=startup_options(statement_timeout_ms), **ssl)
        except psycopg.Error as exc:
            password = None if url.password is None else str(url.password)
            raise classify_connect_error(scrub(exc, password), describe_target(url, DEFAULT_PORT)) from None
        connection.read_only = True  # every transaction psycopg opens is BEGIN READ ONLY
        try:  # open it now, which also proves the session answers within the timeout
            _fetch(connection, "connect", "SET TRANSACTION READ ONLY")
        except TargetError:
            self.close(connection)
            raise
        return connection

    def run(self, connection: psycopg.Connection[Any], check: str) -> CheckResult:
        if check not in CHECKS:
            raise unsupported(self.backend, check, self.checks)
        _begin(connection, check)
        return _RUNNERS[check](connection)

    def close(self, connection: psycopg.Connection[Any]) -> None:
        for step in (connection.rollback, connection.close):
            with contextlib.suppress(Exception):  # closing must never hide the finding being reported
                step()


def _begin(connection: psycopg.Connection[Any], check: str) -> None:
    """End whatever transaction is open: the check's first statement opens a fresh READ ONLY one, with a
    fresh pg_stat_activity snapshot and clock."""
    try:
        connection.rollback()
    except psycopg.Error as exc:  # e.g. the server ended the session at idle_in_transaction_session_timeout
        raise TargetError(f"the diagnostics connection to PostgreSQL was lost before the '{check}' check: "
                          f"{scrub(exc, None)}") from exc


# --- connections -------------------------------------------------------------------------------------


def check_connections(connection: psycopg.Connection[Any]) -> CheckResult:
    limits = dict(_fetch(connection, "connections", SQL_CAPACITY))
    rows = _fetch(connection, "connections", SQL_SESSIONS)
    sessions = [_session(*row) for row in rows]
    capacity = Capacity(
        in_use=len(sessions),
        max_connections=limits["max_connections"],
        reserved=limits.get("superuser_reserved_connections", 0) + limits.get("reserved_connections", 0))
    return connections_result(capacity, sessions, state_order=STATE_ORDER, applications=True,
                              notes=_hidden_sessions_note(sessions))


def _session(state: str | None, user: str | None, application: str | None, client: str | None,
             transaction_age: int | None) -> Session:
    idle_tx = state in IDLE_IN_TRANSACTION
    return Session(state=state or "unknown (not visible to this role)", user=user, application=application,
                   client=client, idle_in_transaction_seconds=(transaction_age or 0) if idle_tx else None)


def _hidden_sessions_note(sessions: list[Session]) -> list[str]:
    hidden = sum(1 for s in sessions if s.state.startswith("unknown"))
    if not hidden:
        return []
    return [(f"{counted(hidden, 'session')} of other roles {'is' if hidden == 1 else 'are'} counted but their state, application and query are hidden: "
             "grant pg_read_all_stats (or pg_monitor) to the diagnostics role to see them")]


# --- idle in transaction -----------------------------------------------------------------------------


def check_idle_in_tx(connection: psycopg.Connection[Any]) -> CheckResult:
    rows = _fetch(connection, "idle-in-tx", SQL_IDLE_IN_TX)
    count = rows[0][-1] if rows else 0
    oldest = rows[0][4] if rows else None
    table = Table("Idle in a transaction, oldest first",
                  ["pid", "application", "user", "client", "transaction age s", "idle for s", "last query"],
                  [[pid, app, user, client, age, idle, _text(query)]
                   for pid, app, user, client, age, idle, query, _ in rows])
    if count:
        headline = f"{counted(count, 'session')} idle in a transaction; the oldest has been open {duration_text(oldest)}"
    else:
        headline = "No session is idle in a transaction"
    return CheckResult("idle-in-tx", headline, {"count": count, "oldest_seconds": oldest}, [table])


# --- long queries ------------------------------------------------------------------------------------


def check_long_queries(connection: psycopg.Connection[Any]) -> CheckResult:
    rows = _fetch(connection, "long-queries", SQL_LONG_QUERIES)
    count = rows[0][-1] if rows else 0
    longest = seconds(rows[0][4]) if rows else None
    table = Table("Running statements, longest first",
                  ["pid", "user", "application", "client", "running for s", "waiting on", "query"],
                  [[pid, user, app, client, seconds(duration), wait or None, _text(query)]
                   for pid, user, app, client, duration, wait, query, _ in rows])
    if count:
        headline = f"{counted(count, 'statement')} running; the longest for {duration_text(longest)}"
    else:
        headline = "No statement is running"
    return CheckResult("long-queries", headline, {"count": count, "longest_seconds": longest}, [table])


# --- blocking ----------------------------------------------------------------------------------------


def check_blocking(connection: psycopg.Connection[Any]) -> CheckResult:
    waiters = [row for row in _fetch(connection, "blocking", SQL_LOCK_WAITERS) if row[4]]
    if not waiters:
        return CheckResult("blocking", "No session is waiting on a lock held by another",
                           {"blocked": 0, "longest_wait_seconds": None}, [_blocking_table([])])
    blocker_pids = sorted({pid for *_, pids in waiters for pid in pids})
    blockers = {row[0]: row[1:] for row in _fetch(connection, "blocking", SQL_SESSIONS_BY_PID, [blocker_pids])}
    waited = _wait_seconds(connection, [row[0] for row in waiters])
    rows: list[list[Any]] = []
    for pid, user, active_for, query, pids in waiters:
        for blocker in pids:
            b_user, _, b_query = blockers.get(blocker, (None, None, None))
            rows.append([pid, user, seconds(waited.get(pid, active_for)), _text(query), blocker, b_user,
                         _state_of(blockers, blocker), _text(b_query)])
    rows.sort(key=lambda row: -(row[2] or 0))
    longest = rows[0][2]
    roots = sorted(set(blocker_pids) - {row[0] for row in waiters})
    headline = f"{counted(len(waiters), 'session')} blocked, the longest for {duration_text(longest)}"
    if roots:
        headline += "; blocked by pid " + ", ".join(
            f"{pid} ({_state_of(blockers, pid)})" for pid in roots[:3])
    return CheckResult("blocking", headline, {"blocked": len(waiters), "longest_wait_seconds": longest},
                       [_blocking_table(rows)])


def _state_of(blockers: dict[int, tuple[Any, ...]], pid: int) -> str:
    if pid == 0:
        return "prepared transaction"
    _, state, _ = blockers.get(pid, (None, None, None))
    return state or "state not visible"


def _blocking_table(rows: list[list[Any]]) -> Table:
    return Table("Blocked sessions and who blocks them",
                 ["blocked pid", "blocked user", "blocked for s", "blocked query", "blocking pid",
                  "blocking user", "blocking state", "blocking query"], rows)


def _wait_seconds(connection: psycopg.Connection[Any], pids: list[int]) -> dict[int, float]:
    if not pids or connection.info.server_version < 140000:
        return {}
    return {pid: float(age) for pid, age in _fetch(connection, "blocking", SQL_WAIT_STARTS, [pids])
            if age is not None}


# --- settings ----------------------------------------------------------------------------------------


def check_settings(connection: psycopg.Connection[Any]) -> CheckResult:
    names = list(SETTINGS)
    rows = _fetch(connection, "settings", SQL_SETTINGS, [names, names])
    overrides = _fetch(connection, "settings", SQL_SETTING_OVERRIDES, [names])
    ours = [name for name, _, source, *_ in rows if source == "client"]
    file_readable = bool(rows and rows[0][5])
    from_file = dict(_fetch(connection, "settings", SQL_FILE_SETTINGS, [ours])) if ours and file_readable else {}
    figures: dict[str, Figure] = {}
    table_rows: list[list[Any]] = []
    for name, value, source, boot_value, unit, _ in rows:
        if source == "client":  # our own safety limit: report what the server would give anyone else
            value, source = _server_value(name, overrides, from_file, boot_value, unit)
        figures[name] = settings_value(value)
        table_rows.append([name, value, source])
    tables = [Table("Settings", ["setting", "value", "source"], table_rows)]
    if overrides:
        tables.append(Table("Set per role or database (ALTER ROLE / ALTER DATABASE … SET)",
                            ["role", "database", "setting", "value"],
                            [[role, db, name, value] for role, db, _, _, name, value in overrides]))
    notes = _settings_notes(ours, file_readable, bool(overrides))
    headline = ", ".join(f"{name} {figures[name]}" for name in HEADLINE_SETTINGS if name in figures)
    return CheckResult("settings", headline, figures, tables, notes)


def _server_value(name: str, overrides: list[tuple[Any, ...]], from_file: dict[str, str], boot_value: str,
                  unit: str | None) -> tuple[str, str]:
    """The value a new session gets without our startup options: database-wide, then file, then built in."""
    for _, _, all_roles, this_database, setting, value in overrides:
        if setting == name and all_roles and this_database:
            return value, "database"
    for _, _, all_roles, this_database, setting, value in overrides:
        if setting == name and all_roles and this_database is None:
            return value, "all databases"
    if name in from_file:
        return from_file[name], "configuration file"
    shown = boot_value if not unit or boot_value == "0" else f"{boot_value}{unit}"
    return shown, "default"


def _settings_notes(ours: list[str], file_readable: bool, overridden_per_role: bool) -> list[str]:
    if not ours:
        return []
    note = (f"{', '.join(ours)}: this diagnostics session runs with its own safety limits, so these show "
            "the value other sessions get from the server")
    if overridden_per_role:
        note += "; the per-role and per-database settings listed below take precedence for those sessions"
    notes = [note]
    if not file_readable:
        notes.append("the configuration file is not readable by this role: values not set per database show "
                     "the built-in default")
    return notes


def _text(query: str | None) -> str | None:
    return None if query is None else normalize_sql(query)


_RUNNERS: dict[str, Callable[[psycopg.Connection[Any]], CheckResult]] = {
    "connections": check_connections,
    "idle-in-tx": check_idle_in_tx,
    "long-queries": check_long_queries,
    "blocking": check_blocking,
    "settings": check_settings,
}
