"""Sending the bot what Slack would send: slash commands, events and interactions over HTTP, signed the
way Slack signs them (v0 HMAC-SHA256 of `v0:<timestamp>:<body>`). Used by the tests and the demo."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from simulators.block_kit import ack_problems

_sequence = itertools.count(1)


@dataclass(frozen=True)
class Sent:
    """A request as sent, so a test can send the very same body again as Slack's retry would."""

    body: bytes
    content_type: str
    response: httpx.Response


class SlackRequests:
    def __init__(
        self,
        app_url: str,
        signing_secret: str,
        *,
        team_id: str = "T0SIMULATE",
        response_url: str = "http://127.0.0.1:9/response",
        timeout: float = 10.0,
    ) -> None:
        self.events_url = app_url.rstrip("/") + "/slack/events"
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.response_url = response_url
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    # --- what Slack sends

    def command(
        self,
        text: str,
        *,
        user_id: str,
        channel_id: str,
        channel_name: str = "general",
        command: str = "/incident",
        response_url: str | None = None,
    ) -> Sent:
        n = next(_sequence)
        fields = {
            "token": "deprecated-verification-token",
            "team_id": self.team_id,
            "team_domain": "simulated",
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0INCBOT",
            "is_enterprise_install": "false",
            "response_url": response_url or self.response_url,
            "trigger_id": f"{int(time.time())}.{n}.{hashlib.sha1(str(n).encode()).hexdigest()[:24]}",
        }
        return self.send(urlencode(fields).encode(), "application/x-www-form-urlencoded")

    def event(self, event: dict[str, Any], *, event_id: str | None = None, event_time: int | None = None) -> Sent:
        return self.send(self.event_body(event, event_id=event_id, event_time=event_time), "application/json")

    def event_body(self, event: dict[str, Any], *, event_id: str | None = None, event_time: int | None = None) -> bytes:
        """The JSON body of an Events API callback, as Slack wraps an event."""
        n = next(_sequence)
        envelope = {
            "token": "deprecated-verification-token",
            "team_id": self.team_id,
            "api_app_id": "A0INCBOT",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{n:010d}",
            "event_time": event_time or int(time.time()),
            "authorizations": [{"team_id": self.team_id, "user_id": "U0INCBOT", "is_bot": True}],
        }
        return json.dumps(envelope).encode()

    def interaction(self, payload: dict[str, Any]) -> Sent:
        payload = {"team": {"id": self.team_id, "domain": "simulated"}, "api_app_id": "A0INCBOT", **payload}
        return self.send(urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded")

    def message_shortcut(self, callback_id: str, message: dict[str, Any], *, user_id: str, channel_id: str,
                         channel_name: str = "general", response_url: str | None = None) -> Sent:
        """A message shortcut used on `message` (the message object as Slack stored it: ts, text, user or
        bot_id…), shaped as Slack's `message_action` payload (Slack: "Interaction payloads", message
        shortcuts)."""
        n = next(_sequence)
        return self.interaction(
            {
                "type": "message_action",
                "token": "deprecated-verification-token",
                "action_ts": f"{time.time():.6f}",
                "is_enterprise_install": False,
                "enterprise": None,
                "callback_id": callback_id,
                "trigger_id": f"{int(time.time())}.{n}.{hashlib.sha1(str(n).encode()).hexdigest()[:24]}",
                "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": self.team_id},
                "channel": {"id": channel_id, "name": channel_name},
                "message_ts": message["ts"],
                "message": message,
                "response_url": response_url or self.response_url,
            }
        )

    def view_submission(self, view: dict[str, Any], values: dict[str, Any], *, user_id: str) -> Sent:
        submitted = {**view, "state": {"values": values}}
        return self.interaction({"type": "view_submission", "user": {"id": user_id}, "view": submitted, "trigger_id": "t"})

    def block_action(self, action_id: str, value: str, *, user_id: str, channel_id: str, response_url: str | None = None) -> Sent:
        return self.interaction(
            {
                "type": "block_actions",
                "user": {"id": user_id},
                "channel": {"id": channel_id},
                "container": {"type": "message", "channel_id": channel_id},
                "response_url": response_url or self.response_url,
                "trigger_id": f"action.{next(_sequence)}",
                "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value, "action_ts": str(time.time())}],
            }
        )

    # --- how Slack sends it

    def send(
        self,
        body: bytes,
        content_type: str,
        *,
        retry_num: int | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> Sent:
        """POST a body signed now (or with the given timestamp/signature, to forge or replay)."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature or self.sign(body, timestamp),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        response = self._http.post(self.events_url, content=body, headers=headers)
        refuse_invalid_ack(response)
        return Sent(body, content_type, response)

    def retry(self, sent: Sent, retry_num: int = 1) -> Sent:
        """Send the same body again, as Slack does when it heard no answer in time."""
        return self.send(sent.body, sent.content_type, retry_num=retry_num)

    def sign(self, body: bytes, timestamp: int) -> str:
        base = b"v0:" + str(timestamp).encode() + b":" + body
        return "v0=" + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()


def refuse_invalid_ack(response: httpx.Response) -> None:
    """Fail loudly when the app acknowledged with a body Slack would not show.

    Slack reads a 200 answer's JSON as a message (a slash command's or a block action's ack:
    `text`/`blocks`) or, for a view submission, as a `response_action` with a view; the user sees
    nothing when it breaks Block Kit's rules, and the app never hears of it. Checking here puts that
    whole kind of bug in front of the tests. Raises AssertionError with Slack's own wording.
    """
    if response.status_code != 200 or not response.headers.get("content-type", "").startswith("application/json"):
        return
    try:
        answer = response.json()
    except ValueError:
        return
    if problems := ack_problems(answer):
        raise AssertionError("Slack would refuse this acknowledgement: " + "; ".join(problems))
