"""Counts in words, as people write them: "1 follow-up", "2 follow-ups", "1 entry", "3 entries"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and the noun, singular for exactly one; `plural` for a noun that does not take an "s"."""
    return f"{count} {noun}" if count == 1 else f"{count} {plural or noun + 's'}"
