"""Telling a person that work done after Slack was answered failed, and what to do about it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Respond

from bot.incidents.service import Changed
from handlers import blocks
from handlers.publisher import StepFailed, what_failed
from handlers.services import Services


def direct_message(services: Services, user_id: str) -> Callable[..., None]:
    """A `respond`-like callable that writes to the user in the app's DM, for failures found where no
    response_url exists (the declare form, set-up resumed at start)."""

    def send(**message: Any) -> None:
        message.pop("response_type", None)
        message.pop("replace_original", None)
        services.client.chat_postMessage(channel=user_id, **message)

    return send


def report_provisioning(services: Services, incident_id: int, respond: Callable[..., Any]) -> Callable[[BaseException], None]:
    def report(error: BaseException) -> None:
        services.metrics.background_failures.inc()
        incident = services.incidents.get(incident_id)
        step, code = (error.step, error.error) if isinstance(error, StepFailed) else ("setting up Slack", type(error).__name__)
        text, failure_blocks = blocks.provisioning_failed(incident, step, code)
        respond(response_type="ephemeral", replace_original=True, text=text, blocks=failure_blocks)

    return report


def report_publishing(services: Services, change: Changed, respond: Respond) -> Callable[[BaseException], None]:
    def report(error: BaseException) -> None:
        services.metrics.background_failures.inc()
        what = what_failed(error)
        respond(
            response_type="ephemeral",
            text=f":warning: Your change to incident {change.incident.number} is saved, but {what}. "
            "The summary and topic catch up with the next change; post `/incident update &lt;text&gt;` to tell the channel.",
        )

    return report
