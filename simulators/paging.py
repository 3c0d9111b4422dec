"""Loopback stand-ins for PagerDuty and Opsgenie, for tests and demos: their APIs, and their webhooks.

Both receivers run a real HTTP server (stdlib only), check every payload field the way the
vendors specify it, answer with the vendors' status codes and bodies, record each request,
keep the vendors' alert state, and can be scripted to fail::

    with PagerDutyReceiver(routing_keys=[KEY]) as pd:
        httpx.post(pd.events_url, json={"routing_key": KEY, "event_action": "trigger", ...})
        pd.wait_for(lambda r: r.alerts().get("inc-12") == "triggered")

    with OpsgenieReceiver(api_keys=["k"]) as og:      # og.url is OPSGENIE_API_URL
        og.fail_next(429, retry_after=2)             # the next request is throttled

PagerDuty: POST /v2/enqueue.  Opsgenie: POST /v2/alerts, POST /v2/alerts/{alias}/acknowledge
and /close (identifierType=alias).  Anything else answers 404.

They also send what the vendors send back: after ``subscribe(...)`` a receiver POSTs PagerDuty v3
webhooks (signed) or Opsgenie outgoing-Webhook-integration payloads (with custom headers) to the
bot, for changes made through the API (echoes, sent asynchronously after the API's answer) and for
people acting in the vendor's app (``pd.acknowledge("inc-12", by="Dana Scully")``, sent at once and
returned as a `Delivery`).  One sender thread per receiver sends them in the order they arose, as
both vendors do per alert; failed deliveries are recorded (status 0 or the bot's status), never
retried on their own: tests redeliver with ``deliver(...)``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import http.client
import json
import secrets as _secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self, TypeGuard
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["ActionRefused", "Delivery", "OpsgenieReceiver", "PagerDutyReceiver", "Received"]


@dataclass(frozen=True)
class Received:
    """One request as a receiver got and answered it."""

    path: str  # e.g. "/v2/enqueue" or "/v2/alerts/inc-12-database/acknowledge" (as sent, not unquoted)
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any] | None  # parsed JSON (None if empty or unparseable)
    status: int  # status answered; 0 when the answer was withheld on purpose (hang_seconds)
    response: dict[str, Any]  # body answered (for a hang: what is sent once the hang ends)
    at: float  # time.time() on arrival


@dataclass(frozen=True)
class Delivery:
    """One webhook POST a receiver made to the subscribed URL."""

    payload: dict[str, Any]  # the JSON sent
    headers: dict[str, str]  # as sent (names as the vendor writes them)
    status: int  # what the bot answered; 0 = no answer (connection failed, or no answer within the timeout)
    response: str  # body answered ("" without an answer)


class ActionRefused(ValueError):
    """A person's action the vendor's app would not allow in the alert's state (e.g. acknowledging a
    resolved incident), or on an alert it does not have. Nothing changed and nothing was sent."""


class _Receiver:
    """Server plumbing, recording and failure scripting shared by both receivers."""

    _name = "receiver"

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # wakes handlers sleeping in a scripted hang
        # One lock guards everything below: handler threads and the test thread share it.
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._failures: deque[_Failure] = deque()
        self._sender = _Sender(self._name)
        self._echoes: list[_Outgoing] = []  # queued while the current API request is processed
        self._clear_state()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the port and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._stopping.clear()
        self._server = _Server((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self._name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; hung requests are abandoned.  Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._stopping.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._sender.close()  # webhooks not yet sent are dropped; a later one starts a new sender

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        return f"http://{self._host}:{self._server.server_address[1]}"

    # -- scripting and inspection ----------------------------------------------------

    @property
    def received(self) -> list[Received]:
        """Every request so far, in arrival order (a snapshot)."""
        with self._lock:
            return list(self._received)

    def fail_next(
        self,
        status: int = 500,
        *,
        count: int = 1,
        retry_after: int | None = None,
        body: dict[str, Any] | None = None,
        hang_seconds: float | None = None,
    ) -> None:
        """Make the next `count` requests (any path) fail with `status` and the vendor's error body.

        `retry_after` adds a Retry-After header; `body` replaces the default body.  With
        `hang_seconds` the request is processed normally (state changes at once) but the answer
        is held back that long, so clients with shorter timeouts give up; `status` is ignored.
        """
        if count < 1 or not 100 <= status <= 599:
            raise ValueError("count must be >= 1 and status an HTTP status code")
        with self._lock:
            self._failures.extend([_Failure(status, retry_after, body, hang_seconds)] * count)

    def wait_for(self, predicate: Callable[[Self], Any], timeout: float = 5.0) -> Any:
        """Poll until ``predicate(self)`` is truthy and return its value; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout:g}s; {self._summary()}")
            time.sleep(0.01)

    def reset(self) -> None:
        """Forget recorded requests, alert state, pending failures, deliveries and webhooks not yet
        sent.  The webhook subscription stays, as configuration does."""
        with self._lock:
            self._received.clear()
            self._failures.clear()
            self._clear_state()
            self._sender.clear()

    # -- webhooks ----------------------------------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook POST made so far (echoes and people's actions), in sending order (a snapshot)."""
        return self._sender.deliveries

    @property
    def webhook_timeout(self) -> float:
        """Seconds to wait for the bot's answer to a webhook (PagerDuty documents 5); then status 0."""
        return self._sender.timeout

    @webhook_timeout.setter
    def webhook_timeout(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("webhook_timeout must be positive")
        self._sender.timeout = seconds

    def wait_webhooks(self, timeout: float = 5.0) -> None:
        """Block until every queued webhook (echoes included) has been sent; AssertionError on timeout."""
        if not self._sender.wait_idle(timeout):
            raise AssertionError(f"webhooks still queued after {timeout:g}s: {self._sender.pending()} left")

    def _queue_echo(self, item: _Outgoing) -> None:
        """Queue a webhook caused by the API request being processed (lock held); it is sent once
        that request's answer is written (or its scripted hang begins)."""
        self._sender.submit(item)
        self._echoes.append(item)

    # -- hooks for the subclasses (called with the lock held) --------------------------

    def _clear_state(self) -> None:
        raise NotImplementedError

    def _process(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                 body: Any, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Validate and apply one request; return the status and JSON body to answer."""
        raise NotImplementedError

    def _failure_body(self, status: int) -> dict[str, Any]:
        raise NotImplementedError

    # -- request handling (called from server threads) -------------------------------

    def _handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                raw: bytes, at: float) -> tuple[_Reply, float, list[_Outgoing]]:
        """Answer one request; also return the echo webhooks it queued, to release once answered."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self._echoes = []
            failure = self._failures.popleft() if self._failures else None
            hang = (failure.hang_seconds or 0.0) if failure is not None else 0.0
            if failure is not None and failure.hang_seconds is None:
                extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                body_out = failure.body if failure.body is not None else self._failure_body(failure.status)
                reply = _Reply(failure.status, body_out, extra)
            else:
                try:
                    reply = _Reply(*self._process(method, path, query, headers, body, raw), {})
                except Exception as exc:  # noqa: BLE001 - a simulator bug must reach the test
                    reply = _Reply(500, {"message": "simulator error", "detail": repr(exc)}, {})
            # Recorded before any hang, so a test sees the request as soon as the client times out.
            recorded_body = copy.deepcopy(body) if isinstance(body, dict) else None
            self._received.append(Received(path, query, headers, recorded_body, 0 if hang else reply.status,
                                           reply.body, at))
            echoes, self._echoes = self._echoes, []
        return reply, hang, echoes

    def _summary(self) -> str:
        with self._lock:
            recent = self._received[-20:]
        if not recent:
            return "no requests were received"
        return "last requests:\n" + "\n".join(f"  {r.path} -> {r.status} {json.dumps(r.response)}" for r in recent)


class PagerDutyReceiver(_Receiver):
    """PagerDuty Events API v2 (POST /v2/enqueue) and its v3 webhooks; see the module docstring.

    Events API rules follow PagerDuty/api-schema reference/events-v2/openapiv3.json (fields, types,
    required, enums; it gives no lengths) and PagerDuty/developer-docs docs/events-API-v2/
    02-Trigger-Events.md and 01-Overview.md (routing_key 32 characters, dedup_key at most 255,
    payload.summary at most 1024, the whole event at most 512 KB).

    Each dedup_key's current alert is one PagerDuty incident (`incident(key)`), shaped as the
    `incident` data type of developer-docs docs/webhooks/01-Overview.md.  Webhooks follow that page
    (payload, event types, data types), 02-Behavior.md (X-Webhook-Id repeated on redelivery) and
    04-Signatures.md (X-PagerDuty-Signature: one ``v1=<hex HMAC-SHA256 of the body>`` per secret,
    joined with ",").
    """

    _name = "pagerduty-receiver"
    web_url = "https://acme.pagerduty.com"  # the account's web app, in html_url links
    api_url = "https://api.pagerduty.com"  # in `self` links
    service_name = "Incident Bot"  # the service every routing key belongs to
    on_call = "On-call Responder"  # who a new incident is assigned to
    default_policy = "Default"  # escalation policy of new incidents
    team = "Engineering"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, routing_keys: Iterable[str] = ()) -> None:
        self._routing_keys = frozenset(routing_keys)  # empty: any 32-character key is accepted
        self._subscription: _PdSubscription | None = None
        super().__init__(host, port)

    # -- webhook subscription and delivery ----------------------------------------------

    def subscribe(self, url: str, secrets: Sequence[str], *, echo: bool = True) -> None:
        """Send v3 webhooks to `url`, signed with each of `secrets` (several during a secret rotation).

        With `echo`, changes made through the Events API (a trigger that opens an incident, an
        acknowledge or resolve that changes its status) also send incident.triggered / .acknowledged /
        .resolved, after the API's 202, with the service as agent (PagerDuty's agent for
        integration-driven changes).  A second call replaces the subscription.
        """
        _check_url(url)
        if isinstance(secrets, str) or not secrets or not all(_filled(k) for k in secrets):
            raise ValueError("secrets must be a non-empty sequence of non-blank strings")
        with self._lock:
            self._subscription = _PdSubscription(url, tuple(secrets), echo, _stable_id(f"subscription:{url}", 6))

    def deliver(self, payload: dict[str, Any], *, webhook_id: str | None = None,
                signature: str | None = None) -> Delivery:
        """POST `payload` (again) as a webhook and return its delivery.

        `webhook_id` None: a new X-Webhook-Id; the id of an earlier delivery: a redelivery, as
        PagerDuty repeats it (at-least-once delivery).  `signature` replaces the computed
        X-PagerDuty-Signature header ("" leaves the header out).
        """
        with self._lock:
            item = self._webhook(self._require_subscription(), payload, webhook_id=webhook_id, signature=signature)
            self._sender.submit(item)
        return self._sender.wait(item)

    def incident(self, dedup_key: str) -> dict[str, Any] | None:
        """The PagerDuty incident (webhook `incident` data type) of the key's current alert, or None."""
        with self._lock:
            found = self._incidents.get(dedup_key)
            return copy.deepcopy(found) if found is not None else None

    # -- people acting in PagerDuty's web app (each sends one webhook and returns its delivery) --

    def acknowledge(self, dedup_key: str, *, by: str = "Dana Scully", at: datetime | None = None) -> Delivery:
        """incident.acknowledged; needs a triggered incident (PagerDuty offers no acknowledge otherwise)."""
        return self._act(dedup_key, "incident.acknowledged", by, at, needs=("triggered",), status="acknowledged")

    def unacknowledge(self, dedup_key: str, *, at: datetime | None = None) -> Delivery:
        """incident.unacknowledged by the acknowledgement timeout (agent null): acknowledged -> triggered."""
        return self._act(dedup_key, "incident.unacknowledged", None, at, needs=("acknowledged",), status="triggered")

    def resolve(self, dedup_key: str, *, by: str = "Dana Scully", at: datetime | None = None) -> Delivery:
        """incident.resolved; needs an open (triggered or acknowledged) incident."""
        return self._act(dedup_key, "incident.resolved", by, at, needs=_PD_OPEN, status="resolved")

    def reopen(self, dedup_key: str, *, by: str = "Dana Scully", at: datetime | None = None) -> Delivery:
        """incident.reopened; needs a resolved incident, which becomes triggered (reopened_at = `at`)."""
        when = _utc(at)
        return self._act(dedup_key, "incident.reopened", by, when, needs=("resolved",), status="triggered",
                         update=lambda incident: {"reopened_at": _iso(when, "seconds")})

    def reassign(self, dedup_key: str, *, to: str, by: str = "Dana Scully", at: datetime | None = None) -> Delivery:
        """incident.reassigned to the user named `to` (assignees = [to]); needs an open incident.
        The status is kept (the docs say nothing of reassignment changing it)."""
        return self._act(dedup_key, "incident.reassigned", by, at, needs=_PD_OPEN,
                         update=lambda incident: {"assignees": [self._ref("user", to)]})

    def escalate(self, dedup_key: str, *, to: str, level: int = 2, at: datetime | None = None) -> Delivery:
        """incident.escalated by the escalation policy itself (agent null) to `to` at `level` (>= 1).

        Needs a triggered incident: an acknowledgement halts escalation.  v3 incident data carries no
        escalation level, so `level` is only checked.
        """
        if level < 1:
            raise ValueError("escalation levels start at 1")
        return self._act(dedup_key, "incident.escalated", None, at, needs=("triggered",),
                         update=lambda incident: {"assignees": [self._ref("user", to)]})

    def delegate(self, dedup_key: str, *, policy: str, by: str = "Dana Scully",
                 at: datetime | None = None) -> Delivery:
        """incident.delegated to the escalation policy named `policy`; needs an open incident with another
        policy.  Assignees become [] (who is on call for `policy` is not modelled)."""
        def refuse(incident: dict[str, Any]) -> str | None:
            return f"the incident is already with {policy!r}" if incident["escalation_policy"]["summary"] == policy else None
        return self._act(dedup_key, "incident.delegated", by, at, needs=_PD_OPEN, refuse=refuse,
                         update=lambda incident: {"escalation_policy": self._ref("escalation_policy", policy),
                                                  "assignees": []})

    def set_priority(self, dedup_key: str, priority: str, *, by: str = "Dana Scully",
                     at: datetime | None = None) -> Delivery:
        """incident.priority_updated to `priority` (e.g. "P1"); needs an open incident with another priority."""
        if not _filled(priority):
            raise ValueError("priority must be a non-blank name such as 'P1'")

        def refuse(incident: dict[str, Any]) -> str | None:
            current = incident["priority"]
            return f"the priority is already {priority!r}" if current and current["summary"] == priority else None
        return self._act(dedup_key, "incident.priority_updated", by, at, needs=_PD_OPEN, refuse=refuse,
                         update=lambda incident: {"priority": self._ref("priority", priority)})

    def annotate(self, dedup_key: str, content: str, *, by: str = "Dana Scully",
                 at: datetime | None = None) -> Delivery:
        """incident.annotated (data type incident_note); notes may be added in any status."""
        if not _filled(content):
            raise ValueError("a note needs content")
        return self._act(dedup_key, "incident.annotated", by, at, needs=_PD_ANY, data={"content": content})

    def add_responder(self, dedup_key: str, *, user: str, message: str, by: str = "Dana Scully",
                      at: datetime | None = None) -> Delivery:
        """incident.responder.added (data type incident_responder, state "pending"); needs an open incident."""
        return self._act(dedup_key, "incident.responder.added", by, at, needs=_PD_OPEN,
                         data={"user": user, "message": message})

    def publish_status_update(self, dedup_key: str, message: str, *, by: str = "Dana Scully",
                              at: datetime | None = None) -> Delivery:
        """incident.status_update_published (data type incident_status_update), in any status."""
        if not _filled(message):
            raise ValueError("a status update needs a message")
        return self._act(dedup_key, "incident.status_update_published", by, at, needs=_PD_ANY,
                         data={"message": message})

    def build_event(self, event_type: str, dedup_key: str, *, by: str | None = "Dana Scully",
                    at: datetime | None = None, **extra: Any) -> dict[str, Any]:
        """The webhook payload ``{"event": {...}}`` for `event_type` on the key's incident, without
        sending it or changing state (for duplicate and out-of-order tests; send with `deliver`).

        `by` None: agent null.  Incident events carry the incident as it is now, with the status the
        event type implies (triggered / acknowledged / resolved); `extra` then overrides data fields.
        Shorthands: ``assignees=["Name"]``, ``escalation_policy="Name"``, ``priority="P1"``,
        ``user="Name"`` (responders) become references.  ValueError for event types not modelled.
        """
        with self._lock:
            return self._event(event_type, self._known(dedup_key), by, _utc(at), extra)

    @property
    def events_url(self) -> str:
        return f"{self.url}/v2/enqueue"

    def events(self) -> list[dict[str, Any]]:
        """Bodies of accepted (202) events, in arrival order."""
        with self._lock:
            return copy.deepcopy(self._events)

    def alerts(self) -> dict[str, str]:
        """dedup_key -> "triggered" | "acknowledged" | "resolved"."""
        with self._lock:
            return dict(self._states)

    def triggers(self, dedup_key: str) -> int:
        """Accepted trigger events for `dedup_key` since start (or reset), repeats included."""
        with self._lock:
            return self._triggers.get(dedup_key, 0)

    def _clear_state(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._states: dict[str, str] = {}
        self._routes: dict[str, str] = {}  # dedup_key -> routing key of the trigger that opened it
        self._triggers: dict[str, int] = {}
        self._incidents: dict[str, dict[str, Any]] = {}  # dedup_key -> its current incident
        self._numbers = 0  # incident numbers, as the account counts them

    def _process(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                 body: Any, raw: bytes) -> tuple[int, dict[str, Any]]:
        if method != "POST" or path != "/v2/enqueue":
            return 404, {"status": "error", "message": "Not Found"}
        if len(raw) > _PD_MAX_EVENT_BYTES:
            return 400, {"status": "invalid event", "message": "Event object is invalid",
                         "errors": [f"Event object is too large (max {_PD_MAX_EVENT_BYTES} bytes)"]}
        errors = self._errors(body)
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        action, route = body["event_action"], body["routing_key"]
        key = body.get("dedup_key") or str(uuid.uuid4())  # PagerDuty generates a UUID when omitted
        is_open = self._states.get(key) in _PD_OPEN
        if action == "trigger":
            # An open alert with this key absorbs the trigger (dedup); a resolved one is replaced.
            self._triggers[key] = self._triggers.get(key, 0) + 1
            if not is_open:
                self._states[key], self._routes[key] = "triggered", route
                self._incidents[key] = self._new_incident(key, body["payload"]["summary"], route)
                self._echo("incident.triggered", key)
        elif is_open and self._routes[key] == route:  # PagerDuty drops ack/resolve for unknown or closed keys
            status = "resolved" if action == "resolve" else "acknowledged"
            if self._states[key] != status:
                self._set_status(key, status)
                self._echo(f"incident.{status}", key)
        self._events.append(copy.deepcopy(body))
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}

    # -- incidents and webhooks (lock held) ---------------------------------------------

    def _new_incident(self, key: str, summary: str, route: str) -> dict[str, Any]:
        self._numbers += 1
        incident_id = "Q" + _random_id(13)  # PagerDuty's newer incident ids: Q + 13 letters and digits
        return {
            "id": incident_id,
            "type": "incident",
            "self": f"{self.api_url}/incidents/{incident_id}",
            "html_url": f"{self.web_url}/incidents/{incident_id}",
            "number": self._numbers,
            "status": "triggered",
            "incident_key": key,
            "created_at": _iso(datetime.now(UTC), "seconds"),
            "title": summary,
            "service": self._ref("service", self.service_name, seed=f"service:{route}"),
            "assignees": [self._ref("user", self.on_call)],
            "escalation_policy": self._ref("escalation_policy", self.default_policy),
            "teams": [self._ref("team", self.team)],
            "priority": None,
            "urgency": "high",  # a new service's default: constant high urgency
            "conference_bridge": None,
            "resolve_reason": None,
        }

    def _ref(self, kind: str, name: str, *, seed: str | None = None) -> dict[str, Any]:
        """A resource reference (user, service, escalation_policy, team, priority) with a stable id."""
        ref_id = _stable_id(seed or f"{kind}:{name}")
        path = {"user": "users", "service": "services", "escalation_policy": "escalation_policies",
                "team": "teams", "priority": "priorities"}[kind]
        html = f"{self.web_url}/account/incident_priorities" if kind == "priority" else f"{self.web_url}/{path}/{ref_id}"
        return {"html_url": html, "id": ref_id, "self": f"{self.api_url}/{path}/{ref_id}", "summary": name,
                "type": f"{kind}_reference"}

    def _set_status(self, key: str, status: str) -> None:
        self._states[key] = status
        self._incidents[key]["status"] = status

    def _known(self, key: str) -> dict[str, Any]:
        incident = self._incidents.get(key)
        if incident is None:
            raise ActionRefused(f"PagerDuty has no incident with dedup_key {key!r}")
        return incident

    def _require_subscription(self) -> _PdSubscription:
        if self._subscription is None:
            raise RuntimeError("no webhook subscription: call subscribe(url, secrets) first")
        return self._subscription

    def _event(self, event_type: str, incident: dict[str, Any], by: str | None, at: datetime,
               extra: Mapping[str, Any]) -> dict[str, Any]:
        """Build ``{"event": {...}}`` (developer-docs docs/webhooks/01-Overview.md, "Webhook Payload")."""
        data_type = _PD_EVENT_TYPES.get(event_type)
        if data_type is None:
            raise ValueError(f"{event_type!r} is not a modelled v3 event type: {sorted(_PD_EVENT_TYPES)}")
        extra = dict(extra)
        for name, kind in (("escalation_policy", "escalation_policy"), ("priority", "priority"), ("user", "user")):
            if isinstance(extra.get(name), str):
                extra[name] = self._ref(kind, extra[name])
        if isinstance(extra.get("assignees"), list):
            extra["assignees"] = [self._ref("user", a) if isinstance(a, str) else a for a in extra["assignees"]]
        if data_type == "incident":
            data = copy.deepcopy(incident)
            data["status"] = _PD_IMPLIED_STATUS.get(event_type, data["status"])
        else:  # these carry the incident as an incident_reference, without incident_key
            reference = {"html_url": incident["html_url"], "id": incident["id"], "self": incident["self"],
                         "summary": incident["title"], "type": "incident_reference"}
            data = {"incident": reference, "type": data_type}
            if data_type == "incident_note":
                data |= {"id": _stable_id(uuid.uuid4().hex), "content": "", "trimmed": False}
            elif data_type == "incident_status_update":
                data |= {"id": _stable_id(uuid.uuid4().hex), "message": "", "trimmed": False}
            else:  # incident_responder
                state = "pending" if event_type == "incident.responder.added" else "joined"
                data |= {"user": self._ref("user", by or self.on_call), "escalation_policy": None,
                         "message": "", "state": state}
        data.update(extra)
        agent = self._ref("user", by) if by is not None else None
        return {"event": {"id": "01" + _random_id(24), "event_type": event_type, "resource_type": "incident",
                          "occurred_at": _iso(at), "agent": agent, "client": None, "data": data}}

    def _webhook(self, subscription: _PdSubscription, payload: dict[str, Any], *, webhook_id: str | None = None,
                 signature: str | None = None, ready: bool = True) -> _Outgoing:
        item = _Outgoing(subscription.url, payload, {}, ready=ready)
        if signature is None:
            signature = ",".join("v1=" + hmac.new(secret.encode(), item.body, hashlib.sha256).hexdigest()
                                 for secret in subscription.secrets)
        item.headers = {"Content-Type": "application/json", "User-Agent": "PagerDuty-Webhook/V3.0",
                        "X-Webhook-Id": webhook_id or str(uuid.uuid4()), "X-Webhook-Subscription": subscription.id}
        if signature:
            item.headers["X-PagerDuty-Signature"] = signature
        return item

    def _echo(self, event_type: str, key: str) -> None:
        """Queue the webhook for an Events API change; the agent is the incident's service."""
        subscription = self._subscription
        if subscription is None or not subscription.echo:
            return
        incident = self._incidents[key]
        payload = self._event(event_type, incident, None, datetime.now(UTC), {})
        payload["event"]["agent"] = copy.deepcopy(incident["service"])
        self._queue_echo(self._webhook(subscription, payload, ready=False))

    def _act(self, key: str, event_type: str, by: str | None, at: datetime | None, *, needs: tuple[str, ...],
             status: str | None = None, update: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
             data: Mapping[str, Any] | None = None,
             refuse: Callable[[dict[str, Any]], str | None] | None = None) -> Delivery:
        """A person's change in the web app: check it is allowed, apply it, send its webhook, wait for it."""
        when = _utc(at)
        with self._lock:
            subscription = self._require_subscription()
            incident = self._known(key)
            if incident["status"] not in needs:
                raise ActionRefused(f"{event_type} needs a {' or '.join(needs)} incident; "
                                    f"{key!r} is {incident['status']}")
            reason = refuse(incident) if refuse is not None else None
            if reason:
                raise ActionRefused(f"{event_type} refused: {reason}")
            if status is not None:
                self._set_status(key, status)
            if update is not None:
                incident.update(update(incident))
            item = self._webhook(subscription, self._event(event_type, incident, by, when, data or {}))
            self._sender.submit(item)
        return self._sender.wait(item)

    def _errors(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            return ["Event object is not a valid JSON object"]
        errors: list[str] = []
        key = body.get("routing_key")
        if not _filled(key):
            errors.append("'routing_key' is missing or blank")
        elif len(key) != 32:
            errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        elif self._routing_keys and key not in self._routing_keys:
            errors.append("Invalid routing key")
        action = body.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is missing or invalid (must be one of: trigger, acknowledge, resolve)")
        dedup = body.get("dedup_key")
        if dedup is not None and not isinstance(dedup, str):
            errors.append("'dedup_key' must be a string")
        elif dedup and len(dedup) > 255:
            errors.append("'dedup_key' is too long (max 255 characters)")
        elif action in ("acknowledge", "resolve") and not _filled(dedup):
            errors.append("'dedup_key' is missing or blank")
        if action == "trigger":  # payload and context only matter when opening an alert
            errors += _trigger_errors(body)
        return errors

    def _failure_body(self, status: int) -> dict[str, Any]:
        if status == 429:
            return {"status": "throttle event",
                    "message": "Requests for this service are arriving too quickly. Please retry later."}
        if status >= 500:
            return {"status": "error", "message": "Internal server error"}
        if status == 400:
            return {"status": "invalid event", "message": "Event object is invalid", "errors": ["scripted failure"]}
        return {"status": "error", "message": _phrase(status)}


class OpsgenieReceiver(_Receiver):
    """Opsgenie Alert API (create, acknowledge, close) and its outgoing Webhook integration; `url` is
    the OPSGENIE_API_URL.

    Alert API rules: opsgenie/opsgenie-oas definitions/alert.yaml (CreateAlertPayload,
    AlertActionPayload) and definitions/common.yaml (Recipient) give the fields, types and enums but
    no lengths; the lengths are those of Opsgenie's Alert API documentation ("Create Alert" table:
    message 130, alias 512, description 15000, responders and visibleTo 50 each, actions 10 x 50,
    tags 20 x 50, details 8000 in total, entity 512, source 100, user 100, note 25000).

    Webhooks follow Opsgenie's "alert action data" (the JSON body of the Webhook integration):
    ``{"action", "alert": {alertId, message, tags, tinyId, entity, alias, createdAt (epoch ms),
    updatedAt (epoch ns), username, userId, source, ...action fields}, "source": {"name", "type"},
    "integrationId", "integrationName", "integrationType"}``, plus the integration's custom headers.
    Each alert keeps one alertId and tinyId from its creation.
    """

    _name = "opsgenie-receiver"
    integration_name = "Webhook"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, api_keys: Iterable[str] = ()) -> None:
        self._api_keys = frozenset(api_keys)  # empty: any non-empty GenieKey is accepted
        self._subscription: _OgSubscription | None = None
        super().__init__(host, port)

    # -- webhook integration and delivery -----------------------------------------------

    def subscribe(self, url: str, headers: Mapping[str, str], *, echo: bool = True) -> None:
        """Send the outgoing Webhook integration's POSTs to `url` with its custom `headers`
        (e.g. ``{"Authorization": "Bearer t"}``).

        With `echo`, alerts created, acknowledged or closed through the Alert API also send Create /
        Acknowledge / Close after the API's 202 (source type "API"; username the request's `user`,
        else "System").  A second call replaces the integration.
        """
        _check_url(url)
        if not all(isinstance(k, str) and isinstance(v, str) and k.strip() for k, v in headers.items()):
            raise ValueError("custom headers must be non-blank names with string values")
        with self._lock:
            self._subscription = _OgSubscription(url, dict(headers), echo, str(uuid.uuid5(uuid.NAMESPACE_URL, url)))

    def deliver(self, payload: dict[str, Any], *, headers: Mapping[str, str] | None = None) -> Delivery:
        """POST `payload` (again) as a webhook; `headers` replace the integration's custom headers."""
        with self._lock:
            subscription = self._require_subscription()
            custom = dict(headers) if headers is not None else subscription.headers
            item = _Outgoing(subscription.url, payload, {"Content-Type": "application/json", **custom}, ready=True)
            self._sender.submit(item)
        return self._sender.wait(item)

    # -- people acting in Opsgenie's web app (each sends one webhook and returns its delivery) --

    def acknowledge(self, alias: str, *, user: str = "dana@example.com", at: datetime | None = None,
                    note: str | None = None) -> Delivery:
        """Acknowledge; needs an open, unacknowledged alert."""
        return self._act(alias, "Acknowledge", user, at, needs=("open",), state="acknowledged", fields=_note(note))

    def unacknowledge(self, alias: str, *, user: str = "dana@example.com", at: datetime | None = None) -> Delivery:
        """UnAcknowledge; needs an acknowledged alert, which is open again."""
        return self._act(alias, "UnAcknowledge", user, at, needs=("acknowledged",), state="open")

    def close(self, alias: str, *, user: str = "dana@example.com", at: datetime | None = None,
              note: str | None = None) -> Delivery:
        """Close; needs an alert that is not closed."""
        return self._act(alias, "Close", user, at, needs=_OG_OPEN, state="closed", fields=_note(note))

    def delete(self, alias: str, *, user: str = "dana@example.com", at: datetime | None = None) -> Delivery:
        """Delete, in any state: the alias is free afterwards (`alerts()` no longer lists it)."""
        return self._act(alias, "Delete", user, at, needs=_OG_ANY, delete=True)

    def add_note(self, alias: str, note: str, *, user: str = "dana@example.com",
                 at: datetime | None = None) -> Delivery:
        """AddNote (alert.note), in any state."""
        return self._act(alias, "AddNote", user, at, needs=_OG_ANY, fields=_note(note, required=True))

    def assign(self, alias: str, *, owner: str, user: str = "dana@example.com", at: datetime | None = None) -> Delivery:
        """AssignOwnership to `owner` (alert.owner); needs an alert that is not closed."""
        if not _filled(owner):
            raise ValueError("owner must be a user's name")
        return self._act(alias, "AssignOwnership", user, at, needs=_OG_OPEN, fields={"owner": owner})

    def escalate(self, alias: str, *, to: str, at: datetime | None = None) -> Delivery:
        """EscalateNext by Opsgenie itself (username "System") to `to`; needs an open, unacknowledged
        alert (escalations stop on acknowledgement).  Like Opsgenie's Escalate action data, the
        payload names who is notified in ``escalationNotify``."""
        if not _filled(to):
            raise ValueError("to must name who is notified")
        notify = {"name": to, "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, to)), "type": "default", "entity": "user"}
        return self._act(alias, "EscalateNext", _OG_SYSTEM, at, needs=("open",),
                         top={"escalationNotify": notify}, source={"name": "", "type": "system"})

    def update_priority(self, alias: str, priority: str, *, user: str = "dana@example.com",
                        at: datetime | None = None) -> Delivery:
        """UpdatePriority to P1..P5 (alert.priority); needs an alert that is not closed, with another priority."""
        if priority not in _PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(_PRIORITIES)}")
        return self._act(alias, "UpdatePriority", user, at, needs=_OG_OPEN, fields={"priority": priority},
                         refuse=lambda meta: f"the priority is already {priority}" if meta["priority"] == priority else None)

    def snooze(self, alias: str, *, until: datetime, user: str = "dana@example.com",
               at: datetime | None = None) -> Delivery:
        """Snooze until `until` (alert.snoozedUntil, ISO 8601); needs an alert that is not closed and
        an end after `at` (the Alert API's endTime must be in the future)."""
        when, end = _utc(at), _utc(until)
        if end <= when:
            raise ValueError("until must be after at")
        return self._act(alias, "Snooze", user, when, needs=_OG_OPEN, fields={"snoozedUntil": _iso(end)})

    def build_event(self, action: str, alias: str, *, user: str = "dana@example.com", at: datetime | None = None,
                    **extra: Any) -> dict[str, Any]:
        """The webhook payload for `action` on the alias's alert as a person in the web app would
        cause it, without sending it or changing state; `extra` adds or overrides alert fields."""
        with self._lock:
            self._known(alias)
            return self._payload(action, alias, user, _utc(at), dict(extra), {}, {"name": "", "type": "web"})

    def alerts(self) -> dict[str, str]:
        """alias -> "open" | "acknowledged" | "closed"."""
        with self._lock:
            return dict(self._states)

    def alert(self, alias: str) -> dict[str, Any] | None:
        """The create body of the current alert with this alias (repeats deduplicated into it don't count)."""
        with self._lock:
            return copy.deepcopy(self._bodies.get(alias))

    def creates(self, alias: str) -> int:
        """Accepted create requests for `alias` since start (or reset), deduplicated ones included."""
        with self._lock:
            return self._creates.get(alias, 0)

    def _clear_state(self) -> None:
        self._states: dict[str, str] = {}
        self._bodies: dict[str, dict[str, Any]] = {}
        self._creates: dict[str, int] = {}
        self._meta: dict[str, dict[str, Any]] = {}  # alias -> alertId, tinyId, createdAt, priority, owner
        self._tiny = 0

    def _process(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                 body: Any, raw: bytes) -> tuple[int, dict[str, Any]]:
        parts = path.split("/")  # ["", "v2", "alerts", identifier, action]
        is_action = len(parts) == 5 and parts[:3] == ["", "v2", "alerts"] and parts[3] != ""
        if method != "POST" or not (path == "/v2/alerts" or is_action and parts[4] in ("acknowledge", "close")):
            return 404, {"message": "Not found"}
        scheme, _, key = (headers.get("authorization") or "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "geniekey" or not key or (self._api_keys and key not in self._api_keys):
            return 401, _og("Could not authenticate")
        if not is_action:
            return self._create(body)
        errors: dict[str, str] = {}
        id_type = query.get("identifierType", "id")  # Opsgenie's default is the alert id
        if id_type not in ("id", "alias", "tiny"):
            errors["identifierType"] = "Identifier type should be one of [id, alias, tiny]."
        if raw.strip() and not isinstance(body, dict):
            errors["body"] = "Request body should be a JSON object."
        elif isinstance(body, dict):
            errors |= _length_errors(body, {"user": 100, "source": 100, "note": 25000})
        if errors:
            return 422, _og(_UNPROCESSABLE, errors=errors)
        # Opsgenie works asynchronously: it answers 202 even for unknown alerts, so only known aliases change.
        alias = unquote(parts[3])
        state = self._states.get(alias, "") if id_type == "alias" else ""
        fields = body if isinstance(body, dict) else {}
        if parts[4] == "acknowledge" and state == "open":
            self._states[alias] = "acknowledged"
            self._echo("Acknowledge", alias, fields)
        elif parts[4] == "close" and state in ("open", "acknowledged"):
            self._states[alias] = "closed"
            self._echo("Close", alias, fields)
        return 202, _og()

    def _create(self, body: Any) -> tuple[int, dict[str, Any]]:
        errors = _create_errors(body)
        if errors:
            return 422, _og(_UNPROCESSABLE, errors=errors)
        alias = body.get("alias") or str(uuid.uuid4())  # Opsgenie assigns a unique alias when omitted
        self._creates[alias] = self._creates.get(alias, 0) + 1
        if self._states.get(alias) not in ("open", "acknowledged"):  # an open alias only bumps its count
            self._states[alias], self._bodies[alias] = "open", copy.deepcopy(body)
            self._tiny += 1
            self._meta[alias] = {"alertId": str(uuid.uuid4()), "tinyId": str(self._tiny),
                                 "createdAt": _epoch_us(datetime.now(UTC)) // 1000,
                                 "priority": body.get("priority") or "P3", "owner": None}
            teams, recipients = _responder_ids(body.get("responders") or [])
            self._echo("Create", alias, body, {"teams": teams, "recipients": recipients})
        return 202, _og()

    # -- alerts and webhooks (lock held) ------------------------------------------------

    def _known(self, alias: str) -> dict[str, Any]:
        if alias not in self._meta:
            raise ActionRefused(f"Opsgenie has no alert with alias {alias!r}")
        return self._meta[alias]

    def _require_subscription(self) -> _OgSubscription:
        if self._subscription is None:
            raise RuntimeError("no webhook integration: call subscribe(url, headers) first")
        return self._subscription

    def _payload(self, action: str, alias: str, user: str, at: datetime, fields: dict[str, Any],
                 top: dict[str, Any], source: dict[str, str]) -> dict[str, Any]:
        """Opsgenie's alert action data for `action` on the alias's alert."""
        body, meta = self._bodies[alias], self._meta[alias]
        alert = {
            "alertId": meta["alertId"], "message": body["message"], "tags": list(body.get("tags") or []),
            "tinyId": meta["tinyId"], "entity": body.get("entity") or "", "alias": alias,
            "createdAt": meta["createdAt"], "updatedAt": _epoch_us(at) * 1000,
            "username": user, "userId": "" if user == _OG_SYSTEM else str(uuid.uuid5(uuid.NAMESPACE_DNS, user)),
            "source": body.get("source") or "",
        }
        alert.update(fields)
        subscription = self._subscription
        integration_id = subscription.integration_id if subscription is not None else ""
        return {"action": action, "alert": alert, "source": source, "integrationId": integration_id,
                "integrationName": self.integration_name, "integrationType": "Webhook", **top}

    def _echo(self, action: str, alias: str, request: Mapping[str, Any], fields: dict[str, Any] | None = None) -> None:
        """Queue the webhook for an Alert API change, as its requester (`user`, else System) made it."""
        subscription = self._subscription
        if subscription is None or not subscription.echo:
            return
        user = request.get("user") if _filled(request.get("user")) else _OG_SYSTEM
        extra = dict(fields or {}) | ({"note": request["note"]} if _filled(request.get("note")) else {})
        name = request.get("source")
        source = {"name": name if isinstance(name, str) else "", "type": "API"}
        payload = self._payload(action, alias, str(user), datetime.now(UTC), extra, {}, source)
        headers = {"Content-Type": "application/json", **subscription.headers}
        self._queue_echo(_Outgoing(subscription.url, payload, headers, ready=False))

    def _act(self, alias: str, action: str, user: str, at: datetime | None, *, needs: tuple[str, ...],
             state: str | None = None, fields: dict[str, Any] | None = None, top: dict[str, Any] | None = None,
             source: dict[str, str] | None = None, delete: bool = False,
             refuse: Callable[[dict[str, Any]], str | None] | None = None) -> Delivery:
        """A person's action in the web app: check it is allowed, apply it, send its webhook, wait for it."""
        if len(user) > 100:  # the Alert API's `user` limit
            raise ValueError("user can not be longer than 100 characters")
        when = _utc(at)
        with self._lock:
            subscription = self._require_subscription()
            meta = self._known(alias)
            current = self._states[alias]
            if current not in needs:
                raise ActionRefused(f"{action} needs an alert that is {' or '.join(needs)}; {alias!r} is {current}")
            reason = refuse(meta) if refuse is not None else None
            if reason:
                raise ActionRefused(f"{action} refused: {reason}")
            if state is not None:
                self._states[alias] = state
            for name in ("priority", "owner"):
                if fields and name in fields:
                    meta[name] = fields[name]
            payload = self._payload(action, alias, user, when, dict(fields or {}), dict(top or {}),
                                    source or {"name": "", "type": "web"})
            if delete:
                del self._states[alias], self._bodies[alias], self._meta[alias]
            item = _Outgoing(subscription.url, payload, {"Content-Type": "application/json", **subscription.headers},
                             ready=True)
            self._sender.submit(item)
        return self._sender.wait(item)

    def _failure_body(self, status: int) -> dict[str, Any]:
        if status == 401:
            return _og("Could not authenticate")
        if status == 429:
            return _og("You are making too many requests! To avoid errors, we recommend you limit requests.")
        return _og("Internal Server Error" if status >= 500 else _phrase(status))


# -- field rules --------------------------------------------------------------------------

# PagerDuty/developer-docs docs/events-API-v2/01-Overview.md, "Size Limits": 512 KB per event.
_PD_MAX_EVENT_BYTES = 512 * 1024
_PD_OPEN = ("triggered", "acknowledged")
_PD_ANY = ("triggered", "acknowledged", "resolved")
# v3 event types with their data.type (developer-docs docs/webhooks/01-Overview.md, "Event Types");
# those whose data this receiver can fill in.
_PD_EVENT_TYPES = {
    **dict.fromkeys(("incident.acknowledged", "incident.delegated", "incident.escalated", "incident.priority_updated",
                     "incident.reassigned", "incident.reopened", "incident.resolved", "incident.triggered",
                     "incident.unacknowledged", "incident.service_updated"), "incident"),
    "incident.annotated": "incident_note",
    "incident.responder.added": "incident_responder",
    "incident.responder.replied": "incident_responder",
    "incident.status_update_published": "incident_status_update",
}
_PD_IMPLIED_STATUS = {"incident.triggered": "triggered", "incident.unacknowledged": "triggered",
                      "incident.reopened": "triggered", "incident.acknowledged": "acknowledged",
                      "incident.resolved": "resolved"}

_SEVERITIES = ("critical", "error", "warning", "info")
_PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
_RESPONDER_TYPES = ("team", "user", "escalation", "schedule")
_UNPROCESSABLE = "Request body is not processable. Please check the errors."
_OG_OPEN = ("open", "acknowledged")
_OG_ANY = ("open", "acknowledged", "closed")
_OG_SYSTEM = "System"  # the username of Opsgenie's own actions and of API requests without a user
_OG_MAX_RECIPIENTS = 50  # responders, and visibleTo, each (Alert API docs, "Create Alert")
_OG_MAX_NOTE = 25000
# Alert API docs, "Create Alert" (the OAS, opsgenie/opsgenie-oas definitions/alert.yaml, gives no lengths).
_OG_LIMITS = {"alias": 512, "description": 15000, "entity": 512, "source": 100, "user": 100, "note": 25000}


def _filled(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def _trigger_errors(body: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    p = body.get("payload")
    if not isinstance(p, dict):
        errors.append("'payload' is missing or not an object")
        p = {}
    summary = p.get("summary")
    if not _filled(summary):
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > 1024:
        errors.append("'payload.summary' is too long (max 1024 characters)")
    if not _filled(p.get("source")):
        errors.append("'payload.source' is missing or blank")
    if p.get("severity") not in _SEVERITIES:
        errors.append("'payload.severity' is missing or invalid (must be one of: critical, error, warning, info)")
    if p.get("timestamp") is not None and not _is_iso8601(p["timestamp"]):
        errors.append("'payload.timestamp' is not a valid ISO 8601 timestamp")
    errors += [f"'payload.{f}' must be a string" for f in ("component", "group", "class")
               if p.get(f) is not None and not isinstance(p[f], str)]
    if p.get("custom_details") is not None and not isinstance(p["custom_details"], dict):
        errors.append("'payload.custom_details' must be an object")
    errors += [f"'{f}' must be a string" for f in ("client", "client_url")
               if body.get(f) is not None and not isinstance(body[f], str)]
    errors += _objects_errors(body, "links", "href", ("text",))
    return errors + _objects_errors(body, "images", "src", ("href", "alt"))


def _is_iso8601(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)  # Python >= 3.11 (the project's floor) parses a trailing Z too
    except ValueError:
        return False
    return True


def _objects_errors(body: dict[str, Any], name: str, required: str, optional: tuple[str, ...]) -> list[str]:
    """Errors for a PagerDuty context list (links, images): objects with a required string field."""
    items = body.get(name)
    if items is None:
        return []
    if not isinstance(items, list):
        return [f"'{name}' must be an array"]
    errors: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(f"'{name}[{i}]' must be an object")
            continue
        if not _filled(item.get(required)):
            errors.append(f"'{name}[{i}].{required}' is missing or blank")
        errors += [f"'{name}[{i}].{f}' must be a string" for f in optional
                   if item.get(f) is not None and not isinstance(item[f], str)]
    return errors


def _create_errors(body: Any) -> dict[str, str]:
    if not isinstance(body, dict):
        return {"body": "Request body should be a JSON object."}
    errors: dict[str, str] = {}
    message = body.get("message")
    if not _filled(message):
        errors["message"] = "Message can not be empty."
    elif len(message) > 130:
        errors["message"] = "Message can not be longer than 130 characters."
    errors |= _length_errors(body, _OG_LIMITS)
    if body.get("priority") is not None and body["priority"] not in _PRIORITIES:
        errors["priority"] = "Priority should be one of [P1, P2, P3, P4, P5]."
    for field, most in (("tags", 20), ("actions", 10)):
        items = body.get(field)
        if items is not None and not (isinstance(items, list) and all(isinstance(t, str) for t in items)):
            errors[field] = f"{field.capitalize()} should be a list of strings."
        elif items is not None and (len(items) > most or any(len(t) > 50 for t in items)):
            errors[field] = f"At most {most} {field} of at most 50 characters each are allowed."
    details = body.get("details")
    if details is not None:
        if not (isinstance(details, dict) and all(isinstance(v, str) for v in details.values())):
            errors["details"] = "Details should be a map of string keys to string values."
        elif sum(len(k) + len(v) for k, v in details.items()) > 8000:
            errors["details"] = "Details can not be longer than 8000 characters in total."
    # Responders: team, user, escalation or schedule; visibleTo: team or user only (Alert API docs); each
    # named by id, or by name (username for a user), as definitions/common.yaml's recipients are.
    for field, types in (("responders", _RESPONDER_TYPES), ("visibleTo", ("team", "user"))):
        items = body.get(field)
        if items is not None and not (isinstance(items, list) and all(_is_responder(r, types) for r in items)):
            errors[field] = (f"{field} should be a list of objects with a type ({', '.join(types)}) "
                             "and an id, name or username.")
        elif items is not None and len(items) > _OG_MAX_RECIPIENTS:
            errors[field] = f"At most {_OG_MAX_RECIPIENTS} {field} are allowed."
    return errors


def _is_responder(item: Any, types: tuple[str, ...]) -> bool:
    if not isinstance(item, dict) or item.get("type") not in types:
        return False
    name = "username" if item["type"] == "user" else "name"
    return _filled(item.get("id")) or _filled(item.get(name))


def _responder_ids(responders: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The Create action data's `teams` and `recipients`: ids of the teams and other recipients."""
    teams: list[str] = []
    recipients: list[str] = []
    for responder in responders:
        name = responder.get("id") or responder.get("name") or responder.get("username") or ""
        ident = responder.get("id") or str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{responder['type']}:{name}"))
        (teams if responder["type"] == "team" else recipients).append(ident)
    return teams, recipients


def _note(note: str | None, *, required: bool = False) -> dict[str, Any]:
    """Alert fields for a person's note (the Alert API's `note`: at most 25000 characters)."""
    if note is None and not required:
        return {}
    if not _filled(note):
        raise ValueError("a note needs text")
    if len(note) > _OG_MAX_NOTE:
        raise ValueError(f"a note can not be longer than {_OG_MAX_NOTE} characters")
    return {"note": note}


def _length_errors(body: dict[str, Any], limits: dict[str, int]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for field, limit in limits.items():
        value = body.get(field)
        if value is not None and not isinstance(value, str):
            errors[field] = f"{field.capitalize()} should be a string."
        elif value is not None and len(value) > limit:
            errors[field] = f"{field.capitalize()} can not be longer than {limit} characters."
    return errors


def _og(message: str | None = None, **extra: Any) -> dict[str, Any]:
    """An Opsgenie body: an error `message` (took 0.0), or with None the 202 "Request will be processed"."""
    head = {"message": message, "took": 0.0} if message else {"result": "Request will be processed", "took": 0.1}
    return {**head, **extra, "requestId": str(uuid.uuid4())}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# -- plumbing -------------------------------------------------------------------------------


class _PdSubscription(NamedTuple):
    url: str
    secrets: tuple[str, ...]
    echo: bool
    id: str  # X-Webhook-Subscription


class _OgSubscription(NamedTuple):
    url: str
    headers: dict[str, str]  # the integration's custom headers
    echo: bool
    integration_id: str


class _Failure(NamedTuple):
    status: int
    retry_after: int | None
    body: dict[str, Any] | None
    hang_seconds: float | None


class _Reply(NamedTuple):
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # hung handlers must not hold up stop() or interpreter exit
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], receiver: _Receiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as both vendors serve

    def do_POST(self) -> None:
        self._route()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _route(self) -> None:
        at = time.time()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        raw = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        receiver = self.server.receiver
        reply, hang, echoes = receiver._handle(self.command, url.path, dict(parse_qsl(url.query)), headers, raw, at)
        try:
            if hang:
                # The vendor processed the request; its webhooks go out while the answer is held back.
                _release(echoes)
                if receiver._stopping.wait(hang):  # stopping: abandon the request without an answer
                    self.close_connection = True
                    return
            data = json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:  # the client gave up during a scripted hang
                self.close_connection = True
        finally:
            _release(echoes)  # echoes follow the answer, as the vendors' asynchronous processing sends them


# -- webhook sending ------------------------------------------------------------------------

_READY_WAIT = 30.0  # longest an echo waits for its API answer to be written (a safety net; normally ms)
_DONE_WAIT = 120.0  # longest a synchronous action waits for its webhook (the queue ahead included)


class _Outgoing:
    """One webhook POST waiting in a sender's queue."""

    __slots__ = ("body", "delivery", "done", "generation", "headers", "payload", "ready", "url")

    def __init__(self, url: str, payload: dict[str, Any], headers: dict[str, str], *, ready: bool) -> None:
        self.url = url
        self.payload = copy.deepcopy(payload)
        # Sent as UTF-8 without escaping, as both vendors send unicode; signatures cover these exact bytes.
        self.body = json.dumps(payload, ensure_ascii=False).encode()
        self.headers = headers
        self.ready = threading.Event()  # set: may be sent (echoes wait for their API answer)
        if ready:
            self.ready.set()
        self.done = threading.Event()
        self.delivery: Delivery | None = None
        self.generation = 0


class _Sender:
    """Sends webhooks one at a time, in the order they were queued, from one daemon thread.

    Both vendors keep the order of webhooks per subscription and alert (PagerDuty developer-docs
    docs/webhooks/02-Behavior.md, "Ordering"); one queue keeps it for all of them.  Nothing is
    retried: a failed delivery is recorded with its status (0 without an answer).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._queue: deque[_Outgoing] = deque()  # the head is being sent
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()  # the running thread's own: set by close()
        self._generation = 0  # bumped by clear(): a delivery in flight then is not recorded
        self._deliveries: list[Delivery] = []
        self.timeout = 5.0  # PagerDuty expects an answer within 5 s (docs/webhooks/02-Behavior.md)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._cond:
            return list(self._deliveries)

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def submit(self, item: _Outgoing) -> None:
        with self._cond:
            item.generation = self._generation
            self._queue.append(item)
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop,), name=f"{self._name}-webhooks",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait(self, item: _Outgoing) -> Delivery:
        """The delivery of a submitted item, once sent (after everything queued before it)."""
        if not item.done.wait(_DONE_WAIT):
            raise AssertionError(f"webhook not sent within {_DONE_WAIT:g}s")
        if item.delivery is None:
            raise RuntimeError("the receiver was stopped or reset before the webhook was sent")
        return item.delivery

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue, timeout)

    def clear(self) -> None:
        """Drop queued webhooks (the one in flight still goes out, unrecorded) and the deliveries."""
        with self._cond:
            self._generation += 1
            self._deliveries.clear()
            head = self._queue[0] if self._queue else None
            for item in list(self._queue)[1:]:
                item.done.set()
            self._queue = deque([head] if head is not None else [])
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the thread after the webhook in flight (that one still finishes); drop the rest."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._stop.set()
            for item in list(self._queue)[1:]:
                item.done.set()
            self._queue.clear()  # the head belongs to the stopping thread; a new thread starts afresh
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout=1)

    def _run(self, stop: threading.Event) -> None:
        while True:
            with self._cond:
                while not self._queue and not stop.is_set():
                    self._cond.wait()
                if stop.is_set():
                    return
                item = self._queue[0]
            if not item.ready.wait(_READY_WAIT) and stop.is_set():
                item.done.set()
                return
            status, text = _post(item.url, item.body, item.headers, self.timeout)
            delivery = Delivery(item.payload, dict(item.headers), status, text)
            with self._cond:
                if self._queue and self._queue[0] is item:
                    self._queue.popleft()
                if item.generation == self._generation:
                    self._deliveries.append(delivery)
                item.delivery = delivery
                item.done.set()
                self._cond.notify_all()


def _release(items: list[_Outgoing]) -> None:
    for item in items:
        item.ready.set()


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """POST once, without proxies or redirects (neither vendor follows them); (0, "") without an answer."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=dict(headers))
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return 0, ""
    finally:
        connection.close()


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL must be http(s)://host[:port]/path, not {url!r}")


def _utc(at: datetime | None) -> datetime:
    """`at` in UTC (naive datetimes are taken as UTC); now without one."""
    if at is None:
        return datetime.now(UTC)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _iso(at: datetime, timespec: str = "milliseconds") -> str:
    """ISO 8601 in UTC with a Z, as PagerDuty writes it: 2020-10-02T18:45:22.169Z."""
    return at.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _epoch_us(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _random_id(length: int) -> str:
    return "".join(_secrets.choice(_ALNUM) for _ in range(length))


def _stable_id(seed: str, length: int = 6) -> str:
    """A PagerDuty-style id ("P" + uppercase letters and digits) that is always the same for `seed`."""
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    chars = []
    for _ in range(length):
        digest, index = divmod(digest, len(_ALNUM))
        chars.append(_ALNUM[index])
    return "P" + "".join(chars)
