"""What a provider says happened to one of the bot's alerts, in provider-neutral terms.

PagerDuty's v3 webhooks and Opsgenie's outgoing Webhook integration each report what people (or the
provider itself) did to an alert the bot raised. Parsers turn their payloads into `ProviderEvent`s;
the paging service applies them. Pure values: no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ProviderAction(StrEnum):
    """What happened. The first four change what the bot believes about the page; the rest are told."""

    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"  # by a person, or the provider's acknowledgement timeout
    RESOLVED = "resolved"  # PagerDuty resolved; Opsgenie closed (or deleted) the alert
    REOPENED = "reopened"
    TRIGGERED = "triggered"  # the provider opened the alert (confirms delivery)
    REASSIGNED = "reassigned"  # to another person
    ESCALATED = "escalated"  # the provider's own escalation moved it on
    DELEGATED = "delegated"  # to another escalation policy or team
    PRIORITY_CHANGED = "priority_changed"
    NOTE_ADDED = "note_added"
    RESPONDER_ADDED = "responder_added"
    RESPONDER_REPLIED = "responder_replied"
    STATUS_UPDATE = "status_update"
    SNOOZED = "snoozed"
    OTHER = "other"  # a documented event the bot only records


STATE_CHANGES = frozenset({ProviderAction.ACKNOWLEDGED, ProviderAction.UNACKNOWLEDGED,
                           ProviderAction.RESOLVED, ProviderAction.REOPENED})


@dataclass(frozen=True)
class ProviderEvent:
    """One thing a provider reports about one alert.

    `event_id` is unique per event and repeated on redelivery (PagerDuty's `event.id`; for Opsgenie,
    which sends none, a digest of what identifies the action). `key` is the alert's dedup_key (PagerDuty
    `data.incident_key`) or alias (Opsgenie); `ref` the provider's own id for the alert (PagerDuty
    incident id, Opsgenie alertId), so events that carry no key (PagerDuty notes, responders) can still
    be matched once a keyed event was seen. `occurred_at` is the provider's time (UTC): providers do not
    promise order, so state changes are ordered by it.
    """

    provider: str  # "PagerDuty" | "Opsgenie"
    event_id: str
    action: ProviderAction
    occurred_at: datetime
    key: str | None
    ref: str | None = None
    agent: str | None = None  # who did it, as the provider names them ("Dana Scully", "dana@example.com")
    detail: str = ""  # what else to say: the note, the new assignee, the priority… (plain text)
    link: str | None = None  # the alert in the provider's web app
    raw_type: str = ""  # the provider's own name for it: "incident.reassigned", "AssignOwnership"

    @property
    def changes_state(self) -> bool:
        return self.action in STATE_CHANGES


@dataclass(frozen=True)
class Doer:
    """Who did something to a page, and where: what the bot tells providers ("Acknowledged in Slack by
    Dana Scully"). `name` is what people read, never a raw Slack id."""

    name: str
    where: str  # "Slack", "PagerDuty", "Opsgenie", "the operator's shell", "incident-bot"

    def said(self, verb: str) -> str:
        """e.g. said("Acknowledged") -> "Acknowledged in Slack by Dana Scully"."""
        return f"{verb} in {self.where} by {self.name}" if self.where != self.name else f"{verb} by {self.name}"
