"""Core statements run on the driver's own cursor, for the few paths where SQLAlchemy's execution path
costs more than the statement: a slash command's write, which Slack's answer waits on.

SQLAlchemy compiles the statement once per dialect; what it would do on each execution (bind each value
through its column type, and read each result value back through it) is done here with the same type
processors, so values are stored and read exactly as the ORM stores and reads them. Measured on the
2-core machine, a note's write on SQLite, each after 50 ms idle as at 20 commands/s: 1.9 ms p50 through
an ORM session, 1.45 ms through `Connection.execute`, 1.2 ms on the driver (bench/README.md,
`ack_latency.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select

Processor = Callable[[Any], Any] | None
Statement = UpdateBase | Select[Any]


@contextmanager
def as_sqlalchemy_raises(connection: Connection, sql: str) -> Iterator[None]:
    """A driver's error inside, raised as SQLAlchemy raises it from `Connection.execute`: wrapped in its
    DBAPIError class (OperationalError...), which callers that can wait for the store catch
    (STORE_UNAVAILABLE), and, when it means the connection is lost, with the connection invalidated, so
    that the pool does not hand it out again."""
    dialect = connection.dialect
    base = dialect.loaded_dbapi.Error
    try:
        yield
    except base as error:
        lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, None)
        if lost:
            connection.invalidate(error)
        raise exc.DBAPIError.instance(sql, None, error, base, connection_invalidated=lost, dialect=dialect) from error


def driver_rows(connection: Connection, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
    """One statement on the driver's own cursor, in the connection's transaction: the rows it returned
    (none for a statement without a result), errors raised as SQLAlchemy raises them."""
    cursor = connection.connection.cursor()
    try:
        with as_sqlalchemy_raises(connection, sql):
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description is not None else []
    finally:
        cursor.close()


class DriverStatement:
    """An INSERT, UPDATE or DELETE (with or without RETURNING), or a SELECT (with data-modifying WITH
    queries, say), compiled for each dialect on first use.

    `rows(connection, params)`: the RETURNING rows as tuples, in the statement's column order, each
    value as its column type gives it (an aware UTC datetime for UTCDateTime, a decoded JSON value...).
    `params` maps each `bindparam` name to a Python value; a value the statement holds itself (a literal
    in a WHERE clause) need not be given. Runs in the connection's transaction.

    `statement`: the statement, or a function of the dialect's name that builds it (for a dialect's own
    construct, such as INSERT … ON CONFLICT)."""

    def __init__(self, statement: Statement | Callable[[str], Statement]) -> None:
        self._build = statement if callable(statement) else lambda _: statement
        self._compiled: dict[str, _Compiled] = {}

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled.setdefault(dialect.name, _Compiled(self._build(dialect.name), dialect))
        return compiled.run(connection, params)


class _Compiled:
    def __init__(self, statement: Statement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = list(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        names = compiled.bind_names  # each parameter as named in the SQL
        self.processors: dict[str, Processor] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect) for bind, name in names.items()}
        # The values the statement holds itself, bound once here rather than at every run.
        self.defaults = {name: self._bound(name, bind.effective_value) for bind, name in names.items() if not bind.required}
        self.results: list[Processor] = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                                         for column in statement.exported_columns]

    def _bound(self, name: str, value: Any) -> Any:
        process = self.processors[name]
        return process(value) if process is not None else value

    def run(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        bound = {**self.defaults, **{name: self._bound(name, value) for name, value in params.items() if name in self.processors}}
        rows = driver_rows(connection, self.sql, [bound[name] for name in self.order] if self.order is not None else bound)
        if not any(self.results):
            return [tuple(row) for row in rows]
        return [tuple(process(value) if process is not None else value for process, value in zip(self.results, row, strict=True))
                for row in rows]
