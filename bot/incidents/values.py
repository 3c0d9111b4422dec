"""The vocabulary of an incident: severities, statuses, roles, and the read-only view handlers get."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Severity(StrEnum):
    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"

    @property
    def label(self) -> str:
        return self.value.upper()


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def is_open(self) -> bool:
        return self is not Status.CLOSED


# What `/incident status` accepts: closing is its own sub-command, because it ends the incident.
SETTABLE_STATUSES = (Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING, Status.RESOLVED)


class Role(StrEnum):
    COMMANDER = "commander"
    COMMS = "comms"
    SCRIBE = "scribe"

    @property
    def label(self) -> str:
        return {"commander": "Commander", "comms": "Comms lead", "scribe": "Scribe"}[self.value]


class EntryKind(StrEnum):
    """What a timeline entry records: the bot's own actions, typed notes, captured channel messages."""

    DECLARED = "declared"
    STATUS_CHANGED = "status_changed"
    SEVERITY_CHANGED = "severity_changed"
    ROLE_ASSIGNED = "role_assigned"
    UPDATE = "update"
    RESOLVED = "resolved"
    CLOSED = "closed"
    MESSAGE = "message"
    PAGED = "paged"
    PAGE_FAILED = "page_failed"
    PAGE_ACKNOWLEDGED = "page_acknowledged"
    # What a provider reported about a page besides an acknowledgement: unacknowledged, resolved there,
    # reassigned, escalated, a note… (data: provider, action, outcome).
    PAGE_UPDATED = "page_updated"
    # Monitoring (Alertmanager, Grafana) said an alert of a group linked to the incident fired or resolved.
    ALERT = "alert"
    DIAGNOSTIC = "diagnostic"
    DIAGNOSTIC_DENIED = "diagnostic_denied"
    FOLLOWUP = "followup"
    # Someone archived (or deleted) the incident channel, or unarchived it: Slack refuses posts there meanwhile.
    CHANNEL_ARCHIVED = "channel_archived"
    CHANNEL_UNARCHIVED = "channel_unarchived"
    # `/incident private`: from then on nothing outside its channel names the incident (never undone).
    MADE_PRIVATE = "made_private"
    # `/incident note [kind] <text>`: the postmortem groups its timeline by these.
    NOTE = "note"
    DETECTION = "detection"
    ACTION = "action"
    HYPOTHESIS = "hypothesis"
    MISLEADING = "misleading"
    ESCALATION = "escalation"
    RESOLUTION = "resolution"


NOTE_KINDS = (
    EntryKind.DETECTION,
    EntryKind.ACTION,
    EntryKind.HYPOTHESIS,
    EntryKind.MISLEADING,
    EntryKind.ESCALATION,
    EntryKind.RESOLUTION,
)


# Who acted when an operator ran `incident-bot resolve|close` from a shell: not a Slack user, so it is
# never looked up in Slack, and reads as OPERATOR_NAME in the timeline, the channel and the postmortem.
OPERATOR = "operator:cli"
OPERATOR_NAME = "the operator (incident-bot CLI)"

DEFAULT_SEVERITY = Severity.SEV3
MAX_TITLE_LENGTH = 150
MAX_TEXT_LENGTH = 2900  # an update must fit in one Block Kit text block (3,000) with its header


@dataclass(frozen=True)
class Incident:
    """A snapshot of an incident, detached from the store: safe to hand to any thread."""

    id: int
    number: int
    title: str
    description: str | None
    severity: Severity
    status: Status
    reporter_id: str
    declared_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    resolution_summary: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    summary_ts: str | None = None
    announcement_ts: str | None = None
    provisioned_at: datetime | None = None
    roles: dict[Role, str] = field(default_factory=dict)  # current holder of each role
    channel_archived_at: datetime | None = None  # archived or deleted in Slack, and not unarchived since
    private: bool = False  # a private channel; nothing outside it names the incident (docs/design.md)

    @property
    def commander(self) -> str | None:
        return self.roles.get(Role.COMMANDER)

    @property
    def is_open(self) -> bool:
        return self.status.is_open
