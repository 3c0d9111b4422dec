"""The window a report covers, as people type it: `--since 90d`, `--since 12w`, `--since 2026-09-01`."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_SINCE = "90d"
FORMS = "<n>d (days, e.g. 90d), <n>w (weeks, e.g. 12w) or an ISO date (YYYY-MM-DD, from 00:00 in the configured zone)"
MAX_DAYS = 36_600  # a century: more is a typo, and would overflow a datetime


class SinceError(ValueError):
    """`--since` was not one of FORMS; the message says what was wrong and the right forms."""


def parse_since(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """The start of the window ending `now` (aware): `<n>d` and `<n>w` count back from now; a date is
    its 00:00 in `zone`. Raises SinceError for anything else, a zero length, or a date after now."""
    typed = text.strip()
    relative = re.fullmatch(r"([0-9]+)\s*([dDwW])", typed)
    if relative:
        days = int(relative[1]) * (7 if relative[2].lower() == "w" else 1)
        if days == 0:
            raise SinceError(f"--since {typed!r} is an empty window; give {FORMS}.")
        if days > MAX_DAYS:
            raise SinceError(f"--since {typed!r} goes back more than a century; give {FORMS}.")
        return now - timedelta(days=days)
    try:
        day = date.fromisoformat(typed) if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", typed) else None
    except ValueError as error:
        raise SinceError(f"--since {typed!r} is not a real date ({error}); give {FORMS}.") from None
    if day is None:
        raise SinceError(f"--since {typed!r} is not understood; give {FORMS}.")
    start = datetime.combine(day, time(0), tzinfo=zone)
    if now - start > timedelta(days=MAX_DAYS):
        raise SinceError(f"--since {typed!r} goes back more than a century; give {FORMS}.")
    if start >= now:
        raise SinceError(f"--since {typed!r} is not in the past (now is {now.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}); "
                         f"give {FORMS}.")
    return start
