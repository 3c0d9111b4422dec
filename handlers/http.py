"""The HTTP edge: Slack at POST /slack/events, GET /healthz and GET /metrics, served by waitress."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

from handlers import pager_webhooks
from handlers.app import Runtime
from storage.database import ping

log = logging.getLogger(__name__)

SIGNATURE_WINDOW_SECONDS = 5 * 60  # Slack's own rule against replays
MAX_BODY_BYTES = 1 << 20  # Slack's payloads are small; anything larger is refused with 413
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class BotWsgiApp:
    """`slack_events=False` in Socket Mode: Slack comes over the WebSocket, and the app (which then does
    not check signatures) must not be reachable over HTTP; health, metrics and webhooks still are."""

    def __init__(self, runtime: Runtime, *, slack_events: bool = True) -> None:
        self._runtime = runtime
        self._slack = SlackRequestHandler(runtime.app, path="/slack/events") if slack_events else None
        self._secret = (runtime.settings.env.slack_signing_secret or "").encode()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/slack/events" and self._slack is not None:
            return self._slack_request(environ, start_response)
        if path == "/webhooks/pagerduty" and method == "POST":
            return self._webhook(environ, start_response, lambda body: pager_webhooks.pagerduty(
                self._runtime.services, body, environ.get("HTTP_X_PAGERDUTY_SIGNATURE")))
        if path == "/webhooks/opsgenie" and method == "POST":
            return self._webhook(environ, start_response, lambda body: pager_webhooks.opsgenie(
                self._runtime.services, body, environ.get("HTTP_AUTHORIZATION")))
        if path == "/healthz" and method in ("GET", "HEAD"):
            return self._health(start_response)
        if path == "/metrics" and method in ("GET", "HEAD"):
            metrics = self._runtime.services.metrics
            return _respond(start_response, "200 OK", metrics.content_type, metrics.render())
        return _respond(start_response, "404 Not Found", "text/plain; charset=utf-8", b"not found\n")

    def _slack_request(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Bolt parses a body before it checks its signature, and some malformed bodies make it raise:
        so the signature and the body's shape are checked here first, and what Bolt still cannot take is
        a 400. Nothing unsigned reaches the app; no answer carries a traceback."""
        assert self._slack is not None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse(start_response, "400 Bad Request", "bad Content-Length")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        if _ssl_check(environ, body):  # unsigned by design, and nothing in it can be acted on
            return _respond(start_response, "200 OK", "text/plain; charset=utf-8", b"")
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or ""
        signature = environ.get("HTTP_X_SLACK_SIGNATURE") or ""
        if not _signed(self._secret, body, timestamp, signature):
            return _refuse(start_response, "401 Unauthorized", "invalid or stale signature")
        if not _slack_shaped(body, environ.get("CONTENT_TYPE") or ""):
            return _refuse(start_response, "400 Bad Request", "not a Slack payload")
        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        try:
            return self._slack(environ, start_response)
        except Exception as error:  # Bolt could not make sense of a signed payload (not a listener: Bolt catches those)
            log.warning("a signed Slack request could not be handled (%s); answered 400", type(error).__name__)
            return _refuse(start_response, "400 Bad Request", "malformed Slack payload")

    def _webhook(self, environ: dict[str, Any], start_response: StartResponse,
                 handle: Callable[[bytes], tuple[int, dict[str, Any]]]) -> Iterable[bytes]:
        """A provider's webhook: its body (at most MAX_BODY_BYTES; waitress answers 413 past it) to
        `handle`, and its answer as JSON."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse(start_response, "400 Bad Request", "bad Content-Length")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        status, answer = handle(body)
        return _respond(start_response, f"{status} {HTTPStatus(status).phrase}", "application/json", json.dumps(answer).encode())

    def _health(self, start_response: StartResponse) -> Iterable[bytes]:
        spooled = self._runtime.services.timeline.spooled
        try:
            ping(self._runtime.engine)
        except Exception as error:
            log.warning("health check: the store does not answer: %s", type(error).__name__)
            body = {"status": "unavailable", "database": f"not answering ({type(error).__name__})", "spooled": spooled}
            return _respond(start_response, "503 Service Unavailable", "application/json", json.dumps(body).encode())
        body = {"status": "ok", "database": "ok", "spooled": spooled}
        return _respond(start_response, "200 OK", "application/json", json.dumps(body).encode())


class HttpServer:
    """waitress serving a WSGI app (the bot's, or in benchmarks a bare Bolt app): `serve` blocks on it,
    tests and the demo run it on a thread of its own."""

    def __init__(self, application: WsgiApp, host: str = "0.0.0.0", port: int = 3000, threads: int = 16) -> None:
        self._server = create_server(
            application,
            host=host,
            port=port,
            threads=threads,
            max_request_body_size=MAX_BODY_BYTES,
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


def _signed(secret: bytes, body: bytes, timestamp: str, signature: str) -> bool:
    """Slack's v0 signature over the raw bytes, from the last five minutes (slack_sdk's verifier decodes
    the body as UTF-8 first, and raises on bytes that are not)."""
    if not secret or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        return False
    expected = "v0=" + hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def _ssl_check(environ: dict[str, Any], body: bytes) -> bool:
    """Slack's certificate check of a slash command's URL: `ssl_check=1` and, at most, the (deprecated)
    verification `token`, form-encoded in a POST body (or, as Slack once sent it, a GET's query), sent
    without a signature; Slack asks for a 200 and nothing else (Slack: "Implementing slash commands",
    "SSL"; bolt-python answers it in slack_bolt/middleware/ssl_check/ssl_check.py, before verifying
    signatures). Anything more, such as a command's fields beside `ssl_check=1`, is not one: it goes on
    to the signature check like every other request."""
    method, query = environ.get("REQUEST_METHOD", ""), environ.get("QUERY_STRING") or ""
    if method == "POST" and not query and (environ.get("CONTENT_TYPE") or "").startswith("application/x-www-form-urlencoded"):
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


def _slack_shaped(body: bytes, content_type: str) -> bool:
    """A JSON object (events); a UTF-8 form whose `payload` is a JSON object (interactivity); or a slash
    command with the fields Slack always sends."""
    try:
        text = body.decode("utf-8")
        if content_type.startswith("application/json"):
            return _objects_where_due(json.loads(text))
        form = parse_qs(text, keep_blank_values=True)
        if "command" in form:
            return all(form.get(field, [""])[0] for field in ("user_id", "channel_id"))
        return "payload" not in form or _objects_where_due(json.loads(form["payload"][0]))
    except (UnicodeDecodeError, ValueError):
        return False


# The parts of each kind of payload that Bolt and the listeners read as objects (or lists of them).
_SHAPES: dict[str, dict[str, type]] = {
    "event_callback": {"event": dict},
    "block_actions": {"user": dict, "actions": list},
    "view_submission": {"user": dict, "view": dict},
    "view_closed": {"user": dict, "view": dict},
}


def _objects_where_due(payload: object) -> bool:
    if not isinstance(payload, dict):
        return False
    shape = _SHAPES.get(str(payload.get("type")), {})
    return all(isinstance(payload.get(field), kind) for field, kind in shape.items()) and all(
        isinstance(item, dict) for item in payload.get("actions") or [])


def _refuse(start_response: StartResponse, status: str, reason: str) -> Iterable[bytes]:
    return _respond(start_response, status, "application/json", json.dumps({"error": reason}).encode())


def _respond(start_response: StartResponse, status: str, content_type: str, body: bytes) -> Iterable[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
