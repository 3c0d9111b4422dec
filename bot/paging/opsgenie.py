"""Opsgenie Alert API: create, acknowledge and close one alert per incident and team, by alias.

Sources: opsgenie/opsgenie-oas definitions/alert.yaml (CreateAlertPayload, AlertActionPayload: the
fields and types; it states no lengths) and Opsgenie's Alert API documentation (docs.opsgenie.com/docs/
alert-api, "Create Alert", "Acknowledge Alert", "Close Alert"), whose limits are: message 130
characters, alias 512, description 15000, responders and visibleTo 50 each, actions 10 of at most 50
characters, tags 20 of at most 50, details 8000 characters in total, entity 512, source 100, user 100,
note 25000. The bot sends no responders, visibleTo or actions (the integration's team is the responder).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from bot.incidents.values import Severity
from bot.paging.events import Doer
from bot.paging.limits import fit_values, shorten
from bot.paging.providers import Alert, ProviderError, Transport

PRIORITY = {Severity.SEV1: "P1", Severity.SEV2: "P2", Severity.SEV3: "P3", Severity.SEV4: "P4"}
MAX_MESSAGE = 130
MAX_ALIAS = 512
MAX_DESCRIPTION = 15000
MAX_ENTITY = 512
MAX_SOURCE = 100
MAX_USER = 100
MAX_NOTE = 25000
MAX_TAGS = 20
MAX_TAG = 50
MAX_DETAILS = 8000
SOURCE = "incident-bot"  # `source` of what the bot tells Opsgenie; the default would be our IP address


class Opsgenie:
    name = "Opsgenie"

    def __init__(self, transport: Transport, api_url: str, api_key: str) -> None:
        self._transport = transport
        self._url = api_url.rstrip("/")
        self._headers = {"Authorization": f"GenieKey {api_key}"}

    def trigger(self, alert: Alert) -> int:
        return self._transport.post(f"{self._url}/v2/alerts", create_body(alert), self._headers)[1]

    def acknowledge(self, alert: Alert, by: Doer) -> int:
        return self._action("acknowledge", alert, action_body("acknowledge", by))

    def resolve(self, alert: Alert, by: Doer) -> int:
        return self._action("close", alert, action_body("close", by))

    def _action(self, action: str, alert: Alert, body: dict[str, Any]) -> int:
        url = f"{self._url}/v2/alerts/{quote(alias(alert.key), safe='')}/{action}"
        return self._transport.post(url, body, self._headers, params={"identifierType": "alias"})[1]


def create_body(alert: Alert) -> dict[str, Any]:
    """The Create Alert body for `alert`, every field within its limit (module docstring). Raises
    ProviderError (nothing sent) if the alert's key is longer than an alias may be."""
    return {
        "message": message(alert.summary),
        "alias": alias(alert.key),
        "description": description(alert.summary, alert.link),
        "priority": PRIORITY[alert.severity],
        "source": source(alert.source),
        "entity": entity(alert.team),
        "tags": tags(["incident-bot", alert.severity.value]),
        "details": details({**alert.details, **({"slack_channel": alert.link} if alert.link else {})}),
    }


def action_body(action: str, by: Doer) -> dict[str, Any]:
    """The body of an "acknowledge" or "close" action: `user` is who did it, by name
    (AlertActionPayload.user, "Display name of the request owner"), `note` says what was done, where
    and by whom ("Acknowledged in PagerDuty by Dana Scully"; "Closed: resolved in Slack by Alice Martin",
    since Opsgenie calls resolving closing), `source` is the bot."""
    who = Doer(user(by.name), by.where)
    words = who.said("Acknowledged") if action == "acknowledge" else "Closed: " + who.said("resolved")
    return {"user": who.name, "source": SOURCE, "note": note(words)}


def message(text: str) -> str:
    """`message`: required, at most 130 characters (Alert API docs, Create Alert: "Message of the
    alert", limit 130 characters), shortened with "…"; a blank one reads "(no message)"."""
    return shorten(text, MAX_MESSAGE) if text.strip() else "(no message)"


def alias(key: str) -> str:
    """`alias` (also the identifier in an action's URL, identifierType=alias): at most 512 characters
    (Alert API docs, Create Alert: alias, limit 512 characters). Never shortened: a cut alias names
    another alert, or none. Keys the bot makes have at most 255 (bot.paging.keys); a longer one raises
    ProviderError and nothing is sent."""
    if len(key) > MAX_ALIAS:
        raise ProviderError(f"the alert's key has {len(key)} characters and Opsgenie's alias takes at most "
                            f"{MAX_ALIAS}, so it was not sent", attempts=0)
    return key


def description(summary: str, link: str | None) -> str:
    """`description`: at most 15000 characters (Alert API docs, Create Alert: description, limit 15000
    characters). The summary, shortened with "…" if need be, then the Slack link whole (a cut URL leads
    nowhere); a link too long to leave the summary room is left out (it is in `details` too)."""
    tail = f"\n\nSlack: {link}" if link else ""
    if len(tail) > MAX_DESCRIPTION // 2:
        tail = ""
    return shorten(summary, MAX_DESCRIPTION - len(tail)) + tail


def entity(name: str) -> str:
    """`entity`, the team's display name: at most 512 characters (Alert API docs, Create Alert: entity,
    limit 512 characters), shortened with "…"."""
    return shorten(name, MAX_ENTITY)


def source(name: str) -> str:
    """`source`: at most 100 characters (Alert API docs, Create Alert and the actions: source, limit 100
    characters), shortened with "…"."""
    return shorten(name, MAX_SOURCE)


def user(name: str) -> str:
    """`user`, a person's display name: at most 100 characters (Alert API docs, Create Alert and the
    actions: user, limit 100 characters), shortened with "…"; a blank name reads "someone"."""
    return shorten(name, MAX_USER) if name.strip() else "someone"


def note(text: str) -> str:
    """`note`: at most 25000 characters (Alert API docs, Create Alert and the actions: note, limit 25000
    characters), shortened with "…"."""
    return shorten(text, MAX_NOTE)


def tags(items: list[str]) -> list[str]:
    """`tags`: at most 20, each at most 50 characters (Alert API docs, Create Alert: tags, limit 20 × 50
    characters; "Alerts and Alert Fields": "At most 20 tags ... each tag is limited to at most 50
    characters"). A cut tag would be another tag, so a longer one is left out, as are those past 20."""
    return [tag for tag in items if 0 < len(tag) <= MAX_TAG][:MAX_TAGS]


def details(values: dict[str, str]) -> dict[str, str]:
    """`details`: at most 8000 characters in total, keys and values (Alert API docs, Create Alert:
    details, limit 8000 characters total). The longest values are shortened with "…" until it fits."""
    return fit_values(values, lambda fitted: sum(len(k) + len(v) for k, v in fitted.items()) <= MAX_DETAILS)
