"""Inviting several people to a channel at once, and knowing exactly who it reached.

Slack: conversations.invite, "Partially failed calls": when any user in `users` cannot be invited,
Slack invites none of them (unless `force=true`), answers `ok: false` with the first failing user's
code in `error`, and names each failing user in `errors` (`[{"user", "ok": false, "error"}]`); a
deactivated ("removed") user fails alone and the others are invited. So the bot invites without
`force`, sets aside the users Slack named, and asks again for the rest. `force=true` would do it in one
call, but what its answer says about the users it disregarded is not documented, and a page must say
exactly who is in the channel.
"""

from __future__ import annotations

from collections.abc import Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.invitations import Invitation
from handlers.slack_client import slack_error

# Slack: conversations.invite, "Errors": the codes that are about one invited user, not the channel or
# the call (those, like is_archived or ratelimited, are raised to the caller).
PER_USER_ERRORS = frozenset({
    "already_in_channel", "cant_invite", "cant_invite_self", "user_not_found", "user_is_restricted",
    "ura_max_channels", "no_permission", "no_external_invite_permission", "org_user_not_in_team",
    "invitee_cant_see_channel",
})

# What each per-user code means to the person reading the page.
REASONS = {
    "user_not_found": "no such user in this workspace",
    "cant_invite": "Slack refused: deactivated, or not allowed in this channel",
    "cant_invite_self": "that is this bot",
    "user_is_restricted": "a guest who may not join this channel",
    "ura_max_channels": "a single-channel guest already in their one channel",
    "no_permission": "Slack does not let the bot invite them",
    "no_external_invite_permission": "an external user the bot may not invite",
    "org_user_not_in_team": "in the organisation but not in this workspace",
    "invitee_cant_see_channel": "cannot see this channel",
}


def invite(client: WebClient, channel: str, users: Iterable[str]) -> Invitation:
    """Invite `users` to `channel`: one call when everyone can be invited, one more after each refusal.
    Raises SlackApiError (or OSError) when the call fails for the channel or the call itself
    (`is_archived`, `not_in_channel`, `ratelimited`…): then nothing is known about anyone."""
    pending = list(dict.fromkeys(users))
    outcome = Invitation()
    unnamed_before: set[str] = set()  # in an earlier call Slack refused without naming them
    while pending:
        try:
            client.conversations_invite(channel=channel, users=",".join(pending))
            return outcome.merged(Invitation(invited=tuple(pending)))
        except SlackApiError as error:
            per_user = _per_user_errors(error, pending)
            if not per_user and len(pending) > 1 and slack_error(error) in PER_USER_ERRORS:
                # A refusal that names nobody: ask for each person on their own.
                for user in pending:
                    outcome = outcome.merged(invite(client, channel, [user]))
                return outcome
            if not per_user:
                raise
        # A deactivated user fails alone: those Slack did not name may have been invited by that call,
        # so one of them found "already in the channel" next time was invited by the bot.
        outcome = outcome.merged(Invitation(
            invited=tuple(u for u, code in per_user.items() if code == "already_in_channel" and u in unnamed_before),
            already=tuple(u for u, code in per_user.items() if code == "already_in_channel" and u not in unnamed_before),
            failed={u: code for u, code in per_user.items() if code != "already_in_channel"},
        ))
        pending = [u for u in pending if u not in per_user]
        unnamed_before.update(pending)
    return outcome


def describe(invitation: Invitation) -> str:
    """One mrkdwn line: who was invited, who already was in the channel, who could not be and why."""
    parts = []
    if invitation.invited:
        parts.append("invited " + _mentions(invitation.invited))
    if invitation.already:
        parts.append("already here: " + _mentions(invitation.already))
    if invitation.failed:
        parts.append(":warning: could not invite " + ", ".join(
            f"<@{user}> ({REASONS.get(code, code)}, `{code}`)" for user, code in invitation.failed.items()))
    return "In the channel: " + ("; ".join(parts) or "nobody to invite")


def _per_user_errors(error: SlackApiError, pending: list[str]) -> dict[str, str]:
    """{user: code} from Slack's `errors`; for a call about one user, its `error` is theirs."""
    named = {
        str(item.get("user")): str(item.get("error") or "")
        for item in (error.response.get("errors") or [])
        if isinstance(item, dict) and item.get("user") in pending
    }
    if not named and len(pending) == 1 and slack_error(error) in PER_USER_ERRORS:
        named = {pending[0]: slack_error(error)}
    return named


def _mentions(users: Iterable[str]) -> str:
    return ", ".join(f"<@{user}>" for user in users)
