"""PagerDuty Events API v2: trigger, acknowledge and resolve one alert per incident and team.

Sources: PagerDuty/api-schema reference/events-v2/openapiv3.json (fields, types, required, enums; it
states no lengths) and PagerDuty/developer-docs docs/events-API-v2/02-Trigger-Events.md ("Parameters":
routing_key is the 32-character Integration Key, dedup_key at most 255 characters, payload.summary at
most 1024 characters) and 01-Overview.md ("Size Limits": an event is at most 512 KB). Nothing else
(source, component, group, class, custom_details, links, client, client_url) has a documented limit
of its own: only the 512 KB bound holds them, and `fit_event` keeps an event within it.
"""

from __future__ import annotations

import json
from typing import Any

from bot.incidents.values import Severity
from bot.paging.events import Doer
from bot.paging.limits import clean, fit_values, shorten
from bot.paging.providers import Alert, ProviderError, Transport

SEVERITY = {Severity.SEV1: "critical", Severity.SEV2: "error", Severity.SEV3: "warning", Severity.SEV4: "info"}
ROUTING_KEY_LENGTH = 32
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
MAX_EVENT_BYTES = 512 * 1024
CLIENT = "incident-bot"
LINK_TEXT = "Incident channel in Slack"


class PagerDuty:
    name = "PagerDuty"

    def __init__(self, transport: Transport, events_url: str, routing_key: str) -> None:
        self._transport = transport
        self._url = events_url
        self._routing_key = routing_key

    def trigger(self, alert: Alert) -> int:
        return self._transport.post(self._url, trigger_event(self._routing_key, alert))[1]

    def acknowledge(self, alert: Alert, by: Doer) -> int:
        # Events v2 acknowledge and resolve carry no note or author: the key says which alert, that is all.
        return self._transport.post(self._url, follow_up_event(self._routing_key, "acknowledge", alert))[1]

    def resolve(self, alert: Alert, by: Doer) -> int:
        return self._transport.post(self._url, follow_up_event(self._routing_key, "resolve", alert))[1]


def trigger_event(routing_key: str, alert: Alert) -> dict[str, Any]:
    """The trigger event for `alert`, within every documented limit (see the module docstring), its
    free text sendable as UTF-8 (limits.clean). Raises ProviderError (nothing sent) if the alert's key
    is longer than a dedup_key may be."""
    payload: dict[str, Any] = {
        "summary": summary(alert.summary),
        "source": alert.source,
        "severity": SEVERITY[alert.severity],
        "timestamp": alert.timestamp.isoformat(),
        "component": clean(alert.team),
        "group": "incident-bot",
        "class": "incident",
        "custom_details": {key: clean(value) for key, value in alert.details.items()},
    }
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(alert.key),
        "payload": payload,
        "client": CLIENT,
    }
    if alert.link:
        body["links"] = [{"href": alert.link, "text": clean(alert.link_text or LINK_TEXT)}]
        body["client_url"] = alert.link
    return fit_event(body)


def follow_up_event(routing_key: str, action: str, alert: Alert) -> dict[str, Any]:
    """An acknowledge or resolve event: routing_key, event_action and dedup_key, nothing else
    (02-Trigger-Events.md, "Example Request Payloads"). Raises ProviderError if the key is too long."""
    return {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key(alert.key)}


def dedup_key(key: str) -> str:
    """`key` as the event's dedup_key, never shortened: a cut key would name another alert, or none.
    02-Trigger-Events.md: "The maximum permitted length of this property is 255 characters." Keys the
    bot makes fit (bot.paging.keys.alert_key); one that does not raises ProviderError, nothing sent."""
    if len(key) > MAX_DEDUP_KEY:
        raise ProviderError(f"the alert's key has {len(key)} characters and PagerDuty's dedup_key takes at "
                            f"most {MAX_DEDUP_KEY}, so it was not sent", attempts=0)
    return key


def summary(text: str) -> str:
    """payload.summary: at most 1024 characters, shortened with "…" (02-Trigger-Events.md: "The maximum
    permitted length of this property is 1024 characters."). Required and non-blank, so a blank one
    reads "(no summary)"."""
    return shorten(text, MAX_SUMMARY) if text.strip() else "(no summary)"


def event_size(body: dict[str, Any]) -> int:
    """Bytes of `body` as JSON, the largest way it may be encoded: every non-ASCII character escaped
    (6 bytes, 12 beyond the BMP) and ", " / ": " separators. httpx sends compact UTF-8, never more."""
    return len(json.dumps(body, ensure_ascii=True).encode("ascii"))


def fit_event(body: dict[str, Any]) -> dict[str, Any]:
    """`body` within 512 KB (01-Overview.md, "Size Limits": "Events API payloads are limited to 512 KB",
    taken as 512 × 1024 bytes). The free text with no limit of its own is shortened with "…", the
    longest first: payload.component, custom_details values and the link's text. If that is not
    enough (only an absurd link could do that), the link and client_url are dropped."""
    if event_size(body) <= MAX_EVENT_BYTES:
        return body
    payload = body["payload"]
    details = payload.get("custom_details") or {}
    links = body.get("links") or []
    texts = {f"detail:{key}": str(value) for key, value in details.items()}
    if isinstance(payload.get("component"), str):
        texts["component"] = payload["component"]
    if links and isinstance(links[0].get("text"), str):
        texts["link_text"] = links[0]["text"]

    def with_texts(values: dict[str, str]) -> dict[str, Any]:
        fitted = {**payload, "custom_details": {key: values[f"detail:{key}"] for key in details}}
        if "component" in values:
            fitted["component"] = values["component"]
        event = {**body, "payload": fitted}
        if "link_text" in values:
            event["links"] = [{**links[0], "text": values["link_text"]}, *links[1:]]
        return event

    event = with_texts(fit_values(texts, lambda values: event_size(with_texts(values)) <= MAX_EVENT_BYTES))
    if event_size(event) > MAX_EVENT_BYTES:
        event = {key: value for key, value in event.items() if key not in ("links", "client_url")}
    return event
