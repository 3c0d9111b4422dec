"""Checking, before anything is stored, that the person a command names (`role <role> <@user>`,
`followup <text> <@owner>`) can do it: Slack is asked who they are (users.info) before the command's
transaction opens, with the instant client, since the answer to Slack waits on it.

When Slack cannot say (rate limited, a 5xx, no answer within the instant client's 2 seconds), the
command is carried out with a caveat rather than refused: the mention came from Slack's own picker,
so the person almost surely exists; who leads an incident must not wait on a directory lookup; and the
person who asked is told the check did not happen, so a mistake is one command away from fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

from bot.assignees import refusal, refusal_by_id
from handlers.services import Services
from handlers.slack_client import slack_error


@dataclass(frozen=True)
class Vetted:
    refusal: str | None = None  # why they can't: nothing may be stored
    caveat: str | None = None  # Slack could not say: carried out, and the person who asked told so


def vet(services: Services, user_id: str, job: str) -> Vetted:
    """Whether `user_id` can be `job` ("the commander", "this follow-up's owner")."""
    refused = refusal_by_id(user_id, bot_user_id=services.bot_user_id, job=job)
    if refused:
        return Vetted(refusal=refused)
    try:
        user = services.users.profile(user_id, services.instant_client)
    except (SlackApiError, OSError) as error:
        return Vetted(caveat=(
            f":warning: Slack could not confirm who <@{user_id}> is (users.info: `{slack_error(error)}`), so "
            f"they are {job} unchecked. If that mention is not an active person in this workspace, name "
            "someone else the same way."))
    return Vetted(refusal=refusal(user_id, user, job=job))
