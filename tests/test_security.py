"""Security review, end to end against the real app over HTTP: only signed, fresh requests act; bad
input at the edge gets a 4xx and never a traceback; every configured secret stays out of the logs, of
everything sent to Slack and of the postmortem; diagnostics never run SQL of anyone's choosing."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from bot.diagnostics.drivers import postgres as postgres_driver
from bot.incidents.values import EntryKind
from bot.paging.providers import RetryPolicy, Transport
from handlers.http import MAX_BODY_BYTES
from handlers.logs import configure_logging
from simulators.paging import OpsgenieReceiver, PagerDutyReceiver
from simulators.slack import SlackSimulator
from simulators.slack_requests import SlackRequests
from tests.conftest import ALICE, ANNOUNCE, BOB, CAROL, GENERAL, SIGNING_SECRET, RunningBot, make_settings, start_bot

# What a traceback or an internal path in a response body would look like.
LEAKS_INTERNALS = re.compile(r"Traceback|File \"|\.py\b|site-packages|/work/|/usr/lib", re.IGNORECASE)
FORM = "application/x-www-form-urlencoded"


def refused_cleanly(response: httpx.Response) -> bool:
    return 400 <= response.status_code < 500 and not LEAKS_INTERNALS.search(response.text)


def command_body(text: str, *, user: str = ALICE, channel: str = GENERAL, response_url: str, trigger: str) -> bytes:
    """A slash command's form body, as Slack sends it, without sending it."""
    return urlencode({
        "token": "deprecated-verification-token", "team_id": "T0SIMULATE", "team_domain": "simulated",
        "channel_id": channel, "channel_name": "general", "user_id": user, "user_name": user.lower(),
        "command": "/incident", "text": text, "api_app_id": "A0INCBOT", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": trigger,
    }).encode()


def nothing_declared(bot: RunningBot) -> None:
    assert bot.runtime.services.incidents.list_open() == []
    assert bot.runtime.services.incidents.find("1") is None
    assert bot.slack.calls_to("conversations.create") == []
    assert bot.slack.responses() == []


# --- Only signed, fresh requests act.


def test_forged_stale_and_tampered_declarations_get_401_and_change_nothing(bot: RunningBot) -> None:
    now = int(time.time())
    body = command_body("declare sev1 Forged outage", response_url=bot.slack.response_url(), trigger="1.2.forged")
    other = command_body("declare sev1 Another title", response_url=bot.slack.response_url(), trigger="1.3.forged")
    wrong_secret = SlackRequests(bot.url, "not-the-signing-secret")
    try:
        attempts = {
            "made-up signature": bot.requests.send(body, FORM, signature="v0=" + "f" * 64),
            "signed with another secret": wrong_secret.send(body, FORM),
            "signature of another body": bot.requests.send(body, FORM, signature=bot.requests.sign(other, now)),
            # a request captured more than 5 minutes ago and sent again with its own, valid signature
            "replayed after the window": bot.requests.send(body, FORM, timestamp=now - 310),
            "timestamp in the future": bot.requests.send(body, FORM, timestamp=now + 310),
        }
        bare = httpx.post(bot.requests.events_url, content=body, headers={"Content-Type": FORM})
        no_timestamp = httpx.post(bot.requests.events_url, content=body, headers={
            "Content-Type": FORM, "X-Slack-Signature": bot.requests.sign(body, now)})
    finally:
        wrong_secret.close()
    for name, sent in attempts.items():
        assert sent.response.status_code == 401, (name, sent.response.text)
        assert refused_cleanly(sent.response), name
    assert bare.status_code == 401 and no_timestamp.status_code == 401
    time.sleep(0.3)  # anything acknowledged would have started its Slack work by now
    bot.settle()
    nothing_declared(bot)
    # The window is Slack's five minutes: a request signed four minutes ago is still taken.
    fresh = bot.requests.send(command_body("list", response_url=bot.slack.response_url(), trigger="1.4.list"), FORM,
                              timestamp=now - 240)
    assert fresh.response.status_code == 200


def test_a_request_replayed_verbatim_inside_the_window_acts_once(bot: RunningBot) -> None:
    now = int(time.time())
    body = command_body("declare sev2 Search is slow", response_url=bot.slack.response_url(), trigger="7.7.replay")
    signature = bot.requests.sign(body, now)
    first = bot.requests.send(body, FORM, timestamp=now, signature=signature)
    again = bot.requests.send(body, FORM, timestamp=now, signature=signature)
    bot.settle()
    assert first.response.status_code == 200 and again.response.status_code == 200
    assert len(bot.runtime.services.incidents.list_open()) == 1
    assert len(bot.slack.calls_to("conversations.create")) == 1


# --- Size limits and malformed bodies.


def _big_chunks() -> Iterator[bytes]:
    for _ in range(MAX_BODY_BYTES // 65536 + 2):
        yield b"a" * 65536


def test_oversized_bodies_get_413_whatever_their_path_or_framing(bot: RunningBot) -> None:
    big = b"text=" + b"x" * MAX_BODY_BYTES
    signed = bot.requests.send(big, FORM)
    unsigned = httpx.post(bot.requests.events_url, content=big, headers={"Content-Type": FORM})
    as_json = bot.requests.send(b'{"type": "event_callback", "x": "' + b"x" * MAX_BODY_BYTES + b'"}', "application/json")
    chunked = httpx.post(bot.requests.events_url, content=_big_chunks(), headers={"Content-Type": FORM})
    webhook = httpx.post(bot.url + "/webhooks/pagerduty", content=big)
    for response in (signed.response, unsigned, as_json.response, chunked, webhook):
        assert response.status_code == 413, response.text
        assert refused_cleanly(response)
    nothing_declared(bot)


def _raw_post(bot: RunningBot, content_length: str) -> bytes:
    host, port = bot.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall((f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\nContent-Type: {FORM}\r\n"
                            f"Content-Length: {content_length}\r\n\r\ntext=x").encode())
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    return answer


@pytest.mark.parametrize(("length", "status"), [("abc", b"400"), ("-5", b"400"), (str(10**12), b"413")])
def test_a_bad_content_length_is_refused_by_the_server(bot: RunningBot, length: str, status: bytes) -> None:
    answer = _raw_post(bot, length)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == status, answer[:200]
    assert not LEAKS_INTERNALS.search(answer.decode("latin-1"))


# Bodies anyone on the internet can send: none is signed correctly.
UNSIGNED_GARBAGE = {
    "json that does not parse": (b"{not json", "application/json"),
    "a json array": (b"[1, 2]", "application/json"),
    "a form whose payload is not json": (b"payload=not-json", FORM),
    "bytes that are not utf-8": (b"\xff\xfe\xfa", FORM),
}
# Bodies only someone holding the signing secret can send (Slack never does).
SIGNED_GARBAGE = {
    "json that does not parse": (b"{not json", "application/json"),
    "a form whose payload is not json": (b"payload=not-json", FORM),
    "a command without its fields": (b"command=%2Fincident", FORM),
    "an event that is not an object": (json.dumps({"type": "event_callback", "event": "x"}).encode(), "application/json"),
    "block actions that are not a list": (b"payload=" + json.dumps({"type": "block_actions", "actions": "x"}).encode(), FORM),
    "a view that is not an object": (b"payload=" + json.dumps({"type": "view_submission", "view": "x"}).encode(), FORM),
    # slack_sdk's verifier decodes the body as UTF-8 first, and raises on bytes that are not
    "bytes that are not utf-8": (b"command=%2Fincident&text=\xff&user_id=U1&channel_id=C1", FORM),
}


def _send_unsigned(bot: RunningBot, body: bytes, content_type: str) -> httpx.Response:
    return bot.requests.send(body, content_type, signature="v0=" + "0" * 64).response


def test_malformed_requests_never_answer_with_a_traceback_and_change_nothing(bot: RunningBot) -> None:
    responses = [_send_unsigned(bot, body, kind) for body, kind in UNSIGNED_GARBAGE.values()]
    responses += [bot.requests.send(body, kind).response for body, kind in SIGNED_GARBAGE.values()]
    responses.append(httpx.post(bot.requests.events_url, content=b"text=x", headers={
        "Content-Type": FORM, "X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=00"}))
    for response in responses:
        assert response.status_code >= 400
        assert not LEAKS_INTERNALS.search(response.text), response.text
    nothing_declared(bot)


@pytest.mark.parametrize("case", sorted(UNSIGNED_GARBAGE))
def test_unsigned_malformed_bodies_get_a_4xx(bot: RunningBot, case: str) -> None:
    body, kind = UNSIGNED_GARBAGE[case]
    assert refused_cleanly(_send_unsigned(bot, body, kind))


def test_a_non_numeric_timestamp_gets_401(bot: RunningBot) -> None:
    response = httpx.post(bot.requests.events_url, content=b"text=x", headers={
        "Content-Type": FORM, "X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=00"})
    assert response.status_code == 401


@pytest.mark.parametrize("case", sorted(SIGNED_GARBAGE))
def test_signed_malformed_bodies_get_a_4xx(bot: RunningBot, case: str) -> None:
    body, kind = SIGNED_GARBAGE[case]
    assert refused_cleanly(bot.requests.send(body, kind).response)


@pytest.mark.parametrize("text", ["declare sev1 Checkout\x00 down", "note a\x00b", "followup fix\x00 it", "resolve done\x00"])
def test_a_nul_character_in_a_command_is_answered_not_a_500(bot: RunningBot, text: str) -> None:
    channel = bot.declare("declare sev3 Plain title") if not text.startswith("declare") else {"id": GENERAL}
    sent = bot.command(text, channel=channel["id"])
    assert sent.response.status_code == 200, sent.response.text
    assert not sent.response.content or ":warning:" not in sent.response.json().get("text", "")


def test_a_nul_character_in_a_message_is_recorded_without_it(bot: RunningBot) -> None:
    channel = bot.declare()
    ts = f"{time.time():.6f}"
    sent = bot.requests.event({"type": "message", "channel": channel["id"], "user": ALICE, "text": "pool\x00 exhausted",
                               "ts": ts, "event_ts": ts, "channel_type": "channel"})
    assert sent.response.status_code == 200
    incident = bot.runtime.services.incidents.find_by_channel(channel["id"])
    assert incident is not None
    assert [i.text for i in bot.runtime.services.timeline.items(incident.id) if i.kind.value == "message"] == ["pool exhausted"]


# --- Secrets: a whole incident, then every log line and everything sent anywhere is searched.

BOT_TOKEN = "xoxb-4242-secret-bot-token-for-grep"
APP_TOKEN = "xapp-1-fake-secret-app-token-for-grep"
ROUTING_KEY = "RKgrepSecret0123456789abcdef0123"  # PagerDuty routing keys are 32 characters
GENIE_KEY = "og-grep-secret-genie-key-5f1c2d3e"
WEBHOOK_SECRET = "pd-webhook-secret-for-grep-7781"
OPSGENIE_TOKEN = "og-webhook-token-for-grep-3141"
ALERTS_TOKEN = "alerts-webhook-token-for-grep-2718"
TARGET_PASSWORD = "target-password-for-grep-9911"
DOWN_PASSWORD = "down-target-password-for-grep-5150"
DB_PASSWORD = "db-password-for-grep-4242"
DBA, SRE = "U0DBA1", "U0SRE1"

SECRET_CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"

[teams.database]
display_name = "Database team"
pagerduty_routing_key = "{ROUTING_KEY}"
slack_members = ["{DBA}"]

[teams.sre]
display_name = "SRE on call"
opsgenie_api_key = "{GENIE_KEY}"
slack_members = ["{SRE}"]

[paging]
pagerduty_webhook_secret = "{WEBHOOK_SECRET}"
opsgenie_webhook_token = "{OPSGENIE_TOKEN}"

[alerts]
webhook_token = "{ALERTS_TOKEN}"

[diagnostics]
allowed_users = ["{ALICE}", "{BOB}"]

[diagnostics.targets.primary]
url = "postgresql+psycopg://postgres:{TARGET_PASSWORD}@127.0.0.1:5432/test"

[diagnostics.targets.down]
url = "postgresql+psycopg://postgres:{DOWN_PASSWORD}@127.0.0.1:9/test"
"""


@pytest.fixture
def secret_slack() -> Iterator[SlackSimulator]:
    with SlackSimulator(bot_token=BOT_TOKEN) as simulator:
        for user, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (DBA, "dba1"), (SRE, "sre1")):
            simulator.add_user(user, name)
        simulator.add_channel("incidents", channel_id=ANNOUNCE, members=[ALICE, BOB, CAROL])
        simulator.add_channel("general", channel_id=GENERAL, members=[ALICE, BOB, CAROL])
        yield simulator


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The bot's own logging set-up (as `incident-bot serve` makes it), at DEBUG, into a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level, saved_stderr = root.handlers[:], root.level, sys.stderr
    buffer = io.StringIO()
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    sys.stderr = saved_stderr


def _with_password(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return database_url  # SQLite has no password
    return url.set(password=DB_PASSWORD).render_as_string(hide_password=False)


def _contains(where: Any, secret: str) -> bool:
    text = where if isinstance(where, str) else json.dumps(where, ensure_ascii=False, default=str)
    return secret in text


def test_no_secret_reaches_logs_slack_or_the_postmortem(
    tmp_path: Path, secret_slack: SlackSimulator, database_url: str, log_lines: io.StringIO
) -> None:
    slack = secret_slack
    database_url = _with_password(database_url)
    env = {"SLACK_APP_TOKEN": APP_TOKEN}
    with PagerDutyReceiver(routing_keys=[ROUTING_KEY]) as pagerduty, OpsgenieReceiver(api_keys=[GENIE_KEY]) as opsgenie:
        env |= {"PAGERDUTY_EVENTS_URL": pagerduty.events_url, "OPSGENIE_API_URL": opsgenie.url}
        secrets = make_settings(tmp_path, slack, database_url, SECRET_CONFIG, env).secrets()
        expected = {BOT_TOKEN, SIGNING_SECRET, APP_TOKEN, ROUTING_KEY, GENIE_KEY, WEBHOOK_SECRET, OPSGENIE_TOKEN, ALERTS_TOKEN,
                    TARGET_PASSWORD, DOWN_PASSWORD} | ({DB_PASSWORD} if DB_PASSWORD in database_url else set())
        assert set(secrets) == expected  # Settings.secrets() knows every one of them
        sys.stderr = log_lines
        configure_logging(secrets, logging.DEBUG)  # what `serve` does, one level lower
        bot = start_bot(tmp_path, slack, database_url, SECRET_CONFIG, env=env,
                        paging_transport=Transport(RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.1), timeout=2))
        answers: list[httpx.Response] = []
        try:
            channel = bot.declare("declare sev1 Checkout is timing out")

            def run(text: str, user: str = ALICE) -> None:
                sent = bot.requests.command(text, user_id=user, channel_id=channel["id"],
                                            response_url=slack.response_url("grep"))
                assert sent.response.status_code == 200, sent.response.text
                answers.append(sent.response)
                bot.settle()

            def say(text: str, user: str) -> None:
                ts = f"{time.time():.6f}"
                sent = bot.requests.event({"type": "message", "channel": channel["id"], "user": user, "text": text,
                                           "ts": ts, "event_ts": ts, "channel_type": "channel", "team": "T0SIMULATE"})
                assert sent.response.status_code == 200

            say("checkout p99 is at 9 s", BOB)
            say(f"is this the right token? {BOT_TOKEN} (and the DSN has {TARGET_PASSWORD})", BOB)
            run("note hypothesis the pool is exhausted")
            run("diag connections primary")
            run("diag connections down")
            run("page database Connections look exhausted")
            run("page sre Please look too")
            pagerduty.wait_for(lambda r: r.events(), timeout=10)
            opsgenie.wait_for(lambda r: r.alerts(), timeout=10)
            pagerduty.subscribe(bot.url + "/webhooks/pagerduty", [WEBHOOK_SECRET], echo=False)
            acknowledged = pagerduty.acknowledge("incident-bot-1-database", by="Dana DBA")
            assert acknowledged.status == 202 and json.loads(acknowledged.response) == {"matched": True, "outcome": "changed"}
            alert = {"version": "4", "groupKey": '{}:{alertname="PgIdle"}', "status": "firing", "receiver": "bot",
                     "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "", "truncatedAlerts": 0,
                     "alerts": [{"status": "firing", "labels": {"alertname": "PgIdle"}, "annotations": {},
                                 "startsAt": "2026-11-30T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f1"}]}
            answers.append(httpx.post(bot.url + "/webhooks/alertmanager", json=alert,
                                      headers={"Authorization": f"Bearer {ALERTS_TOKEN}"}))
            assert answers[-1].status_code == 200, answers[-1].text
            run("update Rolled back the deployment")
            run("resolve Rolled back the leaking deployment")
            run("close")
            slack.wait_for(lambda s: s.files(), timeout=10)
            bot.settle()
            incident = bot.runtime.services.incidents.find("1")
            assert incident is not None
            postmortems = [v.markdown for v in bot.runtime.services.postmortems.versions(incident.id)]
            try:  # a canary: whatever a line or a traceback holds, the formatter blanks it
                raise RuntimeError(f"could not connect with {TARGET_PASSWORD} using {BOT_TOKEN}")
            except RuntimeError:
                logging.getLogger("tests.security").exception("canary %s", ROUTING_KEY)
            kinds = {i.kind for i in bot.runtime.services.timeline.items(incident.id)}
        finally:
            bot.stop()
        pd_requests, og_requests = pagerduty.received, opsgenie.received

    assert {EntryKind.MESSAGE, EntryKind.HYPOTHESIS, EntryKind.DIAGNOSTIC, EntryKind.PAGED, EntryKind.PAGE_ACKNOWLEDGED} <= kinds
    assert postmortems and all(postmortems)
    files = slack.files()
    logs = log_lines.getvalue()
    assert "Checkout is timing out" in logs and "DEBUG" in logs  # the log did capture the incident's story
    assert "canary [redacted]" in logs and "could not connect with [redacted] using [redacted]" in logs

    for secret in secrets:
        assert not _contains(logs, secret), f"a log line holds {secret}"
        assert not _contains([c.params for c in slack.calls], secret), f"a Slack Web API call carries {secret}"
        assert not _contains(slack.responses(), secret), f"a response_url message holds {secret}"
        assert not _contains([a.text for a in answers], secret), f"an HTTP answer holds {secret}"
        assert not _contains(files, secret), f"an uploaded file holds {secret}"
        assert not _contains(postmortems, secret), f"a stored postmortem holds {secret}"
        assert not _contains([r.body for r in og_requests], secret), f"an Opsgenie body holds {secret}"
        assert not _contains([r.path for r in pd_requests + og_requests], secret)
        # The only places a secret must travel, each to its own owner:
        if secret != ROUTING_KEY:  # PagerDuty's Events API takes the routing key in the body, nowhere else
            assert not _contains([r.body for r in pd_requests], secret), f"a PagerDuty body holds {secret}"
        assert not _contains([{k: v for k, v in r.body.items() if k != "routing_key"} for r in pd_requests], secret)
        assert not _contains([r.headers for r in pd_requests], secret), f"a PagerDuty header holds {secret}"
        if secret != GENIE_KEY:  # Opsgenie takes its key in "Authorization: GenieKey <key>", nowhere else
            assert not _contains([r.headers for r in og_requests], secret), f"an Opsgenie header holds {secret}"
        assert not _contains([{k: v for k, v in r.headers.items() if k != "authorization"} for r in og_requests], secret)
        if secret != BOT_TOKEN:  # Slack takes the bot token as "Authorization: Bearer <token>"
            assert not _contains([c.token for c in slack.calls], secret)
    assert all(r.body["routing_key"] == ROUTING_KEY for r in pd_requests)
    assert all(r.headers["authorization"] == f"GenieKey {GENIE_KEY}" for r in og_requests)
    assert {c.token for c in slack.calls if c.method != "upload"} == {BOT_TOKEN}

    # The pasted token and password are in the draft's timeline, blanked.
    [draft] = [f["content"] for f in files]
    assert "is this the right token? [redacted] (and the DSN has [redacted])" in draft
    assert all("is this the right token? [redacted]" in markdown for markdown in postmortems)


def test_the_timeline_shows_a_pasted_secret_as_it_was_written(
    tmp_path: Path, secret_slack: SlackSimulator, database_url: str
) -> None:
    """Not a guarantee but a known limit (docs/security.md): what people write is theirs, and
    `/incident timeline` shows it back, to the asker only. Only the postmortem blanks secrets."""
    bot = start_bot(tmp_path, secret_slack, database_url, SECRET_CONFIG)
    try:
        channel = bot.declare()
        ts = f"{time.time():.6f}"
        bot.requests.event({"type": "message", "channel": channel["id"], "user": BOB, "text": f"token {BOT_TOKEN}",
                            "ts": ts, "event_ts": ts, "channel_type": "channel"})
        shown = bot.requests.command("timeline", user_id=ALICE, channel_id=channel["id"]).response.json()
        assert shown["response_type"] == "ephemeral"
        assert BOT_TOKEN in json.dumps(shown)
    finally:
        bot.stop()


# --- PagerDuty's webhook: only signed bodies act, malformed ones are refused.


@pytest.fixture
def webhook_bot(tmp_path: Path, slack: SlackSimulator, database_url: str) -> Iterator[RunningBot]:
    running = start_bot(tmp_path, slack, database_url, f'[paging]\npagerduty_webhook_secret = "{WEBHOOK_SECRET}"\n')
    yield running
    running.stop()


def _pd_signed(body: bytes) -> str:
    return "v1=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_pagerduty_webhooks_refuse_unsigned_and_malformed_bodies(webhook_bot: RunningBot) -> None:
    url = webhook_bot.url + "/webhooks/pagerduty"
    ack = json.dumps({"event": {"event_type": "incident.acknowledged", "data": {"incident_key": "x"}}}).encode()
    checks = [
        (httpx.post(url, content=ack), 401),
        (httpx.post(url, content=ack, headers={"X-PagerDuty-Signature": "v1=" + "0" * 64}), 401),
        (httpx.post(url, content=b"{not json", headers={"X-PagerDuty-Signature": "v1=00"}), 401),
        (httpx.post(url, content=b"{not json", headers={"X-PagerDuty-Signature": _pd_signed(b"{not json")}), 400),
        (httpx.post(url, content=b"[1]", headers={"X-PagerDuty-Signature": _pd_signed(b"[1]")}), 400),
        (httpx.post(url, content=b"\xff\xfe", headers={"X-PagerDuty-Signature": _pd_signed(b"\xff\xfe")}), 400),
    ]
    for response, status in checks:
        assert response.status_code == status, response.text
        assert refused_cleanly(response)


@pytest.mark.parametrize("event", [
    {"event_type": "incident.acknowledged", "data": "x"},
    {"event_type": "incident.acknowledged", "agent": "x", "data": {"incident_key": "incident-bot-1-database"}},
])
def test_signed_but_malformed_pagerduty_events_get_400(webhook_bot: RunningBot, event: dict[str, Any]) -> None:
    body = json.dumps({"event": event}).encode()
    response = httpx.post(webhook_bot.url + "/webhooks/pagerduty", content=body,
                          headers={"X-PagerDuty-Signature": _pd_signed(body)})
    assert response.status_code == 400


# --- Diagnostics never run SQL of the caller's choosing.

SQL_ATTEMPTS = [
    "diag SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
    "diag connections; DROP TABLE users",
    "diag connections primary; DELETE FROM accounts",
    "diag connections primary --sql 'SELECT 1'",
    "diag 'connections' OR 1=1",
    "diag settings primary extra",
    "diag `SELECT 1`",
]


@pytest.fixture
def diag_bot(tmp_path: Path, slack: SlackSimulator, database_url: str) -> Iterator[RunningBot]:
    config = f"""
[diagnostics]
[diagnostics.targets.primary]
url = "postgresql+psycopg://postgres:{TARGET_PASSWORD}@127.0.0.1:5432/test"
"""
    running = start_bot(tmp_path, slack, database_url, config)
    yield running
    running.stop()


def test_diag_with_sql_is_refused_and_no_statement_reaches_the_target(
    diag_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = diag_bot
    opened: list[dict[str, Any]] = []
    real_connect = psycopg.connect

    def spying_connect(*args: Any, **kwargs: Any) -> psycopg.Connection[Any]:
        opened.append(kwargs)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(postgres_driver.psycopg, "connect", spying_connect)
    channel = bot.declare()
    diagnostics = lambda: [i for i in bot.runtime.services.timeline.items(  # noqa: E731
        bot.runtime.services.incidents.find_by_channel(channel["id"]).id) if i.kind is EntryKind.DIAGNOSTIC]
    for text in SQL_ATTEMPTS:
        sent = bot.command(text, channel=channel["id"])
        bot.settle()
        assert sent.response.status_code == 200
        reply = sent.response.json()["text"]
        assert "is not a check" in reply or "no SQL of your own" in reply, (text, reply)
    assert [k for k in opened if k.get("application_name") == postgres_driver.APPLICATION_NAME] == []
    assert diagnostics() == []
    assert [m for m in bot.slack.messages(channel["id"]) if "read-only" in json.dumps(m.get("blocks", []))] == []

    # The spy does see a real check: it opens one read-only session, with the fixed options.
    bot.command("diag connections primary", channel=channel["id"])
    bot.settle()
    [session] = [k for k in opened if k.get("application_name") == postgres_driver.APPLICATION_NAME]
    assert "default_transaction_read_only=on" in session["options"]
    assert len(diagnostics()) == 1
