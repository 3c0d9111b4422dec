"""Slack's markup where people read it outside Slack, end to end through signed HTTP: the drafted
postmortem (and `incident-bot postmortem`, which prints the same), forwarded messages captured with
their content, and pages sent to PagerDuty."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.clock import ManualClock
from simulators.paging import PagerDutyReceiver
from simulators.slack import SlackSimulator
from tests.conftest import ALICE, BOB, CAROL, GENERAL, start_bot
from tests.test_postmortem import (
    CONFIG,
    Replay,
    cli_postmortem,
    paris,
    section,
    timeline_lines,
    uploaded,
)

WORKSPACE = "https://simulated.slack.com/"


@pytest.fixture
def replay(tmp_path: Path, slack: SlackSimulator, database_url: str, clock: ManualClock,
           pagerduty: PagerDutyReceiver) -> Iterator[Replay]:
    clock.advance(paris(9, 15) - clock.now())
    bot = start_bot(tmp_path, slack, database_url, CONFIG, clock=clock, env={"PAGERDUTY_EVENTS_URL": pagerduty.events_url})
    yield Replay(bot, clock)
    bot.stop()


def post(r: Replay, user: str, text: str, **fields: object) -> str:
    """A message event as Slack delivers it, with extra fields (attachments, files…)."""
    moment = r.clock.now()
    ts = f"{int(moment.timestamp())}.{moment.microsecond:06d}"
    event = {"type": "message", "channel": r.channel["id"], "user": user, "text": text, "ts": ts, "event_ts": ts,
             "channel_type": "channel", "team": "T0SIMULATE", **fields}
    assert r.bot.requests.event(event).response.status_code == 200
    r.bot.settle()
    return ts


def share(author: str, channel: str, text: str, ts: str = "1699779000.000100", **more: object) -> dict:
    """What Slack attaches to a message that forwards another (cf. slackapi/java-slack-sdk#1179)."""
    return {"ts": ts, "author_id": author, "channel_id": channel, "channel_team": "T0SIMULATE", "is_msg_unfurl": True,
            "message_blocks": [{"team": "T0SIMULATE", "channel": channel, "ts": ts, "message": {"blocks": []}}],
            "color": "D0D0D0", "from_url": f"{WORKSPACE}archives/{channel}/p{ts.replace('.', '')}", "is_share": True,
            "fallback": f"[November 12th, 2023 9:50 AM] someone: {text}", "text": text, "author_name": "someone",
            "author_link": f"{WORKSPACE}team/{author}", "mrkdwn_in": ["text"], "footer": "Slack Conversation", **more}


def lookups(slack: SlackSimulator, method: str, **params: str) -> list:
    return [c for c in slack.calls_to(method) if all(c.params.get(k) == v for k, v in params.items())]


def test_markup_reads_naturally_in_the_drafted_postmortem(replay: Replay, slack: SlackSimulator, database_url: str,
                                                         tmp_path: Path) -> None:
    r = replay
    slack.add_usergroup("S0SRE", "sre", name="SRE on call")
    r.declare("declare sev2 <!subteam^S1|@dba> pool exhausted &amp; checkout slow")
    when = int(paris(10, 10).timestamp())
    r.at(paris(9, 30)).say(
        f"FYI <!subteam^S1|@dba> and <!subteam^S0SRE>: see <#{GENERAL}>, <#{GENERAL}> again and <#C0SECRET>; "
        f"<https://grafana.example.com/d/1|pool usage> peaked at <!date^{when}^{{date_num}} {{time}}|10:10 your time>, "
        "type &lt;b&gt; for bold", user=ALICE)
    r.at(paris(9, 31)).say(f"<@{BOB}> can you check <#{GENERAL}|general>? <!here>", user=CAROL)
    r.command(f"followup Post the fix in <#{GENERAL}> <@{BOB}>")
    r.at(paris(10, 0)).command("close")

    markdown = uploaded(slack)[0]["content"]
    assert markdown.startswith("# Postmortem: Incident 1: @dba pool exhausted & checkout slow\n")
    lines = {(time, label): text for time, label, text in timeline_lines(markdown)}
    assert lines[("09:30", "Message")] == (
        "alice: FYI @dba and @sre: see #general, #general again and a channel (C0SECRET); "
        "[pool usage](https://grafana.example.com/d/1) peaked at 2023-11-12 10:10 UTC+01:00, type \\<b> for bold")
    assert lines[("09:31", "Message")] == "Carol Weiss: bob can you check #general? @here"
    assert "- [ ] Post the fix in #general · owner: bob" in section(markdown, "## Corrective and Preventative Measures")
    for raw in ("<#", "<!", "<@", "&amp;", "&lt;", "@@"):
        assert raw not in markdown

    # Looked up once for the draft, though named three times; the channel the bot cannot see, once too.
    assert len(lookups(slack, "conversations.info", channel=GENERAL)) == 1
    assert [c.response["error"] for c in lookups(slack, "conversations.info", channel="C0SECRET")] == ["channel_not_found"]
    assert len(slack.calls_to("usergroups.list")) == 1  # @dba came with its label: only S0SRE was asked about

    printed = cli_postmortem(database_url, "1", tmp_path)
    assert printed.returncode == 0 and printed.stdout == markdown


def test_without_the_usergroups_scope_the_draft_still_names_the_group_readably(
        replay: Replay, slack: SlackSimulator, caplog: pytest.LogCaptureFixture) -> None:
    r = replay
    slack.add_usergroup("S0SRE", "sre")
    slack.fail_next("usergroups.list", error="missing_scope")  # an app installed before the scope was added
    r.declare("declare sev3 Slow search")
    r.at(paris(9, 20)).say("<!subteam^S0SRE> please have a look", user=BOB)
    with caplog.at_level(logging.WARNING, logger="handlers.slack_names"):
        r.at(paris(9, 40)).command("close")

    markdown = uploaded(slack)[0]["content"]
    assert ("09:20", "Message", "bob: a user group (S0SRE) please have a look") in timeline_lines(markdown)
    assert any("missing_scope" in m and "usergroups:read" in m for m in caplog.messages), caplog.messages


def test_a_forwarded_message_is_captured_with_its_content(replay: Replay, slack: SlackSimulator,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    r = replay
    r.declare("declare sev2 Checkout errors")
    # Forwarded with no comment: Slack sends text "" and the message in `attachments` (no channel_name).
    r.at(paris(9, 50))
    post(r, BOB, "", attachments=[share(CAROL, GENERAL, "the pool is at *100%*\nsince deploy <#C0DEPLOYS|deploys> 4512")])
    # Forwarded from a direct message, with a comment; then a link to a message, which Slack previews
    # with an `is_msg_unfurl` attachment that is no forward.
    r.at(paris(9, 51))
    post(r, ALICE, "look at this", attachments=[share(BOB, "D0DM", "can you check?", channel_name="Direct Message")])
    link = f"{WORKSPACE}archives/{GENERAL}/p1699779000000100"
    r.at(paris(9, 52))
    post(r, ALICE, f"<{link}>", attachments=[{k: v for k, v in share(CAROL, GENERAL, "the pool").items() if k != "is_share"}])
    # An event with nothing in it is not an entry.
    r.at(paris(9, 53))
    with caplog.at_level(logging.INFO, logger="handlers.capture"):
        empty = post(r, CAROL, "", attachments=[])
    assert any(empty in m and "not recorded" in m for m in caplog.messages), caplog.messages

    # /incident timeline shows the forwarded content, in Slack's own markup.
    sent = r.bot.requests.command("timeline", user_id=ALICE, channel_id=r.channel["id"], response_url=slack.response_url("t"))
    shown = "\n".join(b["text"]["text"] for b in sent.response.json()["blocks"] if b["type"] == "section")
    assert f"*<@{BOB}>* forwarded a message" in shown
    assert f">_Forwarded from <@{CAROL}> in <#{GENERAL}>_ <{WORKSPACE}archives/{GENERAL}/p1699779000000100|original>:" in shown
    assert ">the pool is at *100%*\n>since deploy <#C0DEPLOYS|deploys> 4512" in shown
    assert ">_Forwarded from <@U0BOB> in a direct message_" in shown

    r.at(paris(10, 0)).command("close")
    markdown = uploaded(slack)[0]["content"]
    messages = [(time, text) for time, label, text in timeline_lines(markdown) if label == "Message"]
    assert messages == [
        ("09:50", f"bob forwarded a message from Carol Weiss in #general ([original]({link})):"),
        ("09:51", "alice: look at this"),
        ("09:52", f"alice: <{link}>"),
    ]
    # Slack's *bold* is Markdown's **bold**; its line break a hard break (two spaces), inside the quote.
    assert f"([original]({link})):\n  > the pool is at **100%**  \n  > since deploy #deploys 4512\n" in markdown
    assert "alice: look at this\n  > Forwarded a message from bob in a direct message" in markdown
    assert "  > can you check?\n" in markdown
    after_link = markdown.split(f"alice: <{link}>\n", 1)[1]
    assert not after_link.startswith("  >")  # the link's preview is no forward


def test_pages_read_plainly_in_pagerduty(replay: Replay, pagerduty: PagerDutyReceiver) -> None:
    r = replay
    r.declare("declare sev1 Checkout &amp; payments down")
    r.command(f"page database Pool exhausted, ask <@{BOB}|bob> or <!subteam^S1|@dba> &lt;now&gt; "
              "<https://grafana.example.com/d/1|dashboard>")

    [event] = pagerduty.events()
    payload = event["payload"]
    assert payload["summary"] == ("[SEV1] Incident 1: Checkout & payments down — Pool exhausted, ask bob or @dba <now> "
                                  "dashboard (https://grafana.example.com/d/1)")
    assert payload["custom_details"]["title"] == "Checkout & payments down"


CODE_BLOCK = ("```SELECT * FROM pool_stats\nWHERE state = 'idle' AND age &gt; 5 -- *not bold* _nor_ ~this~\n\n"
              "-- asked by <@U0ALICE>\n```")


def test_slack_formatting_reads_as_markdown_in_the_drafted_postmortem(replay: Replay, slack: SlackSimulator,
                                                                     database_url: str, tmp_path: Path) -> None:
    """Slack's *bold*, _italic_, ~strike~, `code` and ```blocks``` become Markdown's, and a code block
    (a message of its own) is fenced on lines of its own inside its timeline entry, closed, so the
    entries after it stay entries (Slack: "Formatting text for app surfaces", "Basic formatting")."""
    r = replay
    r.declare("declare sev2 Search is *down* &amp; slow")
    r.at(paris(9, 30)).say(f"*pool exhausted* _maybe_ ~the cache~ `pg-primary`, ask <@{BOB}>", user=ALICE)
    r.at(paris(9, 31)).say(CODE_BLOCK, user=BOB)
    r.at(paris(9, 32)).say("two things:\n• restart the pool\n• drain it\n&gt; from the runbook\nthen *done*", user=CAROL)
    r.at(paris(9, 33)).say("after the block, 2*3*4 is still text", user=ALICE)
    r.at(paris(10, 0)).command("close")

    markdown = uploaded(slack)[0]["content"]
    assert markdown.startswith("# Postmortem: Incident 1: Search is **down** & slow\n")
    lines = {(time, label): text for time, label, text in timeline_lines(markdown)}
    assert lines[("09:30", "Message")] == "alice: **pool exhausted** *maybe* ~~the cache~~ `pg-primary`, ask bob"
    # The block on lines of its own, indented under its entry, as typed: nothing in it formatted or escaped.
    assert ("- **09:31** · **Message** · bob:\n"
            "  ```\n"
            "  SELECT * FROM pool_stats\n"
            "  WHERE state = 'idle' AND age > 5 -- *not bold* _nor_ ~this~\n"
            "\n"
            "  -- asked by alice\n"
            "  ```\n"
            "- **09:32** · ") in markdown
    # Slack's line breaks kept (a hard break), its bullets a list, its quote a quote, each closed.
    assert ("- **09:32** · **Message** · Carol Weiss: two things:\n"
            "  - restart the pool\n"
            "  - drain it\n"
            "  > from the runbook\n"
            "\n"
            "  then **done**\n") in markdown
    assert lines[("09:33", "Message")] == "alice: after the block, 2\\*3\\*4 is still text"
    assert [label for _, label, _ in timeline_lines(markdown)][-2:] == ["Message", "Closed"]

    printed = cli_postmortem(database_url, "1", tmp_path)
    assert printed.returncode == 0 and printed.stdout == markdown


def test_the_cli_prints_titles_as_typed(replay: Replay, database_url: str, tmp_path: Path) -> None:
    """`incident-bot resolve` and `close` print the title as people typed it, not Slack's escaped text."""
    r = replay
    r.declare(f"declare sev2 Search is *down* &amp; slow for <@{BOB}> &lt;eu&gt; (<@U0NOBODY>)")
    r.at(paris(9, 20)).say("looking", user=BOB)  # the bot learns his name; nobody's is never known
    config = tmp_path / "cli.toml"
    config.write_text(CONFIG)
    env = {**os.environ, "DATABASE_URL": database_url, "INCIDENT_BOT_CONFIG": str(config)}
    for name in ("SLACK_BOT_TOKEN", "SLACK_API_URL"):
        env.pop(name, None)

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "handlers.cli", *args], env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    resolved = cli("resolve", "1", "restarted")
    assert "Incident 1 (“Search is down & slow for bob <eu> (a person (U0NOBODY))”) resolved by the operator (incident-bot CLI)." in resolved
    closed = cli("close", "1")
    assert "Incident 1 (“Search is down & slow for bob <eu> (a person (U0NOBODY))”) closed by the operator (incident-bot CLI)." in closed
    for raw in ("&amp;", "&lt;", "<@", "*down*"):
        assert raw not in resolved + closed
