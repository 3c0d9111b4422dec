"""The `/incident` slash command: parse, store, acknowledge, then let Background talk to Slack.

Each request is acted on at most once: its trigger_id is stored with the change it made, in the same
transaction, so a Slack retry finds the work done. Nothing is acknowledged before it is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk.errors import SlackApiError

from bot.incidents import commands as c
from bot.incidents.service import AlreadyDone, Changed, ChannelIncident, Unchanged
from bot.incidents.values import EntryKind, Incident, Status
from handlers import blocks, diagnostics, followups, mrkdwn, paging, postmortems, private, readin, stats, timeline_view
from handlers.assignees import Vetted, vet
from handlers.logs import about
from handlers.reporting import report_provisioning, report_publishing
from handlers.services import Services
from handlers.slack_client import slack_error
from storage.database import STORE_UNAVAILABLE


# The `/incident` listener, as Bolt calls it: over HTTP the edge calls it too (handlers/http.py).
CommandListener = Callable[[Ack, dict[str, Any], BoltContext, Respond], None]


def register(app: App, services: Services) -> CommandListener:
    """Registers every listener for `/incident` and its buttons; returns the command's own."""

    def incident_command(ack: Ack, command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        """Which incident this channel belongs to, by id and number (named on every log line the command
        writes), is remembered once known, since neither ever changes (IncidentService.of_channel). The
        incident as it stands is read only by the sub-commands that show or check it (`Channel.incident`);
        a change reads it inside its own transaction. (Looked up here, not in a listener middleware:
        Bolt builds every argument it could pass for each function it calls, about 0.1 ms a time.)"""
        try:
            ref = services.incidents.of_channel(command.get("channel_id", ""))
        except STORE_UNAVAILABLE:
            context["store_down"] = True
            ref = None
        context["channel"] = Channel(services, ref)
        with about(ref.number if ref else None):
            listen(ack, command, context, respond)

    app.command("/incident")(incident_command)

    def listen(ack: Ack, command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        try:
            parsed = c.parse(command.get("text", ""))
        except c.UsageError as error:
            services.metrics.commands.labels("invalid").inc()
            ack(response_type="ephemeral", text=blocks.usage_error(error.message, error.usage))
            return
        services.metrics.commands.labels(type(parsed).__name__.lower()).inc()
        if context.get("store_down") and not isinstance(parsed, c.Help):
            ack(response_type="ephemeral", text=degraded(services, parsed, command))
            return
        try:
            act(parsed, command, context, ack, respond)
        except STORE_UNAVAILABLE:  # the store went away between the lookup and the change
            ack(response_type="ephemeral", text=degraded(services, parsed, command))

    def act(parsed: c.Command, command: dict[str, Any], context: BoltContext, ack: Ack, respond: Respond) -> None:
        user_id = command["user_id"]
        channel: Channel = context["channel"]
        request_key = f"command:{command.get('trigger_id') or command.get('response_url') or ''}"
        match parsed:
            case c.Help():
                ack(response_type="ephemeral", text=blocks.help_message())
            case c.ListOpen():
                incidents = services.incidents.list_open()
                # A private incident's details only for its channel's members, asked of Slack within the 3 s.
                members = private.members_of(services.instant_client, incidents, user_id, here=command.get("channel_id"))
                text, list_blocks = blocks.open_incidents(incidents, services.clock.now(), members_of=members.members,
                                                          unknown=members.unknown)
                ack(response_type="ephemeral", text=text, blocks=list_blocks)
            case c.OpenDeclareForm():
                # A trigger_id lives 3 seconds: open the form now, before answering, not from a queue.
                try:
                    form = blocks.declare_form(command.get("channel_id"), private=parsed.private, severity=parsed.severity)
                    services.instant_client.views_open(trigger_id=command["trigger_id"], view=form)
                except (SlackApiError, OSError) as error:
                    ack(
                        response_type="ephemeral",
                        text=f":warning: The declare form could not open (Slack said `{slack_error(error)}`). "
                        f"Declare with text instead: {mrkdwn.placeholders(c.USAGE['declare'])}",
                    )
                    return
                ack()
            case c.Declare():
                declare(parsed, user_id, request_key, ack, respond)
            case c.PageTeam(team, message):
                incident = channel.incident
                if incident is None:
                    ack(response_type="ephemeral", text=blocks.not_an_incident_channel())
                elif not incident.is_open:
                    ack(response_type="ephemeral", text=f":information_source: Incident {incident.number} is closed; nobody needs paging for it.")
                else:
                    answer(ack, paging.page_command(services, incident, team, message, user_id, request_key, respond))
            case c.AddFollowup() | c.DraftPostmortem():
                incident = channel.incident
                if incident is None:
                    ack(response_type="ephemeral", text=blocks.not_an_incident_channel())
                elif isinstance(parsed, c.AddFollowup):
                    vetted = vet(services, parsed.owner_id, "this follow-up's owner") if parsed.owner_id else Vetted()
                    if vetted.refusal:
                        ack(response_type="ephemeral", text=blocks.usage_error(vetted.refusal, c.USAGE["followup"]))
                        return
                    recorded = followups.add_command(services, incident, parsed, user_id, request_key)
                    answer(ack, "\n".join(part for part in (recorded, vetted.caveat) if part) or None)
                else:
                    answer(ack, postmortems.request_draft(services, incident, user_id, request_key, respond))
            case c.MakePrivate():
                incident = channel.incident
                if incident is None:
                    ack(response_type="ephemeral", text=blocks.not_an_incident_channel())
                else:
                    answer(ack, private.make_private_command(services, incident, user_id, request_key, respond))
            case c.ListDiagnostics() | c.RunDiagnostic():
                answer(ack, diagnostics.diag_command(services, parsed, channel.incident, user_id, respond))
            case c.ShowSummary():
                incident = channel.incident
                if incident is None:
                    ack(response_type="ephemeral", text=blocks.not_an_incident_channel())
                    return
                text, summary_blocks = readin.summary(services, incident)
                ack(response_type="ephemeral", text=text, blocks=summary_blocks)
            case c.ShowStats():  # anywhere: figures across incidents, by direct message
                answer(ack, stats.stats_command(services, user_id, respond))
            case c.ShowTimeline():
                incident = channel.incident
                if incident is None:
                    ack(response_type="ephemeral", text=blocks.not_an_incident_channel())
                    return
                text, page = timeline_view.render(incident, services.timeline.items(incident.id), 0, services.paging.display_name,
                                                  _zone(services))
                ack(response_type="ephemeral", text=text, blocks=page)
            case c.AssignRole(role, person) if channel.ref is not None:
                # Who Slack says this is, before the change's transaction opens.
                vetted = vet(services, person, f"the {role.label.lower()}")
                if vetted.refusal:
                    ack(response_type="ephemeral", text=blocks.usage_error(vetted.refusal, c.USAGE["role"]))
                    return
                change(parsed, channel.ref, user_id, request_key, ack, respond, note=vetted.caveat)
            case _:
                change(parsed, channel.ref, user_id, request_key, ack, respond)

    def declare(command: c.Declare, user_id: str, request_key: str, ack: Ack, respond: Respond) -> None:
        result = services.incidents.declare(command, user_id, request_key)
        incident = result.incident
        if not result.created:
            ack(response_type="ephemeral", text=blocks.already_declared(incident))
            return
        services.metrics.incidents_declared.inc()
        ack(response_type="ephemeral", text=f":hourglass_flowing_sand: Declaring incident {incident.number}: opening its channel…")

        def provision() -> None:
            ready = services.publisher.provision(incident.id)
            respond(response_type="ephemeral", replace_original=True, text=blocks.declared_to_reporter(ready))

        services.background.submit(incident.id, provision, on_error=report_provisioning(services, incident.id, respond))

    def change(
        command: c.IncidentCommand, incident: ChannelIncident | None, user_id: str, request_key: str, ack: Ack,
        respond: Respond, note: str | None = None,
    ) -> None:
        """`note`: told to the person who asked once the change is stored. The incident is read (and
        locked) inside the change's transaction: nothing read before it is trusted."""
        if incident is None:
            ack(response_type="ephemeral", text=blocks.not_an_incident_channel())
            return
        outcome = services.incidents.apply(incident.id, command, user_id, request_key)
        match outcome:
            case Unchanged() if isinstance(command, c.Close) and outcome.incident.status is Status.CLOSED:
                # Closing a closed incident again re-drafts its postmortem: the record may have grown since.
                answer(ack, postmortems.request_draft(services, outcome.incident, user_id, request_key, respond))
            case Unchanged(reason=reason):
                ack(response_type="ephemeral", text=f":information_source: {reason}")
            case AlreadyDone():
                ack()
            case Changed():
                answer(ack, note)
                services.background.submit(
                    incident.id,
                    lambda: services.publisher.publish(outcome),
                    on_error=report_publishing(services, outcome, respond),
                )
                if outcome.kind in (EntryKind.RESOLVED, EntryKind.CLOSED):  # ends paging and escalations
                    services.background.submit(incident.id, lambda: paging.resolve_pages(services, outcome.incident, paging.slack_doer(services, user_id)))
                if outcome.kind is EntryKind.CLOSED:
                    requested = services.postmortems.get(outcome.data["postmortem_id"])
                    services.background.submit(incident.id, lambda: postmortems.draft_and_post(services, requested.id),
                                               on_error=postmortems.report_failure(services, requested, respond))

    @app.action(timeline_view.PAGE_ACTIONS)
    def timeline_page(ack: Ack, action: dict[str, Any], respond: Respond) -> None:
        ack()
        incident_id, page = (int(part) for part in action["value"].split(":"))
        incident = services.incidents.get(incident_id)
        text, page_blocks = timeline_view.render(incident, services.timeline.items(incident_id), page, services.paging.display_name,
                                                 _zone(services))
        services.background.submit(
            f"page:{incident_id}", lambda: respond(response_type="ephemeral", replace_original=True, text=text, blocks=page_blocks)
        )

    @app.action(blocks.RETRY_PROVISION_ACTION)
    def retry_provisioning(ack: Ack, action: dict[str, Any], respond: Respond) -> None:
        ack()
        incident_id = int(action["value"])

        def provision() -> None:
            ready = services.publisher.provision(incident_id)
            respond(replace_original=True, text=f":white_check_mark: Incident {ready.number} is ready: {blocks.channel_link(ready)}.")

        services.background.submit(incident_id, provision, on_error=report_provisioning(services, incident_id, respond))

    return incident_command


class Channel:
    """The incident of the channel a command was typed in: `ref` (id and number, known before the
    listener runs) and `incident`, as it stands, read from the store on first use only: most
    sub-commands (a note, a status change) never need it before their own transaction."""

    def __init__(self, services: Services, ref: ChannelIncident | None) -> None:
        self.ref = ref
        self._services = services
        self._incident: Incident | None = None

    @property
    def incident(self) -> Incident | None:
        """Raises what the store raises when it is down (the listener answers degraded)."""
        if self.ref is not None and self._incident is None:
            self._incident = self._services.incidents.get(self.ref.id)
        return self._incident


def _zone(services: Services) -> ZoneInfo:
    """Where the timeline's days begin: the zone the postmortem uses (`[postmortem] timezone`)."""
    return ZoneInfo(services.settings.file.postmortem.timezone)


def degraded(services: Services, parsed: c.Command, command: dict[str, Any]) -> str:
    """What to tell someone whose command needs the bot's database while it is down. A page still goes
    out, straight to the team's providers: during an outage that is the one thing that cannot wait."""
    down = ":warning: The bot's database is not answering, so "
    if isinstance(parsed, c.PageTeam):
        return paging.page_unrecorded(services, parsed.team, parsed.message, command, down)
    return (down + "nothing was recorded or changed. Messages in incident channels are still being recorded "
            "(kept on local disk until the database is back), and `/incident page &lt;team&gt;` still pages. "
            "Try this again in a minute.")


def answer(ack: Ack, reply: str | None) -> None:
    """Acknowledge with a message only the caller sees, or with nothing when there is nothing to say."""
    if reply:
        ack(response_type="ephemeral", text=reply)
    else:
        ack()
