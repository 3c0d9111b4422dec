"""The floors for benchmarks: a Bolt app that only acknowledges, or first writes each request durably.

The app runs on the same server the bot uses.

Run as `python bench/bare_bolt.py PORT [--durable STORE]` with SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and
SLACK_API_URL set.

`--durable STORE` (a SQLite file's path, or a postgresql:// URL): the floor of a server that must not
acknowledge a request before it is written durably, with none of the bot's code. Each message event's
`event_id`, and each `/incident` command's `trigger_id`, is written with the raw driver (sqlite3 in WAL
with `synchronous=FULL` and `BEGIN IMMEDIATE`, or psycopg in autocommit) before Bolt answers, and
requests that arrive while a write is under way are written together by the next one: the group commit
databases use for their own log (the caller that finds nobody writing writes every key waiting, in one
INSERT and one commit, then hands the lead to the first that arrived meanwhile). What it costs beside
the bare floor is what waiting for a durable write costs this machine and Python's threads, whatever
else a server does.
"""

from __future__ import annotations

import argparse
import collections
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from handlers.http import HttpServer
from handlers.slack_client import make_web_client

Write = Callable[[list[str]], None]  # request ids to one durable INSERT


class GroupCommit:
    """`run(key)` returns once `key` is committed, written together with whatever else waits meanwhile."""

    def __init__(self, write: Write) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._waiting: collections.deque[_Waiter] = collections.deque()
        self._writing = False

    def run(self, key: str) -> None:
        mine = _Waiter(key)
        with self._lock:
            self._waiting.append(mine)
            mine.lead = not self._writing
            self._writing = True
        if not mine.lead:
            mine.asleep.acquire()  # released once written, or to lead the next write
        if mine.lead:
            with self._lock:
                batch = list(self._waiting)
                self._waiting.clear()
            try:
                self._write([waiter.key for waiter in batch])
            except BaseException as error:
                for waiter in batch:
                    waiter.error = error
                raise
            finally:
                for waiter in batch[1:]:
                    waiter.asleep.release()
                with self._lock:
                    if self._waiting:
                        self._waiting[0].lead = True
                        self._waiting[0].asleep.release()
                    else:
                        self._writing = False
        if mine.error is not None:
            raise mine.error


class _Waiter:
    __slots__ = ("asleep", "error", "key", "lead")

    def __init__(self, key: str) -> None:
        self.key = key
        self.lead = False
        self.error: BaseException | None = None
        self.asleep = threading.Lock()
        self.asleep.acquire()


def durable_write(store: str) -> Write:
    """One connection, used by one leader at a time; the table `floor_events` made if missing."""
    if store.startswith("postgresql"):
        postgres = psycopg.connect(store, autocommit=True)
        postgres.execute("CREATE TABLE IF NOT EXISTS floor_events (event_id text PRIMARY KEY)")

        def write_postgres(keys: list[str]) -> None:
            postgres.execute(f"INSERT INTO floor_events VALUES {', '.join(['(%s)'] * len(keys))} ON CONFLICT DO NOTHING",
                             keys)  # type: ignore[arg-type]  # built from a fixed pattern, not from input
        return write_postgres
    lite = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
    lite.execute("PRAGMA journal_mode=WAL")
    lite.execute("PRAGMA synchronous=FULL")
    lite.execute("CREATE TABLE IF NOT EXISTS floor_events (event_id text PRIMARY KEY)")

    def write_sqlite(keys: list[str]) -> None:
        lite.execute("BEGIN IMMEDIATE")
        try:
            lite.execute(f"INSERT INTO floor_events VALUES {', '.join(['(?)'] * len(keys))} ON CONFLICT DO NOTHING", keys)
            lite.execute("COMMIT")
        except BaseException:
            lite.execute("ROLLBACK")
            raise
    return write_sqlite


def main(port: int, durable: str | None = None) -> None:
    client = make_web_client(os.environ["SLACK_BOT_TOKEN"], os.environ["SLACK_API_URL"])
    app = App(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"], process_before_response=True)
    commit = GroupCommit(durable_write(durable)) if durable else None

    @app.event("message")
    def acknowledge_only(body: dict[str, Any]) -> None:
        if commit is not None:
            commit.run(str(body["event_id"]))

    @app.command("/incident")
    def acknowledge_command(ack, body: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
        if commit is not None:
            commit.run(str(body["trigger_id"]))
        ack()

    HttpServer(SlackRequestHandler(app), host="127.0.0.1", port=port).run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--durable", metavar="STORE", help="write each message event and command durably before answering, "
                        "to STORE: a SQLite file's path or a postgresql:// URL")
    args = parser.parse_args()
    main(args.port, args.durable)
