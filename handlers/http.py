"""The HTTP edge: Slack at POST /slack/events, GET /healthz and GET /metrics, served by waitress."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

from handlers.app import Runtime
from handlers.paging import pagerduty_webhook
from storage.database import ping

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # Slack's payloads are small; anything larger is refused with 413
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class BotWsgiApp:
    """`slack_events=False` in Socket Mode: Slack comes over the WebSocket, and the app (which then does
    not check signatures) must not be reachable over HTTP; health, metrics and webhooks still are."""

    def __init__(self, runtime: Runtime, *, slack_events: bool = True) -> None:
        self._runtime = runtime
        self._slack = SlackRequestHandler(runtime.app, path="/slack/events") if slack_events else None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/slack/events" and self._slack is not None:
            return self._slack(environ, start_response)
        if path == "/webhooks/pagerduty" and method == "POST":
            return self._pagerduty(environ, start_response)
        if path == "/healthz" and method in ("GET", "HEAD"):
            return self._health(start_response)
        if path == "/metrics" and method in ("GET", "HEAD"):
            metrics = self._runtime.services.metrics
            return _respond(start_response, "200 OK", metrics.content_type, metrics.render())
        return _respond(start_response, "404 Not Found", "text/plain; charset=utf-8", b"not found\n")

    def _pagerduty(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        status, answer = pagerduty_webhook(self._runtime.services, body, environ.get("HTTP_X_PAGERDUTY_SIGNATURE"))
        phrase = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized"}[status]
        return _respond(start_response, phrase, "application/json", json.dumps(answer).encode())

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
            self._server.trigger.pull_trigger(close_all)
            self._thread.join(timeout=5)
        else:
            close_all()


def _respond(start_response: StartResponse, status: str, content_type: str, body: bytes) -> Iterable[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
