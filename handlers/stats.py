"""`/incident stats`: the headline figures across incidents and the main chart, sent to the caller by
direct message.

Acknowledged at once; the report is read, the chart drawn and the DM sent on Background. A file can
only be shared into a conversation by its id (files.completeUploadExternal's `channel_id`), so the DM is
opened first (conversations.open, scope im:write). Failures after the acknowledgement are told to the
caller through the command's response_url (handlers/reporting.py's way), with what would mend them:
trying again only for what passes (a rate limit, Slack or the store down a while), reinstalling the app
for a missing scope, whoever runs the bot for anything else. When the figures reached the DM and only the
chart failed, the caller is told just that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.error import HTTPError

from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.charts.render import render
from bot.reporting.charts import main_chart
from handlers import stats_blocks
from handlers.services import Services
from handlers.slack_client import slack_error
from storage.database import STORE_UNAVAILABLE

log = logging.getLogger(__name__)

DAYS = 90

# The scope each Web API method stats calls needs, as the manifest grants it (docs/install.md, "The
# scopes, and why"): named when Slack's missing_scope answer names none, or lists every scope the method
# takes (conversations.open's may read "channels:write,groups:write,mpim:write,im:write").
SCOPES = {"conversations.open": "im:write", "chat.postMessage": "chat:write",
          "files.getUploadURLExternal": "files:write", "files.completeUploadExternal": "files:write"}
# Slack's errors that pass by themselves (Slack: "Rate limits", and the errors every Web API method lists):
# the client has already retried them, so the caller may try again later.
TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})
# The bot's token refused: only whoever runs the bot mends it (docs/install.md, "When something is wrong").
TOKEN_REFUSED = frozenset({"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired",
                           "not_allowed_token_type", "no_permission", "ekm_access_denied", "team_access_not_granted"})
# conversations.open's refusals of the person themselves (Slack: conversations.open, "Errors").
NO_DM = frozenset({"user_not_found", "user_disabled"})


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
        try:
            services.client.files_upload_v2(channel=channel, file=png.data, filename=chart.filename,
                                            title=chart.chart.title, alt_txt=chart.chart.caption[:1000])
        except Exception as error:  # the figures are in the DM already: the caller must not be told they are not
            raise ChartNotSent(chart.chart.title) from error


class ChartNotSent(Exception):
    """The figures reached the DM; the chart `title` did not (the cause is the exception's __cause__)."""

    def __init__(self, title: str) -> None:
        super().__init__(f"the chart {title!r} was not sent")
        self.title = title


@dataclass(frozen=True)
class Why:
    """A failure in words for the caller (mrkdwn): what went wrong, and what would mend it."""

    said: str
    remedy: str


def why(error: BaseException) -> Why:
    """What went wrong and who can mend it: the caller, by trying again, only when it passes by itself
    (a rate limit, Slack or the store down a while); a missing scope, by reinstalling the app with it;
    anything else, whoever runs the bot (the log has it)."""
    again, operator = stats_blocks.RETRY, stats_blocks.OPERATOR
    if isinstance(error, SlackApiError):
        code = slack_error(error)
        if code == "missing_scope":
            scope = missing_scope(error)
            lacks = f"Slack's {scope} scope" if scope else "a scope the manifest asks for"
            return Why(f"the app lacks {lacks} (Slack answered `missing_scope` to `{_method(error)}`)", stats_blocks.REINSTALL)
        if code in TRANSIENT or error.response.status_code >= 500:
            return Why(f"Slack said `{code}`", again)
        if code in TOKEN_REFUSED:
            return Why(f"Slack refused the bot's token (`{code}`)", stats_blocks.CHECK_TOKEN)
        if code in NO_DM:
            return Why(f"Slack will not open a direct message with you (`{code}`)", stats_blocks.NO_USE)
        return Why(f"Slack said `{code}`", operator)
    if isinstance(error, HTTPError):  # the upload URL (files.slack.com) refused the chart's bytes
        return Why(f"Slack's file server answered HTTP {error.code} to the chart's bytes",
                   again if error.code >= 500 or error.code == 429 else operator)
    if isinstance(error, SlackRequestError):  # the upload URL answered, but not 200
        return Why("Slack's file server did not take the chart's bytes", again)
    if isinstance(error, OSError):  # no answer from Slack, after the client's own retries
        return Why("Slack could not be reached", again)
    if isinstance(error, STORE_UNAVAILABLE):
        return Why("the bot's database did not answer", again)
    return Why(f"the bot failed ({type(error).__name__})", operator)


def missing_scope(error: SlackApiError) -> str | None:
    """The scope to name (mrkdwn, as `` `im:write` ``): the one the manifest grants for the method Slack
    refused, when Slack's `needed` includes it or says nothing; else what `needed` lists; None when neither
    says (Slack: a `missing_scope` answer carries `needed` and `provided`)."""
    needed = [s.strip() for s in str(error.response.get("needed") or "").split(",") if s.strip()]
    ours = SCOPES.get(_method(error))
    if ours and (not needed or ours in needed):
        return f"`{ours}`"
    return " or ".join(f"`{s}`" for s in needed) or None


def _method(error: SlackApiError) -> str:
    """The Web API method that answered, from its URL (…/api/conversations.open)."""
    return str(getattr(error.response, "api_url", "") or "").rstrip("/").rsplit("/", 1)[-1] or "a Web API method"


def report_failure(services: Services, respond: Callable[..., Any]) -> Callable[[BaseException], None]:
    def report(error: BaseException) -> None:
        services.metrics.background_failures.inc()
        if isinstance(error, ChartNotSent) and error.__cause__ is not None:
            log.warning("/incident stats: the figures were sent, the chart was not: %s", error.__cause__)
            reason = why(error.__cause__)
            respond(response_type="ephemeral", text=stats_blocks.chart_failed(DAYS, error.title, reason.said, reason.remedy))
            return
        log.warning("/incident stats failed: %s", error)
        reason = why(error)
        respond(response_type="ephemeral", text=stats_blocks.failed(DAYS, reason.said, reason.remedy))

    return report
