"""What operators watch: /metrics in Prometheus text, and log lines (plain or JSON) that name the
incident they are about and never hold a secret."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from handlers.background import Background
from handlers.logs import about, configure_logging
from simulators.slack import SlackSimulator
from simulators.slack_requests import SlackRequests
from tests.conftest import ALICE, ANNOUNCE, CONFIG, GENERAL, SIGNING_SECRET, RunningBot, start_bot


def metrics(bot: RunningBot) -> dict[str, list]:
    text = httpx.get(f"{bot.url}/metrics", timeout=5).text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_metrics_count_incidents_events_and_how_fast_slack_is_answered(bot: RunningBot) -> None:
    channel = bot.declare()
    bot.requests.event({"type": "message", "channel": channel["id"], "user": ALICE, "text": "5xx everywhere",
                        "ts": f"{time.time():.6f}", "channel_type": "channel"})
    bot.settle()
    found = metrics(bot)

    assert [s.value for s in found["incident_bot_open_incidents"]] == [1.0]
    assert any(s.labels == {"what": "message", "outcome": "stored"} and s.value == 1 for s in found["incident_bot_events_captured"])
    acks = {s.labels["kind"]: s.value for s in found["incident_bot_slack_ack_seconds"] if s.name.endswith("_count")}
    assert acks["command"] == 1 and acks["event_callback"] == 1
    under_3s = [s for s in found["incident_bot_slack_ack_seconds"] if s.name.endswith("_bucket") and s.labels["le"] == "3.0"]
    assert sum(s.value for s in under_3s) == 2
    for family in ("incident_bot_pages", "incident_bot_diagnostic_runs", "incident_bot_page_acknowledge_seconds",
                   "incident_bot_postmortems", "incident_bot_commands"):
        assert family in found  # declared up front, so dashboards and alerts see them from the start


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(["xoxb-secret-token-123", 'pass"word-with-quote'], json_lines=True)
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_name_the_incident_and_hide_secrets(captured_logs: io.StringIO) -> None:
    log = logging.getLogger("incident_bot.test")
    with about(7):
        log.info("paging the database team")
    log.warning("incident 12: the topic could not be set")
    log.info("nothing to do with an incident")
    try:
        raise RuntimeError("Slack said no to xoxb-secret-token-123")
    except RuntimeError:
        log.exception('store password pass"word-with-quote refused')

    first, second, third, fourth = lines(captured_logs)
    assert first["incident"] == 7 and first["level"] == "info" and first["logger"] == "incident_bot.test"
    assert second["incident"] == 12 and "incident" not in third
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    text = captured_logs.getvalue()
    assert "xoxb-secret-token-123" not in text and "word-with-quote" not in text
    assert "[redacted]" in fourth["message"] and "[redacted]" in fourth["error"] and "RuntimeError" in fourth["error"]


def test_work_done_after_the_answer_still_names_its_incident(captured_logs: io.StringIO) -> None:
    background = Background(lanes=2)
    with about(42):
        background.submit(1, lambda: logging.getLogger("incident_bot.test").warning("publishing failed"))
    assert background.wait_idle(5)
    background.shutdown()
    assert lines(captured_logs)[0]["incident"] == 42


def test_serve_writes_json_lines_with_the_incident_number(tmp_path: Path, slack: SlackSimulator) -> None:
    config = tmp_path / "incident-bot.toml"
    config.write_text(CONFIG)
    env = {**os.environ, "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": slack.base_url, "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
           "INCIDENT_BOT_CONFIG": str(config), "INCIDENT_BOT_LOG_FORMAT": "json",
           "INCIDENT_BOT_SPOOL": str(tmp_path / "spool.db")}
    server = subprocess.Popen([sys.executable, "-m", "handlers.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
                              env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        url = None
        seen: list[dict] = []
        while url is None:
            line = server.stderr.readline()
            assert line, f"serve stopped: {seen}"
            seen.append(json.loads(line))
            url = (re.search(r"serving Slack at (\S+)/slack/events", seen[-1]["message"]) or [None, None])[1]
        requests = SlackRequests(url, SIGNING_SECRET, response_url=slack.response_url())
        sent = requests.command("declare sev2 Checkout down", user_id=ALICE, channel_id=GENERAL)
        assert sent.response.status_code == 200
        slack.wait_for(lambda s: any(m["text"].startswith(":rotating_light:") for m in s.messages(ANNOUNCE)))
        requests.close()
    finally:
        server.send_signal(signal.SIGTERM)
        rest = server.communicate(timeout=20)[1]
    seen += [json.loads(line) for line in rest.splitlines() if line.strip()]
    created = [line for line in seen if "created channel" in line["message"]]
    assert created and created[0]["incident"] == 1
    assert slack.bot_token not in json.dumps(seen) and SIGNING_SECRET not in json.dumps(seen)
    assert server.returncode == 0


def test_starting_with_the_token_in_the_environment_logs_no_warning(
    tmp_path: Path, slack: SlackSimulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Bolt reads SLACK_BOT_TOKEN by itself and would warn that our client wins, at every start."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    caplog.set_level(logging.WARNING)
    running = start_bot(tmp_path, slack, f"sqlite:///{tmp_path / 'bot.db'}")
    try:
        assert running.requests.command("help", user_id=ALICE, channel_id=GENERAL).response.status_code == 200
    finally:
        running.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
