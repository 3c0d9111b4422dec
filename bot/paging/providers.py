"""What a paging provider is, and the one way the bot talks HTTP to any of them.

The domain says "page this team"; a Provider turns that into its own API's calls. Delivery retries
what is worth retrying (429, 5xx, timeouts, dropped connections) with exponential backoff and full
jitter, honouring Retry-After; anything else (a 400: the request itself is wrong) fails at once with
the provider's own words, so the channel can be shown what to fix.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from bot.incidents.values import Severity
from bot.paging.events import Doer
from bot.wording import counted


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
    """One provider for one team. Each call returns the attempts it took, or raises ProviderError."""

    name: str

    def trigger(self, alert: Alert) -> int: ...

    def acknowledge(self, alert: Alert, by: Doer) -> int: ...

    def resolve(self, alert: Alert, by: Doer) -> int: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How long one call to one provider may take. Each attempt waits at most the transport's timeout
    (10 s to answer, 5 s to connect); retries back off exponentially with full jitter (AWS Architecture
    Blog, "Exponential Backoff and Jitter"), honour Retry-After, and stop after `attempts` or once the
    next attempt could not start within `budget` seconds of the first. docs/design.md states the figures."""

    attempts: int = 5
    base_delay: float = 0.5  # seconds; doubles each attempt, with full jitter
    max_delay: float = 30.0
    budget: float = 60.0  # seconds from the first attempt: no attempt starts after it

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self.max_delay)
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class Observer(Protocol):
    """What is counted of provider calls (handlers.metrics implements it for /metrics)."""

    def attempt(self, provider: str, outcome: str, seconds: float) -> None: ...  # outcome: ok, timeout, …

    def failed(self, provider: str) -> None: ...  # a call that ran out of attempts or was refused


class Transport:
    """One shared httpx client with timeouts, and the retry rules above. `for_provider(name)` gives the
    same client labelled with a provider's name, which is what the metrics count by."""

    def __init__(self, policy: RetryPolicy | None = None, *, timeout: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep, observer: Observer | None = None) -> None:
        self.policy = policy or RetryPolicy()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                                  headers={"User-Agent": "incident-bot"})
        self._sleep = sleep
        self.observer = observer
        self.provider = "provider"

    def for_provider(self, name: str) -> Transport:
        labelled = copy.copy(self)
        labelled.provider = name
        return labelled

    def post(self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None,
             params: dict[str, str] | None = None) -> tuple[httpx.Response, int]:
        """POST JSON until it is accepted (2xx); returns the response and the attempts it took.
        Raises ProviderError with the provider's own words when refused (4xx but 429) or out of
        attempts or budget."""
        reason = "not sent"
        started = time.monotonic()
        attempt = 0
        while True:
            retry_after = None
            began = time.monotonic()
            try:
                response = self._http.post(url, json=body, headers=headers, params=params)
            except httpx.TimeoutException:
                reason, outcome = f"no answer within {self._http.timeout.read:g} s", "timeout"
            except httpx.TransportError as error:
                reason, outcome = f"could not connect ({type(error).__name__})", "unreachable"
            else:
                outcome = "ok" if response.is_success else f"http_{response.status_code}"
                self._observe(outcome, began)
                if response.is_success:
                    return response, attempt + 1
                reason = f"HTTP {response.status_code}: {error_text(response)}"
                if response.status_code != 429 and response.status_code < 500:
                    self._failed()
                    raise ProviderError(reason, attempts=attempt + 1)
                retry_after = response.headers.get("Retry-After")
            if outcome in ("timeout", "unreachable"):
                self._observe(outcome, began)
            attempt += 1
            delay = self.policy.delay(attempt - 1, retry_after)
            if attempt >= self.policy.attempts or time.monotonic() + delay - started > self.policy.budget:
                self._failed()
                raise ProviderError(f"{reason} (after {counted(attempt, 'attempt')})", attempts=attempt)
            self._sleep(delay)

    def close(self) -> None:
        self._http.close()

    def _observe(self, outcome: str, began: float) -> None:
        if self.observer is not None:
            self.observer.attempt(self.provider, outcome, time.monotonic() - began)

    def _failed(self) -> None:
        if self.observer is not None:
            self.observer.failed(self.provider)


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
