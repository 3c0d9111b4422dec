"""Drafting the postmortem of a big incident: 10,000 timeline entries read, built, rendered and stored.

Builds one closed incident of `--entries` timeline entries over three hours (not timed), then prints the
wall time (median and max of `--runs`) and the peak Python memory (tracemalloc) of drafting a freshly
requested postmortem version, next to the floor measured the same way in the same run: the same rows and
columns of the timeline read with the raw driver (a sqlite3 or psycopg cursor's fetchall(), no
SQLAlchemy). Also the bot's own read of the timeline (`TimelineService.items`, every row to a domain
object), which any feature showing this timeline pays, and the parts of a (non-streamed) draft: reading
the whole record, the pure `build()`, the template's `render()`. Then one more draft in a process of its
own: its resident memory (VmHWM) above the process's idle size right before it, next to tracemalloc's
peak in a second draft there. Each timed call starts right after a full collection, and the time it then
spent in the garbage collector is printed too (GC ms, part of the wall time). Prints the Markdown's
size and checks (exit 1 otherwise) that every entry not deleted is a line of the draft's timeline, and
no deleted one is. Last, the slowest capture into another open incident, alone and beside a draft.

    .venv/bin/python bench/postmortem.py [--entries 10000] [--runs 5] [--database-url URL] [--profile]
    .venv/bin/python bench/postmortem.py --entries 100000 --runs 1   # the streamed draft of a huge incident

A PostgreSQL URL names a server: the bench creates a database of its own there and drops it at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import common
import psycopg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from bot.clock import ManualClock, SystemClock
from bot.followups import FollowupService
from bot.incidents import commands as c
from bot.incidents.service import IncidentService
from bot.incidents.values import EntryKind, Role, Severity, Status
from bot.postmortem.draft import IncidentRecord, build
from bot.postmortem.service import PostmortemService
from bot.postmortem.templates import default_template
from bot.timeline import ChannelMessage, TimelineService, ts_to_datetime
from storage.database import make_engine, make_session_factory, migrate, transaction
from storage.models import Person, TimelineEntry
from storage.timeline import ENTRY_COLUMNS

START = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
LENGTH = timedelta(hours=3)
ZONE = ZoneInfo("Europe/Paris")
CHANNEL = "C0BENCHINC"
BOT = "U0BOT"
SECRETS = ["xoxb-bench-not-a-real-token", "bench-signing-secret"]
# Busiest first; U0GHOST has no stored name, so the draft shows it as @U0GHOST.
PEOPLE = {
    "U0ALICE": "Alice Martin", "U0BOB": "Bob Dupont", "U0CAROL": "Carol Weiss", "U0DAVE": "Dave Okafor",
    "U0ERIN": "Erin Novak", "U0FRANK": "Frank Li", "U0GRACE": "Grace Haddad", "U0HEIDI": "Heidi Sato",
    "U0IVAN": "Ivan Petrov", "U0JUDY": "Judy Kowalski", "U0KARL": "Karl Jensen",
}
ACTORS = [*PEOPLE, "U0GHOST"]
ACTOR_WEIGHTS = [30, 22, 14, 9, 6, 5, 4, 3, 2, 2, 1, 2]
CAPTURED_THROUGH_SERVICE = 100  # the first messages go through TimelineService.capture(), the rest through Core
PHRASES = [
    "p99 on checkout is back above two seconds", "the connection pool on db-primary is saturated again",
    "rolling back the 08:00 deploy of cart-service", "I see the same spike on the payments dashboard",
    "could it be the new index on orders?", "replica lag is at 40s and growing", "restarting pgbouncer on web-3",
    "error rate dropped to 2% after the restart", "customers report empty carts on mobile",
    "support has 37 tickets so far", "not the CDN: origin latency is high too", "who owns the feature flag for bulk pricing?",
    "vacuum is running on the orders table", "the queue depth is draining slowly",
    "let's not touch the primary until the backup finishes", "I am looking at the slow query log",
    "EXPLAIN shows a seq scan on line_items", "turning off bulk pricing for 10% of traffic",
    "latency graph attached", "the alert fired at 08:03 but nobody was on the channel yet",
    "status page updated", "second region looks healthy", "the deploy also bumped the ORM version",
    "memory on worker nodes is fine", "we hit max_connections twice in the last ten minutes",
]
NOTE_KINDS = [EntryKind.DETECTION, EntryKind.ACTION, EntryKind.HYPOTHESIS, EntryKind.MISLEADING,
              EntryKind.ESCALATION, EntryKind.RESOLUTION, EntryKind.NOTE]
TIMELINE_LINE = re.compile(r"- \*\*\d{2}:\d{2}(?::\d{2})?\*\* · \*\*[^*]+\*\*")


@dataclass
class Figures:
    name: str
    seconds: list[float] = field(default_factory=list)
    collecting: list[float] = field(default_factory=list)  # seconds of each call spent in the garbage collector
    peaks: list[int] = field(default_factory=list)  # bytes

    def row(self, floor: Figures | None) -> str:
        median, worst = statistics.median(self.seconds) * 1000, max(self.seconds) * 1000
        ratio = f"{statistics.median(self.seconds) / statistics.median(floor.seconds):6.2f}x" if floor else ""
        collecting = statistics.median(self.collecting) * 1000
        return f"{self.name:34} {median:10.1f} {worst:9.1f} {collecting:8.1f} {max(self.peaks) / 2**20:10.1f} {ratio:>8}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=10000, help="timeline entries in the incident")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", help="the bot's store (default: a SQLite file in a temporary folder); "
                        "for PostgreSQL, a database of its own is created on that server and dropped at the end")
    parser.add_argument("--profile", action="store_true", help="also print where one draft spends its time (cProfile)")
    parser.add_argument("--draft-alone", type=int, metavar="INCIDENT", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.draft_alone is not None:
        print(json.dumps(_draft_alone(args.database_url, args.draft_alone)))
        return 0
    if args.entries < 200:
        parser.error("--entries must be at least 200")

    return 1 if run(args.entries, args.runs, args.database_url, args.profile)["problems"] else 0


def run(entries: int = 10000, runs: int = 5, database_url: str | None = None, profile: bool = False) -> dict[str, Any]:
    """Build the incident, measure, print, and return the figures (with `problems`: what the check found)."""
    with common.store(database_url) as url:
        engine = make_engine(url)
        try:
            return _bench(engine, url, argparse.Namespace(entries=entries, runs=runs, profile=profile))
        finally:
            engine.dispose()


def _bench(engine: Any, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    migrate(engine)
    sessions = make_session_factory(engine)
    started = time.perf_counter()
    incident_id, mix = _build_incident(sessions, args.entries)
    if engine.dialect.name == "postgresql":
        # A store in service has planner statistics (autovacuum analyzes a table as it grows); one loaded
        # a second ago has none until autovacuum gets to it, and its plans are a guess.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    print(f"built incident: {args.entries} entries ({mix}) in {time.perf_counter() - started:.1f} s")

    timeline = TimelineService(sessions, SystemClock())
    template = default_template()
    service = PostmortemService(sessions, SystemClock(), zone=ZONE, template=template, team_names={},
                                bot_user_id=BOT, secrets=SECRETS)

    raw = RawReader(database_url)

    def floor() -> object:
        return raw.rows(incident_id)

    def items() -> object:
        return timeline.items(incident_id)

    def draft() -> Callable[[], object]:
        postmortem_id = _request(service, incident_id)  # a new version each time (not timed), so each call drafts
        return lambda: service.draft(postmortem_id)

    def read_record() -> IncidentRecord:
        with sessions() as session:
            return service._record(session, incident_id)  # the read half of draft(), as draft() does it

    # The parts get their input afresh (not timed), so no 10,000-entry record stays alive to slow the
    # collections of the other steps.
    def build_step() -> Callable[[], object]:
        record = read_record()
        return lambda: build(record, ZONE, version=1, drafted_at=datetime.now(UTC))

    def render_step() -> Callable[[], object]:
        built = build(read_record(), ZONE, version=1, drafted_at=datetime.now(UTC))
        return lambda: template.render(built)

    figures = {name: Figures(name) for name in (
        FLOOR, "timeline: TimelineService.items()", "draft: PostmortemService.draft()",
        "  read the record", "  build() (pure)", "  template.render()")}
    steps: list[tuple[Figures, Callable[[], Callable[[], object]]]] = [
        (figures[FLOOR], lambda: floor),
        (figures["timeline: TimelineService.items()"], lambda: items),
        (figures["draft: PostmortemService.draft()"], draft),
        (figures["  read the record"], lambda: read_record),
        (figures["  build() (pure)"], build_step),
        (figures["  template.render()"], render_step),
    ]
    for _, prepare in steps:  # warm up: statement caches, first imports
        prepare()()
    collector = _Collector()
    gc.callbacks.append(collector)
    for run in range(args.runs):
        # Interleaved, so a slow moment of the machine slows all of them; and each run starts with another
        # step, so whatever the first step after the previous run pays is not always paid by the same one.
        for figure, prepare in steps[run % len(steps):] + steps[:run % len(steps)]:
            call = prepare()
            gc.collect()  # each call starts with the collector in the same state: its own garbage, its own GC time
            collector.spent = 0.0
            started = time.perf_counter()
            call()
            figure.seconds.append(time.perf_counter() - started)
            figure.collecting.append(collector.spent)
            del call
            figure.peaks.append(_peak(prepare()))  # a separate call: tracemalloc slows what it traces

    gc.callbacks.remove(collector)
    last = service.draft(draft_id := _request(service, incident_id))
    markdown = last.markdown or ""
    timeline_items = timeline.items(incident_id)
    problems = _check(markdown, timeline_items)
    raw_rows = raw.rows(incident_id)
    if [r[0] for r in raw_rows] != [i.id for i in timeline_items] or [r[4] for r in raw_rows] != [i.text for i in timeline_items]:
        problems.append("the raw driver's rows are not the timeline's entries, in the same order")
    del raw_rows
    raw.close()
    alone_draft = _in_own_process(database_url, incident_id)
    if args.profile:
        _profile(lambda: service.draft(_request(service, incident_id)))
    alone, beside = _capture_beside(sessions, lambda: service.draft(_request(service, incident_id)))
    timeline.close()

    drafting = figures["draft: PostmortemService.draft()"]
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"store: {make_url(database_url).get_backend_name()}; {args.entries} entries, {args.runs} runs "
          f"(after one warm-up run)")
    print(f"{'':34} {'median ms':>10} {'max ms':>9} {'GC ms':>8} {'peak MiB':>10} {'/ floor':>8}")
    floor_figures = figures[FLOOR]
    for figure in figures.values():
        print(figure.row(None if figure is floor_figures else floor_figures))
    lines = sum(1 for line in _timeline_section(markdown) if TIMELINE_LINE.match(line))
    print(f"markdown (version {last.version}, postmortem {draft_id}): {len(markdown.encode()):,} bytes, "
          f"{lines:,} timeline lines")
    reading = figures["timeline: TimelineService.items()"]
    read_ratio = statistics.median(reading.seconds) / statistics.median(floor_figures.seconds)
    draft_ratio = statistics.median(drafting.seconds) / statistics.median(floor_figures.seconds)
    print(f"targets: timeline read within 2x the raw driver's: {'yes' if read_ratio <= 2 else 'no'} ({read_ratio:.2f}x); "
          f"whole draft within 4x: {'yes' if draft_ratio <= 4 else 'no'} ({draft_ratio:.2f}x)")
    each = ", ".join(f"{seconds * 1000:.0f}" for seconds in alone_draft["each"])
    print(f"a draft in a process of its own, {len(alone_draft['each'])} times: {alone_draft['seconds'] * 1000:.0f} ms median "
          f"({each}); resident memory {alone_draft['idle_mib']:.1f} MiB "
          f"idle, peak {alone_draft['peak_mib']:.1f} MiB (VmHWM), so {alone_draft['above_idle_mib']:.1f} MiB above idle "
          f"(target: under 100); tracemalloc's peak in a second draft {alone_draft['traced_mib']:.1f} MiB")
    print(f"capturing into another incident, every 10 ms: max {alone * 1000:.1f} ms alone, "
          f"{beside * 1000:.1f} ms while a draft runs")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("every entry not deleted is in the draft's timeline, no deleted one is" if not problems else "")
    return {
        "store": make_url(database_url).get_backend_name(), "entries": args.entries, "runs": args.runs,
        "steps": [{"name": f.name.strip(), "median_ms": statistics.median(f.seconds) * 1000, "max_ms": max(f.seconds) * 1000,
                   "gc_ms": statistics.median(f.collecting) * 1000, "peak_mib": max(f.peaks) / 2**20,
                   "ratio": statistics.median(f.seconds) / statistics.median(floor_figures.seconds)}
                  for f in figures.values()],
        "read_ratio": read_ratio, "draft_ratio": draft_ratio, "alone": alone_draft,
        "bytes": len(markdown.encode()), "lines": lines, "kept": sum(1 for i in timeline_items if not i.deleted),
        "capture_alone_ms": alone * 1000, "capture_beside_ms": beside * 1000, "problems": problems,
    }


FLOOR = "floor: raw driver, fetchall()"


class RawReader:
    """The floor: the columns the bot reads of an incident's timeline (storage.timeline.ENTRY_COLUMNS),
    in its order, with the raw driver: one sqlite3 or psycopg connection, opened once (the bot's pool
    keeps its own open too), one statement and fetchall() per read, in a transaction of its own on
    PostgreSQL. Values as the driver gives them: no conversion at all (SQLite's times and JSON text)."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self._sql = (f"SELECT {', '.join(ENTRY_COLUMNS)} FROM timeline_entries WHERE incident_id = %s "
                     "ORDER BY occurred_at, id")
        self._sqlite: sqlite3.Connection | None = None
        self._postgres: psycopg.Connection[tuple[Any, ...]] | None = None
        if url.get_backend_name() == "sqlite":
            self._sqlite = sqlite3.connect(url.database or "")
            self._sql = self._sql.replace("%s", "?")
        else:
            self._postgres = psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))

    def rows(self, incident_id: int) -> list[tuple[Any, ...]]:
        if self._sqlite is not None:
            return self._sqlite.execute(self._sql, (incident_id,)).fetchall()
        assert self._postgres is not None
        with self._postgres.transaction(), self._postgres.cursor() as cursor:
            cursor.execute(self._sql, (incident_id,))  # type: ignore[arg-type]
            return cursor.fetchall()

    def close(self) -> None:
        for connection in (self._sqlite, self._postgres):
            if connection is not None:
                connection.close()


def _in_own_process(database_url: str, incident_id: int, times: int = 3) -> dict[str, Any]:
    """The figures of _draft_alone, each run in a fresh interpreter (this one holds the benchmark's
    garbage), `times` times: `seconds` is the median draft's (`each`: every one), the memory figures the
    largest seen. One draft alone moved by half between runs on the shared machine."""
    runs = []
    for _ in range(times):
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--draft-alone", str(incident_id),
                               "--database-url", database_url], capture_output=True, text=True, check=True)
        runs.append(dict(json.loads(done.stdout.strip().splitlines()[-1])))
    largest = max(runs, key=lambda run: run["above_idle_mib"])
    return {**largest, "seconds": statistics.median(run["seconds"] for run in runs), "each": [run["seconds"] for run in runs],
            "traced_mib": max(run["traced_mib"] for run in runs)}


def _draft_alone(database_url: str, incident_id: int) -> dict[str, Any]:
    """One draft of a freshly requested version, in this process: its wall time and its resident set
    (VmHWM, reset right before it through /proc/self/clear_refs) above the resident set right before it
    (VmRSS, after a warm-up draft of a small incident and a full collection); then tracemalloc's peak
    in a second draft (traced apart: tracing slows what it traces)."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    service = PostmortemService(sessions, SystemClock(), zone=ZONE, template=default_template(), team_names={},
                                bot_user_id=BOT, secrets=SECRETS)
    warm = IncidentService(sessions, SystemClock()).declare(c.Declare(title="Warm-up"), "U0BOB", f"bench-warm-{uuid.uuid4()}")
    service.draft(_request(service, warm.incident.id))  # imports, statement caches, the pool's connection
    postmortem_id = _request(service, incident_id)
    gc.collect()
    idle = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    started = time.perf_counter()
    view = service.draft(postmortem_id)
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    assert view.content is not None
    size = len(view.content)
    del view
    traced = _peak(lambda: service.draft(_request(service, incident_id)))
    engine.dispose()
    return {"seconds": seconds, "idle_mib": idle / 2**20, "peak_mib": peak / 2**20, "above_idle_mib": (peak - idle) / 2**20,
            "traced_mib": traced / 2**20, "bytes": size}


def _status(field: str) -> int:
    """A field of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


# --- The incident.


def _build_incident(sessions: Any, entries: int) -> tuple[int, str]:
    """One incident as the bot records it: declared, commanded, changed through the services at their
    times; the first messages captured through TimelineService.capture(), the rest inserted with Core in
    the columns insert_message() and add_entry() write; resolved; closed. Returns (id, the mix)."""
    rng = random.Random(20261127)
    clock = ManualClock(START)
    incidents = IncidentService(sessions, clock)
    followups = FollowupService(sessions, clock, timedelta(days=1))
    capture = TimelineService(sessions, clock)
    incident = incidents.declare(c.Declare(title="Checkout errors after the 08:00 deploy", severity=Severity.SEV2,
                                           description="Carts empty on <https://shop.example.com|the shop>; p99 over 2 s"),
                                 "U0ALICE", "bench-declare").incident
    incidents.record_channel(incident.id, CHANNEL, "inc-20261127-checkout-errors")
    with transaction(sessions) as session:
        session.execute(insert(Person.__table__), [{"user_id": u, "name": n, "updated_at": START} for u, n in PEOPLE.items()])

    def apply(command: c.IncidentCommand, actor: str, key: str) -> None:
        incidents.apply(incident.id, command, actor, f"bench-{key}")

    def follow(text: str, owner: str | None, actor: str, key: str) -> None:
        followups.add(incident.id, text, owner, actor, f"bench-{key}")

    # Slot i happens at START + i/(entries-1) of three hours; slot 0 is the declaration, the last one the close.
    commands: dict[int, Callable[[], None]] = {
        int(entries * 0.010): lambda: apply(c.AssignRole(Role.COMMANDER, "U0BOB"), "U0ALICE", "commander"),
        int(entries * 0.015): lambda: apply(c.AssignRole(Role.SCRIBE, "U0CAROL"), "U0BOB", "scribe"),
        int(entries * 0.050): lambda: apply(c.SetSeverity(Severity.SEV1), "U0BOB", "sev1"),
        int(entries * 0.400): lambda: apply(c.SetStatus(Status.IDENTIFIED), "U0BOB", "identified"),
        int(entries * 0.800): lambda: apply(c.SetStatus(Status.MONITORING), "U0BOB", "monitoring"),
        int(entries * 0.970): lambda: apply(c.Resolve("Rolled back cart-service; dropped the new index"), "U0BOB", "resolve"),
        int(entries * 0.980): lambda: follow("Add a canary for cart-service deploys", "U0DAVE", "U0BOB", "f1"),
        int(entries * 0.985): lambda: follow("Alert on pool saturation before 90%", None, "U0ALICE", "f2"),
        int(entries * 0.990): lambda: follow("Review index changes with the DBAs <@U0GHOST>", "U0ERIN", "U0BOB", "f3"),
    }
    rows: list[dict[str, Any]] = []
    threads: list[str] = []
    kinds: dict[str, int] = {"declared": 1, "commands": len(commands), "closed": 1}
    flags = {"deleted": 0, "edited": 0, "key events": 0}
    captured = 0
    for i in range(1, entries - 1):
        at = START + LENGTH * i / (entries - 1)
        clock.advance(at - clock.now())
        if i in commands:
            commands[i]()
            continue
        actor = rng.choices(ACTORS, ACTOR_WEIGHTS)[0]
        draw = rng.random()
        if draw < 0.07 and captured >= CAPTURED_THROUGH_SERVICE:
            kind = rng.choice(NOTE_KINDS)
            rows.append(_row(incident.id, kind, at, actor, _text(rng)))
            kinds[kind.value] = kinds.get(kind.value, 0) + 1
            continue
        if draw < 0.09 and captured >= CAPTURED_THROUGH_SERVICE:
            rows.append(_row(incident.id, EntryKind.UPDATE, at, actor, _text(rng, lines=rng.random() < 0.5)))
            kinds["update"] = kinds.get("update", 0) + 1
            continue
        ts = f"{int(at.timestamp())}.{at.microsecond:06d}"
        thread_ts = rng.choice(threads) if threads and rng.random() < 0.15 else None
        text = _text(rng, lines=rng.random() < 0.03)
        if captured < CAPTURED_THROUGH_SERVICE:
            capture.capture(ChannelMessage(CHANNEL, ts, actor, text, thread_ts, permalink=_permalink(ts)), f"Ev{i:08d}")
            captured += 1
        else:
            row = _row(incident.id, EntryKind.MESSAGE, ts_to_datetime(ts), actor, text, channel_id=CHANNEL, slack_ts=ts,
                       thread_ts=thread_ts, permalink=_permalink(ts))
            if rng.random() < 0.01:
                row["files"] = [{"name": "p99.png", "title": "p99 latency, last hour"}]
            if rng.random() < 0.02:
                flags["edited"] += 1
                row["earlier_texts"] = [{"text": text[: len(text) // 2], "until": (at + timedelta(seconds=40)).isoformat()}]
                row["edited_at"] = at + timedelta(seconds=40)
            if rng.random() < 0.012:
                flags["key events"] += 1
                row["key_marks"] = ["pin"] if rng.random() < 0.7 else ["reaction:U0BOB"]
            if rng.random() < 0.005:  # a message taken back: the draft must leave it out
                row["text"] = f"wrong window, ignore (deleted-{i:05d}) " + row["text"][:200]
                row["deleted_at"] = at + timedelta(seconds=15)
                flags["deleted"] += 1
            rows.append(row)
        kinds["message"] = kinds.get("message", 0) + 1
        if rng.random() < 0.05:
            threads.append(ts)
    capture.close()
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:  # each row with the columns the bot's own write sets, no more: NULL and JSON null differ
        by_columns.setdefault(tuple(sorted(row)), []).append(row)
    with transaction(sessions) as session:
        for same in by_columns.values():
            for start in range(0, len(same), 1000):
                session.execute(insert(TimelineEntry.__table__), same[start:start + 1000])
    clock.advance(START + LENGTH - clock.now())
    apply(c.Close(), "U0BOB", "close")
    with sessions() as session:
        stored = session.execute(select(func.count()).where(TimelineEntry.incident_id == incident.id)).scalar()
    assert stored == entries, f"{stored} entries stored, {entries} meant"
    mix = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda p: -p[1]))
    return incident.id, f"{mix}; of the messages, {', '.join(f'{n} {k}' for k, n in flags.items())}"


def _row(incident_id: int, kind: EntryKind, at: datetime, actor: str, text: str, **captured: Any) -> dict[str, Any]:
    """The columns add_entry() sets (data: None, stored as JSON null), or, given `captured`, the ones
    insert_message() sets (files: None, stored as JSON null; data left SQL NULL)."""
    if captured:
        return {"incident_id": incident_id, "kind": kind.value, "occurred_at": at, "actor_id": actor, "text": text,
                "files": None, **captured}
    return {"incident_id": incident_id, "kind": kind.value, "occurred_at": at, "actor_id": actor, "text": text, "data": None}


def _text(rng: random.Random, lines: bool = False) -> str:
    """40 to 300 characters of incident chat; some mention people, link dashboards, or span lines."""
    target = rng.randint(40, 300)
    parts: list[str] = []
    while sum(len(p) + 2 for p in parts) < target:
        parts.append(rng.choice(PHRASES))
    text = ("\n" if lines else ". ").join(parts)[:target]
    text = text.rsplit(" ", 1)[0] if len(text.rsplit(" ", 1)[0]) >= 40 else text  # end on a whole word
    if rng.random() < 0.05:
        text = f"<@{rng.choice(ACTORS)}> {text}"
    if rng.random() < 0.02:
        text += " <https://grafana.example.com/d/checkout|dashboard> &gt; 2 s"
    return text


def _permalink(ts: str) -> str:
    return f"https://example.slack.com/archives/{CHANNEL}/p{ts.replace('.', '')}"


def _request(service: PostmortemService, incident_id: int) -> int:
    view = service.request(incident_id, "U0ALICE", f"bench-postmortem-{uuid.uuid4().hex}")
    assert view is not None
    return view.id


# --- Measuring and checking.


class _Collector:
    """Time spent in garbage collections (gc.callbacks)."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.spent += time.perf_counter() - self._started


def _capture_beside(sessions: Any, draft: Callable[[], object]) -> tuple[float, float]:
    """The slowest capture of a message into another, open incident, during as long as a draft takes:
    first with nothing else running, then while the draft runs. A draft reads a lot; on SQLite it must
    read without holding up the writers."""
    clock = SystemClock()
    other = IncidentService(sessions, clock).declare(c.Declare(title="Another incident"), "U0BOB", f"bench-other-{uuid.uuid4()}").incident
    IncidentService(sessions, clock).record_channel(other.id, f"C0OTHER{other.id}", f"inc-other-{other.id}")
    capture = TimelineService(sessions, clock)

    def slowest(until: Callable[[], bool]) -> float:
        worst = 0.0
        while not until():
            ts = f"{time.time():.6f}"
            started = time.perf_counter()
            capture.capture(ChannelMessage(f"C0OTHER{other.id}", ts, "U0BOB", "still here"), f"bench-{ts}")
            worst = max(worst, time.perf_counter() - started)
            time.sleep(0.01)
        return worst

    started = time.perf_counter()
    draft()
    took = time.perf_counter() - started
    deadline = time.perf_counter() + took
    alone = slowest(lambda: time.perf_counter() > deadline)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (draft(), done.set()))
    worker.start()
    beside = slowest(done.is_set)
    worker.join()
    capture.close()
    return alone, beside


def _peak(call: Callable[[], object]) -> int:
    """Peak bytes Python allocated during the call, beyond what was allocated when it started."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _profile(call: Callable[[], object]) -> None:
    """cProfile of one call with the collector off: its pauses would be charged to whichever function
    happened to allocate (the GC ms column says how much they add)."""
    profiler = cProfile.Profile()
    gc.collect()
    gc.disable()
    try:
        profiler.enable()
        call()
        profiler.disable()
    finally:
        gc.enable()
    print("\nwhere one draft() spends its time (cProfile, slower than unprofiled; garbage collector off):")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)


def _timeline_section(markdown: str) -> Iterator[str]:
    inside = False
    for line in markdown.splitlines():
        if line.startswith("## "):
            inside = line == "## Timeline"
        elif inside:
            yield line


def _check(markdown: str, items: list[Any]) -> list[str]:
    problems = []
    kept = [i for i in items if not i.deleted]
    deleted = [i for i in items if i.deleted]
    section = list(_timeline_section(markdown))
    lines = [line for line in section if TIMELINE_LINE.match(line)]
    if len(lines) != len(kept):
        problems.append(f"{len(lines)} timeline lines in the draft, {len(kept)} entries not deleted")
    stray = [line for line in section if line and not TIMELINE_LINE.match(line) and not line.startswith(("  ", "### "))
             and not re.fullmatch(r"_\d+ deleted messages? left out\._", line)]
    if stray:
        problems.append(f"{len(stray)} timeline lines neither an entry nor indented under one, e.g. {stray[0]!r}")
    left_out = re.findall(r"deleted-\d{5}", markdown)
    if left_out:
        problems.append(f"{len(left_out)} deleted messages in the draft, e.g. {left_out[0]}")
    if deleted and f"_{len(deleted)} deleted message{'s' if len(deleted) != 1 else ''} left out._" not in section:
        problems.append(f"the draft does not say that {len(deleted)} deleted messages were left out")
    times = [line.split("**")[1] for line in lines]
    if times != sorted(times):  # one local day here: clock times must not go back
        problems.append("timeline lines out of order")
    return problems


if __name__ == "__main__":
    sys.exit(main())
