"""Runs every benchmark, prints their figures as they come, and writes them to bench/RESULTS.md with the
machine, the date and the store.

    .venv/bin/python bench/run_all.py [--quick] [--database-url sqlite|URL ...] [--admin CONNINFO] [--only NAME ...] [--output PATH]

Figures are never pass/fail: the exit status is non-zero only when a benchmark's correctness check
fails (an event or a note lost or stored twice, a postmortem line missing, the diagnostics holding more
than one connection, an incident missing) or a benchmark could not run; never because a figure is slow.
`--quick` runs everything at reduced sizes, to check that it all works (its figures mean little).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ack_latency
import capture
import common
import diagnostics
import memory
import postmortem
import psycopg
import report

FULL = {
    "ack": {"command_rate": 20, "event_rate": 100, "seconds": 20},
    "capture": {"events": 3000, "concurrency": 16},
    "postmortem": {"entries": 10000, "runs": 5},
    "diagnostics": {"runs": 5},
    "memory": {"incidents": 100, "messages": 50},
    "report": {"incidents": 500, "messages": 30, "runs": 5},
}
QUICK = {
    "ack": {"command_rate": 20, "event_rate": 100, "seconds": 3},
    "capture": {"events": 300, "concurrency": 16},
    "postmortem": {"entries": 1000, "runs": 2},
    "diagnostics": {"runs": 2},
    "memory": {"incidents": 10, "messages": 10},
    "report": {"incidents": 50, "messages": 5, "runs": 2},
}


@dataclass
class Outcome:
    name: str
    store: str = ""  # "SQLite", "PostgreSQL"; "" for a benchmark that uses no store of the bot's
    figures: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return bool(self.problems or self.error)


STORE_BENCHMARKS = ("ack", "capture", "postmortem", "memory", "report")  # measured on each store given


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes: a smoke run, its figures mean little")
    parser.add_argument("--database-url", action="append",
                        help="the bot's store: `sqlite` (the default) for a SQLite file in a temporary folder, or a "
                        "URL; for PostgreSQL, each benchmark creates a database of its own on that server and drops it "
                        "at the end. Given twice (say sqlite and a PostgreSQL URL), the benchmarks that use a store run "
                        "on each, and RESULTS.md shows their figures side by side")
    parser.add_argument("--admin", default=diagnostics.ADMIN,
                        help="libpq connection string of the PostgreSQL the diagnostics benchmark fills (always PostgreSQL)")
    parser.add_argument("--output", type=Path, default=common.HERE / "RESULTS.md")
    parser.add_argument("--only", nargs="+", choices=list(FULL), help="run only these benchmarks")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    chosen = args.only or list(FULL)
    stores: list[str | None] = [None if url == "sqlite" else url for url in args.database_url or ["sqlite"]]
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()

    def ack(url: str | None) -> tuple[dict[str, Any], list[str]]:
        result = ack_latency.run(database_url=url, **sizes["ack"])
        ack_latency.report(result)
        figures = result.figures()
        # The write alone at each phase's rate and count: what that phase's acks wait for at the least.
        for row in figures["rows"]:
            row["durable_write"] = common.durable_write(url, count=row["bot"]["sent"], rate=row["rate"])
        return {**figures, "durable_write": common.durable_write(url)}, result.problems

    def capture_run(url: str | None) -> tuple[dict[str, Any], list[str]]:
        result = capture.run(database_url=url, **sizes["capture"])
        capture.report(result)
        return result.figures(), result.problems

    def postmortem_run(url: str | None) -> tuple[dict[str, Any], list[str]]:
        figures = postmortem.run(database_url=url, **sizes["postmortem"])
        # The same incident ten times over, drafted once: the streamed draft's time and memory at that size.
        tenfold = postmortem.run(database_url=url, entries=sizes["postmortem"]["entries"] * 10, runs=1)
        return {**figures, "tenfold": tenfold}, figures["problems"] + tenfold["problems"]

    def diagnostics_run(_url: str | None) -> tuple[dict[str, Any], list[str]]:
        result = diagnostics.run(args.admin, **sizes["diagnostics"])
        diagnostics.report(result)
        return result.figures(), result.problems

    def memory_run(url: str | None) -> tuple[dict[str, Any], list[str]]:
        result = memory.run(database_url=url, **sizes["memory"])
        memory.report(result)
        return result.figures(), result.problems

    def report_run(url: str | None) -> tuple[dict[str, Any], list[str]]:
        figures = report.run(database_url=url, **sizes["report"])
        return figures, figures["problems"]

    benchmarks: dict[str, Callable[[str | None], tuple[dict[str, Any], list[str]]]] = {
        "ack": ack, "capture": capture_run, "postmortem": postmortem_run, "diagnostics": diagnostics_run,
        "memory": memory_run, "report": report_run,
    }
    outcomes: list[Outcome] = []
    for name in chosen:
        for url in stores if name in STORE_BENCHMARKS else [None]:
            outcome = Outcome(name, store=_store_label(url) if name in STORE_BENCHMARKS else "")
            outcomes.append(outcome)
            print(f"\n=== {name}{f' ({outcome.store})' if outcome.store else ''} ===", flush=True)
            if name == "diagnostics" and (why := _no_postgres(args.admin)):
                outcome.skipped = f"no PostgreSQL to measure ({why})"
                print(f"skipped: {outcome.skipped}")
                continue
            clock = time.perf_counter()
            try:
                outcome.figures, outcome.problems = benchmarks[name](url)
            except (Exception, SystemExit) as error:  # one benchmark failing to run must not lose the others' figures
                traceback.print_exc()
                outcome.error = f"{type(error).__name__}: {error}"
            outcome.seconds = time.perf_counter() - clock
            sys.stdout.flush()

    text = _markdown(outcomes, args, stores, started_at, load_before, os.getloadavg())
    args.output.write_text(text)
    failed = [o for o in outcomes if o.failed]
    print(f"\nwrote {args.output}")
    for outcome in failed:
        print(f"FAILED {outcome.name} {outcome.store}: {outcome.error or '; '.join(outcome.problems)}")
    return 1 if failed else 0


def _store_label(url: str | None) -> str:
    return "SQLite" if url is None else {"postgresql": "PostgreSQL"}.get(common.store_name(url), common.store_name(url))


def _no_postgres(admin: str) -> str | None:
    try:
        psycopg.connect(admin, connect_timeout=3).close()
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0]
    return None


# --- RESULTS.md


def _machine() -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), platform.processor())
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    os_release = Path("/etc/os-release")
    pretty = next((line.split("=", 1)[1].strip('"') for line in os_release.read_text().splitlines()
                   if line.startswith("PRETTY_NAME=")), "") if os_release.exists() else ""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=common.HERE, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=common.HERE,
                               check=True).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return [
        f"- CPU: {os.cpu_count()} × {model}",
        f"- memory: {total / 2**20:.1f} GiB",
        f"- OS: {pretty or platform.system()} ({platform.system()} {platform.release()}, {platform.machine()})",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- commit: {commit}",
    ]


def _markdown(outcomes: list[Outcome], args: argparse.Namespace, stores: list[str | None], started_at: datetime,
              load_before: tuple[float, float, float], load_after: tuple[float, float, float]) -> str:
    described = []
    for url in stores:
        where = (f"a database of its own per benchmark on {common.safe_server(url)}" if url is not None
                 else "a file in a temporary folder, `synchronous=FULL`")
        described.append(f"{_store_label(url)} ({where})")
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{' '.join(['.venv/bin/python bench/run_all.py', *sys.argv[1:]])}`"
        + (" — **quick run: reduced sizes, the figures mean little**." if args.quick else "."),
        "Figures, not pass/fail; the floor, where there is one, is measured the same way in the same run.",
        "",
        f"- date: {started_at:%Y-%m-%d %H:%M} UTC",
        *_machine(),
        f"- load average (1/5/15 min) at start: {' / '.join(f'{x:.2f}' for x in load_before)}; "
        f"at the end: {' / '.join(f'{x:.2f}' for x in load_after)} (the load generator, the servers and the store share this machine)",
        f"- store{'s' if len(stores) > 1 else ''}: {'; '.join(described)}",
        "",
    ]
    lines += ["## Correctness checks", "", "| benchmark | store | check | took s |", "|---|---|---|---|"]
    for o in outcomes:
        verdict = (f"skipped: {o.skipped}" if o.skipped else f"**could not run**: {o.error}" if o.error
                   else "**FAILED**: " + "; ".join(o.problems) if o.problems else "passed")
        lines.append(f"| {TITLES[o.name]} | {o.store} | {verdict} | {o.seconds:.0f} |")
    lines += ["", *_against_the_floor(outcomes), ""]
    for name in dict.fromkeys(o.name for o in outcomes):
        measured = [o for o in outcomes if o.name == name and o.figures is not None]
        if not measured:
            continue
        lines += [f"## {TITLES[name]}", ""]
        for outcome in measured:
            assert outcome.figures is not None
            if outcome.store and len(measured) > 1:
                lines += [f"### {outcome.store}", ""]
            lines += [*SECTIONS[name](outcome.figures), ""]
    return "\n".join(lines)


def _against_the_floor(outcomes: list[Outcome]) -> list[str]:
    """Issue 17's table: each figure next to its floor, measured in the same run, and the goal; one row
    per figure and store."""
    rows: list[str] = []
    for o in outcomes:
        f = o.figures
        if f is None:
            continue
        if o.name == "ack":
            durable = f.get("durable_write")
            for row, label, goal in (("commands", "slash command ack p99", "≤ 1.5×"), ("events", "message event ack p99", "≤ 1.3×")):
                r = next(x for x in f["rows"] if x["kind"] == row)
                rows.append(f"| {label} at {r['rate']:g}/s | {o.store} | {r['floor']['p99_ms']:.1f} ms | {r['bot']['p99_ms']:.1f} ms "
                            f"| {r['ratio_p99']:.2f}× | {goal} |")
                rows.append(f"| ↳ the floor writing each request durably first (raw driver) | {o.store} "
                            f"| {r['floor']['p99_ms']:.1f} ms | durable floor: {r['durable']['p99_ms']:.1f} ms "
                            f"| {r['durable_ratio_p99']:.2f}× | |")
                rows.append(f"| ↳ one durable write alone at {r['rate']:g}/s (raw driver), p99 | {o.store} "
                            f"| | write alone: {r['durable_write']['p99_ms']:.1f} ms | | |")
            if durable:
                rows.append(f"| one durable write alone, back to back (raw driver), p99 | {o.store} | | write alone: {durable['p99_ms']:.1f} ms "
                            "| | |")
        elif o.name == "capture":
            rows.append(f"| capture throughput, concurrency {f['concurrency']} | {o.store} | {f['floor']['rate']:,.0f} ev/s "
                        f"| {f['bot']['rate']:,.0f} ev/s | {f['ratio_rate']:.2f}× | ≥ 0.85× |")
            rows.append(f"| ↳ the floor writing each event durably (raw driver, group commit) | {o.store} "
                        f"| {f['floor']['rate']:,.0f} ev/s | durable floor: {f['durable']['rate']:,.0f} ev/s "
                        f"| {f['durable_ratio_rate']:.2f}× | |")
            rows.append(f"| capture p99, concurrency {f['concurrency']} | {o.store} | {f['floor']['p99_ms']:.0f} ms "
                        f"| {f['bot']['p99_ms']:.0f} ms | {f['ratio_p99']:.2f}× | ≤ 1.5× |")
            rows.append(f"| capture: the server's CPU per event | {o.store} | {f['floor']['cpu_per_event_us']:.0f} µs "
                        f"| {f['bot']['cpu_per_event_us']:.0f} µs | {f['ratio_cpu']:.2f}× | |")
        elif o.name == "postmortem":
            steps = {step["name"]: step for step in f["steps"]}
            floor = next(step for name, step in steps.items() if name.startswith("floor"))
            reading = next(step for name, step in steps.items() if name.startswith("timeline"))
            drafting = next(step for name, step in steps.items() if name.startswith("draft"))
            n = f"{f['entries']:,}"
            rows.append(f"| read a {n}-entry timeline | {o.store} | {floor['median_ms']:.0f} ms (raw driver) "
                        f"| {reading['median_ms']:.0f} ms | {f['read_ratio']:.2f}× | ≤ 2× |")
            rows.append(f"| draft a {n}-entry postmortem | {o.store} | {floor['median_ms']:.0f} ms (raw driver) "
                        f"| {drafting['median_ms']:.0f} ms | {f['draft_ratio']:.2f}× | ≤ 4× |")
            if "tenfold" in f:
                big, small = f["tenfold"]["alone"], f["alone"]
                rows.append(f"| draft a {f['tenfold']['entries']:,}-entry postmortem (own process, median of 3) | {o.store} "
                            f"| {small['seconds'] * 1000:,.0f} ms ({n} entries) | {big['seconds'] * 1000:,.0f} ms "
                            f"| {big['seconds'] / small['seconds']:.1f}× | ≤ 12× |")
                rows.append(f"| its peak memory above idle (VmHWM) | {o.store} | | {big['above_idle_mib']:.0f} MiB | | < 100 MiB |")
    if not rows:
        return []
    return ["## Against the floor", "",
            "Issue 17's figures: each next to its floor, measured in the same run (`bench/README.md` says how).", "",
            "| figure | store | floor | bot | ratio | goal |", "|---|---|---|---|---|---|", *rows]


def _ack(f: dict[str, Any]) -> list[str]:
    out = [f"Open loop: requests sent on a fixed schedule for {f['seconds']:g} s each, whether or not earlier ones "
           "were answered; latency from when each was meant to be sent to its answer. Floor: `bare_bolt.py`, a Bolt "
           "app that only acknowledges, on the same waitress server; below each row, the same app writing each request's "
           "id durably before it answers (`bare_bolt.py --durable`: the raw driver, a group commit, on the same disk or server "
           "as the bot's store). Slash command: `/incident note action <text>` in "
           "the incident's channel (stored, then acknowledged; published to Slack after the ack). Events: channel "
           "messages captured into the incident's timeline (acknowledged once stored).", "",
           "| request | rate/s | floor p50 / p99 ms | bot p50 / p99 ms | bot / floor p50 | bot / floor p99 | bot max ms "
           "| stored exactly once |",
           "|---|---|---|---|---|---|---|---|"]
    for row in f["rows"]:
        floor, bot = row["floor"], row["bot"]
        once, sent = row["stored"]
        what = "slash command (`note action`)" if row["kind"] == "commands" else "message event"
        out.append(f"| {what} | {row['rate']:g} | {floor['p50_ms']:.1f} / {floor['p99_ms']:.1f} | "
                   f"{bot['p50_ms']:.1f} / {bot['p99_ms']:.1f} | {row['ratio_p50']:.2f}× | {row['ratio_p99']:.2f}× | "
                   f"{bot['max_ms']:.0f} | {once} of {sent} |")
        d = row["durable"]
        out.append(f"| ↳ the floor writing each durably first (durable floor / floor in the ratio columns) | {row['rate']:g} "
                   f"| | durable floor: {d['p50_ms']:.1f} / {d['p99_ms']:.1f} | {row['durable_ratio_p50']:.2f}× "
                   f"| {row['durable_ratio_p99']:.2f}× | {d['max_ms']:.0f} | |")
    lags = [row[side]["send_lag_p99_ms"] for row in f["rows"] for side in ("floor", "durable", "bot")]
    out += ["", f"The load generator sent within {max(lags):.1f} ms of schedule (p99 of its lag, worst phase)."]
    out += ["", "One durable write alone (`common.durable_write`: the raw driver, one small INSERT committed as the "
            "bot commits its writes: in `BEGIN IMMEDIATE` on SQLite, alone in autocommit on PostgreSQL), as many as "
            "the phase sent, at the phase's rate, the store idle in between: "
            + "; ".join(f"at {row['rate']:g}/s {row['durable_write']['p50_ms']:.2f} / {row['durable_write']['p99_ms']:.2f} ms "
                        "p50 / p99" for row in f["rows"])
            + f"; back to back {f['durable_write']['p50_ms']:.2f} / {f['durable_write']['p99_ms']:.2f} ms."]
    return out


def _capture(f: dict[str, Any]) -> list[str]:
    floor, bot, durable = f["floor"], f["bot"], f["durable"]

    def server(name: str, x: dict[str, Any]) -> str:
        rounds = " / ".join(f"{r:.0f}" for r in x["rates"])
        return (f"| {name} | {x['rate']:.0f} | {rounds} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | {x['errors']} | "
                f"{x['cpu_per_event_us']:.0f} | {x['generator_cores']:.2f} | {x['generator_lag_p99_ms']:.1f} |")

    return [f"Closed loop: {f['rounds']} rounds of {f['events']} signed message events at concurrency {f['concurrency']}, "
            "as fast as answered, floor (`bare_bolt.py`), durable floor (`bare_bolt.py --durable`) then bot, all three up "
            "throughout; events/s is the median "
            "round's, latencies are pooled. CPU is each server process's own (user and system) per event answered: "
            "bound by one core (the GIL), a server's throughput follows it. The load generator (`loadgen.py`) used the "
            "share of a core shown, and its event loop ran late by at most the lag shown.", "",
            "| | events/s | per round | p50 ms | p99 ms | errors | CPU µs per event | generator cores | generator lag p99 ms |",
            "|---|---|---|---|---|---|---|---|---|",
            server("floor (bare Bolt)", floor),
            server("floor writing each event durably", durable),
            server("incident-bot", bot),
            f"| bot / floor | {f['ratio_rate']:.2f}× | | {f['ratio_p50']:.2f}× | {f['ratio_p99']:.2f}× | | {f['ratio_cpu']:.2f}× | | |", "",
            "The floor writing each event durably (`bare_bolt.py --durable`: the same Bolt app, each message event's id "
            "written with the raw driver before it answers, events that arrive meanwhile written together by the next "
            f"write, on the same disk or server as the bot's store) answered {f['durable_ratio_rate']:.2f}× the floor's events/s; "
            f"the bot {f['bot_to_durable_rate']:.2f}× its.", "",
            f"Stored exactly once: {f['stored']} of {f['events'] * f['rounds']} sent events."]


def _postmortem(f: dict[str, Any]) -> list[str]:
    out = [f"One closed incident of {f['entries']:,} timeline entries; {f['runs']} runs after a warm-up. Floor: the same "
           "rows and columns read with the raw driver (a sqlite3 or psycopg cursor's `fetchall()`, no SQLAlchemy), "
           "in the same run. Goals: the bot's timeline read within 2× the floor, the whole draft within 4×.", "",
           "| step | median ms | max ms | GC ms | peak MiB | / floor |", "|---|---|---|---|---|---|"]
    for step in f["steps"]:
        ratio = "" if step["name"].startswith("floor") else f"{step['ratio']:.2f}×"
        name = step["name"] if step["name"].startswith(("floor", "timeline", "draft")) else f"part of a whole-record draft: {step['name']}"
        out.append(f"| {name} | {step['median_ms']:.0f} | {step['max_ms']:.0f} | {step['gc_ms']:.0f} | "
                   f"{step['peak_mib']:.1f} | {ratio} |")
    out += ["", f"The draft: {f['bytes']:,} bytes, {f['lines']:,} timeline lines for {f['kept']:,} entries not deleted. "
            f"Slowest capture into another incident, every 10 ms: {f['capture_alone_ms']:.1f} ms alone, "
            f"{f['capture_beside_ms']:.1f} ms while a draft runs."]
    drafts = [f, *([f["tenfold"]] if "tenfold" in f else [])]
    out += ["", "Drafts each in a process of its own, three times (the median's time; resident memory: the largest VmHWM "
            "above the resident set right before the draft; tracemalloc's peak in a second draft):", "",
            "| entries | draft ms (each) | draft / raw floor (in the runs) | Markdown bytes | RSS above idle MiB | tracemalloc peak MiB |",
            "|---|---|---|---|---|---|"]
    for d in drafts:
        a = d["alone"]
        each = ", ".join(f"{seconds * 1000:.0f}" for seconds in a.get("each", []))
        out.append(f"| {d['entries']:,} | {a['seconds'] * 1000:.0f} ({each}) | {d['draft_ratio']:.2f}× | {a['bytes']:,} | "
                   f"{a['above_idle_mib']:.1f} | {a['traced_mib']:.1f} |")
    if len(drafts) == 2:
        out += ["", f"{drafts[1]['entries']:,} entries take {drafts[1]['alone']['seconds'] / drafts[0]['alone']['seconds']:.1f}× "
                f"the {drafts[0]['entries']:,}-entry draft in a process of its own (goal: at most 12×; peak under 100 MiB "
                "above idle)."]
    return out


def _diagnostics(f: dict[str, Any]) -> list[str]:
    out = [f"PostgreSQL with max_connections {f['max_connections']} ({f['usable']} usable), "
           f"{f['leaked']} + {f['in_use']} connections held open "
           f"({100 * (f['leaked'] + f['in_use']) / f['usable']:.0f}% of usable); {f['runs']} runs per check.", "",
           "| check | median ms | max ms | result |", "|---|---|---|---|"]
    for check in f["checks"]:
        result = check["result"].replace("|", "\\|")
        out.append(f"| {check['check']} | {check['median_ms']:.1f} | {check['max_ms']:.1f} | {result[:90]} |")
    out += ["", f"Connections the bot held at the peak (sampled every 2 ms): {f['peak']}."]
    return out


def _memory(f: dict[str, Any]) -> list[str]:
    return [f"`incident-bot serve` in a process of its own; {f['incidents']} incidents declared through signed slash "
            f"commands (each provisioned), {f['messages_each']} message events into each one's channel "
            f"({f['seconds']:.0f} s), then a few seconds of quiet. Resident set size from `/proc/PID/status`.", "",
            "| bot process | RSS MiB |", "|---|---|",
            f"| idle (started, one command answered) | {f['idle_mib']:.1f} |",
            f"| with {f['incidents']} open incidents | {f['after_mib']:.1f} |",
            f"| after `/incident list` of them all | {f['after_list_mib']:.1f} |",
            f"| peak (VmHWM) | {f['peak_mib']:.1f} |", "",
            f"Growth: {f['growth_mib']:.1f} MiB, {f['per_incident_kib']:.0f} KiB per open incident "
            f"(with its {f['messages_each']} messages). Stored exactly once: {f['stored']} of "
            f"{f['incidents'] * f['messages_each']} messages; `/incident list` shows {f['open_incidents']} open."]


def _report(f: dict[str, Any]) -> list[str]:
    out = [f"{f['incidents']} incidents over 90 days, {f['messages']} channel messages each, recorded through the bot's "
           f"services; {f['runs']} runs after a warm-up. Floors: reading the window's incidents alone; as many one-bar "
           "charts drawn.", "", "| step | median ms | max ms | peak MiB (Python) |", "|---|---|---|---|"]
    for step in f["steps"]:
        out.append(f"| {step['name']} | {step['median_ms']:.1f} | {step['max_ms']:.1f} | {step['peak_mib']:.1f} |")
    return [*out, "", f"Process max RSS: {f['max_rss_mb']} MB."]


TITLES = {
    "ack": "Acknowledgement latency at a fixed rate",
    "capture": "Timeline capture throughput",
    "postmortem": "Drafting a big postmortem",
    "diagnostics": "Diagnostic checks on a nearly full PostgreSQL",
    "memory": "Resident memory with open incidents",
    "report": "A 90-day report across incidents",
}
SECTIONS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "ack": _ack, "capture": _capture, "postmortem": _postmortem, "diagnostics": _diagnostics, "memory": _memory,
    "report": _report,
}


if __name__ == "__main__":
    sys.exit(main())
