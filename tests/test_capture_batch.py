"""The capture path's bulk write (Batch.capture_many, storage.timeline.insert_messages) on both stores: the
same outcomes as one message at a time, rows stored exactly as SQLAlchemy's own insert stores them; and
the HTTP edge's answer when a message event cannot be stored."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, exc, func, insert, select, text

from bot.clock import ManualClock
from bot.incidents.values import EntryKind
from bot.timeline import (
    Batch,
    BatchWriter,
    Captured,
    CaptureMessage,
    ChannelMessage,
    TimelineService,
    _Waiting,
)
from storage import timeline as store
from storage.database import make_engine, make_session_factory, migrate
from storage.models import Incident, TimelineEntry
from tests.conftest import RunningBot
from tests.test_timeline import captured, message

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
OPEN, CLOSED, ELSEWHERE = "C0OPEN", "C0CLOSED", "C0NOINCIDENT"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    with engine.begin() as connection:
        for number, channel, status in ((1, OPEN, "investigating"), (2, CLOSED, "closed")):
            connection.execute(insert(Incident.__table__).values(
                number=number, title=f"incident {number}", severity="sev2", status=status, reporter_id="U0A",
                declared_at=NOW, updated_at=NOW, channel_id=channel))
    yield engine
    engine.dispose()


def said(channel: str, ts: str, text: str = "pool at 100%", **extra: Any) -> ChannelMessage:
    return ChannelMessage(channel, ts, "U0ALICE", text, permalink=f"https://x.slack.com/archives/{channel}/p{ts}", **extra)


def apply(engine: Engine, operations: list[Any]) -> list[Captured]:
    """One batch, as the writer applies it: one transaction on a Core connection."""
    with engine.begin() as connection:
        batch = Batch(connection, ManualClock(NOW))
        outcomes = batch.apply(operations)
        batch.finish()
        return outcomes


def test_a_batch_of_captures_has_the_outcomes_of_one_at_a_time(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    # A deletion that came before its message leaves a placeholder, which the message then fills.
    assert apply(engine, [lambda batch: batch.delete(OPEN, "1700000000.000900", NOW, "event:EvDEL")]) == [Captured.UPDATED]

    batch = [
        CaptureMessage(said(OPEN, "1700000000.000100"), "event:Ev1"),
        CaptureMessage(said(OPEN, "1700000000.000100"), "event:Ev1"),  # Slack's retry, in the same batch
        CaptureMessage(said(OPEN, "1700000000.000100"), "event:Ev1b"),  # the same message by another path
        CaptureMessage(said(OPEN, "1700000000.000200", "rolling back", files=[{"id": "F1"}]), "event:Ev2"),
        CaptureMessage(said(CLOSED, "1700000000.000300"), "event:Ev3"),
        CaptureMessage(said(ELSEWHERE, "1700000000.000400"), "event:Ev4"),
        CaptureMessage(said(OPEN, "1700000000.000900", "said, then deleted"), "event:Ev9"),
    ]
    assert apply(engine, batch) == [Captured.STORED, Captured.DUPLICATE, Captured.DUPLICATE, Captured.STORED,
                                      Captured.NOT_AN_INCIDENT, Captured.NOT_AN_INCIDENT, Captured.STORED]
    # Sent again (Slack retries what it thinks was lost): nothing more is stored.
    assert apply(engine, batch) == [Captured.DUPLICATE] * 4 + [Captured.NOT_AN_INCIDENT] * 2 + [Captured.DUPLICATE]

    with sessions() as session:
        incident_id = session.execute(select(Incident.id).where(Incident.channel_id == OPEN)).scalar_one()
        entries = [e for e in TimelineService(sessions, ManualClock(NOW)).items(incident_id) if e.kind is EntryKind.MESSAGE]
    assert [(e.slack_ts, e.text, e.actor_id, e.deleted) for e in entries] == [
        ("1700000000.000100", "pool at 100%", "U0ALICE", False),
        ("1700000000.000200", "rolling back", "U0ALICE", False),
        ("1700000000.000900", "said, then deleted", "U0ALICE", True),
    ]
    assert entries[1].files == [{"id": "F1"}] and entries[0].permalink == f"https://x.slack.com/archives/{OPEN}/p1700000000.000100"


def test_messages_into_open_incidents_are_one_statement(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The INSERT finds each message's incident by its channel: whose channel it is, is asked only for what
    it did not insert, in one query for them all (on PostgreSQL a round trip, each message's own at low
    rates)."""
    asked: list[set[str]] = []
    capturing_incidents = store.capturing_incidents
    monkeypatch.setattr(store, "capturing_incidents",
                        lambda connection, channels: asked.append(set(channels)) or capturing_incidents(connection, channels))
    assert apply(engine, [CaptureMessage(said(OPEN, f"1700000003.{i:06d}"), f"event:EvO{i}") for i in range(3)]) == [
        Captured.STORED] * 3
    assert asked == []
    assert apply(engine, [CaptureMessage(said(OPEN, "1700000003.000009"), "event:EvO9"),
                          CaptureMessage(said(CLOSED, "1700000003.000010"), "event:EvC10"),
                          CaptureMessage(said(OPEN, "1700000003.000001"), "event:EvO1again")]) == [
        Captured.STORED, Captured.NOT_AN_INCIDENT, Captured.DUPLICATE]
    assert asked == [{CLOSED, OPEN}]  # once for the batch's leftovers


def test_a_value_longer_than_its_column_is_never_cut_short(engine: Engine) -> None:
    """thread_ts is VARCHAR(32): PostgreSQL refuses a longer one, as a plain INSERT into the column does (an
    explicit CAST to VARCHAR(32) would cut it short and store it); SQLite stores it whole."""
    long = "1700000000." + "1" * 29
    message = said(OPEN, "1700000004.000001", thread_ts=long)
    if engine.dialect.name == "postgresql":
        with pytest.raises(exc.DataError, match="too long"):
            apply(engine, [CaptureMessage(message, "event:EvLong")])
    else:
        assert apply(engine, [CaptureMessage(message, "event:EvLong")]) == [Captured.STORED]
    with engine.connect() as connection:
        kept = connection.execute(select(TimelineEntry.thread_ts).where(TimelineEntry.slack_ts == message.ts)).scalars().all()
    assert kept == ([] if engine.dialect.name == "postgresql" else [long])


def test_a_message_that_cannot_be_written_fails_only_in_an_open_incident(engine: Engine) -> None:
    """A message of no open incident's channel is acknowledged and dropped whatever it holds, as before the
    INSERT found incidents itself: its failure (a ts that is no time; on PostgreSQL a value the column
    refuses) sets it aside and the batch's others are written. In an open incident's channel it fails."""
    writer = BatchWriter(make_session_factory(engine), ManualClock(NOW), max_batch=200)
    try:
        for n, unwritable in enumerate((said(ELSEWHERE, "not-a-ts"), said(CLOSED, "not-a-ts"),
                                        said(ELSEWHERE, "1700000005.000001", thread_ts="1" * 40))):
            batch = [_Waiting(CaptureMessage(unwritable, f"event:EvBad{n}")),
                     _Waiting(CaptureMessage(said(OPEN, f"1700000005.00010{n}"), f"event:EvGood{n}"))]
            writer._write(batch)
            assert [(w.outcome, w.error) for w in batch] == [(Captured.NOT_AN_INCIDENT, None), (Captured.STORED, None)]
        with pytest.raises(ArithmeticError):  # decimal.InvalidOperation
            writer.run(CaptureMessage(said(OPEN, "not-a-ts"), "event:EvBadOpen"))
    finally:
        writer.close()


def test_captures_between_other_writes_keep_their_order(engine: Engine) -> None:
    """An edit queued between two captures of the same message applies between them: to the first."""
    sessions = make_session_factory(engine)
    edited = said(OPEN, "1700000000.000500", "pool at 100%, not 90%")
    outcomes = apply(engine, [
        CaptureMessage(said(OPEN, "1700000000.000500", "pool at 90%"), "event:EvA"),
        lambda batch: batch.edit(edited, NOW, "event:EvB"),
        CaptureMessage(said(OPEN, "1700000000.000500", "pool at 90%"), "event:EvC"),
    ])
    assert outcomes == [Captured.STORED, Captured.UPDATED, Captured.DUPLICATE]
    with sessions() as session:
        entry = session.execute(select(TimelineEntry).where(TimelineEntry.slack_ts == "1700000000.000500")).scalar_one()
        assert entry.text == "pool at 100%, not 90%" and [e["text"] for e in entry.earlier_texts or []] == ["pool at 90%"]


def test_the_bulk_insert_stores_every_column_as_sqlalchemy_does(engine: Engine) -> None:
    """insert_messages writes on the driver's cursor: each column's value must be what SQLAlchemy's own
    INSERT stores for the same row (JSON null, SQL NULL, timestamps), read back raw from the store."""
    sessions = make_session_factory(engine)
    with sessions() as session:
        incident_id = session.execute(select(Incident.id).where(Incident.channel_id == OPEN)).scalar_one()

    def row(ts: str) -> dict[str, Any]:  # insert_messages finds the incident by the channel
        return {"kind": EntryKind.MESSAGE.value, "channel_id": OPEN, "slack_ts": ts,
                "occurred_at": datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC), "actor_id": "U0ALICE",
                "text": "é ✓ 'quoted' %s ?", "thread_ts": None, "files": None, "permalink": None,
                "data": {"shared": [{"ts": "1.2", "text": "forwarded"}]}}

    with engine.begin() as connection:
        connection.execute(insert(TimelineEntry.__table__), [{**row("1700000000.000001"), "incident_id": incident_id}])
        assert store.insert_messages(connection, [row("1700000000.000002"), row("1700000000.000001")]) == {
            (OPEN, "1700000000.000002")}  # the second was there already

    columns = [c.name for c in TimelineEntry.__table__.columns if c.name not in ("id", "slack_ts")]
    raw = ", ".join(f"CAST({c} AS TEXT)" for c in columns)
    with engine.connect() as connection:
        by_sqlalchemy, by_driver = connection.execute(text(f"SELECT {raw} FROM timeline_entries ORDER BY slack_ts")).all()
        nulls = connection.execute(text(
            f"SELECT {', '.join(f'{c} IS NULL' for c in columns)} FROM timeline_entries ORDER BY slack_ts")).all()
    assert dict(zip(columns, by_driver, strict=True)) == dict(zip(columns, by_sqlalchemy, strict=True))
    assert nulls[0] == nulls[1]


def test_a_message_event_that_cannot_be_stored_is_answered_500_and_the_next_is_stored(bot: RunningBot) -> None:
    """A 500 makes Slack send the event again; a 200 would lose it. One bad event fails alone."""
    channel = bot.declare()
    refused = bot.requests.event(message(channel["id"], "ts that is no time", ts="not-a-ts"))
    assert refused.response.status_code == 500
    kept = bot.requests.event(message(channel["id"], "the pool is full"))
    assert kept.response.status_code == 200
    assert [e.text for e in captured(bot, channel)] == ["the pool is full"]


def test_callers_arriving_during_a_write_are_written_together_by_one_of_them(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit without a writer thread: while one caller writes, the others queue, and the first of
    them writes them all in one statement when it is done (in one transaction, or on PostgreSQL, for
    captured messages only, in autocommit); a bad operation among them fails alone."""
    writer = BatchWriter(make_session_factory(engine), ManualClock(NOW), max_batch=200)
    inserts: list[int] = []  # the messages each INSERT stored
    insert_messages = store.insert_messages
    monkeypatch.setattr(store, "insert_messages",
                        lambda connection, rows: inserts.append(len(rows)) or insert_messages(connection, rows))
    gate = threading.Event()

    def held(_batch: Batch) -> Captured:  # keeps the first write open while the others arrive
        gate.wait(10)
        return Captured.UPDATED

    def refused(_batch: Batch) -> Captured:
        raise ValueError("not a timeline write")

    def wave(operations: list[Any]) -> dict[int, Captured | str]:
        """One write held open, `operations` arriving meanwhile, then let go: each caller's outcome."""
        outcomes: dict[int, Captured | str] = {}

        def call(i: int, operation: Any) -> None:
            try:
                outcomes[i] = writer.run(operation)
            except ValueError as error:
                outcomes[i] = str(error)

        gate.clear()
        first = threading.Thread(target=call, args=(-1, held))
        first.start()
        while not writer._writing:
            time.sleep(0.001)
        threads = [threading.Thread(target=call, args=(i, op)) for i, op in enumerate(operations)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(writer._waiting) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.001)
        gate.set()
        for thread in [first, *threads]:
            thread.join(10)
        return outcomes

    captures = [CaptureMessage(said(OPEN, f"1700000001.{i:06d}"), f"event:EvG{i}") for i in range(20)]
    assert wave(captures) == {-1: Captured.UPDATED, **dict.fromkeys(range(20), Captured.STORED)}
    assert inserts == [20]  # the twenty that waited, together
    inserts.clear()
    more = [CaptureMessage(said(OPEN, f"1700000002.{i:06d}"), f"event:EvH{i}") for i in range(5)]
    assert wave([*more, refused]) == {-1: Captured.UPDATED, **dict.fromkeys(range(5), Captured.STORED),
                                      5: "not a timeline write"}
    assert inserts == [5, 1, 1, 1, 1, 1]  # their batch failed on the refused one: each was then written alone
    inserts.clear()
    assert writer.run(CaptureMessage(said(OPEN, "1700000001.999999"), "event:EvAlone")) is Captured.STORED
    assert inserts == [1] and not writer._writing
    with engine.connect() as connection:  # each stored once, whichever way it went
        stored = connection.execute(select(func.count()).select_from(TimelineEntry).where(TimelineEntry.channel_id == OPEN))
        assert stored.scalar_one() == 20 + 5 + 1
