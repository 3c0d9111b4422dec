"""The one Slack Web API client: honours SLACK_API_URL, retries rate limits, server errors and dropped
connections the way slack_sdk documents (Retry-After included)."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

TIMEOUT_SECONDS = 10
INSTANT_TIMEOUT_SECONDS = 2


def make_web_client(token: str, base_url: str) -> WebClient:
    """For everything done after Slack was answered: worth retrying, within Slack's rules."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=3),
            RateLimitErrorRetryHandler(max_retry_count=5),
            ServerErrorRetryHandler(max_retry_count=3),
        ],
    )


def make_instant_client(token: str, base_url: str) -> WebClient:
    """For the few calls made before Slack is answered (opening a form: its trigger_id lives 3 seconds):
    no retries and a short timeout, so a rate limit cannot make the answer late."""
    return WebClient(token=token, base_url=base_url, timeout=INSTANT_TIMEOUT_SECONDS)


def slack_error(error: BaseException) -> str:
    """The short error code Slack gave (`name_taken`, `not_in_channel`…), or the exception's kind."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or f"HTTP {error.response.status_code}")
    return type(error).__name__
