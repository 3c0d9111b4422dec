"""PagerDuty Events API v2: trigger, acknowledge and resolve one alert per incident and team."""

from __future__ import annotations

from bot.incidents.values import Severity
from bot.paging.providers import Alert, Transport

SEVERITY = {Severity.SEV1: "critical", Severity.SEV2: "error", Severity.SEV3: "warning", Severity.SEV4: "info"}
MAX_SUMMARY = 1024


class PagerDuty:
    name = "PagerDuty"

    def __init__(self, transport: Transport, events_url: str, routing_key: str) -> None:
        self._transport = transport
        self._url = events_url
        self._routing_key = routing_key

    def trigger(self, alert: Alert) -> int:
        body = {
            **self._event("trigger", alert),
            "payload": {
                "summary": alert.summary[:MAX_SUMMARY],
                "source": alert.source,
                "severity": SEVERITY[alert.severity],
                "timestamp": alert.timestamp.isoformat(),
                "component": alert.team,
                "group": "incident-bot",
                "class": "incident",
                "custom_details": alert.details,
            },
            "client": "incident-bot",
        }
        if alert.link:
            body["links"] = [{"href": alert.link, "text": alert.link_text or "Incident channel in Slack"}]
            body["client_url"] = alert.link
        return self._transport.post(self._url, body)[1]

    def acknowledge(self, alert: Alert, by: str) -> int:
        return self._transport.post(self._url, self._event("acknowledge", alert))[1]

    def resolve(self, alert: Alert, by: str) -> int:
        return self._transport.post(self._url, self._event("resolve", alert))[1]

    def _event(self, action: str, alert: Alert) -> dict[str, object]:
        return {"routing_key": self._routing_key, "event_action": action, "dedup_key": alert.key}
