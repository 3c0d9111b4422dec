"""User ids to display names (`users.info`), cached in memory and remembered in the store.

A name that cannot be found is never an error: Slack-facing text falls back to a `<@U…>` mention (which
Slack renders as the name anyway), and the id stays unknown until a later message brings it up again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.assignees import SlackUser
from bot.people import People
from handlers.background import Background
from handlers.slack_client import slack_error
from storage.database import STORE_UNAVAILABLE

log = logging.getLogger(__name__)


class UserDirectory:
    def __init__(self, client: WebClient, people: People, background: Background, ttl_seconds: float = 3600) -> None:
        self._client = client
        self._people = people
        self._background = background
        self._ttl = ttl_seconds
        self._names: dict[str, tuple[str, float]] = {}
        self._asked: set[str] = set()
        self._lock = threading.Lock()

    def name_of(self, user_id: str) -> str:
        """The display name, asking Slack if it is not cached; a mention if Slack cannot say."""
        with self._lock:
            cached = self._names.get(user_id)
        if cached and time.monotonic() - cached[1] < self._ttl:
            return cached[0]
        name = self._fetch(user_id)
        return name if name is not None else f"<@{user_id}>"

    def lookup(self, user_id: str) -> str | None:
        """The display name, or None when Slack cannot say (for callers with their own fallback)."""
        name = self.name_of(user_id)
        return None if name == f"<@{user_id}>" else name

    def known(self, user_ids: Collection[str]) -> dict[str, str]:
        """The names already known (cached, however old, or remembered in the store), never asking
        Slack: for answers that cannot wait on users.info. Unknown ids are simply missing; while the
        store is down, only the cached names are known."""
        found: dict[str, str] = {}
        with self._lock:
            for user_id in user_ids:
                if cached := self._names.get(user_id):
                    found[user_id] = cached[0]
        missing = set(user_ids) - found.keys()
        try:
            remembered = self._people.names(missing) if missing else {}
        except STORE_UNAVAILABLE:
            remembered = {}
        return {**remembered, **found}

    def profile(self, user_id: str, client: WebClient | None = None) -> SlackUser | None:
        """What Slack says about `user_id` now (users.info, never cached: a deactivation must count at
        once); None when Slack answers `user_not_found`. Raises SlackApiError or OSError when Slack
        cannot say. `client`: the instant one when an answer to Slack waits on this call."""
        try:
            user = (client or self._client).users_info(user=user_id)["user"]
        except SlackApiError as error:
            if slack_error(error) == "user_not_found":
                return None
            raise
        name = _display_name(user, user_id)
        with self._lock:
            self._names[user_id] = (name, time.monotonic())
        return SlackUser(user_id, name, deleted=bool(user.get("deleted")), is_bot=bool(user.get("is_bot")))

    def learn(self, user_id: str) -> None:
        """Make sure the store will know this person's name, without delaying the caller."""
        with self._lock:
            if user_id in self._asked:
                return
            self._asked.add(user_id)
        self._background.submit(f"user:{user_id}", lambda: self._fetch(user_id))

    def _fetch(self, user_id: str) -> str | None:
        try:
            user = self._client.users_info(user=user_id)["user"]
        except (SlackApiError, OSError) as error:
            log.warning("users.info failed for %s: %s", user_id, error)
            with self._lock:
                self._asked.discard(user_id)  # try again when this person next shows up
            return None
        name = _display_name(user, user_id)
        with self._lock:
            self._names[user_id] = (name, time.monotonic())
        self._people.remember(user_id, name)
        return name


def _display_name(user: dict[str, Any], user_id: str) -> str:
    """The name Slack shows (Slack: users.info, `profile.display_name`, else the real name, else the handle)."""
    profile = user.get("profile") or {}
    return str(profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name") or user_id)
