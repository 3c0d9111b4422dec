"""The key that names one page's alert at the providers, and what a team key may be.

One alert per incident (or, with the store down, per Slack channel) and team: its key is PagerDuty's
`dedup_key` and Opsgenie's `alias`, so paging the same team again updates the same alert instead of
opening another. Open pages keep the key they were created with (pages.dedup_key) and reuse it as is,
so the form of a key that fits must never change.

Limits:
- PagerDuty Events API v2, `dedup_key`: at most 255 characters (PagerDuty/api-schema,
  reference/events-v2/openapiv3.json, components.schemas.DedupKey: "maxLength": 255).
- Opsgenie Alert API, `alias`: at most 512 characters (opsgenie/opsgenie-oas, alert/...,
  CreateAlertPayload.alias), so whatever fits PagerDuty fits Opsgenie.
- The store keeps a team key in pages.team, String(64) (storage/models.py, Page.team).
"""

from __future__ import annotations

import hashlib
import unicodedata

MAX_KEY = 255  # PagerDuty's dedup_key; Opsgenie's alias allows 512
MAX_TEAM_KEY = 64  # pages.team is String(64)
_PREFIX = "incident-bot-"
_DIGEST = 16  # hex digits of SHA-256 (64 bits) that stand for what was cut


def alert_key(scope: str, team: str) -> str:
    """The alert's key for `team` in `scope` (an incident number, "42", or a Slack channel id, "C0123").

    `f"incident-bot-{scope}-{team}"` whenever that is at most MAX_KEY characters: exactly the keys the
    bot has always made, which open pages still hold. Only a longer one is shortened, stably: its first
    characters, "~", and 16 hex digits of the SHA-256 of the whole unshortened key, MAX_KEY in all. So
    the same scope and team always give the same key, and different teams (or scopes) give different
    keys unless SHA-256 collides in 64 bits.
    """
    key = f"{_PREFIX}{scope}-{team}"
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST]
    return f"{key[: MAX_KEY - _DIGEST - 1]}~{digest}"


def team_key_problem(key: str) -> str | None:
    """What is wrong with `key` as a team's key (the name in `[teams.<key>]`), or None when it is fine.

    Phrased to follow "teams.<key>: ": a team key is stored (pages.team, at most MAX_TEAM_KEY characters)
    and goes into every alert's key (PagerDuty's dedup_key, at most 255), is shown to people and typed in
    `/incident page <team>`, so it must be non-empty, at most MAX_TEAM_KEY characters and free of control
    characters (Unicode category Cc: tabs, newlines, escapes).
    """
    if not key.strip():
        return "a team key cannot be empty or blank; name the team, e.g. [teams.payments]"
    if len(key) > MAX_TEAM_KEY:
        return (f"a team key is at most {MAX_TEAM_KEY} characters (it is stored, and goes into PagerDuty's "
                f"dedup_key, at most {MAX_KEY}); this one has {len(key)}")
    controls = sorted({f"U+{ord(c):04X}" for c in key if unicodedata.category(c) == "Cc"})
    if controls:
        return (f"a team key cannot hold control characters (found {', '.join(controls)}); use letters, "
                "digits, '-' or '_', e.g. [teams.payments]")
    return None
