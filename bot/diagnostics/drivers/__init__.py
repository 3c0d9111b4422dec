"""Read-only database diagnostics drivers, one module per backend.

During an outage `/incident diag <check> <target>` must show who holds the connections without making a
struggling database worse. A driver therefore opens exactly one new connection (no pool), read-only,
with a server-side statement timeout, and runs only the fixed checks in CHECKS.

    driver = driver_for(url)
    connection = driver.connect(url, connect_timeout=5, statement_timeout_ms=3000)
    try:
        result = driver.run(connection, "connections")
    finally:
        driver.close(connection)

Backend modules are imported when first asked for, so PyMySQL is only needed to diagnose MySQL.
"""

from __future__ import annotations

from sqlalchemy.engine import URL

from bot.diagnostics.drivers.common import (
    APPLICATION_NAME,
    CHECKS,
    CheckResult,
    CheckTimedOut,
    Driver,
    Table,
    TargetError,
    TargetRefused,
    TargetUnreachable,
    UnsupportedCheck,
    normalize_sql,
)

__all__ = [
    "APPLICATION_NAME", "CHECKS", "CheckResult", "CheckTimedOut", "Driver", "Table", "TargetError",
    "TargetRefused", "TargetUnreachable", "UnsupportedCheck", "driver_for", "normalize_sql",
]

SUPPORTED_BACKENDS = ("postgresql", "mysql", "mariadb", "sqlite")


def driver_for(url: URL) -> Driver:
    """The driver for a target's URL, chosen by its backend name (the dialect, not the DBAPI)."""
    backend = url.get_backend_name()
    if backend == "postgresql":
        from bot.diagnostics.drivers.postgres import PostgresDriver

        return PostgresDriver()
    if backend in ("mysql", "mariadb"):
        from bot.diagnostics.drivers.mysql import MySQLDriver

        return MySQLDriver()
    if backend == "sqlite":
        from bot.diagnostics.drivers.sqlite import SQLiteDriver

        return SQLiteDriver()
    raise TargetError(f"diagnostics are not available for '{backend}' databases "
                      f"(supported: {', '.join(SUPPORTED_BACKENDS)})")
