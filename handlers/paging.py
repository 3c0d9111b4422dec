"""Slack's side of paging: `/incident page`, the Acknowledge and Retry buttons, escalations posted to
the channel, PagerDuty's webhooks, and closing pages when the incident is resolved."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.incidents.values import Incident
from bot.invitations import Invitation
from bot.paging.dispatch import Told
from bot.paging.events import Doer, ProviderAction
from bot.paging.service import Applied, PageView, Requested, UnknownTeam
from bot.paging.webhooks import headline
from handlers import mrkdwn, paging_blocks, readin
from handlers.blocks import slack_date
from handlers.invites import describe, invite
from handlers.services import Services

log = logging.getLogger(__name__)

EVENT_WORDS = 1000  # characters of what a provider reported (a note can be long) shown in the channel


def register(app: App, services: Services) -> None:
    @app.action(paging_blocks.ACKNOWLEDGE_ACTION)
    def acknowledge_pressed(ack: Ack, action: dict[str, Any], body: dict[str, Any], respond: Respond) -> None:
        ack()
        page_id, user_id = int(action["value"]), body["user"]["id"]

        def acknowledge() -> None:
            result = services.paging.acknowledge(page_id, by=slack_doer(services, user_id), actor_id=user_id)
            if result is None:
                page = services.paging.get(page_id)
                respond(response_type="ephemeral", replace_original=False,
                        text=f":information_source: This page is already {'acknowledged' if page.acknowledged_at else 'closed'}.")
                return
            report_told(services, result.page.incident_id, result.told, "acknowledge")
            show_acknowledged(services, result.page)

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

    def show(told: list[Told]) -> None:
        reached = [t.provider for t in told if t.error is None]
        failed = {t.provider: t.error for t in told if t.error is not None}
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

    def send() -> None:
        # Without the store the bot cannot tell a private incident's channel from the rest: Slack can. A
        # channel Slack cannot say is public counts as private: the page still goes out, with less in it.
        futures = services.paging.page_unrecorded(team, message, channel_id, channel_name, slack_doer(services, user_id),
                                                  private=not _public_channel(services, channel_id))
        when_all(futures, lambda told: services.background.submit(f"unrecorded-page:{channel_id}", lambda: show(told)))

    services.background.submit(f"unrecorded-page:{channel_id}", send)
    return f"{down}this page is not recorded, but it is going out now to {name}, straight to its pagers."


def _public_channel(services: Services, channel_id: str) -> bool:
    """Slack says the channel is public (conversations.info `is_private` false); False when it cannot say."""
    try:
        return services.client.conversations_info(channel=channel_id)["channel"].get("is_private") is False
    except (SlackApiError, OSError) as error:
        log.warning("paging: could not tell whether %s is public (%s): paged as from a private channel",
                    channel_id, error.response.get("error") if isinstance(error, SlackApiError) else type(error).__name__)
        return False


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
        if invitations and invitations[0].invited:  # the bot's own invitations' join events are skipped
            readin.give(services, incident, invitations[0].invited)  # after this, on the incident's lane
    deliver(services, page.id, failed)


def deliver(services: Services, page_id: int, failed: list[str] | None = None) -> None:
    """Send the page through its providers (each on its own lanes, bot.paging.dispatch); as each one
    answers, its outcome is shown on the page message, and a failure is told in the channel."""
    failed = failed if failed is not None else []
    page = services.paging.get(page_id)
    incident = services.incidents.get(page.incident_id)
    futures = services.paging.deliver(page_id, incident)
    for future in futures:
        future.add_done_callback(lambda done: services.background.submit(
            incident.id, lambda: delivered(services, page_id, _told(done, "trigger", page_id))))
    if not futures:  # Slack members only: the page is sent as it is shown
        _best_effort(failed, "updating the page message",
                     lambda: refresh(services, services.paging.get(page_id)))
    if failed:
        raise SlackShowedNothing(failed)


def delivered(services: Services, page_id: int, told: Told) -> None:
    """One provider's outcome for a page, shown: the page message refreshed, a failure told."""
    services.metrics.pages.labels("sent" if told.error is None else "failed").inc()
    page = services.paging.get(page_id)
    refresh(services, page)
    incident = services.incidents.get(page.incident_id)
    if told.error is not None and incident.channel_id:
        text = paging_blocks.failure_message(page, services.paging.display_name(page.team), told.provider)
        services.publisher.post(incident, text)


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


def show_acknowledged(services: Services, page: PageView) -> None:
    if page.acknowledged_at is not None:
        services.metrics.page_ack_seconds.observe((page.acknowledged_at - page.requested_at).total_seconds())
    incident = services.incidents.get(page.incident_id)
    refresh(services, page)
    if incident.channel_id is None:
        return
    by = paging_blocks.acknowledger(page.acknowledged_by)
    seconds = int(((page.acknowledged_at or page.requested_at) - page.requested_at).total_seconds())
    after = f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"
    text = (f":white_check_mark: {by} acknowledged the page to *{_team(services, page.team)}* "
            f"after {after}{_no_escalation(services, page)}.")
    services.publisher.post(incident, mrkdwn.fallback(text))


def resolve_pages(services: Services, incident: Incident, by: Doer) -> None:
    """The incident is resolved: its pages are closed here, their messages say so, and each provider is
    told on its own lanes (a failure is told in the channel when it comes)."""
    resolved = services.paging.resolve_all(incident, by)
    report_told(services, incident.id, resolved.told, "resolve")
    for page in services.paging.pages(incident.id):
        refresh(services, page)


def show_event(services: Services, applied: Applied) -> None:
    """What a provider reported, in the channel: a state change always (the page message refreshed too),
    other news while the incident is open; echoes of the bot's own calls and late arrivals only go to
    the timeline."""
    page, event = applied.page, applied.event
    assert page is not None
    incident = services.incidents.get(page.incident_id)
    words = mrkdwn.escape(mrkdwn.clip(headline(event), EVENT_WORDS))
    link = f" <{event.link}|{event.provider}>" if event.link and event.link.startswith("https://") else ""
    team = f"*{_team(services, page.team)}*"
    if applied.outcome == "changed":
        if event.action is ProviderAction.ACKNOWLEDGED:
            show_acknowledged(services, page)
            return
        refresh(services, page)
        if incident.channel_id is None:
            return
        if event.action is ProviderAction.RESOLVED:
            text = f":heavy_check_mark: {words}: the page to {team} is closed{_no_escalation(services, page)}.{link}"
        else:
            text = f":rotating_light: {words}: the page to {team} is open again{_escalation_due(services, page)}.{link}"
        services.publisher.post(incident, mrkdwn.fallback(text))
    elif applied.outcome == "recorded" and event.action is not ProviderAction.TRIGGERED and incident.is_open and incident.channel_id:
        services.publisher.post(incident, mrkdwn.fallback(f":pager: {words} (the page to {team}).{link}"))


def slack_doer(services: Services, user_id: str) -> Doer:
    """A Slack user as providers should read them: their name, never the raw id when Slack can say."""
    try:
        name = services.users.lookup(user_id)
    except Exception:  # Slack or the store cannot say now: the page still goes out, with the id
        log.warning("paging: could not name %s", user_id, exc_info=True)
        name = None
    return Doer(name or f"Slack user {user_id}", "Slack")


def report_told(services: Services, incident_id: int, told: list[Future[Told]], action: str) -> None:
    """When telling a provider to `action` ("acknowledge", "resolve") fails after its own retries, say
    so in the channel: people must then do it by hand in that provider."""
    for future in told:
        future.add_done_callback(lambda done: _report_if_failed(services, incident_id, _told(done, action, None)))


def when_all(futures: list[Future[Told]], then: Callable[[list[Told]], object]) -> None:
    """Call `then` with every outcome once the last of `futures` is done (at once when there are none)."""
    if not futures:
        then([])
        return
    left = [len(futures)]
    lock = threading.Lock()  # done callbacks run on each provider's own thread

    def one_done(_: Future[Told]) -> None:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            then([_told(f, "trigger", None) for f in futures])

    for future in futures:
        future.add_done_callback(one_done)


def _report_if_failed(services: Services, incident_id: int, told: Told) -> None:
    if told.error is None:
        return
    page = services.paging.get(told.page_id) if told.page_id is not None else None
    team = f" ({_team(services, page.team)})" if page else ""
    error = paging_blocks.provider_error(told.error)
    if told.action == "acknowledge":
        text = f":warning: Could not tell {told.provider}{team} that the page was acknowledged: {error}. Acknowledge it there too."
    else:
        text = f":warning: {told.provider}{team} could not be told to close its alert: {error}. Close it there by hand."

    def post() -> None:
        incident = services.incidents.get(incident_id)
        if incident.channel_id:
            services.publisher.post(incident, mrkdwn.fallback(text))

    services.background.submit(incident_id, post)


def _told(future: Future[Told], action: str, page_id: int | None) -> Told:
    """A provider call's outcome; a bug in the call (not a provider's refusal) reads as its error."""
    error = future.exception()
    if error is not None:
        return Told("the provider", action, page_id, f"the bot failed ({type(error).__name__})")
    return future.result()


def _no_escalation(services: Services, page: PageView) -> str:
    team = services.paging.team(page.team) if page.team in services.paging.team_names() else None
    return f"; no escalation to {_team(services, team.escalate_to)}" if team and team.escalate_to and not page.escalated_at else ""


def _escalation_due(services: Services, page: PageView) -> str:
    team = services.paging.team(page.team) if page.team in services.paging.team_names() else None
    if not (team and team.escalate_to and page.escalation_due_at) or page.escalated_at:
        return ""
    return f"; unless acknowledged it escalates to {_team(services, team.escalate_to)} {slack_date(page.escalation_due_at)}"


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


