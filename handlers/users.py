"""User ids to display names (`users.info`), cached. A name that cannot be found is never an error: the
caller gets the id back, written as a mention."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


class UserDirectory:
    def __init__(self, client: WebClient, ttl_seconds: float = 3600) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._names: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def name_of(self, user_id: str) -> str:
        with self._lock:
            cached = self._names.get(user_id)
        if cached and time.monotonic() - cached[1] < self._ttl:
            return cached[0]
        try:
            user = self._client.users_info(user=user_id)["user"]
        except (SlackApiError, OSError) as error:
            log.warning("users.info failed for %s: %s", user_id, error)
            return f"<@{user_id}>"
        profile = user.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name") or user_id
        with self._lock:
            self._names[user_id] = (name, time.monotonic())
        return name
