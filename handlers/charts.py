"""Slack's side of charts beside a message: the last hour of a target's connections, as the watchdog
sampled them (from shortly before the first sample when they began later, at least 10 minutes, so what
there is fills the chart), uploaded as one image in the thread of the message it belongs to (a watchdog alert, a
`/incident diag connections` result), so a channel gets one reply, not a stream of images.

The chart comes after its message and never holds it up: it is drawn and uploaded on the background
lanes (`services.background`) once the message is posted. A chart that cannot be drawn or uploaded is
logged and counted; the message stays as it is. A target without samples in the last hour gets no chart
(the message already says what the check found).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError

from bot.charts.incident import NoChart, Reading, connections_chart, recent_window
from bot.charts.spec import Marker
from bot.wording import counted
from handlers.postmortems import alt_text
from handlers.services import Services
from handlers.slack_client import slack_error

log = logging.getLogger(__name__)

RECENT = timedelta(minutes=60)  # the stretch a chart beside an alert or a diagnostic shows
MAX_SAMPLES = 2000  # the newest samples read for it: an hour of them down to an interval of 2 s


def post_recent_chart(services: Services, target: str, channel: str, thread_ts: str,
                      moments: Sequence[Marker] = ()) -> None:
    """Queue the chart of `target`'s last hour for the thread `thread_ts` in `channel`; returns at once."""
    services.background.submit(f"chart:{target}", lambda: upload_recent_chart(services, target, channel, thread_ts, moments),
                               on_error=lambda error: _failed(services, target, channel, error))


def upload_recent_chart(services: Services, target: str, channel: str, thread_ts: str,
                        moments: Sequence[Marker] = ()) -> str | None:
    """Draw `target`'s last hour (`moments` marked; less when its samples began later, down to 10
    minutes: bot.charts.incident.recent_window) and upload it as one image into the thread
    (files_upload_v2: files.getUploadURLExternal, the bytes, files.completeUploadExternal with
    `thread_ts`). Returns the file's id; None when there were no samples to draw."""
    zone = ZoneInfo(services.settings.file.postmortem.timezone)
    now = services.clock.now()
    readings = [Reading(s.taken_at, s.in_use, s.usable, s.idle_in_transaction, refused=s.refused is not None)
                for s in services.watchdog.recent(target, MAX_SAMPLES)]  # the newest; the chart keeps its window
    window = recent_window(now, (r.taken_at for r in readings), RECENT)
    minutes = int((window.end - window.start).total_seconds() // 60)
    chart = connections_chart(target, readings, moments, window, zone,
                              title=f"Connections on {target}, the last {counted(minutes, 'minute')}")
    if isinstance(chart, NoChart):
        log.info("no chart of %s beside its message: %s", target, chart.reason)
        return None
    from bot.charts.render import render  # matplotlib loads at the first chart, not at start-up

    png = render(chart)
    slug = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-") or "target"
    answer = services.client.files_upload_v2(
        channel=channel, thread_ts=thread_ts, file=png.data,
        filename=f"connections-{slug}-{now.astimezone(zone):%Y%m%d-%H%M}.png",
        title=chart.title, alt_txt=alt_text(chart.caption),
    )
    uploaded = answer.get("file") or (answer.get("files") or [{}])[0]
    return str(uploaded.get("id")) if uploaded.get("id") else None


def _failed(services: Services, target: str, channel: str, error: BaseException) -> None:
    services.metrics.background_failures.inc()
    why = slack_error(error) if isinstance(error, SlackApiError) else type(error).__name__
    log.warning("the chart of %s was not posted in %s (%s); its message stands", target, channel, why)
