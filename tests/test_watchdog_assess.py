"""The watchdog's verdict on its samples (pure): when an episode may open, and when it may clear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.config import WatchdogSection
from bot.diagnostics.watchdog import Sample, assess

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
CONFIG = WatchdogSection()


def samples(*in_use: int | None, usable: int = 100) -> list[Sample]:
    return [Sample(START + timedelta(seconds=30 * i), n, usable if n is not None else None) for i, n in enumerate(in_use)]


def test_a_quiet_target_is_calm_and_a_full_one_is_not() -> None:
    assert assess(samples(10, 10, 11), CONFIG).calm
    full = assess(samples(90, 92, 95), CONFIG)
    assert not full.calm and any("usable connections in use" in reason for reason in full.reasons)


def test_a_target_that_cannot_be_read_is_never_calm() -> None:
    """An unreachable target's sample has no figures: clearing an open episode on it would tell the
    channel the trouble is over while nobody can see the database."""
    verdict = assess(samples(50, 50, None), CONFIG)  # flat before it went dark: only the blind sample decides
    assert not verdict.calm


def test_a_refusing_target_is_full_not_calm() -> None:
    refused = [*samples(96, 97), Sample(START + timedelta(minutes=2), None, None, refused="too many clients")]
    verdict = assess(refused, CONFIG)
    assert not verdict.calm and any("refuses new connections" in reason for reason in verdict.reasons)


def test_a_few_sessions_opened_at_start_are_no_trend() -> None:
    """Seen by a new user: 0, 2, 2 of 97 connections alerted "run out in about 3 min" with a chart."""
    assert assess(samples(0, 2, 2, usable=97), CONFIG).reasons == []
    assert assess(samples(0, 0, 1, usable=97), CONFIG).reasons == []


def test_a_leak_past_a_fifth_of_the_limit_is_a_trend() -> None:
    verdict = assess(samples(2, 10, 18, 26, usable=97), CONFIG)
    assert any("run out in about" in reason for reason in verdict.reasons)
