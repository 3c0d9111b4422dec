"""The report written to a directory: `report.md` and the PNG charts it references by relative path.

The directory ends up holding report.md and exactly the charts it references: a chart of an earlier run
into the same directory that this run has no data for is removed (other files are left alone), so no
image there contradicts the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.charts.render import render
from bot.reporting.charts import report_charts
from bot.reporting.markdown import render_markdown
from bot.reporting.report import Measure, Report

REPORT_FILE = "report.md"
# Every chart file a report may write (bot/reporting/charts.py): what a later run may replace or remove.
CHART_FILES = frozenset({"incidents-per-week.png", "pages-per-team.png", "page-acknowledgement.png",
                         *(f"time-to-{m.value}.png" for m in Measure)})


@dataclass(frozen=True, slots=True)
class Written:
    report: Path  # report.md
    charts: list[Path]  # the PNGs it references, in the order it shows them


def write_report(report: Report, directory: Path) -> Written:
    """Draw the charts and write them and report.md into `directory` (made if missing). Raises OSError
    when the directory cannot be made or written."""
    directory.mkdir(parents=True, exist_ok=True)
    charts = report_charts(report)
    written = []
    for chart in charts:
        path = directory / chart.filename
        path.write_bytes(render(chart.chart).data)
        written.append(path)
    for stale in CHART_FILES - {c.filename for c in charts}:
        (directory / stale).unlink(missing_ok=True)
    markdown = directory / REPORT_FILE
    markdown.write_text(render_markdown(report, charts), encoding="utf-8")
    return Written(markdown, written)


def new_directory(parent: Path, stem: str) -> Path:
    """`parent/stem`, or `stem-2`, `stem-3`… when taken: a default output never overwrites an earlier report."""
    candidate, n = parent / stem, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{stem}-{n}"
    return candidate
