"""Incident channel names: `<prefix>-<yyyymmdd>-<slug>`, valid for Slack whatever the title.

Slack accepts lowercase letters, digits, `-` and `_`, at most 80 characters. The slug comes from the title;
accents are folded to ASCII, other scripts fall back to `incident-<number>`. A private incident's channel
is always `<prefix>-<yyyymmdd>-incident-<number>`: its name must not tell its title.
"""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import date

MAX_CHANNEL_NAME = 80
_SLACK_MARKUP = re.compile(r"<[@#!]?[^|>]*\|([^>]*)>|<[@#!]?([^>]*)>")
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")


def channel_name(prefix: str, day: date, title: str, number: int, attempt: int = 1, *, private: bool = False) -> str:
    """The name to try on `attempt` (1, 2, 3…): attempts after the first get `-2`, `-3`… so that a name
    Slack reports as taken is followed by the next free one, never longer than Slack allows.
    `private`: the slug is `incident-<number>` whatever the title, since a channel's name is shown
    outside it (a `<#C…>` link names it, and so does Slack's channel browser for admins)."""
    suffix = "" if attempt <= 1 else f"-{attempt}"
    head = f"{prefix}-{day:%Y%m%d}-"
    room = MAX_CHANNEL_NAME - len(head) - len(suffix)
    slug = slugify(f"incident-{number}", room) if private else slugify(title, room) or slugify(f"incident-{number}", room)
    return f"{head}{slug}{suffix}"


def slugify(text: str, max_length: int) -> str:
    """Lowercase ASCII words joined by `-`, cut at a word boundary to at most max_length characters."""
    text = html.unescape(_SLACK_MARKUP.sub(lambda m: m.group(1) or m.group(2) or "", text))
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_ALLOWED.sub("-", ascii_text.lower()).strip("-")
    if len(slug) <= max_length:
        return slug
    cut = slug[: max_length + 1]
    boundary = cut.rfind("-")
    return (cut[:boundary] if boundary > 0 else slug[:max_length]).strip("-")


def is_valid_channel_name(name: str) -> bool:
    return 0 < len(name) <= MAX_CHANNEL_NAME and re.fullmatch(r"[a-z0-9_-]+", name) is not None
