"""The read-in: what someone joining an incident is told, privately, about where it stands.

The pure part (bot/readin/content.py) is read on the example outage replayed as a timeline: the
database team joined at 10:00, 45 minutes after detection, and was not told that the database servers
had been tuned and the network checked; a joiner at 10:00 must be. End to end, over signed HTTP against
the Slack simulator: a person joining gets it (only them, in that channel), bots and the bot's own
invitations get nothing, a paged team's members get it as they are invited, `/incident summary`
answers its caller, a retried event posts once, and any amount of record fits one valid message.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import ManualClock
from bot.followups import FollowupView
from bot.incidents.values import EntryKind, Incident, Role, Severity, Status
from bot.paging.providers import RetryPolicy, Transport
from bot.paging.service import PageView
from bot.postmortem.draft import RoleSpell
from bot.readin.content import ReadIn, ReadInRecord, WatchdogReading, build
from bot.timeline import TimelineItem
from handlers import mrkdwn, readin_blocks
from simulators.block_kit import message_problems
from simulators.paging import PagerDutyReceiver
from simulators.slack import SlackSimulator
from tests.conftest import ALICE, ANNOUNCE, BOB, CAROL, DBA, GENERAL, RunningBot, database_team, start_bot
from tests.test_block_kit_builders import assert_posts, raw_text, slack_text, titles

PARIS = ZoneInfo("Europe/Paris")
NEWCOMER = "U0NEWCOMER"
OTHER_BOT = "U0OTHERBOT"
TUNED = "Database servers were optimized for performance, but the issue persisted."
NETWORK = "Investigated network issues, suspecting latency between web servers and the database."
HYPOTHESIS = "Database performance degradation due to increased load."
# What the record says only after 10:00 in the example: none of it may reach a 10:00 joiner.
LATER = ["Found it", "Connection leak identified", "restarted the database", "Hotfix deployed", "Patch the pool",
         "acknowledged by", "Resolved", "Monitoring"]


def paris(hour: int, minute: int) -> datetime:
    """A wall-clock time in Paris on the example's day (12 November 2023, CET), as the aware UTC time recorded."""
    return datetime(2023, 11, 12, hour, minute, tzinfo=PARIS).astimezone(UTC)


# -- the example outage as a record ----------------------------------------------------------------


def _item(number: int, kind: EntryKind, at: datetime, who: str | None, text: str = "", *, key_event: bool = False,
          **data: Any) -> TimelineItem:
    message = kind is EntryKind.MESSAGE
    return TimelineItem(id=number, kind=kind, occurred_at=at, actor_id=who, text=text, data=data, key_event=key_event,
                        slack_ts=f"{int(at.timestamp())}.000{number:03d}" if message else None,
                        permalink=f"https://simulated.slack.com/archives/C0INC/p{number}" if message else None)


def example_record() -> ReadInRecord:
    """The example postmortem's incident, recorded from declaration to close (as `incident-bot demo` plays
    it, with the demo's `diag connections` run at 09:50): the whole record, as the store holds it at 12:00."""
    entries: list[tuple[EntryKind, datetime, str, str, dict[str, Any]]] = [
        (EntryKind.DECLARED, paris(9, 15), ALICE, "Web stack outage", {"severity": "sev2"}),
        (EntryKind.DETECTION, paris(9, 15), ALICE, "An automated monitoring alert flagged an increased number of "
                                                    "database connections and latency.", {}),
        (EntryKind.ACTION, paris(9, 20), ALICE, "Initial investigation focused on the database servers.", {}),
        (EntryKind.HYPOTHESIS, paris(9, 20), ALICE, HYPOTHESIS, {}),
        (EntryKind.MISLEADING, paris(9, 40), ALICE, TUNED, {}),
        (EntryKind.MISLEADING, paris(9, 40), ALICE, NETWORK, {}),
        (EntryKind.MESSAGE, paris(9, 41), CAROL, "Could it be the network? Latency between web and db looks odd", {}),
        (EntryKind.DIAGNOSTIC, paris(9, 50), ALICE, "97 of 100 usable connections in use (97%); 61 idle in a transaction",
         {"check": "connections", "target": "primary", "outcome": "ok"}),
        (EntryKind.PAGED, paris(10, 0), ALICE, "Connection pool exhausted on primary", {"team": "database", "page_id": 1}),
        (EntryKind.ESCALATION, paris(10, 0), ALICE, "Issue escalated to the database and networking teams.", {}),
        (EntryKind.PAGE_ACKNOWLEDGED, paris(10, 5), DBA, f"{DBA} via Slack", {"team": "database", "page_id": 1}),
        (EntryKind.MESSAGE, paris(10, 10), DBA, "Found it: connections leak since deploy 4512", {}),
        (EntryKind.UPDATE, paris(10, 10), BOB, "Connection leak identified; restarting the database to clear connections", {}),
        (EntryKind.ROLE_ASSIGNED, paris(10, 12), ALICE, "", {"role": "comms", "user": BOB, "from": None, "to": BOB}),
        (EntryKind.RESOLUTION, paris(10, 30), DBA, "Database team restarted the database server, clearing all existing connections.", {}),
        (EntryKind.STATUS_CHANGED, paris(10, 31), BOB, "", {"from": "investigating", "to": "monitoring"}),
        (EntryKind.RESOLVED, paris(11, 45), BOB, "Hotfix deployed for the connection leak", {"from": "monitoring", "to": "resolved"}),
        (EntryKind.FOLLOWUP, paris(11, 50), BOB, "Patch the pool to reclaim idle connections", {"followup_id": 1, "owner": DBA}),
        (EntryKind.CLOSED, paris(12, 0), BOB, "", {"from": "resolved", "to": "closed"}),
    ]
    items = [_item(n, kind, at, who, text, key_event=text.startswith("Found it"), **data)
             for n, (kind, at, who, text, data) in enumerate(entries, start=1)]
    incident = Incident(id=1, number=1, title="Web stack outage", description=None, severity=Severity.SEV2,
                        status=Status.CLOSED, reporter_id=ALICE, declared_at=paris(9, 15), updated_at=paris(12, 0),
                        resolved_at=paris(11, 45), closed_at=paris(12, 0), resolution_summary="Hotfix deployed for the connection leak",
                        channel_id="C0INC", channel_name="inc-20231112-web-stack-outage",
                        roles={Role.COMMANDER: ALICE, Role.COMMS: BOB})
    page = PageView(id=1, incident_id=1, team="database", message="Connection pool exhausted on primary", dedup_key="k",
                    status="resolved", requested_by=ALICE, requested_at=paris(10, 0), escalated_from_id=None,
                    acknowledged_at=paris(10, 5), acknowledged_by=DBA, resolved_at=paris(11, 45))
    followup = FollowupView(id=1, incident_id=1, text="Patch the pool to reclaim idle connections", owner_id=DBA,
                            created_by=BOB, created_at=paris(11, 50))
    return ReadInRecord(
        incident=incident, items=items,
        roles=[RoleSpell(Role.COMMANDER, ALICE, paris(9, 15), None), RoleSpell(Role.COMMS, BOB, paris(10, 12), None)],
        pages=[page], followups=[followup], team_names={"database": "Database team"},
        watchdog=[WatchdogReading("primary", paris(9, 59), 97, 100, 61, 2520, alerting_since=paris(9, 12),
                                  reasons=["97 of 100 usable connections in use (97%; alert at 80%)"])],
    )


def rendered(readin: ReadIn) -> tuple[str, list[dict[str, Any]]]:
    text, blocks = readin_blocks.message(readin, PARIS)
    assert message_problems({"text": text, "blocks": blocks}) == []
    return text, blocks


def section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every mrkdwn text the blocks show: sections' text and fields, contexts' elements."""
    texts = []
    for block in blocks:
        if block.get("text"):
            texts.append(block["text"]["text"])
        texts += [f["text"] for f in block.get("fields", [])] + [e["text"] for e in block.get("elements", [])]
    return texts


def titled(blocks: list[dict[str, Any]], heading: str) -> str:
    """The text of the one section that starts with `heading`."""
    found = [t for t in section_texts(blocks) if t.startswith(heading)]
    assert len(found) == 1, (heading, section_texts(blocks))
    return found[0]


def test_a_joiner_at_ten_reads_that_the_servers_were_tuned_and_the_network_checked_without_effect() -> None:
    readin = build(example_record(), paris(10, 0))

    # Where it stood at 10:00, although the record goes on to the close.
    assert (readin.severity, readin.status, readin.status_since) == (Severity.SEV2, Status.INVESTIGATING, paris(9, 15))
    assert [(h.role, h.user_id) for h in readin.roles] == [(Role.COMMANDER, ALICE), (Role.COMMS, None), (Role.SCRIBE, None)]
    assert [s.text for s in readin.ruled_out] == [TUNED, NETWORK]
    assert [s.text for s in readin.hypotheses] == [HYPOTHESIS]
    assert readin.latest_update is None and readin.key_events == [] and readin.followups == [] and readin.resolution is None
    assert [(p.team, p.acknowledged_at) for p in readin.pages] == [("Database team", None)]

    text, blocks = rendered(readin)
    ruled_out = titled(blocks, ":no_entry_sign: *Already ruled out*")
    assert TUNED in ruled_out and NETWORK in ruled_out and f"<@{ALICE}>" in ruled_out
    # Each line with its day and time, which every reader sees in their own zone ("today" in Paris may be
    # yesterday in San Francisco); the fallback, 09:40 in Paris, with its date.
    stamp = int(paris(9, 40).timestamp())
    assert ruled_out.count(f"<!date^{stamp}^{{date_short_pretty}} {{time}}|2023-11-12 09:40 CET>") == 2
    assert HYPOTHESIS in titled(blocks, ":thinking_face: *Hypotheses recorded*")
    shown = "\n".join(section_texts(blocks))
    assert "Investigating for 45 min" in shown and "SEV2" in shown and "2 paths already ruled out" in text
    assert "none posted yet" in titled(blocks, ":memo: *Latest status update*")
    pages = titled(blocks, ":pager: *Open pages*")
    assert "*Database team* paged" in pages and "not acknowledged yet" in pages
    diagnostics = titled(blocks, ":bar_chart: *Diagnostics*")
    assert "`connections`" in diagnostics and "97 of 100 usable connections in use (97%)" in diagnostics
    assert "alerting since" in diagnostics and "97 of 100 connections in use (97%)" in diagnostics
    assert "61 idle in a transaction, the oldest for 42 min" in diagnostics
    for later in LATER:
        assert later not in shown, later
    assert "Key events" not in shown and "follow-ups" not in shown  # nothing there yet: left out, not "none"


def test_a_quarter_of_an_hour_later_the_read_in_has_moved_on() -> None:
    readin = build(example_record(), paris(10, 15))
    _, blocks = rendered(readin)
    update = titled(blocks, ":memo: *Latest status update*")
    assert "Connection leak identified" in update and f"<@{BOB}>" in update and "(5 min ago)" in update
    assert "Found it: connections leak since deploy 4512" in titled(blocks, ":pushpin: *Key events*")
    assert f"acknowledged by <@{DBA}>" in titled(blocks, ":pager: *Open pages*")
    comms = next(h for h in readin.roles if h.role is Role.COMMS)
    assert (comms.user_id, comms.since) == (BOB, paris(10, 12))
    assert TUNED in titled(blocks, ":no_entry_sign: *Already ruled out*")  # still there: it stays ruled out

    closed = build(example_record(), paris(12, 30))
    assert (closed.status, closed.pages, [f.text for f in closed.followups]) == (
        Status.CLOSED, [], ["Patch the pool to reclaim idle connections"])
    assert closed.resolution is not None and closed.resolution.text == "Hotfix deployed for the connection leak"


def test_a_deleted_message_is_no_key_event_and_empty_lists_are_left_out() -> None:
    record = example_record()
    items = [dataclasses.replace(i, deleted=True) if i.key_event else i for i in record.items]
    readin = build(ReadInRecord(incident=record.incident, items=items, roles=record.roles), paris(10, 20))
    assert readin.key_events == [] and readin.pages == [] and readin.watchdog == []
    shown = "\n".join(section_texts(rendered(readin)[1]))
    assert "Key events" not in shown and "Open pages" not in shown and "Diagnostics" in shown  # the 09:50 run


def test_a_closed_incidents_read_in_suggests_only_what_still_works_on_it() -> None:
    """`/incident summary` answers on a closed incident too: it must not suggest a command that would be
    refused there (a closed incident can no longer change: bot/incidents/service.py)."""
    record = example_record()
    silent = dataclasses.replace(record, items=[i for i in record.items if i.kind is not EntryKind.UPDATE])
    open_text = "\n".join(section_texts(rendered(build(silent, paris(10, 15)))[1]))
    assert "`/incident update &lt;text&gt;` posts one" in open_text  # while it is open, the way to post one

    closed = build(silent, paris(12, 30))
    assert closed.status is Status.CLOSED
    shown = "\n".join(section_texts(rendered(closed)[1]))
    assert ":memo: *Latest status update*: none was posted" in shown
    # Only what answers on a closed incident: the timeline, this summary, the list of checks.
    assert set(re.findall(r"`/incident ([a-z ]+)", shown)) <= {"timeline", "summary", "diag list"}, shown


UNREACHABLE = 'could not reach PostgreSQL at 127.0.0.1:1/app: connection failed: Connection refused'


def watchdog_line(reading: WatchdogReading, now: datetime) -> str:
    """The read-in's diagnostics line about `reading`'s target, from the example record at `now`."""
    readin = build(dataclasses.replace(example_record(), watchdog=[reading]), now)
    diagnostics = titled(rendered(readin)[1], ":bar_chart: *Diagnostics*")
    return next(line for line in diagnostics.splitlines() if line.startswith("    watchdog"))


def test_a_target_the_watchdog_cannot_read_is_never_called_calm() -> None:
    # Every sample since 09:30 failed to connect, and no alert episode is open: not read, since 09:30.
    failing = WatchdogReading("primary", paris(9, 58), problem=UNREACHABLE, failing_since=paris(9, 30))
    line = watchdog_line(failing, paris(10, 0))
    assert "calm" not in line and ":large_green_circle:" not in line
    assert f"watchdog :warning: not read since <!date^{int(paris(9, 30).timestamp())}^" in line
    assert line.endswith(f"CET>: {UNREACHABLE} (latest try 2 min ago)")

    # Only the latest sample failed: not read, from then.
    once = watchdog_line(dataclasses.replace(failing, failing_since=paris(9, 58)), paris(10, 0))
    assert "calm" not in once and f"not read since <!date^{int(paris(9, 58).timestamp())}^" in once

    # A full target that opened an episode is alerting, with why its latest sample has no figures.
    refused = dataclasses.replace(failing, problem="the target refuses new connections: too many clients",
                                  alerting_since=paris(9, 40), reasons=["the target refuses new connections"])
    alerting = watchdog_line(refused, paris(10, 0))
    assert alerting.startswith("    watchdog :rotating_light: alerting since") and "too many clients" in alerting

    # Calm only when the latest sample was read and nothing alerts; never sampled is said as such.
    calm = watchdog_line(WatchdogReading("primary", paris(9, 58), 12, 100), paris(10, 0))
    assert "watchdog :large_green_circle: calm" in calm and "12 of 100 connections in use (12%)" in calm
    assert watchdog_line(WatchdogReading("primary"), paris(10, 0)).endswith("watchdog: not sampled yet")


# -- within Slack's limits, whatever was recorded ----------------------------------------------------


def crowded_record(count: int, text: str) -> ReadInRecord:
    """An incident with `count` of every list, each entry `text` long."""
    start = paris(9, 0)
    items = [_item(1, EntryKind.DECLARED, start, ALICE, "Everything is on fire", severity="sev1")]
    for n in range(count):
        at = start + timedelta(seconds=n + 1)
        items += [_item(10 + 4 * n, EntryKind.HYPOTHESIS, at, ALICE, f"hypothesis {n}: {text}"),
                  _item(11 + 4 * n, EntryKind.MISLEADING, at, BOB, f"ruled out {n}: {text}"),
                  _item(12 + 4 * n, EntryKind.MESSAGE, at, CAROL, f"key {n}: {text}", key_event=True),
                  _item(13 + 4 * n, EntryKind.DIAGNOSTIC, at, ALICE, f"headline {n} <&>",
                        check="connections", target=f"target-{n}", outcome="ok" if n % 2 else "refused")]
    items.append(_item(9, EntryKind.UPDATE, start + timedelta(minutes=30), BOB, text * 3))
    pages = [PageView(id=n, incident_id=1, team=f"team-{n}", message="", dedup_key=f"k{n}", status="sent", requested_by=ALICE,
                      requested_at=start + timedelta(seconds=n), escalated_from_id=n - 1 if n else None,
                      escalation_due_at=start + timedelta(minutes=10)) for n in range(count)]
    followups = [FollowupView(id=n, incident_id=1, text=f"follow-up {n}: {text}", owner_id=DBA, created_by=BOB,
                              created_at=start + timedelta(seconds=n)) for n in range(count)]
    incident = Incident(id=1, number=7, title="T" * 150, description="D &amp; " * 700, severity=Severity.SEV1,
                        status=Status.INVESTIGATING, reporter_id=ALICE, declared_at=start, updated_at=start, private=True)
    return ReadInRecord(incident=incident, items=items, pages=pages, followups=followups,
                        roles=[RoleSpell(role, ALICE, start, None) for role in Role],
                        team_names={f"team-{n}": f"Team <{n}> & co " + "x" * 200 for n in range(count)},
                        escalate_to={f"team-{n}": f"team-{n + 1}" for n in range(count)},
                        watchdog=[WatchdogReading(f"target-{n}", start, problem="refused: too many clients <&>" * 20,
                                                  failing_since=start - timedelta(hours=n))
                                  for n in range(count)])


def assert_within_limits(text: str, blocks: list[dict[str, Any]]) -> None:
    assert message_problems({"text": text, "blocks": blocks}) == []
    assert len(blocks) <= mrkdwn.MESSAGE_BLOCKS
    for shown in section_texts(blocks):
        assert mrkdwn.length(shown) <= mrkdwn.SECTION_TEXT


def test_very_many_hypotheses_ruled_out_paths_and_pages_make_one_valid_message_that_says_what_it_left_out() -> None:
    readin = build(crowded_record(400, "a long line of what was tried " * 40), paris(11, 0))
    text, blocks = readin_blocks.message(readin, PARIS)
    assert_within_limits(text, blocks)
    ruled_out = titled(blocks, ":no_entry_sign: *Already ruled out*")
    left = re.search(r"_…and ([\d,]+) earlier ruled-out paths not shown here: `/incident timeline`_$", ruled_out)
    assert left, ruled_out[-300:]
    shown = ruled_out.count("\n• ")
    assert shown >= 3 and int(left.group(1).replace(",", "")) + shown == 400
    assert "ruled out 399:" in ruled_out  # the newest are kept
    assert "more characters: `/incident timeline`" in ruled_out  # each long entry shortened visibly
    for heading, what in [(":thinking_face: *Hypotheses recorded*", "hypotheses"), (":pushpin: *Key events*", "key events"),
                          (":pager: *Open pages*", "open pages"), (":bar_chart: *Diagnostics*", "targets"),
                          (":ballot_box_with_check: *Open follow-ups*", "follow-ups")]:
        assert re.search(rf"_…and [\d,]+ earlier {what} not shown here: [^_]+_$", titled(blocks, heading)), heading


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(title=titles(), typed=slack_text(), plain=raw_text(300), count=st.integers(0, 30))
def test_any_record_makes_a_message_slack_takes(title: str, typed: str, plain: str, count: int) -> None:
    record = crowded_record(count, typed)
    record = dataclasses.replace(
        record, incident=dataclasses.replace(record.incident, title=title, description=typed),
        team_names={f"team-{n}": plain for n in range(count)},
        watchdog=[WatchdogReading(plain, paris(9, 0), 5, 10, 1, 30, alerting_since=paris(9, 0), reasons=[plain])])
    text, blocks = readin_blocks.message(build(record, paris(10, 0)), PARIS)
    assert_within_limits(text, blocks)
    assert_posts(text, blocks, inputs=(title, typed, *(f'<{i.permalink}|·>' for i in record.items if i.permalink)))


# -- end to end: Slack's events and the slash command ----------------------------------------------


CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"
{database_team()}
[postmortem]
timezone = "Europe/Paris"

[diagnostics.targets.app]
url = "sqlite:///{{target}}"
"""


@pytest.fixture
def running(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
            pagerduty: PagerDutyReceiver) -> Iterator[RunningBot]:
    target = tmp_path / "app.db"
    sqlite3.connect(target).close()
    slack.add_user(DBA, "dba1", real_name="Dana Bauer", display_name="dana")
    slack.add_user(NEWCOMER, "newcomer", real_name="Nina Newcomer")
    slack.add_user(OTHER_BOT, "otherbot", is_bot=True)
    clock.advance(paris(9, 15) - clock.now())
    bot = start_bot(tmp_path, slack, database_url, CONFIG.replace("{target}", str(target)), clock=clock,
                    env={"PAGERDUTY_EVENTS_URL": pagerduty.events_url},
                    paging_transport=Transport(RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1), timeout=2))
    yield bot
    bot.stop()


def command(bot: RunningBot, channel: str, text: str, user: str = ALICE) -> dict[str, Any]:
    sent = bot.requests.command(text, user_id=user, channel_id=channel, response_url=bot.slack.response_url("readin"))
    assert sent.response.status_code == 200, sent.response.text
    bot.settle()
    return sent.response.json() if sent.response.content else {}


def joined(bot: RunningBot, channel: str, user: str, *, inviter: str | None = None, event_id: str | None = None):
    """Slack's member_joined_channel for `user`, who is then a member (Slack sends it once they are)."""
    bot.slack.add_members(channel, user)
    event = {"type": "member_joined_channel", "user": user, "channel": channel, "channel_type": "C",
             "team": "T0SIMULATE", "event_ts": "1700000000.000100", **({"inviter": inviter} if inviter else {})}
    sent = bot.requests.event(event, event_id=event_id)
    assert sent.response.status_code == 200, sent.response.text
    bot.settle()
    return sent


def readins(slack: SlackSimulator, channel: str, user: str) -> list[dict[str, Any]]:
    found = [e for e in slack.ephemerals(channel) if e["user"] == user]
    for ephemeral in found:
        assert message_problems({"text": ephemeral["text"], "blocks": ephemeral["blocks"]}) == []
    return found


def replay_until_ten(bot: RunningBot, clock: ManualClock) -> str:
    """The example outage up to the page at 10:00; returns its channel."""
    channel = bot.declare("declare sev2 Web stack outage")["id"]
    command(bot, channel, "note detection An automated monitoring alert flagged an increased number of database connections.")
    clock.advance(paris(9, 20) - clock.now())
    command(bot, channel, f"note hypothesis {HYPOTHESIS}")
    clock.advance(paris(9, 40) - clock.now())
    command(bot, channel, f"note misleading {TUNED}")
    command(bot, channel, f"note misleading {NETWORK}")
    clock.advance(paris(9, 50) - clock.now())
    command(bot, channel, "diag settings app")
    command(bot, channel, "update Still investigating the database; network ruled out", user=BOB)
    clock.advance(paris(10, 0) - clock.now())
    command(bot, channel, "page database Connection pool exhausted on primary")
    return channel


def test_whoever_joins_is_told_where_it_stands_and_nobody_else(running: RunningBot, slack: SlackSimulator,
                                                               clock: ManualClock) -> None:
    channel = replay_until_ten(running, clock)
    assert readins(slack, channel, ALICE) == []  # the reporter, invited at set-up, declared it: nothing to tell

    # The paged team's member got it as the page invited them.
    [for_dba] = readins(slack, channel, DBA)
    assert TUNED in str(for_dba["blocks"]) and "Database team" in str(for_dba["blocks"])

    incident = running.runtime.services.incidents.find_by_channel(channel)
    assert incident is not None
    before = len(running.runtime.services.timeline.items(incident.id))
    joined(running, channel, NEWCOMER, inviter=CAROL)
    # Slack also posts a channel_join message for it: not a timeline entry either.
    running.requests.event({"type": "message", "subtype": "channel_join", "channel": channel, "user": NEWCOMER,
                            "text": f"<@{NEWCOMER}> has joined the channel", "ts": "1699780000.000200"})
    running.settle()
    [readin] = readins(slack, channel, NEWCOMER)
    assert [e["user"] for e in slack.ephemerals()] == [DBA, NEWCOMER]  # only to them, in that channel
    blocks = readin["blocks"]
    ruled_out = titled(blocks, ":no_entry_sign: *Already ruled out*")
    assert TUNED in ruled_out and NETWORK in ruled_out
    update = titled(blocks, ":memo: *Latest status update*")
    assert "network ruled out" in update and f"<@{BOB}>" in update and "(10 min ago)" in update
    assert "*Database team* paged" in titled(blocks, ":pager: *Open pages*")
    diagnostics = titled(blocks, ":bar_chart: *Diagnostics*")
    assert "*app*" in diagnostics and "`settings`" in diagnostics
    assert "Investigating for 45 min" in "\n".join(section_texts(blocks))
    assert len(running.runtime.services.timeline.items(incident.id)) == before

    # SQLite has no connections to count: the watchdog does not sample it, and the read-in gives it no
    # watchdog line (not a "calm" it never saw).
    watchdog = running.runtime.services.watchdog
    assert watchdog.targets() == [] and watchdog.check("app") is None and watchdog.recent("app") == []
    answer = command(running, channel, "summary", user=CAROL)
    assert "watchdog" not in titled(answer["blocks"], ":bar_chart: *Diagnostics*")


def test_bots_and_the_bots_own_invitations_get_nothing_and_a_retry_posts_once(running: RunningBot, slack: SlackSimulator) -> None:
    channel = running.declare("declare sev3 Checkout is slow")["id"]
    joined(running, channel, slack.bot_user_id)
    joined(running, channel, OTHER_BOT, inviter=ALICE)
    joined(running, channel, CAROL, inviter=slack.bot_user_id)
    assert slack.ephemerals() == []

    sent = joined(running, channel, NEWCOMER, event_id="Ev0READIN0001")
    running.requests.retry(sent, retry_num=1)
    running.requests.retry(sent, retry_num=2)
    running.settle()
    assert len(readins(slack, channel, NEWCOMER)) == 1

    # Someone who left again before it was posted: nothing posted, nothing broken.
    running.requests.event({"type": "member_joined_channel", "user": BOB, "channel": channel, "channel_type": "C"})
    running.settle()
    assert readins(slack, channel, BOB) == []
    joined(running, channel, BOB, event_id="Ev0READIN0002")
    assert len(readins(slack, channel, BOB)) == 1

    # Joining a channel that is no incident's, or a closed incident's: nothing.
    joined(running, GENERAL, NEWCOMER)
    command(running, channel, "close")
    joined(running, channel, DBA)
    assert len(slack.ephemerals()) == 2


def test_summary_answers_its_caller_and_a_role_holder_the_bot_invites_gets_the_read_in(running: RunningBot, slack: SlackSimulator) -> None:
    answer = command(running, GENERAL, "summary")
    assert answer["response_type"] == "ephemeral" and "not an incident's channel" in answer["text"]

    channel = running.declare("declare sev1 Payments failing")["id"]
    command(running, channel, f"note misleading {TUNED}")
    answer = command(running, channel, "summary", user=BOB)
    assert answer["response_type"] == "ephemeral"
    assert message_problems({"text": answer["text"], "blocks": answer["blocks"]}) == []
    assert TUNED in titled(answer["blocks"], ":no_entry_sign: *Already ruled out*")
    assert "SEV1" in answer["text"] and "Payments failing" in answer["text"]
    assert slack.ephemerals() == []  # the answer is the command's own, not a post

    command(running, channel, f"role scribe <@{CAROL}|carol>")
    assert CAROL in slack.members(channel)
    [readin] = readins(slack, channel, CAROL)
    scribe = next(f["text"] for f in readin["blocks"][1]["fields"] if f["text"].startswith("*Scribe*"))
    assert f"<@{CAROL}>" in scribe
    joined(running, channel, CAROL, inviter=slack.bot_user_id)  # Slack's event for that invitation
    command(running, channel, f"role comms <@{ALICE}|alice>")  # already in the channel: not invited, not told
    assert len(readins(slack, channel, CAROL)) == 1 and readins(slack, channel, ALICE) == []


def test_the_read_in_says_a_target_the_watchdog_cannot_reach_is_not_read(
        tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock) -> None:
    """A PostgreSQL target nothing listens for (port 1) beside a SQLite one: every sample fails, and the
    read-in says so from the first failure; the SQLite target has no watchdog line at all."""
    sqlite3.connect(tmp_path / "app.db").close()
    config = CONFIG.replace("{target}", str(tmp_path / "app.db")) + """
[diagnostics.targets.primary]
url = "postgresql+psycopg://diag@127.0.0.1:1/app"
"""
    bot = start_bot(tmp_path, slack, database_url, config, clock=clock)
    try:
        channel = bot.declare("declare sev1 Checkout down, database unreachable")["id"]
        watchdog = bot.runtime.services.watchdog
        assert watchdog.targets() == ["primary"]
        first = clock.now()
        assert watchdog.check("primary") is None  # no figures: nothing to alert on
        clock.advance(timedelta(minutes=2))
        watchdog.check("primary")

        diagnostics = titled(command(bot, channel, "summary")["blocks"], ":bar_chart: *Diagnostics*")
        assert "calm" not in diagnostics and ":large_green_circle:" not in diagnostics
        [line] = [line for line in diagnostics.splitlines() if line.startswith("    watchdog")]
        assert f"watchdog :warning: not read since <!date^{int(first.timestamp())}^" in line
        assert ": could not reach PostgreSQL at 127.0.0.1:1/app" in line and line.endswith("(latest try just now)")
        assert "*app*" not in diagnostics  # no check was run on it, and the watchdog does not watch it
    finally:
        bot.stop()
