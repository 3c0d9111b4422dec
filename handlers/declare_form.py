"""The declare form (a modal), opened by `/incident declare` with no title, or prefilled by the message
shortcut Declare incident (handlers.declare_from_message: then the message rides along to the
submission and becomes the incident's first Detection entry).

A submission has no response_url and the modal closes at the answer, so what the person is told after it
(the incident declared with a link to its channel, nothing new opened, or set-up failed) comes by direct
message from the app."""

from __future__ import annotations

import html
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.incidents import commands as c
from bot.incidents.values import Severity
from handlers import blocks, declare_from_message
from handlers.reporting import direct_message, report_provisioning
from handlers.services import Services
from handlers.slack_client import slack_error

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    @app.view(blocks.DECLARE_CALLBACK)
    def declare_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        user_id = body["user"]["id"]
        try:
            command = _declare_command(values, declare_from_message.submitted_source(services, view, values))
        except c.UsageError as error:
            ack(response_action="errors", errors={"title": error.message})
            return
        # The view id stays the same if the form is submitted twice: one incident, however many clicks.
        result = services.incidents.declare(command, user_id, f"view:{view['id']}")
        ack()
        tell = direct_message(services, user_id)
        incident_id = result.incident.id
        if not result.created:
            # On the incident's lane: after its set-up, so the link is to its channel.
            services.background.submit(incident_id, lambda: tell(text=blocks.already_declared(services.incidents.get(incident_id))))
            return
        services.metrics.incidents_declared.inc()

        def provision() -> None:
            ready = services.publisher.provision(incident_id)
            try:
                tell(text=blocks.declared_to_reporter(ready))
            except (SlackApiError, OSError) as error:  # set up all the same: not a set-up failure
                log.warning("incident %s: telling <@%s> it is declared failed: %s", ready.number, user_id, slack_error(error))

        services.background.submit(incident_id, provision, on_error=report_provisioning(services, incident_id, tell))


def _declare_command(values: dict[str, Any], source: c.SourceMessage | None = None) -> c.Declare:
    def value(block: str) -> str:
        element = values.get(block, {}).get("value", {})
        selected = element.get("selected_option")
        return (selected or {}).get("value", "") if selected is not None else (element.get("value") or "")

    # `--private` typed into the title means the Private box, as it does in the slash command.
    words, flagged = c.title_private_flag(value("title").split(), "", how="Tick Private")
    # Form input is plain text; stored text is Slack mrkdwn, as a slash command would have sent it.
    title = _title(" ".join(words))
    severity = Severity(value("severity")) if value("severity") in Severity._value2member_map_ else c.DEFAULT_SEVERITY
    description = html.escape(c.without_nul(value("description")).strip(), quote=False) or None
    ticked = values.get("private", {}).get("value", {}).get("selected_options") or []
    private = flagged or any(option.get("value") == blocks.PRIVATE_OPTION for option in ticked)
    return c.Declare(title=title, severity=severity, description=description, private=private, source=source)


def _title(typed: str) -> str:
    """The title escaped as a slash command would bring it, then held to the bot's limit (which
    counts it as stored, and says so when only escaping made it too long)."""
    return c.clean_title(html.escape(typed, quote=False))
