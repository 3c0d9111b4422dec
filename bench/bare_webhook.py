"""The floor for the alert-storm benchmark: a WSGI app that reads a webhook's body and answers 200 with
a small JSON, on the same server the bot uses (waitress through HttpServer), and does nothing else.

Run as `python bench/bare_webhook.py PORT`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from handlers.http import HttpServer


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    body = b'{"stored": 0}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    HttpServer(app, host="127.0.0.1", port=int(sys.argv[1])).run()
