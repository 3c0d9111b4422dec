"""Alerts from Prometheus Alertmanager (webhook v4) and Grafana Alerting at POST /webhooks/alertmanager:
stored before they are answered, one Slack message per group kept current, a Declare incident button,
and the first matching `[[alerts.rules]]` deciding whether to declare (and page) at once.

Storms: every notification is stored at once; Slack work for a group runs on the group's own lane and
shows the group's latest state, so notifications that arrive while a post or update is on its way are
coalesced into the next one. Posts are paced per channel (Slack: chat.postMessage, "1 per second per
channel", short bursts allowed) and updates per workspace (chat.update, Tier 3, 50+ per minute); a 429
is retried after its Retry-After by the Web client (handlers.slack_client).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App, Respond
from slack_sdk.errors import SlackApiError

from bot.alerts import notification
from bot.alerts.service import Received
from bot.paging.webhooks import bearer_matches
from handlers import alert_blocks, mrkdwn, paging
from handlers.reporting import direct_message, report_provisioning
from handlers.services import Services
from storage.database import STORE_UNAVAILABLE

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any]]


def register(app: App, services: Services) -> None:
    @app.action(alert_blocks.DECLARE_ACTION)
    def declare_pressed(ack: Ack, action: dict[str, Any], body: dict[str, Any], respond: Respond) -> None:
        ack()
        group_id, user_id = int(action["value"]), body["user"]["id"]

        def failed(error: BaseException) -> None:  # after the acknowledgement: the presser must hear of it
            services.metrics.background_failures.inc()
            respond(response_type="ephemeral", replace_original=False,
                    text=f":warning: Declaring from this alert failed ({type(error).__name__}). Press again, "
                         "or declare with `/incident declare`.")

        # Not on the alert lanes: a storm's paced posts must never delay an incident (or its page).
        services.background.submit(_lane(group_id), lambda: declare(services, group_id, user_id), on_error=failed)


def webhook(services: Services, body: bytes, authorization: str | None) -> Answer:
    """POST /webhooks/alertmanager: `Authorization: Bearer <[alerts] webhook_token>`."""
    token = services.settings.file.alerts.webhook_token
    if not token:
        return 401, {"error": "alert webhooks are not configured: set [alerts] webhook_token"}
    if not bearer_matches(token, authorization):
        return 401, {"error": "bad credential: send Authorization: Bearer <[alerts] webhook_token>"}
    try:
        parsed = notification.parse(body)
    except notification.BadNotification as error:
        return 400, {"error": str(error)}
    try:
        received = services.alerts.receive(parsed)
    except STORE_UNAVAILABLE as error:
        log.warning("alert webhook: the store does not answer (%s); answered 503 so Alertmanager retries",
                    type(error).__name__)
        return 503, {"error": "the bot's store is down; Alertmanager retries on 5xx"}
    services.metrics.alerts.labels(parsed.source, "changed" if received.changed else "repeat").inc(len(parsed.alerts) or 1)
    group_id = received.group.id
    if received.changed:
        services.alert_work.submit(_lane(group_id), lambda: show(services, group_id))
        if received.group.incident_id is not None and (received.fired or received.resolved):
            services.background.submit(received.group.incident_id, lambda: tell_incident(services, received))
    rule = received.rule
    if rule is not None and rule.declare and received.group.firing and received.group.incident_id is None:
        services.background.submit(_lane(group_id), lambda: declare(services, group_id, services.bot_user_id))
    return 200, {"stored": len(parsed.alerts), "group": group_id, "changed": received.changed}


def show(services: Services, group_id: int) -> None:
    """Bring the group's message up to its latest version (nothing if Slack already shows it)."""
    group = services.alerts.group(group_id)
    if group.version <= group.shown_version:
        return  # coalesced: an earlier run showed this state already
    channel = group.slack_channel or alerts_channel(services)
    if channel is None:
        log.warning("alert group %s: no [alerts] channel or slack.announce_channel to post it in", group_id)
        return
    incident = services.incidents.get(group.incident_id) if group.incident_id else None
    zone = ZoneInfo(services.settings.file.postmortem.timezone)
    text, blocks = alert_blocks.group_message(group, incident, zone)
    if group.slack_ts:
        services.slack_pacing.updates.wait("workspace")
        services.client.chat_update(channel=channel, ts=group.slack_ts, text=text, blocks=blocks)
        ts = group.slack_ts
    else:
        services.slack_pacing.posts.wait(channel)
        ts = services.client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)["ts"]
    services.alerts.mark_shown(group_id, group.version, channel, ts)


def declare(services: Services, group_id: int, user_id: str) -> None:
    """Declare an incident from the group (once, however many presses), set up its channel, page the
    rule's team, and show the incident on the group's message."""
    declared = services.alerts.declare(group_id, user_id)
    incident = declared.incident
    if declared.created:
        services.metrics.incidents_declared.inc()
        try:
            incident = services.publisher.provision(incident.id)
        except Exception as error:
            report_provisioning(services, incident.id, direct_message(services, user_id))(error)
            return
        rule = services.alerts.rule_for(declared.group)
        if rule is not None and rule.page:
            message = f"Alert: {declared.group.name}"
            result = paging.page_command(services, incident, rule.page, message, user_id,
                                         f"alert-page:{group_id}:{declared.group.episode}",
                                         lambda **kwargs: None)
            if result:
                log.warning("alert group %s: paging %s: %s", group_id, rule.page, result)
    services.alert_work.submit(_lane(group_id), lambda: show(services, group_id))


def tell_incident(services: Services, received: Received) -> None:
    """What a notification changed, in the linked incident's channel (the timeline has it already)."""
    group = received.group
    incident = services.incidents.get(group.incident_id or 0)
    if not incident.is_open or incident.channel_id is None:
        return
    lines = [f":red_circle: {alert_blocks.named(a, group)} firing" + (
        f": {mrkdwn.escape(mrkdwn.clip(a.summary, 300))}" if a.summary else "") for a in received.fired[:10]]
    lines += [f":large_green_circle: {alert_blocks.named(a, group)} resolved" for a in received.resolved[:10]]
    more = len(received.fired) + len(received.resolved) - len(lines)
    if more > 0:
        lines.append(f"…and {more} more")
    try:
        services.publisher.post(incident, mrkdwn.fallback("Monitoring: " + "\n".join(lines)))
    except SlackApiError as error:
        log.warning("alert group %s: could not tell incident %s: %s", group.id, incident.number, error.response.get("error"))


def show_unshown(services: Services) -> int:
    """At start-up: groups stored but not shown as they stand (the last run stopped in a storm); a repeat
    of the same notification changes nothing, so nothing else would bring them up to date."""
    groups = services.alerts.unshown()
    for group_id in groups:
        services.alert_work.submit(_lane(group_id), partial(show, services, group_id))
    return len(groups)


def show_again(services: Services, group_ids: list[int]) -> None:
    """Bring these groups' messages up to their latest versions, each on its own lane (e.g. after the
    incident they name was made private: handlers.private)."""
    for group_id in group_ids:
        services.alert_work.submit(_lane(group_id), partial(show, services, group_id))


def alerts_channel(services: Services) -> str | None:
    return services.settings.file.alerts.channel or services.settings.file.slack.announce_channel


def _lane(group_id: int) -> str:
    return f"alert-group:{group_id}"

