"""User ids to display names (`users.info`), cached in memory and remembered in the store.

Every name Slack gives is remembered in the store (bot/people.py), however it was asked for: the report
and the CLI's drafts have no Slack, and name people only as the store knows them. A name that cannot be
found is never an error: Slack-facing text falls back to a `<@U…>` mention (which Slack renders as the
name anyway), and the id stays unknown until a later message brings it up again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import IntegrityError

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
        name = self._cached(user_id)
        if name is None:
            name = self._fetch(user_id)
        return name if name is not None else f"<@{user_id}>"

    def lookup(self, user_id: str) -> str | None:
        """The display name, or None when Slack cannot say (for callers with their own fallback: a
        postmortem draft naming the people its store does not know). The name is in the store when this
        returns, so the report and later drafts, which read only the store, name them as this caller did."""
        name = self._cached(user_id)
        if name is None:
            return self._fetch(user_id)  # remembers what it learns
        self._keep(user_id, name)  # cached by profile(), whose own remembering may not have run or may have failed
        return name

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
        # Remembered like any name learnt (a follow-up's owner is named in the report from the store), after
        # the fact: the caller may be answering Slack within its 3 seconds.
        self._background.submit(f"user:{user_id}", lambda: self._people.remember(user_id, name))
        return SlackUser(user_id, name, deleted=bool(user.get("deleted")), is_bot=bool(user.get("is_bot")))

    def learn(self, user_id: str) -> None:
        """Make sure the store will know this person's name, without delaying the caller."""
        with self._lock:
            if user_id in self._asked:
                return
            self._asked.add(user_id)
        self._background.submit(f"user:{user_id}", lambda: self._fetch(user_id))

    def _cached(self, user_id: str) -> str | None:
        """The name cached within the TTL, else None."""
        with self._lock:
            cached = self._names.get(user_id)
        return cached[0] if cached and time.monotonic() - cached[1] < self._ttl else None

    def _keep(self, user_id: str, name: str) -> None:
        """Remember the name now; a store that fails here costs only the remembering (asked again next time)."""
        try:
            self._people.remember(user_id, name)
        except (IntegrityError, *STORE_UNAVAILABLE) as error:  # IntegrityError: another thread or replica stored them first
            log.warning("the name of %s was not kept in the store (%s)", user_id, type(error).__name__)

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
