"""SQLite diagnostics: only what applies to a file database, its settings and size.

SQLite has no server, so no connections, sessions or lock graph to look at: those checks are
unsupported. The file is opened read-only (`mode=ro` URI) with `query_only` on; the statement timeout is
a progress handler that interrupts a statement past its deadline, and the busy timeout is the same
length, so a writer holding the file never keeps a check waiting longer.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, LiteralString

from sqlalchemy.engine import URL

from bot.diagnostics.drivers.common import (
    CheckResult,
    CheckTimedOut,
    Figure,
    Table,
    TargetError,
    TargetUnreachable,
    check_timeouts,
    scrub,
    unsupported,
)

SETTINGS: tuple[LiteralString, ...] = ("journal_mode", "busy_timeout", "page_size", "page_count",
                                       "freelist_count", "foreign_keys")
PROGRESS_EVERY = 1000  # virtual machine instructions between deadline checks


class DiagnosticsConnection(sqlite3.Connection):
    """A sqlite3 connection that remembers its statement timeout, which SQLite itself has no notion of."""

    statement_timeout_ms: int = 0


def _fetch(connection: DiagnosticsConnection, check: str, statement: LiteralString) -> list[tuple[Any, ...]]:
    """Run one of this module's fixed statements under the statement timeout."""
    deadline = time.monotonic() + connection.statement_timeout_ms / 1000
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), PROGRESS_EVERY)
    try:
        return connection.execute(statement).fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc) or "locked" in str(exc):
            raise CheckTimedOut(f"the '{check}' check did not finish within the statement timeout "
                                f"({scrub(exc, None)})") from exc
        raise TargetError(f"SQLite failed the '{check}' check: {scrub(exc, None)}") from exc
    except sqlite3.Error as exc:
        raise TargetError(f"SQLite failed the '{check}' check: {scrub(exc, None)}") from exc
    finally:
        connection.set_progress_handler(None, PROGRESS_EVERY)


class SQLiteDriver:
    backend = "sqlite"
    checks: tuple[str, ...] = ("settings",)

    def connect(self, url: URL, *, connect_timeout: float, statement_timeout_ms: int) -> DiagnosticsConnection:
        check_timeouts(connect_timeout, statement_timeout_ms)
        if not url.database or url.database == ":memory:":
            raise TargetError("an in-memory SQLite database belongs to its own process and cannot be diagnosed")
        path = Path(url.database).resolve()
        try:
            connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=statement_timeout_ms / 1000,
                                         factory=DiagnosticsConnection, check_same_thread=False)
        except sqlite3.Error as exc:
            raise TargetUnreachable(f"could not open the SQLite database {path}: {scrub(exc, None)}") from None
        connection.statement_timeout_ms = statement_timeout_ms
        try:
            _fetch(connection, "connect", "PRAGMA query_only = ON")
            _fetch(connection, "connect", "SELECT count(*) FROM sqlite_master")  # is it a database at all?
        except TargetError:
            self.close(connection)
            raise
        return connection

    def run(self, connection: DiagnosticsConnection, check: str) -> CheckResult:
        if check not in self.checks:
            raise unsupported("SQLite (a file, not a server)", check, self.checks)
        return _RUNNERS[check](connection)

    def close(self, connection: DiagnosticsConnection) -> None:
        for step in (connection.rollback, connection.close):
            with contextlib.suppress(Exception):  # closing must never hide the finding being reported
                step()


def check_settings(connection: DiagnosticsConnection) -> CheckResult:
    figures: dict[str, Figure] = {}
    for name in SETTINGS:
        rows = _fetch(connection, "settings", f"PRAGMA {name}")
        figures[name] = rows[0][0] if rows else None
    size = _size_bytes(figures)
    size_text = "size unknown" if size is None else f"{size / 1048576:.1f} MiB"
    headline = (f"journal_mode {figures['journal_mode']}, {size_text} "
                f"({figures['freelist_count']} of {figures['page_count']} pages free)")
    notes = [("busy_timeout and foreign_keys are set per connection: these are the diagnostics connection's, "
              "not the application's")]
    table = Table("Settings", ["setting", "value"], [[name, value] for name, value in figures.items()])
    return CheckResult("settings", headline, figures, [table], notes)


def _size_bytes(figures: dict[str, Figure]) -> int | None:
    pages, page_size = figures.get("page_count"), figures.get("page_size")
    return pages * page_size if isinstance(pages, int) and isinstance(page_size, int) else None


_RUNNERS: dict[str, Callable[[DiagnosticsConnection], CheckResult]] = {"settings": check_settings}
