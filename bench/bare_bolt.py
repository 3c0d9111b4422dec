"""The floor for benchmarks: a Bolt app that only acknowledges, on the same server the bot uses.

Run as `python bench/bare_bolt.py PORT` with SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_API_URL set.
"""

from __future__ import annotations

import os
import sys

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from handlers.http import HttpServer
from handlers.slack_client import make_web_client


def main(port: int) -> None:
    client = make_web_client(os.environ["SLACK_BOT_TOKEN"], os.environ["SLACK_API_URL"])
    app = App(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"], process_before_response=True)

    @app.event("message")
    def acknowledge_only() -> None:
        pass

    @app.command("/incident")
    def acknowledge_command(ack) -> None:  # type: ignore[no-untyped-def]
        ack()

    HttpServer(SlackRequestHandler(app), host="127.0.0.1", port=port).run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
