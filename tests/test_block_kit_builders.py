"""Every message, modal and update the bot builds stays within Slack's limits, for any input it accepts.

Property tests (hypothesis) drive each builder with maximal and hostile inputs: text at the bot's own
input limits (bot/incidents/values.py: titles 150, texts 2,900 as Slack sends them; the declare form's
2,900 characters before escaping), full of `&`, `<`, `>`, entities, mentions, channel links, links,
dates, emoji and other multi-byte characters, code fences and newlines. What Slack would do is
simulators.block_kit's answer (the simulator's own rules); on top of it:

* nothing the bot posts has a top-level `text` over 4,000 (handlers.mrkdwn.MESSAGE_TEXT);
* every `<` opens whole markup, and every `&` an entity: nothing is cut inside either, so each mention
  or link of the input is shown whole or not at all;
* where the whole text must be shown (summary, page, timeline, follow-up), all of it is there;
  where text is shortened, the shortening is visible.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import TeamSection
from bot.diagnostics.drivers import Table
from bot.diagnostics.drivers.common import CheckResult
from bot.diagnostics.service import RunOutcome
from bot.followups import FollowupView
from bot.incidents import commands as c
from bot.incidents.service import Changed
from bot.incidents.values import (
    MAX_TEXT_LENGTH,
    MAX_TITLE_LENGTH,
    EntryKind,
    Incident,
    Role,
    Severity,
    Status,
)
from bot.paging.service import PageView
from bot.timeline import TimelineItem
from handlers import (
    blocks,
    diagnostics_blocks,
    followups,
    mrkdwn,
    paging_blocks,
    timeline_view,
)
from simulators.block_kit import message_problems, view_problems

BUILDERS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HEAVY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Text as Slack sends it in a slash command: `&`, `<`, `>` escaped, markup whole.
MARKUP = [
    "<@U0ALICE>", "<@U0BOB|bob>", "<#C0GENERAL|general>", "<#C0GENERAL>", "<!here>", "<!subteam^S0DBA|@dba>",
    "<https://example.com/search?q=a&amp;b=c|the &lt;dashboard&gt;>", "<https://example.com/" + "p" * 300 + ">",
    "<mailto:oncall@example.com|on-call>", "<!date^1700000000^{date_short} {time}|Nov 14, 2023>",
]
ENTITIES = ["&amp;", "&lt;", "&gt;"]
SHAPES = [":fire:", "```", "\n", "\n\n", " ", "*", "_", "`", "~", ">", "•", "…"]
MULTI_BYTE = ["😀", "👩\u200d💻", "🇫🇷", "👍🏽", "é", "e\u0301", "漢字", "ß", "\u200b", "🔥"]
SAFE_CHARS = st.characters(blacklist_categories=["Cs"], blacklist_characters="<>&\x00")
RAW_CHARS = st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")
WHOLE = re.compile(r"<[^<>\n]*>")
ENTITY = re.compile(r"&(?:amp|lt|gt);")


@st.composite
def _filled(draw: st.DrawFn, pieces: list[str], chars: st.SearchStrategy[str], limit: int, measure: Any = len) -> str:
    """Whole pieces up to `limit` (by `measure`), half the time filled right up to it."""
    chosen = draw(st.lists(st.sampled_from(pieces) | st.text(chars, min_size=1, max_size=40), min_size=1, max_size=30))
    fill = draw(st.booleans())
    out, size, i = [], 0, 0
    while i < (10_000 if fill else len(chosen)):
        piece = chosen[i % len(chosen)]
        if size + measure(piece) > limit:
            break
        out.append(piece)
        size += measure(piece)
        i += 1
    if fill:
        out.append("a" * (limit - size))
    return "".join(out)


def slack_text(limit: int = MAX_TEXT_LENGTH, measure: Any = c.typed_length) -> st.SearchStrategy[str]:
    """Text as a slash command brings it, at most `limit` characters by the bot's own rule: as typed
    for texts (an entity counts one, so as sent it can be up to 5 times as long), as sent for titles."""
    return _filled(MARKUP + ENTITIES * 4 + SHAPES + MULTI_BYTE, SAFE_CHARS, limit, measure).filter(lambda t: t.strip())


def raw_text(limit: int) -> st.SearchStrategy[str]:
    """Plain text: a form's input before escaping, a config value, a database's or a pager's words."""
    return _filled(["&", "<", ">", "&&&&", "<<>>", "<@U0ALICE>", *SHAPES, *MULTI_BYTE], RAW_CHARS, limit).filter(lambda t: t.strip())


def titles() -> st.SearchStrategy[str]:
    """Titles as stored: whitespace folded, at most 150 characters as sent."""
    return slack_text(MAX_TITLE_LENGTH, len).map(lambda t: " ".join(t.split())).filter(bool)


def form_description() -> st.SearchStrategy[str]:
    """The declare form's description: 2,900 characters typed, escaped on submission (up to 5 times as long)."""
    return raw_text(MAX_TEXT_LENGTH).map(mrkdwn.escape)


moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))


@st.composite
def incidents(draw: st.DrawFn, *, described: bool = True) -> Incident:
    declared = draw(moments)
    status = draw(st.sampled_from(Status))
    return Incident(
        id=draw(st.integers(1, 10**9)), number=draw(st.integers(1, 10**6)), title=draw(titles()),
        description=draw(st.none() | form_description() | slack_text()) if described else None,
        severity=draw(st.sampled_from(Severity)), status=status, reporter_id="U0ALICE",
        declared_at=declared, updated_at=declared + timedelta(hours=draw(st.integers(0, 1000))),
        resolved_at=declared + timedelta(hours=1) if status in (Status.RESOLVED, Status.CLOSED) else None,
        closed_at=declared + timedelta(hours=2) if status is Status.CLOSED else None,
        resolution_summary=draw(st.none() | slack_text()) if described else None,
        channel_id="C0INC1", channel_name="inc-20240101-" + "x" * 60,
        roles=draw(st.dictionaries(st.sampled_from(Role), st.sampled_from(["U0ALICE", "U0BOB", "W0CAROL"]))),
    )


# -- what must hold --------------------------------------------------------------------------------


def texts_of(node: Any) -> list[str]:
    """Every string Slack would render from a payload: `text` values, at any depth."""
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        return found + [t for key, value in node.items() if key != "text" or not isinstance(value, str) for t in texts_of(value)]
    if isinstance(node, list):
        return [t for item in node for t in texts_of(item)]
    return []


def assert_whole_markup(text: str) -> None:
    """No cut inside markup or an entity: every `<` opens whole markup, every `&` an entity."""
    opened = [m.start() for m in re.finditer("<", text)]
    whole = [m.start() for m in WHOLE.finditer(text)]
    assert opened == whole, f"markup cut open in {text[-300:]!r}"
    assert text.count("&") == len(ENTITY.findall(text)), f"an entity cut in {text[-300:]!r}"


def assert_posts(text: str, built: list[dict[str, Any]] | None = None, *, inputs: tuple[str, ...] = ()) -> None:
    """Slack would post it, within the bot's own 4,000 for `text`; markup whole; each input markup
    shown whole or not at all."""
    payload: dict[str, Any] = {"text": text, **({"blocks": built} if built is not None else {})}
    assert message_problems(payload) == []
    assert mrkdwn.length(text) <= mrkdwn.MESSAGE_TEXT
    for shown in texts_of(payload):
        assert_whole_markup(shown)
        for markup in WHOLE.findall(shown):  # nothing that is not the bot's or the input's, whole
            assert markup in "".join(inputs) or re.fullmatch(r"<(?:@[UW]\w+|#C\w+(?:\|[^>]*)?|!date\^\d+\^[^|>]*\|[^>]*)>", markup), markup


def squash(text: str) -> str:
    """Text without what splitting adds or moves: whitespace, quote marks, "…continued:", fences."""
    text = text.replace(mrkdwn.CONTINUED.strip(), "").replace(mrkdwn.FENCE, "")
    # Quote marks: the bot quotes text line by line, and a split can move a '>' of the text to the start
    # of a piece; whether a '>' reads as a quote is not what this compares (markup is checked whole
    # by assert_whole_markup), so every '>' goes, on both sides alike.
    return re.sub(r"[\s>]+", "", text)


def assert_all_shown(source: str, shown: list[str], *, longest: int = 2000) -> None:
    """Every character of `source` is shown, in order; markup longer than `longest` may have been
    replaced by its label or a note, as it fits in no piece."""
    expected = WHOLE.sub(lambda m: m.group() if len(m.group()) <= longest else "", source)
    everything = squash("\n".join(shown))
    assert squash(expected) in everything or (longest < 2000 and squash(expected) in everything.replace(squash(mrkdwn.LINK_TOO_LONG), ""))


# -- handlers.mrkdwn -------------------------------------------------------------------------------


@BUILDERS
@given(text=slack_text(20_000) | raw_text(5000).map(mrkdwn.escape), limit=st.sampled_from([75, 150, 250, 2000, 3000, 4000]))
def test_fit_stays_within_the_limit_and_says_what_it_left_out(text: str, limit: int) -> None:
    fitted = mrkdwn.fit(text, limit, where="`/incident timeline` has it all")
    assert mrkdwn.length(fitted) <= limit
    assert_whole_markup(fitted)
    if mrkdwn.length(text) <= limit:
        assert fitted == text
    elif limit >= 75:
        assert re.search(r"… _\([\d,]+ more characters: `/incident timeline` has it all\)_$", fitted)
        kept = fitted[: fitted.rindex("… _(")].removesuffix(mrkdwn.FENCE)
        assert text.startswith(kept)


@BUILDERS
@given(text=slack_text(20_000), limit=st.sampled_from([100, 2000, 2900, 3000]))
def test_split_shows_everything_in_pieces_within_the_limit(text: str, limit: int) -> None:
    pieces = mrkdwn.split(text, limit)
    assert all(mrkdwn.length(p) <= limit for p in pieces)
    for piece in pieces:
        assert_whole_markup(piece)
        assert piece.count(mrkdwn.FENCE) % 2 == 0 or piece is pieces[-1]  # a code block cut in two is closed
    assert all(p.startswith(mrkdwn.CONTINUED) for p in pieces[1:])
    assert_all_shown(text, pieces, longest=limit - 30)


@BUILDERS
@given(text=raw_text(600), limit=st.sampled_from([24, 75, 150, 250]))
def test_clip_cuts_visibly_and_never_inside_a_character(text: str, limit: int) -> None:
    escaped = mrkdwn.escape(text)
    clipped = mrkdwn.clip(escaped, limit)
    assert mrkdwn.length(clipped) <= limit
    assert_whole_markup(clipped)
    if mrkdwn.length(escaped) > limit:
        assert clipped.endswith("…")
        kept = clipped[:-1]
        assert escaped.startswith(kept.rstrip()) or escaped.startswith(kept)
        after = escaped[len(kept):len(kept) + 1]
        # No mark, modifier or joiner torn from the character it belongs to.
        assert not kept.endswith("\u200d") and not re.match("[\u0300-\u036f\u200d\ufe0f\U0001f3fb-\U0001f3ff]", after)


@BUILDERS
@given(raw_text(3000))
def test_escape_leaves_no_raw_markup(text: str) -> None:
    escaped = mrkdwn.escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert escaped.count("&") == len(ENTITY.findall(escaped))


# -- incidents: summary, announcements, changes, list, form -----------------------------------------


@BUILDERS
@given(incidents())
def test_the_summary_posts_whole_whatever_the_description(incident: Incident) -> None:
    text, built = blocks.summary(incident)
    inputs = (incident.title, incident.description or "", incident.resolution_summary or "")
    assert_posts(text, built, inputs=inputs)
    shown = texts_of(built)
    for source in (incident.description, incident.resolution_summary):
        if source:
            assert_all_shown(source, shown)


@BUILDERS
@given(incidents(described=False), st.sampled_from(["Alice", "a" * 300, "<&>" * 100, "😀" * 200]))
def test_the_topic_is_within_250_and_shortened_visibly(incident: Incident, commander: str) -> None:
    topic = blocks.topic(incident, lambda _: commander)
    assert mrkdwn.length(topic) <= mrkdwn.TOPIC
    assert_whole_markup(topic)
    if incident.title not in topic:
        assert topic.endswith("…")


@BUILDERS
@given(incidents(described=False), st.sampled_from(EntryKind), slack_text(),
       st.sampled_from([None, "investigating", "sev1", "U0BOB", "bogus"]), st.sampled_from(["U0BOB", "operator:cli"]))
def test_every_change_and_announcement_posts(incident: Incident, kind: EntryKind, text: str, before: str | None, actor: str) -> None:
    data = {"role": "commander"} if kind is EntryKind.ROLE_ASSIGNED else {}
    before = "U0BOB" if kind is EntryKind.ROLE_ASSIGNED and before else before  # a role's holder is a user id
    change = Changed(incident, kind, actor, before=before, after="U0CAROL", text=text, data=data)
    posted = blocks.change_message(change)
    assert_posts(*posted, inputs=(text, incident.title))
    announcement = blocks.change_announcement(change)
    if announcement is not None:
        assert_posts(*announcement, inputs=(text, incident.title))
    if kind is EntryKind.UPDATE:  # the update itself, whole, in the channel and the announcement
        for _, built in (posted, announcement):
            assert_all_shown(text, [b["text"]["text"] for b in built])
    assert_posts(blocks.declared_announcement(incident), inputs=(incident.title,))


@HEAVY
@given(st.lists(incidents(described=False), min_size=0, max_size=3), st.integers(0, 500))
def test_the_open_incidents_list_fits_one_message_and_says_how_many_it_left_out(some: list[Incident], more: int) -> None:
    listed = some + [Incident(id=i, number=i, title="T" * 150, description=None, severity=Severity.SEV1, status=Status.INVESTIGATING,
                              reporter_id="U0ALICE", declared_at=datetime(2024, 1, 1, tzinfo=UTC), updated_at=datetime(2024, 1, 1, tzinfo=UTC),
                              channel_id="C0INC1", channel_name="n" * 80) for i in range(more)]
    text, built = blocks.open_incidents(listed, datetime(2024, 1, 3, tzinfo=UTC))
    assert_posts(text, built, inputs=tuple(i.title for i in listed))
    shown = "\n".join(texts_of(built))
    numbers = re.findall(r"^\S+ \*(\d+)\*", shown, re.M)
    hidden = re.search(r"…and ([\d,]+) more open incidents", shown)
    assert len(numbers) + (int(hidden.group(1).replace(",", "")) if hidden else 0) == len(listed)


def test_the_declare_form_opens_and_says_what_it_takes() -> None:
    form = blocks.declare_form("C0GENERAL")
    assert view_problems(form) == []
    assert [b["element"].get("max_length") for b in form["blocks"] if b["block_id"] in ("title", "description")] == [MAX_TITLE_LENGTH, MAX_TEXT_LENGTH]


@BUILDERS
@given(incidents(described=False), slack_text(500), raw_text(500))
def test_a_provisioning_failure_posts_with_its_retry_button(incident: Incident, step: str, error: str) -> None:
    text, built = blocks.provisioning_failed(incident, step, error)
    assert_posts(text, built, inputs=(step, incident.title))
    assert [e["action_id"] for b in built if b["type"] == "actions" for e in b["elements"]] == [blocks.RETRY_PROVISION_ACTION]


@BUILDERS
@given(incidents(described=False), st.integers(1, 10**6), st.none() | raw_text(5000))
def test_the_postmortem_comment_posts_whatever_the_template_said(incident: Incident, version: int, problem: str | None) -> None:
    comment = blocks.postmortem_posted(incident, version, problem)
    assert_posts(comment)
    if problem and mrkdwn.length(comment) == mrkdwn.MESSAGE_TEXT:
        assert "more characters" in comment


# -- paging ----------------------------------------------------------------------------------------


@st.composite
def pages(draw: st.DrawFn) -> PageView:
    requested = draw(moments)
    acknowledged = draw(st.booleans())
    escalated = draw(st.booleans())
    providers = draw(st.dictionaries(st.sampled_from(["PagerDuty", "Opsgenie"]), st.booleans()))
    return PageView(
        id=draw(st.integers(1, 10**9)), incident_id=1, team="database",
        message=draw(raw_text(300)) if escalated else draw(st.just("") | slack_text()),
        dedup_key="incident-bot-1-database", status=draw(st.sampled_from(["sending", "sent", "failed"])),
        requested_by=None if escalated else "U0ALICE", requested_at=requested, escalated_from_id=7 if escalated else None,
        deliveries={name: {"ok": True} if ok else {"ok": False, "error": draw(raw_text(3000))} for name, ok in providers.items()},
        acknowledged_at=requested + timedelta(minutes=3) if acknowledged else None,
        acknowledged_by=draw(st.sampled_from(["U0BOB", "Jane <Ops> & Co (PagerDuty)", "x" * 500])) if acknowledged else None,
    )


teams = st.builds(
    TeamSection, display_name=raw_text(500), pagerduty_routing_key=st.just("R0123456789ABCDEF0123456789ABCDE"),
    slack_members=st.lists(st.from_regex(r"U0[A-Z0-9]{8}", fullmatch=True), max_size=150),
)


@BUILDERS
@given(pages(), teams, st.integers(1, 10**6))
def test_a_page_always_posts_with_its_acknowledge_button(page: PageView, team: TeamSection, number: int) -> None:
    text, built = paging_blocks.page_message(page, team.display_name or "database", team, number)
    assert_posts(text, built, inputs=(page.message,))
    buttons = [e["action_id"] for b in built if b["type"] == "actions" for e in b["elements"]]
    assert (paging_blocks.ACKNOWLEDGE_ACTION in buttons) == page.is_open
    if page.message and page.escalated_from_id is None:
        assert_all_shown(page.message, texts_of(built))
    for provider in page.failed:
        assert_posts(paging_blocks.failure_message(page, team.display_name or "database", provider))


# -- timeline --------------------------------------------------------------------------------------

KINDS = [k for k in EntryKind if k not in (EntryKind.ROLE_ASSIGNED,)]


@st.composite
def timelines(draw: st.DrawFn) -> list[TimelineItem]:
    start = draw(moments)
    steps = draw(st.lists(st.integers(0, 36 * 3600), min_size=1, max_size=25))
    items = []
    at = start
    for i, step in enumerate(steps):
        at += timedelta(seconds=step)
        kind = draw(st.sampled_from(KINDS))
        text = draw(slack_text(draw(st.sampled_from([200, MAX_TEXT_LENGTH, 40_000]))) if kind is EntryKind.MESSAGE else slack_text())
        if kind in timeline_view.PLAIN_TEXT_KINDS:
            text = draw(raw_text(3000))
        items.append(TimelineItem(
            id=i, kind=kind, occurred_at=at, actor_id=draw(st.sampled_from([None, "U0ALICE", "Jane & <Ops>"])), text=text,
            data={"team": "database", "check": "connections", "target": "primary<&>", "provider": "PagerDuty"},
            slack_ts=f"{int(at.timestamp())}.{i:06d}", permalink="https://simulated.slack.com/archives/C0INC1/p1",
            files=draw(st.lists(st.fixed_dictionaries({"title": raw_text(200)}), max_size=2)) if kind is EntryKind.MESSAGE else [],
            edited=draw(st.booleans()), key_event=draw(st.booleans()),
        ))
    return items


@HEAVY
@given(incidents(described=False), timelines(), st.sampled_from([UTC, ZoneInfo("Europe/Paris"), ZoneInfo("Pacific/Kiritimati")]), raw_text(300))
def test_every_timeline_page_posts_shows_everything_and_dates_each_day(incident: Incident, items: list[TimelineItem], zone: Any,
                                                                       team: str) -> None:
    first_text, first = timeline_view.render(incident, items, 0, lambda _: team, zone)
    pages_said = re.search(r"page 1 of (\d+)", first_text)
    count = int(pages_said.group(1)) if pages_said else 1
    shown: list[str] = []
    starts: list[tuple[int, bool, int]] = []  # (timestamp, dated, page) of each entry's first line
    for page in range(count):
        text, built = timeline_view.render(incident, items, page, lambda _: team, zone)
        assert_posts(text, built, inputs=(*(i.text for i in items), *(f"<{i.permalink}|·>" for i in items), incident.title))
        ids = [e["action_id"] for b in built if b["type"] == "actions" for e in b["elements"]]
        assert len(ids) == len(set(ids)) == (page > 0) + (page < count - 1)
        sections = [b["text"]["text"] for b in built if b["type"] == "section"]
        shown += sections
        for match in re.finditer(r"(?m)^<!date\^(\d+)\^(\{date_short_pretty\} )?\{time_secs\}\|", "\n".join(sections)):
            starts.append((int(match.group(1)), bool(match.group(2)), page))
    for item in items:
        if item.kind is EntryKind.MESSAGE and item.actor_id is not None:
            assert_all_shown(item.text, shown)
    assert len(starts) == sum(1 for i in items if not (i.kind is EntryKind.MESSAGE and i.actor_id is None))
    previous_day, previous_page = None, None
    for stamp, dated, page in starts:
        day = datetime.fromtimestamp(stamp, zone).date()
        if day != previous_day or page != previous_page:
            assert dated, "the first entry of a day or of a page shows its date"
        previous_day, previous_page = day, page


# -- diagnostics, follow-ups -----------------------------------------------------------------------


@st.composite
def tables(draw: st.DrawFn) -> Table:
    columns = draw(st.lists(raw_text(60), min_size=1, max_size=12))
    cells: st.SearchStrategy[str | int | float | None] = st.none() | raw_text(2000) | st.integers() | st.floats()
    rows = draw(st.lists(st.lists(cells, min_size=len(columns), max_size=len(columns)), max_size=40))
    return Table(title=draw(raw_text(300)), columns=columns, rows=rows)


@HEAVY
@given(st.lists(tables(), max_size=60), raw_text(5000), raw_text(300), st.sampled_from(["ok", "refused", "timeout"]),
       st.lists(raw_text(500), max_size=5))
def test_a_diagnostic_result_posts_whatever_the_database_said(found: list[Table], headline: str, target: str, outcome: str,
                                                                notes: list[str]) -> None:
    result = CheckResult("connections", headline, {}, found, notes) if outcome == "ok" else None
    text, built = diagnostics_blocks.result_message(RunOutcome(target, "connections", outcome, headline, 12, result), "U0ALICE")
    assert_posts(text, built)
    if mrkdwn.length(mrkdwn.escape(headline)) > mrkdwn.SECTION_TEXT:
        assert "more characters" in texts_of(built)[0]
    if len(found) > mrkdwn.MESSAGE_BLOCKS - 3 and outcome == "ok":
        assert "more tables, not shown" in "".join(texts_of(built))


@BUILDERS
@given(raw_text(300), st.lists(raw_text(1000), max_size=20), raw_text(5000), st.none() | st.just("incident 3, <#C0INC1|inc-3>"))
def test_watchdog_messages_post_whatever_the_target_is_called(target: str, reasons: list[str], headline: str, declared: str | None) -> None:
    text, built = diagnostics_blocks.watchdog_alert(4, target, reasons, headline, declared)
    assert_posts(text, built, inputs=(declared or "",))
    assert_posts(diagnostics_blocks.watchdog_cleared(target, headline))
    assert_posts(diagnostics_blocks.list_message({target: ("connections", "blocking"), "b" * 400: ()}))


@BUILDERS
@given(incidents(described=False), slack_text(), st.integers(1, 365))
def test_follow_up_reminders_post_whole_with_their_done_button(incident: Incident, text: str, days: int) -> None:
    followup = FollowupView(id=9, incident_id=incident.id, text=text, owner_id="U0BOB", created_by="U0ALICE",
                            created_at=incident.declared_at)
    reminder_text, built = followups.reminder_message(followup, incident, days)
    assert_posts(reminder_text, built, inputs=(text,))
    assert_all_shown(text, texts_of(built))
    assert [e["action_id"] for b in built if b["type"] == "actions" for e in b["elements"]] == [followups.DONE_ACTION]
    done_text, done = followups.done_message(followup, "U0BOB")
    assert_posts(done_text, done, inputs=(text,))
    assert_all_shown(text, texts_of(done))


@BUILDERS
@given(slack_text(40), st.sampled_from(list(blocks.help_text().splitlines())))
def test_usage_errors_and_help_post(message: str, usage: str) -> None:
    assert_posts(blocks.usage_error(message, usage), inputs=(message,))
    assert_posts(blocks.help_message())


@BUILDERS
@given(st.sampled_from(["", "status ", "sev ", "role commander ", "role ", "diag ", "declare ", "note detection ", "timeline "]),
       slack_text(400))
def test_what_a_malformed_command_is_told_posts_with_its_markup_whole(sub_command: str, text: str) -> None:
    try:
        c.parse(sub_command + text)
    except c.UsageError as error:
        assert_posts(blocks.usage_error(error.message, error.usage), inputs=(text,))


@pytest.mark.parametrize("text", [
    "status <!date^1700000000^{date_short} {time}|Nov 14, 2023>",  # a word cut out of markup with spaces
    "role <https://example.com/runbook|the runbook> <@U0ALICE>",
    "<!date^1700000000^{date_short} {time}|Nov 14> is not a sub-command",
    "declare " + "x" * 140 + " &amp; &amp;",  # 144 typed, 152 as sent: refused, saying why in plain words
])
def test_a_word_quoted_back_never_leaves_markup_open(text: str) -> None:
    with pytest.raises(c.UsageError) as refused:
        c.parse(text)
    assert_posts(blocks.usage_error(refused.value.message, refused.value.usage), inputs=(text,))


def test_a_shortened_section_says_so_and_where_the_rest_is() -> None:
    long = "<@U0ALICE> said &amp; " * 400
    [section] = [mrkdwn.section(long, where="`/incident timeline` has it all")]
    shown = section["text"]["text"]
    assert mrkdwn.length(shown) <= mrkdwn.SECTION_TEXT and shown.endswith("`/incident timeline` has it all)_")
    assert_whole_markup(shown)


def test_the_bot_refuses_to_build_what_slack_would_refuse() -> None:
    """Structural limits are the bot's own doing: breaking one is a bug, caught before Slack sees it."""
    button = mrkdwn.button("Later ▶", timeline_view.LATER_ACTION, "1:2")
    for broken in (lambda: mrkdwn.actions([button, button]), lambda: mrkdwn.button("x", "a" * 256, "v"),
                   lambda: mrkdwn.button("x", "a", "v" * 2001), lambda: mrkdwn.message("t", [mrkdwn.section("s")] * 51),
                   lambda: mrkdwn.fields(["f"] * 11), lambda: mrkdwn.context(*["c"] * 11)):
        try:
            broken()
        except ValueError:
            continue
        raise AssertionError("built what Slack refuses")
    assert mrkdwn.button("x" * 200, "a", "v")["text"]["text"].endswith("…")
