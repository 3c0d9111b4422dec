"""Putting the bot together: the store, the domain services, the Slack client and the Bolt app."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Literal

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.middleware import Middleware
from sqlalchemy import Engine

from bot.alerts.rules import rules_from
from bot.alerts.service import AlertService
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.diagnostics.service import DiagnosticsService
from bot.diagnostics.watchdog import Watchdog
from bot.followups import FollowupService
from bot.housekeeping import tidy
from bot.incidents.service import IncidentService
from bot.incidents.values import Incident
from bot.paging.opsgenie import Opsgenie
from bot.paging.pagerduty import PagerDuty
from bot.paging.providers import Provider, Transport
from bot.paging.service import PagingService, Requested
from bot.people import People
from bot.postmortem.service import PostmortemService
from bot.readin.service import ReadInService
from bot.reporting.service import ReportService
from bot.reminders import StatusReminders
from bot.scheduling import Scheduler
from bot.spool import Spool
from bot.timeline import TimelineService
from handlers import (
    alerts,
    capture,
    channel_events,
    commands,
    declare_form,
    declare_from_message,
    followups,
    paging,
    postmortems,
    readin,
    reminders,
)
from handlers import diagnostics as diagnostics_handlers
from handlers.background import Background
from handlers.metrics import Children, Metrics
from handlers.publisher import IncidentPublisher
from handlers.reporting import direct_message, report_provisioning
from handlers.services import Services
from handlers.slack_client import make_instant_client, make_web_client
from handlers.slack_names import SlackNames
from handlers.users import UserDirectory
from storage.database import (
    STORE_UNAVAILABLE,
    make_engine,
    make_session_factory,
    migrate,
)

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """One running bot: what `serve`, the demo and the tests start and stop."""

    settings: Settings
    engine: Engine
    services: Services
    app: App
    transport: Transport
    spool: Spool | None  # None when not serving (the CLI): `serve`'s spool is its own
    started_at: datetime  # before the scheduler started: what was recorded earlier is an earlier run's
    slash_command: commands.CommandListener  # `/incident`'s listener, registered with `app` too
    migrations_pending: bool = False  # the store did not answer at start
    _closing: threading.Event = field(default_factory=threading.Event)

    def resume(self, retry_every: float = 5.0) -> int:
        """Finish what an earlier run left undone; returns how many set-ups were resumed. While the
        store does not answer, the bot serves degraded (see docs/design.md) and this is tried again,
        migrations first if they could not run at start, until it does."""
        try:
            if self.migrations_pending:
                migrate(self.engine)
                self.migrations_pending = False
            return self._resume()
        except STORE_UNAVAILABLE as error:
            if self._closing.is_set():
                return 0
            log.warning("the store does not answer (%s): resuming earlier work in %g s", type(error).__name__, retry_every)
            retry = threading.Timer(retry_every, self.resume, kwargs={"retry_every": retry_every})
            retry.daemon = True
            retry.start()
            return 0

    def _resume(self) -> int:
        pending = self.services.incidents.unprovisioned()
        for incident in pending:
            log.info("incident %s: resuming its Slack set-up", incident.number)
            self.services.background.submit(
                incident.id,
                partial(self.services.publisher.provision, incident.id),
                on_error=report_provisioning(self.services, incident.id, direct_message(self.services, incident.reporter_id)),
            )
        for incident in self.services.incidents.list_open():  # reminders armed before a crash are in the store; re-arm anyway
            self.services.reminders.follow(incident)
        self.services.postmortems.request_missing()
        for version in self.services.postmortems.unfinished():
            log.info("postmortem %s of incident id %s: resuming its draft", version.version, version.incident_id)
            self.services.background.submit(version.incident_id, partial(postmortems.draft_and_post, self.services, version.id),
                                            on_error=postmortems.report_failure(self.services, version, None))
        # Changes acknowledged but not shown in Slack before the last run stopped (a day back at most:
        # older news would only confuse), in the order they were made.
        for change in self.services.incidents.unpublished(since=self.started_at - timedelta(days=1), before=self.started_at):
            log.info("incident %s: showing a change the last run did not get to", change.incident.number)
            self.services.background.submit(change.incident.id, partial(self.services.publisher.publish, change))
        shown = alerts.show_unshown(self.services)
        if shown:
            log.info("alerts: %d groups not shown as they stand by the last run; showing them", shown)
        self.services.paging.rearm_escalations()
        for page in self.services.paging.undelivered(before=self.started_at):
            log.info("page %s: resuming its delivery", page.id)
            self.services.background.submit(page.incident_id, partial(paging.announce_and_deliver, self.services,
                                                                      Requested(page, repeated=False)))
        return len(pending)

    def wait_idle(self, timeout: float = 15.0) -> bool:
        """Block until Slack work and provider calls are all done, including the Slack work that
        providers' outcomes bring (tests, the demo). False if that takes longer than `timeout`."""
        deadline = time.monotonic() + timeout
        lanes = (self.services.alert_work, self.services.background, self.services.paging.dispatcher)
        while time.monotonic() < deadline:
            if all(lane.wait_idle(max(deadline - time.monotonic(), 0.0)) for lane in lanes) and all(lane.idle for lane in lanes):
                return True
        return False

    def close(self) -> None:
        self._closing.set()
        self.services.scheduler.stop()
        self.services.alert_work.shutdown(timeout=2)
        self.services.background.shutdown()
        self.services.paging.dispatcher.shutdown(timeout=2)  # a hung provider must not hold the stop up
        self.services.timeline.close()
        self.services.incidents.close()
        if self.spool is not None:
            self.spool.close()
        self.transport.close()
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    mode: Literal["http", "socket"] = "http",
    clock: Clock | None = None,
    run_migrations: bool = True,
    paging_transport: Transport | None = None,
    serving: bool = True,
) -> Runtime:
    """The bot, wired up. `serving=False` (the `resolve`/`close` CLI beside a running `serve`): the same
    services, but the scheduler never starts (its jobs are `serve`'s to run; cancelling one removes it
    from the shared store) and `serve`'s local spool is left alone."""
    env = settings.env
    assert env.slack_bot_token, "load_settings(mode=…) guarantees a token"
    engine = make_engine(env.database_url)
    migrations_pending = False
    if run_migrations:
        try:
            migrate(engine)
        except STORE_UNAVAILABLE as error:  # serve anyway, degraded: an outage is when the bot is needed most
            log.warning("the store does not answer (%s): starting without it; migrations wait for it", type(error).__name__)
            migrations_pending = True
    clock = clock or SystemClock()
    sessions = make_session_factory(engine)
    scheduler = Scheduler(engine)
    status_reminders = StatusReminders(sessions, clock, scheduler, settings.file.reminders.status_update_minutes)
    incidents = IncidentService(sessions, clock, after_change=status_reminders.follow)
    client = make_web_client(env.slack_bot_token, env.slack_api_url)
    background = Background()
    users = UserDirectory(client, People(sessions, clock), background)
    identity = client.auth_test()
    workspace_url = _with_slash(str(identity.get("url") or "https://slack.com/"))
    bot_user_id = str(identity.get("user_id") or "")
    transport = paging_transport or Transport()
    metrics = Metrics(lambda: len(incidents.list_open()), lambda: len(spool) if spool is not None else 0)
    transport.observer = metrics
    spool = Spool(Path(env.spool_path)) if serving else None
    teams = settings.file.teams
    providers_for = paging_providers(settings, transport)
    diagnostics = DiagnosticsService(sessions, clock, settings.file.diagnostics)
    watchdog = Watchdog(sessions, clock, diagnostics, settings.file.diagnostics.watchdog)

    def channel_link(incident: Incident) -> str | None:
        return f"{workspace_url}archives/{incident.channel_id}" if incident.channel_id else None

    services = Services(
        settings=settings,
        clock=clock,
        incidents=incidents,
        timeline=TimelineService(sessions, clock, spool=spool),
        publisher=IncidentPublisher(client, incidents, users, settings.file.slack, clock),
        background=background,
        client=client,
        instant_client=make_instant_client(env.slack_bot_token, env.slack_api_url),
        users=users,
        metrics=metrics,
        paging=PagingService(sessions, clock, dict(teams), providers_for, scheduler, channel_link),
        diagnostics=diagnostics,
        watchdog=watchdog,
        scheduler=scheduler,
        postmortems=PostmortemService.from_settings(settings, sessions, clock, bot_user_id=bot_user_id,
                                                  lookup=SlackNames(client, users)),
        followups=FollowupService(sessions, clock, timedelta(days=settings.file.reminders.followup_after_days)),
        reminders=status_reminders,
        workspace_url=workspace_url,
        bot_user_id=bot_user_id,
        alerts=AlertService(sessions, clock, incidents, rules_from(settings.file.alerts)),
        readin=ReadInService(sessions, clock, team_names={key: team.display_name or key for key, team in teams.items()},
                             escalate_to={key: team.escalate_to for key, team in teams.items() if team.escalate_to},
                             targets=watchdog.targets()),
        reports=ReportService.from_settings(settings, sessions, clock),
    )
    # A role holder the bot invites is given the read-in as they are invited (its own invitations'
    # member_joined_channel events are skipped: handlers/readin.py).
    services.publisher.on_invited = partial(readin.give, services)
    bolt_logger = logging.getLogger("slack_bolt")
    bolt_logger.addFilter(_not_the_client_token_notice)  # the same function object is added once
    app = App(
        client=client,
        signing_secret=env.slack_signing_secret or "",
        request_verification_enabled=mode == "http",
        # Listeners store what they are asked before acknowledging; slow work goes to Background.
        process_before_response=True,
        logger=bolt_logger,
    )
    app.use(_Timed(services))
    # Bolt tries listeners in order, calling each one's matcher with every argument built (about 0.1 ms
    # each), so the most frequent request comes first: the timeline's events. (Over HTTP, channel
    # messages and `/incident` never reach Bolt: the edge hands them to the same code, handlers/http.py.)
    capture.register(app, services)
    channel_events.register(app, services)
    readin.register(app, services)  # member_joined_channel: no listener above takes it
    slash_command = commands.register(app, services)
    declare_form.register(app, services)
    declare_from_message.register(app, services)
    paging.register(app, services)
    alerts.register(app, services)
    diagnostics_handlers.register(app, services)
    followups.register(app, services)
    reminders.register(services)
    scheduler.handle("housekeeping", lambda: log.info("housekeeping: forgot %d request keys, %d samples", *tidy(sessions, clock)))
    # Daily, and soon after every start: a bot restarted more often than daily must still tidy up.
    scheduler.every(24 * 3600, "housekeeping", job_id="housekeeping", first=clock.now() + timedelta(minutes=5))
    started_at = clock.now()
    if serving:
        scheduler.start()
    return Runtime(settings=settings, engine=engine, services=services, app=app, transport=transport, spool=spool,
                   started_at=started_at, slash_command=slash_command, migrations_pending=migrations_pending)


def paging_providers(settings: Settings, transport: Transport) -> Callable[[str], list[Provider]]:
    """A configured team's pagers (PagerDuty, Opsgenie), by the team's key."""
    env, teams = settings.env, settings.file.teams

    def providers_for(team: str) -> list[Provider]:
        config = teams[team]
        found: list[Provider] = []
        if config.pagerduty_routing_key:
            found.append(PagerDuty(transport.for_provider("PagerDuty"), env.pagerduty_events_url, config.pagerduty_routing_key))
        if config.opsgenie_api_key:
            found.append(Opsgenie(transport.for_provider("Opsgenie"), env.opsgenie_api_url, config.opsgenie_api_key))
        return found

    return providers_for


class _Timed(Middleware):
    """Measures how long each Slack request takes to be acknowledged. Listeners run before the answer
    is sent (process_before_response), so the time around the rest of the chain is that time. A
    Middleware class, not a function: Bolt calls a function middleware with every argument it could
    want built first (build_required_kwargs, about 0.1 ms a request), a class with the request only."""

    def __init__(self, services: Services) -> None:
        self._seconds = Children(services.metrics.slack_ack_seconds)  # by kind

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse | None:
        body = req.body
        kind = "command" if "command" in body else str(body.get("type") or "other")
        with self._seconds(kind).time():
            return next()


def _with_slash(url: str) -> str:
    """The workspace's address, for permalinks built without a Web API call per message."""
    return url if url.endswith("/") else url + "/"


def _not_the_client_token_notice(record: logging.LogRecord) -> bool:
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself, and warns at every start that the
    client we hand it (built from the same token) wins: noise in the WARNING lines operators watch."""
    return record.getMessage() != warning_client_prioritized_and_token_skipped()

