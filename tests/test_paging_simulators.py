"""Tests for simulators.paging, driven through real httpx requests as the bot's paging client would."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from simulators.paging import ActionRefused, Delivery, OpsgenieReceiver, PagerDutyReceiver, Received

KEY = "R0UTINGKEY0123456789abcdef012345"  # 32 characters, like an integration key
OTHER_KEY = "0THERKEY0123456789abcdef01234567"
GENIE = "og-integration-key-not-real"


@pytest.fixture
def pd() -> Iterator[PagerDutyReceiver]:
    with PagerDutyReceiver(routing_keys=[KEY, OTHER_KEY]) as receiver:
        yield receiver


@pytest.fixture
def og() -> Iterator[OpsgenieReceiver]:
    with OpsgenieReceiver(api_keys=[GENIE]) as receiver:
        yield receiver


def trigger(dedup_key: str | None = "inc-12-database", **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": KEY,
        "event_action": "trigger",
        "payload": {"summary": "INC-12 database is down", "source": "incident-bot", "severity": "critical", **payload},
    }
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    return event


def follow_up(action: str, dedup_key: str = "inc-12-database", routing_key: str = KEY) -> dict[str, Any]:
    return {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key}


def og_post(og: OpsgenieReceiver, path: str, body: dict[str, Any] | None = None, *,
            key: str | None = GENIE, params: dict[str, str] | None = None) -> httpx.Response:
    headers = {"Authorization": f"GenieKey {key}"} if key is not None else {}
    return httpx.post(og.url + path, json=body, headers=headers, params=params, timeout=5)


# -- PagerDuty ------------------------------------------------------------------------------


def test_pagerduty_trigger_ack_resolve_lifecycle(pd: PagerDutyReceiver) -> None:
    resp = httpx.post(pd.events_url, json=trigger(), timeout=5)
    assert resp.status_code == 202
    assert resp.json() == {"status": "success", "message": "Event processed", "dedup_key": "inc-12-database"}
    assert pd.alerts() == {"inc-12-database": "triggered"}

    assert httpx.post(pd.events_url, json=follow_up("acknowledge"), timeout=5).status_code == 202
    assert pd.alerts() == {"inc-12-database": "acknowledged"}
    assert httpx.post(pd.events_url, json=follow_up("resolve"), timeout=5).status_code == 202
    assert pd.alerts() == {"inc-12-database": "resolved"}

    assert [e["event_action"] for e in pd.events()] == ["trigger", "acknowledge", "resolve"]
    first = pd.received[0]
    assert isinstance(first, Received)
    assert (first.path, first.status, first.body) == ("/v2/enqueue", 202, trigger())
    assert first.headers["content-type"] == "application/json"


def test_pagerduty_generates_a_dedup_key_when_omitted(pd: PagerDutyReceiver) -> None:
    resp = httpx.post(pd.events_url, json=trigger(dedup_key=None), timeout=5)
    key = resp.json()["dedup_key"]
    assert resp.status_code == 202 and len(key) >= 32
    assert pd.alerts() == {key: "triggered"}


def test_pagerduty_deduplicates_triggers_for_an_open_alert(pd: PagerDutyReceiver) -> None:
    for _ in range(2):
        assert httpx.post(pd.events_url, json=trigger(), timeout=5).status_code == 202
    assert pd.alerts() == {"inc-12-database": "triggered"}
    assert pd.triggers("inc-12-database") == 2

    httpx.post(pd.events_url, json=follow_up("acknowledge"), timeout=5)
    httpx.post(pd.events_url, json=trigger(), timeout=5)  # a repeat keeps the acknowledged alert as it is
    assert pd.alerts() == {"inc-12-database": "acknowledged"}

    httpx.post(pd.events_url, json=follow_up("resolve"), timeout=5)
    httpx.post(pd.events_url, json=trigger(), timeout=5)  # after resolve, the same key opens a new alert
    assert pd.alerts() == {"inc-12-database": "triggered"}
    assert pd.triggers("inc-12-database") == 4
    assert pd.triggers("never-sent") == 0


def test_pagerduty_drops_follow_ups_for_unknown_keys_or_another_routing_key(pd: PagerDutyReceiver) -> None:
    assert httpx.post(pd.events_url, json=follow_up("acknowledge", "nope"), timeout=5).status_code == 202
    assert httpx.post(pd.events_url, json=follow_up("resolve", "nope"), timeout=5).status_code == 202
    assert pd.alerts() == {}

    httpx.post(pd.events_url, json=trigger(), timeout=5)
    httpx.post(pd.events_url, json=follow_up("resolve", routing_key=OTHER_KEY), timeout=5)
    assert pd.alerts() == {"inc-12-database": "triggered"}


def test_pagerduty_accepts_the_documented_full_event(pd: PagerDutyReceiver) -> None:
    event = trigger(timestamp="2015-07-17T08:42:58.315+0000", component="postgres", group="prod-datapipe",
                    custom_details={"ping time": "1500ms", "load avg": 0.75})
    event["payload"]["class"] = "deploy"
    event |= {
        "links": [{"href": "https://example.com/", "text": "Link text"}],
        "images": [{"src": "https://example.com/logo.png", "href": "https://example.com/", "alt": "Logo"}],
        "client": "incident-bot", "client_url": "https://bot.example.com",
    }
    assert httpx.post(pd.events_url, json=event, timeout=5).status_code == 202
    assert httpx.post(pd.events_url, json=trigger("b", timestamp="2024-05-01T10:00:00Z"), timeout=5).status_code == 202
    assert pd.events()[0] == event


def _without_summary() -> dict[str, Any]:
    event = trigger()
    del event["payload"]["summary"]
    return event


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (_without_summary(), "'payload.summary' is missing or blank"),
        (trigger(summary="   "), "'payload.summary' is missing or blank"),
        (trigger(summary="x" * 1025), "'payload.summary' is too long (max 1024 characters)"),
        (trigger(severity="fatal"), "'payload.severity' is missing or invalid"),
        (trigger(source=""), "'payload.source' is missing or blank"),
        (trigger(timestamp="yesterday"), "'payload.timestamp' is not a valid ISO 8601 timestamp"),
        (trigger(custom_details="text"), "'payload.custom_details' must be an object"),
        ({**trigger(), "routing_key": KEY + "x"}, "Length of 'routing_key' is incorrect (should be 32 characters)"),
        ({**trigger(), "routing_key": "u" * 32}, "Invalid routing key"),
        ({**trigger(), "routing_key": None}, "'routing_key' is missing or blank"),
        ({**trigger(), "event_action": "escalate"}, "'event_action' is missing or invalid"),
        ({**trigger(), "dedup_key": "k" * 256}, "'dedup_key' is too long (max 255 characters)"),
        ({**trigger(), "payload": None}, "'payload' is missing or not an object"),
        ({**trigger(), "links": [{"text": "no href"}]}, "'links[0].href' is missing or blank"),
        ({**trigger(), "images": "logo.png"}, "'images' must be an array"),
        ({"routing_key": KEY, "event_action": "acknowledge"}, "'dedup_key' is missing or blank"),
        ({"routing_key": KEY, "event_action": "resolve", "dedup_key": ""}, "'dedup_key' is missing or blank"),
    ],
)
def test_pagerduty_rejects_invalid_events(pd: PagerDutyReceiver, event: dict[str, Any], error: str) -> None:
    resp = httpx.post(pd.events_url, json=event, timeout=5)
    assert resp.status_code == 400
    body = resp.json()
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert any(e.startswith(error) for e in body["errors"]), body["errors"]
    assert pd.alerts() == {} and pd.events() == []
    assert [r.status for r in pd.received] == [400]


def test_pagerduty_rejects_a_body_that_is_not_a_json_object(pd: PagerDutyReceiver) -> None:
    for content in (b"{not json", b"[1, 2]", b""):
        resp = httpx.post(pd.events_url, content=content, headers={"Content-Type": "application/json"}, timeout=5)
        assert resp.status_code == 400 and resp.json()["errors"]
    assert [r.body for r in pd.received] == [None, None, None]


def test_pagerduty_without_configured_keys_accepts_any_32_character_key() -> None:
    with PagerDutyReceiver() as receiver:
        for key, status in (("z" * 32, 202), ("z" * 31, 400)):
            resp = httpx.post(receiver.events_url, json={**trigger(), "routing_key": key}, timeout=5)
            assert resp.status_code == status


def test_pagerduty_answers_404_elsewhere(pd: PagerDutyReceiver) -> None:
    assert httpx.get(pd.events_url, timeout=5).status_code == 404
    assert httpx.post(pd.url + "/v2/change/enqueue", json=trigger(), timeout=5).status_code == 404
    assert pd.events() == []


# -- Opsgenie ---------------------------------------------------------------------------------


def test_opsgenie_create_acknowledge_close_lifecycle(og: OpsgenieReceiver) -> None:
    alert = {"message": "INC-12 database is down", "alias": "inc-12-database", "priority": "P1",
             "tags": ["incident"], "details": {"channel": "#inc-12"},
             "responders": [{"type": "team", "name": "dba"}]}
    resp = og_post(og, "/v2/alerts", alert)
    assert resp.status_code == 202
    assert resp.json()["result"] == "Request will be processed" and resp.json()["requestId"]
    assert og.alerts() == {"inc-12-database": "open"}
    assert og.alert("inc-12-database") == alert

    params = {"identifierType": "alias"}
    resp = og_post(og, "/v2/alerts/inc-12-database/acknowledge", {"user": "alice", "note": "on it"}, params=params)
    assert resp.status_code == 202
    assert og.alerts() == {"inc-12-database": "acknowledged"}
    assert og_post(og, "/v2/alerts/inc-12-database/close", None, params=params).status_code == 202
    assert og.alerts() == {"inc-12-database": "closed"}

    ack = og.received[1]
    assert (ack.path, ack.query, ack.status) == ("/v2/alerts/inc-12-database/acknowledge", params, 202)
    assert ack.headers["authorization"] == f"GenieKey {GENIE}"
    assert og.alert("missing") is None


def test_opsgenie_deduplicates_creates_for_an_open_alias(og: OpsgenieReceiver) -> None:
    og_post(og, "/v2/alerts", {"message": "first", "alias": "inc-7"})
    og_post(og, "/v2/alerts", {"message": "second", "alias": "inc-7"})
    assert og.alerts() == {"inc-7": "open"} and og.creates("inc-7") == 2
    assert og.alert("inc-7") == {"message": "first", "alias": "inc-7"}

    og_post(og, "/v2/alerts/inc-7/close", {}, params={"identifierType": "alias"})
    og_post(og, "/v2/alerts", {"message": "third", "alias": "inc-7"})  # a closed alias opens a new alert
    assert og.alerts() == {"inc-7": "open"} and og.creates("inc-7") == 3
    assert og.alert("inc-7") == {"message": "third", "alias": "inc-7"}


def test_opsgenie_generates_an_alias_when_omitted(og: OpsgenieReceiver) -> None:
    og_post(og, "/v2/alerts", {"message": "no alias"})
    [(alias, state)] = og.alerts().items()
    assert state == "open" and og.alert(alias) == {"message": "no alias"}


def test_opsgenie_actions_only_change_known_aliases(og: OpsgenieReceiver) -> None:
    og_post(og, "/v2/alerts", {"message": "m", "alias": "a1"})
    # Without identifierType Opsgenie reads the identifier as an alert id: accepted, but no alias matches.
    assert og_post(og, "/v2/alerts/a1/acknowledge", {}).status_code == 202
    assert og_post(og, "/v2/alerts/zz/close", {}, params={"identifierType": "alias"}).status_code == 202
    assert og.alerts() == {"a1": "open"}
    resp = og_post(og, "/v2/alerts/a1/close", {}, params={"identifierType": "name"})
    assert resp.status_code == 422 and "identifierType" in resp.json()["errors"]
    resp = og_post(og, "/v2/alerts/a1/close", {"note": "n" * 25001}, params={"identifierType": "alias"})
    assert resp.status_code == 422 and "note" in resp.json()["errors"]
    assert og.alerts() == {"a1": "open"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "m" * 131}, "message"),
        ({"message": " "}, "message"),
        ({"alias": "no-message"}, "message"),
        ({"message": "m", "priority": "P6"}, "priority"),
        ({"message": "m", "alias": "a" * 513}, "alias"),
        ({"message": "m", "description": "d" * 15001}, "description"),
        ({"message": "m", "user": "u" * 101}, "user"),
        ({"message": "m", "tags": "incident"}, "tags"),
        ({"message": "m", "tags": ["t" * 51]}, "tags"),
        ({"message": "m", "details": {"count": 3}}, "details"),
        ({"message": "m", "responders": [{"type": "team"}]}, "responders"),
        ({"message": "m", "visibleTo": ["dba"]}, "visibleTo"),
    ],
)
def test_opsgenie_rejects_invalid_creates(og: OpsgenieReceiver, body: dict[str, Any], field: str) -> None:
    resp = og_post(og, "/v2/alerts", body)
    assert resp.status_code == 422
    data = resp.json()
    assert data["message"] == "Request body is not processable. Please check the errors."
    assert field in data["errors"] and data["requestId"]
    assert og.alerts() == {}


def test_opsgenie_accepts_a_130_character_message(og: OpsgenieReceiver) -> None:
    assert og_post(og, "/v2/alerts", {"message": "m" * 130, "alias": "edge"}).status_code == 202
    assert og.alerts() == {"edge": "open"}


@pytest.mark.parametrize("authorization", [None, "GenieKey wrong-key", f"Bearer {GENIE}", "GenieKey"])
def test_opsgenie_rejects_missing_or_wrong_genie_keys(og: OpsgenieReceiver, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    resp = httpx.post(og.url + "/v2/alerts", json={"message": "m", "alias": "a"}, headers=headers, timeout=5)
    assert resp.status_code == 401
    assert resp.json()["message"] == "Could not authenticate"
    assert og.alerts() == {} and og.received[0].status == 401


def test_opsgenie_without_configured_keys_accepts_any_non_empty_key() -> None:
    with OpsgenieReceiver() as receiver:
        assert og_post(receiver, "/v2/alerts", {"message": "m"}, key="anything").status_code == 202
        bare = httpx.post(receiver.url + "/v2/alerts", json={"message": "m"}, headers={"Authorization": "GenieKey"})
        assert bare.status_code == 401


def test_opsgenie_answers_404_elsewhere(og: OpsgenieReceiver) -> None:
    for method, path in [("GET", "/v2/alerts"), ("POST", "/v2/alerts/a/snooze"), ("POST", "/v1/json/alert")]:
        resp = httpx.request(method, og.url + path, headers={"Authorization": f"GenieKey {GENIE}"}, timeout=5)
        assert resp.status_code == 404 and resp.json() == {"message": "Not found"}


# -- scripted failures, waiting, reset (shared by both receivers) ------------------------------


def send(receiver: PagerDutyReceiver | OpsgenieReceiver, client: httpx.Client | None = None) -> httpx.Response:
    post = (client or httpx).post
    if isinstance(receiver, PagerDutyReceiver):
        return post(receiver.events_url, json=trigger())
    return post(receiver.url + "/v2/alerts", json={"message": "m", "alias": "inc-12-database"},
                headers={"Authorization": f"GenieKey {GENIE}"})


@pytest.fixture(params=["pagerduty", "opsgenie"])
def receiver(request: pytest.FixtureRequest) -> Iterator[PagerDutyReceiver | OpsgenieReceiver]:
    factory = PagerDutyReceiver if request.param == "pagerduty" else OpsgenieReceiver
    with factory() as r:
        yield r


def test_fail_next_429_sends_retry_after_then_recovers(receiver: PagerDutyReceiver | OpsgenieReceiver) -> None:
    receiver.fail_next(429, retry_after=7)
    resp = send(receiver)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    if isinstance(receiver, PagerDutyReceiver):
        assert resp.json() == {"status": "throttle event",
                               "message": "Requests for this service are arriving too quickly. Please retry later."}
    else:
        assert resp.json()["message"].startswith("You are making too many requests!")
    assert receiver.alerts() == {}
    resp = send(receiver)
    assert resp.status_code == 202 and "Retry-After" not in resp.headers
    assert [r.status for r in receiver.received] == [429, 202]


def test_fail_next_500_twice_then_success(receiver: PagerDutyReceiver | OpsgenieReceiver) -> None:
    receiver.fail_next(500, count=2)
    first, second, third = (send(receiver) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (500, 500, 202)
    expected = "Internal server error" if isinstance(receiver, PagerDutyReceiver) else "Internal Server Error"
    assert first.json()["message"] == expected
    assert [r.status for r in receiver.received] == [500, 500, 202]
    assert list(receiver.alerts()) == ["inc-12-database"]


def test_fail_next_with_a_custom_body(receiver: PagerDutyReceiver | OpsgenieReceiver) -> None:
    receiver.fail_next(503, body={"message": "maintenance"})
    resp = send(receiver)
    assert (resp.status_code, resp.json()) == (503, {"message": "maintenance"})


def test_hang_makes_a_short_timeout_client_give_up(receiver: PagerDutyReceiver | OpsgenieReceiver) -> None:
    receiver.fail_next(hang_seconds=3)
    with httpx.Client(timeout=0.3) as client:
        before, started = set(threading.enumerate()), time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            send(receiver, client)
        assert time.monotonic() - started < 2
        handlers = set(threading.enumerate()) - before  # the thread serving the hung request
        assert handlers
        [hung] = receiver.received
        assert hung.status == 0 and hung.body is not None
        assert send(receiver, client).status_code == 202  # only the scripted request hangs
    assert [r.status for r in receiver.received] == [0, 202]
    started = time.monotonic()
    receiver.stop()  # must not wait for the hung handler, and must wake it
    assert time.monotonic() - started < 1.5
    for thread in handlers:
        thread.join(timeout=1)
        assert not thread.is_alive()


def test_wait_for_returns_the_value_or_reports_recent_requests(pd: PagerDutyReceiver) -> None:
    httpx.post(pd.events_url, json=trigger(), timeout=5)
    assert pd.wait_for(lambda r: r.alerts().get("inc-12-database")) == "triggered"
    with pytest.raises(AssertionError, match=r"/v2/enqueue -> 202"):
        pd.wait_for(lambda r: r.alerts().get("other"), timeout=0.1)


def test_wait_for_sees_requests_arriving_later(og: OpsgenieReceiver) -> None:
    threading.Timer(0.2, og_post, args=(og, "/v2/alerts", {"message": "m", "alias": "late"})).start()
    assert og.wait_for(lambda r: r.alerts().get("late"), timeout=5) == "open"


def test_reset_forgets_requests_state_and_failures(receiver: PagerDutyReceiver | OpsgenieReceiver) -> None:
    send(receiver)
    receiver.fail_next(500, count=3)
    receiver.reset()
    assert receiver.received == [] and receiver.alerts() == {}
    assert send(receiver).status_code == 202


def test_fail_next_rejects_nonsense() -> None:
    receiver = PagerDutyReceiver()
    with pytest.raises(ValueError):
        receiver.fail_next(count=0)
    with pytest.raises(ValueError):
        receiver.fail_next(700)
    with pytest.raises(RuntimeError):
        _ = receiver.url


# -- webhooks: a tiny stdlib server stands in for the bot's webhook endpoints ---------------------


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]  # lower-cased names
    raw: bytes
    at: float


class Target:
    """Records every POST; answers `status` (after `gate` is set, when given)."""

    def __init__(self, status: int = 200, answer: bytes = b'{"ok": true}') -> None:
        self.status, self.answer = status, answer
        self.gate: threading.Event | None = None
        self.hits: list[Hit] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, raw, time.time()))
                if target.gate is not None:
                    target.gate.wait(10)
                self.send_response(target.status)
                self.send_header("Content-Length", str(len(target.answer)))
                self.end_headers()
                self.wfile.write(target.answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    yield server
    server.close()


PD_HOOK = "/webhooks/pagerduty"
OG_HOOK = "/webhooks/opsgenie"
SECRETS = ["old-secret-being-rotated", "new-secret"]
AT = datetime(2026, 11, 27, 10, 0, 0, 123000, tzinfo=UTC)


@pytest.fixture
def pd_hooked(pd: PagerDutyReceiver, target: Target) -> PagerDutyReceiver:
    """A PagerDuty receiver subscribed to the target, with incident inc-12-database open."""
    pd.subscribe(target.url(PD_HOOK), SECRETS)
    assert httpx.post(pd.events_url, json=trigger(), timeout=5).status_code == 202
    pd.wait_webhooks()
    return pd


def sign(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verifies(header: str, body: bytes, secret: str) -> bool:
    """PagerDuty's published verification (docs/webhooks/04-Signatures.md): any v1 signature matches."""
    return any(hmac.compare_digest(sign(secret, body), s.strip()) for s in header.split(","))


def event_types(receiver: PagerDutyReceiver) -> list[str]:
    return [d.payload["event"]["event_type"] for d in receiver.deliveries]


def test_pagerduty_webhooks_are_signed_with_every_secret(pd_hooked: PagerDutyReceiver, target: Target) -> None:
    delivery = pd_hooked.acknowledge("inc-12-database", by="Dana Scully", at=AT)
    assert isinstance(delivery, Delivery) and (delivery.status, delivery.response) == (200, '{"ok": true}')
    hit = target.hits[-1]
    assert hit.path == PD_HOOK and json.loads(hit.raw) == delivery.payload
    header = hit.headers["x-pagerduty-signature"]
    assert header == ",".join(sign(secret, hit.raw) for secret in SECRETS)  # one v1= per secret, comma-joined
    assert all(verifies(header, hit.raw, secret) for secret in SECRETS)
    assert not verifies(header, hit.raw, "some-other-secret")
    assert not verifies(header, hit.raw + b" ", SECRETS[0])  # the signature covers the exact body
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["user-agent"] == "PagerDuty-Webhook/V3.0"
    assert hit.headers["x-webhook-subscription"] == delivery.headers["X-Webhook-Subscription"]
    assert uuid.UUID(hit.headers["x-webhook-id"])


def test_pagerduty_webhook_ids_repeat_only_on_redelivery(pd_hooked: PagerDutyReceiver, target: Target) -> None:
    first = pd_hooked.acknowledge("inc-12-database")
    webhook_id = first.headers["X-Webhook-Id"]
    again = pd_hooked.deliver(first.payload, webhook_id=webhook_id)
    assert again.headers["X-Webhook-Id"] == webhook_id and again.payload == first.payload
    assert target.hits[-1].raw == target.hits[-2].raw  # the same bytes, so the same signatures
    assert again.headers["X-PagerDuty-Signature"] == first.headers["X-PagerDuty-Signature"]
    fresh = pd_hooked.deliver(first.payload)
    ids = [d.headers["X-Webhook-Id"] for d in pd_hooked.deliveries]
    assert fresh.headers["X-Webhook-Id"] not in ids[:-1] and len(set(ids)) == len(ids) - 1
    forged = pd_hooked.deliver(first.payload, signature="v1=deadbeef")
    assert target.hits[-1].headers["x-pagerduty-signature"] == "v1=deadbeef" and forged.status == 200
    pd_hooked.deliver(first.payload, signature="")
    assert "x-pagerduty-signature" not in target.hits[-1].headers


def test_pagerduty_echoes_follow_events_api_changes_asynchronously(pd: PagerDutyReceiver, target: Target) -> None:
    pd.subscribe(target.url(PD_HOOK), ["s"])
    target.gate = threading.Event()  # the bot is slow to answer the webhook
    resp = httpx.post(pd.events_url, json=trigger(summary="INC-12 database is down: ünïcode"), timeout=5)
    assert resp.status_code == 202  # answered while the webhook is still in flight
    assert pd.deliveries == []
    target.gate.set()
    pd.wait_webhooks()
    [triggered] = pd.deliveries
    event = triggered.payload["event"]
    assert (event["event_type"], event["resource_type"], event["client"]) == ("incident.triggered", "incident", None)
    assert event["agent"]["type"] == "service_reference" and event["agent"] == event["data"]["service"]
    data = event["data"]
    assert (data["type"], data["status"], data["incident_key"]) == ("incident", "triggered", "inc-12-database")
    assert data["title"] == "INC-12 database is down: ünïcode" and data == pd.incident("inc-12-database")
    assert verifies(target.hits[0].headers["x-pagerduty-signature"], target.hits[0].raw, "s")

    for action in ("trigger", "acknowledge", "acknowledge", "resolve", "resolve"):  # repeats change nothing
        body = trigger() if action == "trigger" else follow_up(action)
        assert httpx.post(pd.events_url, json=body, timeout=5).status_code == 202
    pd.wait_webhooks()
    assert event_types(pd) == ["incident.triggered", "incident.acknowledged", "incident.resolved"]
    assert [d.payload["event"]["data"]["status"] for d in pd.deliveries] == ["triggered", "acknowledged", "resolved"]
    assert all(d.payload["event"]["agent"]["type"] == "service_reference" for d in pd.deliveries)


def test_pagerduty_echoes_go_out_while_a_scripted_hang_holds_the_answer(pd: PagerDutyReceiver, target: Target) -> None:
    pd.subscribe(target.url(PD_HOOK), ["s"])
    pd.fail_next(hang_seconds=3)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(pd.events_url, json=trigger(), timeout=0.5)
    pd.wait_webhooks(timeout=2)  # PagerDuty processed the event; its webhook does not wait for the answer
    assert event_types(pd) == ["incident.triggered"]


def test_pagerduty_without_echo_sends_only_peoples_actions(pd: PagerDutyReceiver, target: Target) -> None:
    pd.subscribe(target.url(PD_HOOK), ["s"], echo=False)
    httpx.post(pd.events_url, json=trigger(), timeout=5)
    httpx.post(pd.events_url, json=follow_up("acknowledge"), timeout=5)
    pd.wait_webhooks()
    assert pd.deliveries == [] and target.hits == []
    pd.resolve("inc-12-database")
    assert event_types(pd) == ["incident.resolved"]


def test_pagerduty_incident_is_the_documented_incident_object(pd: PagerDutyReceiver) -> None:
    httpx.post(pd.events_url, json=trigger(), timeout=5)
    httpx.post(pd.events_url, json=trigger("inc-13-web", summary="INC-13 web is slow"), timeout=5)
    first, second = pd.incident("inc-12-database"), pd.incident("inc-13-web")
    assert first is not None and second is not None and pd.incident("never") is None
    assert re.fullmatch(r"Q[A-Z0-9]{13}", first["id"]) and first["id"] != second["id"]
    assert (first["number"], second["number"]) == (1, 2)
    assert first["html_url"] == f"https://acme.pagerduty.com/incidents/{first['id']}"
    assert first["self"] == f"https://api.pagerduty.com/incidents/{first['id']}"
    assert (first["type"], first["status"], first["incident_key"]) == ("incident", "triggered", "inc-12-database")
    assert (first["title"], second["title"]) == ("INC-12 database is down", "INC-13 web is slow")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["created_at"])
    assert first["service"]["type"] == "service_reference"
    assert [a["type"] for a in first["assignees"]] == ["user_reference"]
    assert first["escalation_policy"]["type"] == "escalation_policy_reference"
    assert [t["type"] for t in first["teams"]] == ["team_reference"]
    assert (first["priority"], first["urgency"], first["resolve_reason"]) == (None, "high", None)

    httpx.post(pd.events_url, json=trigger(), timeout=5)  # deduplicated: the same incident
    assert pd.incident("inc-12-database") == first
    httpx.post(pd.events_url, json=follow_up("resolve"), timeout=5)
    httpx.post(pd.events_url, json=trigger(), timeout=5)  # after resolve: a new incident for the same key
    third = pd.incident("inc-12-database")
    assert third is not None and third["id"] != first["id"] and third["number"] == 3


def test_pagerduty_people_change_state_only_where_pagerduty_would(pd_hooked: PagerDutyReceiver) -> None:
    pd = pd_hooked
    key = "inc-12-database"
    with pytest.raises(ActionRefused, match="needs a acknowledged incident"):
        pd.unacknowledge(key)
    pd.acknowledge(key)
    assert pd.alerts() == {key: "acknowledged"}
    with pytest.raises(ActionRefused):
        pd.acknowledge(key)  # already acknowledged
    with pytest.raises(ActionRefused):
        pd.escalate(key, to="Fox Mulder")  # an acknowledgement halts escalation
    unacked = pd.unacknowledge(key, at=AT)
    assert unacked.payload["event"]["agent"] is None  # the acknowledgement timeout, not a person
    assert unacked.payload["event"]["data"]["status"] == "triggered" and pd.alerts() == {key: "triggered"}
    pd.resolve(key)
    before = len(pd.deliveries)
    for refused in (lambda: pd.acknowledge(key), lambda: pd.resolve(key), lambda: pd.reassign(key, to="X"),
                    lambda: pd.add_responder(key, user="X", message="help"), lambda: pd.set_priority(key, "P1")):
        with pytest.raises(ActionRefused):
            refused()
    assert len(pd.deliveries) == before and pd.alerts() == {key: "resolved"}  # refused: nothing sent or changed
    reopened = pd.reopen(key, at=AT).payload["event"]["data"]
    assert (reopened["status"], reopened["reopened_at"]) == ("triggered", "2026-11-27T10:00:00Z")
    assert pd.alerts() == {key: "triggered"}
    assert httpx.post(pd.events_url, json=follow_up("resolve"), timeout=5).status_code == 202  # the key still works
    pd.wait_webhooks()
    assert pd.alerts() == {key: "resolved"} and event_types(pd)[-1] == "incident.resolved"
    with pytest.raises(ActionRefused, match="no incident"):
        pd.acknowledge("never-triggered")


def test_pagerduty_people_send_the_documented_event_types(pd_hooked: PagerDutyReceiver) -> None:
    pd, key = pd_hooked, "inc-12-database"
    incident_id = pd.incident(key)["id"]  # type: ignore[index]
    acked = pd.acknowledge(key, by="Dana Scully", at=AT).payload["event"]
    assert acked["occurred_at"] == "2026-11-27T10:00:00.123Z" and re.fullmatch(r"[0-9A-Z]{26}", acked["id"])
    assert acked["agent"]["type"] == "user_reference" and acked["agent"]["summary"] == "Dana Scully"
    assert acked["data"]["status"] == "acknowledged" and acked["data"]["incident_key"] == key

    reassigned = pd.reassign(key, to="Fox Mulder").payload["event"]["data"]
    assert [a["summary"] for a in reassigned["assignees"]] == ["Fox Mulder"]
    priority = pd.set_priority(key, "P1").payload["event"]["data"]["priority"]
    assert (priority["summary"], priority["type"]) == ("P1", "priority_reference")
    with pytest.raises(ActionRefused):
        pd.set_priority(key, "P1")
    delegated = pd.delegate(key, policy="Database team").payload["event"]["data"]
    assert delegated["escalation_policy"]["summary"] == "Database team" and delegated["assignees"] == []

    shapes = {
        "incident_note": (pd.annotate(key, "Failover started", by="Fox Mulder"), "content", "Failover started"),
        "incident_responder": (pd.add_responder(key, user="Walter Skinner", message="Join the bridge"),
                               "message", "Join the bridge"),
        "incident_status_update": (pd.publish_status_update(key, "Fix deployed"), "message", "Fix deployed"),
    }
    for data_type, (delivery, field, text) in shapes.items():
        data = delivery.payload["event"]["data"]
        assert (data["type"], data[field]) == (data_type, text)
        assert data["incident"]["type"] == "incident_reference" and data["incident"]["id"] == incident_id
        assert "incident_key" not in data["incident"]  # these carry a reference, not the incident
    responder = shapes["incident_responder"][0].payload["event"]["data"]
    assert (responder["user"]["summary"], responder["state"]) == ("Walter Skinner", "pending")

    pd.unacknowledge(key)
    escalated = pd.escalate(key, to="Walter Skinner", level=2).payload["event"]
    assert escalated["agent"] is None and [a["summary"] for a in escalated["data"]["assignees"]] == ["Walter Skinner"]
    assert event_types(pd) == [
        "incident.triggered", "incident.acknowledged", "incident.reassigned", "incident.priority_updated",
        "incident.delegated", "incident.annotated", "incident.responder.added",
        "incident.status_update_published", "incident.unacknowledged", "incident.escalated"]
    assert pd.incident(key)["assignees"][0]["summary"] == "Walter Skinner"  # type: ignore[index]


def test_pagerduty_build_event_changes_nothing_and_can_be_sent_out_of_order(pd_hooked: PagerDutyReceiver,
                                                                          target: Target) -> None:
    pd, key = pd_hooked, "inc-12-database"
    acked = pd.build_event("incident.acknowledged", key, at=AT)
    resolved = pd.build_event("incident.resolved", key, by=None, at=AT + timedelta(minutes=5))
    assert pd.alerts() == {key: "triggered"} and len(pd.deliveries) == 1  # only the trigger's echo
    assert (acked["event"]["data"]["status"], resolved["event"]["data"]["status"]) == ("acknowledged", "resolved")
    assert resolved["event"]["agent"] is None and acked["event"]["id"] != resolved["event"]["id"]
    pd.deliver(resolved)
    pd.deliver(acked)
    assert [json.loads(h.raw)["event"]["event_type"] for h in target.hits[-2:]] == [
        "incident.resolved", "incident.acknowledged"]
    custom = pd.build_event("incident.reassigned", key, assignees=["Fox Mulder"], urgency="low")
    assert custom["event"]["data"]["assignees"][0]["type"] == "user_reference"
    assert custom["event"]["data"]["urgency"] == "low"
    with pytest.raises(ValueError, match="not a modelled"):
        pd.build_event("incident.workflow.started", key)
    with pytest.raises(ActionRefused):
        pd.build_event("incident.acknowledged", "unknown-key")


def test_pagerduty_records_what_the_bot_answered(pd: PagerDutyReceiver, target: Target) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}{PD_HOOK}"
    pd.subscribe(closed, ["s"])
    httpx.post(pd.events_url, json=trigger(), timeout=5)
    down = pd.acknowledge("inc-12-database")
    assert (down.status, down.response) == (0, "")
    assert pd.alerts() == {"inc-12-database": "acknowledged"}  # PagerDuty changed it all the same

    target.status, target.answer = 500, b"boom"
    pd.subscribe(target.url(PD_HOOK), ["s"])
    failed = pd.resolve("inc-12-database")
    assert (failed.status, failed.response) == (500, "boom") and len(target.hits) == 1  # not retried
    assert [d.status for d in pd.deliveries] == [0, 0, 500]


def test_pagerduty_webhooks_need_a_subscription(pd: PagerDutyReceiver, target: Target) -> None:
    httpx.post(pd.events_url, json=trigger(), timeout=5)
    with pytest.raises(RuntimeError, match="subscribe"):
        pd.acknowledge("inc-12-database")
    assert pd.alerts() == {"inc-12-database": "triggered"}
    for secrets in ([], "one-string", [""]):
        with pytest.raises(ValueError):
            pd.subscribe(target.url(PD_HOOK), secrets)
    with pytest.raises(ValueError):
        pd.subscribe("ftp://example.com/hook", ["s"])


def test_reset_forgets_deliveries_but_keeps_the_subscription(pd_hooked: PagerDutyReceiver) -> None:
    assert pd_hooked.deliveries
    pd_hooked.reset()
    assert pd_hooked.deliveries == [] and pd_hooked.incident("inc-12-database") is None
    httpx.post(pd_hooked.events_url, json=trigger(), timeout=5)
    pd_hooked.wait_webhooks()
    assert event_types(pd_hooked) == ["incident.triggered"]


# -- Opsgenie webhooks -----------------------------------------------------------------------------

BEARER = {"Authorization": "Bearer og-webhook-token", "X-Team": "dba"}


@pytest.fixture
def og_hooked(og: OpsgenieReceiver, target: Target) -> OpsgenieReceiver:
    """An Opsgenie receiver with its Webhook integration pointed at the target, alert inc-12 open."""
    og.subscribe(target.url(OG_HOOK), BEARER)
    body = {"message": "INC-12 database is down", "alias": "inc-12", "tags": ["incident-bot", "sev1"],
            "entity": "database", "source": "incident-bot", "user": "incident-bot",
            "responders": [{"type": "team", "name": "dba"}, {"type": "user", "username": "fox@example.com"}]}
    assert og_post(og, "/v2/alerts", body).status_code == 202
    og.wait_webhooks()
    return og


def test_opsgenie_webhooks_carry_the_custom_headers_and_the_documented_payload(og_hooked: OpsgenieReceiver,
                                                                             target: Target) -> None:
    delivery = og_hooked.acknowledge("inc-12", user="dana@example.com", at=AT, note="on it")
    hit = target.hits[-1]
    assert hit.path == OG_HOOK and json.loads(hit.raw) == delivery.payload and delivery.status == 200
    assert (hit.headers["authorization"], hit.headers["x-team"]) == ("Bearer og-webhook-token", "dba")
    assert hit.headers["content-type"] == "application/json"
    payload = delivery.payload
    assert (payload["action"], payload["source"]) == ("Acknowledge", {"name": "", "type": "web"})
    assert (payload["integrationName"], payload["integrationType"]) == ("Webhook", "Webhook")
    assert uuid.UUID(payload["integrationId"])
    alert = payload["alert"]
    assert {"alertId", "message", "tags", "tinyId", "entity", "alias", "createdAt", "updatedAt", "username",
            "userId", "source", "note"} <= alert.keys()
    assert (alert["alias"], alert["message"], alert["entity"]) == ("inc-12", "INC-12 database is down", "database")
    assert (alert["tags"], alert["tinyId"], alert["note"]) == (["incident-bot", "sev1"], "1", "on it")
    assert (alert["username"], alert["source"]) == ("dana@example.com", "incident-bot")
    assert alert["updatedAt"] == 1_795_773_600_123_000_000  # AT in epoch nanoseconds
    assert isinstance(alert["createdAt"], int) and abs(alert["createdAt"] / 1000 - time.time()) < 60  # epoch ms
    assert uuid.UUID(alert["alertId"]) and uuid.UUID(alert["userId"])
    assert og_hooked.alerts() == {"inc-12": "acknowledged"}


def test_opsgenie_alert_keeps_its_ids_through_every_action(og_hooked: OpsgenieReceiver) -> None:
    og, alias = og_hooked, "inc-12"
    later = AT + timedelta(hours=1)
    og.acknowledge(alias)
    og.add_note(alias, "failover started")
    og.assign(alias, owner="fox@example.com")
    og.update_priority(alias, "P1")
    og.snooze(alias, until=later, at=AT)
    og.unacknowledge(alias)
    og.escalate(alias, to="walter@example.com")
    og.close(alias, note="fixed")
    og.add_note(alias, "postmortem due")  # notes may follow the close
    og.delete(alias)
    actions = [d.payload["action"] for d in og.deliveries]
    assert actions == ["Create", "Acknowledge", "AddNote", "AssignOwnership", "UpdatePriority", "Snooze",
                       "UnAcknowledge", "EscalateNext", "Close", "AddNote", "Delete"]
    alerts = [d.payload["alert"] for d in og.deliveries]
    assert len({a["alertId"] for a in alerts}) == 1 and {a["tinyId"] for a in alerts} == {"1"}
    assert len({a["createdAt"] for a in alerts}) == 1
    by_action = {d.payload["action"]: d.payload for d in og.deliveries}
    assert by_action["AssignOwnership"]["alert"]["owner"] == "fox@example.com"
    assert by_action["UpdatePriority"]["alert"]["priority"] == "P1"
    assert by_action["Snooze"]["alert"]["snoozedUntil"] == "2026-11-27T11:00:00.123Z"
    assert by_action["Close"]["alert"]["note"] == "fixed"
    escalation = by_action["EscalateNext"]
    assert (escalation["alert"]["username"], escalation["alert"]["userId"]) == ("System", "")
    assert escalation["escalationNotify"]["name"] == "walter@example.com"
    assert og.alerts() == {} and og.alert(alias) is None  # deleted: the alias is free again
    og_post(og, "/v2/alerts", {"message": "again", "alias": alias})
    og.wait_webhooks()
    reborn = og.deliveries[-1].payload["alert"]
    assert reborn["alertId"] not in {a["alertId"] for a in alerts} and reborn["tinyId"] == "2"


def test_opsgenie_echoes_alert_api_changes(og_hooked: OpsgenieReceiver, target: Target) -> None:
    og = og_hooked
    [created] = og.deliveries
    assert created.payload["action"] == "Create"
    assert created.payload["source"] == {"name": "incident-bot", "type": "API"}
    assert created.payload["alert"]["username"] == "incident-bot"
    assert len(created.payload["alert"]["teams"]) == 1 and len(created.payload["alert"]["recipients"]) == 1
    assert target.hits[0].headers["authorization"] == "Bearer og-webhook-token"
    params = {"identifierType": "alias"}
    og_post(og, "/v2/alerts", {"message": "repeat", "alias": "inc-12"})  # deduplicated: no Create
    og_post(og, "/v2/alerts/inc-12/acknowledge", {}, params=params)
    og_post(og, "/v2/alerts/inc-12/acknowledge", {}, params=params)  # no change, no webhook
    og_post(og, "/v2/alerts/inc-12/close", {"user": "alice", "note": "resolved in Slack", "source": "bot"},
            params=params)
    og.wait_webhooks()
    ack, close = (d.payload for d in og.deliveries[1:])
    assert (ack["action"], ack["alert"]["username"], ack["alert"]["userId"]) == ("Acknowledge", "System", "")
    assert (close["action"], close["alert"]["username"], close["alert"]["note"]) == ("Close", "alice", "resolved in Slack")
    assert close["source"] == {"name": "bot", "type": "API"}
    assert len(og.deliveries) == 3


def test_opsgenie_people_change_state_only_where_opsgenie_would(og_hooked: OpsgenieReceiver) -> None:
    og, alias = og_hooked, "inc-12"
    with pytest.raises(ActionRefused):
        og.unacknowledge(alias)  # not acknowledged
    og.acknowledge(alias)
    for refused in (lambda: og.acknowledge(alias), lambda: og.escalate(alias, to="x@example.com")):
        with pytest.raises(ActionRefused):
            refused()
    og.update_priority(alias, "P2")
    with pytest.raises(ActionRefused, match="already P2"):
        og.update_priority(alias, "P2")
    og.close(alias)
    before = len(og.deliveries)
    for refused in (lambda: og.acknowledge(alias), lambda: og.close(alias), lambda: og.assign(alias, owner="x"),
                    lambda: og.snooze(alias, until=AT + timedelta(hours=1), at=AT)):
        with pytest.raises(ActionRefused):
            refused()
    assert len(og.deliveries) == before and og.alerts() == {alias: "closed"}
    with pytest.raises(ActionRefused, match="no alert"):
        og.acknowledge("never-created")
    with pytest.raises(ValueError):
        og.update_priority(alias, "P6")
    with pytest.raises(ValueError):
        og.add_note(alias, "n" * 25001)
    og.add_note(alias, "n" * 25000)
    with pytest.raises(ValueError):
        og.snooze(alias, until=AT, at=AT)


def test_opsgenie_deliver_sends_again_with_other_headers(og_hooked: OpsgenieReceiver, target: Target) -> None:
    payload = og_hooked.build_event("Acknowledge", "inc-12", user="dana@example.com", at=AT, note="built")
    assert og_hooked.alerts() == {"inc-12": "open"}  # building changes nothing
    assert payload["alert"]["note"] == "built" and payload["alert"]["updatedAt"] == 1_795_773_600_123_000_000
    og_hooked.deliver(payload)
    assert target.hits[-1].headers["authorization"] == "Bearer og-webhook-token"
    og_hooked.deliver(payload, headers={"Authorization": "Bearer forged"})
    assert target.hits[-1].headers["authorization"] == "Bearer forged" and "x-team" not in target.hits[-1].headers
    assert json.loads(target.hits[-1].raw) == payload
    with pytest.raises(ActionRefused):
        og_hooked.build_event("Close", "unknown")


def test_opsgenie_echoes_can_be_turned_off(og: OpsgenieReceiver, target: Target) -> None:
    og.subscribe(target.url(OG_HOOK), BEARER, echo=False)
    og_post(og, "/v2/alerts", {"message": "m", "alias": "a"})
    og.wait_webhooks()
    assert og.deliveries == []
    assert og.close("a").payload["action"] == "Close" and len(target.hits) == 1


# -- limits: at the maximum accepted, one past refused --------------------------------------------


def _sized_event(total_bytes: int) -> bytes:
    """A trigger event whose JSON is exactly `total_bytes` long (padding in custom_details)."""
    event = trigger(custom_details={"pad": ""})
    base = len(json.dumps(event).encode())
    event["payload"]["custom_details"]["pad"] = "x" * (total_bytes - base)
    raw = json.dumps(event).encode()
    assert len(raw) == total_bytes
    return raw


PD_LIMITS: list[tuple[str, Callable[[int], dict[str, Any] | bytes], int]] = [
    ("dedup_key", lambda n: trigger("k" * n), 255),
    ("summary", lambda n: trigger(summary="s" * n), 1024),
    ("routing_key", lambda n: {**trigger(), "routing_key": "r" * n}, 32),
    ("event size", _sized_event, 512 * 1024),
]


@pytest.mark.parametrize(("name", "make", "most"), PD_LIMITS, ids=[limit[0] for limit in PD_LIMITS])
def test_pagerduty_limits_at_and_one_past_the_maximum(name: str, make: Callable[[int], dict[str, Any] | bytes],
                                                      most: int) -> None:
    with PagerDutyReceiver() as receiver:  # any 32-character routing key
        statuses = []
        for size in (most, most + 1):
            event = make(size)
            content = event if isinstance(event, bytes) else json.dumps(event).encode()
            resp = httpx.post(receiver.events_url, content=content, headers={"Content-Type": "application/json"},
                              timeout=10)
            statuses.append(resp.status_code)
        assert statuses == [202, 400]
        assert resp.json()["status"] == "invalid event"


def _many(kind: str, n: int) -> list[dict[str, str]]:
    return [{"type": kind, "name" if kind == "team" else "username": f"{kind}{i}"} for i in range(n)]


OG_CREATE_LIMITS: list[tuple[str, Callable[[int], dict[str, Any]], int]] = [
    ("message", lambda n: {"message": "m" * n}, 130),
    ("alias", lambda n: {"message": "m", "alias": "a" * n}, 512),
    ("description", lambda n: {"message": "m", "description": "d" * n}, 15000),
    ("entity", lambda n: {"message": "m", "entity": "e" * n}, 512),
    ("source", lambda n: {"message": "m", "source": "s" * n}, 100),
    ("user", lambda n: {"message": "m", "user": "u" * n}, 100),
    ("note", lambda n: {"message": "m", "note": "n" * n}, 25000),
    ("tags", lambda n: {"message": "m", "tags": [f"t{i}" for i in range(n)]}, 20),
    ("tags", lambda n: {"message": "m", "tags": ["t" * n]}, 50),
    ("actions", lambda n: {"message": "m", "actions": [f"a{i}" for i in range(n)]}, 10),
    ("actions", lambda n: {"message": "m", "actions": ["a" * n]}, 50),
    ("details", lambda n: {"message": "m", "details": {"k": "v" * (n - 1)}}, 8000),
    ("responders", lambda n: {"message": "m", "responders": _many("team", n)}, 50),
    ("visibleTo", lambda n: {"message": "m", "visibleTo": _many("user", n)}, 50),
]


@pytest.mark.parametrize(("field", "make", "most"), OG_CREATE_LIMITS,
                         ids=[f"{field}-{most}" for field, _, most in OG_CREATE_LIMITS])
def test_opsgenie_create_limits_at_and_one_past_the_maximum(og: OpsgenieReceiver, field: str,
                                                            make: Callable[[int], dict[str, Any]], most: int) -> None:
    assert og_post(og, "/v2/alerts", make(most)).status_code == 202
    resp = og_post(og, "/v2/alerts", make(most + 1))
    assert resp.status_code == 422 and list(resp.json()["errors"]) == [field]


@pytest.mark.parametrize(("field", "most"), [("user", 100), ("source", 100), ("note", 25000)])
def test_opsgenie_action_limits_at_and_one_past_the_maximum(og: OpsgenieReceiver, field: str, most: int) -> None:
    og_post(og, "/v2/alerts", {"message": "m", "alias": "a"})
    params = {"identifierType": "alias"}
    assert og_post(og, "/v2/alerts/a/acknowledge", {field: "x" * (most + 1)}, params=params).status_code == 422
    assert og.alerts() == {"a": "open"}
    assert og_post(og, "/v2/alerts/a/acknowledge", {field: "x" * most}, params=params).status_code == 202
    assert og.alerts() == {"a": "acknowledged"}


@pytest.mark.parametrize("visible", [{"type": "escalation", "name": "e"}, {"type": "user", "name": "not-username"}])
def test_opsgenie_visible_to_is_teams_and_users_named_as_documented(og: OpsgenieReceiver,
                                                                    visible: dict[str, str]) -> None:
    resp = og_post(og, "/v2/alerts", {"message": "m", "visibleTo": [visible]})
    assert resp.status_code == 422 and "visibleTo" in resp.json()["errors"]
