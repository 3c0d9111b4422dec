"""PagerDuty v3 and Opsgenie outgoing webhooks -> ProviderEvent: every documented event type, bad payloads
and their messages, signatures (with rotation), bearer tokens, Opsgenie's derived event ids and times, and
the words people read.

Payloads are built from the documented shapes: PagerDuty developer-docs docs/webhooks/01-Overview.md (the
envelope and the incident / incident_note / incident_responder / incident_status_update data types,
incident_task and incident_role_assignment for the types the bot only records), Opsgenie's outgoing Webhook
integration (action, alert{alertId, alias, tinyId, createdAt ms, updatedAt ns, username, ...}, source).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.paging.events import ProviderAction, ProviderEvent
from bot.paging.webhooks import (
    MAX_AGENT,
    MAX_DETAIL,
    BadPayload,
    Ignored,
    bearer_matches,
    headline,
    pagerduty_signed,
    parse_opsgenie,
    parse_pagerduty,
)

A = ProviderAction

# --- PagerDuty payloads (01-Overview.md) ---------------------------------------------------------------

DANA = {
    "html_url": "https://acme.pagerduty.com/users/PLH1HKV", "id": "PLH1HKV",
    "self": "https://api.pagerduty.com/users/PLH1HKV", "summary": "Dana Scully", "type": "user_reference",
}


def _user(uid: str, name: str) -> dict[str, str]:
    return {"html_url": f"https://acme.pagerduty.com/users/{uid}", "id": uid,
            "self": f"https://api.pagerduty.com/users/{uid}", "summary": name, "type": "user_reference"}


INCIDENT_REF = {
    "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2", "id": "PGR0VU2",
    "self": "https://api.pagerduty.com/incidents/PGR0VU2", "summary": "A little bump in the road",
    "type": "incident_reference",
}

INCIDENT: dict[str, Any] = {
    "id": "PGR0VU2", "type": "incident", "self": "https://api.pagerduty.com/incidents/PGR0VU2",
    "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2", "number": 2, "status": "triggered",
    "incident_key": "incident-42-database", "created_at": "2020-04-09T15:16:27Z",
    "title": "A little bump in the road", "incident_type": {"name": "major"},
    "service": {"html_url": "https://acme.pagerduty.com/services/PF9KMXH", "id": "PF9KMXH",
                "self": "https://api.pagerduty.com/services/PF9KMXH", "summary": "API Service",
                "type": "service_reference"},
    "assignees": [_user("PTUXL6G", "Eve Li")],
    "escalation_policy": {"html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE", "id": "PUS0KTE",
                          "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE", "summary": "Database",
                          "type": "escalation_policy_reference"},
    "teams": [{"html_url": "https://acme.pagerduty.com/teams/PFCVPS0", "id": "PFCVPS0",
               "self": "https://api.pagerduty.com/teams/PFCVPS0", "summary": "Engineering", "type": "team_reference"}],
    "priority": {"html_url": "https://acme.pagerduty.com/account/incident_priorities", "id": "PSO75BM",
                 "self": "https://api.pagerduty.com/priorities/PSO75BM", "summary": "P1", "type": "priority_reference"},
    "urgency": "high",
    "conference_bridge": {"conference_number": "+1 1234123412,,987654321#", "conference_url": "https://example.com"},
    "resolve_reason": None,
}

NOTE = {"incident": INCIDENT_REF, "id": "P2LA89X", "content": "I sure am glad we are using PagerDuty!",
        "trimmed": False, "type": "incident_note"}
STATUS_UPDATE = {"incident": INCIDENT_REF, "id": "P2LA89X", "message": "A fix for this incident is being developed",
                 "trimmed": False, "type": "incident_status_update"}
RESPONDER = {
    "incident": INCIDENT_REF, "user": _user("PVMGSML", "Maeve"),
    "escalation_policy": {"html_url": "https://acme.pagerduty.com/escalation_policies/PJFWPEP", "id": "PJFWPEP",
                          "self": "https://api.pagerduty.com/escalation_policies/PJFWPEP", "summary": "The Policy",
                          "type": "escalation_policy_reference"},
    "message": "Please help me make the tests pass", "state": "pending", "type": "incident_responder",
}
TASK = {"name": "Restart the primary", "description": "", "id": "PTASK01", "summary": "Restart the primary",
        "type": "incident_task", "status": "todo", "assignees": [_user("PIV35G6", "Sam Roe")],
        "incident": {**INCIDENT_REF, "summary": None}}
ROLE_ASSIGNMENT = {"type": "incident_role_assignment", "incident_role_assignments": [{
    "assignee": _user("P75B6QD", "Sam Roe"), "id": "af64b84c-137e-40c6-875c-5dd30a2afaaa",
    "incident": {**INCIDENT_REF, "summary": None}, "old_assignee": None,
    "role": {"id": "P8PQO4R", "summary": "Incident commander", "type": "role_reference"},
    "status": "active", "type": "role_assignment_reference"}]}
SERVICE = {"html_url": "https://acme.pagerduty.com/services/PF9KMXH", "id": "PF9KMXH",
           "self": "https://api.pagerduty.com/services/PF9KMXH", "summary": "testing service updates",
           "alert_creation": "create_alerts_and_incidents", "teams": [], "type": "service"}

EVENT_ID = "5ac64822-4adc-4fda-ade0-410becf0de4f"
WHEN = datetime(2020, 10, 2, 18, 45, 22, 169000, tzinfo=UTC)


def pd_event(event_type: str, data: dict[str, Any], *, agent: dict[str, Any] | None = DANA,
             **changes: Any) -> dict[str, Any]:
    event = {"id": EVENT_ID, "event_type": event_type, "resource_type": event_type.split(".")[0],
             "occurred_at": "2020-10-02T18:45:22.169Z", "agent": agent, "client": {"name": "PagerDuty"},
             "data": copy.deepcopy(data), **changes}
    return {"event": event}


def pd(event_type: str, data: dict[str, Any], **kwargs: Any) -> ProviderEvent:
    parsed = parse_pagerduty(json.dumps(pd_event(event_type, data, **kwargs)).encode())
    assert isinstance(parsed, ProviderEvent), parsed
    return parsed


def incident(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(INCIDENT), **changes}


# --- PagerDuty: events --------------------------------------------------------------------------------


@pytest.mark.parametrize(("event_type", "action"), [
    ("incident.acknowledged", A.ACKNOWLEDGED),
    ("incident.unacknowledged", A.UNACKNOWLEDGED),
    ("incident.resolved", A.RESOLVED),
    ("incident.reopened", A.REOPENED),
    ("incident.triggered", A.TRIGGERED),
    ("incident.reassigned", A.REASSIGNED),
    ("incident.escalated", A.ESCALATED),
    ("incident.delegated", A.DELEGATED),
    ("incident.priority_updated", A.PRIORITY_CHANGED),
])
def test_pagerduty_incident_data_events(event_type: str, action: ProviderAction) -> None:
    event = pd(event_type, INCIDENT)
    assert (event.provider, event.event_id, event.action, event.raw_type) == ("PagerDuty", EVENT_ID, action, event_type)
    assert (event.key, event.ref, event.link) == ("incident-42-database", "PGR0VU2",
                                                  "https://acme.pagerduty.com/incidents/PGR0VU2")
    assert event.agent == "Dana Scully"
    assert event.occurred_at == WHEN and event.occurred_at.tzinfo is UTC
    assert event.changes_state is (action in (A.ACKNOWLEDGED, A.UNACKNOWLEDGED, A.RESOLVED, A.REOPENED))


@pytest.mark.parametrize(("event_type", "data", "action", "detail"), [
    ("incident.annotated", NOTE, A.NOTE_ADDED, "I sure am glad we are using PagerDuty!"),
    ("incident.status_update_published", STATUS_UPDATE, A.STATUS_UPDATE, "A fix for this incident is being developed"),
    ("incident.responder.added", RESPONDER, A.RESPONDER_ADDED, 'Maeve ("Please help me make the tests pass")'),
    ("incident.responder.replied", {**RESPONDER, "state": "accepted"}, A.RESPONDER_REPLIED, "Maeve accepted"),
])
def test_pagerduty_reference_data_events(event_type: str, data: dict[str, Any], action: ProviderAction,
                                         detail: str) -> None:
    """Notes, status updates and responders carry data.incident (a reference): no key, the id as ref."""
    event = pd(event_type, data)
    assert (event.action, event.key, event.ref, event.detail) == (action, None, "PGR0VU2", detail)
    assert event.link == "https://acme.pagerduty.com/incidents/PGR0VU2"
    assert (event.event_id, event.raw_type, event.agent) == (EVENT_ID, event_type, "Dana Scully")


def test_pagerduty_details_name_assignees_policy_and_priority() -> None:
    two = incident(assignees=[_user("PTUXL6G", "Eve Li"), _user("PXX0001", "Sam Roe")])
    assert pd("incident.reassigned", two).detail == "Eve Li, Sam Roe"
    assert pd("incident.escalated", two, agent=None).detail == "Eve Li, Sam Roe"
    assert pd("incident.escalated", incident(assignees=[])).detail == ""
    assert pd("incident.delegated", INCIDENT).detail == "Database"
    assert pd("incident.priority_updated", INCIDENT).detail == "P1"
    assert pd("incident.priority_updated", incident(priority=None)).detail == ""
    merged = incident(resolve_reason={"type": "merge_resolve_reason",
                                      "incident": {**INCIDENT_REF, "id": "PMAIN01", "summary": "Database down"}})
    assert pd("incident.resolved", merged).detail == "merged into Database down"
    assert pd("incident.resolved", INCIDENT).detail == ""
    assert pd("incident.acknowledged", INCIDENT).detail == ""
    assert pd("incident.annotated", {**NOTE, "trimmed": True}).detail == "I sure am glad we are using PagerDuty!…"
    assert pd("incident.responder.replied", {**RESPONDER, "state": "declined"}).detail == "Maeve declined"
    assert pd("incident.responder.added", {**RESPONDER, "message": None}).detail == "Maeve"


def test_pagerduty_null_agent_and_missing_incident_key() -> None:
    """A null agent is automation (an acknowledgement timeout); an incident opened in the web app has no key."""
    event = pd("incident.unacknowledged", incident(incident_key=None), agent=None)
    assert (event.agent, event.key, event.ref) == (None, None, "PGR0VU2")


@pytest.mark.parametrize(("event_type", "data"), [
    ("incident.task.created", TASK),
    ("incident.role.assigned", ROLE_ASSIGNMENT),
    ("incident.conference_bridge.updated", {"incident": INCIDENT_REF, "conference_numbers": [],
                                            "conference_url": "https://example.com",
                                            "type": "incident_conference_bridge"}),
    ("incident.service_updated", INCIDENT),
    ("incident.something_new", {"type": "something_new"}),
])
def test_pagerduty_other_incident_events_are_recorded(event_type: str, data: dict[str, Any]) -> None:
    event = pd(event_type, data)
    assert (event.action, event.raw_type, event.detail, event.key) == (A.OTHER, event_type, "", None)
    assert event.ref == (None if event_type == "incident.something_new" else "PGR0VU2")
    assert not event.changes_state


@pytest.mark.parametrize("event_type", ["service.updated", "service.created", "service.deleted", "pagey.ping"])
def test_pagerduty_non_incident_events_are_ignored(event_type: str) -> None:
    body = pd_event(event_type, SERVICE, agent=None)
    del body["event"]["occurred_at"]  # not needed to say that it is ignored
    parsed = parse_pagerduty(json.dumps(body).encode())
    assert isinstance(parsed, Ignored) and event_type in parsed.reason


@pytest.mark.parametrize(("occurred_at", "expected"), [
    ("2020-10-02T18:45:22.169Z", WHEN),
    ("2020-10-02T20:45:22.169+02:00", WHEN),
    ("2020-10-02T13:45:22.169-05:00", WHEN),
    ("2020-10-02T18:45:22Z", WHEN.replace(microsecond=0)),
])
def test_pagerduty_times_are_utc(occurred_at: str, expected: datetime) -> None:
    event = pd("incident.acknowledged", INCIDENT, occurred_at=occurred_at)
    assert event.occurred_at == expected and event.occurred_at.utcoffset() == UTC.utcoffset(None)


def _without(path: str) -> bytes:
    body = pd_event("incident.acknowledged", INCIDENT)
    *parents, last = path.split(".")
    node = body
    for name in parents:
        node = node[name]
    del node[last]
    return json.dumps(body).encode()


def _set(name: str, value: Any) -> bytes:
    body = pd_event("incident.acknowledged", INCIDENT)
    body["event"][name] = value
    return json.dumps(body).encode()


def _with(event_type: str = "incident.acknowledged", data: dict[str, Any] = INCIDENT, **changes: Any) -> bytes:
    return json.dumps(pd_event(event_type, data, **changes)).encode()


def test_an_opsgenie_event_without_its_time_takes_the_time_it_was_received() -> None:
    """Opsgenie drops what it gets a 4xx for: an older payload with no updatedAt is taken, at receipt."""
    received = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    body = json.dumps(og_payload("EscalateNext", updatedAt=None)).encode()
    event = parse_opsgenie(body, received_at=received)
    assert isinstance(event, ProviderEvent) and event.occurred_at == received
    assert parse_opsgenie(body, received_at=received + timedelta(seconds=5)).event_id == event.event_id


@pytest.mark.parametrize(("body", "message"), [
    (b"", "the body is not JSON"),
    (b"event=incident.acknowledged", "the body is not JSON"),
    (b'{"event": \xff}', "the body is not JSON"),
    (b"[1, 2]", "the body must be an object; got an array"),
    (b'"hello"', "the body must be an object; got the string 'hello'"),
    (b"{}", 'event is missing; expected a PagerDuty v3 webhook: {"event"'),
    (b'{"event": "incident.acknowledged"}', "event must be an object; got the string 'incident.acknowledged'"),
    (_without("event.event_type"), "event.event_type is missing; expected a string such as"),
    (_set("event_type", 7), "event.event_type must be a non-empty string; got a number (7)"),
    (_without("event.id"), "event.id is missing; expected the event's unique id"),
    (_with(id=""), "event.id must be a non-empty string; got an empty string"),
    (_with(id="x" * 129), "event.id is 129 characters long; expected at most 128"),
    (_without("event.occurred_at"), "event.occurred_at is missing; expected an ISO 8601 time with a zone"),
    (_with(occurred_at="yesterday"), "event.occurred_at is not an ISO 8601 time with a zone, such as"),
    (_with(occurred_at="2020-10-02T18:45:22"), "event.occurred_at has no time zone"),
    (_with(occurred_at=1601664322), "event.occurred_at must be a non-empty string; got a number"),
    (_with(agent="Dana Scully"), "event.agent must be an object; got the string 'Dana Scully'"),
    (_with(agent={**DANA, "summary": 3}), "event.agent.summary must be a string or null; got a number (3)"),
    (_without("event.data"), "event.data is missing"),
    (_set("data", []), "event.data must be an object; got an array"),
    (_with(data={**INCIDENT, "type": "incident_note"}),
     "incident.acknowledged carries event.data of type 'incident'; got the string 'incident_note'"),
    (_with("incident.annotated", INCIDENT), "incident.annotated carries event.data of type 'incident_note'; got"),
    (_with("incident.annotated", {**NOTE, "incident": None}), "event.data.incident is missing; expected an incident_"),
    (_with("incident.annotated", {**NOTE, "incident": {**INCIDENT_REF, "id": 12}}),
     "event.data.incident.id must be a non-empty string; got a number (12)"),
    (_with(data={**INCIDENT, "id": None}), "event.data.id is missing; expected the incident id"),
    (_with(data={**INCIDENT, "incident_key": 42}), "event.data.incident_key must be a string or null; got a number"),
    (_with("incident.reassigned", {**INCIDENT, "assignees": {"summary": "Eve"}}),
     "event.data.assignees must be an array of references"),
    (_with("incident.reassigned", {**INCIDENT, "assignees": ["Eve Li"]}),
     "event.data.assignees[0] must be an object; got the string 'Eve Li'"),
    (_with("incident.annotated", {**NOTE, "content": ["a"]}), "event.data.content must be a string or null"),
])
def test_pagerduty_bad_payloads_say_what_was_wrong(body: bytes, message: str) -> None:
    with pytest.raises(BadPayload) as raised:
        parse_pagerduty(body)
    assert message in str(raised.value)


# --- PagerDuty: signatures (04-Signatures.md) ---------------------------------------------------------


def _sign(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_pagerduty_signature() -> None:
    body = _with()
    assert pagerduty_signed("s3cret", body, _sign("s3cret", body))
    assert not pagerduty_signed("other", body, _sign("s3cret", body))
    assert not pagerduty_signed("s3cret", body + b" ", _sign("s3cret", body))  # the raw body, unaltered
    assert not pagerduty_signed("s3cret", body, None)
    assert not pagerduty_signed("s3cret", body, "")
    assert not pagerduty_signed("", body, _sign("", body))  # no secret configured: nothing verifies
    assert not pagerduty_signed("s3cret", body, _sign("s3cret", body)[3:])  # no version: not a v1 signature
    assert not pagerduty_signed("s3cret", body, "v1=")
    assert not pagerduty_signed("s3cret", body, "v1=héllo")


def test_pagerduty_signature_during_rotation_accepts_either_secret() -> None:
    body = json.dumps(pd_event("incident.resolved", INCIDENT, agent={**DANA, "summary": "Zoë Ångström"})).encode()
    header = f"{_sign('old-secret', body)},{_sign('new-secret', body)}"
    assert pagerduty_signed("old-secret", body, header)
    assert pagerduty_signed("new-secret", body, header)
    assert pagerduty_signed("new-secret", body, header.replace(",", ", "))
    assert not pagerduty_signed("third-secret", body, header)


def test_pagerduty_signature_ignores_unknown_versions() -> None:
    body = _with()
    digest = _sign("s3cret", body)[3:]
    assert not pagerduty_signed("s3cret", body, f"v2={digest}")
    assert pagerduty_signed("s3cret", body, f"v2=abc,v1={digest}")
    assert pagerduty_signed("s3cret", body, f"v1={digest.upper()}")  # Base16 either case


# --- Opsgenie payloads ---------------------------------------------------------------------------------

UPDATED_NS = 1502709956288000110
UPDATED = datetime(2017, 8, 14, 11, 25, 56, 288000, tzinfo=UTC)


def og_payload(action: str, **alert_changes: Any) -> dict[str, Any]:
    return {
        "action": action,
        "alert": {"alertId": "ec03dad6-62c8-4c94-b38b-d88f398e900f", "message": "Database down",
                  "tags": ["incident-bot"], "tinyId": "2", "entity": "", "alias": "incident-42-database",
                  "createdAt": 1502709956288, "updatedAt": UPDATED_NS, "username": "dana@example.com",
                  "userId": "8d43133c-a002-4e95-bf2b-2d6f95e47c96", **alert_changes},
        "source": {"name": "", "type": "web"},
        "integrationName": "incident-bot", "integrationId": "daca46c6-e26b-4dda-8f8a-21f6db7eeaef",
        "integrationType": "Webhook",
    }


def og(action: str, **alert_changes: Any) -> ProviderEvent:
    parsed = parse_opsgenie(json.dumps(og_payload(action, **alert_changes)).encode())
    assert isinstance(parsed, ProviderEvent), parsed
    return parsed


@pytest.mark.parametrize(("name", "action"), [
    ("Create", A.TRIGGERED), ("Acknowledge", A.ACKNOWLEDGED), ("UnAcknowledge", A.UNACKNOWLEDGED),
    ("Close", A.RESOLVED), ("Delete", A.RESOLVED), ("AddNote", A.NOTE_ADDED),
    ("AssignOwnership", A.REASSIGNED), ("TakeOwnership", A.REASSIGNED),
    ("Escalate", A.ESCALATED), ("EscalateNext", A.ESCALATED),
    ("AddResponder", A.RESPONDER_ADDED), ("AddTeam", A.RESPONDER_ADDED),
    ("UpdatePriority", A.PRIORITY_CHANGED), ("Snooze", A.SNOOZED),
    ("SnoozeEnded", A.OTHER), ("CustomAction", A.OTHER), ("AddTags", A.OTHER), ("RemoveTags", A.OTHER),
    ("UpdateMessage", A.OTHER), ("UpdateDescription", A.OTHER), ("AddDetails", A.OTHER),
])
def test_opsgenie_actions(name: str, action: ProviderAction) -> None:
    event = og(name)
    assert (event.provider, event.action, event.raw_type) == ("Opsgenie", action, name)
    assert (event.key, event.ref, event.agent) == ("incident-42-database", "ec03dad6-62c8-4c94-b38b-d88f398e900f",
                                                   "dana@example.com")
    assert event.occurred_at == UPDATED and event.link is None
    assert len(event.event_id) == 64


def test_opsgenie_details() -> None:
    assert og("AddNote", note="Restarting the primary").detail == "Restarting the primary"
    assert og("AssignOwnership", owner="eve@example.com").detail == "eve@example.com"
    assert og("AddTeam", team="database").detail == "database"
    assert og("UpdatePriority", priority="P1").detail == "P1"
    assert og("AddTags", addedTags="db,sev1").detail == "db,sev1"
    assert og("RemoveTags", removedTags=["db", "sev1"]).detail == "db, sev1"
    assert og("Acknowledge", note="ignored for this action").detail == ""
    body = og_payload("Escalate")
    body["escalationName"] = "database_escalation"
    assert json_event(body).detail == "database_escalation"
    body["escalationNotify"] = {"name": "eve@example.com", "type": "default", "entity": "user"}
    assert json_event(body).detail == "eve@example.com"


def json_event(body: dict[str, Any]) -> ProviderEvent:
    parsed = parse_opsgenie(json.dumps(body).encode())
    assert isinstance(parsed, ProviderEvent)
    return parsed


def test_opsgenie_agent_falls_back_to_the_source_name() -> None:
    body = og_payload("Close")
    del body["alert"]["username"]
    body["source"] = {"name": "Nagios", "type": "API"}
    assert json_event(body).agent == "Nagios"
    body["alert"]["username"] = ""
    assert json_event(body).agent == "Nagios"
    body["source"] = {"name": "", "type": "web"}
    assert json_event(body).agent is None
    del body["source"]
    assert json_event(body).agent is None
    body = og_payload("Close", alias=None)
    assert json_event(body).key is None


def test_opsgenie_event_ids_repeat_for_a_redelivery_and_differ_otherwise() -> None:
    body = json.dumps(og_payload("Acknowledge")).encode()
    first, again = parse_opsgenie(body), parse_opsgenie(body)
    assert isinstance(first, ProviderEvent) and isinstance(again, ProviderEvent)
    assert first.event_id == again.event_id
    reformatted = json.dumps(og_payload("Acknowledge"), indent=2, sort_keys=True).encode()
    assert json_event(json.loads(reformatted)).event_id == first.event_id
    assert og("Acknowledge", updatedAt=UPDATED_NS + 1).event_id != first.event_id
    assert og("UnAcknowledge").event_id != first.event_id
    assert og("Acknowledge", username="eve@example.com").event_id != first.event_id
    assert og("Acknowledge", alertId="another-alert").event_id != first.event_id
    assert og("Acknowledge", note="a note is not part of the identity").event_id == first.event_id


@pytest.mark.parametrize("updated_at", [UPDATED_NS, 1502709956288000, 1502709956288])
def test_opsgenie_times_in_nanoseconds_microseconds_or_milliseconds(updated_at: int) -> None:
    event = og("Acknowledge", updatedAt=updated_at)
    assert event.occurred_at == UPDATED and event.occurred_at.tzinfo is UTC


@pytest.mark.parametrize(("body", "message"), [
    (b"", "the body is not JSON"),
    (b"action=Close", "the body is not JSON"),
    (b"[]", "the body must be an object; got an array; expected an Opsgenie outgoing-webhook payload"),
    (json.dumps({k: v for k, v in og_payload("Close").items() if k != "action"}).encode(),
     'action is missing; expected the alert action, such as "Acknowledge"'),
    (json.dumps({**og_payload("Close"), "action": ""}).encode(), "action must be a non-empty string"),
    (json.dumps({**og_payload("Close"), "action": ["Close"]}).encode(), "action must be a non-empty string; got an"),
    (json.dumps({k: v for k, v in og_payload("Close").items() if k != "alert"}).encode(),
     "alert is missing; expected the alert {alertId"),
    (json.dumps({**og_payload("Close"), "alert": "ec03dad6"}).encode(), "alert must be an object; got the string"),
    (json.dumps(og_payload("Close", alertId=None)).encode(), "alert.alertId is missing"),
    (json.dumps(og_payload("Close", alertId=7)).encode(), "alert.alertId must be a non-empty string; got a number"),
    (json.dumps(og_payload("Close", alias=7)).encode(), "alert.alias must be a string or null; got a number (7)"),
    (json.dumps(og_payload("Close", updatedAt=None)).encode(), "alert.updatedAt is missing; expected epoch nanosec"),
    (json.dumps(og_payload("Close", updatedAt="1502709956288000110")).encode(),
     "alert.updatedAt must be epoch nanoseconds (an integer"),
    (json.dumps(og_payload("Close", updatedAt=1.5e18)).encode(), "alert.updatedAt must be epoch nanoseconds"),
    (json.dumps(og_payload("Close", updatedAt=True)).encode(), "alert.updatedAt must be epoch nanoseconds"),
    (json.dumps(og_payload("Close", updatedAt=1502709956)).encode(), "alert.updatedAt is too small"),
    (json.dumps(og_payload("Close", updatedAt=10**30)).encode(), "alert.updatedAt is out of range"),
    (json.dumps(og_payload("Close", username=["dana"])).encode(), "alert.username must be a string or null"),
    (json.dumps({**og_payload("Close"), "source": "web"}).encode(), "source must be an object; got the string"),
    (json.dumps(og_payload("AddNote", note={"text": "x"})).encode(), "alert.note must be a string or null; got an"),
])
def test_opsgenie_bad_payloads_say_what_was_wrong(body: bytes, message: str) -> None:
    with pytest.raises(BadPayload) as raised:
        parse_opsgenie(body)
    assert message in str(raised.value)


# --- bearer tokens -------------------------------------------------------------------------------------


def test_bearer_token() -> None:
    assert bearer_matches("t0ken", "Bearer t0ken")
    assert bearer_matches("t0ken", "bearer t0ken")
    assert bearer_matches("t0ken", "BEARER  t0ken ")
    assert not bearer_matches("t0ken", "Basic t0ken")  # wrong scheme
    assert not bearer_matches("t0ken", "t0ken")  # no scheme
    assert not bearer_matches("t0ken", "Bearer t0ken2")  # wrong token
    assert not bearer_matches("t0ken", "Bearer T0KEN")  # tokens are case-sensitive
    assert not bearer_matches("t0ken", "Bearer")
    assert not bearer_matches("t0ken", "")
    assert not bearer_matches("t0ken", None)  # missing
    assert not bearer_matches("", "Bearer ")  # no token configured: nothing matches
    assert not bearer_matches("t0ken", "Bearer tökén")


# --- words for people ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("event", "words"), [
    (lambda: pd("incident.acknowledged", INCIDENT), "Dana Scully acknowledged it in PagerDuty"),
    (lambda: pd("incident.unacknowledged", INCIDENT), "Dana Scully unacknowledged it in PagerDuty"),
    (lambda: pd("incident.unacknowledged", INCIDENT, agent=None), "the acknowledgement timed out in PagerDuty"),
    (lambda: pd("incident.resolved", INCIDENT), "Dana Scully resolved it in PagerDuty"),
    (lambda: pd("incident.resolved", INCIDENT, agent=None), "PagerDuty resolved it"),
    (lambda: pd("incident.resolved", incident(resolve_reason={"type": "merge_resolve_reason",
                                                              "incident": {**INCIDENT_REF, "summary": "DB down"}})),
     "Dana Scully resolved it in PagerDuty (merged into DB down)"),
    (lambda: pd("incident.reopened", INCIDENT), "Dana Scully reopened it in PagerDuty"),
    (lambda: pd("incident.triggered", INCIDENT), "PagerDuty opened it"),
    (lambda: pd("incident.reassigned", INCIDENT), "Dana Scully reassigned it to Eve Li in PagerDuty"),
    (lambda: pd("incident.escalated", INCIDENT, agent=None), "PagerDuty escalated it to Eve Li"),
    (lambda: pd("incident.escalated", INCIDENT), "Dana Scully escalated it to Eve Li in PagerDuty"),
    (lambda: pd("incident.delegated", INCIDENT), "Dana Scully delegated it to Database in PagerDuty"),
    (lambda: pd("incident.priority_updated", INCIDENT), "Dana Scully set the priority to P1 in PagerDuty"),
    (lambda: pd("incident.priority_updated", incident(priority=None)), "Dana Scully removed the priority in PagerDuty"),
    (lambda: pd("incident.annotated", NOTE),
     "Dana Scully added a note in PagerDuty: I sure am glad we are using PagerDuty!"),
    (lambda: pd("incident.annotated", NOTE, agent=None),
     "a note was added in PagerDuty: I sure am glad we are using PagerDuty!"),
    (lambda: pd("incident.responder.added", RESPONDER),
     'Dana Scully added a responder in PagerDuty: Maeve ("Please help me make the tests pass")'),
    (lambda: pd("incident.responder.replied", {**RESPONDER, "state": "accepted"}, agent=_user("PVMGSML", "Maeve")),
     "Maeve accepted the request to respond in PagerDuty"),
    (lambda: pd("incident.responder.replied", {**RESPONDER, "state": "awaiting"}),
     "Maeve replied to the request to respond in PagerDuty"),
    (lambda: pd("incident.status_update_published", STATUS_UPDATE),
     "Dana Scully posted a status update in PagerDuty: A fix for this incident is being developed"),
    (lambda: pd("incident.task.created", TASK), "PagerDuty reported incident.task.created by Dana Scully"),
    (lambda: og("Close"), "dana@example.com closed it in Opsgenie"),
    (lambda: og("Delete"), "dana@example.com deleted it in Opsgenie"),
    (lambda: og("Acknowledge"), "dana@example.com acknowledged it in Opsgenie"),
    (lambda: og("Create"), "Opsgenie opened it"),
    (lambda: og("AddNote", note="On it"), "dana@example.com added a note in Opsgenie: On it"),
    (lambda: og("TakeOwnership", owner="dana@example.com"), "dana@example.com took ownership of it in Opsgenie"),
    (lambda: og("AssignOwnership", owner="eve@example.com"),
     "dana@example.com assigned it to eve@example.com in Opsgenie"),
    (lambda: og("AddTeam", team="database"), "dana@example.com added a responder in Opsgenie: database"),
    (lambda: og("Snooze"), "dana@example.com snoozed it in Opsgenie"),
    (lambda: og("AddTags", addedTags="db"), "Opsgenie reported AddTags by dana@example.com: db"),
])
def test_headlines(event: Any, words: str) -> None:
    assert headline(event()) == words


def test_long_and_multi_line_text_is_kept_to_one_sane_line() -> None:
    note = pd("incident.annotated", {**NOTE, "content": "first line\n\n\tsecond\x07 line " + "x" * 5000},
              agent={**DANA, "summary": "D" * 1000})
    assert note.detail.startswith("first line second line xxx") and note.detail.endswith("…")
    assert len(note.detail) == MAX_DETAIL
    assert note.agent is not None and len(note.agent) == MAX_AGENT
    assert "\n" not in headline(note) and "\x07" not in headline(note)
    assert og("AddNote", note="short\r\nnote").detail == "short note"
    assert pd("incident.acknowledged", INCIDENT, agent={**DANA, "summary": "  "}).agent is None
