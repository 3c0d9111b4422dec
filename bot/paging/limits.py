"""Fitting text into a provider's field limits honestly: shortened with "…", never silently cut.

The rules themselves (which field, how long, which document says so) live beside the provider that
has them (bot.paging.pagerduty, bot.paging.opsgenie); these are the shared mechanics. Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

ELLIPSIS = "…"
_SURROGATE = re.compile("[\ud800-\udfff]")  # in a str, always lone: JSON's pairs decode to one character


def clean(text: str) -> str:
    """`text` with lone surrogates (which UTF-8 cannot encode, so httpx could not send) as U+FFFD.
    They cannot come from Slack or TOML, but a provider's webhook JSON may carry one ("\\ud800")."""
    return _SURROGATE.sub("\ufffd", text)


def shorten(text: str, limit: int) -> str:
    """`text` (cleaned) if it has at most `limit` characters (code points, as the providers count
    them), else its first characters, trailing whitespace dropped, and "…": at most `limit` in all."""
    text = clean(text)
    if len(text) <= limit:
        return text
    if limit < 1:
        return ""
    return text[: limit - 1].rstrip() + ELLIPSIS


def fit_values(values: Mapping[str, str], fits: Callable[[dict[str, str]], bool]) -> dict[str, str]:
    """`values` with the longest ones shortened (each to one common length, so short values stay
    whole) until `fits` says the result fits; the longest common length that fits is used. When even
    "…" for every long value does not fit, that is returned (the caller decides what else to drop).

    `fits` should be monotonic (if the values fit, shorter ones fit too, as with any total size) for
    the longest fitting length to be found; a result other than the "…" fallback was always checked.
    """
    whole = {key: clean(value) for key, value in values.items()}
    if not whole or fits(whole):
        return whole
    best, low, high = 1, 1, max(len(v) for v in whole.values()) - 1  # `whole` is `cap` = the longest
    while low <= high:  # binary search for the longest cap that fits; only a checked one is kept
        cap = (low + high) // 2
        if fits(_capped(whole, cap)):
            best, low = cap, cap + 1
        else:
            high = cap - 1
    return _capped(whole, best)


def _capped(values: Mapping[str, str], cap: int) -> dict[str, str]:
    return {key: shorten(value, cap) for key, value in values.items()}
