"""Tests for simulators.paging, driven through real httpx requests as the bot's paging client would."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.paging import OpsgenieReceiver, PagerDutyReceiver, Received

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
