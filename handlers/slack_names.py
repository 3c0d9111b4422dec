"""Names for what Slack markup mentions by id, asked of Slack for a draft (bot.slack_markup.Lookup).

People through `UserDirectory` (users.info, cached and remembered in the store), channels through
conversations.info, user groups through one usergroups.list call. A name Slack will not give is left
out, never an error: the draft then reads "a channel (C…)" or "a user group (S…)". In particular a
workspace that did not grant `usergroups:read` (an app installed before the scope was added to the
manifest) answers `missing_scope`: the draft is still made, and the log says which scope would name
the groups.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.slack_client import slack_error
from handlers.users import UserDirectory

log = logging.getLogger(__name__)


class SlackNames:
    def __init__(self, client: WebClient, users: UserDirectory) -> None:
        self._client = client
        self._users = users

    def users(self, user_ids: Collection[str]) -> dict[str, str]:
        return {user_id: name for user_id in user_ids if (name := self._users.lookup(user_id))}

    def channels(self, channel_ids: Collection[str]) -> dict[str, str]:
        """conversations.info for each (scopes channels:read, groups:read for a private one); a channel
        the bot cannot see answers `channel_not_found` (Slack: conversations.info, "Errors"), and stays
        unnamed."""
        found: dict[str, str] = {}
        for channel_id in channel_ids:
            try:
                channel = self._client.conversations_info(channel=channel_id)["channel"]
            except (SlackApiError, OSError) as error:
                reason = slack_error(error)
                hint = " (channels:read and groups:read name channels)" if reason == "missing_scope" else ""
                log.warning("conversations.info failed for %s: %s; it stays unnamed%s", channel_id, reason, hint)
                continue
            if channel.get("name"):
                found[channel_id] = str(channel["name"])
        return found

    def usergroups(self, usergroup_ids: Collection[str]) -> dict[str, str]:
        """Handles from usergroups.list, one call for all (Slack: usergroups.list returns every group of
        the workspace; disabled ones only with include_disabled, and an old message may name one)."""
        wanted = set(usergroup_ids)
        if not wanted:
            return {}
        try:
            groups = self._client.usergroups_list(include_disabled=True).get("usergroups") or []
        except (SlackApiError, OSError) as error:
            reason = slack_error(error)
            hint = " (grant the usergroups:read scope to name them)" if reason == "missing_scope" else ""
            log.warning("usergroups.list failed: %s; user groups stay unnamed%s", reason, hint)
            return {}
        return {str(g["id"]): str(g["handle"]) for g in groups if g.get("id") in wanted and g.get("handle")}

