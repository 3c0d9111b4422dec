"""Drawing charts: the time and peak memory of each case, next to a floor measured the same way.

Cases (each a function in CASES returning its figures; add one there):

- `incident`: the postmortem's chart of a 2-hour incident sampled every 30 s (240 samples, a refused
  one, the response's moments marked): the description built from the samples (pure,
  bot.charts.incident.connections_chart) and the PNG drawn from it (bot.charts.render.render), which is
  what PostmortemService.draft does for each target the watchdog sampled; then the same for `--targets`
  targets, one after the other, as one draft does them.

The floor is matplotlib's fixed cost, measured the same way in the same run: an empty figure of the same
size, with the same axes, drawn to a PNG. Each timed call runs after a warm-up (matplotlib's font cache
and imports are paid once per process, not per chart) and a full collection; times are the median and
the max of `--runs`. Memory is tracemalloc's peak of Python allocations during one call, and the
process's resident high-water mark at the end (matplotlib's Agg canvas is C++ memory, which tracemalloc
does not see: about 3 MB for 1200×600).

    .venv/bin/python bench/charts.py [--runs 10] [--samples 240] [--targets 3] [--only incident]

Prints the figures; the exit status is 1 only when a check fails (a PNG that does not decode, or not at
its stated size), never because a figure is slow.
"""

from __future__ import annotations

import argparse
import gc
import io
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image

from bot.charts.incident import Reading, connections_chart, incident_window
from bot.charts.render import PNG_SIGNATURE, Png, render
from bot.charts.spec import Marker, Series, Style, TimeChart

ZONE = ZoneInfo("Europe/Paris")
START = datetime(2026, 11, 27, 8, 15, tzinfo=UTC)  # 09:15 in Paris, as in the example
EVERY = timedelta(seconds=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed calls per figure (after one warm-up)")
    parser.add_argument("--samples", type=int, default=240, help="samples per target (240: 2 hours every 30 s)")
    parser.add_argument("--targets", type=int, default=3, help="targets charted in one draft")
    parser.add_argument("--only", nargs="+", choices=list(CASES), help="run only these cases")
    args = parser.parse_args()
    problems: list[str] = []
    for name in args.only or list(CASES):
        figures = CASES[name](runs=args.runs, samples=args.samples, targets=args.targets)
        report(name, figures)
        problems += figures["problems"]
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


def run(runs: int = 10, samples: int = 240, targets: int = 3) -> dict[str, Any]:
    """Every case's figures, for bench/run_all.py: {case: figures}, and the problems found."""
    cases = {name: case(runs=runs, samples=samples, targets=targets) for name, case in CASES.items()}
    return {"cases": cases, "problems": [p for figures in cases.values() for p in figures["problems"]]}


# --- Cases.


def incident_case(*, runs: int, samples: int, targets: int, **_: Any) -> dict[str, Any]:
    """The postmortem's connection charts of an incident of `samples` samples every 30 s."""
    readings = leak(samples)
    last = readings[-1].taken_at
    window = incident_window(START, last - timedelta(minutes=10), last)
    moments = [Marker(START, "declared", "Declared"), Marker(START + timedelta(minutes=25), "paged", "Paged Database team"),
               Marker(START + timedelta(minutes=30), "acknowledged", "Database team acknowledged"),
               Marker(START + timedelta(minutes=75), "status", "Monitoring"), Marker(last - timedelta(minutes=10), "resolved", "Resolved")]

    def describe() -> TimeChart:
        chart = connections_chart("primary", readings, moments, window, ZONE, title="Incident 7: connections on primary")
        assert isinstance(chart, TimeChart)
        return chart

    chart = describe()
    problems = check(render(chart), "the incident's chart")
    floor_chart = empty_like(chart)
    problems += check(render(floor_chart), "the floor's chart")

    def a_draft() -> None:
        for _ in range(targets):
            render(describe())

    figures = {
        "samples": len(chart.series[0].points),
        "targets": targets,
        "floor: an empty chart drawn": measure(lambda: render(floor_chart), runs),
        "describe: connections_chart() (pure)": measure(describe, runs),
        "draw: render() one target": measure(lambda: render(chart), runs),
        f"a draft's charts: {targets} targets, described and drawn": measure(a_draft, max(1, runs // 2)),
        "png bytes": len(render(chart).data),
        "max RSS MB (process)": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "problems": problems,
    }
    return figures


CASES: dict[str, Callable[..., dict[str, Any]]] = {
    "incident": incident_case,
    # The report across incidents adds its case here: a function taking (runs, samples, targets, **_)
    # and returning its figures, with "problems".
}


# --- Measuring.


def measure(call: Callable[[], object], runs: int) -> dict[str, float]:
    """Median and max wall ms of `runs` calls after a warm-up, and the peak of Python allocations (MB)
    during one more call."""
    call()  # warm-up: imports, font cache, first-use allocations
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    gc.collect()
    tracemalloc.start()
    try:
        call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"median ms": round(statistics.median(times), 1), "max ms": round(max(times), 1),
            "peak MB (Python)": round(peak / 2**20, 2)}


def check(png: Png, what: str) -> list[str]:
    try:
        assert png.data.startswith(PNG_SIGNATURE)
        image = Image.open(io.BytesIO(png.data))
        image.load()
    except (AssertionError, OSError) as error:
        return [f"{what} is not a PNG that decodes ({type(error).__name__})"]
    return [] if image.size == (png.width, png.height) else [f"{what} is {image.size}, not {png.width}×{png.height}"]


def leak(samples: int) -> list[Reading]:
    """A leak climbing to the limit, held there, then released: the shape the postmortem shows."""
    readings = []
    for i in range(samples):
        at = START - timedelta(minutes=10) + i * EVERY
        if i == samples // 2:
            readings.append(Reading(at, None, None, None, refused=True))
            continue
        in_use = 20 + i if i < 77 else 97 if i < samples * 3 // 4 else 25
        readings.append(Reading(at, in_use, 97, in_use // 3))
    return readings


def empty_like(chart: TimeChart) -> TimeChart:
    """The same frame (size, axes, zone, span) with a two-point line and nothing else."""
    line = Series("floor", ((chart.start, 0.0), (chart.end, 0.0)), Style.LINE)
    return TimeChart(chart.title, chart.caption, chart.zone, chart.start, chart.end, chart.y_label, (line,))


def report(name: str, figures: dict[str, Any]) -> None:
    print(f"{name}: {figures['samples']} samples per target")
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"  {key:<48} median {value['median ms']:>7.1f} ms  max {value['max ms']:>7.1f} ms  "
                  f"peak {value['peak MB (Python)']:>5.2f} MB")
    floor = figures["floor: an empty chart drawn"]["median ms"]
    drawn = figures["draw: render() one target"]["median ms"]
    print(f"  one chart / floor: {drawn / floor:.2f}×; PNG {figures['png bytes']:,} bytes; "
          f"process max RSS {figures['max RSS MB (process)']} MB")


if __name__ == "__main__":
    sys.exit(main())
