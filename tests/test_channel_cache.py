"""The slash command's channel lookup is remembered per process (IncidentService.of_channel): only what
never changes (a channel's incident id and number) is, so replicas sharing one store still see each
other's changes, and a retried command is still acted on once. A note or an update takes a shorter
path through the store (IncidentService._add_entry) that must give what the general one gives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from bot.clock import SystemClock
from bot.incidents import commands as c
from bot.incidents.service import AlreadyDone, Changed, ChannelIncident, IncidentService, Unchanged
from bot.incidents.values import EntryKind, Role, Severity
from simulators.slack import SlackSimulator
from storage.database import make_engine, make_session_factory, migrate
from storage.models import SlackRequest, TimelineEntry
from tests.conftest import ALICE, BOB, RunningBot, start_bot


@pytest.fixture
def replicas(tmp_path: Path, slack: SlackSimulator, database_url: str) -> Iterator[tuple[RunningBot, RunningBot]]:
    """Two bots on one store, sharing no memory (docs/operations.md, "Several replicas on one PostgreSQL")."""
    bots = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        bots.append(start_bot(tmp_path / name, slack, database_url))
    yield bots[0], bots[1]
    for running in bots:
        running.stop()


def command(bot: RunningBot, channel: str, text: str, user: str = ALICE) -> Any:
    return bot.requests.command(text, user_id=user, channel_id=channel, response_url=bot.slack.response_url("r"))


def notes(bot: RunningBot, incident_id: int, text: str) -> int:
    return sum(1 for i in bot.runtime.services.timeline.items(incident_id) if i.kind is EntryKind.ACTION and i.text == text)


def test_a_replica_that_remembers_the_channel_still_sees_it_closed_by_another(
    replicas: tuple[RunningBot, RunningBot],
) -> None:
    one, two = replicas
    channel = one.declare()["id"]
    for bot in (one, two):  # both now remember the channel's incident
        sent = command(bot, channel, "note action Restarted the web tier")
        assert sent.response.status_code == 200 and not sent.response.content
    incident = one.runtime.services.incidents.of_channel(channel)
    assert incident is not None and two.runtime.services.incidents.of_channel(channel) == incident

    command(two, channel, "close", user=BOB)
    two.settle()

    refused = command(one, channel, "note action Too late").response.json()
    assert "is closed" in refused["text"]
    assert "is closed" in command(one, channel, "status identified").response.json()["text"]
    summary = command(one, channel, "summary").response.json()
    assert "Closed" in str(summary.get("blocks"))  # read as it stands, not as first seen
    one.settle()
    assert notes(one, incident.id, "Too late") == 0
    assert notes(one, incident.id, "Restarted the web tier") == 2


def test_a_refused_command_retried_is_refused_again_and_a_retried_note_is_stored_once(bot: RunningBot) -> None:
    channel = bot.declare()["id"]
    first = command(bot, channel, "note action Failed over to the replica")
    again = bot.requests.retry(first, 1)
    assert again.response.status_code == 200 and not again.response.content
    bot.settle()
    incident = bot.runtime.services.incidents.of_channel(channel)
    assert incident is not None
    assert notes(bot, incident.id, "Failed over to the replica") == 1

    command(bot, channel, "close")
    bot.settle()
    refused = command(bot, channel, "note action After the close")
    # A refusal records nothing, not even the request's key: its retry is told the same, not ignored.
    assert "is closed" in refused.response.json()["text"]
    assert "is closed" in bot.requests.retry(refused, 1).response.json()["text"]


def test_a_channel_is_looked_up_once_it_is_an_incidents_and_found_when_another_replica_records_it(
    database_url: str,
) -> None:
    engines = [make_engine(database_url) for _ in range(2)]
    migrate(engines[0])
    mine, theirs = (IncidentService(make_session_factory(e), SystemClock()) for e in engines)
    statements: list[str] = []
    event.listen(engines[0], "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        assert mine.of_channel("C0LATER") is None
        assert mine.of_channel("C0LATER") is None
        asked = len(statements)
        assert asked >= 2  # a channel that is no incident's is asked again each time: it may become one

        declared = theirs.declare(c.Declare("Search is slow"), ALICE, "command:t1").incident
        theirs.record_channel(declared.id, "C0LATER", "inc-search-is-slow")
        assert mine.of_channel("C0LATER") == ChannelIncident(declared.id, declared.number)
        asked = len(statements)
        assert mine.of_channel("C0LATER") == ChannelIncident(declared.id, declared.number)
        assert len(statements) == asked  # remembered: never changes once recorded

        theirs.apply(declared.id, c.SetSeverity(Severity.SEV1), ALICE, "command:t2")
        assert mine.get(declared.id).severity is Severity.SEV1  # what may change is read, never remembered
    finally:
        for engine in engines:
            engine.dispose()


def test_a_note_gives_the_incident_as_the_general_path_would_and_a_closed_one_is_refused(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    service = IncidentService(make_session_factory(engine), SystemClock())
    try:
        incident = service.declare(c.Declare("Checkout errors"), ALICE, "command:d").incident
        service.apply(incident.id, c.AssignRole(Role.SCRIBE, BOB), ALICE, "command:r")
        service.apply(incident.id, c.AssignRole(Role.SCRIBE, ALICE), ALICE, "command:r2")  # BOB's turn ended

        noted = service.apply(incident.id, c.AddNote("Rolled back", EntryKind.ACTION), BOB, "command:n")
        assert isinstance(noted, Changed) and noted.entry_id is not None
        assert noted.incident == service.get(incident.id)  # roles, updated_at: as stored after the note
        assert noted.incident.roles == {Role.COMMANDER: ALICE, Role.SCRIBE: ALICE}
        assert isinstance(service.apply(incident.id, c.AddNote("Rolled back", EntryKind.ACTION), BOB, "command:n"), AlreadyDone)
        assert service.get(incident.id).updated_at == noted.incident.updated_at  # the retry touched nothing
        quiet = service.apply(incident.id, c.PostUpdate("Error rate falling"), BOB, "command:q", publish=False)
        assert isinstance(quiet, Changed) and quiet.kind is EntryKind.UPDATE
        with make_session_factory(engine)() as session:  # the rows as the ORM reads them back
            entries = {e.id: e for e in session.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == incident.id))}
            requests = set(session.scalars(select(SlackRequest.key).where(SlackRequest.incident_id == incident.id)))
        note, update = entries[noted.entry_id], entries[quiet.entry_id]
        assert (note.kind, note.text, note.actor_id, note.data, note.published_at) == ("action", "Rolled back", BOB, None, None)
        assert note.occurred_at == noted.incident.updated_at and note.occurred_at.tzinfo is not None
        assert (update.kind, update.text, update.published_at) == ("update", "Error rate falling", update.occurred_at)
        assert {"command:n", "command:q"} <= requests
        assert sum(1 for e in entries.values() if e.text == "Rolled back") == 1

        service.apply(incident.id, c.Close(), ALICE, "command:c")
        closed_at = service.get(incident.id).updated_at
        refused = service.apply(incident.id, c.PostUpdate("Still here?"), BOB, "command:u")
        assert isinstance(refused, Unchanged) and "is closed" in refused.reason
        assert service.get(incident.id).updated_at == closed_at  # the refused note touched nothing
    finally:
        engine.dispose()
