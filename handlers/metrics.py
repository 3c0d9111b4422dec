"""Prometheus metrics, served at GET /metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Children:
    """A labelled metric's children by their label values, each made by prometheus_client's `labels()`
    once: it takes a lock, validates the values and looks them up at every call, which for what counts
    or times every captured message is a cost of its own. `children("message", "stored").inc()`."""

    def __init__(self, metric: Counter | Histogram) -> None:
        self._metric = metric
        self._made: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._made.get(values)
        if child is None:  # two threads may both make it: labels() gives both the same child
            child = self._made.setdefault(values, self._metric.labels(*values))
        return child


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, count_open_incidents: Callable[[], int], count_spooled: Callable[[], int] = lambda: 0) -> None:
        self.registry = CollectorRegistry()
        self.incidents_declared = Counter(
            "incident_bot_incidents_declared", "Incidents declared", registry=self.registry
        )
        self.commands = Counter(
            "incident_bot_commands", "Slash sub-commands received", ["subcommand"], registry=self.registry
        )
        self.events = Counter(
            "incident_bot_events_captured", "Slack events recorded on timelines, by what and outcome",
            ["what", "outcome"], registry=self.registry,
        )
        self.alerts = Counter("incident_bot_alerts", "Alerts received from monitoring, by source and whether they changed "
                              "anything (a repeat does not)", ["source", "outcome"], registry=self.registry)
        self.pages = Counter("incident_bot_pages", "Pages delivered, by outcome", ["outcome"], registry=self.registry)
        self.diagnostics = Counter("incident_bot_diagnostic_runs", "Diagnostic checks run, by check and outcome",
                                   ["check", "outcome"], registry=self.registry)
        self.slack_ack_seconds = Histogram(
            "incident_bot_slack_ack_seconds", "Time from a Slack request reaching the app to its acknowledgement "
            "(Slack gives up at 3 s), by kind of request", ["kind"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
        )
        self.page_ack_seconds = Histogram(
            "incident_bot_page_acknowledge_seconds", "Time from a team being paged to a person acknowledging",
            registry=self.registry, buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200),
        )
        self.postmortems = Counter("incident_bot_postmortems", "Postmortem versions drafted, by outcome in Slack",
                                   ["outcome"], registry=self.registry)
        # Per provider (PagerDuty, Opsgenie): every HTTP attempt with its outcome (ok, timeout, unreachable,
        # http_<status>) and latency, and the calls that failed for good (out of attempts or budget, or refused).
        self.provider_attempts = Counter(
            "incident_bot_provider_attempts", "HTTP attempts to paging providers, by provider and outcome",
            ["provider", "outcome"], registry=self.registry,
        )
        self.provider_failures = Counter(
            "incident_bot_provider_failures", "Provider calls that failed for good (refused, or out of attempts or "
            "budget), by provider", ["provider"], registry=self.registry,
        )
        self.provider_seconds = Histogram(
            "incident_bot_provider_request_seconds", "Latency of one HTTP attempt to a paging provider, by provider",
            ["provider"], registry=self.registry, buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0),
        )
        self.background_failures = Counter(
            "incident_bot_background_failures", "Work after acknowledgement that failed", registry=self.registry
        )
        open_incidents = Gauge("incident_bot_open_incidents", "Incidents not closed", registry=self.registry)
        open_incidents.set_function(lambda: _or_nan(count_open_incidents))
        spooled = Gauge("incident_bot_spooled_writes", "Timeline writes waiting on local disk for the store to come back",
                        registry=self.registry)
        spooled.set_function(lambda: _or_nan(count_spooled))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # bot.paging.providers.Observer
    def attempt(self, provider: str, outcome: str, seconds: float) -> None:
        self.provider_attempts.labels(provider, outcome).inc()
        self.provider_seconds.labels(provider).observe(seconds)

    def failed(self, provider: str) -> None:
        self.provider_failures.labels(provider).inc()


def _or_nan(count: Callable[[], int]) -> float:
    try:
        return float(count())
    except Exception:  # the store is down: report "unknown", never fail the scrape
        return float("nan")
