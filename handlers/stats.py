"""`/incident stats`: the headline figures across incidents and the main chart, sent to the caller by
direct message.

Acknowledged at once; the report is read, the chart drawn and the DM sent on Background. A file can
only be shared into a conversation by its id (files.completeUploadExternal's `channel_id`), so the DM is
opened first (conversations.open, scope im:write). Failures after the acknowledgement are told to the
caller through the command's response_url (handlers/reporting.py's way).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.charts.render import render
from bot.reporting.charts import main_chart
from handlers import stats_blocks
from handlers.services import Services
from handlers.slack_client import slack_error
from storage.database import STORE_UNAVAILABLE

log = logging.getLogger(__name__)

DAYS = 90


def stats_command(services: Services, user_id: str, respond: Callable[..., Any]) -> str:
    """Queue the DM; returns the acknowledgement."""
    services.background.submit(f"stats:{user_id}", lambda: send_stats(services, user_id),
                               on_error=report_failure(services, respond))
    return stats_blocks.ACKNOWLEDGED.format(days=DAYS)


def send_stats(services: Services, user_id: str) -> None:
    now = services.clock.now()
    report = services.reports.report(now - timedelta(days=DAYS), now)
    chart = main_chart(report)
    png = render(chart.chart) if chart else None  # drawn before anything is sent: a failure sends nothing half
    channel = services.client.conversations_open(users=user_id)["channel"]["id"]
    text, blocks = stats_blocks.headline(report, DAYS)
    services.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    if chart is not None and png is not None:
        services.client.files_upload_v2(channel=channel, file=png.data, filename=chart.filename,
                                        title=chart.chart.title, alt_txt=chart.chart.caption[:1000])


def report_failure(services: Services, respond: Callable[..., Any]) -> Callable[[BaseException], None]:
    def report(error: BaseException) -> None:
        services.metrics.background_failures.inc()
        log.warning("/incident stats failed: %s", error)
        if isinstance(error, SlackApiError):
            what = f"Slack said `{slack_error(error)}`"
        elif isinstance(error, STORE_UNAVAILABLE):
            what = "the bot's database did not answer"
        else:
            what = f"the bot failed ({type(error).__name__})"
        respond(response_type="ephemeral", text=stats_blocks.failed(DAYS, what))

    return report
