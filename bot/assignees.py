"""Who may be named to do something in an incident (a role, a follow-up's owner): a person Slack knows,
whose account is active, who can be invited to the channel and reminded in a direct message.

Pure rules: the Slack edge looks the person up (users.info) and hands over what Slack said.
"""

from __future__ import annotations

from dataclasses import dataclass

SLACKBOT = "USLACKBOT"  # Slackbot's user id in every workspace; users.info says `is_bot: false` for it


@dataclass(frozen=True)
class SlackUser:
    """What users.info says about an id, reduced to what decides it (Slack: users.info; the user
    object's `deleted` is true for a deactivated account, `is_bot` for bots and apps)."""

    id: str
    name: str
    deleted: bool = False
    is_bot: bool = False


def refusal_by_id(user_id: str, *, bot_user_id: str, job: str) -> str | None:
    """Why `user_id` cannot be `job` ("the commander", "this follow-up's owner"), when its id alone
    says so (this bot, Slackbot); None otherwise. Worded for the person who asked."""
    if user_id == bot_user_id:
        return (f"<@{user_id}> is this bot: it keeps the record, but {job} must be a person who can act "
                "and answer for it. Name a person.")
    if user_id == SLACKBOT:
        return f"Slackbot can't be {job}: name a person."
    return None


def refusal(user_id: str, user: SlackUser | None, *, job: str) -> str | None:
    """Why `user_id` cannot be `job` given what Slack said (`user` None: Slack answered
    `user_not_found`); None when they can."""
    if user is None:
        return (f"Slack has no user <@{user_id}> in this workspace, so they can't be {job}. "
                "Type @ and pick the person from the list Slack offers.")
    if user.deleted:
        return (f"<@{user_id}> ({user.name}) is deactivated in Slack: they can't join the channel or be "
                f"reminded, so they can't be {job}. Name someone active.")
    if user.is_bot:
        return f"<@{user_id}> ({user.name}) is an app, not a person, so it can't be {job}. Name a person."
    return None
