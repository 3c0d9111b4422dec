"""Slack's side of diagnostics: `/incident diag`, and the watchdog's alerts with their Declare button;
both a `diag connections` result and an alert get a chart of the target's last hour in their thread
(handlers/charts.py)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.diagnostics.service import UnknownTarget
from bot.charts.spec import Marker
from bot.diagnostics.watchdog import SAMPLED_CHECK, WatchdogEvent
from bot.incidents import commands as c
from bot.incidents.values import MAX_TEXT_LENGTH, MAX_TITLE_LENGTH, EntryKind, Incident, Severity
from handlers import diagnostics_blocks, mrkdwn
from handlers.blocks import incident_reference
from handlers.charts import post_recent_chart
from handlers.mrkdwn import escape
from handlers.publisher import Placed
from handlers.reporting import direct_message, report_provisioning
from handlers.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    @app.action(diagnostics_blocks.WATCHDOG_DECLARE_ACTION)
    def declare_pressed(ack: Ack, action: dict[str, Any], body: dict[str, Any], respond: Respond) -> None:
        ack()
        alert_id, user_id = int(action["value"]), body["user"]["id"]
        services.background.submit(f"watchdog:{alert_id}", lambda: declare_from_alert(services, alert_id, user_id))

    def watch(target: str) -> None:
        event = services.watchdog.check(target)
        if event is not None:
            services.background.submit(f"watchdog:{target}", lambda: show_watchdog_event(services, event))

    services.scheduler.handle("watchdog", watch)
    interval = services.settings.file.diagnostics.watchdog.interval_seconds
    for target in services.watchdog.targets():  # only those with connections to count
        services.scheduler.every(interval, "watchdog", target, job_id=f"watchdog-{target}")


def diag_command(services: Services, command: c.RunDiagnostic | c.ListDiagnostics, incident: Incident | None,
                 user_id: str, respond: Respond) -> str | None:
    """What to answer at once; the check itself runs after the answer."""
    diagnostics = services.diagnostics
    if isinstance(command, c.ListDiagnostics):
        return diagnostics_blocks.list_message({t: diagnostics.checks(t) for t in diagnostics.targets()})
    if incident is None:
        return (":mag: Run checks from the incident's channel, so their results become part of its record; "
                "`/incident list` shows the open incidents.")
    targets = diagnostics.targets()
    target = command.target or (targets[0] if len(targets) == 1 else None)
    if target is None:
        return mrkdwn.fallback(f":warning: Which target? {', '.join(f'`{escape(t)}`' for t in targets) or 'none are configured'}. {mrkdwn.placeholders(c.USAGE['diag'])}")
    if target not in targets:  # as typed, so already escaped by Slack
        return mrkdwn.fallback(f":warning: There is no target `{target}`. Targets: {', '.join(f'`{escape(t)}`' for t in targets) or 'none'}.")
    shown = escape(target)  # a configured name, plain text
    if not diagnostics.allowed(user_id):
        diagnostics.refuse(incident, user_id, command.check, target)
        return (":no_entry_sign: You are not among the people allowed to run diagnostics here "
                "(`[diagnostics] allowed_users`). Your attempt was recorded; ask one of them to run it.")

    def run() -> None:
        try:
            outcome = diagnostics.run(command.check, target, incident=incident, user_id=user_id)
        except UnknownTarget:
            return
        services.metrics.diagnostics.labels(command.check, outcome.outcome).inc()
        text, blocks = diagnostics_blocks.result_message(outcome, user_id)
        placed = services.publisher.place(incident, text, blocks)  # the announcement thread when the channel is archived
        if placed is not None and command.check == SAMPLED_CHECK and target in services.watchdog.targets():
            _chart_beside_result(services, incident, target, placed)

    def failed(error: BaseException) -> None:
        services.metrics.background_failures.inc()
        respond(response_type="ephemeral",
                text=f":warning: `{command.check}` on *{shown}* could not finish or be shown ({type(error).__name__}). "
                "Run it again; if the bot's own store is the trouble, `/healthz` says so.")

    services.background.submit(f"diag:{target}", run, on_error=failed)
    return f":hourglass_flowing_sand: Running `{command.check}` on *{shown}* (read-only)…"


def _chart_beside_result(services: Services, incident: Incident, target: str, placed: Placed) -> None:
    """The target's last hour, in the thread of the `diag connections` result: the result's own thread
    in the incident channel, or the incident's announcement thread when it went there (the channel
    archived), since a thread has no threads."""
    if placed.in_thread:
        channel, thread = services.settings.file.slack.announce_channel, services.incidents.get(incident.id).announcement_ts
    else:
        channel, thread = incident.channel_id, placed.ts
    if channel and thread:
        post_recent_chart(services, target, channel, thread, [Marker(incident.declared_at, "declared", "Declared"),
                                                              Marker(services.clock.now(), "diagnostic", "diag connections")])


def show_watchdog_event(services: Services, event: WatchdogEvent) -> None:
    channel = services.settings.file.slack.announce_channel
    headline = str(event.snapshot.get("headline", ""))
    if event.kind == "cleared":
        alert = services.watchdog.alert(event.alert_id)
        if channel:
            services.client.chat_postMessage(channel=channel, text=diagnostics_blocks.watchdog_cleared(event.target, headline),
                                             thread_ts=alert.slack_ts if alert else None, reply_broadcast=True)
        return
    if channel is None:
        log.warning("watchdog: connection trouble on %s, but no announce_channel to say so: %s", event.target, event.reasons)
    else:
        text, blocks = diagnostics_blocks.watchdog_alert(event.alert_id, event.target, event.reasons, headline, None)
        ts = services.client.chat_postMessage(channel=channel, text=text, blocks=blocks)["ts"]
        services.watchdog.record_message(event.alert_id, ts)
        alert = services.watchdog.alert(event.alert_id)
        opened = alert.opened_at if alert is not None else services.clock.now()
        post_recent_chart(services, event.target, channel, ts, [Marker(opened, "alert", "Watchdog alert")])  # in its thread
    if services.settings.file.diagnostics.watchdog.auto_declare:
        declare_from_alert(services, event.alert_id, services.bot_user_id)


def declare_from_alert(services: Services, alert_id: int, user_id: str) -> None:
    """Declare an incident from a watchdog alert: once per alert, however many presses."""
    alert = services.watchdog.alert(alert_id)
    if alert is None:
        return
    reasons = list(alert.reasons or [])
    # Stored text is mrkdwn: the target's name and the reasons (plain text) are escaped; the title
    # keeps to the bot's own limit for titles, however long the configured name.
    title = f"Connection trouble on {escape(alert.target)}"
    declared = services.incidents.declare(
        c.Declare(title=mrkdwn.clip(title, MAX_TITLE_LENGTH), severity=Severity.SEV2, description=escape("\n".join(reasons))),
        user_id, f"watchdog:{alert_id}",
    )
    incident = declared.incident
    if declared.created:
        services.metrics.incidents_declared.inc()
        detection = escape("Watchdog: " + "; ".join(reasons))
        services.incidents.apply(incident.id, c.AddNote(mrkdwn.fit(detection, MAX_TEXT_LENGTH), EntryKind.DETECTION), services.bot_user_id,
                                 f"watchdog-detection:{alert_id}", publish=False)  # the alert was shown already
        services.watchdog.link_incident(alert_id, incident.id)
        try:
            incident = services.publisher.provision(incident.id)
        except Exception as error:
            report_provisioning(services, incident.id, direct_message(services, user_id))(error)
            return
    channel = services.settings.file.slack.announce_channel
    if channel and alert.slack_ts:
        text, blocks = diagnostics_blocks.watchdog_alert(alert_id, alert.target, reasons,
                                                         str((alert.snapshot or {}).get("headline", "")),
                                                         incident_reference(incident))  # by number alone if private
        services.client.chat_update(channel=channel, ts=alert.slack_ts, text=text, blocks=blocks)

