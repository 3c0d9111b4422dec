"""What PagerDuty and Opsgenie tell the bot about its alerts: their webhook payloads, as `ProviderEvent`s.

Pure functions (no I/O): the HTTP handler checks the credential (`pagerduty_signed`, `bearer_matches`),
then parses the raw body (`parse_pagerduty`, `parse_opsgenie`). A payload that is not the provider's kind
raises `BadPayload`, whose text says what was wrong and what was expected (answered in a 400); a well-formed
event the bot has no use for comes back as `Ignored`.

Sources:
- PagerDuty v3 webhooks: developer-docs docs/webhooks/01-Overview.md (payload, event types, the data types
  incident / incident_note / incident_responder / incident_status_update), 02-Behavior.md (at-least-once
  delivery, no order promised beyond one incident), 04-Signatures.md (X-PagerDuty-Signature).
- Opsgenie's outgoing Webhook integration: {action, alert{alertId, alias, username, createdAt (epoch ms),
  updatedAt (epoch ns), note?, owner?, team?, ...}, source{name, type}, integrationName, integrationId}.
  It sends no event id and no signature; the integration is configured with an Authorization header.

`headline(event)` gives plain-text words for people ("Dana Scully acknowledged it in PagerDuty"); escaping
for Slack is the caller's business.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.json_shapes import shown
from bot.paging.events import ProviderAction, ProviderEvent

PAGERDUTY = "PagerDuty"
OPSGENIE = "Opsgenie"

MAX_AGENT = 100  # characters of a name shown to people
MAX_DETAIL = 500  # characters of a note, message or name list shown to people
MAX_EVENT_ID = 128  # page_events.event_id
MAX_REF = 64  # page_events.ref
MAX_KEY = 512  # Opsgenie's alias limit (PagerDuty's dedup_key is 255)


class BadPayload(ValueError):
    """The body is not the provider's kind of payload; the text says what was wrong and what was expected."""


@dataclass(frozen=True)
class Ignored:
    """A well-formed event the bot does not act on (service.updated, pagey.ping, ...)."""

    reason: str


# --- credentials ---------------------------------------------------------------------------------------


def pagerduty_signed(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` (X-PagerDuty-Signature) holds a v1 signature of the raw `body` under `secret`.

    The header carries one or more comma-separated "v1=<hex HMAC-SHA256(secret, body)>", several while a
    secret is being rotated; other versions are ignored and one match is enough (04-Signatures.md). Each
    candidate is compared in constant time. An empty secret never verifies anything.
    """
    if not secret or not header:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    matched = False
    for part in header.split(","):
        version, sep, signature = part.strip().partition("=")
        if sep and version == "v1":
            # Compare every candidate (no early exit); bytes, since a header may hold non-ASCII text.
            matched |= hmac.compare_digest(expected, signature.strip().lower().encode("utf-8", "replace"))
    return matched


def bearer_matches(token: str, header: str | None) -> bool:
    """Whether `header` (Authorization) is "Bearer <token>": scheme case-insensitive (RFC 7235), token
    compared in constant time. An empty token never matches."""
    if not token or not header:
        return False
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credential.strip().encode("utf-8", "replace"), token.encode())


# --- PagerDuty -----------------------------------------------------------------------------------------

_PD_ACTIONS: dict[str, tuple[ProviderAction, str]] = {
    # event_type: (action, the data.type 01-Overview.md documents for it)
    "incident.acknowledged": (ProviderAction.ACKNOWLEDGED, "incident"),
    "incident.unacknowledged": (ProviderAction.UNACKNOWLEDGED, "incident"),
    "incident.resolved": (ProviderAction.RESOLVED, "incident"),
    "incident.reopened": (ProviderAction.REOPENED, "incident"),
    "incident.triggered": (ProviderAction.TRIGGERED, "incident"),
    "incident.reassigned": (ProviderAction.REASSIGNED, "incident"),
    "incident.escalated": (ProviderAction.ESCALATED, "incident"),
    "incident.delegated": (ProviderAction.DELEGATED, "incident"),
    "incident.priority_updated": (ProviderAction.PRIORITY_CHANGED, "incident"),
    "incident.annotated": (ProviderAction.NOTE_ADDED, "incident_note"),
    "incident.responder.added": (ProviderAction.RESPONDER_ADDED, "incident_responder"),
    "incident.responder.replied": (ProviderAction.RESPONDER_REPLIED, "incident_responder"),
    "incident.status_update_published": (ProviderAction.STATUS_UPDATE, "incident_status_update"),
}

_PD_SHAPE = 'a PagerDuty v3 webhook: {"event": {"id", "event_type", "occurred_at", "agent", "data"}}'


def parse_pagerduty(body: bytes) -> ProviderEvent | Ignored:
    """One PagerDuty v3 webhook body -> a ProviderEvent, or Ignored for a non-incident event.

    Every `incident.*` event type is an event: the thirteen of _PD_ACTIONS are mapped, any other (tasks,
    workflows, custom fields, ...) is OTHER, recorded and not acted on. key = data.incident_key for the
    `incident` data type, None for the others (they carry data.incident, an incident_reference); ref = the
    incident id; agent = event.agent.summary (None when agent is null: automation such as an
    acknowledgement timeout). Raises BadPayload naming the field that was wrong.
    """
    root = _object(_json(body, _PD_SHAPE), "the body", _PD_SHAPE)
    event = _object(root.get("event"), "event", _PD_SHAPE)
    event_type = _text(event.get("event_type"), "event.event_type", 'a string such as "incident.acknowledged"')
    if event_type.split(".", 1)[0] != "incident":
        return Ignored(f"PagerDuty {event_type} is not about an incident")
    event_id = _text(event.get("id"), "event.id", "the event's unique id (a string)", limit=MAX_EVENT_ID)
    occurred_at = _iso_time(event.get("occurred_at"), "event.occurred_at")
    agent = _agent(event.get("agent"))
    data = _object(event.get("data"), "event.data", "the incident data the event_type documents")
    action, data_type = _PD_ACTIONS.get(event_type, (ProviderAction.OTHER, ""))
    if data_type and data.get("type") != data_type:
        raise BadPayload(f"{event_type} carries event.data of type {data_type!r}; got {shown(data.get('type'))}")

    key: str | None = None
    ref: str | None
    if data_type == "incident":
        ref = _text(data.get("id"), "event.data.id", "the incident id (a string)", limit=MAX_REF)
        key = _optional_text(data.get("incident_key"), "event.data.incident_key", limit=MAX_KEY) or None
        link = _optional_text(data.get("html_url"), "event.data.html_url")
    elif data_type:
        incident = _object(data.get("incident"), "event.data.incident", "an incident_reference {id, html_url}")
        ref = _text(incident.get("id"), "event.data.incident.id", "the incident id (a string)", limit=MAX_REF)
        link = _optional_text(incident.get("html_url"), "event.data.incident.html_url")
    else:
        ref, link = _loose_incident(data)
    return ProviderEvent(
        provider=PAGERDUTY, event_id=event_id, action=action, occurred_at=occurred_at, key=key, ref=ref,
        agent=agent, detail=_clip(_pd_detail(action, data), MAX_DETAIL), link=link, raw_type=event_type,
    )


def _agent(value: Any) -> str | None:
    if value is None:
        return None
    agent = _object(value, "event.agent", "a reference {id, summary, type} or null")
    return _clip(_optional_text(agent.get("summary"), "event.agent.summary"), MAX_AGENT) or None


def _pd_detail(action: ProviderAction, data: Mapping[str, Any]) -> str:
    """What else to say, from the documented data types (01-Overview.md, Event Data Types)."""
    if action in (ProviderAction.REASSIGNED, ProviderAction.ESCALATED):
        return ", ".join(_summaries(data.get("assignees"), "event.data.assignees"))
    if action is ProviderAction.DELEGATED:
        return _summary(data.get("escalation_policy"), "event.data.escalation_policy")
    if action is ProviderAction.PRIORITY_CHANGED:
        return _summary(data.get("priority"), "event.data.priority")  # null: the priority was removed
    if action is ProviderAction.RESOLVED:
        reason = data.get("resolve_reason")  # null, or {type: merge_resolve_reason, incident: reference}
        if isinstance(reason, Mapping):
            into = _summary(reason.get("incident"), "event.data.resolve_reason.incident")
            return f"merged into {into}" if into else "merged into another incident"
        return ""
    if action is ProviderAction.NOTE_ADDED:
        content = _optional_text(data.get("content"), "event.data.content") or ""
        return content + ("…" if content and data.get("trimmed") is True else "")
    if action is ProviderAction.STATUS_UPDATE:
        message = _optional_text(data.get("message"), "event.data.message") or ""
        return message + ("…" if message and data.get("trimmed") is True else "")
    if action is ProviderAction.RESPONDER_ADDED:
        name = _summary(data.get("user"), "event.data.user") or "a responder"
        request = _one_line(_optional_text(data.get("message"), "event.data.message"))
        return f'{name} ("{request}")' if request else name
    if action is ProviderAction.RESPONDER_REPLIED:
        name = _summary(data.get("user"), "event.data.user") or "a responder"
        state = _optional_text(data.get("state"), "event.data.state")
        return f"{name} {state if state in ('accepted', 'declined') else 'replied to'}"
    return ""


def _summaries(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadPayload(f"{where} must be an array of references {{id, summary}}; got {shown(value)}")
    names = [_summary(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return [name for name in names if name]


def _summary(value: Any, where: str) -> str:
    """A reference's summary (its name), "" when the reference is null or has none."""
    if value is None:
        return ""
    reference = _object(value, where, "a reference {id, summary, type} or null")
    return _optional_text(reference.get("summary"), f"{where}.summary") or ""


def _loose_incident(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The incident an undocumented-to-us incident.* event is about, when it says so in a known way: its
    own data (type incident), data.incident (most data types) or the first incident_role_assignments item."""
    candidates: list[Any] = [data if data.get("type") == "incident" else data.get("incident")]
    assignments = data.get("incident_role_assignments")
    if isinstance(assignments, list) and assignments and isinstance(assignments[0], Mapping):
        candidates.append(assignments[0].get("incident"))
    for incident in candidates:
        if isinstance(incident, Mapping):
            ref, link = incident.get("id"), incident.get("html_url")
            if isinstance(ref, str) and ref and len(ref) <= MAX_REF:
                return ref, link if isinstance(link, str) and link else None
    return None, None


def _iso_time(value: Any, where: str) -> datetime:
    expected = 'an ISO 8601 time with a zone, such as "2020-10-02T18:45:22.169Z"'
    text = _text(value, where, expected)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadPayload(f"{where} is not {expected}; got {shown(text)}") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise BadPayload(f"{where} has no time zone; expected {expected}; got {shown(text)}")
    return when.astimezone(UTC)


# --- Opsgenie ------------------------------------------------------------------------------------------

_OG_ACTIONS: dict[str, ProviderAction] = {
    "Create": ProviderAction.TRIGGERED,
    "Acknowledge": ProviderAction.ACKNOWLEDGED,
    "UnAcknowledge": ProviderAction.UNACKNOWLEDGED,
    "Close": ProviderAction.RESOLVED,
    "Delete": ProviderAction.RESOLVED,  # a deleted alert is as finished as a closed one
    "AddNote": ProviderAction.NOTE_ADDED,
    "AssignOwnership": ProviderAction.REASSIGNED,
    "TakeOwnership": ProviderAction.REASSIGNED,
    "Escalate": ProviderAction.ESCALATED,
    "EscalateNext": ProviderAction.ESCALATED,
    "AddResponder": ProviderAction.RESPONDER_ADDED,
    "AddTeam": ProviderAction.RESPONDER_ADDED,
    "UpdatePriority": ProviderAction.PRIORITY_CHANGED,
    "Snooze": ProviderAction.SNOOZED,
}

_OG_SHAPE = ('an Opsgenie outgoing-webhook payload: {"action": "Acknowledge", '
             '"alert": {"alertId", "alias", "updatedAt", "username"}, "source": {"name", "type"}}')

# Epoch values by magnitude: today is ~1.7e18 ns, ~1.7e15 µs, ~1.7e12 ms; 1e11 ms is 1973.
_NS_FROM, _US_FROM, _MS_FROM = 10**17, 10**14, 10**11


def parse_opsgenie(body: bytes, received_at: datetime | None = None) -> ProviderEvent | Ignored:
    """One Opsgenie outgoing-webhook body -> a ProviderEvent (any action not in _OG_ACTIONS is OTHER;
    nothing is Ignored today: every action is about an alert).

    key = alert.alias, ref = alert.alertId, agent = alert.username (else source.name), occurred_at =
    alert.updatedAt (epoch nanoseconds; milli- and microseconds are told apart by magnitude). Opsgenie
    sends no event id and a redelivery repeats the body exactly, so event_id is the sha256 of action,
    alertId, updatedAt and username. Some older payloads (an Escalate's) carry no updatedAt: with
    `received_at` (when the bot got it) that stands in, rather than refusing what Opsgenie would then
    drop for good (a 4xx is not retried). Raises BadPayload naming the field that was wrong.
    """
    root = _object(_json(body, _OG_SHAPE), "the body", _OG_SHAPE)
    action_name = _text(root.get("action"), "action", 'the alert action, such as "Acknowledge"', limit=64)
    alert = _object(root.get("alert"), "alert", "the alert {alertId, alias, updatedAt, username, ...}")
    ref = _text(alert.get("alertId"), "alert.alertId", "the alert's id (a string)", limit=MAX_REF)
    key = _optional_text(alert.get("alias"), "alert.alias", limit=MAX_KEY) or None
    updated_at = alert.get("updatedAt")
    occurred_at = received_at if updated_at is None and received_at is not None else _epoch(updated_at, "alert.updatedAt")
    username = _optional_text(alert.get("username"), "alert.username")
    source = root.get("source")
    source_name = None
    if source is not None:
        source_name = _optional_text(_object(source, "source", "{name, type}").get("name"), "source.name")
    agent = _clip(username or "", MAX_AGENT) or _clip(source_name or "", MAX_AGENT) or None
    action = _OG_ACTIONS.get(action_name, ProviderAction.OTHER)
    identity = json.dumps([action_name, ref, updated_at, username], separators=(",", ":"))
    return ProviderEvent(
        provider=OPSGENIE, event_id=hashlib.sha256(identity.encode()).hexdigest(), action=action,
        occurred_at=occurred_at, key=key, ref=ref, agent=agent,
        detail=_clip(_og_detail(action_name, root, alert), MAX_DETAIL), link=None, raw_type=action_name,
    )


def _og_detail(action_name: str, root: Mapping[str, Any], alert: Mapping[str, Any]) -> str:
    """What else to say, from the fields Opsgenie adds to the alert for the action."""
    field = {
        "AddNote": "note", "AssignOwnership": "owner", "TakeOwnership": "owner", "AddTeam": "team",
        "UpdatePriority": "priority", "AddTags": "addedTags", "RemoveTags": "removedTags",
        "UpdateMessage": "message", "AddRecipient": "recipient",
    }.get(action_name)
    if field:
        value = alert.get(field)
        if isinstance(value, list):  # tags may come as a list as well as a comma-separated string
            return ", ".join(str(item) for item in value if isinstance(item, str))
        return _optional_text(value, f"alert.{field}") or ""
    if action_name in ("Escalate", "EscalateNext"):
        notified = root.get("escalationNotify")  # who the escalation notified, when Opsgenie says
        name = notified.get("name") if isinstance(notified, Mapping) else None
        escalation = root.get("escalationName")
        return name if isinstance(name, str) else escalation if isinstance(escalation, str) else ""
    return ""


def _epoch(value: Any, where: str) -> datetime:
    expected = "epoch nanoseconds (an integer such as 1502709956288000110; milliseconds are accepted)"
    if value is None:
        raise BadPayload(f"{where} is missing; expected {expected}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadPayload(f"{where} must be {expected}; got {shown(value)}")
    if value >= _NS_FROM:
        seconds, rest = divmod(value, 10**9)
        micros = rest // 1000
    elif value >= _US_FROM:
        seconds, micros = divmod(value, 10**6)
    elif value >= _MS_FROM:
        seconds, millis = divmod(value, 1000)
        micros = millis * 1000
    else:
        raise BadPayload(f"{where} is too small to be {expected}; got {value}")
    try:
        return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)
    except (OverflowError, OSError, ValueError):
        raise BadPayload(f"{where} is out of range for {expected}; got {value}") from None


# --- words for people ----------------------------------------------------------------------------------

_PAST = {"Close": "closed", "Delete": "deleted"}  # Opsgenie's words for RESOLVED


def headline(event: ProviderEvent) -> str:
    """Plain-text words for what happened, e.g. "Dana Scully acknowledged it in PagerDuty",
    "PagerDuty escalated it to Eve Li", "the acknowledgement timed out in PagerDuty",
    "dana@example.com closed it in Opsgenie", "Dana Scully added a note in PagerDuty: <note>".
    No Slack escaping here: whoever shows it escapes it."""
    where, who, detail = event.provider, event.agent, event.detail
    to = f" to {detail}" if detail else ""

    def did(verb: str, rest: str = "") -> str:
        """"<who> <verb> it<rest> in <where>", or "<where> <verb> it<rest>" when nobody is named."""
        return f"{who} {verb} it{rest} in {where}" if who else f"{where} {verb} it{rest}"

    def told(active: str, passive: str) -> str:
        """"<who> <active> in <where>[: <detail>]", or "<passive> in <where>[: <detail>]"."""
        head = f"{who} {active} in {where}" if who else f"{passive} in {where}"
        return f"{head}: {detail}" if detail else head

    match event.action:
        case ProviderAction.ACKNOWLEDGED:
            return did("acknowledged")
        case ProviderAction.UNACKNOWLEDGED:
            # No agent: PagerDuty's acknowledgement timeout (01-Overview.md: a null agent is automation).
            return did("unacknowledged") if who else f"the acknowledgement timed out in {where}"
        case ProviderAction.RESOLVED:
            text = did(_PAST.get(event.raw_type, "resolved"))
            return f"{text} ({detail})" if detail else text
        case ProviderAction.REOPENED:
            return did("reopened")
        case ProviderAction.TRIGGERED:
            return f"{where} opened it"
        case ProviderAction.REASSIGNED if event.raw_type == "TakeOwnership":
            return f"{who or 'someone'} took ownership of it in {where}"
        case ProviderAction.REASSIGNED:
            return did("assigned" if event.raw_type == "AssignOwnership" else "reassigned", to)
        case ProviderAction.ESCALATED:
            return did("escalated", to)
        case ProviderAction.DELEGATED:
            return did("delegated", to)
        case ProviderAction.PRIORITY_CHANGED if detail:
            return (f"{who} set the priority to {detail} in {where}" if who
                    else f"the priority is now {detail} in {where}")
        case ProviderAction.PRIORITY_CHANGED:
            return f"{who} removed the priority in {where}" if who else f"the priority was removed in {where}"
        case ProviderAction.NOTE_ADDED:
            return told("added a note", "a note was added")
        case ProviderAction.RESPONDER_ADDED:
            return told("added a responder", "a responder was added")
        case ProviderAction.RESPONDER_REPLIED if detail:
            return f"{detail} the request to respond in {where}"
        case ProviderAction.RESPONDER_REPLIED:
            return told("replied to a request to respond", "a responder replied")
        case ProviderAction.STATUS_UPDATE:
            return told("posted a status update", "a status update was posted")
        case ProviderAction.SNOOZED:
            return did("snoozed")
    text = f"{where} reported {event.raw_type or 'an event'}" + (f" by {who}" if who else "")
    return f"{text}: {detail}" if detail else text


# --- validation helpers --------------------------------------------------------------------------------


def _json(body: bytes, shape: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadPayload(f"the body is not JSON ({error}); expected {shape}") from None


def _object(value: Any, where: str, expected: str) -> dict[str, Any]:
    if value is None:
        raise BadPayload(f"{where} is missing; expected {expected}")
    if not isinstance(value, dict):
        raise BadPayload(f"{where} must be an object; got {shown(value)}; expected {expected}")
    return value


def _text(value: Any, where: str, expected: str, *, limit: int | None = None) -> str:
    if value is None:
        raise BadPayload(f"{where} is missing; expected {expected}")
    if not isinstance(value, str) or not value.strip():
        raise BadPayload(f"{where} must be a non-empty string; got {shown(value)}; expected {expected}")
    if limit is not None and len(value) > limit:
        raise BadPayload(f"{where} is {len(value)} characters long; expected at most {limit}")
    return value


def _optional_text(value: Any, where: str, *, limit: int | None = None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadPayload(f"{where} must be a string or null; got {shown(value)}")
    if limit is not None and len(value) > limit:
        raise BadPayload(f"{where} is {len(value)} characters long; expected at most {limit}")
    return value


_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _one_line(text: str | None) -> str:
    return _SPACE.sub(" ", _CONTROL.sub("", text or "")).strip()


def _clip(text: str | None, limit: int) -> str:
    """One line of at most `limit` characters, "…" marking a cut."""
    line = _one_line(text)
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
