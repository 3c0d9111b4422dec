"""The streamed draft (PostmortemService.draft) against the whole-record one (build() of every entry, as
preview() makes it): the same Markdown byte for byte, on both stores; and the reads under it: the
timeline read without SQLAlchemy's type processors, and the benchmark's raw-driver floor."""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import insert, select

from bot.clock import ManualClock
from bot.followups import FollowupService
from bot.incidents import commands as c
from bot.incidents.service import IncidentService
from bot.incidents.values import EntryKind, Severity
from bot.postmortem.draft import offset_around, offset_changes, offsets
from bot.postmortem.service import PostmortemService
from bot.postmortem.templates import PostmortemTemplate, _environment, default_template
from bot.timeline import TimelineService, item_of
from storage import postmortems as postmortem_store
from storage import timeline as timeline_store
from storage.database import make_engine, make_session_factory, migrate, transaction
from storage.models import Person, TimelineEntry, WatchdogAlert

PARIS = ZoneInfo("Europe/Paris")
SECRET = "xoxb-not-a-real-token-42"
# Saturday 25 October 2026, 22:30 Paris (summer time, UTC+2): the night summer time ends, so the
# timeline crosses midnight and an offset change, and every time shows its offset.
START = datetime(2026, 10, 25, 20, 30, tzinfo=UTC) - timedelta(days=1)


@pytest.fixture
def store(database_url: str) -> Any:
    engine = make_engine(database_url)
    migrate(engine)
    yield make_session_factory(engine)
    engine.dispose()


def _incident(sessions: Any, clock: ManualClock, messages: int) -> int:
    """An incident with a bit of everything a streamed draft must count or show the same: a message
    before the declaration (the first sign), deleted messages and an unfilled placeholder, forwarded
    messages naming people and channels, mentions of people named nowhere else, key events, files,
    edits, typed notes, a linked watchdog alert at the very time of a message, a secret in three texts,
    and enough text (over 64 KiB) that the Markdown is encoded in several blocks."""
    incidents = IncidentService(sessions, clock)
    incident = incidents.declare(c.Declare(title="Night <@U0ZED> outage", severity=Severity.SEV2), "U0ALICE", "k-declare").incident
    incidents.record_channel(incident.id, "C0INC", "inc-night")
    with transaction(sessions) as session:
        session.execute(insert(Person), [{"user_id": "U0ALICE", "name": "Alice", "updated_at": START},
                                         {"user_id": "U0BOB", "name": "Bob_the *builder*", "updated_at": START}])
        session.execute(insert(WatchdogAlert), [{"target": "primary", "opened_at": START + timedelta(minutes=7),
                                                 "reasons": ["pool at 95%"], "incident_id": incident.id}])
    rows: list[dict[str, Any]] = []
    for n in range(messages):
        at = START + timedelta(minutes=7) + timedelta(seconds=37 * n) if n else START - timedelta(minutes=3)
        ts = f"{int(at.timestamp())}.{n:06d}"
        row: dict[str, Any] = {
            "incident_id": incident.id, "kind": EntryKind.MESSAGE.value, "occurred_at": at,
            "actor_id": ("U0ALICE", "U0BOB", "U0CAROL", None)[n % 4] if n % 97 else None,
            "text": f"message {n}: pool _at_ {n % 100}% *again* " + "padding " * 20, "files": None,
            "channel_id": "C0INC", "slack_ts": ts, "thread_ts": None, "permalink": None,
        }
        if row["actor_id"] is None and n % 97:
            row["actor_id"] = "U0DAVE"
        if n % 11 == 3:
            row["text"] += f" <@U0MENTIONED{n % 3}> see <#C0OTHER> and <!subteam^S0DBA>"
        if n % 13 == 5:
            row["deleted_at"] = at + timedelta(seconds=5)
            row["text"] = f"deleted-{n:05d} {row['text']}"
        if n % 17 == 2:
            row["data"] = {"shared": [{"author_id": "U0FORWARDED", "channel_id": "C0FROM", "text": f"from afar <@U0FAR{n % 2}>"}]}
        if n % 19 == 4:
            row["key_marks"] = ["pin"]
            row["files"] = [{"name": "p99.png", "title": "p99"}]
            row["edited_at"] = at + timedelta(seconds=9)
            row["earlier_texts"] = [{"text": "before", "until": (at + timedelta(seconds=9)).isoformat()}]
        if n in (1, messages // 2, messages - 1):  # in the first block of the Markdown's encoding, one in between, the last
            row["text"] += f" the token is {SECRET} oops"
        rows.append(row)
    placeholder = {**rows[-1], "slack_ts": "1.000001", "actor_id": None, "text": "", "occurred_at": START + timedelta(hours=1)}
    with transaction(sessions) as session:
        for row in [*rows, placeholder]:
            session.execute(insert(TimelineEntry), [row])
    clock.advance(START + timedelta(minutes=30) - clock.now())
    incidents.apply(incident.id, c.SetSeverity(Severity.SEV1), "U0BOB", "k-sev1")
    with transaction(sessions) as session:
        session.execute(insert(TimelineEntry), [{"incident_id": incident.id, "kind": EntryKind.HYPOTHESIS.value,
                                                 "occurred_at": START + timedelta(minutes=7), "actor_id": "U0ERIN",
                                                 "text": "the <@U0TYPED> index", "data": None}])
    FollowupService(sessions, clock, timedelta(days=1)).add(incident.id, "Fix the pool", "U0BOB", "U0ALICE", "k-f1")
    clock.advance(START + timedelta(hours=5) - clock.now())
    incidents.apply(incident.id, c.Resolve("Rolled back"), "U0BOB", "k-resolve")
    incidents.apply(incident.id, c.Close(), "U0BOB", "k-close")
    return incident.id


class Slack:
    """Names whatever it is asked about, and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def _names(self, ids: Collection[str]) -> dict[str, str]:
        self.asked |= set(ids)
        return {i: f"name-of-{i}" for i in ids}

    users = channels = usergroups = _names


def _service(sessions: Any, clock: ManualClock, template: PostmortemTemplate | None = None,
             slack: Slack | None = None, stream_above: int = 0) -> PostmortemService:
    """Streaming every draft (`stream_above=0`), unless told otherwise: the streamed path is what this
    file tests, and its incidents are smaller than the service's own threshold."""
    return PostmortemService(sessions, clock, zone=PARIS, template=template or default_template(), team_names={},
                             bot_user_id="U0BOT", secrets=[SECRET], lookup=slack or Slack(), stream_above=stream_above)


class _Counted:
    """How many times the draft read the timeline's channel messages, and how."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads: list[str] = []
        for module, name in ((timeline_store, "entry_rows"), (postmortem_store, "message_groups"),
                             (postmortem_store, "message_markup_rows"), (postmortem_store, "message_times")):
            real = getattr(module, name)
            monkeypatch.setattr(module, name, self._counting(name, real))

    def _counting(self, name: str, real: Any) -> Any:
        def read(*args: Any, **kwargs: Any) -> Any:
            self.reads.append(f"{name}(messages={kwargs.get('messages')})" if name == "entry_rows" else name)
            return real(*args, **kwargs)
        return read


@pytest.mark.parametrize("stream_above", [0, 10_000], ids=["streamed", "read-whole"])
def test_the_streamed_draft_is_the_whole_records_draft_byte_for_byte(store: Any, stream_above: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether the draft streams the messages (a timeline longer than `stream_above`) or reads the
    timeline once, whole (shorter ones: one pass costs less than two), the Markdown is the same."""
    clock = ManualClock(START - timedelta(minutes=1))
    incident_id = _incident(store, clock, 700)
    slack = Slack()
    service = _service(store, clock, slack=slack, stream_above=stream_above)
    whole = service.preview(incident_id)  # build() of every entry as one record, render() at once
    asked, slack.asked = slack.asked, set()
    view = service.request(incident_id, "U0ALICE", "k-pm")
    assert view is not None
    counted = _Counted(monkeypatch)
    drafted = service.draft(view.id)
    if stream_above:
        assert counted.reads == ["entry_rows(messages=None)"]
    else:  # the other entries and the first message, the messages counted (those that may name someone
        # read), then streamed; their times are not read: the offset changes once (October 25)
        assert counted.reads == ["entry_rows(messages=False)", "entry_rows(messages=True)", "message_groups",
                                 "message_markup_rows", "entry_rows(messages=True)"]

    assert drafted.markdown == whole
    assert service.get(view.id).markdown == whole  # what was stored, read back as text
    assert isinstance(drafted.content, bytes) and drafted.content == whole.encode()
    assert len(whole.encode()) > 2 * 65536  # encoded in several blocks
    assert SECRET not in whole and whole.count("the token is [redacted] oops") == 3
    assert "deleted-" not in whole
    assert "UTC+02:00" in whole and "UTC+01:00" in whole  # the offset changes: every time shows its own
    assert "### Sunday, October 25, 2026" in whole  # past midnight
    # Named nowhere but in messages (a mention, a forwarded message's author, its text, a channel): asked of Slack.
    assert {"U0MENTIONED1", "U0FORWARDED", "U0FAR1", "C0OTHER", "C0FROM", "S0DBA", "U0DAVE"} <= slack.asked == asked
    assert "name-of-U0MENTIONED1" in whole and "name-of-U0FAR1" in whole
    assert service.draft(view.id) == service.get(view.id)  # drafted once: returned as stored


@pytest.mark.parametrize("in_summer", [False, True], ids=["winter-only", "one-in-summer"])
def test_a_streamed_incident_across_a_summer_reads_its_messages_times_and_drafts_as_the_whole_record(
        store: Any, in_summer: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paris's offset changes twice between the first message and the last (winter, summer, winter): the
    counts alone cannot tell whether a message was in the summer, so the streamed draft reads the shown
    messages' times, and each time shows its offset exactly when the whole record's draft shows it."""
    clock = ManualClock(datetime(2026, 2, 1, 9, 0, tzinfo=UTC))
    incidents = IncidentService(store, clock)
    incident = incidents.declare(c.Declare(title="The long one", severity=Severity.SEV3), "U0ALICE", "k-long").incident
    incidents.record_channel(incident.id, "C0LONG", "inc-long")
    times = [datetime(2026, 2, 1, 9, 5, tzinfo=UTC), datetime(2026, 11, 20, 9, 0, tzinfo=UTC)]
    if in_summer:
        times.insert(1, datetime(2026, 7, 1, 9, 0, tzinfo=UTC))
    summer_deleted = datetime(2026, 7, 2, 9, 0, tzinfo=UTC)  # deleted: not shown, so its offset does not count
    with transaction(store) as session:
        session.execute(insert(TimelineEntry), [
            {"incident_id": incident.id, "kind": EntryKind.MESSAGE.value, "occurred_at": at, "actor_id": "U0BOB",
             "text": f"message {n}", "channel_id": "C0LONG", "slack_ts": f"{int(at.timestamp())}.{n:06d}", "data": None,
             "deleted_at": at if at == summer_deleted else None}
            for n, at in enumerate([*times, summer_deleted])])
    clock.advance(datetime(2026, 11, 20, 10, 0, tzinfo=UTC) - clock.now())
    incidents.apply(incident.id, c.Resolve("Rolled back"), "U0BOB", "k-resolve")
    incidents.apply(incident.id, c.Close(), "U0BOB", "k-close")
    service = _service(store, clock)
    whole = service.preview(incident.id)
    view = service.request(incident.id, "U0ALICE", "k-pm")
    assert view is not None
    counted = _Counted(monkeypatch)

    assert service.draft(view.id).markdown == whole
    assert counted.reads == ["entry_rows(messages=False)", "entry_rows(messages=True)", "message_groups",
                             "message_markup_rows", "message_times", "entry_rows(messages=True)"]
    assert ("**11:00 UTC+02:00** · **Message**" in whole) is in_summer  # July 1st's message, in summer time
    assert ("**10:05 UTC+01:00** · **Message**" in whole) is in_summer  # the first: its offset shown only then
    assert f"message {len(times)}" not in whole and "_1 deleted message left out._" in whole


def test_a_streamed_draft_is_not_stored_over_another_processs(store: Any) -> None:
    clock = ManualClock(START - timedelta(minutes=1))
    incident_id = _incident(store, clock, 50)
    service = _service(store, clock)
    view = service.request(incident_id, "U0ALICE", "k-pm")
    assert view is not None
    from storage import postmortems

    with transaction(store) as session:  # another process drafted it after this one read it
        assert postmortems.store_markdown(session, view.id, "theirs ✓ 📌\n".encode(), None, None, clock.now())
    with transaction(store) as session:
        assert not postmortems.store_markdown(session, view.id, b"ours\n", None, None, clock.now())
    assert service.draft(view.id).markdown == "theirs ✓ 📌\n"


def test_a_team_template_that_fails_in_the_timeline_falls_back_to_the_whole_default_draft(store: Any) -> None:
    """The failing template has read part of the stream; the default one reads it again, from the start."""
    clock = ManualClock(START - timedelta(minutes=1))
    incident_id = _incident(store, clock, 120)
    failing = PostmortemTemplate(_environment().from_string(
        "{% for day in draft.days %}{% for e in day.entries %}{{ e.text }}{{ e.nothing.here }}\n{% endfor %}{% endfor %}"),
        "team.md.j2")
    service = _service(store, clock, failing)
    whole = _service(store, clock).preview(incident_id)
    view = service.request(incident_id, "U0ALICE", "k-pm")
    assert view is not None
    drafted = service.draft(view.id)
    assert drafted.problem is not None and "team.md.j2" in drafted.problem
    assert drafted.markdown == whole


def test_a_template_that_reads_only_the_first_entry_of_each_day_gets_every_day(store: Any) -> None:
    clock = ManualClock(START - timedelta(minutes=1))
    incident_id = _incident(store, clock, 300)
    environment = SandboxedEnvironment(undefined=StrictUndefined, extensions=["jinja2.ext.loopcontrols"])
    firsts = PostmortemTemplate(environment.from_string(
        "{% for day in draft.days %}{{ day.heading }}{% for e in day.entries %}: {{ e.time }}{% break %}{% endfor %}\n"
        "{% endfor %}{{ draft.entry_count }}\n"), "firsts.md.j2")
    service = _service(store, clock, firsts)
    whole = service.preview(incident_id)
    view = service.request(incident_id, "U0ALICE", "k-pm")
    assert view is not None
    markdown = service.draft(view.id).markdown
    assert markdown == whole
    assert [line.split(":")[0] for line in whole.splitlines()[:2]] == ["Saturday, October 24, 2026", "Sunday, October 25, 2026"]


@pytest.mark.parametrize("template", [
    "{% for day in draft.days %}{% for e in day.entries %}{{ e.text }}{{ e.nothing.here }}\n{% endfor %}{% endfor %}",
    "{% for day in draft.days %}{% for e in day.entries %}{{ e.time }}{% break %}{% endfor %}{% break %}{% endfor %}\n",
])
def test_a_draft_leaves_no_read_open_whatever_its_template_read(store: Any, template: str) -> None:
    """A team's template that failed part way (the first), or read only some (the second), left the
    messages' read suspended; with the exception's traceback holding it, its transaction stayed open
    until a collection ran, and on PostgreSQL the next test's TRUNCATE waited on it for minutes (CI).
    With the collector off, only the draft itself can end those reads."""
    clock = ManualClock(START - timedelta(minutes=1))
    incident_id = _incident(store, clock, 120)
    environment = SandboxedEnvironment(undefined=StrictUndefined, extensions=["jinja2.ext.loopcontrols"])
    service = _service(store, clock, PostmortemTemplate(environment.from_string(template), "team.md.j2"))
    view = service.request(incident_id, "U0ALICE", "k-pm")
    assert view is not None
    engine = store.kw["bind"]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        assert service.draft(view.id).markdown
        assert engine.pool.checkedout() == 0
    finally:
        if was_enabled:
            gc.enable()


def test_the_timeline_read_gives_what_the_orm_gives(store: Any) -> None:
    clock = ManualClock(START - timedelta(minutes=1))
    incident_id = _incident(store, clock, 200)
    with store() as session:
        orm = [item_of(e) for e in session.execute(
            select(TimelineEntry).where(TimelineEntry.incident_id == incident_id)
            .order_by(TimelineEntry.occurred_at, TimelineEntry.id)).scalars()]
    items = TimelineService(store, clock).items(incident_id)
    assert items == orm
    assert all(i.occurred_at.tzinfo is UTC for i in items)
    assert any(i.data.get("shared") for i in items) and any(i.deleted for i in items) and any(i.earlier_texts for i in items)


def test_the_benchmarks_raw_floor_reads_the_same_rows(database_url: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    try:
        RawReader = importlib.import_module("postmortem").RawReader  # noqa: N806 - the benchmark's class
    finally:
        sys.path.pop(0)
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_session_factory(engine)
    clock = ManualClock(START - timedelta(minutes=1))
    incident_id = _incident(sessions, clock, 60)
    raw = RawReader(database_url)
    try:
        rows = raw.rows(incident_id)
    finally:
        raw.close()
    items = TimelineService(sessions, clock).items(incident_id)
    engine.dispose()
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [(i.id, i.kind.value, i.actor_id, i.text) for i in items]


@pytest.mark.parametrize("zone", ["Europe/Paris", "Australia/Lord_Howe", "America/St_Johns", "Asia/Kathmandu"])
def test_an_offset_is_shared_only_by_times_that_have_it(zone: str) -> None:
    """offset_around's quarter hours, across a year of transitions (Lord Howe changes by half an hour);
    offsets() of many times, in any order, is what converting each one gives; offset_changes() between
    two times is each stretch's offset, in order."""
    tz = ZoneInfo(zone)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    times = []
    while at < datetime(2027, 1, 1, tzinfo=UTC):
        offset, start, end = offset_around(at, tz)
        assert offset == at.astimezone(tz).utcoffset()
        for probe in (start, end - timedelta(microseconds=1)):
            assert probe.astimezone(tz).utcoffset() == offset
        times.append(at)
        at += timedelta(minutes=7, seconds=31)
    for chosen in (times, times[::-1], times[:20], [t for t in times if t.month == 4], [t.astimezone(tz) for t in times]):
        assert offsets(chosen, tz) == {t.astimezone(tz).utcoffset() for t in chosen}
    for first, last in ((times[0], times[-1]), (times[100], times[100]), (times[5000], times[30000])):
        seen = [t.astimezone(tz).utcoffset() for t in times if first <= t <= last]  # every 7 min 31 s
        assert offset_changes(first, last, tz) == [o for n, o in enumerate(seen) if n == 0 or seen[n - 1] != o]


def test_the_two_times_of_a_repeated_hour_given_in_its_own_zone_have_two_offsets() -> None:
    """Aware times of one zone compare by wall clock: the two 02:30s of the night summer time ends in
    Paris differ only by `fold`, and must still count as two offsets (found by an outside check)."""
    paris = ZoneInfo("Europe/Paris")
    first, second = datetime(2023, 10, 29, 2, 30, tzinfo=paris), datetime(2023, 10, 29, 2, 35, tzinfo=paris, fold=1)
    assert offsets([first, second], paris) == {timedelta(hours=2), timedelta(hours=1)}
