"""The load generator every HTTP benchmark here uses: raw asyncio streams on keep-alive connections,
requests built and signed before the clock starts, in a process of its own. It must not be the
bottleneck, so it reports what it cost: its own CPU time (user + system, as a share of one core over
the phase) and how late its event loop ran (a 1 ms ticker's overshoot, p99), next to its figures.

Two loops, one per question:

- **open** (`rate`): request i goes out at start + i / rate whether or not earlier ones were answered,
  and is timed from when it was *meant* to go to its last response byte, so a stall is charged to every
  request it held up (no coordinated omission). `lag` says how late each actually went.
- **closed** (`concurrency`): that many connections, each sending its next request as soon as the last
  is answered; latency from send to answer; throughput is what the server sustains.

Run by the benchmarks as `python bench/loadgen.py`, with a JSON spec on stdin:

    {"port": 3000, "secret": "...", "rate": 100}            (open loop)  or  "concurrency": 16 (closed)
    "requests": [["application/json", "<body>"], ...]

and writes on stdout, as JSON: `latency`, `lag` (seconds, per request; lag 0 in a closed loop),
`status` (HTTP status, 0 if it failed or took over 30 s), `seconds` (the phase's wall time),
`connections` opened, `cpu_seconds` (the generator's own), `loop_lag_p99` (seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

TIMEOUT = 30.0
TICK = 0.005


def sign(port: int, secret: str, content_type: str, body: bytes, stamp: int) -> bytes:
    """One whole HTTP/1.1 request to /slack/events, signed as Slack signs (v0 HMAC-SHA256 over
    "v0:{timestamp}:{body}"; Slack: "Verifying requests from Slack")."""
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + str(stamp).encode() + b":" + body, hashlib.sha256).hexdigest()
    head = (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nX-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: {signature}\r\n\r\n")
    return head.encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection, driven by callbacks: no coroutine, future or task per request, so the
    generator's own cost per request is a write and a parse (about a tenth of what asyncio streams cost
    here). Answers must carry Content-Length, as waitress's do; one that does not, or a closed
    connection, fails the request in flight (status 0)."""

    def __init__(self, done: Callable[[_Connection, int], None]) -> None:
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.busy = True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            if at < 0:
                return self._fail()
            length = int(head[at + 15:].split(b"\r\n", 1)[0])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            self.busy = False
            self.done(self, int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy:
            self.busy = False
            self.done(self, 0)
        self.transport = None

    def _fail(self) -> None:
        assert self.transport is not None
        self.transport.close()


async def _ticker(lags: list[float], stop: asyncio.Event) -> None:
    """How late the event loop runs: sleeps TICK and records each overshoot."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        meant = loop.time() + TICK
        await asyncio.sleep(TICK)
        lags.append(max(0.0, loop.time() - meant))


async def drive(port: int, requests: list[bytes], *, rate: float | None = None, concurrency: int | None = None) -> dict[str, Any]:
    """Send `requests` open-loop at `rate` per second, or closed-loop with `concurrency` connections."""
    loop = asyncio.get_running_loop()
    count = len(requests)
    latency, lag, status = [0.0] * count, [0.0] * count, [0] * count
    meant = [0.0] * count
    in_flight: dict[_Connection, int] = {}
    idle: list[_Connection] = []
    finished = loop.create_future()
    answered = 0
    opened = 0
    following = iter(range(count))  # closed loop: the next request to send
    closed_loop = rate is None

    def done(connection: _Connection, code: int) -> None:
        nonlocal answered
        i = in_flight.pop(connection)
        status[i], latency[i] = code, loop.time() - meant[i]
        answered += 1
        if answered == count and not finished.done():
            finished.set_result(None)
        if connection.transport is None:
            return
        if closed_loop and (n := next(following, None)) is not None:
            start_one(connection, n)
        else:
            idle.append(connection)

    def start_one(connection: _Connection, i: int) -> None:
        if not closed_loop:
            lag[i] = loop.time() - meant[i]
        else:
            meant[i] = loop.time()
        in_flight[connection] = i
        connection.send(requests[i])

    async def connect() -> _Connection:
        nonlocal opened
        _, connection = await loop.create_connection(lambda: _Connection(done), "127.0.0.1", port)
        opened += 1
        return connection

    ticks: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(ticks, stop))
    cpu_before = _cpu()
    if closed_loop:
        connections = [await connect() for _ in range(concurrency or 1)]
        start = loop.time()
        for connection in connections:
            if (n := next(following, None)) is not None:
                start_one(connection, n)
    else:
        assert rate is not None
        start = loop.time() + 0.05
        for i in range(count):
            meant[i] = start + i / rate
            if (wait := meant[i] - loop.time()) > 0:
                await asyncio.sleep(wait)
            while idle and idle[-1].transport is None:
                idle.pop()
            start_one(idle.pop() if idle else await connect(), i)
    if count:
        with contextlib.suppress(TimeoutError):  # what never came back keeps status 0
            await asyncio.wait_for(finished, TIMEOUT + count / (rate or 1))
    seconds = loop.time() - start
    cpu = _cpu() - cpu_before
    stop.set()
    await ticker
    for connection in [*idle, *in_flight]:
        if connection.transport is not None:
            connection.transport.close()
    return {"latency": latency, "lag": lag, "status": status, "seconds": seconds, "connections": opened,
            "cpu_seconds": cpu, "loop_lag_p99": sorted(ticks)[int(0.99 * (len(ticks) - 1))] if ticks else 0.0}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(port: int, secret: str, requests: list[tuple[str, bytes]], *, rate: float | None = None,
        concurrency: int | None = None) -> dict[str, Any]:
    """Run the generator as a process of its own (the caller's interpreter, with the Slack simulator in
    it, must not share one with the load) and return what it wrote."""
    spec = {"port": port, "secret": secret, "rate": rate, "concurrency": concurrency,
            "requests": [[content_type, body.decode()] for content_type, body in requests]}
    done = subprocess.run([sys.executable, __file__], input=json.dumps(spec), capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def main() -> None:
    spec = json.load(sys.stdin)
    stamp = int(time.time())  # Slack accepts a timestamp within five minutes; signed once, before the clock
    requests = [sign(spec["port"], spec["secret"], kind, body.encode(), stamp) for kind, body in spec["requests"]]
    json.dump(asyncio.run(drive(spec["port"], requests, rate=spec.get("rate"), concurrency=spec.get("concurrency"))), sys.stdout)


if __name__ == "__main__":
    main()
