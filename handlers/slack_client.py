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


def make_web_client(token: str, base_url: str) -> WebClient:
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


def slack_error(error: BaseException) -> str:
    """The short error code Slack gave (`name_taken`, `not_in_channel`…), or the exception's kind."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or f"HTTP {error.response.status_code}")
    return type(error).__name__
