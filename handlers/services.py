"""What listeners are handed: the domain services and Slack-side helpers, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from slack_sdk import WebClient

from bot.alerts.service import AlertService
from bot.clock import Clock
from bot.config import Settings
from bot.diagnostics.service import DiagnosticsService
from bot.diagnostics.watchdog import Watchdog
from bot.followups import FollowupService
from bot.incidents.service import IncidentService
from bot.paging.service import PagingService
from bot.postmortem.service import PostmortemService
from bot.readin.service import ReadInService
from bot.reporting.service import ReportService
from bot.reminders import StatusReminders
from bot.scheduling import Scheduler
from bot.timeline import TimelineService
from handlers.background import Background
from handlers.metrics import Metrics
from handlers.pacing import SlackPacing
from handlers.publisher import IncidentPublisher
from handlers.users import UserDirectory


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    incidents: IncidentService
    timeline: TimelineService
    publisher: IncidentPublisher
    background: Background
    client: WebClient
    instant_client: WebClient  # no retries: for the calls made before Slack is answered
    users: UserDirectory
    metrics: Metrics
    paging: PagingService
    diagnostics: DiagnosticsService
    watchdog: Watchdog
    scheduler: Scheduler
    postmortems: PostmortemService
    followups: FollowupService
    reminders: StatusReminders
    workspace_url: str  # "https://<workspace>.slack.com/", for permalinks
    bot_user_id: str
    alerts: AlertService
    readin: ReadInService  # what someone joining an incident is told (handlers/readin.py)
    reports: ReportService  # incidents over time (`/incident stats`, handlers/stats.py)
    slack_pacing: SlackPacing = field(default_factory=SlackPacing)
    # Alert groups' Slack work, paced to Slack's limits: on lanes of its own, so a storm's waits never
    # hold up an incident's Slack work on the shared lanes.
    alert_work: Background = field(default_factory=lambda: Background(lanes=4))
