"""The HTTP server's own paths, and `incident-bot serve` as an operator starts it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from handlers.app import build_runtime
from handlers.http import MAX_BODY_BYTES, BotWsgiApp, HttpServer
from simulators.slack import SlackSimulator
from simulators.slack_requests import SlackRequests
from tests.conftest import CONFIG, GENERAL, SIGNING_SECRET, RunningBot, make_settings


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
