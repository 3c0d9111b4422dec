"""A person archives, unarchives or deletes an incident's channel: Slack's channel events in, the mark
and a timeline entry stored (before the event is acknowledged), the announcement thread told after.

Slack: channel_archive {"channel", "user"} and channel_unarchive {"channel", "user"} for public
channels (scope channels:read); group_archive / group_unarchive for private ones the bot is in (scope
groups:read); channel_deleted / group_deleted {"channel"}. A closed incident's channel being archived
is tidying up, not news: only open incidents are followed.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import App

from handlers.logs import about
from handlers.publisher import DELETED
from handlers.services import Services

EVENTS = re.compile(r"^(channel|group)_(archive|unarchive|deleted)$")


def register(app: App, services: Services) -> None:
    @app.event(EVENTS)
    def on_channel_event(event: dict[str, Any]) -> None:
        channel = event.get("channel")
        if not isinstance(channel, str):
            return
        incident = services.incidents.find_by_channel(channel)
        if incident is None or not incident.is_open:
            return
        kind = str(event.get("type"))
        by = event.get("user") or event.get("actor_id")  # group_unarchive and *_deleted name the person "actor_id"
        by = by if isinstance(by, str) and by else None
        with about(incident.number):
            if kind.endswith("_unarchive"):
                back = services.incidents.record_channel_unarchived(incident.id, by=by)
                services.background.submit(incident.id, lambda: services.publisher.note_back(back or incident, by, tell=back is not None))
                return
            deleted = kind in DELETED
            gone = services.incidents.record_channel_archived(incident.id, by=by, seen=kind, deleted=deleted)
            if gone is not None:
                services.background.submit(incident.id, lambda: services.publisher.tell_gone(gone, by, deleted=deleted))
