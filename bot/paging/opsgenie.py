"""Opsgenie Alert API: create, acknowledge and close one alert per incident and team, by alias."""

from __future__ import annotations

from urllib.parse import quote

from bot.incidents.values import Severity
from bot.paging.providers import Alert, Transport

PRIORITY = {Severity.SEV1: "P1", Severity.SEV2: "P2", Severity.SEV3: "P3", Severity.SEV4: "P4"}
MAX_MESSAGE = 130
MAX_DESCRIPTION = 15000


class Opsgenie:
    name = "Opsgenie"

    def __init__(self, transport: Transport, api_url: str, api_key: str) -> None:
        self._transport = transport
        self._url = api_url.rstrip("/")
        self._headers = {"Authorization": f"GenieKey {api_key}"}

    def trigger(self, alert: Alert) -> int:
        description = alert.summary + (f"\n\nSlack: {alert.link}" if alert.link else "")
        body = {
            "message": _shorten(alert.summary, MAX_MESSAGE),
            "alias": alert.key,
            "description": description[:MAX_DESCRIPTION],
            "priority": PRIORITY[alert.severity],
            "source": alert.source,
            "entity": alert.team,
            "tags": ["incident-bot", alert.severity.value],
            "details": {**alert.details, **({"slack_channel": alert.link} if alert.link else {})},
        }
        return self._transport.post(f"{self._url}/v2/alerts", body, self._headers)[1]

    def acknowledge(self, alert: Alert, by: str) -> int:
        return self._action("acknowledge", alert, by)

    def resolve(self, alert: Alert, by: str) -> int:
        return self._action("close", alert, by)

    def _action(self, action: str, alert: Alert, by: str) -> int:
        url = f"{self._url}/v2/alerts/{quote(alert.key, safe='')}/{action}"
        body = {"user": by[:100], "source": alert.source, "note": f"{action.capitalize()}d from Slack by {by}"}
        return self._transport.post(url, body, self._headers, params={"identifierType": "alias"})[1]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
