"""Loopback stand-ins for PagerDuty Events API v2 and the Opsgenie Alert API, for tests and demos.

Both receivers run a real HTTP server (stdlib only), check every payload field the way the
vendors document it, answer with the vendors' status codes and bodies, record each request,
keep simple alert state, and can be scripted to fail::

    with PagerDutyReceiver(routing_keys=[KEY]) as pd:
        httpx.post(pd.events_url, json={"routing_key": KEY, "event_action": "trigger", ...})
        pd.wait_for(lambda r: r.alerts().get("inc-12") == "triggered")

    with OpsgenieReceiver(api_keys=["k"]) as og:      # og.url is OPSGENIE_API_URL
        og.fail_next(429, retry_after=2)             # the next request is throttled

PagerDuty: POST /v2/enqueue.  Opsgenie: POST /v2/alerts, POST /v2/alerts/{alias}/acknowledge
and /close (identifierType=alias).  Anything else answers 404.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self, TypeGuard
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["OpsgenieReceiver", "PagerDutyReceiver", "Received"]


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
        """Forget recorded requests, alert state and pending failures."""
        with self._lock:
            self._received.clear()
            self._failures.clear()
            self._clear_state()

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
                raw: bytes, at: float) -> tuple[_Reply, float]:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
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
        return reply, hang

    def _summary(self) -> str:
        with self._lock:
            recent = self._received[-20:]
        if not recent:
            return "no requests were received"
        return "last requests:\n" + "\n".join(f"  {r.path} -> {r.status} {json.dumps(r.response)}" for r in recent)


class PagerDutyReceiver(_Receiver):
    """PagerDuty Events API v2 (POST /v2/enqueue); see the module docstring."""

    _name = "pagerduty-receiver"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, routing_keys: Iterable[str] = ()) -> None:
        self._routing_keys = frozenset(routing_keys)  # empty: any 32-character key is accepted
        super().__init__(host, port)

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

    def _process(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                 body: Any, raw: bytes) -> tuple[int, dict[str, Any]]:
        if method != "POST" or path != "/v2/enqueue":
            return 404, {"status": "error", "message": "Not Found"}
        errors = self._errors(body)
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        action, route = body["event_action"], body["routing_key"]
        key = body.get("dedup_key") or str(uuid.uuid4())  # PagerDuty generates a UUID when omitted
        is_open = self._states.get(key) in ("triggered", "acknowledged")
        if action == "trigger":
            # An open alert with this key absorbs the trigger (dedup); a resolved one is replaced.
            self._triggers[key] = self._triggers.get(key, 0) + 1
            if not is_open:
                self._states[key], self._routes[key] = "triggered", route
        elif is_open and self._routes[key] == route:  # PagerDuty drops ack/resolve for unknown or closed keys
            self._states[key] = "resolved" if action == "resolve" else "acknowledged"
        self._events.append(copy.deepcopy(body))
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}

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
    """Opsgenie Alert API (create, acknowledge, close); `url` is the OPSGENIE_API_URL."""

    _name = "opsgenie-receiver"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, api_keys: Iterable[str] = ()) -> None:
        self._api_keys = frozenset(api_keys)  # empty: any non-empty GenieKey is accepted
        super().__init__(host, port)

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
        if parts[4] == "acknowledge" and state == "open":
            self._states[alias] = "acknowledged"
        elif parts[4] == "close" and state in ("open", "acknowledged"):
            self._states[alias] = "closed"
        return 202, _og()

    def _create(self, body: Any) -> tuple[int, dict[str, Any]]:
        errors = _create_errors(body)
        if errors:
            return 422, _og(_UNPROCESSABLE, errors=errors)
        alias = body.get("alias") or str(uuid.uuid4())  # Opsgenie assigns a unique alias when omitted
        self._creates[alias] = self._creates.get(alias, 0) + 1
        if self._states.get(alias) not in ("open", "acknowledged"):  # an open alias only bumps its count
            self._states[alias], self._bodies[alias] = "open", copy.deepcopy(body)
        return 202, _og()

    def _failure_body(self, status: int) -> dict[str, Any]:
        if status == 401:
            return _og("Could not authenticate")
        if status == 429:
            return _og("You are making too many requests! To avoid errors, we recommend you limit requests.")
        return _og("Internal Server Error" if status >= 500 else _phrase(status))


# -- field rules --------------------------------------------------------------------------

_SEVERITIES = ("critical", "error", "warning", "info")
_PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
_RESPONDER_TYPES = ("team", "user", "escalation", "schedule")
_UNPROCESSABLE = "Request body is not processable. Please check the errors."
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
    for field in ("responders", "visibleTo"):
        items = body.get(field)
        if items is not None and not (isinstance(items, list) and all(_is_responder(r) for r in items)):
            errors[field] = f"{field} should be a list of objects with a type and an id, name or username."
    return errors


def _is_responder(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") in _RESPONDER_TYPES and any(
        _filled(item.get(k)) for k in ("id", "name", "username"))


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
        reply, hang = receiver._handle(self.command, url.path, dict(parse_qsl(url.query)), headers, raw, at)
        if hang and receiver._stopping.wait(hang):  # stopping: abandon the request without an answer
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
        except OSError:  # the client gave up during a scripted hang
            self.close_connection = True
