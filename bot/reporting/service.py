"""Reading the store for the report: every incident declared in a window and what its figures are made
of, in a handful of queries for the whole window (storage/reporting.py), in one read-only transaction
so the figures are of one moment."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.figures import FIGURE_KINDS
from bot.followups import FollowupView, followup_view
from bot.paging.service import PageView, page_view
from bot.postmortem.draft import AlertRecord
from bot.reporting.report import Recorded, Report, build_report
from bot.slack_markup import references
from bot.timeline import TimelineItem, item_of
from storage import incidents as incident_store
from storage import reporting as store
from storage import timeline as timeline_store
from storage.database import read_only


class ReportService:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, *, zone: ZoneInfo, team_names: dict[str, str]) -> None:
        self._reads = read_only(sessions)
        self._clock = clock
        self.zone = zone
        self._team_names = team_names

    @classmethod
    def from_settings(cls, settings: Settings, sessions: sessionmaker[Session], clock: Clock) -> ReportService:
        return cls(sessions, clock, zone=ZoneInfo(settings.file.postmortem.timezone),
                   team_names={key: team.display_name or key for key, team in settings.file.teams.items()})

    def report(self, since: datetime, until: datetime | None = None) -> Report:
        """The report on the incidents declared in [since, until) (until: now)."""
        now = self._clock.now()
        until = until or now
        with self._reads() as session:
            incidents = [incident_store.snapshot(row) for row in store.declared_between(session, since, until)]
            items: dict[int, list[TimelineItem]] = defaultdict(list)
            for row in store.figure_entries(session, since, until, [k.value for k in FIGURE_KINDS]):
                items[row.incident_id].append(item_of(row))
            pages: dict[int, list[PageView]] = defaultdict(list)
            for page in store.pages_between(session, since, until):
                pages[page.incident_id].append(page_view(page))
            alerts: dict[int, list[AlertRecord]] = defaultdict(list)
            for alert in store.alerts_between(session, since, until):
                if alert.incident_id is not None:
                    alerts[alert.incident_id].append(AlertRecord(alert.target, alert.opened_at, alert.cleared_at, list(alert.reasons or [])))
            followups: dict[int, list[FollowupView]] = defaultdict(list)
            for followup in store.open_followups_between(session, since, until):
                followups[followup.incident_id].append(followup_view(followup))
            earlier = store.open_followups_before(session, since)
            # Names for what the report shows of public incidents only: owners, and people their texts mention.
            public = {i.id for i in incidents if not i.private}
            shown = [f for incident_id, listed in followups.items() if incident_id in public for f in listed]
            mentioned = references(*(i.title for i in incidents if not i.private), *(f.text for f in shown)).users
            names = timeline_store.names(session, mentioned | {f.owner_id for f in shown if f.owner_id})
            records_begin = store.first_declared_at(session)
        recorded = [Recorded(i, items[i.id], pages[i.id], alerts[i.id], followups[i.id]) for i in incidents]
        return build_report(recorded, since=since, until=until, zone=self.zone, team_names=self._team_names, now=now,
                            earlier_open_followups=earlier, names=names, records_begin=records_begin)
