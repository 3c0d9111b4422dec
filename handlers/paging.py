"""Slack's side of paging: `/incident page`, the Acknowledge and Retry buttons, escalations posted to
the channel, PagerDuty's webhooks, and closing pages when the incident is resolved."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.incidents.values import Incident
from bot.invitations import Invitation
from bot.paging.service import PageView, Requested, UnknownTeam
from handlers import mrkdwn, paging_blocks
from handlers.invites import describe, invite
from handlers.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    @app.action(paging_blocks.ACKNOWLEDGE_ACTION)
    def acknowledge_pressed(ack: Ack, action: dict[str, Any], body: dict[str, Any], respond: Respond) -> None:
        ack()
        page_id, user_id = int(action["value"]), body["user"]["id"]

        def acknowledge() -> None:
            result = services.paging.acknowledge(page_id, by=user_id, via="Slack", actor_id=user_id)
            if result is None:
                page = services.paging.get(page_id)
                respond(response_type="ephemeral", replace_original=False,
                        text=f":information_source: This page is already {'acknowledged' if page.acknowledged_at else 'closed'}.")
                return
            show_acknowledged(services, result.page, result.notify_errors)

        services.background.submit(_lane(services, page_id), acknowledge)

    @app.action(paging_blocks.RETRY_ACTION)
    def retry_pressed(ack: Ack, action: dict[str, Any]) -> None:
        ack()
        page_id = int(action["value"])
        services.background.submit(_lane(services, page_id), lambda: deliver(services, page_id))

    def escalate(page_id: int) -> None:
        """The scheduled job: runs on the scheduler's thread, hands Slack work to the incident's lane."""
        requested = services.paging.escalate(page_id)
        if requested is None:
            return
        services.background.submit(requested.page.incident_id, lambda: announce_and_deliver(services, requested))

    services.scheduler.handle("escalate", escalate)


def page_command(services: Services, incident: Incident, team: str, message: str | None, user_id: str,
                 request_key: str, respond: Callable[..., Any]) -> str | None:
    """Record the page and queue its delivery; returns what to tell the person at once, if anything."""
    try:
        requested = services.paging.request(incident, team, message, user_id, request_key)
    except UnknownTeam as unknown:
        known = ", ".join(f"`{mrkdwn.escape(t)}` ({_team(services, t)})"
                          for t in unknown.known) or "none are configured"
        return mrkdwn.fallback(f":warning: There is no team `{unknown.team}`. Teams you can page: {known}.")
    if requested.retried:
        return None
    services.background.submit(incident.id, lambda: announce_and_deliver(services, requested),
                               on_error=report_paging(services, respond))
    if requested.repeated:
        return (f":information_source: {_team(services, team)} already has an open page for this incident: "
                "it was sent again with the same key, so they get a reminder, not a second alert.")
    return None


def page_unrecorded(services: Services, team: str, message: str | None, command: dict[str, Any], down: str) -> str:
    """`/incident page` while the bot's database is down: sent straight to the team's providers in the
    background, the channel told, the person told how it went; nothing can be recorded meanwhile."""
    if team not in services.paging.team_names():
        known = ", ".join(f"`{mrkdwn.escape(t)}`" for t in services.paging.team_names()) or "none are configured"
        return mrkdwn.fallback(f"{down}nothing was recorded. There is no team `{team}` to page; teams: {known}.")
    channel_id, channel_name, user_id = command.get("channel_id", ""), command.get("channel_name", ""), command["user_id"]
    response_url = command.get("response_url")
    name = _team(services, team)

    def send() -> None:
        outcome = services.paging.page_unrecorded(team, message, channel_id, channel_name, user_id)
        reached = [provider for provider, error in outcome.items() if error is None]
        failed = {provider: error for provider, error in outcome.items() if error is not None}
        members = services.paging.team(team).slack_members
        invitations: list[Invitation] = []
        slack_failed: list[str] = []
        if members:
            _best_effort(slack_failed, "inviting the team",
                         lambda: invitations.append(invite(services.client, channel_id, members)))
        lines = [f":pager: <@{user_id}> paged *{name}*" + (f": {message}" if message else ""),
                 f"Reached: {', '.join(reached) or 'no pager'}"]
        lines += [describe(invitation) for invitation in invitations]
        lines += [f":warning: Slack failed at {step}: " + ", ".join(f"<@{m}>" for m in members) + " may not be in this channel."
                  for step in slack_failed]
        lines += [f":x: {provider} failed: {paging_blocks.provider_error(error)}" for provider, error in failed.items()]
        lines.append("_The bot's database is down: this page is not on the timeline. Acknowledge it in the pager._")
        _best_effort([], "telling the channel", lambda: services.client.chat_postMessage(channel=channel_id, text=mrkdwn.fallback("\n".join(lines))))
        if response_url:
            verdict = f"reached {', '.join(reached)}" if reached else "no pager answered: call them"
            _best_effort([], "answering", lambda: WebhookClient(response_url).send(
                text=f":pager: Paged {name}: {verdict}.", response_type="ephemeral", replace_original=False))

    services.background.submit(f"unrecorded-page:{channel_id}", send)
    return f"{down}this page is not recorded, but it is going out now to {name}, straight to its pagers."


class SlackShowedNothing(Exception):
    """The page went out, but Slack would not show it; `steps` says what failed."""

    def __init__(self, steps: list[str]) -> None:
        super().__init__("; ".join(steps))
        self.steps = steps


def announce_and_deliver(services: Services, requested: Requested) -> None:
    """Show the page in the channel and deliver it. Delivery never depends on Slack: a Slack failure is
    reported after the page has gone out."""
    page = requested.page
    incident = services.incidents.get(page.incident_id)
    team = services.paging.team(page.team)
    display = services.paging.display_name(page.team)
    failed: list[str] = []
    channel = incident.channel_id
    if channel is not None:
        if page.escalated_from_id is not None:
            _best_effort(failed, "announcing the escalation", lambda: services.publisher.post(
                incident, f":arrow_double_up: {mrkdwn.escape(page.message or '')} Paging *{paging_blocks.team_name(display)}* now."))
        invitations: list[Invitation] = []
        if team.slack_members:
            _best_effort(failed, "inviting the team",
                         lambda: invitations.append(invite(services.client, channel, team.slack_members)))
        if invitations:  # the page message says who is in the channel, and keeps saying it when refreshed
            page = services.paging.record_invitation(page.id, invitations[0])
            if invitations[0].failed:
                log.warning("paging %s: could not invite %s", page.team, dict(invitations[0].failed))
        text, blocks = paging_blocks.page_message(page, display, team, incident.number)
        _best_effort(failed, "posting the page", lambda: _post_page(services, incident, page.id, text, blocks))
    deliver(services, page.id, failed)


def deliver(services: Services, page_id: int, failed: list[str] | None = None) -> None:
    failed = failed if failed is not None else []
    page = services.paging.get(page_id)
    incident = services.incidents.get(page.incident_id)
    page = services.paging.deliver(page_id, incident)
    services.metrics.pages.labels("failed" if page.failed else "sent").inc()
    _best_effort(failed, "updating the page message", lambda: refresh(services, page))
    channel = incident.channel_id
    if page.failed and channel:
        text = paging_blocks.failure_message(page, services.paging.display_name(page.team))
        _best_effort(failed, "telling the channel the page failed", lambda: services.publisher.post(incident, text))
    if failed:
        raise SlackShowedNothing(failed)


def report_paging(services: Services, respond: Callable[..., Any]) -> Callable[[BaseException], None]:
    """What the person who paged is told when something after their command failed."""

    def report(error: BaseException) -> None:
        services.metrics.background_failures.inc()
        if isinstance(error, SlackShowedNothing):
            text = (":warning: The page went to the team's providers, but Slack failed at "
                    + "; ".join(error.steps) + ". Check the channel; the page and its outcome are in the timeline.")
        else:
            text = f":warning: Paging could not finish ({type(error).__name__}). Try `/incident page` again."
        respond(response_type="ephemeral", text=text)

    return report


def show_acknowledged(services: Services, page: PageView, notify_errors: dict[str, str]) -> None:
    if page.acknowledged_at is not None:
        services.metrics.page_ack_seconds.observe((page.acknowledged_at - page.requested_at).total_seconds())
    incident = services.incidents.get(page.incident_id)
    refresh(services, page)
    if incident.channel_id is None:
        return
    by = paging_blocks.acknowledger(page.acknowledged_by)
    minutes = int(((page.acknowledged_at or page.requested_at) - page.requested_at).total_seconds() // 60)
    team = services.paging.team(page.team) if page.team in services.paging.team_names() else None
    escalation = f"; no escalation to {_team(services, team.escalate_to)}" if team and team.escalate_to else ""
    text = (f":white_check_mark: {by} acknowledged the page to *{_team(services, page.team)}* "
            f"after {minutes} min{escalation}.")
    if notify_errors:
        text += " Could not tell " + "; ".join(f"{name} ({paging_blocks.provider_error(error)})" for name, error in notify_errors.items()) + ": acknowledge there too."
    services.publisher.post(incident, mrkdwn.fallback(text))


def resolve_pages(services: Services, incident: Incident, by: str) -> None:
    """The incident is resolved: close its pages everywhere, and say so if a provider could not be told."""
    errors = services.paging.resolve_all(incident, by)
    for page in services.paging.pages(incident.id):
        refresh(services, page)
    if errors and incident.channel_id:
        services.publisher.post(
            services.incidents.get(incident.id),  # as stored now: refreshing may have found the channel archived
            ":warning: The incident is resolved, but these could not be told to close their alerts: "
            + "; ".join(f"{name}: {paging_blocks.provider_error(error)}" for name, error in errors.items()) + ". Close them by hand.",
        )


def refresh(services: Services, page: PageView) -> None:
    incident = services.incidents.get(page.incident_id)
    if page.slack_ts is None or incident.channel_id is None:
        return
    text, blocks = paging_blocks.page_message(page, services.paging.display_name(page.team),
                                              services.paging.team(page.team), incident.number)
    if not services.publisher.update(incident, page.slack_ts, text, blocks, in_thread=page.slack_in_thread):
        # Its message is in the archived channel, as it was: its state (with a working Acknowledge
        # button while it is open) is posted in the announcement thread once, and updated there after.
        _post_page(services, services.incidents.get(incident.id), page.id, text, blocks)  # the mark as stored now


def _post_page(services: Services, incident: Incident, page_id: int, text: str, blocks: list[dict[str, Any]]) -> None:
    """The page message, in the channel (or the announcement thread when the channel is archived)."""
    placed = services.publisher.place(incident, text, blocks)
    if placed is not None:
        services.paging.record_message(page_id, placed.ts, in_thread=placed.in_thread)


def pagerduty_webhook(services: Services, body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
    """PagerDuty v3 webhooks: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>` (several, comma
    separated, while a secret is rotated). Only a verified incident.acknowledged changes anything."""
    secret = services.settings.file.paging.pagerduty_webhook_secret
    if not secret:
        return 401, {"error": "PagerDuty webhooks are not configured ([paging] pagerduty_webhook_secret)"}
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    offered = [s.strip() for s in (signature or "").split(",")]
    if not any(hmac.compare_digest(expected, s) for s in offered):
        return 401, {"error": "bad signature"}
    try:
        event = json.loads(body)["event"]
        event_type, data, agent = event["event_type"], event.get("data") or {}, event.get("agent") or {}
        if not isinstance(data, dict) or not isinstance(agent, dict):
            raise TypeError("data and agent must be objects")
    except (ValueError, KeyError, TypeError):
        return 400, {"error": "not a PagerDuty v3 webhook event"}
    if event_type != "incident.acknowledged" or not data.get("incident_key"):
        return 200, {"ignored": event_type}
    agent = agent.get("summary") or "someone in PagerDuty"
    result = services.paging.acknowledge_by_key(str(data["incident_key"]), by=f"{agent} (PagerDuty)", via="PagerDuty")
    if result is not None:
        services.background.submit(result.page.incident_id, lambda: show_acknowledged(services, result.page, result.notify_errors))
    return 200, {"acknowledged": result is not None}


def _team(services: Services, key: str) -> str:
    """A configured team as the channel reads it: its display name, escaped and shortened."""
    return paging_blocks.team_name(services.paging.display_name(key))


def _best_effort(failed: list[str], step: str, action: Callable[[], object]) -> None:
    try:
        action()
    except (SlackApiError, OSError) as error:
        reason = error.response.get("error") if isinstance(error, SlackApiError) else type(error).__name__
        log.warning("paging: %s failed: %s", step, reason)
        failed.append(f"{step} (`{reason}`)")


def _lane(services: Services, page_id: int) -> int:
    return services.paging.get(page_id).incident_id


