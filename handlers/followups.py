"""Slack's side of follow-ups: `/incident followup`, the owners' reminders in a direct message, and
their Done button."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.followups import Due, FollowupView
from bot.incidents import commands as c
from bot.incidents.values import Incident
from handlers import mrkdwn
from handlers.logs import about
from handlers.services import Services

log = logging.getLogger(__name__)

DONE_ACTION = "followup_done"
JOB = "followup-reminders"
SWEEP_SECONDS = 3600  # reminders go out within the hour they fall due


def register(app: App, services: Services) -> None:
    @app.action(DONE_ACTION)
    def done_pressed(ack: Ack, action: dict[str, Any], body: dict[str, Any], respond: Respond) -> None:
        user_id = body["user"]["id"]
        try:
            followup, changed = services.followups.mark_done(int(action["value"]), user_id)  # stored before the answer
        except LookupError:
            ack()
            respond(replace_original=True, text=":information_source: This follow-up no longer exists.")
            return
        ack()
        text, done_blocks = done_message(followup, user_id if changed else followup.done_by)
        services.background.submit(f"followup:{followup.id}", lambda: respond(replace_original=True, text=text, blocks=done_blocks))

    def remind() -> None:
        for due in services.followups.claim_due():
            with about(due.incident.number):
                services.background.submit(f"followup:{due.followup.id}", partial(send_reminder, services, due))

    services.scheduler.handle(JOB, remind)
    services.scheduler.every(SWEEP_SECONDS, JOB, job_id=JOB, first=services.clock.now() + timedelta(minutes=1))


def add_command(services: Services, incident: Incident, command: c.AddFollowup, user_id: str, request_key: str) -> str | None:
    """Store the follow-up, then tell the channel; returns what to tell the person at once, if anything."""
    followup = services.followups.add(incident.id, command.text, command.owner_id, user_id, request_key)
    if followup is None:  # a retry of a request already taken
        return None
    if incident.channel_id:
        owner = f" for <@{followup.owner_id}>" if followup.owner_id else ""
        text = mrkdwn.fallback(f":ballot_box_with_check: <@{user_id}> added a follow-up{owner}: {followup.text}")
        services.background.submit(incident.id, lambda: services.publisher.post(incident, text))
    days = services.settings.file.reminders.followup_after_days
    if followup.owner_id:
        return (f":ballot_box_with_check: Follow-up recorded for <@{followup.owner_id}>; they are reminded {days} days after "
                "the incident closes, until it is marked done.")
    return (":ballot_box_with_check: Follow-up recorded without an owner; nobody will be reminded. "
            f"Add one with an owner at the end: {mrkdwn.placeholders(c.USAGE['followup'])}")


def send_reminder(services: Services, due: Due) -> None:
    assert due.followup.owner_id is not None, "only owned follow-ups are reminded"
    text, reminder_blocks = reminder_message(due.followup, due.incident, services.settings.file.reminders.followup_after_days)
    services.client.chat_postMessage(channel=due.followup.owner_id, text=text, blocks=reminder_blocks)


def reminder_message(followup: FollowupView, incident: Incident, every_days: int) -> tuple[str, list[dict[str, Any]]]:
    """The owner's reminder, by direct message: the follow-up whole (over several sections when it is
    long, so Slack takes it) and its Done button."""
    where = f" (<#{incident.channel_id}>)" if incident.channel_id else ""
    text = f":alarm_clock: A follow-up from incident {incident.number}{where} is still open: {followup.text}"
    reminder_blocks: list[dict[str, Any]] = [
        *mrkdwn.sections(f"{text}\nPress *Done* once it is done; until then you are reminded every {every_days} days."),
        mrkdwn.actions([mrkdwn.button("Done", DONE_ACTION, str(followup.id), style="primary")], block_id=f"followup_{followup.id}"),
    ]
    return mrkdwn.message(text, reminder_blocks)


def done_message(followup: FollowupView, by: str | None) -> tuple[str, list[dict[str, Any]]]:
    """What the reminder becomes once the follow-up is done (the follow-up whole, over sections)."""
    text = f":white_check_mark: Done: {followup.text}" + (f" (marked by <@{by}>)" if by else "")
    return mrkdwn.message(text, mrkdwn.sections(text))
