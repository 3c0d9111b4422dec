"""Socket Mode: the simulator's WebSocket endpoint, and `incident-bot serve --socket-mode` driven through it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from simulators.slack import SlackSimulator
from tests.conftest import ALICE, CONFIG, GENERAL

INCIDENT_BOT = str(Path(sys.executable).with_name("incident-bot"))


# -- the simulator's Socket Mode endpoint ----------------------------------------------


def test_apps_connections_open_wants_the_app_token(slack: SlackSimulator) -> None:
    url = WebClient(base_url=slack.base_url).apps_connections_open(app_token=slack.app_token)["url"]
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/link/\?ticket=[0-9a-f-]{36}&app_id=A0INCBOT", url)
    assert slack.calls_to("apps.connections.open")[0].token == slack.app_token
    for token, error in [(slack.bot_token, "not_allowed_token_type"), ("", "not_authed"), ("xapp-1-forged", "invalid_auth")]:
        with pytest.raises(SlackApiError) as info:
            WebClient(base_url=slack.base_url).apps_connections_open(app_token=token)
        assert info.value.response["error"] == error
    with pytest.raises(SlackApiError) as info:  # and an app token cannot post as the bot
        WebClient(token=slack.app_token, base_url=slack.base_url).chat_postMessage(channel=GENERAL, text="hi")
    assert info.value.response["error"] == "not_allowed_token_type"


def test_socket_mode_client_gets_hello_and_acks_envelopes(slack: SlackSimulator) -> None:
    closed: list[tuple[int, str | None]] = []
    client = SocketModeClient(
        app_token=slack.app_token, web_client=WebClient(base_url=slack.base_url),
        auto_reconnect_enabled=False, on_close_listeners=[lambda code, reason: closed.append((code, reason))],
    )
    received: list[str] = []
    client.on_message_listeners.append(received.append)

    def ack(client: SocketModeClient, request: SocketModeRequest) -> None:
        client.send_socket_mode_response(SocketModeResponse(request.envelope_id, {"echo": request.payload}))

    client.socket_mode_request_listeners.append(ack)
    try:
        assert not slack.socket_connected()
        client.connect()
        slack.wait_for_socket()
        assert slack.socket_connected()
        for size in (10, 1_000, 70_000):  # 7-bit, 16-bit and 64-bit frame lengths, both ways
            payload = {"type": "event_callback", "event": {"type": "app_mention", "text": "x" * size}}
            ack_body = slack.socket_send("events_api", payload, retry_attempt=1, retry_reason="timeout")
            assert ack_body == {"envelope_id": ack_body["envelope_id"], "payload": {"echo": payload}}
        hello, first = json.loads(received[0]), json.loads(received[1])
        assert hello["type"] == "hello" and hello["connection_info"] == {"app_id": "A0INCBOT"}
        assert first["type"] == "events_api" and first["retry_attempt"] == 1 and first["retry_reason"] == "timeout"
        assert first["accepts_response_payload"] is True
        started = time.monotonic()
        slack.stop()  # closes the socket with a close frame, without waiting on the client
        assert time.monotonic() - started < 3
        deadline = time.monotonic() + 5
        while not closed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert closed == [(1001, "server stopping")]
        assert not slack.socket_connected()
    finally:
        client.close()


def test_websocket_protocol_on_a_raw_socket(slack: SlackSimulator) -> None:
    url = urlsplit(WebClient(base_url=slack.base_url).apps_connections_open(app_token=slack.app_token)["url"])
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        sock.sendall(
            f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.hostname}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            + _client_frame(0x9, b"are you there")  # a ping right behind the handshake, as slack_sdk sends
        )
        head = b"".join(iter(reader.readline, b"\r\n")).decode()
        assert head.startswith("HTTP/1.1 101 ")
        expected = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        assert f"Sec-WebSocket-Accept: {expected.decode()}" in head
        opcode, hello = _server_frame(reader)
        assert opcode == 0x1 and json.loads(hello)["type"] == "hello"
        assert _server_frame(reader) == (0xA, b"are you there")
        slack.wait_for_socket()
        acked: dict = {}
        sender = threading.Thread(target=lambda: acked.update(slack.socket_send("interactive", {"type": "block_actions"})))
        sender.start()
        opcode, envelope = _server_frame(reader)
        envelope_id = json.loads(envelope)["envelope_id"]
        ack = json.dumps({"envelope_id": envelope_id}).encode()
        sock.sendall(_client_frame(0x1, ack[:5], fin=False) + _client_frame(0x0, ack[5:]))  # fragmented
        sender.join(5)
        assert acked == {"envelope_id": envelope_id}
        sock.sendall(_client_frame(0x8, struct.pack("!H", 1000)))
        assert _server_frame(reader) == (0x8, struct.pack("!H", 1000))
        assert reader.read() == b""  # then the server hangs up
    slack.wait_for(lambda s: not s.socket_connected())
    with pytest.raises(AssertionError, match="no Socket Mode client"):
        slack.socket_send("events_api", {})


def test_websocket_refuses_a_ticket_used_twice(slack: SlackSimulator) -> None:
    url = urlsplit(WebClient(base_url=slack.base_url).apps_connections_open(app_token=slack.app_token)["url"])
    statuses = []
    for _ in range(2):
        with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
            sock.sendall(
                f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            statuses.append(sock.makefile("rb").readline().split()[1])
    assert statuses == [b"101", b"401"]


# -- incident-bot serve --socket-mode ---------------------------------------------------


def _env(tmp_path: Path, slack: SlackSimulator, **extra: str) -> dict[str, str]:
    config = tmp_path / "incident-bot.toml"
    config.write_text(CONFIG)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.db'}",
        "INCIDENT_BOT_CONFIG": str(config),
        **extra,
    }


def test_serve_socket_mode_declares_an_incident(tmp_path: Path, slack: SlackSimulator) -> None:
    process = subprocess.Popen(
        [INCIDENT_BOT, "serve", "--socket-mode", "--host", "127.0.0.1", "--port", "0"],
        env=_env(tmp_path, slack, SLACK_APP_TOKEN=slack.app_token),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    early: list[str] = []
    try:
        assert process.stdout is not None
        while not (side := re.search(r"/webhooks/… at (\S+)", early[-1] if early else "")):
            early.append(process.stdout.readline())
            assert early[-1], "".join(early)
        # Health and metrics are served over HTTP in Socket Mode too; Slack's own path is not.
        assert httpx.get(f"{side[1]}/healthz", timeout=5).json() == {"status": "ok", "database": "ok", "spooled": 0}
        assert "incident_bot_open_incidents" in httpx.get(f"{side[1]}/metrics", timeout=5).text
        assert httpx.post(f"{side[1]}/slack/events", content=b"{}", timeout=5).status_code == 404
        slack.wait_for_socket(timeout=30)
        command = {
            "token": "deprecated-verification-token", "team_id": "T0SIMULATE", "team_domain": "simulated",
            "channel_id": GENERAL, "channel_name": "general", "user_id": ALICE, "user_name": "alice",
            "command": "/incident", "text": "declare sev1 Checkout is timing out", "api_app_id": "A0INCBOT",
            "is_enterprise_install": "false", "response_url": slack.response_url(),
            "trigger_id": f"{int(time.time())}.1.{uuid.uuid4().hex[:24]}",
        }
        ack = slack.socket_send("slash_commands", command, timeout=10)
        assert ack["payload"]["response_type"] == "ephemeral"
        assert "Declaring incident 1" in ack["payload"]["text"]
        slack.wait_for(lambda s: s.calls_to("pins.add"), timeout=10)
        assert len(slack.calls_to("conversations.create")) == 1
        assert [c["name"] for c in slack.channels() if re.fullmatch(r"inc-\d{8}-checkout-is-timing-out", c["name"])]
        assert slack.calls_to("apps.connections.open")[0].token == slack.app_token
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output = "".join(early) + process.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            raise AssertionError(f"serve --socket-mode did not stop on SIGTERM:\n{output}") from None
    assert process.returncode == 0, output
    assert slack.bot_token not in output and slack.app_token not in output


def test_serve_socket_mode_needs_the_app_token(tmp_path: Path, slack: SlackSimulator) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [INCIDENT_BOT, "serve", "--socket-mode"], env=_env(tmp_path, slack),
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 1
    assert "SLACK_APP_TOKEN" in result.stderr
    assert time.monotonic() - started < 15
    assert not slack.calls_to("apps.connections.open")


# -- helpers ------------------------------------------------------------------------------


def _client_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A masked client frame (RFC 6455 section 5.3)."""
    mask = os.urandom(4)
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)]) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(payload)
    )


def _server_frame(reader) -> tuple[int, bytes]:
    """Read one unmasked server frame: (opcode, payload)."""
    b1, b2 = reader.read(2)
    assert b1 & 0x80 and not b2 & 0x80, "server frames are final and unmasked"
    n = b2 & 0x7F
    if n >= 126:
        (n,) = struct.unpack("!H" if n == 126 else "!Q", reader.read(2 if n == 126 else 8))
    return b1 & 0x0F, reader.read(n)
