"""The HTTP server's own paths, and `incident-bot serve` as an operator starts it."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from handlers.app import build_runtime
from handlers.http import MAX_BODY_BYTES, BotWsgiApp, HttpServer, webhook_routes
from simulators.slack import SlackSimulator
from simulators.slack_requests import SlackRequests
from tests.conftest import ALICE, CONFIG, GENERAL, SIGNING_SECRET, RunningBot, make_settings

FORM = "application/x-www-form-urlencoded"


def no_internals(response: httpx.Response) -> bool:
    """No traceback, source file or path of this machine in an answer."""
    return not any(leak in response.text for leak in ("Traceback", ".py", "File \"", "/work/"))


def test_healthz_answers_200_when_the_store_answers(bot: RunningBot) -> None:
    response = httpx.get(bot.url + "/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok", "spooled": 0}


def test_healthz_answers_503_when_the_store_does_not(tmp_path: Path, slack: SlackSimulator) -> None:
    # Nothing listens on port 9 of loopback: the store is unreachable.
    settings = make_settings(tmp_path, slack, "postgresql+psycopg://nobody:hunter2secret@127.0.0.1:9/none?connect_timeout=2")
    runtime = build_runtime(settings, run_migrations=False)
    server = HttpServer(BotWsgiApp(runtime), host="127.0.0.1", port=0).start()
    try:
        response = httpx.get(server.url + "/healthz", timeout=10)
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert "hunter2secret" not in response.text
    finally:
        server.stop()
        runtime.close()


def test_metrics_are_prometheus_text(bot: RunningBot) -> None:
    bot.declare()
    response = httpx.get(bot.url + "/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert "incident_bot_open_incidents 1.0" in response.text
    assert "incident_bot_incidents_declared_total 1.0" in response.text


def test_oversized_bodies_and_unknown_paths_are_refused(bot: RunningBot) -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    assert bot.requests.send(big, "application/x-www-form-urlencoded").response.status_code == 413
    assert httpx.get(bot.url + "/nope").status_code == 404


# --- Routing (Falcon): unknown paths, wrong methods, HEAD.


@pytest.mark.parametrize("method, path", [("GET", "/nope"), ("POST", "/nope"), ("GET", "/healthz/"),
                                          ("POST", "/webhooks/nope"), ("GET", "/slack/events/")])
def test_an_unknown_path_is_a_json_404(bot: RunningBot, method: str, path: str) -> None:
    response = httpx.request(method, bot.url + path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json" and set(response.json()) == {"error"}
    assert no_internals(response)


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/webhooks/pagerduty", "POST"), ("PUT", "/webhooks/opsgenie", "POST"), ("POST", "/healthz", "GET"),
    ("DELETE", "/metrics", "GET"), ("PUT", "/slack/events", "POST"), ("HEAD", "/slack/events", "POST"),
])
def test_a_known_path_answers_405_to_a_method_it_does_not_serve(bot: RunningBot, method: str, path: str,
                                                                 allowed: str) -> None:
    response = httpx.request(method, bot.url + path, content=b"{}")
    assert response.status_code == 405
    assert allowed in [m.strip() for m in response.headers["allow"].split(",")]
    if method != "HEAD":
        assert set(response.json()) == {"error"} and no_internals(response)
    bot.settle()
    assert bot.runtime.services.incidents.list_open() == []


def test_head_answers_as_get_does_without_the_body(bot: RunningBot) -> None:
    for path in ("/healthz", "/metrics"):
        got, head = httpx.get(bot.url + path), httpx.head(bot.url + path)
        assert head.status_code == 200 and head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert int(head.headers["content-length"]) > 0, path
    assert httpx.head(bot.url + "/healthz").headers["content-length"] == str(len(httpx.get(bot.url + "/healthz").content))


# --- Webhooks: a table of path -> handler.


def test_a_webhook_is_one_entry_in_the_table_and_one_that_raises_answers_500(bot: RunningBot,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[bytes, dict[str, str]]] = []

    def echo(body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        seen.append((body, dict(headers)))
        return 202, {"stored": len(body)}

    def broken(body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        raise RuntimeError(f"broken at {__file__}")

    routes = {**webhook_routes(bot.runtime.services), "/webhooks/echo": echo, "/webhooks/broken": broken}
    server = HttpServer(BotWsgiApp(bot.runtime, webhooks=routes), host="127.0.0.1", port=0).start()
    try:
        answer = httpx.post(server.url + "/webhooks/echo", content=b"ping",
                            headers={"Authorization": "Bearer t0ken", "X-Custom-Thing": "1"})
        assert (answer.status_code, answer.json()) == (202, {"stored": 4})
        assert answer.headers["content-type"] == "application/json"
        [(body, headers)] = seen
        assert body == b"ping" and headers["authorization"] == "Bearer t0ken" and headers["x-custom-thing"] == "1"

        with caplog.at_level(logging.ERROR, logger="handlers.http"):
            failed = httpx.post(server.url + "/webhooks/broken", content=b"{}")
        assert (failed.status_code, failed.json()) == (500, {"error": "internal error"})
        assert no_internals(failed)
        [record] = [r for r in caplog.records if r.name == "handlers.http" and r.levelno == logging.ERROR]
        assert "POST /webhooks/broken" in record.getMessage()
        assert record.exc_info is not None and record.exc_info[0] is RuntimeError

        # The table's own entries are served beside them, and Slack's path too.
        assert httpx.post(server.url + "/webhooks/pagerduty", content=b"{}").status_code == 401
        assert httpx.post(server.url + "/slack/events", content=b"{}").status_code == 401
    finally:
        server.stop()


def test_without_slack_events_only_slacks_path_is_gone(bot: RunningBot) -> None:
    """Socket Mode: Slack comes over the WebSocket; even a correctly signed request over HTTP is a 404."""
    server = HttpServer(BotWsgiApp(bot.runtime, slack_events=False), host="127.0.0.1", port=0).start()
    try:
        stamp = int(time.time())
        body = _command("declare sev1 Over HTTP in Socket Mode")
        signed = httpx.post(server.url + "/slack/events", content=body, headers={
            "Content-Type": FORM, "X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": bot.requests.sign(body, stamp)})
        assert signed.status_code == 404
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert httpx.get(server.url + "/metrics").status_code == 200
        assert httpx.post(server.url + "/webhooks/opsgenie", content=b"{}").status_code == 401
    finally:
        server.stop()
    bot.settle()
    assert bot.runtime.services.incidents.list_open() == []


# --- Slack's signature, checked with slack_sdk's SignatureVerifier before Bolt sees the body.


def _command(text: str) -> bytes:
    return urlencode({"token": "t", "team_id": "T0SIMULATE", "channel_id": GENERAL, "user_id": ALICE,
                      "user_name": "alice", "command": "/incident", "text": text, "api_app_id": "A0INCBOT",
                      "response_url": "http://127.0.0.1:9/response", "trigger_id": f"{time.time()}.9.chunked"}).encode()


def test_a_signed_chunked_command_reaches_its_listener_whole(bot: RunningBot) -> None:
    """The edge reads the body to verify it, and hands it whole to the listener (waitress de-chunks)."""
    body = _command("declare sev2 Sent in chunks")
    stamp = int(time.time())

    def chunks() -> Iterator[bytes]:
        yield from (body[i:i + 17] for i in range(0, len(body), 17))

    response = httpx.post(bot.requests.events_url, content=chunks(), headers={
        "Content-Type": FORM, "X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": bot.requests.sign(body, stamp)})
    assert response.status_code == 200 and "Declaring incident 1" in response.json()["text"]
    bot.settle()
    [incident] = bot.runtime.services.incidents.list_open()
    assert incident.title == "Sent in chunks"


def test_a_command_whose_listener_raises_is_answered_500_as_bolt_would_and_logged(
        bot: RunningBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """`/incident` goes from the edge to its listener without Bolt's dispatch (handlers/http.py); what
    Bolt did around it is kept: the answer it gave (ephemeral JSON), a 500 without internals when the
    listener raises, the error logged with its traceback, the ack time measured. A slash command the bot
    has no listener for still goes to Bolt, which answers 404."""
    listed = bot.requests.command("list", user_id=ALICE, channel_id=GENERAL).response
    assert listed.status_code == 200 and listed.headers["content-type"].startswith("application/json")
    assert listed.json()["response_type"] == "ephemeral" and "No open incidents" in listed.json()["text"]

    def broken() -> list[Any]:
        raise RuntimeError(f"broken at {__file__}")

    monkeypatch.setattr(bot.runtime.services.incidents, "list_open", broken)
    with caplog.at_level(logging.ERROR, logger="handlers.http"):
        failed = bot.requests.command("list", user_id=ALICE, channel_id=GENERAL).response
    assert failed.status_code == 500 and failed.content == b"" and no_internals(failed)
    [record] = [r for r in caplog.records if r.name == "handlers.http" and r.levelno == logging.ERROR]
    assert "/incident list failed" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    metrics = httpx.get(bot.url + "/metrics").text
    assert 'incident_bot_slack_ack_seconds_count{kind="command"} 2.0' in metrics

    other = bot.requests.command("list", user_id=ALICE, channel_id=GENERAL, command="/deploy").response
    assert other.status_code == 404


def test_what_slack_sdk_cannot_verify_is_a_401(bot: RunningBot) -> None:
    """slack_sdk's verifier raises ValueError on a body that is not UTF-8 (Slack never sends one) and on a
    timestamp int() will not read (here, past Python's 4,300-digit limit): neither is verified."""
    not_utf8 = bot.requests.send(b"command=%2Fincident&text=\xff&user_id=U1&channel_id=C1", FORM)
    assert not_utf8.response.status_code == 401 and no_internals(not_utf8.response)
    stamp = "9" * 5000
    long_stamp = httpx.post(bot.requests.events_url, content=b"text=x", headers={
        "Content-Type": FORM, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + "0" * 64})
    assert long_stamp.status_code == 401 and no_internals(long_stamp)
    # Over GET, what is not Slack's ssl_check is held to the signature too; signed, it reaches Bolt (404).
    assert httpx.get(bot.requests.events_url + "?text=x").status_code == 401
    now = int(time.time())
    signed_get = httpx.get(bot.requests.events_url, headers={
        "X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": bot.requests.sign(b"", now)})
    assert signed_get.status_code == 404
    bot.settle()
    assert bot.runtime.services.incidents.list_open() == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_incident_bot_serve_declares_and_refuses_forgeries(tmp_path: Path, slack: SlackSimulator) -> None:
    config = tmp_path / "incident-bot.toml"
    config.write_text(CONFIG)
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "INCIDENT_BOT_CONFIG": str(config),
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("incident-bot")), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("serve did not come up")
        requests = SlackRequests(url, SIGNING_SECRET, response_url=slack.response_url())
        sent = requests.command("declare sev1 Checkout is timing out", user_id="U0ALICE", channel_id=GENERAL)
        assert sent.response.status_code == 200
        slack.wait_for(lambda s: s.calls_to("pins.add"), timeout=10)
        assert requests.retry(sent, 1).response.status_code == 200
        forged = requests.send(sent.body, sent.content_type, signature="v0=" + "f" * 64)
        assert forged.response.status_code == 401
        time.sleep(0.5)
        assert len(slack.calls_to("conversations.create")) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert "serving Slack at http://127.0.0.1" in output
    assert slack.bot_token not in output and SIGNING_SECRET not in output
