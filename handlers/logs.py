"""Logging set-up: plain lines for people, or JSON lines for a log pipeline, never with a secret in them.

Every line about an incident carries its number: work done for an incident runs inside `about(number)`
(the slash command's listener, and what it hands to Background, which keeps the context), and lines
written elsewhere follow the convention of starting with "incident <number>:".
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from bot.config import REDACTED

_incident: ContextVar[int | None] = ContextVar("incident", default=None)
_ABOUT_AN_INCIDENT = re.compile(r"^incident (\d+)\b")


@contextmanager
def about(number: int | None) -> Iterator[None]:
    """Lines logged inside (and in Background work submitted from inside) are about this incident."""
    token = _incident.set(number)
    try:
        yield
    finally:
        _incident.reset(token)


def incident_of(record: logging.LogRecord, message: str) -> int | None:
    number = getattr(record, "incident", None) or _incident.get()
    if number is None and (found := _ABOUT_AN_INCIDENT.match(message)):
        number = int(found.group(1))
    return number


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, incident, error."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        number = incident_of(record, message)
        if number is not None:
            line["incident"] = number
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        number = incident_of(record, record.getMessage())
        if number is not None and not _ABOUT_AN_INCIDENT.match(record.getMessage()):
            text += f" [incident {number}]"
        return text


class Redacting(logging.Formatter):
    """Blanks the configured secrets in the finished line, tracebacks included, wherever they hide."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self._inner = inner
        kept = {s for s in secrets if len(s) >= 6}
        escaped = {json.dumps(s, ensure_ascii=False)[1:-1] for s in kept}  # as they appear inside a JSON line
        self._secrets = sorted(kept | escaped, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = self._inner.format(record)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def configure_logging(secrets: Iterable[str], level: int = logging.INFO, *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Redacting(JsonFormatter() if json_lines else PlainFormatter(), secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
