"""An incident's key figures: time to detect, acknowledge, mitigate and resolve, from recorded timestamps.

One function computes them for both readers: the postmortem draft (bot/postmortem/draft.py, which words
them) and the report across incidents (bot/reporting, which counts and charts them). So a figure in a
report is the figure in that incident's postmortem, to the second.

Every figure is measured from the same start, the first sign of trouble recorded, so none can
contradict another (docs/postmortem.md, "The figures"). Durations are differences of aware datetimes:
real elapsed time, also across a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.incidents.values import EntryKind, Incident, Status
from bot.paging.service import PageView
from bot.timeline import TimelineItem, visible

# The entry kinds the figures read, besides whatever was recorded before the declaration (the first
# sign may be any entry): a reader may fetch only these (storage/reporting.py) and get the same figures.
FIGURE_KINDS: tuple[EntryKind, ...] = (EntryKind.PAGE_ACKNOWLEDGED, EntryKind.RESOLUTION, EntryKind.STATUS_CHANGED)


class LinkedAlert(Protocol):
    """A watchdog alert linked to the incident (bot.postmortem.draft.AlertRecord is one)."""

    @property
    def target(self) -> str: ...

    @property
    def opened_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class KeyFigures:
    """The moments the figures are measured between, and the figures in whole seconds.

    `start` is the first sign of trouble recorded, `start_reason` says which in words ("the
    declaration", "the watchdog alert on `primary`", …). Each other moment is None when nothing
    recorded it (no page acknowledged, no mitigation, not resolved yet)."""

    start: datetime
    start_reason: str
    declared_at: datetime
    acknowledged_at: datetime | None
    acknowledged_page: PageView | None  # the page whose acknowledgement came first
    mitigated_at: datetime | None
    mitigation: TimelineItem | None  # the first resolution note, or the status becoming Monitoring
    resolved_at: datetime | None
    paged: bool  # any team was paged: "not acknowledged" then means nobody acknowledged, not nobody asked

    @property
    def time_to_detect(self) -> int:
        return self.seconds_to(self.declared_at)

    @property
    def time_to_acknowledge(self) -> int | None:
        return self.seconds_to(self.acknowledged_at) if self.acknowledged_at else None

    @property
    def time_to_mitigate(self) -> int | None:
        return self.seconds_to(self.mitigated_at) if self.mitigated_at else None

    @property
    def time_to_resolve(self) -> int | None:
        return self.seconds_to(self.resolved_at) if self.resolved_at else None

    def seconds_to(self, moment: datetime) -> int:
        """Whole seconds from the start to `moment`, as the postmortem shows them (`clock_seconds`)."""
        return clock_seconds(self.start, moment)


def clock_seconds(start: datetime, end: datetime) -> int:
    """Whole seconds between two moments as their clock times read, to the second: a figure shown beside
    "from 07:17:53 to 07:17:59" says 6 seconds, not the 5.3 its exact timestamps hold. Never negative."""
    return max(0, int((end.replace(microsecond=0) - start.replace(microsecond=0)).total_seconds()))


def key_figures(incident: Incident, alerts: Sequence[LinkedAlert], items: Sequence[TimelineItem],
                pages: Sequence[PageView]) -> KeyFigures:
    """The incident's key figures from its record: `items` its timeline entries in recorded order
    (occurred_at, then id; deleted messages are left out here), `pages` every page sent for it, `alerts`
    the watchdog alerts linked to it. Pure: the same record gives the same figures."""
    shown = visible(list(items))
    start, reason = first_sign(incident, alerts, shown)
    acks = first_acknowledgements(shown, pages)
    first_ack = min((p for p in pages if p.id in acks), key=lambda p: acks[p.id][0], default=None)
    end = incident.resolved_at
    # The kinds looked up once, not at each entry: Python 3.11 looks an enum's member up on its class at
    # four times a plain attribute's cost, and a postmortem's timeline holds 10,000 entries and more.
    resolution, status_changed, monitoring = EntryKind.RESOLUTION, EntryKind.STATUS_CHANGED, Status.MONITORING.value
    mitigation = next((
        i for i in shown
        if (i.kind is resolution or (i.kind is status_changed and i.data.get("to") == monitoring))
        and (end is None or i.occurred_at <= end)
    ), None)
    return KeyFigures(
        start=start,
        start_reason=reason,
        declared_at=incident.declared_at,
        acknowledged_at=acks[first_ack.id][0] if first_ack else None,
        acknowledged_page=first_ack,
        mitigated_at=mitigation.occurred_at if mitigation else None,
        mitigation=mitigation,
        resolved_at=end,
        paged=bool(pages),
    )


def first_sign(incident: Incident, alerts: Sequence[LinkedAlert], items: Sequence[TimelineItem]) -> tuple[datetime, str]:
    """The first sign of trouble recorded, and which it was in words: the declaration, unless a watchdog
    alert linked to the incident, or an entry (a message whose Slack time is earlier), came before it.
    `items`: the visible entries in recorded order."""
    start, reason = incident.declared_at, "the declaration"
    earliest = min(alerts, key=lambda a: a.opened_at, default=None)
    if earliest is not None and earliest.opened_at < start:
        start, reason = earliest.opened_at, f"the watchdog alert on `{earliest.target}`"
    if items and items[0].occurred_at < start:
        first = items[0]
        from_monitoring = first.kind is EntryKind.DETECTION and first.data.get("alert_group") is not None
        # Declared from a message: its Detection entry is at the message's own time (bot.incidents.service).
        from_message = first.kind is EntryKind.DETECTION and first.data.get("declared_from") == "message"
        start = first.occurred_at
        reason = (f"the alert from {first.data.get('source') or 'monitoring'}" if from_monitoring
                  else "the message it was declared from" if from_message else "the first recorded entry")
    return start, reason


def first_acknowledgements(items: Sequence[TimelineItem], pages: Sequence[PageView]) -> dict[int, tuple[datetime, str]]:
    """Each acknowledged page's first acknowledgement: when, and who (a Slack user id, or "<name> via
    <provider>"), from the timeline, so an acknowledgement a provider later withdrew or timed out still
    counts as the time to acknowledge; from the page itself for pages older than their entries' page_id."""
    found: dict[int, tuple[datetime, str]] = {}
    acknowledged = EntryKind.PAGE_ACKNOWLEDGED  # once, not at each entry (key_figures says why)
    for item in sorted((i for i in items if i.kind is acknowledged), key=lambda i: i.occurred_at):
        page_id = item.data.get("page_id")
        if isinstance(page_id, int) and page_id not in found:
            found[page_id] = (item.occurred_at, item.actor_id or item.text)
    for page in pages:
        if page.id not in found and page.acknowledged_at is not None:
            found[page.id] = (page.acknowledged_at, page.acknowledged_by or "")
    return found
