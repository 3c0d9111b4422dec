"""The postmortem drafted at close: a replay of the example incident through the signed HTTP endpoint,
with its real times, read back from the file uploaded to Slack and from `incident-bot postmortem`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jinja2 import Environment

from bot.clock import ManualClock
from bot.incidents.values import EntryKind, Incident, Severity, Status
from bot.paging.providers import RetryPolicy, Transport
from bot.postmortem.draft import AlertRecord, Entry, IncidentRecord, Moment, build
from bot.timeline import TimelineItem
from handlers import paging_blocks
from simulators.paging import PagerDutyReceiver
from simulators.slack import SlackSimulator
from tests.conftest import (
    ALICE,
    ANNOUNCE,
    BOB,
    CAROL,
    DBA,
    ROUTING_KEY,
    SIGNING_SECRET,
    RunningBot,
    database_team,
    start_bot,
)

PARIS_OFFSET = timedelta(hours=1)  # November: Central European Time
PARIS = ZoneInfo("Europe/Paris")

CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"
{database_team()}
[postmortem]
timezone = "Europe/Paris"
"""

SECTIONS = [
    "# Postmortem: Incident 1: Web stack outage",
    "## Issue Summary",
    "## Key Figures",
    "## People and Roles",
    "## Root Cause",
    "## Timeline",
    "## Root Cause and Resolution",
    "## Paging",
    "## Corrective and Preventative Measures",
    "## Conclusion",
]


def paris(hour: int, minute: int, day: int = 12) -> datetime:
    """A wall-clock time in Paris on the example's day, as the aware UTC time the bot records."""
    return datetime(2023, 11, day, hour, minute, tzinfo=UTC) - PARIS_OFFSET



class Replay:
    """Drives one incident channel as its responders would, moving the clock to each step's time."""

    def __init__(self, bot: RunningBot, clock: ManualClock) -> None:
        self.bot, self.clock = bot, clock
        self.channel: dict = {}

    def at(self, moment: datetime) -> Replay:
        assert moment >= self.clock.now(), "a replay only moves forward"
        self.clock.advance(moment - self.clock.now())
        return self

    def declare(self, text: str, user: str = ALICE) -> None:
        self.channel = self.bot.declare(text, user=user)

    def command(self, text: str, user: str = ALICE) -> dict:
        sent = self.bot.requests.command(text, user_id=user, channel_id=self.channel["id"],
                                         response_url=self.bot.slack.response_url("replay"))
        assert sent.response.status_code == 200, sent.response.text
        self.bot.settle()
        return sent.response.json() if sent.response.content else {}

    def say(self, text: str, user: str = ALICE, *, ts: str | None = None) -> str:
        """A message typed in the channel, delivered as Slack's Events API delivers it."""
        moment = self.clock.now()
        ts = ts or f"{int(moment.timestamp())}.{moment.microsecond:06d}"
        event = {"type": "message", "channel": self.channel["id"], "user": user, "text": text, "ts": ts, "event_ts": ts,
                 "channel_type": "channel", "team": "T0SIMULATE"}
        assert self.bot.requests.event(event).response.status_code == 200
        self.bot.settle()
        return ts

    def press(self, action_id: str, value: str, user: str) -> None:
        sent = self.bot.requests.block_action(action_id, value, user_id=user, channel_id=self.channel["id"],
                                              response_url=self.bot.slack.response_url("button"))
        assert sent.response.status_code == 200
        self.bot.settle()


@pytest.fixture
def replay(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
           pagerduty: PagerDutyReceiver) -> Iterator[Replay]:
    slack.add_user(DBA, "dba1", real_name="Dana Bauer", display_name="dana")
    clock.advance(paris(9, 15) - clock.now())
    bot = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock, env={"PAGERDUTY_EVENTS_URL": pagerduty.events_url},
                    paging_transport=Transport(RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1), timeout=2))
    yield Replay(bot, clock)
    bot.stop()


def uploaded(slack: SlackSimulator) -> list[dict]:
    return [f for f in slack.files() if f["name"].endswith(".md")]


def section(markdown: str, heading: str) -> str:
    """The text under one `## heading`, up to the next heading of that level."""
    start = markdown.index(f"\n{heading}\n") + len(heading) + 2
    end = markdown.find("\n## ", start)
    return markdown[start:] if end < 0 else markdown[start:end]


def timeline_lines(markdown: str) -> list[tuple[str, str, str]]:
    """(time, label, text) of every timeline entry, in the order written."""
    lines = re.findall(r"^- \*\*([\d:]+(?: UTC[+-]\d\d:\d\d)?)\*\* · \*\*([^*]+)\*\*(?: · 📌 \*\*Key event\*\*)? · (.*)$",
                       section(markdown, "## Timeline"), flags=re.M)
    return [(time, label, text) for time, label, text in lines]


def cli_postmortem(database_url: str, reference: str, tmp_path: Path, config: str = CONFIG) -> subprocess.CompletedProcess:
    config_path = tmp_path / "cli.toml"
    config_path.write_text(config)
    env = {**os.environ, "DATABASE_URL": database_url, "INCIDENT_BOT_CONFIG": str(config_path)}
    return subprocess.run([sys.executable, "-m", "handlers.cli", "postmortem", reference], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_example_incident_replayed_drafts_its_postmortem(replay: Replay, slack: SlackSimulator, database_url: str,
                                                             pagerduty: PagerDutyReceiver, tmp_path: Path) -> None:
    r = replay
    r.at(paris(9, 15)).declare("declare sev2 Web stack outage")
    r.command("note detection An automated monitoring alert flagged an increased number of database connections and latency.")
    r.at(paris(9, 20)).command("note action Initial investigation focused on the database servers.")
    r.command("note hypothesis Database performance degradation due to increased load.")
    r.at(paris(9, 40)).command("note misleading Database servers were optimized for performance, but the issue persisted.")
    r.at(paris(9, 41)).say("Could it be the network? Latency between web and db looks odd", user=CAROL)
    deleted = r.at(paris(9, 42)).say("wrong channel, sorry", user=CAROL)
    r.bot.requests.event({"type": "message", "subtype": "message_deleted", "channel": r.channel["id"], "hidden": True,
                          "deleted_ts": deleted, "ts": deleted, "event_ts": deleted})
    r.at(paris(9, 45)).command("note misleading Investigated network issues, suspecting latency between web servers and the database.")
    r.at(paris(10, 0)).command("page database Connection pool exhausted on primary")
    r.command("note escalation Issue escalated to the database and networking teams.")
    button = next(e for m in slack.messages(r.channel["id"]) for b in m.get("blocks", []) if b.get("type") == "actions"
                  for e in b["elements"] if e["action_id"] == paging_blocks.ACKNOWLEDGE_ACTION)
    r.at(paris(10, 5)).press(paging_blocks.ACKNOWLEDGE_ACTION, button["value"], user=DBA)
    leak = r.at(paris(10, 10)).say("Found it: connections leak since deploy 4512, they never go back to the pool", user=DBA)
    r.bot.requests.event({"type": "reaction_added", "user": BOB, "reaction": "pushpin", "item_user": DBA,
                          "item": {"type": "message", "channel": r.channel["id"], "ts": leak}, "event_ts": leak})
    r.command("update Connection leak identified; restarting the database to clear connections", user=BOB)
    r.at(paris(10, 30)).command("note resolution Database team restarted the database server, clearing all existing connections.", user=DBA)
    r.at(paris(10, 31)).command("status monitoring", user=BOB)
    r.at(paris(11, 45)).command("resolve Hotfix deployed for the connection leak", user=BOB)
    r.at(paris(11, 50)).command(f"followup Patch the pool to reclaim idle connections <@{DBA}>", user=BOB)
    r.command("followup Post-incident review with the development team", user=BOB)
    r.at(paris(12, 0)).command("close", user=BOB)

    files = uploaded(slack)
    assert [f["name"] for f in files] == ["incident-1-postmortem-v1.md"]
    markdown = files[0]["content"]
    assert files[0]["shares"] and r.channel["id"] in str(files[0]["shares"])

    # The example's sections, in its order, with what responders need added.
    positions = [markdown.find(f"{heading}\n") for heading in SECTIONS]
    assert -1 not in positions and positions == sorted(positions), list(zip(SECTIONS, positions, strict=True))

    # Start, end and duration from recorded timestamps, in the configured zone; the figures agree.
    summary = section(markdown, "## Issue Summary")
    assert "**Duration:** 2 hours 30 minutes" in summary
    assert "Start Time: November 12, 2023, 09:15 (UTC+01:00)" in summary
    assert "End Time: November 12, 2023, 11:45 (UTC+01:00), resolved by bob" in summary
    assert "**Severity:** SEV2" in summary
    figures = dict(re.findall(r"^\| (Time to \w+) \| ([^|]+?) \|", section(markdown, "## Key Figures"), flags=re.M))
    assert figures == {"Time to detect": "0 seconds", "Time to acknowledge": "50 minutes",
                       "Time to mitigate": "1 hour 15 minutes", "Time to resolve": "2 hours 30 minutes"}
    # Only alerts the incident was declared from are linked: the words claim no more than that.
    assert ("| Time to detect | 0 seconds | declared at 09:15, the first sign of trouble recorded (no watchdog alert "
            "linked to this incident) |") in section(markdown, "## Key Figures")

    # Every recorded event, in order, with its time and kind; the deleted message left out.
    lines = timeline_lines(markdown)
    expected = [
        ("09:15", "Declared", "alice declared the incident (SEV2): Web stack outage"),
        ("09:15", "Detection", "alice: An automated monitoring alert flagged an increased number of database connections and latency."),
        ("09:20", "Action", "alice: Initial investigation focused on the database servers."),
        ("09:20", "Hypothesis", "alice: Database performance degradation due to increased load."),
        ("09:40", "Misleading path", "alice: Database servers were optimized for performance, but the issue persisted."),
        ("09:41", "Message", "Carol Weiss: Could it be the network? Latency between web and db looks odd"),
        ("09:45", "Misleading path", "alice: Investigated network issues, suspecting latency between web servers and the database."),
        ("10:00", "Escalation (page)", "alice paged Database team: Connection pool exhausted on primary"),
        ("10:00", "Escalation", "alice: Issue escalated to the database and networking teams."),
        ("10:05", "Page acknowledged", "Database team acknowledged the page: dana via Slack"),
        ("10:10", "Message", "dana: Found it: connections leak since deploy 4512, they never go back to the pool"),
        ("10:10", "Status update", "Status update by bob: Connection leak identified; restarting the database to clear connections"),
        ("10:30", "Resolution", "dana: Database team restarted the database server, clearing all existing connections."),
        ("10:31", "Status", "bob set the status to Monitoring (was Investigating)"),
        ("11:45", "Resolved", "bob resolved the incident: Hotfix deployed for the connection leak"),
        ("11:50", "Follow-up", "bob added a follow-up (owner: dana): Patch the pool to reclaim idle connections"),
        ("11:50", "Follow-up", "bob added a follow-up: Post-incident review with the development team"),
        ("12:00", "Closed", "bob closed the incident"),
    ]
    assert lines == expected
    assert "wrong channel" not in markdown and "1 deleted message left out" in markdown
    assert "· **Message** · 📌 **Key event** · dana: Found it" in markdown  # the pushpinned message is marked

    # What nobody recorded is a placeholder, never invented; what was recorded is where the example puts it.
    root_cause = section(markdown, "## Root Cause")
    assert "**[To be written]**" in root_cause and "Database performance degradation" in root_cause
    resolution = section(markdown, "## Root Cause and Resolution")
    assert "Hotfix deployed for the connection leak" in resolution and "Investigated network issues" in resolution
    measures = section(markdown, "## Corrective and Preventative Measures")
    assert "- [ ] Patch the pool to reclaim idle connections · owner: dana" in measures
    assert "- [ ] Post-incident review with the development team · owner: **[To be written]** name an owner" in measures
    people = section(markdown, "## People and Roles")
    assert "**Reported by:** alice" in people and "**Commander:** alice (from 09:15)" in people
    assert "Database team | 10:00 | alice | 10:05 by dana | 5 minutes" in section(markdown, "## Paging")
    assert ROUTING_KEY not in markdown and SIGNING_SECRET not in markdown

    # The announcement links to the draft; the store keeps it as version 1; the CLI prints the same text.
    announcement = slack.messages(ANNOUNCE)[0]["text"]
    assert f"<{files[0]['permalink']}|version 1>" in announcement
    incident = r.bot.runtime.services.incidents.find("1")
    assert incident is not None
    versions = r.bot.runtime.services.postmortems.versions(incident.id)
    assert [(v.version, v.file_id) for v in versions] == [(1, files[0]["id"])]
    by_number = cli_postmortem(database_url, "1", tmp_path)
    assert by_number.returncode == 0, by_number.stderr
    assert by_number.stdout == markdown
    by_channel = cli_postmortem(database_url, r.channel["name"], tmp_path)
    assert by_channel.stdout == markdown


def test_a_declaration_before_its_linked_alert_is_the_start_and_says_so() -> None:
    declared = paris(9, 15)
    incident = Incident(id=1, number=7, title="Checkout is timing out", description=None, severity=Severity.SEV2,
                        status=Status.INVESTIGATING, reporter_id=ALICE, declared_at=declared, updated_at=declared,
                        resolved_at=None, closed_at=None, channel_id="C0INC", channel_name="inc-7")
    items = [TimelineItem(1, EntryKind.DECLARED, declared, ALICE, "declared", {})]
    alone = build(IncidentRecord(incident=incident, items=items), PARIS, version=1, drafted_at=declared + timedelta(hours=1))
    assert alone.figures[0].measured == "declared at 09:15, the first sign of trouble recorded (no watchdog alert linked to this incident)"
    later_alert = AlertRecord("primary", declared + timedelta(minutes=5), None, ["90% in use"])
    linked = build(IncidentRecord(incident=incident, items=items, alerts=[later_alert]), PARIS, version=1,
                   drafted_at=declared + timedelta(hours=1))
    assert linked.figures[0].measured == ("declared at 09:15, the first sign of trouble recorded (no watchdog alert linked "
                                          "to this incident came earlier)")


def test_figures_agree_with_the_times_they_are_shown_between() -> None:
    """An outside check read "from 07:17:53 to 07:17:59" beside "5 seconds": the exact timestamps held 5.3 s.
    A figure is counted between the clock times it is shown with, to the second."""
    alerted = paris(9, 15) + timedelta(seconds=0, microseconds=900_000)
    declared = paris(9, 15) + timedelta(seconds=53, microseconds=800_000)
    resolved = paris(9, 20) + timedelta(seconds=59, microseconds=100_000)
    incident = Incident(id=1, number=7, title="Checkout is timing out", description=None, severity=Severity.SEV2,
                        status=Status.RESOLVED, reporter_id=ALICE, declared_at=declared, updated_at=resolved,
                        resolved_at=resolved, closed_at=None, channel_id="C0INC", channel_name="inc-7")
    items = [TimelineItem(1, EntryKind.DECLARED, declared, ALICE, "declared", {}),
             TimelineItem(2, EntryKind.RESOLVED, resolved, ALICE, "resolved", {})]
    draft = build(IncidentRecord(incident=incident, items=items, alerts=[AlertRecord("primary", alerted, None, ["idle"])]),
                  PARIS, version=1, drafted_at=resolved)
    detect, _, _, resolve = draft.figures
    assert (detect.value, detect.seconds) == ("53 seconds", 53) and detect.measured.startswith("from 09:15 (") and "to 09:15:53" in detect.measured
    assert (resolve.value, resolve.seconds) == ("5 minutes 59 seconds", 359) and "to 09:20:59" in resolve.measured
    assert draft.duration == "5 minutes 59 seconds"


def test_an_incident_across_midnight_and_a_dst_change_counts_real_time(replay: Replay, slack: SlackSimulator) -> None:
    """Paris left summer time at 03:00 on 29 October 2023 (clocks went back to 02:00). Wall clocks say
    the night lasted 3 hours; the recorded timestamps say 4, and the draft must say 4."""
    r = replay
    r.clock.advance(datetime(2023, 10, 28, 21, 30, tzinfo=UTC) - r.clock.now())  # 23:30 CEST
    r.declare("declare sev1 Checkout down overnight")
    r.at(datetime(2023, 10, 29, 0, 30, tzinfo=UTC)).command("note action Failing over to the replica")  # 02:30 CEST
    r.at(datetime(2023, 10, 29, 1, 30, tzinfo=UTC)).command("resolve Failover done")  # 02:30 CET, an hour later
    r.command("close")

    markdown = uploaded(slack)[0]["content"]
    assert "**Duration:** 4 hours\n" in markdown
    assert "Start Time: October 28, 2023, 23:30 (UTC+02:00)" in markdown
    assert "End Time: October 29, 2023, 02:30 (UTC+01:00)" in markdown
    timeline = section(markdown, "## Timeline")
    assert timeline.index("### Saturday, October 28, 2023") < timeline.index("### Sunday, October 29, 2023")
    # Both 02:30s happened; the offset beside each time tells them apart.
    assert [(time, label) for time, label, _ in timeline_lines(markdown)] == [
        ("23:30 UTC+02:00", "Declared"), ("02:30 UTC+02:00", "Action"), ("02:30 UTC+01:00", "Resolved"), ("02:30 UTC+01:00", "Closed"),
    ]
    figures = section(markdown, "## Key Figures")
    assert "| Time to resolve | 4 hours |" in figures and "| Time to acknowledge | not recorded | no team was paged |" in figures


def test_an_empty_incident_drafts_placeholders_not_inventions(replay: Replay, slack: SlackSimulator) -> None:
    replay.declare("declare Nothing much")
    replay.command("close")

    markdown = uploaded(slack)[0]["content"]
    assert markdown.startswith("# Postmortem: Incident 1: Nothing much\n")
    positions = [markdown.find(f"{heading}\n") for heading in SECTIONS[1:] if heading != "## Paging"]
    assert -1 not in positions and positions == sorted(positions)
    assert "## Paging" not in markdown and "## Diagnostics" not in markdown  # nothing was paged or run
    assert "**Duration:** 0 seconds" in markdown
    assert "End Time: November 12, 2023, 09:15 (UTC+01:00), closed without being marked resolved" in markdown
    assert [label for _, label, _ in timeline_lines(markdown)] == ["Declared", "Closed"]
    for placeholder in ("Who was affected", "What caused the incident", "What fixed it. No resolution was recorded",
                        "No follow-ups were recorded", "What went well"):
        assert f"**[To be written]** {placeholder}" in markdown
    assert "| Time to mitigate | not recorded | no resolution note and no Monitoring status were recorded |" in markdown


def test_redrafting_makes_new_versions_and_keeps_the_old(replay: Replay, slack: SlackSimulator, database_url: str,
                                                         tmp_path: Path) -> None:
    r = replay
    r.declare("declare sev3 Slow search")
    r.at(paris(9, 30)).command("resolve Reindexed")
    r.at(paris(9, 40)).command("close")
    r.at(paris(14, 0)).command(f"followup Alert on index lag <@{BOB}>")  # added at the review, after the close
    sent = r.bot.requests.command("postmortem", user_id=ALICE, channel_id=r.channel["id"],
                                  response_url=slack.response_url("redraft"))
    assert "Drafting version 2" in sent.response.json()["text"]
    r.bot.requests.retry(sent)  # Slack retrying the same command drafts nothing more
    r.bot.settle()
    r.at(paris(15, 0)).command("close")  # closing a closed incident again also re-drafts

    names = [f["name"] for f in uploaded(slack)]
    assert names == [f"incident-1-postmortem-v{n}.md" for n in (1, 2, 3)]
    first, second, third = (f["content"] for f in uploaded(slack))
    assert "Alert on index lag" not in first and "Alert on index lag · owner: bob" in second
    assert "Draft version 2" in second and "Draft version 3" in third
    incident = r.bot.runtime.services.incidents.find("1")
    assert incident is not None
    stored = r.bot.runtime.services.postmortems.versions(incident.id)
    assert [v.version for v in stored] == [1, 2, 3] and stored[0].markdown == first  # the old text is kept as it was
    assert cli_postmortem(database_url, "1", tmp_path).stdout == third
    assert cli_postmortem(database_url, "#1", tmp_path).stdout == third
    earlier = subprocess.run([sys.executable, "-m", "handlers.cli", "postmortem", "1", "--version", "1"],
                             env={**os.environ, "DATABASE_URL": database_url, "INCIDENT_BOT_CONFIG": str(tmp_path / "cli.toml")},
                             capture_output=True, text=True, timeout=60, check=False)
    assert earlier.returncode == 0 and earlier.stdout == first
    # The announcement links to the newest version.
    assert f"<{uploaded(slack)[2]['permalink']}|version 3>" in slack.messages(ANNOUNCE)[0]["text"]


def test_the_cli_explains_unknown_incidents_and_drafts_an_open_one_without_storing(replay: Replay, database_url: str,
                                                                                   tmp_path: Path) -> None:
    replay.declare("declare sev2 Still burning")
    replay.at(paris(9, 20)).command("note hypothesis The cache is cold")
    missing = cli_postmortem(database_url, "42", tmp_path)
    assert missing.returncode == 1 and "no incident '42'" in missing.stderr and not missing.stdout
    open_one = cli_postmortem(database_url, "1", tmp_path)
    assert open_one.returncode == 0 and "no drafted postmortem yet" in open_one.stderr
    assert "**Duration:** not resolved yet" in open_one.stdout and "The cache is cold" in open_one.stdout
    incident = replay.bot.runtime.services.incidents.find("1")
    assert incident is not None and replay.bot.runtime.services.postmortems.versions(incident.id) == []


CUSTOM_TEMPLATE = """\
# {{ draft.title }} ({{ draft.severity }})
Lasted {{ draft.duration }} from {{ draft.start.full }}.
{% for day in draft.days %}{% for e in day.entries %}
* {{ e.moment.iso }} [{{ e.kind }}] {{ e.text }}
{% endfor %}{% endfor %}
"""


def test_a_teams_own_template_is_used(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock) -> None:
    (tmp_path / "ours.md.j2").write_text(CUSTOM_TEMPLATE)
    config = CONFIG + 'template = "ours.md.j2"\n'
    bot = start_bot(tmp_path, slack, database_url, config, clock=clock)
    try:
        r = Replay(bot, clock)
        r.at(clock.now()).declare("declare sev1 Payments failing")
        r.at(clock.now() + timedelta(minutes=42)).command("resolve Card processor back")
        r.command("close")
        markdown = uploaded(slack)[0]["content"]
        assert markdown.startswith("# Payments failing (SEV1)\nLasted 42 minutes from ")
        assert "[resolved] alice resolved the incident: Card processor back" in markdown
        assert "## Issue Summary" not in markdown
    finally:
        bot.stop()


@pytest.mark.parametrize("template, complaint", [
    ("{% for e in draft.days %}\n{{ e.heading }\n", "line 2: unexpected '}'"),
    ("# {{ draft.titel }}\n", "'bot.postmortem.draft.Draft object' has no attribute 'titel'"),
    ("{{ draft.title | shout }}\n", "No filter named 'shout'"),
    (None, "cannot read the template"),
])
def test_a_broken_template_is_reported_by_check_config_not_at_close(tmp_path: Path, template: str | None, complaint: str) -> None:
    path = tmp_path / "broken.md.j2"
    if template is not None:
        path.write_text(template)
    config = tmp_path / "incident-bot.toml"
    config.write_text('[postmortem]\ntemplate = "broken.md.j2"\n')
    env = {**os.environ, "INCIDENT_BOT_CONFIG": str(config), "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s"}
    checked = subprocess.run([sys.executable, "-m", "handlers.cli", "check-config"], env=env, capture_output=True, text=True,
                             timeout=60, check=False)
    assert checked.returncode == 1
    assert f"{config}: postmortem.template: " in checked.stderr and complaint in checked.stderr, checked.stderr
    served = subprocess.run([sys.executable, "-m", "handlers.cli", "serve", "--port", "0"], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert served.returncode == 1 and complaint in served.stderr  # `serve` refuses to start on it


def test_a_template_that_fails_on_one_incident_falls_back_to_the_default(tmp_path: Path, slack: SlackSimulator,
                                                                        database_url: str, clock: ManualClock) -> None:
    # Fine on the sample draft (which has follow-ups), broken on an incident without any.
    (tmp_path / "fragile.md.j2").write_text("# {{ draft.title }}\n{% if not draft.followups %}{{ draft.followups[0].text }}{% endif %}\n")
    bot = start_bot(tmp_path, slack, database_url, CONFIG + 'template = "fragile.md.j2"\n', clock=clock)
    try:
        r = Replay(bot, clock)
        r.declare("declare sev4 Typo on the status page")
        r.command("close")
        markdown = uploaded(slack)[0]["content"]
        assert "## Issue Summary" in markdown  # the default template took over: the draft is not lost
        comment = next(m for m in slack.messages(r.channel["id"]) if m.get("files"))["text"]
        assert "could not be used" in comment and "fragile.md.j2, line 2" in comment
        incident = bot.runtime.services.incidents.find("1")
        assert incident is not None
        version = bot.runtime.services.postmortems.versions(incident.id)[0]
        assert version.template is None and version.problem and "fragile.md.j2" in version.problem
    finally:
        bot.stop()


def test_an_upload_slack_refuses_is_reported_and_the_draft_kept(replay: Replay, slack: SlackSimulator) -> None:
    replay.declare("declare sev2 Queue backlog")
    slack.fail_next("files.getUploadURLExternal", error="missing_scope")
    replay.command("close", user=BOB)

    assert uploaded(slack) == []
    told = [r for r in slack.responses("replay") if "could not be posted" in r.get("text", "")]
    assert len(told) == 1 and told[0]["response_type"] == "ephemeral"
    assert "Version 1 of the postmortem of incident 1 is saved" in told[0]["text"] and "`missing_scope`" in told[0]["text"]
    assert "incident-bot postmortem 1" in told[0]["text"]
    incident = replay.bot.runtime.services.incidents.find("1")
    assert incident is not None
    (version,) = replay.bot.runtime.services.postmortems.versions(incident.id)
    assert version.drafted and version.file_id is None

    replay.command("postmortem", user=BOB)  # once the scope is granted, asking again posts it
    assert [f["name"] for f in uploaded(slack)] == ["incident-1-postmortem-v2.md"]


def test_a_draft_interrupted_by_a_restart_is_finished_at_start(tmp_path: Path, slack: SlackSimulator, database_url: str,
                                                               clock: ManualClock) -> None:
    bot = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock)
    r = Replay(bot, clock)
    r.declare("declare sev2 Disk full")
    incident = bot.runtime.services.incidents.find("1")
    assert incident is not None
    # As a crash right after the commit leaves things: a version owed and not drafted.
    bot.runtime.services.postmortems.request(incident.id, ALICE, "crashed-before-drafting")
    bot.stop()
    assert uploaded(slack) == []

    again = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock)
    try:
        again.runtime.resume()
        again.settle()
        assert [f["name"] for f in uploaded(slack)] == ["incident-1-postmortem-v1.md"]
        assert again.runtime.services.postmortems.versions(incident.id)[0].drafted
    finally:
        again.stop()


def test_a_10000_entry_incident_is_drafted_whole(replay: Replay, slack: SlackSimulator) -> None:
    from sqlalchemy import insert

    from storage.models import TimelineEntry

    replay.declare("declare sev1 Chatty incident")
    incident = replay.bot.runtime.services.incidents.find("1")
    assert incident is not None
    start = replay.clock.now()
    kinds = ["message"] * 7 + ["action", "hypothesis", "update"]
    rows = [
        {"incident_id": incident.id, "kind": kinds[n % len(kinds)], "occurred_at": start + timedelta(seconds=n + 1),
         "actor_id": (ALICE, BOB, CAROL)[n % 3], "text": f"entry {n:05d}: pool at {n % 100}%",
         **({"channel_id": incident.channel_id, "slack_ts": f"{int(start.timestamp()) + n + 1}.{n:06d}"}
            if kinds[n % len(kinds)] == "message" else {"channel_id": None, "slack_ts": None})}
        for n in range(10_000)
    ]
    with replay.bot.runtime.engine.begin() as connection:  # as 10,000 captures would have left them, faster
        connection.execute(insert(TimelineEntry), rows)
    replay.at(start + timedelta(hours=3)).command("close")

    markdown = uploaded(slack)[0]["content"]
    texts = [text for _, _, text in timeline_lines(markdown)]
    recorded = [t for t in texts if "entry " in t]
    assert len(recorded) == 10_000
    assert [int(t.split("entry ")[1][:5]) for t in recorded] == list(range(10_000))  # all there, in order
    assert len(texts) == 10_002  # with the declaration and the close
    assert "10002 timeline entries were recorded" in markdown
    assert "### Monday, November 13, 2023" not in markdown  # 09:15 + 3 h stays on the 12th


# What the default template laid out for each timeline line before `Entry.line` did it in Python: a
# team's template that lays its lines out from the entry's fields this way reads the same.
_FIELDS_LINE = Environment(autoescape=False, keep_trailing_newline=True).from_string(
    '- **{{ e.time }}** · **{{ e.label }}**{{ " · 📌 **Key event**" if e.key_event else "" }} · {{ e.text | indent(2) }}')


@given(text=st.text(alphabet=st.sampled_from(list("ab é*`>\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")), max_size=16),
       key_event=st.booleans(), second=st.integers(0, 59), marked=st.booleans())
@example(text="a\r\nb", key_event=False, second=0, marked=False)  # every line break splitlines() knows, as indent() does
@example(text="ends with a break\u2028", key_event=True, second=5, marked=True)
@settings(max_examples=300, deadline=None)
def test_an_entrys_line_is_its_fields_laid_out(text: str, key_event: bool, second: int, marked: bool) -> None:
    at = datetime(2026, 3, 29, 0, 59, second, tzinfo=UTC)  # the night summer time starts in Paris
    entry = Entry(Moment(at, at.astimezone(ZoneInfo("Europe/Paris")), marked), "message", "Message", text, None, key_event)
    assert entry.line == _FIELDS_LINE.render(e=entry)
