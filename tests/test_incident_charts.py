"""Charts of an incident: the description built from stored samples and recorded moments (compared with
them, not with pixels), the postmortem's upload carrying one PNG per sampled target with the Markdown
that references it, and the last hour beside a watchdog alert and a `diag connections` result, in their
threads. One test runs a real leak against the local PostgreSQL and the watchdog."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from bot.charts.incident import (
    SERIES_COLORS,
    NoChart,
    Reading,
    connections_chart,
    incident_window,
    recent_window,
    spacing_words,
)
from bot.charts.render import PNG_SIGNATURE, render
from bot.charts.spec import Marker, Series, Style, TimeChart
from bot.clock import ManualClock
from bot.incidents.values import EntryKind, Incident, Severity, Status
from bot.paging.service import PageView
from bot.postmortem.draft import AlertRecord, IncidentRecord, build
from bot.postmortem.templates import load_template
from bot.timeline import TimelineItem
from handlers import diagnostics_blocks, paging_blocks
from handlers.postmortems import draft_and_post
from simulators.paging import PagerDutyReceiver
from simulators.slack import SlackSimulator
from storage import diagnostics as sample_store
from storage.database import make_session_factory, transaction
from storage.models import WatchdogSample
from tests.conftest import ALICE, ANNOUNCE, BOB, DBA, RunningBot, database_team, start_bot
from tests.test_diagnostics import Leak
from tests.test_diagnostics import config as leak_config
from tests.test_diagnostics import tick as watchdog_tick
from tests.test_postmortem import Replay, cli_postmortem

PARIS = ZoneInfo("Europe/Paris")
EVERY = timedelta(seconds=30)


def paris(hour: int, minute: int, second: int = 0) -> datetime:
    """A wall-clock time in Paris on the example's day (November: UTC+01:00), as the UTC time stored."""
    return datetime(2023, 11, 12, hour, minute, second, tzinfo=PARIS).astimezone(UTC)


def leak_readings(first: datetime, last: datetime, *, refused: AbstractSet[int] = frozenset(),
                  failed: AbstractSet[int] = frozenset(), usable: int = 97) -> list[Reading]:
    """A leak as the watchdog samples it every 30 s: 20 in use, one more per sample up to the limit;
    sessions idle in a transaction a third of them. Samples numbered in `refused` the target refused
    (it was full), those in `failed` could not be read."""
    readings = []
    for i in range(int((last - first) / EVERY) + 1):
        at = first + i * EVERY
        if i in refused:
            readings.append(Reading(at, None, None, None, refused=True))
        elif i in failed:
            readings.append(Reading(at, None, None, None, error="could not connect: timeout"))
        else:
            in_use = min(20 + i, usable)
            readings.append(Reading(at, in_use, usable, in_use // 3))
    return readings


def series(chart: TimeChart, label: str) -> Series:
    [found] = [s for s in chart.series if s.label == label]
    return found


def decoded(data: bytes) -> Image.Image:
    assert data.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(data))
    image.load()  # every pixel: a truncated file raises here
    return image


# --- The description, pure.


def test_the_chart_shows_the_samples_in_the_window_and_marks_the_moments_of_the_response() -> None:
    readings = leak_readings(paris(8, 30), paris(12, 30), refused={200, 201}, failed={150})
    window = incident_window(paris(9, 5), paris(11, 45), drafted_at=paris(12, 30))
    moments = [
        Marker(paris(9, 5), "detection", "First sign"), Marker(paris(9, 15), "declared", "Declared"),
        Marker(paris(10, 0), "paged", "Paged Database team"), Marker(paris(10, 5), "acknowledged", "Database team acknowledged"),
        Marker(paris(10, 31), "status", "Monitoring"), Marker(paris(11, 45), "resolved", "Resolved"),
        Marker(paris(13, 0), "status", "Closed later"),  # outside the window: not drawn
    ]

    chart = connections_chart("primary", readings, reversed(moments), window, PARIS, title="Incident 7: connections on primary")

    assert isinstance(chart, TimeChart)
    # 2 h 40 min from the first sign to the resolution: a margin of 16 min on each side, whole minutes.
    assert (chart.start, chart.end) == (paris(8, 49), paris(12, 1)) == (window.start, window.end)
    assert chart.zone == "Europe/Paris" and chart.title == "Incident 7: connections on primary"
    shown = [r for r in readings if paris(8, 49) <= r.taken_at <= paris(12, 1)]
    assert len(shown) == 385
    in_use, idle = series(chart, "in use"), series(chart, "idle in a transaction")
    assert in_use.points == tuple((r.taken_at, None if r.in_use is None else float(r.in_use)) for r in shown)
    assert idle.points == tuple((r.taken_at, None if r.idle_in_transaction is None else float(r.idle_in_transaction))
                                for r in shown)
    assert in_use.style is Style.STEP and [v for _, v in in_use.points].count(None) == 3  # refused twice, failed once
    # Wide and solid first, dashed over it: where they are equal (a leak) both lines still show.
    assert chart.series.index(in_use) < chart.series.index(idle)
    assert not in_use.dashed and idle.dashed and in_use.width > idle.width
    assert [(t.value, t.label) for t in chart.thresholds] == [(97.0, "limit (97 usable)")]
    refused = series(chart, "refused: server full")
    assert refused.style is Style.POINTS
    assert refused.points == ((paris(8, 30) + 200 * EVERY, 97.0), (paris(8, 30) + 201 * EVERY, 97.0))
    assert [(m.at, m.kind) for m in chart.markers] == [(m.at, m.kind) for m in moments[:-1]]
    assert chart.caption == (
        "Connections in use on primary against its limit of 97 usable connections, and sessions idle in a "
        "transaction, 385 samples taken about every 30 s by the watchdog from 08:49:00 to 12:01:00, in a chart from "
        "08:49 to 12:01 on November 12, 2023 (Europe/Paris); 2 samples refused (the server was full), drawn as points on the limit line; 1 sample "
        "without figures (the target could not be read) left as gaps; dotted lines mark the first sign of trouble, "
        "the declaration, pages, acknowledgements, status changes and the resolution.")
    png = render(chart)
    assert decoded(png.data).size == (png.width, png.height) == (1200, 600)


def test_the_window_has_a_margin_and_stops_at_the_draft() -> None:
    # A short incident: 10 minutes either side, to whole minutes outward.
    assert incident_window(paris(9, 15, 20), paris(9, 30), paris(12, 0)) == incident_window(paris(9, 15), paris(9, 30), paris(12, 0))
    short = incident_window(paris(9, 15, 20), paris(9, 30, 10), paris(12, 0))
    assert (short.start, short.end) == (paris(9, 5), paris(9, 41))
    # A long one: a tenth of its span (a day: 2 h 24 min).
    long = incident_window(paris(0, 0), paris(0, 0) + timedelta(days=1), paris(0, 0) + timedelta(days=2))
    assert (long.start, long.end) == (paris(0, 0) - timedelta(minutes=144), paris(0, 0) + timedelta(days=1, minutes=144))
    # Not resolved: to the draft; drafted soon after the resolution: no further than the draft.
    assert incident_window(paris(9, 15), None, paris(10, 0)).end == paris(10, 0)
    assert incident_window(paris(9, 15), paris(9, 50), paris(9, 52, 30)).end == paris(9, 53)


@pytest.mark.parametrize(("seconds", "words"), [
    (2.0, "2 s"), (30.4, "30 s"), (119.4, "119 s"), (119.6, "2 min"), (121.0, "2 min"), (150.0, "2.5 min"),
    (301.0, "5 min"), (299.0, "5 min"), (3600.0, "60 min"), (7200.0, "2 h"), (5.4 * 3600, "5.5 h"),
])
def test_the_sampling_interval_is_worded_as_a_person_says_it(seconds: float, words: str) -> None:
    assert spacing_words(seconds) == words


def test_a_watchdog_every_5_minutes_with_jitter_reads_5_min_in_the_caption() -> None:
    # interval_seconds = 300 and a second of drift per sample: the median gap is 301 s, said "5 min".
    readings = [Reading(paris(9, 0) + i * timedelta(seconds=301), 20, 97, 5) for i in range(30)]
    chart = connections_chart("primary", readings, [], incident_window(paris(9, 30), paris(10, 30), paris(12, 0)),
                              PARIS, title="t")
    assert isinstance(chart, TimeChart)
    assert re.search(r"\d+ samples taken about every 5 min by the watchdog", chart.caption), chart.caption
    assert not re.search(r"\d\.\d{2,}", chart.caption)  # no raw decimals anywhere in it


def test_the_caption_says_when_the_samples_ran_and_what_the_chart_spans_apart() -> None:
    # A watchdog started during the incident: its samples fill a part of the chart's window.
    readings = [Reading(paris(22, 54, 49) + i * timedelta(seconds=2), 10, 97, 5) for i in range(58)]
    window = incident_window(paris(22, 55, 5), paris(22, 56, 50), drafted_at=paris(22, 57))
    chart = connections_chart("primary", readings, [], window, PARIS, title="t")
    assert isinstance(chart, TimeChart) and (window.start, window.end) == (paris(22, 45), paris(22, 57))
    assert ("58 samples taken about every 2 s by the watchdog from 22:54:49 to 22:56:43, in a chart from 22:45 to "
            "22:57 on November 12, 2023 (Europe/Paris).") in chart.caption
    one = connections_chart("primary", readings[:1], [], window, PARIS, title="t")
    assert isinstance(one, TimeChart) and "1 sample taken by the watchdog at 22:54:49, in a chart from 22:45" in one.caption
    # Across midnight, each time says its day.
    late = [Reading(paris(23, 58, 30) + i * timedelta(minutes=1), 10, 97, 5) for i in range(4)]
    across = connections_chart("primary", late, [], incident_window(paris(23, 59), paris(23, 59, 30), paris(23, 59, 40)
                                                                    + timedelta(minutes=20)), PARIS, title="t")
    assert isinstance(across, TimeChart)
    assert ("4 samples taken about every 60 s by the watchdog from November 12, 2023 23:58:30 to November 13, 2023 "
            "00:01:30, in a chart from November 12, 2023 23:49 to November 13, 2023 00:10 (Europe/Paris)") in across.caption


def test_a_chart_in_slack_spans_the_last_hour_or_what_was_sampled_of_it() -> None:
    now, hour = paris(10, 0, 37), timedelta(minutes=60)
    every_30_s = [paris(8, 0) + i * EVERY for i in range(241)]

    def span(times: list[datetime]) -> tuple[datetime, datetime]:
        window = recent_window(now, times, hour)
        return window.start, window.end

    # Sampled all hour: the hour, from a whole minute, to the moment.
    assert span(every_30_s) == (paris(9, 0), now)
    # A leak that began 20 minutes ago with the watchdog: from 2 minutes (a tenth) before its first sample.
    assert span([t for t in every_30_s if t >= paris(9, 40, 30)]) == (paris(9, 38), now)
    # 3 minutes of samples: 10 minutes at least, not a sliver.
    assert span([t for t in every_30_s if t >= paris(9, 57, 30)]) == (paris(9, 50), now)
    # Samples from 55 minutes ago: the lead would pass the hour, so the hour it is; none at all: the hour.
    assert span([t for t in every_30_s if t >= paris(9, 5)]) == (paris(9, 0), now)
    assert span([]) == (paris(9, 0), now)
    # Samples after `now` (a clock that moved back) do not count.
    assert span([paris(10, 5)]) == (paris(9, 0), now)


def test_a_limit_that_changed_is_drawn_as_a_series() -> None:
    readings = [*leak_readings(paris(9, 0), paris(9, 30)), *leak_readings(paris(9, 30, 30), paris(10, 0), usable=197)]
    chart = connections_chart("primary", readings, [], incident_window(paris(9, 10), paris(9, 50), paris(11, 0)), PARIS,
                              title="t")
    assert isinstance(chart, TimeChart) and chart.thresholds == ()
    limit = series(chart, "limit (usable)")
    assert {v for _, v in limit.points} == {97.0, 197.0}
    assert "against its limit, which changed between 97 and 197 usable connections" in chart.caption
    assert "dotted lines" not in chart.caption  # nothing marked, nothing said


def test_a_target_without_figures_in_the_window_gets_a_reason_not_a_chart() -> None:
    window = incident_window(paris(9, 15), paris(10, 0), paris(11, 0))
    before = leak_readings(paris(7, 0), paris(8, 0))
    assert connections_chart("replica", before, [], window, PARIS, title="t") == NoChart(
        "replica", "the watchdog recorded no samples from 09:05 to 10:10 on November 12, 2023 (Europe/Paris)")
    full = leak_readings(paris(9, 30), paris(9, 31), refused={0, 1, 2})
    assert connections_chart("primary", full, [], window, PARIS, title="t") == NoChart(
        "primary", "all 3 samples from 09:05 to 10:10 on November 12, 2023 (Europe/Paris) were refused: the server "
                   "was at its connection limit throughout, so there are no figures to draw")
    broken = leak_readings(paris(9, 30), paris(9, 31), refused={0}, failed={1, 2})
    reason = connections_chart("primary", broken, [], window, PARIS, title="t")
    assert isinstance(reason, NoChart) and reason.reason.endswith(
        "has figures: 1 refused, 2 failed (the latest: could not connect: timeout)")


def incident(**changes: object) -> Incident:
    values: dict = dict(id=1, number=7, title="Checkout is timing out", description=None, severity=Severity.SEV2,
                        status=Status.CLOSED, reporter_id=ALICE, declared_at=paris(9, 15), updated_at=paris(11, 50),
                        resolved_at=paris(11, 45), closed_at=paris(11, 50), channel_id="C0INC", channel_name="inc-7")
    return Incident(**{**values, **changes})


def test_the_draft_charts_each_sampled_target_at_the_recorded_moments_and_says_why_others_have_none(tmp_path: Path) -> None:
    items = [
        TimelineItem(1, EntryKind.DECLARED, paris(9, 15), ALICE, "declared", {}),
        TimelineItem(2, EntryKind.PAGED, paris(10, 0), ALICE, "paged", {"team": "database", "page_id": 1}),
        TimelineItem(3, EntryKind.PAGE_ACKNOWLEDGED, paris(10, 5), DBA, "ack", {"page_id": 1}),
        TimelineItem(4, EntryKind.STATUS_CHANGED, paris(10, 31), BOB, "", {"from": "investigating", "to": "monitoring"}),
        TimelineItem(5, EntryKind.STATUS_CHANGED, paris(11, 45), BOB, "", {"from": "monitoring", "to": "resolved"}),
    ]
    page = PageView(1, 1, "database", "pool exhausted", "k", "acknowledged", ALICE, paris(10, 0), None,
                    acknowledged_at=paris(10, 5), acknowledged_by=DBA)
    record = IncidentRecord(
        incident=incident(), items=items, pages=[page], team_names={"database": "Database team"},
        alerts=[AlertRecord("primary", paris(9, 5), paris(11, 40), ["90% in use"]),
                AlertRecord("primary", paris(9, 30), None, ["idle in a transaction"])],
        samples={"primary": leak_readings(paris(8, 30), paris(12, 0)), "retired": leak_readings(paris(9, 0), paris(9, 10))},
        targets={"primary": True, "replica": True, "local": False},
        samples_kept=timedelta(days=7),
    )

    draft = build(record, PARIS, version=2, drafted_at=paris(12, 0))

    assert [c.filename for c in draft.charts] == ["incident-7-postmortem-v2-connections-primary.png",
                                                  "incident-7-postmortem-v2-connections-retired.png"]
    primary = draft.charts[0].chart
    assert (primary.start, primary.end) == (paris(8, 49), paris(12, 0))  # from the watchdog's alert, the first sign
    assert [(m.at, m.kind, m.label) for m in primary.markers] == [
        (paris(9, 5), "detection", "First sign"),
        (paris(9, 15), "declared", "Declared"),
        (paris(9, 30), "alert", "Watchdog alert"),  # the second alert on this target
        (paris(10, 0), "paged", "Paged Database team"),
        (paris(10, 5), "acknowledged", "Database team acknowledged"),
        (paris(10, 31), "status", "Monitoring"),
        (paris(11, 45), "resolved", "Resolved"),
    ]
    assert draft.charts[0].caption == primary.caption and draft.charts[0].image.startswith("![Connections in use on primary")
    assert draft.no_charts == [
        "`local`: the watchdog does not sample it (its backend has no connections to count)",
        "`replica`: the watchdog recorded no samples from 08:49 to 12:00 on November 12, 2023 (Europe/Paris)",
    ]
    # Drafted long after: the samples have aged out, and the line says why there are none.
    later = build(replace(record, samples={}), PARIS, version=3, drafted_at=paris(12, 0) + timedelta(days=30))
    assert later.charts == [] and later.no_charts[1].endswith("(the watchdog keeps samples 7 days)")

    # A team's template that knows nothing of charts still renders the same draft.
    (tmp_path / "ours.md.j2").write_text("# {{ draft.title }}\n{% for f in draft.figures %}{{ f.name }}\n{% endfor %}")
    assert load_template(tmp_path / "ours.md.j2").render(draft).startswith("# Checkout is timing out\nTime to detect\n")


# --- End to end: stored samples, the close, and what Slack received.


def charts_config(tmp_path: Path) -> str:
    # Nothing listens on port 9: a check there answers "unreachable" at once. The watchdog's interval is
    # longer than any test, so the only samples are the ones the test stores.
    return f"""
[slack]
announce_channel = "{ANNOUNCE}"
{database_team()}
[diagnostics.targets.primary]
url = "postgresql+psycopg://postgres@127.0.0.1:9/app"
statement_timeout_ms = 1000

[diagnostics.targets.replica]
url = "postgresql+psycopg://postgres@127.0.0.1:9/replica"

[diagnostics.targets.local]
url = "sqlite:///{tmp_path / 'local.db'}"

[diagnostics.watchdog]
interval_seconds = 1000000

[postmortem]
timezone = "Europe/Paris"
"""


@pytest.fixture
def charted(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
            pagerduty: PagerDutyReceiver) -> Iterator[Replay]:
    slack.add_user(DBA, "dba1", real_name="Dana Bauer", display_name="dana")
    clock.advance(paris(9, 15) - clock.now())
    bot = start_bot(tmp_path, slack, database_url, charts_config(tmp_path), clock=clock,
                    env={"PAGERDUTY_EVENTS_URL": pagerduty.events_url})
    yield Replay(bot, clock)
    bot.stop()


def store_samples(bot: RunningBot, target: str, readings: list[Reading]) -> None:
    sessions: sessionmaker[Session] = make_session_factory(bot.runtime.engine)
    with transaction(sessions) as session:
        for r in readings:
            sample_store.add_sample(session, WatchdogSample(
                target=target, taken_at=r.taken_at, in_use=r.in_use, usable=r.usable, idle_in_transaction=r.idle_in_transaction,
                oldest_idle_in_transaction_seconds=None, refused=r.refused, error=r.error))


def completed_uploads(slack: SlackSimulator) -> list[list[dict]]:
    """The files of each files.completeUploadExternal Slack accepted, in order."""
    return [call.response["files"] for call in slack.calls_to("files.completeUploadExternal") if call.response.get("ok")]


IMAGE = re.compile(r"!\[((?:[^\]\\]|\\.)*)\]\(([^)\s]+)\)")


def test_the_postmortem_upload_carries_a_png_per_sampled_target_that_its_markdown_references(
    charted: Replay, slack: SlackSimulator, database_url: str, tmp_path: Path
) -> None:
    r = charted
    r.declare("declare sev2 Checkout is timing out")
    readings = leak_readings(paris(8, 45), paris(12, 0), refused={150})
    store_samples(r.bot, "primary", readings)
    r.at(paris(10, 0)).command("page database Connection pool exhausted on primary")
    button = next(e for m in slack.messages(r.channel["id"]) for b in m.get("blocks", []) if b.get("type") == "actions"
                  for e in b["elements"] if e["action_id"] == paging_blocks.ACKNOWLEDGE_ACTION)
    r.at(paris(10, 5)).press(paging_blocks.ACKNOWLEDGE_ACTION, button["value"], user=DBA)
    r.at(paris(10, 31)).command("status monitoring", user=BOB)
    r.at(paris(11, 45)).command("resolve Restarted the leaking workers", user=BOB)
    r.at(paris(11, 50)).command("close", user=BOB)

    [files] = completed_uploads(slack)  # one upload: the Markdown and its chart, in one message
    assert [f["name"] for f in files] == ["incident-1-postmortem-v1.md", "incident-1-postmortem-v1-connections-primary.png"]
    markdown_file, png_file = files
    [message] = [m for m in slack.messages(r.channel["id"]) if m.get("upload")]
    assert [f["id"] for f in message["files"]] == [markdown_file["id"], png_file["id"]]
    image = decoded(slack.file_content(png_file["id"]))
    assert image.size == (1200, 600) == (png_file["original_w"], png_file["original_h"])
    assert (png_file["filetype"], png_file["mimetype"], png_file["title"]) == ("png", "image/png", "Incident 1: connections on primary")

    markdown = slack.file_content(markdown_file["id"]).decode()
    charts = markdown.split("\n## Connections during the incident\n")[1].split("\n## ")[0]
    referenced = IMAGE.findall(markdown)
    assert [name for _, name in referenced] == [png_file["name"]]  # exactly the uploaded PNGs
    # The window: the declaration (09:15) to the resolution (11:45), 15 minutes before, and after up to the close.
    shown = [s for s in readings if paris(9, 0) <= s.taken_at <= paris(11, 50)]
    caption = (f"Connections in use on primary against its limit of 97 usable connections, and sessions idle in a "
               f"transaction, {len(shown)} samples taken about every 30 s by the watchdog from 09:00:00 to 11:50:00, in a "
               "chart from 09:00 to 11:50 on November 12, 2023 (Europe/Paris); 1 sample refused (the server was full), drawn as points on the limit "
               "line; dotted lines mark the declaration, pages, acknowledgements, status changes and the resolution.")
    assert referenced[0][0] == caption == png_file["alt_txt"]
    assert f"_Incident 1: connections on primary_ (`{png_file['name']}`): {caption}" in charts
    assert "- No chart for `replica`: the watchdog recorded no samples from 09:00 to 11:50 on November 12, 2023 (Europe/Paris)" in charts
    assert "- No chart for `local`: the watchdog does not sample it (its backend has no connections to count)" in charts

    # What was uploaded is what was stored with the version, and running the upload again sends nothing.
    services = r.bot.runtime.services
    found = services.incidents.find("1")
    assert found is not None
    [version] = services.postmortems.versions(found.id)
    assert [(c.filename, c.png) for c in services.postmortems.charts(version.id)] == [(png_file["name"], slack.file_content(png_file["id"]))]
    assert version.markdown == markdown and version.file_id == markdown_file["id"]
    draft_and_post(services, version.id)
    assert len(completed_uploads(slack)) == 1

    # `incident-bot postmortem` prints the Markdown, says where its charts are, and writes them when asked.
    printed = cli_postmortem(database_url, "1", tmp_path, charts_config(tmp_path))
    assert printed.returncode == 0 and printed.stdout == markdown
    assert f"references 1 chart ({png_file['name']})" in printed.stderr and "nothing was written to disk" in printed.stderr
    env = {**os.environ, "DATABASE_URL": database_url, "INCIDENT_BOT_CONFIG": str(tmp_path / "cli.toml")}
    written = subprocess.run([sys.executable, "-m", "handlers.cli", "postmortem", "1", "--charts", str(tmp_path / "out")],
                             env=env, capture_output=True, text=True, timeout=60, check=False)
    assert written.returncode == 0 and written.stdout == markdown
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [png_file["name"]]
    assert (tmp_path / "out" / png_file["name"]).read_bytes() == slack.file_content(png_file["id"])

    # A redraft is a new version with its own chart, drawn again (its window now ends 15 minutes after the resolution).
    r.at(paris(14, 0)).command("postmortem", user=ALICE)
    first, second = completed_uploads(slack)
    assert [f["name"] for f in second] == ["incident-1-postmortem-v2.md", "incident-1-postmortem-v2-connections-primary.png"]
    again = slack.file_content(second[0]["id"]).decode()
    assert [name for _, name in IMAGE.findall(again)] == [second[1]["name"]] and "from 09:00 to 12:00 on" in again
    assert decoded(slack.file_content(second[1]["id"])).size == (1200, 600)


def test_an_upload_that_fails_is_resumed_whole_once(charted: Replay, slack: SlackSimulator) -> None:
    r = charted
    r.declare("declare sev3 Slow search")
    store_samples(r.bot, "primary", leak_readings(paris(9, 0), paris(9, 40)))
    r.at(paris(9, 30)).command("resolve Reindexed")
    slack.fail_next("files.completeUploadExternal", "internal_error", http_status=200)  # not retried by the client
    r.at(paris(9, 35)).command("close")
    assert completed_uploads(slack) == []
    services = r.bot.runtime.services
    found = services.incidents.find("1")
    assert found is not None
    [version] = services.postmortems.unfinished()
    r.bot.runtime.resume()  # as the next start does
    r.bot.settle()
    r.bot.runtime.resume()
    r.bot.settle()
    [files] = completed_uploads(slack)
    assert [f["name"] for f in files] == ["incident-1-postmortem-v1.md", "incident-1-postmortem-v1-connections-primary.png"]
    assert services.postmortems.get(version.id).file_id == files[0]["id"]


def test_a_diag_connections_result_gets_the_last_hour_in_its_thread(charted: Replay, slack: SlackSimulator,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    r = charted
    r.declare("declare sev2 Checkout is timing out")
    r.at(paris(10, 0))
    store_samples(r.bot, "primary", leak_readings(paris(8, 0), paris(10, 0)))
    before = len(slack.calls_to("files.completeUploadExternal"))
    r.command("diag connections primary")
    r.command("diag connections replica")  # no samples: the result alone
    r.command("diag idle-in-tx primary")  # another check: the result alone

    results = [m for m in slack.messages(r.channel["id"]) if "read-only" in json.dumps(m.get("blocks", []))]
    assert len(results) == 3
    [image] = [m for m in slack.messages(r.channel["id"]) if m.get("upload")]
    assert image["thread_ts"] == results[0]["ts"] and len(image["files"]) == 1
    [file] = completed_uploads(slack)[before:][0]
    assert re.fullmatch(r"connections-primary-20231112-1000\.png", file["name"])
    assert file["title"] == "Connections on primary, the last 60 minutes"
    assert ("121 samples taken about every 30 s by the watchdog from 09:00:00 to 10:00:00, in a chart from 09:00 to "
            "10:00 on November 12, 2023") in file["alt_txt"]
    assert "the declaration and the diagnostic run" in file["alt_txt"]
    assert decoded(slack.file_content(file["id"])).size == (1200, 600)

    # Slack refusing the image: logged, and the result stands.
    slack.fail_next("files.getUploadURLExternal", "missing_scope")
    with caplog.at_level(logging.WARNING, logger="handlers.charts"):
        r.command("diag connections primary")
    assert any("the chart of primary was not posted" in m and "missing_scope" in m for m in caplog.messages)
    results = [m for m in slack.messages(r.channel["id"]) if "read-only" in json.dumps(m.get("blocks", []))]
    assert len(results) == 4 and len([m for m in slack.messages(r.channel["id"]) if m.get("upload")]) == 1


def test_samples_that_began_minutes_ago_fill_the_chart_beside_a_result(charted: Replay, slack: SlackSimulator) -> None:
    r = charted
    r.declare("declare sev2 Checkout is timing out")  # 09:15
    store_samples(r.bot, "primary", leak_readings(paris(9, 15), paris(9, 20)))  # a watchdog started with the leak
    r.at(paris(9, 20, 10)).command("diag connections primary")
    [file] = completed_uploads(slack)[-1]
    assert file["title"] == "Connections on primary, the last 10 minutes"
    assert ("11 samples taken about every 30 s by the watchdog from 09:15:00 to 09:20:00, in a chart from 09:10 to "
            "09:20:10 on November 12, 2023") in file["alt_txt"]


# --- A real leak, the watchdog, Slack and the postmortem.


def test_a_real_leak_is_charted_beside_the_alert_the_diagnostic_and_in_the_postmortem(
    tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock, leak: Leak
) -> None:
    config = leak_config() + '\n[postmortem]\ntimezone = "Europe/Paris"\n'
    bot = start_bot(tmp_path, slack, database_url, config, clock=clock)
    try:
        watchdog_tick(bot, clock)  # a calm baseline
        for _ in range(4):  # 8 more connections every 30 s: the trend runs out within the horizon
            leak.grow(8)
            watchdog_tick(bot, clock)
        [alert] = [m for m in slack.messages(ANNOUNCE) if "Watchdog: connection trouble on primary" in m.get("text", "")]
        [beside_alert] = [m for m in slack.messages(ANNOUNCE) if m.get("upload")]
        assert beside_alert["thread_ts"] == alert["ts"]
        [alert_png] = beside_alert["files"]
        assert alert_png["name"].startswith("connections-primary-") and "the watchdog's alert" in alert_png["alt_txt"]
        assert decoded(slack.file_content(alert_png["id"])).size == (1200, 600)

        [button] = [e for b in alert["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert button["action_id"] == diagnostics_blocks.WATCHDOG_DECLARE_ACTION
        bot.requests.block_action(button["action_id"], button["value"], user_id=BOB, channel_id=ANNOUNCE)
        bot.settle()
        [incident] = bot.runtime.services.incidents.list_open()
        assert incident.channel_id is not None
        bot.requests.command("diag connections primary", user_id=ALICE, channel_id=incident.channel_id)
        bot.settle()
        [beside_result] = [m for m in slack.messages(incident.channel_id) if m.get("upload")]
        [result] = [m for m in slack.messages(incident.channel_id) if m["ts"] == beside_result["thread_ts"]]
        assert "connections in use" in result["blocks"][0]["text"]["text"]

        leak.close()
        for _ in range(3):
            watchdog_tick(bot, clock)
        bot.requests.command("resolve Closed the leaking connections", user_id=ALICE, channel_id=incident.channel_id)
        bot.settle()
        watchdog_tick(bot, clock)
        bot.requests.command("close", user_id=ALICE, channel_id=incident.channel_id)
        bot.settle()

        [files] = [f for f in completed_uploads(slack) if f[0]["name"].endswith(".md")]
        markdown_file, png_file = files
        assert png_file["name"] == f"incident-{incident.number}-postmortem-v1-connections-primary.png"
        assert decoded(slack.file_content(png_file["id"])).size == (1200, 600)
        markdown = slack.file_content(markdown_file["id"]).decode()
        assert [name for _, name in IMAGE.findall(markdown)] == [png_file["name"]]
        samples = bot.runtime.services.watchdog.recent("primary", 100)
        assert f"{len(samples)} samples taken about every 30 s by the watchdog" in png_file["alt_txt"]  # every one of them
        assert "the first sign of trouble, the declaration" in png_file["alt_txt"]
    finally:
        bot.stop()


@pytest.fixture
def leak() -> Iterator[Leak]:
    opened = Leak(application="charted-leak")
    yield opened
    opened.close()


def test_in_use_shows_where_every_connection_is_idle_in_a_transaction() -> None:
    """An outside check saw one line where the legend named two: the idle line drawn over an equal in-use
    line hid it. Both colours must be in the picture."""
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    readings = [Reading(start + timedelta(minutes=i), min(i, 40), 97, min(i, 40)) for i in range(60)]
    chart = connections_chart("primary", readings, [], incident_window(start, start + timedelta(minutes=59), start + timedelta(hours=2)),
                              ZoneInfo("Europe/Paris"), title="A leak")
    assert isinstance(chart, TimeChart)
    for hex_colour in (SERIES_COLORS["in use"], SERIES_COLORS["idle"]):
        assert rgb(hex_colour) in plot_colours(chart), hex_colour
    # As it was drawn before: the same width, both solid, idle last.
    before = replace(chart, series=tuple(replace(s, dashed=False, width=1.8) for s in chart.series))
    assert rgb(SERIES_COLORS["in use"]) not in plot_colours(before)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))


def plot_colours(chart: TimeChart) -> set[tuple[int, int, int]]:
    """The colours drawn left of the legend (which shows every series' colour whatever the plot shows)."""
    image = Image.open(io.BytesIO(render(chart).data)).convert("RGB")
    plot = image.crop((0, 0, int(image.width * 0.8), image.height))
    return {colour for _, colour in plot.getcolors(maxcolors=1 << 20) or []}
