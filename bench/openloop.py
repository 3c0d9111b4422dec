"""An open-loop load generator: sends pre-built Slack requests on a fixed schedule (request i at
start + i / rate), whether or not earlier ones were answered, and times each from the moment it was
*meant* to be sent to its last response byte. A slow answer therefore cannot hold the next requests
back and hide its own cost (coordinated omission): requests that had to wait for the client are
charged that wait too.

Run by ack_latency.py as a process of its own, so that neither the Slack simulator (which the bot
talks to while it works) nor the orchestration shares its interpreter. It reads a JSON spec on stdin:

    {"port": 3000, "rate": 100, "secret": "...", "requests": [["application/json", "<body>"], ...]}

signs every request once at start (Slack allows five minutes of skew), and writes on stdout, as JSON,
each request's latency and send lag (seconds) and HTTP status (0 if it failed or took over 30 s).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from typing import Any

TIMEOUT = 30.0


def _signed(port: int, secret: str, content_type: str, body: bytes, stamp: int) -> bytes:
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + str(stamp).encode() + b":" + body, hashlib.sha256).hexdigest()
    head = (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nX-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: {signature}\r\n\r\n")
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    """Send one request on a connection and read its whole answer: (status, whether to keep the connection)."""
    writer.write(request)
    status = int((await reader.readline()).split()[1])
    length, chunked, keep = 0, False, True
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            keep = False
    if chunked:
        while (size := int((await reader.readline()).split(b";")[0], 16)) > 0:
            await reader.readexactly(size + 2)
        await reader.readline()
    elif length:
        await reader.readexactly(length)
    return status, keep


async def drive(port: int, rate: float, requests: list[bytes]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    count = len(requests)
    latency = [0.0] * count
    lag = [0.0] * count
    status = [0] * count
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []  # keep-alive connections, free
    opened = 0

    async def one(i: int, meant: float) -> None:
        nonlocal opened
        lag[i] = loop.time() - meant
        connection = None
        try:
            if idle:
                connection = idle.pop()
            else:
                connection = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
                opened += 1
            status[i], keep = await asyncio.wait_for(_exchange(*connection, requests[i]), TIMEOUT)
            latency[i] = loop.time() - meant
            if keep:
                idle.append(connection)
            else:
                connection[1].close()
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            status[i] = 0
            latency[i] = loop.time() - meant
            if connection is not None:
                connection[1].close()

    tasks = []
    start = loop.time() + 0.1
    for i in range(count):
        meant = start + i / rate
        if (wait := meant - loop.time()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(i, meant)))
    await asyncio.gather(*tasks)
    seconds = loop.time() - start
    for _, writer in idle:
        writer.close()
    return {"latency": latency, "lag": lag, "status": status, "seconds": seconds, "connections": opened}


def main() -> None:
    spec = json.load(sys.stdin)
    stamp = int(time.time())
    requests = [_signed(spec["port"], spec["secret"], kind, body.encode(), stamp) for kind, body in spec["requests"]]
    json.dump(asyncio.run(drive(spec["port"], spec["rate"], requests)), sys.stdout)


if __name__ == "__main__":
    main()
