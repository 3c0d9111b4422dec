"""How an error message names a JSON value it did not expect, for the payloads the bot reads from other
tools (PagerDuty's and Opsgenie's webhooks, Alertmanager's and Grafana's notifications)."""

from __future__ import annotations

from typing import Any

SAMPLE = 40  # characters of a string shown


def shown(value: Any) -> str:
    """A JSON value as a message names it: its kind, and a short sample of a scalar, e.g. "a number (7)",
    "the string 'soon'", "an array"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        line = " ".join(value.split())
        sample = line if len(line) <= SAMPLE else line[: SAMPLE - 1].rstrip() + "…"
        return f"the string {sample!r}" if line else "an empty string"
    if isinstance(value, list):
        return "an array"
    return "an object"
