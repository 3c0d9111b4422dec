"""The PostgreSQL the demo's connection leak happens in: the one asked for, the local one, or a throwaway
one started from the installed binaries; and the leak itself, connections left idle in a transaction."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from storage.database import safe_url

LEAK_APP = "checkout-web v4512"  # the leak's application_name: how it shows in pg_stat_activity
LEAK_SIZE = 12
SPARE_CONNECTIONS = 10  # a shared server must keep this many connections free after the leak
LOCAL_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
)


class Unusable(Exception):
    """Why a PostgreSQL cannot be used for the leak, in a few words."""


def find_postgres(stack: contextlib.ExitStack, diag_url: str | None) -> tuple[str | None, str]:
    """A PostgreSQL to leak into (the one asked for, else the local one, else a throwaway one) and a line
    for the reader; None and why when there is none."""
    tried: list[str] = []
    for url in [diag_url] if diag_url else LOCAL_URLS:
        try:
            _probe(url)
            return url, f"The leak happens in the PostgreSQL at {shown_url(url)}."
        except Unusable as why:
            tried.append(f"{shown_url(url)}: {why}")
    if diag_url is None:
        try:
            throwaway = ThrowawayPostgres.find()
            stack.callback(throwaway.stop)  # before starting: a half-started server is stopped too
            throwaway.start()
            _probe(throwaway.url)
            return throwaway.url, (f"No PostgreSQL at 127.0.0.1:5432; the leak happens in a throwaway one at "
                                   f"127.0.0.1:{throwaway.port}, removed at the end.")
        except Unusable as why:
            tried.append(f"a throwaway one: {why}")
    return None, (f"No usable PostgreSQL for the leak ({'; '.join(tried)}): the story is told without the leak, "
                  "the watchdog and /incident diag. Pass --diag-url postgresql+psycopg://USER@HOST:PORT/DB to use one.")


def _connect_args(url: str) -> dict[str, Any]:
    """psycopg's connection arguments from a SQLAlchemy URL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise Unusable("not a SQLAlchemy URL") from None
    if parsed.get_backend_name() != "postgresql":
        raise Unusable("not a PostgreSQL URL (the leak is PostgreSQL's)")
    args: dict[str, Any] = parsed.translate_connect_args(username="user", database="dbname")
    args.update({key: value for key, value in parsed.query.items() if isinstance(value, str)})
    return args


def _probe(url: str) -> None:
    """Raises Unusable unless the server answers and has room for the leak and some to spare."""
    room = """SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
                     - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int"""
    try:
        with psycopg.connect(**_connect_args(url), connect_timeout=3, autocommit=True,
                             application_name="incident-bot-demo") as connection:
            row = connection.execute(room).fetchone()
    except psycopg.Error as error:
        raise Unusable(first_line(error)) from None
    free = int(row[0]) if row else 0
    if free < LEAK_SIZE + SPARE_CONNECTIONS:
        raise Unusable(f"only {free} connections free, and the leak takes {LEAK_SIZE}")


class Leak:
    """The deployment's bug: connections that begin a transaction and are never given back. It grows
    on one thread (the deployment serving requests) while the story closes it on another."""

    def __init__(self, url: str, *, held_for_at_most: int = 300) -> None:
        """`held_for_at_most`: seconds after which the server itself ends a leaked connection, should
        this process hang before closing them (PostgreSQL's idle_in_transaction_session_timeout)."""
        self._args = _connect_args(url)
        self._timeout_ms = held_for_at_most * 1000
        self._connections: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()  # one open or close at a time: a close leaves nothing behind

    @property
    def size(self) -> int:
        with self._lock:
            return len(self._connections)

    def open(self, count: int) -> None:
        """Leak `count` more connections. Raises psycopg.Error when the server refuses one."""
        with self._lock:
            for _ in range(count):
                connection = psycopg.connect(**self._args, connect_timeout=5, autocommit=True,
                                             application_name=LEAK_APP,
                                             options=f"-c idle_in_transaction_session_timeout={self._timeout_ms}")
                self._connections.append(connection)
                connection.execute("BEGIN")
                connection.execute("SELECT 1")  # and then nothing: idle in transaction

    def close(self) -> int:
        """Close every leaked connection; how many there were."""
        with self._lock:
            closed = len(self._connections)
            for connection in self._connections:
                connection.close()
            self._connections.clear()
            return closed


class ThrowawayPostgres:
    """A PostgreSQL of the demo's own, from the installed binaries: its data and socket in a temporary
    folder, on a free loopback port; stopped and deleted at the end."""

    def __init__(self, bin_dir: Path) -> None:
        self._bin = bin_dir
        self._dir = Path(tempfile.mkdtemp(prefix="incident-bot-pg-"))  # short: a socket path has a length limit
        self.port = _free_port()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def find(cls) -> ThrowawayPostgres:
        found = shutil.which("initdb")
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name), reverse=True)
        dirs = ([Path(found).parent] if found else []) + versions
        bin_dir = next((d for d in dirs if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)
        if bin_dir is None:
            raise Unusable("no initdb and pg_ctl on PATH or under /usr/lib/postgresql/*/bin")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            raise Unusable(f"{bin_dir / 'initdb'} refuses to run as root")
        return cls(bin_dir)

    def start(self) -> None:
        data = self._dir / "data"
        self._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._dir} "
                   "-c max_connections=50 -c fsync=off -c synchronous_commit=off")
        self._run("pg_ctl", "-D", str(data), "-l", str(self._dir / "server.log"), "-o", options, "-w", "-t", "30", "start")

    def stop(self) -> None:
        data = self._dir / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run([str(self._bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60, check=False)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        try:
            done = subprocess.run([str(self._bin / program), *args], capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise Unusable(f"{program} failed: {error}") from None
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise Unusable(f"{program} failed: {said[-1] if said else f'exit {done.returncode}'}")


def _version(name: str) -> float:
    try:
        return float(name)
    except ValueError:
        return 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shown_url(url: str) -> str:
    """A URL fit to print: never its password."""
    try:
        return safe_url(url)
    except ArgumentError:
        return "(not a URL)"


def first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
