"""In-process simulator of the Slack Web API, for tests and demos.

`SlackSimulator` runs a real HTTP server on loopback (stdlib only) that answers the
Web API methods the incident bot uses with Slack's documented response shapes and
error codes.  It keeps realistic workspace state (users, channels, memberships,
messages, pins, ephemeral posts, modal views), records every call, and can be
scripted to fail (rate limits, server errors, dropped connections) so retry paths
can be exercised with an unmodified ``slack_sdk.WebClient``::

    with SlackSimulator() as sim:
        sim.add_user("U0ALICE", "alice")
        client = WebClient(token=sim.bot_token, base_url=sim.base_url)
        client.conversations_create(name="inc-42")
        assert sim.channel_by_name("inc-42")["is_member"]

It also stands in for a slash command's ``response_url``: see `response_url()`.

Every message, response_url body and view is checked with simulators.block_kit (Slack's documented
Block Kit limits plus block_id / action_id uniqueness) and refused as Slack refuses it:
``invalid_blocks`` from chat.*, ``invalid_arguments`` from views.*, HTTP 400 ``invalid_blocks`` from a
response_url; a text over 40,000 characters is posted cut, with Slack's ``message_truncated`` warning.

File uploads work the way ``WebClient.files_upload_v2`` drives them: files.getUploadURLExternal hands
out an upload URL on this server, the raw bytes are POSTed there (answered ``OK - <bytes>`` like
files.slack.com), and files.completeUploadExternal turns them into a file shared in channels (several
files in one message when `files` lists several); see `files()` and `file_content()`. A ``.png`` whose
bytes are a whole PNG (signature, chunks and their CRCs, IEND) is an image, with Slack's ``original_w`` /
``original_h`` and thumbnails; one whose bytes are not is a plain binary file, as Slack shows it.

It serves Socket Mode too: ``apps.connections.open`` (app token only) hands out a
``ws://`` URL on the same server, where a minimal RFC 6455 endpoint greets the client
with Slack's ``hello`` and carries envelopes both ways (`socket_send()`)::

    sim.wait_for_socket()
    ack = sim.socket_send("slash_commands", {"command": "/incident", ...})

Supported methods: admin.conversations.convertToPrivate (refused as Slack refuses a bot token, unless
`grant_admin_api()`), apps.connections.open, auth.test,
conversations.{create,info,join,invite,members,open,setTopic,archive,unarchive},
chat.{postMessage,update,postEphemeral,getPermalink},
files.{getUploadURLExternal,completeUploadExternal,info}, pins.{add,remove}, users.info, usergroups.list,
views.{open,update}.  Anything else answers HTTP 404 ``unknown_method``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import random
import re
import socket
import string
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simulators.block_kit import (
    TEXT_MAX,
    TRUNCATION_MESSAGE,
    ack_problems,
    message_refusal,
    message_warnings,
    view_problems,
)

__all__ = ["ApiCall", "SlackSimulator", "png_size"]


@dataclass(frozen=True)
class ApiCall:
    """One Web API request as the simulator received and answered it."""

    method: str  # e.g. "chat.postMessage"
    params: dict[str, Any]  # decoded arguments (JSON-string fields such as blocks decoded); token removed
    token: str | None  # from "Authorization: Bearer …" or the `token` field
    http_status: int  # 0 when the connection was dropped on purpose
    response: dict[str, Any]  # JSON body sent back ({} when dropped); "upload" records {"ok", "body" or "error"}
    at: float  # time.time() when received


class SlackSimulator:
    """A fake Slack workspace served over HTTP; see the module docstring."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-simulated-bot-token",
        app_token: str = "xapp-1-simulated-app-token",
        team_id: str = "T0SIMULATE",
        bot_user_id: str = "U0INCBOT",
        bot_id: str = "B0INCBOT",
        host: str = "127.0.0.1",
        port: int = 0,
        now: Callable[[], float] = time.time,
    ) -> None:
        """`now`: the workspace's clock, in seconds since the epoch, that message ts are made from (the
        demo passes its scaled story time, so a message's ts is when it was said in the story)."""
        # Identity of the simulated install; treat as read-only.
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # One lock guards everything below: handler threads and the test thread share it.
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._used_ids: set[str] = set()
        self._now = now
        self._ts_counter = int(now() * 1_000_000)
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, _Channel] = {}  # public/private channels and IMs
        self._ims: dict[str, str] = {}  # user id -> IM channel id
        self._usergroups: dict[str, dict[str, Any]] = {}  # user group id -> usergroup object
        self._ephemerals: list[dict[str, Any]] = []
        self._views: dict[str, dict[str, Any]] = {}  # view id -> current view object
        self._uploads: dict[str, _Upload] = {}  # file id -> upload begun by files.getUploadURLExternal
        self._upload_urls: dict[str, str] = {}  # opaque upload URL token -> file id
        self._files: dict[str, dict[str, Any]] = {}  # file id -> shared file object, in completion order
        self._calls: list[ApiCall] = []
        self._responses: list[tuple[str, dict[str, Any]]] = []
        self._failures: dict[str, deque[_Failure]] = {}
        self._admin_api = False  # admin.* methods answer as for an Enterprise Grid admin's token: grant_admin_api()
        # Socket Mode: open connections that got `hello` (the last one receives envelopes), acks by envelope id.
        self._socket_changed = threading.Condition(self._lock)
        self._sockets: list[_WebSocket] = []
        self._tickets: set[str] = set()
        self._acks: dict[str, dict[str, Any]] = {}
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "admin.conversations.convertToPrivate": self._admin_conversations_convert_to_private,
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "conversations.create": self._conversations_create,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.invite": self._conversations_invite,
            "conversations.members": self._conversations_members,
            "conversations.open": self._conversations_open,
            "conversations.setTopic": self._conversations_set_topic,
            "conversations.archive": self._conversations_archive,
            "conversations.unarchive": self._conversations_unarchive,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "files.info": self._files_info,
            "pins.add": self._pins_add,
            "pins.remove": self._pins_remove,
            "users.info": self._users_info,
            "usergroups.list": self._usergroups_list,
            "views.open": self._views_open,
            "views.update": self._views_update,
        }
        self._users[bot_user_id] = self._user_object(
            bot_user_id, "incident-bot", "Incident Bot", "", is_bot=True, deleted=False, tz="UTC"
        )
        # Every workspace has Slackbot; users.info answers `is_bot: false` for it, as Slack does.
        self._users[SLACKBOT_ID] = self._user_object(
            SLACKBOT_ID, "slackbot", "Slackbot", "Slackbot", is_bot=False, deleted=False, tz="America/Los_Angeles"
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the port and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("SlackSimulator is already running")
        self._server = _Server((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (closing Socket Mode connections) and release the port; safe to call more than once."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.socket.close()  # refuse reconnections at once while sockets close
            with self._lock:
                sockets = list(self._sockets)
            for ws in sockets:
                ws.close(1001, "server stopping")
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("SlackSimulator is not running; call start() first")
        return f"http://{self._host}:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """Value for ``WebClient(base_url=...)``; slack_sdk appends the method name."""
        return f"{self.url}/api/"

    def response_url(self, name: str = "default") -> str:
        """A URL standing in for a slash command's response_url; posts are kept for `responses()`."""
        return f"{self.url}/response/{name}"

    def responses(self, name: str | None = None) -> list[dict[str, Any]]:
        """JSON bodies posted to response URLs, in arrival order, optionally for one name only."""
        with self._lock:
            return [copy.deepcopy(body) for n, body in self._responses if name is None or n == name]

    # -- Socket Mode ----------------------------------------------------------------

    def socket_connected(self) -> bool:
        """Whether a Socket Mode client is connected (and was sent `hello`)."""
        with self._lock:
            return bool(self._sockets)

    def wait_for_socket(self, timeout: float = 10.0) -> None:
        """Block until a Socket Mode client is connected and greeted; AssertionError on timeout."""
        with self._socket_changed:
            if not self._socket_changed.wait_for(lambda: self._sockets, timeout):
                raise AssertionError(f"no Socket Mode client connected within {timeout:g}s")

    def socket_send(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = True,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Send an envelope ("slash_commands", "events_api", "interactive") to the latest socket; return its ack."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id, "type": envelope_type, "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt, "retry_reason": retry_reason,
        }
        with self._lock:
            if not self._sockets:
                raise AssertionError("no Socket Mode client is connected")
            ws = self._sockets[-1]
        ws.send(_OP_TEXT, json.dumps(envelope).encode())
        with self._socket_changed:
            if not self._socket_changed.wait_for(lambda: envelope_id in self._acks, timeout):
                raise AssertionError(f"no ack for {envelope_type} envelope {envelope_id} within {timeout:g}s")
            ack = self._acks.pop(envelope_id)
        if problems := ack_problems(ack.get("payload")):  # Slack would show the user nothing
            raise AssertionError("Slack would refuse this acknowledgement: " + "; ".join(problems))
        return ack

    # -- workspace set-up ----------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "Europe/Paris",
    ) -> None:
        """Add (or replace) a workspace member."""
        user = self._user_object(
            user_id, name, real_name or name, display_name or "", is_bot=is_bot, deleted=deleted, tz=tz
        )
        with self._lock:
            self._users[user_id] = user
            self._used_ids.add(user_id)

    def add_channel(
        self,
        name: str,
        *,
        channel_id: str | None = None,
        is_private: bool = False,
        members: Iterable[str] = (),
        bot_is_member: bool = True,
    ) -> str:
        """Create a channel directly (no API call recorded) and return its id."""
        member_set = set(members) | ({self.bot_user_id} if bot_is_member else set())
        with self._lock:
            if self._find_by_name(name) is not None:
                raise ValueError(f"a channel named {name!r} already exists")
            if channel_id is not None and channel_id in self._used_ids:
                raise ValueError(f"id {channel_id!r} is already in use")
            # Channels made by set-up code were created by "someone else" unless the bot is in them.
            creator = self.bot_user_id if bot_is_member else next(iter(sorted(member_set)), self.bot_user_id)
            return self._new_channel(name, is_private, member_set, creator, channel_id).id

    def add_message(self, channel_id: str, text: str, *, user: str, thread_ts: str | None = None) -> str:
        """Make `user` (a human) post `text` in a channel, as if typed in the client; returns its ts."""
        with self._lock:
            ch = self._channels[channel_id]
            message = {"type": "message", "user": user, "text": text, "ts": self._next_ts(), "team": self.team_id}
            self._append_message(ch, message, thread_ts)
            return message["ts"]

    def add_bot_message(self, channel_id: str, text: str, *, bot_id: str, username: str) -> str:
        """Make another app post `text` in a channel (a `bot_message`: a bot_id and the app's name, no
        user); returns its ts."""
        with self._lock:
            ch = self._channels[channel_id]
            message = {"type": "message", "subtype": "bot_message", "bot_id": bot_id, "username": username,
                       "text": text, "ts": self._next_ts(), "team": self.team_id}
            self._append_message(ch, message, None)
            return message["ts"]

    def add_usergroup(
        self, usergroup_id: str, handle: str, *, name: str | None = None, users: Iterable[str] = (),
        disabled: bool = False, created_by: str = "USLACKBOT",
    ) -> None:
        """Add (or replace) a user group, mentioned in text as <!subteam^ID>; `disabled` ones have a
        date_delete and are listed only with include_disabled (Slack: usergroups.list)."""
        now = int(time.time())
        group = {
            "id": usergroup_id, "team_id": self.team_id, "is_usergroup": True, "is_subteam": True,
            "name": name or handle, "description": "", "handle": handle, "is_external": False,
            "date_create": now, "date_update": now, "date_delete": now if disabled else 0, "auto_type": None,
            "auto_provision": False, "enterprise_subteam_id": "", "created_by": created_by, "updated_by": created_by,
            "deleted_by": created_by if disabled else None, "prefs": {"channels": [], "groups": []},
            "users": sorted(users),
        }
        with self._lock:
            self._usergroups[usergroup_id] = group
            self._used_ids.add(usergroup_id)

    def archive_channel(self, channel_id: str, *, by: str) -> dict[str, Any]:
        """A person archives a channel from the client. Slack then answers `is_archived` to every write
        there, and takes the app's bot user out of it (so a bot token cannot unarchive it: see
        conversations.unarchive). Returns the event Slack sends: `channel_archive` (public) or
        `group_archive` (private), {"type", "channel", "user", "event_ts"}, for the test to deliver."""
        with self._lock:
            ch = self._channels[channel_id]
            if ch.is_archived:
                raise ValueError(f"{channel_id} is already archived")
            ts = self._next_ts()
            # What the client shows in the history: a message of subtype channel_archive.
            ch.messages[ts] = {"type": "message", "subtype": "channel_archive", "user": by, "ts": ts,
                               "text": f"<@{by}> archived the channel", "team": self.team_id}
            self._archive(ch)
            kind = "group_archive" if ch.is_private else "channel_archive"
            return {"type": kind, "channel": ch.id, "user": by, "event_ts": ts}

    def unarchive_channel(self, channel_id: str, *, by: str) -> dict[str, Any]:
        """A person unarchives a channel: writes work again and that person is in it, the bot is not
        (it has to join again). Returns `channel_unarchive` {"type", "channel", "user", "event_ts"}, or
        `group_unarchive` for a private channel (which names the person as "actor_id")."""
        with self._lock:
            ch = self._channels[channel_id]
            if not ch.is_archived:
                raise ValueError(f"{channel_id} is not archived")
            ch.is_archived = False
            ch.members.add(by)
            ts = self._next_ts()
            if ch.is_private:
                return {"type": "group_unarchive", "channel": ch.id, "actor_id": by, "event_ts": ts}
            return {"type": "channel_unarchive", "channel": ch.id, "user": by, "event_ts": ts}

    def convert_to_private(self, channel_id: str) -> None:
        """A workspace admin or the channel's manager converts a public channel to private from the client
        (the channel's name → Settings → Change to a private channel): the same id, members and history,
        found and read by its members only from then on. Slack sends apps no event for it."""
        with self._lock:
            ch = self._channels[channel_id]
            if ch.is_private or ch.im_user:
                raise ValueError(f"{channel_id} is already private")
            ch.is_private = True

    def add_members(self, channel_id: str, *users: str) -> None:
        """People join a channel (or are added to a private one by a member), as in the client."""
        with self._lock:
            self._channels[channel_id].members.update(users)

    def grant_admin_api(self) -> None:
        """From now on admin.conversations.convertToPrivate answers as it does for a token that may use it:
        in Slack, a user token with admin.conversations:write from an app installed on a whole Enterprise
        Grid org (never a bot token); here the bot's token stands in for it."""
        with self._lock:
            self._admin_api = True

    def delete_channel(self, channel_id: str, *, by: str) -> dict[str, Any]:
        """A workspace admin deletes a channel: from then on every method answers `channel_not_found`.
        Returns `channel_deleted` (or `group_deleted`) {"type", "channel", "actor_id", "event_ts"}."""
        with self._lock:
            ch = self._channels.pop(channel_id)
            kind = "group_deleted" if ch.is_private else "channel_deleted"
            return {"type": kind, "channel": ch.id, "actor_id": by, "event_ts": self._next_ts()}

    # -- scripting and inspection ------------------------------------------------------

    @property
    def calls(self) -> list[ApiCall]:
        """Every API call received so far, in arrival order (a snapshot)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        """Calls of one method, successful and failed alike."""
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def wait_for(self, predicate: Callable[[SlackSimulator], Any], timeout: float = 5.0) -> Any:
        """Poll until ``predicate(self)`` is truthy and return its value; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout:g}s; {self._recent_calls_summary()}")
            time.sleep(0.01)

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        count: int = 1,
        retry_after: int = 1,
        http_status: int | None = None,
        drop_connection: bool = False,
        needed: str | None = None,
    ) -> None:
        """Make the next `count` calls of `method` fail (see `_Failure` for what each mode sends).

        `method` "upload" scripts the upload URLs instead: the error goes back as a text body with
        `http_status`, and the bytes are not stored (so a 200 failure surfaces at completion).
        `needed`: sent beside the error as Slack sends it with `missing_scope` (the scopes the method
        takes, comma-separated, e.g. "im:write"; Slack also sends `provided`, which nothing here reads).
        """
        status = http_status if http_status is not None else (429 if error == "ratelimited" else 200)
        failure = _Failure(error, status, retry_after, drop_connection, needed)
        with self._lock:
            self._failures.setdefault(method, deque()).extend([failure] * count)

    def reset(self) -> None:
        """Forget recorded calls, response_url posts, pending failures and uploads; keep the workspace.

        Messages that shared a file keep their copy of it; files.info no longer knows the file.
        """
        with self._lock:
            self._calls.clear()
            self._responses.clear()
            self._failures.clear()
            self._uploads.clear()
            self._upload_urls.clear()
            self._files.clear()

    def channel(self, channel_id: str) -> dict[str, Any] | None:
        """The conversation object Slack would return for `channel_id`, or None."""
        with self._lock:
            ch = self._channels.get(channel_id)
            return self._conversation(ch) if ch else None

    def channel_by_name(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            ch = self._find_by_name(name)
            return self._conversation(ch) if ch else None

    def channels(self) -> list[dict[str, Any]]:
        """Public and private channels in creation order (IMs excluded)."""
        with self._lock:
            return [self._conversation(ch) for ch in self._channels.values() if ch.im_user is None]

    def members(self, channel_id: str) -> set[str]:
        with self._lock:
            ch = self._channels.get(channel_id)
            return set(ch.members) if ch else set()

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Messages in a channel in ts order (thread replies included, carrying thread_ts)."""
        with self._lock:
            ch = self._channels.get(channel_id)
            return copy.deepcopy(list(ch.messages.values())) if ch else []

    def direct_messages(self, user_id: str) -> list[dict[str, Any]]:
        """Messages in the app's direct-message conversation with `user_id` (none if it was never opened)."""
        with self._lock:
            im = self._ims.get(user_id)
            return copy.deepcopy(list(self._channels[im].messages.values())) if im else []

    def pins(self, channel_id: str) -> list[str]:
        with self._lock:
            ch = self._channels.get(channel_id)
            return list(ch.pins) if ch else []

    def ephemerals(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemerals if channel_id is None or e["channel"] == channel_id]

    def views(self) -> list[dict[str, Any]]:
        """Views opened so far (current version of each), in opening order."""
        with self._lock:
            return copy.deepcopy(list(self._views.values()))

    def files(self) -> list[dict[str, Any]]:
        """Files completed by files.completeUploadExternal, in completion order, each with its text as "content"."""
        with self._lock:
            return [
                {**copy.deepcopy(f), "content": (self._uploads[f["id"]].data or b"").decode("utf-8", "replace")}
                for f in self._files.values()
            ]

    def file_content(self, file_id: str) -> bytes:
        """The bytes POSTed to `file_id`'s upload URL, completed or not; KeyError when none arrived."""
        with self._lock:
            upload = self._uploads.get(file_id)
            if upload is None or upload.data is None:
                raise KeyError(file_id)
            return upload.data

    # -- request handling (called from server threads) ------------------------------

    def _handle_api(
        self, method: str, query: str, headers: Message, body: bytes, at: float
    ) -> _Reply | None:
        params, decodable = _decode_params(query, headers.get("Content-Type") or "", body)
        body_token = params.pop("token", None)
        token = _bearer_token(headers.get("Authorization")) or (str(body_token) if body_token else None)
        reply_headers: dict[str, str] = {}
        with self._lock:
            failure = self._next_failure(method)
            if failure is not None and failure.drop_connection:
                self._record(method, params, token, 0, {}, at)
                return None
            if failure is not None:
                status, payload = failure.http_status, {"ok": False, "error": failure.error}
                if failure.needed is not None:
                    payload["needed"] = failure.needed
                if failure.error == "ratelimited":
                    reply_headers["Retry-After"] = str(failure.retry_after)
            else:
                try:
                    status, payload = 200, {"ok": True, **self._invoke(method, params, token, decodable)}
                except _SlackError as exc:
                    status, payload = exc.http_status, {"ok": False, "error": exc.error, **exc.extra}
                except Exception as exc:  # noqa: BLE001 - a simulator bug must reach the test, not kill the connection
                    status, payload = 500, {"ok": False, "error": "internal_error", "detail": repr(exc)}
            self._record(method, params, token, status, payload, at)
        return _Reply(status, json.dumps(payload).encode(), "application/json; charset=utf-8", reply_headers)

    def _handle_response_url(self, name: str, body: bytes) -> _Reply:
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _Reply(400, b"invalid_payload", "text/plain; charset=utf-8", {})
        # A response_url answers like an incoming webhook: the bare error code in a 400, no details
        # (slackapi/java-slack-sdk#1017: "a 400 `invalid_blocks` ... There is no error message").
        # Deleting the original needs no content.
        refusal = None if _truthy(payload.get("delete_original")) else message_refusal(payload)
        if refusal is not None:
            return _Reply(400, refusal.error.encode(), "text/plain; charset=utf-8", {})
        if message_warnings(payload):  # posted cut to 40,000 characters, like every way of posting
            payload = {**payload, "text": str(payload["text"])[:TEXT_MAX]}
        with self._lock:
            self._responses.append((name, payload))
        return _Reply(200, b"ok", "text/plain; charset=utf-8", {})

    def _handle_upload(self, url_token: str, body: bytes, at: float) -> _Reply | None:
        """Take the bytes POSTed to an upload URL; answered in text like files.slack.com, recorded as "upload"."""
        reply_headers: dict[str, str] = {}
        with self._lock:
            failure = self._next_failure("upload")
            file_id = self._upload_urls.get(url_token)
            upload = self._uploads.get(file_id) if file_id else None
            params: dict[str, Any] = {"file_id": file_id, "length": len(body)} if file_id else {"length": len(body)}
            if failure is not None and failure.drop_connection:
                self._record("upload", params, None, 0, {}, at)
                return None
            if failure is not None:
                status, text, recorded = failure.http_status, failure.error, {"ok": False, "error": failure.error}
                if failure.error == "ratelimited":
                    reply_headers["Retry-After"] = str(failure.retry_after)
            elif upload is None or upload.completed:  # completion consumes the ticket
                status, text, recorded = 404, "not_found", {"ok": False, "error": "not_found"}
            else:
                upload.data = body  # a repeated POST replaces the bytes, like a retried upload
                status, text = 200, f"OK - {len(body)}"
                recorded = {"ok": True, "body": text}
            self._record("upload", params, None, status, recorded, at)
        return _Reply(status, text.encode(), "text/plain; charset=utf-8", reply_headers)

    def _next_failure(self, method: str) -> _Failure | None:
        failures = self._failures.get(method)
        return failures.popleft() if failures else None

    def _invoke(self, method: str, params: dict[str, Any], token: str | None, decodable: bool) -> dict[str, Any]:
        handler = self._methods.get(method)
        if handler is None:
            raise _SlackError("unknown_method", http_status=404, req_method=method)
        if not decodable:
            raise _SlackError("invalid_json")
        if not token:
            raise _SlackError("not_authed")
        if token != (self.app_token if method == "apps.connections.open" else self.bot_token):
            raise _SlackError("not_allowed_token_type" if token in (self.bot_token, self.app_token) else "invalid_auth")
        return handler(params)

    def _record(
        self, method: str, params: dict[str, Any], token: str | None, status: int, payload: dict[str, Any], at: float
    ) -> None:
        # Deep copies: later state changes must not rewrite history seen by assertions.
        self._calls.append(ApiCall(method, copy.deepcopy(params), token, status, copy.deepcopy(payload), at))

    def _serve_socket(self, ws: _WebSocket) -> None:
        """Run one Socket Mode connection (handshake already done) until it closes."""
        ws.send(_OP_TEXT, json.dumps(_HELLO).encode())
        with self._socket_changed:
            self._sockets.append(ws)
            self._socket_changed.notify_all()
        if self._server is None:  # stop() began before we registered: it will not close this one
            ws.close(1001, "server stopping")
        try:
            for text in ws.messages():
                try:
                    message = json.loads(text)
                except ValueError:
                    continue
                if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                    with self._socket_changed:
                        self._acks[message["envelope_id"]] = message
                        self._socket_changed.notify_all()
        finally:
            with self._socket_changed:
                self._sockets.remove(ws)
                self._socket_changed.notify_all()

    def _take_ticket(self, query: str) -> bool:
        with self._lock:
            ticket = dict(parse_qsl(query)).get("ticket", "")
            found = ticket in self._tickets
            self._tickets.discard(ticket)
            return found

    def _recent_calls_summary(self) -> str:
        with self._lock:
            recent = self._calls[-20:]
        if not recent:
            return "no API calls were received"
        lines = (
            f"  {c.method} -> {'ok' if c.response.get('ok') else c.response.get('error', 'dropped')}"
            f" (HTTP {c.http_status})"
            for c in recent
        )
        return "last calls:\n" + "\n".join(lines)

    # -- Web API methods (run with the lock held; raise _SlackError to fail) ---------

    def _apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        return {"url": f"ws{self.url[4:]}/link/?ticket={ticket}&app_id={_APP_ID}"}

    def _auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": _WORKSPACE_URL, "team": "Simulated", "user": "incident-bot", "team_id": self.team_id,
            "user_id": self.bot_user_id, "bot_id": self.bot_id, "is_enterprise_install": False,
        }

    def _conversations_create(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p.get("name") or "")
        if not name:
            raise _SlackError("invalid_name_required")
        if len(name) > 80:
            raise _SlackError("invalid_name_maxlength")
        if not _CHANNEL_NAME.fullmatch(name):  # Slack's create does not lowercase for you
            raise _SlackError("invalid_name_specials")
        if not name.strip("-_"):
            raise _SlackError("invalid_name_punctuation")
        if self._find_by_name(name) is not None:  # archived channels keep their names
            raise _SlackError("name_taken")
        ch = self._new_channel(name, _truthy(p.get("is_private")), {self.bot_user_id}, self.bot_user_id)
        return {"channel": self._conversation(ch)}

    def _conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._conversation(self._channel_arg(p))}

    def _conversations_join(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel_arg(p)
        if ch.is_private or ch.im_user:
            raise _SlackError("method_not_supported_for_channel_type")
        if ch.is_archived:
            raise _SlackError("is_archived")
        result: dict[str, Any] = {}
        if self.bot_user_id in ch.members:
            result = {"warning": "already_in_channel", "response_metadata": {"warnings": ["already_in_channel"]}}
        ch.members.add(self.bot_user_id)
        return {"channel": self._conversation(ch), **result}

    def _conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        """Slack: conversations.open. `users`, 1 to 8 comma-separated user ids ("Don't include the ID of
        the user you're calling conversations.open on behalf of"): one opens, or resumes, the 1:1 DM,
        answered `{"channel": {"id": "D…"}}`, with `no_op` and `already_open` true when it was open
        already; `return_im` true answers the whole IM object instead. Or `channel`, an IM's id, resumes
        it. Errors: users_list_not_supplied, too_many_users, user_not_found, user_disabled (a deactivated
        account), channel_not_found, method_not_supported_for_channel_type (`channel` is no IM). Not
        simulated, answered with codes Slack never sends so a test relying on them fails plainly: a
        multi-person DM (`mpim_not_simulated`) and a DM with the bot itself (`self_dm_not_simulated`)."""
        raw = p.get("users") or ""
        users = [u.strip() for u in (raw if isinstance(raw, list) else str(raw).split(",")) if u.strip()]
        channel_id = str(p.get("channel") or "")
        if channel_id and not users:
            ch = self._channels.get(channel_id)
            if ch is None:
                raise _SlackError("channel_not_found")
            if ch.im_user is None:
                raise _SlackError("method_not_supported_for_channel_type")
            already = True
        else:
            if not users:
                raise _SlackError("users_list_not_supplied")
            if len(users) > 8:
                raise _SlackError("too_many_users")
            for user in users:
                if user not in self._users:
                    raise _SlackError("user_not_found")
                if self._is_deactivated(user):
                    raise _SlackError("user_disabled")
            if len(users) > 1:
                raise _SlackError("mpim_not_simulated")
            if users[0] == self.bot_user_id:
                raise _SlackError("self_dm_not_simulated")
            already = users[0] in self._ims
            ch = self._open_im(users[0])
        shown = {**self._conversation(ch), "is_open": True} if _truthy(p.get("return_im")) else {"id": ch.id}
        return {"channel": shown, **({"no_op": True, "already_open": True} if already else {})}

    def _conversations_members(self, p: dict[str, Any]) -> dict[str, Any]:
        """Slack: conversations.members. A page of member ids (`limit`: default 100, at most 1,000; "Fewer
        than the requested number of items may be returned"), `response_metadata.next_cursor` "" on the
        last page; errors `channel_not_found` (also for a private channel the bot is not in: Slack shows
        a bot only the private channels it is in), `invalid_cursor`, `invalid_limit`. The cursor is
        Slack's shape, base64 of "user:<the next page's first member>"."""
        ch = self._channel_arg(p)
        if ch.is_private and ch.im_user is None and self.bot_user_id not in ch.members:
            raise _SlackError("channel_not_found")
        raw_limit = p.get("limit")
        try:
            limit = 100 if raw_limit in (None, "") else int(str(raw_limit))
        except ValueError:
            raise _SlackError("invalid_limit") from None
        if not 1 <= limit <= 1000:
            raise _SlackError("invalid_limit")
        members = sorted(ch.members)
        start = 0
        if p.get("cursor"):
            try:
                after = base64.b64decode(str(p["cursor"]), validate=True).decode("ascii")
            except ValueError:
                raise _SlackError("invalid_cursor") from None
            if not after.startswith("user:"):
                raise _SlackError("invalid_cursor")
            start = next((i for i, m in enumerate(members) if m >= after[5:]), len(members))
        page = members[start:start + limit]
        rest = members[start + limit:]
        cursor = base64.b64encode(f"user:{rest[0]}".encode("ascii")).decode("ascii") if rest else ""
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def _admin_conversations_convert_to_private(self, p: dict[str, Any]) -> dict[str, Any]:
        """Slack: admin.conversations.convertToPrivate, an Admin API method ("This API method can only be
        used on Enterprise Grid workspaces"; scope admin.conversations:write, user tokens only). A bot
        token gets `not_allowed_token_type`, as every method its token type may not call. With
        `grant_admin_api()`: `channel_not_found`, `channel_type_not_supported` ("a DM, MPDM, private, or
        the 'general' channel"), else the channel is private from then on."""
        if not self._admin_api:
            raise _SlackError("not_allowed_token_type")
        ch = self._channels.get(self._require(p, "channel_id"))
        if ch is None:
            raise _SlackError("channel_not_found")
        if ch.is_private or ch.im_user:
            raise _SlackError("channel_type_not_supported")
        ch.is_private = True
        return {}

    def _conversations_invite(self, p: dict[str, Any]) -> dict[str, Any]:
        """Slack: conversations.invite, "Partially failed calls" and the `force` argument. Each user who
        cannot be invited (the bot itself, an unknown id, a deactivated account, someone already in the
        channel) is named in `errors` ({"user", "ok": false, "error"}), the first one's code is `error`.
        Without `force`, one such user means nobody is invited, except that a deactivated ("removed")
        user fails on their own and the others are still invited. With `force=true` the valid users are
        invited and the invalid ones disregarded; the answer still names them (an assumption: Slack does
        not document that answer's shape, so it is modelled on the removed-user case)."""
        ch = self._writable_channel(p)
        if ch.im_user:
            raise _SlackError("method_not_supported_for_channel_type")
        raw = p.get("users") or ""
        users = [u.strip() for u in (raw if isinstance(raw, list) else str(raw).split(",")) if u.strip()]
        users = list(dict.fromkeys(users))
        if not users:
            raise _SlackError("no_user")
        errors: list[dict[str, Any]] = [
            {"user": u, "ok": False, "error": code} for u in users if (code := self._invite_error(ch, u))
        ]
        failing = {e["user"] for e in errors}
        blocking = [e for e in errors if e["error"] != "cant_invite" or not self._is_deactivated(e["user"])]
        if not blocking or _truthy(p.get("force")):
            ch.members.update(u for u in users if u not in failing)
        if errors:
            raise _SlackError(errors[0]["error"], errors=errors)
        return {"channel": self._conversation(ch)}

    def _invite_error(self, ch: _Channel, user: str) -> str | None:
        """Why `user` cannot be invited to `ch` (Slack's per-user error code), or None."""
        if user == self.bot_user_id:
            return "cant_invite_self"
        if user not in self._users:
            return "user_not_found"
        if self._users[user]["deleted"]:
            return "cant_invite"
        return "already_in_channel" if user in ch.members else None

    def _is_deactivated(self, user: str) -> bool:
        return bool(self._users.get(user, {}).get("deleted"))

    def _conversations_set_topic(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._writable_channel(p)
        topic = str(p.get("topic") or "")
        if len(topic) > 250:
            raise _SlackError("too_long")
        ch.topic = {"value": topic, "creator": self.bot_user_id, "last_set": int(time.time())}
        return {"channel": self._conversation(ch)}

    def _conversations_archive(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel_arg(p)
        if ch.im_user:
            raise _SlackError("method_not_supported_for_channel_type")
        if ch.is_archived:
            raise _SlackError("already_archived")
        if self.bot_user_id not in ch.members:
            raise _SlackError("not_in_channel")
        self._archive(ch)
        return {}

    def _conversations_unarchive(self, p: dict[str, Any]) -> dict[str, Any]:
        """Slack: conversations.unarchive. Its page warns "Bot tokens (xoxb-...) cannot currently be used
        to unarchive conversations"; what they get is `not_in_channel` (undocumented, see
        slack-go/slack#1066): archiving took the bot out. The bot token is the only one this simulator
        serves Web API methods to, so an archived channel is never unarchived here (a person can:
        `unarchive_channel`)."""
        ch = self._channel_arg(p)
        if ch.im_user:
            raise _SlackError("method_not_supported_for_channel_type")
        if not ch.is_archived:
            raise _SlackError("not_archived")
        raise _SlackError("not_in_channel")

    def _chat_post_message(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._writable_channel(p, for_post=True)
        text, blocks, attachments = self._message_content(p)
        message: dict[str, Any] = {
            "type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "app_id": _APP_ID,
            "text": text, "ts": self._next_ts(), "team": self.team_id,
        }
        if blocks:
            message["blocks"] = blocks
        if attachments:
            message["attachments"] = attachments
        thread_ts = str(p.get("thread_ts") or "") or None
        if thread_ts and _truthy(p.get("reply_broadcast")):  # Slack: a reply also shown in the channel
            message["subtype"] = "thread_broadcast"
        self._append_message(ch, message, thread_ts)
        return {"channel": ch.id, "ts": message["ts"], "message": message, **_truncation_notice(p)}

    def _chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel_arg(p)
        if ch.is_archived:
            raise _SlackError("is_archived")
        message = ch.messages.get(str(p.get("ts") or ""))
        if message is None:
            raise _SlackError("message_not_found")
        if message.get("bot_id") != self.bot_id:
            raise _SlackError("cant_update_message")
        text, blocks, attachments = self._message_content(p)
        # Documented semantics: omitted fields are kept; an empty blocks array removes blocks.
        if "text" in p:
            message["text"] = text
        for key, value in (("blocks", blocks), ("attachments", attachments)):
            if key in p:
                if value:
                    message[key] = value
                else:
                    message.pop(key, None)
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": ch.id, "ts": message["ts"], "text": message["text"], "message": message,
                **_truncation_notice(p)}

    def _chat_post_ephemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._writable_channel(p)
        user = self._require(p, "user")
        if user not in self._users:
            raise _SlackError("user_not_found")
        if user not in ch.members:
            raise _SlackError("user_not_in_channel")
        text, blocks, _ = self._message_content(p)
        ts = self._next_ts()
        self._ephemerals.append(
            {"channel": ch.id, "user": user, "text": text, "blocks": blocks or [], "message_ts": ts}
        )
        return {"message_ts": ts, **_truncation_notice(p)}

    def _chat_get_permalink(self, p: dict[str, Any]) -> dict[str, Any]:
        ch = self._channel_arg(p)
        message = ch.messages.get(str(p.get("message_ts") or ""))
        if message is None:
            raise _SlackError("message_not_found")
        permalink = f"{_WORKSPACE_URL}archives/{ch.id}/p{message['ts'].replace('.', '')}"
        if message.get("thread_ts", message["ts"]) != message["ts"]:  # replies link into their thread
            permalink += f"?thread_ts={message['thread_ts']}&cid={ch.id}"
        return {"channel": ch.id, "permalink": permalink}

    def _files_get_upload_url_external(self, p: dict[str, Any]) -> dict[str, Any]:
        filename, raw_length = str(p.get("filename") or ""), p.get("length")
        problems, length = [], 0
        if not filename:
            problems.append("[ERROR] missing required field: filename")
        if raw_length is None or raw_length == "":
            problems.append("[ERROR] missing required field: length")
        elif isinstance(raw_length, bool) or not re.fullmatch(r"-?[0-9]+", str(raw_length).strip()):
            problems.append("[ERROR] must be an integer [json-pointer:/length]")
        elif (length := int(str(raw_length))) < 1:  # Slack's wording for an empty file, sic
            problems.append("[ERROR] must be greater than 1 [json-pointer:/length]")
        if problems:
            raise _SlackError("invalid_arguments", response_metadata={"messages": problems})
        alt_txt, snippet_type = str(p.get("alt_txt") or ""), str(p.get("snippet_type") or "")
        if len(alt_txt) > 1000:
            raise _SlackError("alt_txt_too_large")
        if snippet_type and snippet_type not in _SNIPPET_TYPES:
            raise _SlackError("unknown_snippet_type")
        if snippet_type and length > _SNIPPET_MAX_BYTES:
            raise _SlackError("snippet_too_large")
        upload = _Upload(self._new_id("F"), filename, length, uuid.uuid4().hex, alt_txt, snippet_type)
        self._uploads[upload.id] = upload
        self._upload_urls[upload.url_token] = upload.id
        return {"upload_url": f"{self.url}/upload/v1/{upload.url_token}", "file_id": upload.id}

    def _files_complete_upload_external(self, p: dict[str, Any]) -> dict[str, Any]:
        """Share uploaded files; nothing changes unless every file and channel checks out."""
        entries = _upload_entries(p.get("files"))
        uploads: list[_Upload] = []
        for entry in entries:
            upload = self._uploads.get(entry["id"])
            # Never issued, bytes missing or not of the declared length, or already completed: Slack's
            # "could not find the file from the upload ticket" (it would otherwise wait for the bytes).
            if (
                upload is None or upload.completed or upload in uploads
                or upload.data is None or len(upload.data) != upload.length
            ):
                raise _SlackError("file_not_found")
            uploads.append(upload)
        targets = self._share_targets(p)
        created = int(time.time())
        files = [
            self._file_object(upload, str(entry.get("title") or upload.filename), created)
            for upload, entry in zip(uploads, entries, strict=True)
        ]
        thread_ts = str(p.get("thread_ts") or "") or None
        for target in targets:
            ch = self._open_im(target) if isinstance(target, str) else target
            # History carries the files without their share lists, as conversations.history shows them.
            shown = [{k: v for k, v in f.items() if k not in _SHARE_FIELDS} for f in files]
            message = {
                "type": "message", "text": str(p.get("initial_comment") or ""), "files": copy.deepcopy(shown),
                "upload": True, "user": self.bot_user_id, "bot_id": self.bot_id, "display_as_bot": False,
                "ts": self._next_ts(), "team": self.team_id,
            }
            self._append_message(ch, message, thread_ts)
            for f in files:
                self._add_share(f, ch, str(message["ts"]), thread_ts)
        for upload, f in zip(uploads, files, strict=True):
            upload.completed = True
            self._files[f["id"]] = f
        return {"files": files}

    def _files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        file = self._files.get(self._require(p, "file"))
        if file is None:  # pending uploads are not files yet
            raise _SlackError("file_not_found")
        result: dict[str, Any] = {"file": file, "comments": [], "response_metadata": {"next_cursor": ""}}
        if file["filetype"] != "binary":
            result["content"] = (self._uploads[file["id"]].data or b"").decode("utf-8", "replace")
        return result

    def _pins_add(self, p: dict[str, Any]) -> dict[str, Any]:
        ch, message = self._pin_target(p)
        if message["ts"] in ch.pins:
            raise _SlackError("already_pinned")
        ch.pins.append(message["ts"])
        message["pinned_to"] = [ch.id]
        return {}

    def _pins_remove(self, p: dict[str, Any]) -> dict[str, Any]:
        ch, message = self._pin_target(p)
        if message["ts"] not in ch.pins:
            raise _SlackError("no_pin")
        ch.pins.remove(message["ts"])
        message.pop("pinned_to", None)
        return {}

    def _users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(self._require(p, "user"))
        if user is None:
            raise _SlackError("user_not_found")
        return {"user": user}

    def _usergroups_list(self, p: dict[str, Any]) -> dict[str, Any]:
        """Every user group of the workspace, in no particular order; disabled ones only with
        include_disabled, members only with include_users, user_count (a string, as in Slack's
        example) only with include_count (Slack: usergroups.list)."""
        groups = []
        for group in self._usergroups.values():
            if group["date_delete"] and not _truthy(p.get("include_disabled")):
                continue
            shown = {k: v for k, v in group.items() if k != "users"}
            if _truthy(p.get("include_users")):
                shown["users"] = list(group["users"])
            if _truthy(p.get("include_count")):
                shown["user_count"] = str(len(group["users"]))
            groups.append(copy.deepcopy(shown))
        return {"usergroups": groups}

    def _views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("view") in (None, ""):
            raise _invalid_arguments("missing required field: view")
        if not str(p.get("trigger_id") or ""):
            raise _SlackError("invalid_trigger_id")
        view = self._view_object(p["view"], view_id=self._new_id("V"))
        self._views[view["id"]] = view
        return {"view": view}

    def _views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("view") in (None, ""):
            raise _invalid_arguments("missing required field: view")
        view_id, external_id = str(p.get("view_id") or ""), str(p.get("external_id") or "")
        if not view_id and not external_id:
            raise _invalid_arguments("missing required field: view_id")
        key, wanted = ("id", view_id) if view_id else ("external_id", external_id)
        current = next((v for v in self._views.values() if v[key] == wanted), None)
        if current is None:
            raise _SlackError("not_found")
        if p.get("hash") and p["hash"] != current["hash"]:
            raise _SlackError("hash_conflict")
        view = self._view_object(p["view"], view_id=current["id"], previous=current)
        self._views[view["id"]] = view
        return {"view": view}

    # -- helpers (lock held) --------------------------------------------------------------

    def _require(self, p: dict[str, Any], key: str) -> str:
        value = str(p.get(key) or "")
        if not value:
            raise _invalid_arguments(f"missing required field: {key}")
        return value

    def _channel_arg(self, p: dict[str, Any], *, for_post: bool = False) -> _Channel:
        """Resolve the `channel` argument; chat.postMessage also accepts a user id (DM) or a name."""
        value = str(p.get("channel") or "")
        ch = self._channels.get(value)
        if ch is None and for_post:
            if value[:1] in ("U", "W") and value in self._users and value != self.bot_user_id:
                ch = self._open_im(value)
            elif value:
                ch = self._find_by_name(value.lstrip("#"))
        if ch is None:
            raise _SlackError("channel_not_found")
        return ch

    def _writable_channel(self, p: dict[str, Any], *, for_post: bool = False) -> _Channel:
        ch = self._channel_arg(p, for_post=for_post)
        if ch.is_archived:
            raise _SlackError("is_archived")
        if self.bot_user_id not in ch.members:
            raise _SlackError("not_in_channel")
        return ch

    def _pin_target(self, p: dict[str, Any]) -> tuple[_Channel, dict[str, Any]]:
        ch = self._writable_channel(p)
        ts = str(p.get("timestamp") or "")
        if not ts:
            raise _SlackError("no_item_specified")
        message = ch.messages.get(ts)
        if message is None:
            raise _SlackError("message_not_found")
        return ch, message

    def _message_content(self, p: dict[str, Any]) -> tuple[str, list[Any] | None, Any]:
        """Validate text/blocks/attachments the way chat.* methods do (simulators.block_kit's rules).

        Slack answers Block Kit problems with ``invalid_blocks``, the problems both bare in
        ``errors`` and as ``response_metadata.messages`` (as seen from chat.postMessage); a text
        over 40,000 characters is posted cut to 40,000 (see `_truncation_notice`).
        """
        refusal = message_refusal(p)
        if refusal is not None:
            extra: dict[str, Any] = {}
            if refusal.messages:
                extra = {"errors": [m.removeprefix("[ERROR] ") for m in refusal.messages],
                         "response_metadata": {"messages": refusal.messages}}
            raise _SlackError(refusal.error, **extra)
        blocks = p.get("blocks") or None
        return str(p.get("text") or "")[:TEXT_MAX], blocks, p.get("attachments") or None

    def _share_targets(self, p: dict[str, Any]) -> list[_Channel | str]:
        """Channels from `channel_id` and `channels` (user ids there mean a DM, opened only on success)."""
        ids = []
        channel_id = str(p.get("channel_id") or "")
        if channel_id:
            if not _CHANNEL_ID.fullmatch(channel_id):
                pattern = _CHANNEL_ID.pattern
                raise _invalid_arguments(f"input must match regex pattern: {pattern} [json-pointer:/channel_id]")
            ids.append(channel_id)
        raw = p.get("channels") or ""
        ids += [c.strip() for c in (raw if isinstance(raw, list) else str(raw).split(",")) if c.strip()]
        ids = list(dict.fromkeys(ids))
        if len(ids) > 100:
            raise _SlackError("channels_limit_exceeded")
        targets: list[_Channel | str] = []
        for value in ids:
            user = self._users.get(value)
            if user is not None and value != self.bot_user_id and not user["deleted"]:
                targets.append(value)
            else:
                targets.append(self._writable_channel({"channel": value}))
        return targets

    def _file_object(self, upload: _Upload, title: str, created: int) -> dict[str, Any]:
        data = upload.data or b""
        filetype, pretty_type, mimetype, mode = _file_kind(upload.filename, data, upload.snippet_type)
        slug = re.sub(r"[^a-z0-9._-]+", "_", upload.filename.lower())  # Slack's URL form of the name
        private = f"{_WORKSPACE_URL}files-pri/{self.team_id}-{upload.id}/"
        file: dict[str, Any] = {
            "id": upload.id, "created": created, "timestamp": created, "name": upload.filename, "title": title,
            "mimetype": mimetype, "filetype": filetype, "pretty_type": pretty_type, "user": self.bot_user_id,
            "user_team": self.team_id, "editable": mode == "snippet", "size": len(data), "mode": mode,
            "is_external": False, "external_type": "", "is_public": False, "public_url_shared": False,
            "display_as_bot": False, "username": "", "url_private": private + slug,
            "url_private_download": f"{private}download/{slug}", "media_display_type": "unknown",
            "permalink": f"{_WORKSPACE_URL}files/{self.bot_user_id}/{upload.id}/{slug}",
            "permalink_public": f"https://slack-files.com/{self.team_id}-{upload.id}-{self._rng.getrandbits(40):010x}",
            "comments_count": 0, "is_starred": False, "has_rich_preview": False, "file_access": "visible",
            "channels": [], "groups": [], "ims": [], "shares": {},
        }
        if upload.alt_txt:
            file["alt_txt"] = upload.alt_txt
        if filetype == "png":
            file.update(_image_fields(data, private, slug))
        return file

    def _add_share(self, file: dict[str, Any], ch: _Channel, ts: str, thread_ts: str | None) -> None:
        """Record a share the way Slack lists it: shares.{public,private}[channel] plus channels/groups/ims."""
        share: dict[str, Any] = {
            "reply_users": [], "reply_users_count": 0, "reply_count": 0, "ts": ts,
            "channel_name": ch.name, "team_id": self.team_id, "share_user_id": self.bot_user_id,
        }
        if thread_ts:
            share["thread_ts"] = thread_ts
        visibility = "private" if ch.is_private or ch.im_user else "public"
        file["shares"].setdefault(visibility, {}).setdefault(ch.id, []).append(share)
        file["ims" if ch.im_user else "groups" if ch.is_private else "channels"].append(ch.id)
        file["is_public"] = file["is_public"] or visibility == "public"

    def _append_message(self, ch: _Channel, message: dict[str, Any], thread_ts: str | None) -> None:
        if thread_ts:
            message["thread_ts"] = thread_ts
            parent = ch.messages.get(thread_ts)
            if parent is not None:  # Slack posts replies to unknown threads anyway; only real parents get counts
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = message["ts"]
        ch.messages[message["ts"]] = message

    def _view_object(self, raw: Any, *, view_id: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise _invalid_arguments("must be an object [json-pointer:/view]")
        if problems := view_problems(raw):  # views.* answer Block Kit problems as invalid_arguments
            raise _SlackError("invalid_arguments", response_metadata={"messages": problems})
        blocks = raw["blocks"]
        return {
            "id": view_id, "team_id": self.team_id, "type": raw["type"], "title": raw.get("title"),
            "blocks": blocks, "close": raw.get("close"), "submit": raw.get("submit"),
            "private_metadata": raw.get("private_metadata", ""), "callback_id": raw.get("callback_id", ""),
            "external_id": raw.get("external_id", ""), "state": {"values": {}},
            "hash": f"{int(time.time())}.{self._rng.getrandbits(32):08x}",
            "clear_on_close": bool(raw.get("clear_on_close", False)),
            "notify_on_close": bool(raw.get("notify_on_close", False)),
            "root_view_id": previous["root_view_id"] if previous else view_id, "previous_view_id": None,
            "app_id": _APP_ID, "app_installed_team_id": self.team_id, "bot_id": self.bot_id,
        }

    def _new_channel(
        self, name: str, is_private: bool, members: set[str], creator: str, channel_id: str | None = None
    ) -> _Channel:
        channel_id = channel_id or self._new_id("C")  # Slack now uses C… ids for private channels too
        self._used_ids.add(channel_id)
        ch = _Channel(channel_id, name, is_private, int(time.time()), creator, set(members))
        self._channels[channel_id] = ch
        return ch

    def _archive(self, ch: _Channel) -> None:
        ch.is_archived = True
        ch.members.discard(self.bot_user_id)  # apps are taken out of an archived channel

    def _open_im(self, user_id: str) -> _Channel:
        if user_id not in self._ims:
            ch = self._new_channel("", True, {self.bot_user_id, user_id}, self.bot_user_id, self._new_id("D"))
            ch.im_user = user_id
            self._ims[user_id] = ch.id
        return self._channels[self._ims[user_id]]

    def _find_by_name(self, name: str) -> _Channel | None:
        return next((ch for ch in self._channels.values() if ch.im_user is None and ch.name == name), None)

    def _conversation(self, ch: _Channel) -> dict[str, Any]:
        if ch.im_user is not None:
            return {
                "id": ch.id, "created": ch.created, "is_im": True, "is_org_shared": False,
                "user": ch.im_user, "is_user_deleted": bool(self._users[ch.im_user]["deleted"]), "priority": 0,
            }
        return {
            "id": ch.id, "name": ch.name, "name_normalized": ch.name, "is_channel": True, "is_group": False,
            "is_im": False, "is_mpim": False, "is_private": ch.is_private, "created": ch.created,
            "creator": ch.creator, "is_archived": ch.is_archived, "is_general": False, "is_shared": False,
            "is_ext_shared": False, "is_org_shared": False, "is_pending_ext_shared": False,
            "is_member": self.bot_user_id in ch.members, "topic": dict(ch.topic), "purpose": dict(ch.purpose),
            "previous_names": [], "num_members": len(ch.members), "unlinked": 0,
            "context_team_id": self.team_id, "shared_team_ids": [self.team_id],
        }

    def _user_object(
        self, user_id: str, name: str, real_name: str, display_name: str, *, is_bot: bool, deleted: bool, tz: str
    ) -> dict[str, Any]:
        tz_label, tz_offset = _tz_details(tz)
        profile = {
            "real_name": real_name, "display_name": display_name, "real_name_normalized": real_name,
            "display_name_normalized": display_name, "team": self.team_id,
            "image_48": f"https://simulated.slack.com/avatars/{user_id}_48.png",
        }
        if is_bot:
            profile["bot_id"] = self.bot_id if user_id == self.bot_user_id else f"B{user_id[1:]}"
        return {
            "id": user_id, "team_id": self.team_id, "name": name, "deleted": deleted, "real_name": real_name,
            "tz": tz, "tz_label": tz_label, "tz_offset": tz_offset, "is_admin": False, "is_owner": False,
            "is_primary_owner": False, "is_restricted": False, "is_ultra_restricted": False,
            "is_bot": is_bot, "is_app_user": False, "profile": profile, "updated": int(time.time()),
        }

    def _next_ts(self) -> str:
        # Strictly increasing across the workspace, yet close to the workspace's clock like real ts values.
        self._ts_counter = max(self._ts_counter + 1, int(self._now() * 1_000_000))
        seconds, micros = divmod(self._ts_counter, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def _new_id(self, prefix: str) -> str:
        while True:
            candidate = prefix + "".join(self._rng.choices(_ID_ALPHABET, k=10))
            if candidate not in self._used_ids:
                self._used_ids.add(candidate)
                return candidate


# ---------------------------------------------------------------------------------------
# Private module helpers


_WORKSPACE_URL = "https://simulated.slack.com/"
SLACKBOT_ID = "USLACKBOT"  # Slackbot's fixed user id in every workspace
_APP_ID = "A0INCBOT"
_ID_ALPHABET = string.ascii_uppercase + string.digits
_CHANNEL_NAME = re.compile(r"[a-z0-9_-]+")
_CHANNEL_ID = re.compile(r"^[CGDZ][A-Z0-9]{8,}$")  # files.completeUploadExternal's schema for channel_id
_JSON_FIELDS = frozenset({"blocks", "attachments", "view", "files"})  # slack_sdk form-encodes these as JSON
_SNIPPET_MAX_BYTES = 1024 * 1024  # "snippets are limited to 1MB"
_SNIPPET_TYPES = {  # snippet_type -> pretty_type ("auto" lets the file name decide)
    "auto": "", "text": "Plain Text", "markdown": "Markdown (raw)", "json": "JSON", "csv": "CSV",
    "python": "Python", "javascript": "JavaScript", "shell": "Shell", "sql": "SQL", "yaml": "YAML", "diff": "Diff",
}
_FILE_TYPES = {  # extension -> (filetype, pretty_type, mimetype) for UTF-8 content
    "md": ("markdown", "Markdown (raw)", "text/markdown"), "markdown": ("markdown", "Markdown (raw)", "text/markdown"),
    "txt": ("text", "Plain Text", "text/plain"), "log": ("text", "Plain Text", "text/plain"),
    "json": ("json", "JSON", "application/json"), "csv": ("csv", "CSV", "text/csv"),
}
_BINARY_TYPE = ("binary", "Binary", "application/octet-stream")
_PNG_TYPE = ("png", "PNG", "image/png")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_THUMB_SIZES = (64, 80, 160, 360, 480, 720, 800, 960, 1024)  # Slack's thumb_<n> renditions of an image
_SHARE_FIELDS = frozenset({"shares", "channels", "groups", "ims"})
_HELLO = {
    "type": "hello", "num_connections": 1,
    "debug_info": {"host": "simulated", "build_number": 1, "approximate_connection_time": 18060},
    "connection_info": {"app_id": _APP_ID},
}
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
_OP_CONTINUATION, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class _SlackError(Exception):
    """An ``{"ok": false, "error": ...}`` answer, with optional extra top-level fields."""

    def __init__(self, error: str, *, http_status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.http_status, self.extra = error, http_status, extra


@dataclass(frozen=True)
class _Failure:
    """A scripted failure: "ratelimited" sends 429 + Retry-After; drop_connection sends nothing at all."""

    error: str
    http_status: int
    retry_after: int
    drop_connection: bool
    needed: str | None = None  # beside `missing_scope`: the scopes Slack says the method needs


@dataclass(eq=False)  # identity comparison: two uploads are never "the same file"
class _Upload:
    """A file from files.getUploadURLExternal on; kept after completion for its bytes."""

    id: str
    filename: str
    length: int  # as declared; completion requires exactly this many bytes
    url_token: str
    alt_txt: str
    snippet_type: str
    data: bytes | None = None  # None until bytes reach the upload URL
    completed: bool = False


@dataclass
class _Channel:
    id: str
    name: str
    is_private: bool
    created: int
    creator: str
    members: set[str]
    is_archived: bool = False
    im_user: str | None = None  # set for DM (IM) channels
    topic: dict[str, Any] = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    purpose: dict[str, Any] = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # ts -> message; insertion = ts order
    pins: list[str] = field(default_factory=list)


class _Reply(NamedTuple):
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str]


class _WebSocket:
    """The server end of one RFC 6455 connection: unmasked frames out, masked frames in."""

    def __init__(self, rfile: BufferedIOBase, sock: socket.socket) -> None:
        self._rfile, self._sock = rfile, sock
        self._send_lock = threading.Lock()
        self._close_sent = False
        self._done = threading.Event()

    def send(self, opcode: int, payload: bytes = b"") -> None:
        n = len(payload)
        length = bytes([n]) if n < 126 else struct.pack("!BH", 126, n) if n < 1 << 16 else struct.pack("!BQ", 127, n)
        with self._send_lock:
            if self._close_sent:  # nothing may follow a close frame
                return
            self._close_sent = opcode == _OP_CLOSE
            with contextlib.suppress(OSError):  # the peer is gone; the reader notices
                self._sock.sendall(bytes([0x80 | opcode]) + length + payload)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame, give the client a moment to answer, then cut the connection."""
        self.send(_OP_CLOSE, struct.pack("!H", code) + reason.encode())
        self._done.wait(1.0)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def messages(self) -> Iterable[str]:
        """Yield text messages until the connection ends, answering pings and close frames on the way."""
        fragments: list[bytes] = []
        try:
            while True:
                fin, opcode, payload = self._read_frame()
                if opcode == _OP_PING:
                    self.send(_OP_PONG, payload)
                elif opcode == _OP_CLOSE:
                    self.send(_OP_CLOSE, payload[:2])  # echo the status code unless we sent ours first
                    return
                elif opcode in (_OP_TEXT, _OP_BINARY, _OP_CONTINUATION):
                    fragments.append(payload)
                    if fin:
                        yield b"".join(fragments).decode("utf-8", "replace")
                        fragments.clear()
        except (OSError, EOFError):
            return
        finally:
            self._done.set()

    def _read_frame(self) -> tuple[bool, int, bytes]:
        b1, b2 = self._read(2)
        n = b2 & 0x7F
        if n >= 126:
            (n,) = struct.unpack("!H" if n == 126 else "!Q", self._read(2 if n == 126 else 8))
        if not b2 & 0x80:  # clients must mask every frame: fail the connection (1002, protocol error)
            self.send(_OP_CLOSE, struct.pack("!H", 1002))
            raise EOFError("unmasked client frame")
        mask, data = self._read(4), self._read(n)
        key = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
        return bool(b1 & 0x80), b1 & 0x0F, payload

    def _read(self, n: int) -> bytes:
        data = self._rfile.read(n)
        if len(data) < n:
            raise EOFError("connection closed")
        return data


def _invalid_arguments(problem: str) -> _SlackError:
    return _SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {problem}"]})


def _truncation_notice(p: dict[str, Any]) -> dict[str, Any]:
    """What chat.* adds to an ok answer when it cut the text (changelog 2018-04 "Truncating really long
    messages"): ``response_metadata`` {"messages": [the [WARN] line], "warnings": ["message_truncated"]},
    and the top-level ``warning`` every Web API warning comes with."""
    warnings = message_warnings(p)
    if not warnings:
        return {}
    return {"warning": ",".join(warnings),
            "response_metadata": {"messages": [TRUNCATION_MESSAGE], "warnings": warnings}}


def _upload_entries(raw: Any) -> list[dict[str, Any]]:
    """Validate files.completeUploadExternal's `files` argument: a non-empty array of {"id", "title"?}."""
    if raw is None or raw == "":
        raise _invalid_arguments("missing required field: files")
    if not isinstance(raw, list):  # still a string when its JSON did not parse
        raise _invalid_arguments("must be an array [json-pointer:/files]")
    if not raw:
        raise _invalid_arguments("must contain at least 1 items [json-pointer:/files]")
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
            raise _invalid_arguments(f"missing required field: id [json-pointer:/files/{i}]")
    return raw


def _file_kind(name: str, data: bytes, snippet_type: str) -> tuple[str, str, str, str]:
    """(filetype, pretty_type, mimetype, mode) as Slack classifies an upload: snippet type, else extension."""
    mode = "snippet" if snippet_type else "hosted"
    if snippet_type and snippet_type != "auto":
        return snippet_type, _SNIPPET_TYPES[snippet_type], "text/plain", mode
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if extension == "png" and png_size(data) is not None:  # an image only when its bytes are one
        return (*_PNG_TYPE, mode)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return (*_BINARY_TYPE, mode)
    return (*_FILE_TYPES.get(extension, _FILE_TYPES["txt"]), mode)


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a whole PNG, else None: the signature, an IHDR chunk first, every chunk's
    length and CRC-32 right, and the file ending with IEND (PNG spec, sections 5.2-5.6), so a truncated
    or corrupted file is no image."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    at, size, first = len(_PNG_SIGNATURE), None, True
    while at + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        end = at + 12 + length
        if end > len(data):
            return None
        body = data[at + 8:end - 4]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[end - 4:end])[0]:
            return None
        if first:
            if kind != b"IHDR" or length != 13:
                return None
            size = struct.unpack(">II", body[:8])
            first = False
        if kind == b"IEND":
            return size if end == len(data) and size and all(size) else None
        at = end
    return None


def _image_fields(data: bytes, private: str, slug: str) -> dict[str, Any]:
    """What Slack adds to an image's file object: its size (original_w, original_h) and thumbnails up to
    360 px, larger ones only while the image is larger; never scaled up (thumb_<n>_w/_h say their size)."""
    size = png_size(data)
    assert size is not None
    width, height = size
    fields: dict[str, Any] = {"original_w": width, "original_h": height, "image_exif_rotation": 1}
    stem = slug.rpartition(".")[0] or slug
    for side in _THUMB_SIZES:
        if side > 360 and side >= max(width, height):  # no rendition larger than the image beyond the 360 one
            break
        scale = min(1.0, side / max(width, height))
        fields[f"thumb_{side}"] = f"{private}{stem}_{side}.png"
        if side >= 360:
            fields[f"thumb_{side}_w"], fields[f"thumb_{side}_h"] = round(width * scale), round(height * scale)
    return fields


def _decode_params(query: str, content_type: str, body: bytes) -> tuple[dict[str, Any], bool]:
    """Merge query-string and body arguments; the flag is False when a JSON body does not parse."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if content_type.lower().startswith("application/json"):
        try:
            decoded = json.loads(body or b"{}")
        except ValueError:
            return params, False
        if not isinstance(decoded, dict):
            return params, False
        params.update(decoded)
    elif body:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    for key in _JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            with contextlib.suppress(ValueError):  # left as a string: the method reports it as malformed
                params[key] = json.loads(params[key])
    return params, True


def _bearer_token(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true", "yes")


def _tz_details(tz: str) -> tuple[str, int]:
    """(tz_label, tz_offset seconds) for an IANA zone; unknown zones fall back to UTC."""
    try:
        now = datetime.now(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return tz, 0
    offset = now.utcoffset()
    return now.tzname() or tz, int(offset.total_seconds()) if offset else 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of concurrent clients must not overflow the listen backlog

    def __init__(self, address: tuple[str, int], simulator: SlackSimulator) -> None:
        self.simulator = simulator
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "SlackSimulator/1.0"

    def do_POST(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def log_message(self, format: str, *args: Any) -> None:  # signature fixed by the base class
        pass  # keep test output clean

    def _route(self) -> None:
        at = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        simulator = self.server.simulator
        reply: _Reply | None
        if url.path == "/link/" and self.headers.get("Upgrade", "").lower() == "websocket":
            self._upgrade(url.query)
            return
        if url.path.startswith("/api/"):
            reply = simulator._handle_api(unquote(url.path[5:]), url.query, self.headers, body, at)
        elif url.path.startswith("/response/") and self.command == "POST":
            reply = simulator._handle_response_url(unquote(url.path[10:]), body)
        elif url.path.startswith("/upload/v1/") and self.command == "POST":
            reply = simulator._handle_upload(unquote(url.path[11:]), body, at)
        else:
            reply = _Reply(404, b"not found", "text/plain; charset=utf-8", {})
        if reply is None:  # scripted drop: close without a status line so clients see a dead connection
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _upgrade(self, query: str) -> None:
        """Answer the WebSocket handshake (RFC 6455 section 4.2) and serve the connection on this thread."""
        self.close_connection = True
        key = self.headers.get("Sec-WebSocket-Key", "").strip()
        if not key:
            return self.send_error(400, "missing Sec-WebSocket-Key")
        if not self.server.simulator._take_ticket(query):  # tickets from apps.connections.open work once
            return self.send_error(401, "invalid_ticket")
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.wfile.write(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        self.server.simulator._serve_socket(_WebSocket(self.rfile, self.connection))
