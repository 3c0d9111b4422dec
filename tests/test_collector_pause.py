"""The cyclic collector held off while a postmortem is drafted (bot.postmortem.service.collector_paused),
and let run again for what may take long or make cycles by the thousand (collector_resumed)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Collection, Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.postmortem.service import collector_paused, collector_resumed
from tests.test_postmortem_streaming import START, _incident, _service, store  # noqa: F401 - store: a fixture


@pytest.fixture(autouse=True)
def collecting() -> Iterator[None]:
    """Each test starts with the collector on, and leaves it as it found it."""
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_a_pause_holds_the_collector_off_and_resumed_lets_it_run_meanwhile() -> None:
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested in the same thread: resumed lifts both
            with collector_resumed():
                assert gc.isenabled()
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_resumed_outside_a_pause_changes_nothing() -> None:
    with collector_resumed():
        assert gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # someone else's choice: not ours to undo
    with collector_resumed():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_another_threads_pause_keeps_the_collector_off_through_resumed() -> None:
    holding, done = threading.Event(), threading.Event()

    def draft_elsewhere() -> None:
        with collector_paused():
            holding.set()
            done.wait(10)

    other = threading.Thread(target=draft_elsewhere)
    other.start()
    try:
        assert holding.wait(10)
        with collector_paused(), collector_resumed():
            assert not gc.isenabled()  # the other draft still holds it off
    finally:
        done.set()
        other.join(10)
    assert gc.isenabled()


class _Slack:
    """Names whatever it is asked about, and notes whether the collector was on when asked."""

    def __init__(self) -> None:
        self.collecting: list[bool] = []

    def _names(self, ids: Collection[str]) -> dict[str, str]:
        self.collecting.append(gc.isenabled())
        return {i: f"name-of-{i}" for i in ids}

    users = channels = usergroups = _names


@pytest.mark.parametrize("stream_above", [0, 10_000])  # streamed, and read whole
def test_slack_is_asked_for_names_with_the_collector_on(store: Any, stream_above: int) -> None:  # noqa: F811
    clock = ManualClock(START - timedelta(minutes=1))
    incident_id = _incident(store, clock, 60)
    slack = _Slack()
    service = _service(store, clock, slack=slack, stream_above=stream_above)  # type: ignore[arg-type]
    view = service.request(incident_id, "U0ALICE", "k-pm")
    assert view is not None
    assert service.draft(view.id).markdown
    assert slack.collecting and all(slack.collecting)  # the incident names people the store has no name for
    assert gc.isenabled()
