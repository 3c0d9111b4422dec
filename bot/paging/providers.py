"""What a paging provider is, and the one way the bot talks HTTP to any of them.

The domain says "page this team"; a Provider turns that into its own API's calls. Delivery retries
what is worth retrying (429, 5xx, timeouts, dropped connections) with exponential backoff and full
jitter, honouring Retry-After; anything else (a 400: the request itself is wrong) fails at once with
the provider's own words, so the channel can be shown what to fix.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from bot.incidents.values import Severity


@dataclass(frozen=True)
class Alert:
    """One incident's page to one team, in provider-neutral terms."""

    key: str  # stable for this incident and team: PagerDuty's dedup_key, Opsgenie's alias
    summary: str
    severity: Severity
    source: str
    team: str
    timestamp: datetime
    details: dict[str, str] = field(default_factory=dict)
    link: str | None = None  # the incident's Slack channel
    link_text: str | None = None


class ProviderError(Exception):
    """A provider refused or never answered; `reason` is what to show people."""

    def __init__(self, reason: str, *, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class Provider(Protocol):
    name: str

    def trigger(self, alert: Alert) -> int: ...  # returns the attempts it took

    def acknowledge(self, alert: Alert, by: str) -> int: ...

    def resolve(self, alert: Alert, by: str) -> int: ...


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5  # seconds; doubles each attempt, with full jitter
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self.max_delay)
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class Transport:
    """One shared httpx client with timeouts, and the retry rules above."""

    def __init__(self, policy: RetryPolicy | None = None, *, timeout: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = policy or RetryPolicy()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                                  headers={"User-Agent": "incident-bot"})
        self._sleep = sleep

    def post(self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None,
             params: dict[str, str] | None = None) -> tuple[httpx.Response, int]:
        """POST JSON until it is accepted (2xx); returns the response and the attempts it took."""
        reason = "not sent"
        for attempt in range(self.policy.attempts):
            retry_after = None
            try:
                response = self._http.post(url, json=body, headers=headers, params=params)
            except httpx.TimeoutException:
                reason = f"no answer within {self._http.timeout.read:g} s"
            except httpx.TransportError as error:
                reason = f"could not connect ({type(error).__name__})"
            else:
                if response.is_success:
                    return response, attempt + 1
                reason = f"HTTP {response.status_code}: {error_text(response)}"
                if response.status_code != 429 and response.status_code < 500:
                    raise ProviderError(reason, attempts=attempt + 1)
                retry_after = response.headers.get("Retry-After")
            if attempt + 1 < self.policy.attempts:
                self._sleep(self.policy.delay(attempt, retry_after))
        raise ProviderError(f"{reason} (after {self.policy.attempts} attempts)", attempts=self.policy.attempts)

    def close(self) -> None:
        self._http.close()


def error_text(response: httpx.Response) -> str:
    """The provider's own explanation, short: PagerDuty's message and errors, Opsgenie's message and
    field errors."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:200]
    message = str(body.get("message") or body.get("status") or response.reason_phrase)
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        message += ": " + "; ".join(map(str, errors))
    elif isinstance(errors, dict) and errors:
        message += ": " + "; ".join(f"{k}: {v}" for k, v in errors.items())
    return message[:300]
