"""The HTTP edge, routed by Falcon and served by waitress: Slack at POST /slack/events, GET|HEAD /healthz,
GET|HEAD /metrics, and the providers' webhooks, one line each in `webhook_routes`.

Falcon answers what no resource does: 404 for an unknown path, 405 (with `Allow`) for a method a known
path does not serve, both as `{"error": "..."}` JSON. Bodies: waitress refuses one past MAX_ALERT_BODY_BYTES
with 413 before any of this runs; each path then answers 413 (JSON) past its own limit, MAX_BODY_BYTES but
for Alertmanager's notifications (BODY_LIMITS). No answer carries a traceback.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeGuard
from urllib.parse import parse_qs, parse_qsl

import falcon
from slack_bolt import Ack, App, BoltContext, BoltResponse, Respond
from slack_bolt.adapter.falcon import SlackAppResource
from slack_sdk.signature import SignatureVerifier
from waitress.server import create_server

from handlers import alerts, pager_webhooks
from handlers.app import Runtime
from handlers.capture import Capture
from handlers.commands import CommandListener
from handlers.metrics import Children
from handlers.metrics import Metrics as BotMetrics
from handlers.services import Services
from storage.database import ping

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # Slack's payloads and the pagers' webhooks are small; anything larger is a 413
# Alertmanager sends a whole group in one notification (hundreds of alerts with long annotations) and never
# retries a 4xx: what it sends must be taken. waitress refuses past this; each path keeps its own limit.
MAX_ALERT_BODY_BYTES = 16 << 20
BODY_LIMITS = {"/webhooks/alertmanager": MAX_ALERT_BODY_BYTES}  # every other path: MAX_BODY_BYTES
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
# A provider's webhook: its raw body (at most MAX_BODY_BYTES) and its headers (names lower-cased) to the
# HTTP status and the JSON object to answer with.
WebhookHandler = Callable[[bytes, Mapping[str, str]], tuple[int, dict[str, Any]]]


def webhook_routes(services: Services) -> dict[str, WebhookHandler]:
    """Every provider webhook the bot serves, path -> handler, each at POST only (another method is a 405).
    Adding one, say POST /webhooks/alertmanager, is one entry here. A handler that raises is answered
    500 `{"error": "internal error"}`, and logged with its traceback (secrets redacted by handlers/logs)."""
    return {
        "/webhooks/pagerduty": lambda body, h: pager_webhooks.pagerduty(services, body, h.get("x-pagerduty-signature")),
        "/webhooks/opsgenie": lambda body, h: pager_webhooks.opsgenie(services, body, h.get("authorization")),
        "/webhooks/alertmanager": lambda body, h: alerts.webhook(services, body, h.get("authorization")),
    }


class BotWsgiApp:
    """The bot's WSGI application: a Falcon app, one resource per path.

    `slack_events=False` in Socket Mode: Slack comes over the WebSocket, and the app (which then does
    not check signatures) must not be reachable over HTTP (/slack/events is a 404); health, metrics and
    webhooks still are. `webhooks` stands in for `webhook_routes(runtime.services)` when given."""

    def __init__(self, runtime: Runtime, *, slack_events: bool = True,
                 webhooks: Mapping[str, WebhookHandler] | None = None) -> None:
        self.app = falcon.App()
        self.app.set_error_serializer(_serialize_error)
        self.app.add_error_handler(Exception, _internal_error)
        if slack_events:
            self.app.add_route("/slack/events", SlackEvents(runtime.app, runtime.settings.env.slack_signing_secret,
                                                            capture=Capture(runtime.services), metrics=runtime.services.metrics,
                                                            command=runtime.slash_command))
        self.app.add_route("/healthz", Health(runtime))
        self.app.add_route("/metrics", Metrics(runtime))
        for path, handle in (webhook_routes(runtime.services) if webhooks is None else webhooks).items():
            self.app.add_route(path, Webhook(handle, BODY_LIMITS.get(path, MAX_BODY_BYTES)))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self.app(environ, start_response)


class SlackEvents:
    """/slack/events: slash commands, events and interactivity, to Bolt through its Falcon adapter.

    Bolt parses a body before it checks its signature, and some malformed bodies make it raise: so the
    signature and the body's shape are checked here first, and what Bolt still cannot take is a 400.
    Nothing unsigned reaches the app. The signature is Slack's v0 HMAC over the raw body, from the last
    five minutes, checked by slack_sdk's SignatureVerifier (Slack: "Verifying requests from Slack",
    https://docs.slack.dev/authentication/verifying-requests-from-slack/). GET is served for Slack's
    ssl_check as Slack once sent it; anything else over GET goes on to Bolt (404 without OAuth).

    Channel messages, most of what Slack sends, are stored by `capture` directly, without Bolt: a verified
    event needs nothing else of Bolt (no ack, say or respond), and Bolt's second parse, second signature
    check, middleware and listener matching cost more than the durable write itself (bench/README.md).
    Answered as Bolt answers them: 200 once stored, 500 when storing failed (Slack then retries).

    `/incident` commands go straight to their listener (`command`, the one registered with Bolt), for
    the same reason: a verified slash command's form is all it needs, with the `ack` and `respond` Bolt
    would give it, and the answer is written as Bolt writes it (500 when the listener raises)."""

    def __init__(self, app: App, signing_secret: str | None, *, capture: Capture | None = None,
                 metrics: BotMetrics | None = None, command: CommandListener | None = None) -> None:
        self._bolt = SlackAppResource(app)
        # SignatureVerifier refuses an empty secret; without one nothing verifies (and every request is a 401).
        self._verifier = SignatureVerifier(signing_secret) if signing_secret and signing_secret.strip() else None
        self._capture = capture
        self._command = command
        self._ack_seconds = Children(metrics.slack_ack_seconds) if metrics is not None else None  # by kind
        self._client = app.client  # its proxy and TLS settings, for `respond` as Bolt makes it

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._handle(req, resp, self._bolt.on_post)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._handle(req, resp, self._bolt.on_get)

    def _handle(self, req: falcon.Request, resp: falcon.Response,
                bolt: Callable[[falcon.Request, falcon.Response], None]) -> None:
        body = req.bounded_stream.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return _refuse(resp, 413, f"body larger than {MAX_BODY_BYTES} bytes")
        content_type = req.content_type or ""
        if _ssl_check(req.method, req.query_string, content_type, body):  # unsigned by design, and inert
            resp.content_type = falcon.MEDIA_TEXT
            resp.data = b""
            return
        if not self._signed(body, req.get_header("X-Slack-Request-Timestamp"), req.get_header("X-Slack-Signature")):
            return _refuse(resp, 401, "invalid or stale signature")
        if content_type.startswith("application/json"):  # events
            payload = _json_object(body)
            if not _objects_where_due(payload):
                return _refuse(resp, 400, "not a Slack payload")
            if self._capture is not None and _channel_message(payload):
                return self._store_message(payload, resp)
        else:
            form = _slack_form(body)
            if form is None:
                return _refuse(resp, 400, "not a Slack payload")
            if self._command is not None and req.method == "POST" and form.get("command") == "/incident":
                return self._answer_command(form, resp)
        req.stream = io.BytesIO(body)  # the adapter reads the body from req.stream, which was read above
        try:
            bolt(req, resp)
        except Exception as error:  # Bolt could not make sense of a signed payload (not a listener: Bolt catches those)
            log.warning("a signed Slack request could not be handled (%s); answered 400", type(error).__name__)
            _refuse(resp, 400, "malformed Slack payload")

    def _store_message(self, payload: dict[str, Any], resp: falcon.Response) -> None:
        assert self._capture is not None
        try:
            with self._timed("event_callback"):
                self._capture.handle(payload["event"], payload.get("event_id"), None)
        except Exception:
            log.exception("a message event (%s) could not be stored; answered 500 so that Slack sends it again",
                          payload.get("event_id"))
            resp.status = 500
            resp.data = b""
            return
        resp.content_type = falcon.MEDIA_TEXT
        resp.data = b""

    def _answer_command(self, form: dict[str, str], resp: falcon.Response) -> None:
        assert self._command is not None
        ack = Ack()
        respond = Respond(response_url=form.get("response_url"), proxy=self._client.proxy, ssl=self._client.ssl)
        try:
            with self._timed("command"):
                self._command(ack=ack, command=form, context=BoltContext(), respond=respond)  # type: ignore[call-arg]
            answer = ack.response or BoltResponse(status=200, body="")
        except Exception:
            log.exception("/incident %s failed; answered 500", form.get("text", "").split(" ", 1)[0][:40])
            answer = BoltResponse(status=500, body="")
        resp.status = answer.status
        resp.set_headers(answer.first_headers_without_set_cookie())
        resp.text = answer.body

    def _timed(self, kind: str) -> AbstractContextManager[Any]:
        """The time to the answer, in slack_ack_seconds under `kind`, as the Bolt path measures it
        (handlers/app.py, _Timed), whether or not what it times raises: prometheus_client's own timer
        (`Histogram.time()`), on the kind's child kept by `Children`."""
        return self._ack_seconds(kind).time() if self._ack_seconds is not None else nullcontext()

    def _signed(self, body: bytes, timestamp: str | None, signature: str | None) -> bool:
        """slack_sdk's check; it raises ValueError where it cannot read the request: a timestamp that is
        not an integer, or a body that is not UTF-8 (which Slack never sends). Neither is verified."""
        if self._verifier is None:
            return False
        try:
            return self._verifier.is_valid(body, timestamp, signature)
        except ValueError:
            return False


class Health:
    """GET|HEAD /healthz: 200 `{"status": "ok", "database": "ok", "spooled": N}` while the bot's own
    store answers, 503 `{"status": "unavailable", "database": "not answering (<error type>)", ...}`
    otherwise (the error's type only: its message may hold the store's URL)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        spooled = self._runtime.services.timeline.spooled
        try:
            ping(self._runtime.engine)
        except Exception as error:
            log.warning("health check: the store does not answer: %s", type(error).__name__)
            _answer(resp, 503, {"status": "unavailable", "database": f"not answering ({type(error).__name__})",
                                "spooled": spooled})
            return
        _answer(resp, 200, {"status": "ok", "database": "ok", "spooled": spooled})

    on_head = on_get  # Falcon sends HEAD no body, and the Content-Length GET's would have


class Metrics:
    """GET|HEAD /metrics: the Prometheus text exposition format."""

    def __init__(self, runtime: Runtime) -> None:
        self._metrics = runtime.services.metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = self._metrics.content_type
        resp.data = self._metrics.render()

    on_head = on_get


class Webhook:
    """POST to one of `webhook_routes`: the body to its handler, its answer as JSON."""

    def __init__(self, handle: WebhookHandler, limit: int = MAX_BODY_BYTES) -> None:
        self._handle = handle
        self._limit = limit

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.bounded_stream.read(self._limit + 1)
        if len(body) > self._limit:
            return _refuse(resp, 413, f"body larger than {self._limit} bytes")
        status, answer = self._handle(body, req.headers_lower)
        _answer(resp, status, answer)


class HttpServer:
    """waitress serving a WSGI app (the bot's, or in benchmarks a bare Bolt app): `serve` blocks on it,
    tests and the demo run it on a thread of its own."""

    def __init__(self, application: WsgiApp, host: str = "0.0.0.0", port: int = 3000, threads: int = 16) -> None:
        self._server = create_server(
            application,
            host=host,
            port=port,
            threads=threads,
            max_request_body_size=MAX_ALERT_BODY_BYTES,
            clear_untrusted_proxy_headers=True,
            ident="incident-bot",
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        host = self._server.effective_host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def run(self) -> None:
        self._server.run()

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self.run, name="http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        # Close the sockets from the server's own loop (woken through its trigger): closing them from
        # here while that loop sits in select() makes it fail with EBADF.
        def close_all() -> None:
            for channel in list(self._server._map.values()):
                if channel is not self._server.trigger:
                    channel.close()
            self._server.trigger.close()

        self._server.task_dispatcher.shutdown()
        if self._thread is not None and self._thread.is_alive():
            try:
                self._server.trigger.pull_trigger(close_all)
            except OSError:  # the loop closed its trigger already (it is on its way out): just wait for it
                log.warning("HTTP server's trigger was already closed at stop; waiting for its loop to end")
            self._thread.join(timeout=5)
        else:
            close_all()


def _ssl_check(method: str, query: str, content_type: str, body: bytes) -> bool:
    """Slack's certificate check of a slash command's URL: `ssl_check=1` and, at most, the (deprecated)
    verification `token`, form-encoded in a POST body (or, as Slack once sent it, a GET's query), sent
    without a signature; Slack asks for a 200 and nothing else (Slack: "Implementing slash commands",
    "SSL"; bolt-python answers it in slack_bolt/middleware/ssl_check/ssl_check.py, before verifying
    signatures). Anything more, such as a command's fields beside `ssl_check=1`, is not one: it goes on
    to the signature check like every other request."""
    if b"ssl_check" not in body and "ssl_check" not in query:  # nearly every request: no need to parse it
        return False
    if method == "POST" and not query and content_type.startswith("application/x-www-form-urlencoded"):
        fields = body
    elif method == "GET" and not body:
        fields = query.encode("latin-1", "replace")
    else:
        return False
    try:
        pairs = parse_qsl(fields.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return False
    names = [name for name, _ in pairs]
    return len(names) == len(set(names)) and set(names) <= {"ssl_check", "token"} and ("ssl_check", "1") in pairs


def _json_object(body: bytes) -> object:
    """The JSON body, parsed; None when it is not JSON in UTF-8."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _channel_message(payload: dict[str, Any]) -> bool:
    """An Events API `message` event (any subtype): the timeline's, and no other listener's."""
    return payload.get("type") == "event_callback" and payload["event"].get("type") == "message"


def _slack_form(body: bytes) -> dict[str, str] | None:
    """A UTF-8 form whose `payload` is a JSON object (interactivity), or a slash command with the fields
    Slack always sends, as Bolt reads it (each field's first value); None when it is neither. (A JSON
    body, events, is checked by `_objects_where_due`.)"""
    try:
        form = {name: values[0] for name, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        if "command" in form:
            shaped = all(form.get(field) for field in ("user_id", "channel_id"))
        else:
            shaped = "payload" not in form or _objects_where_due(json.loads(form["payload"]))
    except (UnicodeDecodeError, ValueError):
        return None
    return form if shaped else None


# The parts of each kind of payload that Bolt and the listeners read as objects (or lists of them).
_SHAPES: dict[str, dict[str, type]] = {
    "event_callback": {"event": dict},
    "block_actions": {"user": dict, "actions": list},
    "view_submission": {"user": dict, "view": dict},
    "view_closed": {"user": dict, "view": dict},
}


def _objects_where_due(payload: object) -> TypeGuard[dict[str, Any]]:
    """A JSON object whose parts Bolt and the listeners read as objects are objects."""
    if not isinstance(payload, dict):
        return False
    shape = _SHAPES.get(str(payload.get("type")), {})
    return all(isinstance(payload.get(field), kind) for field, kind in shape.items()) and all(
        isinstance(item, dict) for item in payload.get("actions") or [])


def _refuse(resp: falcon.Response, status: int, reason: str) -> None:
    _answer(resp, status, {"error": reason})


def _answer(resp: falcon.Response, status: int, body: dict[str, Any]) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json.dumps(body).encode()


def _serialize_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Falcon's own refusals (404, 405, a header it cannot read) in the shape of ours: {"error": "..."}."""
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json.dumps({"error": error.description or error.title}).encode()


def _internal_error(req: falcon.Request, resp: falcon.Response, error: Exception, params: dict[str, Any]) -> None:
    """Anything a resource did not catch: logged with its traceback (through logging, whose formatter
    redacts secrets; Falcon's default handler would print it to wsgi.errors), answered without it."""
    log.error("%s %s failed (%s); answered 500", req.method, req.path, type(error).__name__, exc_info=error)
    _answer(resp, 500, {"error": "internal error"})
