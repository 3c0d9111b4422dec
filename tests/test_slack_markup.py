"""Slack's message markup read outside Slack (bot/slack_markup.py): every form Slack documents for
message text ("Formatting text for app surfaces"), as Markdown and as plain text, and text that only
looks like markup."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.slack_markup import (
    _LINE_START_SPECIAL,
    _LITERAL_SPECIAL,
    ChannelLink,
    DateToken,
    Link,
    Names,
    Renderer,
    SpecialMention,
    Text,
    UsergroupMention,
    UserMention,
    _may_format,
    _may_need_escaping,
    parse,
    references,
    to_markdown,
    to_plain,
)

NAMES = Names(users={"U0DBA1": "Dana Bauer", "U0STAR": "*star*_dev"}, channels={"C0GENERAL": "general"},
              usergroups={"S0SRE": "sre"})
PARIS = ZoneInfo("Europe/Paris")
FEB_18_2014 = 1392734382  # 2014-02-18 14:39:42 UTC, Slack's own example


@pytest.mark.parametrize("text, markdown, plain", [
    # People: the name known wins over the (legacy) label; the label when no name is known.
    ("ask <@U0DBA1>", "ask Dana Bauer", "ask Dana Bauer"),
    ("ask <@U0DBA1|dana>", "ask Dana Bauer", "ask Dana Bauer"),
    ("ask <@U0BOB|bob>", "ask bob", "ask bob"),
    ("ask <@W0NOBODY>", "ask a person (W0NOBODY)", "ask a person (W0NOBODY)"),
    # Channels: the label wins; without one, the name known; else what it is, never a bare id.
    ("see <#C0GENERAL>", "see #general", "see #general"),
    ("see <#C0OPS|ops>", "see #ops", "see #ops"),
    ("see <#C0SECRET|>", "see a channel (C0SECRET)", "see a channel (C0SECRET)"),
    ("see <#C0UNKNOWN>", "see a channel (C0UNKNOWN)", "see a channel (C0UNKNOWN)"),
    # User groups: the issue's `@@dba`, and handles looked up.
    ("paging <!subteam^S1|@dba>", "paging @dba", "paging @dba"),
    ("paging <!subteam^S1|dba>", "paging @dba", "paging @dba"),
    ("paging <!subteam^S0SRE>", "paging @sre", "paging @sre"),
    ("paging <!subteam^S0GONE>", "paging a user group (S0GONE)", "paging a user group (S0GONE)"),
    # Special mentions, with and without a label.
    ("<!here> look", "@here look", "@here look"),
    ("<!here|here> <!channel> <!everyone|@everyone> <!group>", "@here @channel @everyone @channel",
     "@here @channel @everyone @channel"),
    # Links.
    ("<https://status.example.com/x?a=1&amp;b=2>", "<https://status.example.com/x?a=1&b=2>", "https://status.example.com/x?a=1&b=2"),
    ("<https://grafana.example.com/d/1|the dashboard>", "[the dashboard](https://grafana.example.com/d/1)",
     "the dashboard (https://grafana.example.com/d/1)"),
    ("<http://example.com|example.com>", "[example.com](http://example.com)", "example.com"),
    ("<mailto:oncall@example.com|Mail on-call>", "[Mail on-call](mailto:oncall@example.com)", "Mail on-call (oncall@example.com)"),
    ("<mailto:oncall@example.com>", "[oncall@example.com](mailto:oncall@example.com)", "oncall@example.com"),
    # Entities: decoded once, so what people typed as text stays text.
    ("R&amp;D &lt;3 a &gt; b", "R&D <3 a > b", "R&D <3 a > b"),
    ("use &lt;b&gt; for bold", "use \\<b> for bold", "use <b> for bold"),
    ("&amp;lt;@U0DBA1&amp;gt; is how Slack writes it", "\\&lt;@U0DBA1\\&gt; is how Slack writes it",
     "&lt;@U0DBA1&gt; is how Slack writes it"),
    ("&lt;@U0DBA1&gt; typed, not a mention", "<@U0DBA1> typed, not a mention", "<@U0DBA1> typed, not a mention"),
])
def test_every_form_reads_naturally(text: str, markdown: str, plain: str) -> None:
    assert to_markdown(text, NAMES) == markdown
    assert to_plain(text, NAMES) == plain


@pytest.mark.parametrize("text, markdown, plain", [
    ("a < b and c > d", "a < b and c > d", "a < b and c > d"),  # unbalanced, not markup
    ("if x <5 then", "if x <5 then", "if x <5 then"),
    ("trailing <@U0DBA1", "trailing <@U0DBA1", "trailing <@U0DBA1"),  # no closing bracket: not a mention
    ("<<@U0DBA1>>", "\\<Dana Bauer>", "<Dana Bauer>"),  # nested-looking: the inner one is the mention
    ("<>", "<>", "<>"),
    ("<b>bold?</b>", "\\<b>bold?\\</b>", "<b>bold?</b>"),  # typed in a modal, which Slack does not escape
    ("<javascript:alert(1)|click>", "\\<javascript:alert(1)|click>", "<javascript:alert(1)|click>"),
    ("<@lowercase>", "<@lowercase>", "<@lowercase>"),  # not an id (nor HTML to a Markdown reader)
    ("<!subteam^>", "\\<!subteam^>", "<!subteam^>"),
])
def test_text_that_only_looks_like_markup_stays_text(text: str, markdown: str, plain: str) -> None:
    assert to_markdown(text, NAMES) == markdown
    assert to_plain(text, NAMES) == plain


def test_entities_inside_labels_and_urls_are_decoded() -> None:
    text = "<https://x.example/?q=a&amp;b|R&amp;D &lt;team&gt;> <#C0OPS|ops&amp;dev> <!subteam^S1|@r&amp;d>"
    assert to_plain(text) == "R&D <team> (https://x.example/?q=a&b) #ops&dev @r&d"
    assert to_markdown(text) == "[R&D \\<team\\>](https://x.example/?q=a&b) #ops&dev @r&d"


def test_markdown_significant_characters_in_names_and_labels_stay_text() -> None:
    assert to_markdown("<@U0STAR>", NAMES) == "\\*star\\*\\_dev"
    assert to_plain("<@U0STAR>", NAMES) == "*star*_dev"
    assert to_markdown("<https://x.example|see [this] *now*>") == "[see \\[this\\] \\*now\\*](https://x.example)"
    assert to_markdown("<#C0X|snake_case_name>") == "#snake_case_name"  # inside a word, `_` formats nothing
    # A destination Markdown would cut short is percent-encoded.
    assert to_markdown("<https://wiki.example/Page_(db)|runbook>") == "[runbook](https://wiki.example/Page_%28db%29)"


@pytest.mark.parametrize("text, markdown, plain", [
    # Slack: "Formatting text for app surfaces", "Basic formatting": each form, as Markdown writes it.
    ("*restart* now", "**restart** now", "restart now"),
    ("_maybe_ the cache", "*maybe* the cache", "maybe the cache"),
    ("~the cache~ the pool", "~~the cache~~ the pool", "the cache the pool"),
    ("run `pg_ctl restart` now", "run `pg_ctl restart` now", "run pg_ctl restart now"),
    ("*bold* _italic_ ~strike~", "**bold** *italic* ~~strike~~", "bold italic strike"),
    ("at *100%*.", "at **100%**.", "at 100%."),
    ("(*really*)", "(**really**)", "(really)"),
    # Nested, and holding mentions, links and entities.
    ("*_both_*", "***both***", "both"),
    ("_a *bold* word_", "*a **bold** word*", "a bold word"),
    ("*<@U0DBA1> &amp; <#C0GENERAL>*", "**Dana Bauer & #general**", "Dana Bauer & #general"),
    ("_see <https://x.example/a_b_c|the_graph>_", "*see [the_graph](https://x.example/a_b_c)*",
     "see the_graph (https://x.example/a_b_c)"),
    ("~<!here>~ *<@U0STAR>*", "~~@here~~ **\\*star\\*\\_dev**", "@here *star*_dev"),
    # In code nothing is formatted: markers stay; mentions read as names, unescaped.
    ("`*not bold* <@U0STAR> &lt;b&gt;`", "`*not bold* *star*_dev <b>`", "*not bold* *star*_dev <b>"),
])
def test_slack_formatting_reads_as_markdown_and_plain_text(text: str, markdown: str, plain: str) -> None:
    assert to_markdown(text, NAMES) == markdown
    assert to_plain(text, NAMES) == plain


@pytest.mark.parametrize("text, markdown, plain", [
    # Markers with no partner, inside words, around spaces, or across lines: text, escaped where
    # Markdown would otherwise format them.
    ("2*3*4", "2\\*3\\*4", "2*3*4"),
    ("snake_case_name and __init__", "snake_case_name and \\_\\_init\\_\\_", "snake_case_name and __init__"),
    ("* not bold *", "\\* not bold \\*", "* not bold *"),
    ("*starts here\nends here*", "\\*starts here  \nends here\\*", "*starts here\nends here*"),
    ("a *single marker", "a \\*single marker", "a *single marker"),
    ("**double**", "\\*\\*double\\*\\*", "**double**"),
    # Opened right after a word, or after the same marker: no style either (each pattern looks behind it).
    ("c_d_ e~f~ 2*3* is _x_", "c_d\\_ e\\~f\\~ 2\\*3\\* is *x*", "c_d_ e~f~ 2*3* is x"),
    ("__h__ ~~i~~", "\\_\\_h\\_\\_ \\~\\~i\\~\\~", "__h__ ~~i~~"),
    ("~ a ~ b", "\\~ a ~ b", "~ a ~ b"),
    ("one ` backtick", "one \\` backtick", "one ` backtick"),
    ("C:\\temp\\*.log", "C:\\temp\\\\\\*.log", "C:\\temp\\*.log"),
    ("``` ```", "\\`\\`\\` \\`\\`\\`", "``` ```"),
    ("# not a heading", "\\# not a heading", "# not a heading"),
    ("a line\n---", "a line  \n\\---", "a line\n---"),
])
def test_unbalanced_or_inner_markers_stay_text(text: str, markdown: str, plain: str) -> None:
    assert to_markdown(text, NAMES) == markdown
    assert to_plain(text, NAMES) == plain


def test_a_code_block_stands_on_lines_of_its_own_as_typed() -> None:
    """```…``` anywhere in a line is a block: fenced on its own lines (a text that ends with one ends
    with a line break, so nothing can be written after the closing fence), closed, its content literal."""
    text = "```SELECT * FROM t\nWHERE a &lt; 5 -- *x* _y_ ~z~ `w` <@U0DBA1>\n```"
    assert to_markdown(text, NAMES) == "\n```\nSELECT * FROM t\nWHERE a < 5 -- *x* _y_ ~z~ `w` Dana Bauer\n```\n"
    assert to_plain(text, NAMES) == "SELECT * FROM t\nWHERE a < 5 -- *x* _y_ ~z~ `w` Dana Bauer"
    assert to_markdown("see ```x = 1``` and *go*") == "see\n```\nx = 1\n```\nand **go**"
    assert to_plain("see ```x = 1``` and *go*") == "see\nx = 1\nand go"
    # A fence longer than any run of backticks inside.
    assert to_markdown("```a ``` b```") == "\n```\na \n```\nb\\`\\`\\`"  # the first ``` closes, as in Slack
    assert to_markdown("```say <@U0BT|``x``>```") == "\n```\nsay ``x``\n```\n"
    assert to_markdown("```say <@U0BT|````x```>```") == "\n`````\nsay ````x```\n`````\n"


def test_lines_quotes_and_bullets() -> None:
    """Slack's line breaks stay line breaks (Markdown's hard break: two spaces), a `>` line is a quote
    (`&gt;` as Slack stores it), a `•` line a list item; text after a quote or a list is a paragraph
    of its own, not a continuation of them."""
    text = "two things:\n• restart\n◦ the pool\n&gt; from the *runbook*\nthen done\nreally"
    assert to_markdown(text) == ("two things:\n- restart\n  - the pool\n> from the **runbook**\n\n"
                                 "then done  \nreally")
    assert to_plain(text) == "two things:\n• restart\n  ◦ the pool\n> from the runbook\nthen done\nreally"
    assert to_markdown("&gt; quoted\n&gt; twice") == "\n> quoted  \n> twice"
    assert to_markdown("a\n\nb") == "a\n\nb"


@pytest.mark.parametrize("form, in_paris", [
    ("{date_num} {time_secs}", "2014-02-18 15:39:42 UTC+01:00"),
    ("{date}", "February 18, 2014"),
    ("{date_short}", "Feb 18, 2014"),
    ("{date_long}", "Tuesday, February 18, 2014"),
    ("{date_pretty} at {time}", "February 18, 2014 at 15:39 UTC+01:00"),  # "today" would be wrong when read later
    ("Posted {date_long_pretty}", "Posted Tuesday, February 18, 2014"),
    ("{date_slash}", "18/02/2014"),
    ("{ago}", "February 18, 2014 15:39 UTC+01:00"),
])
def test_a_date_is_written_in_the_drafts_zone_from_its_timestamp(form: str, in_paris: str) -> None:
    text = f"<!date^{FEB_18_2014}^{form}|Feb 18th, 2014 6:39 AM PST>"
    assert Renderer(NAMES, markdown=True, zone=PARIS).text(text) == in_paris
    # Without a zone (pages, logs) the author's fallback text is what is shown.
    assert to_plain(text) == "Feb 18th, 2014 6:39 AM PST"


def test_a_date_with_a_link_an_unknown_token_or_no_usable_timestamp() -> None:
    linked = f"<!date^{FEB_18_2014}^{{date_num}}^https://status.example.com/1|18 Feb>"
    assert Renderer(markdown=True, zone=PARIS).text(linked) == "[2014-02-18](https://status.example.com/1)"
    assert to_plain(linked) == "18 Feb"
    assert Renderer(zone=PARIS).text(f"<!date^{FEB_18_2014}^{{fortnight}}|in a while>") == "in a while"
    assert Renderer(zone=PARIS).text("<!date^soon^{date}|some day>") == "some day"
    assert to_plain(f"<!date^{FEB_18_2014}^{{date_num}} {{time}}>") == "2014-02-18 14:39 UTC"  # no fallback: UTC
    assert to_plain("<!date^soon^{date}>") == "<!date^soon^{date}>"  # nothing usable: shown as written


def test_parse_gives_tokens_in_order() -> None:
    tokens = parse("hi <@U1|a>, <#C1>, <!subteam^S1>, <!here>, <https://x|y>, <!date^5^{date}|then> &amp; bye")
    assert tokens == [
        Text("hi "), UserMention("U1", "a"), Text(", "), ChannelLink("C1"), Text(", "), UsergroupMention("S1"),
        Text(", "), SpecialMention("here"), Text(", "), Link("https://x", "y"), Text(", "),
        DateToken(5, "{date}", None, "then", "<!date^5^{date}|then>"), Text(" & bye"),
    ]


def test_references_name_what_needs_a_lookup() -> None:
    found = references("<@U1> <@U2|bob> <#C1> <#C2|ops> <#C3|> <!subteam^S1> <!subteam^S2|@dba>", None, "<@U3>")
    assert found.users == {"U1", "U2", "U3"}  # people always: the name known beats a legacy label
    assert found.channels == {"C1", "C3"}
    assert found.usergroups == {"S1"}


def test_a_direct_message_is_said_so() -> None:
    assert to_plain("<#D0DM|Direct Message>") == "a direct message"


def test_plain_text_without_markup_is_returned_as_is() -> None:
    text = "pool at 100% [x](y) #hash"
    assert to_markdown(text) is text and to_plain(text) is text
    spaced = "pool at 100% * _ ~ [x](y) #hash"  # markers that format nothing where they stand
    assert to_markdown(spaced) == spaced and to_plain(spaced) == spaced
    assert to_markdown(None) == "" and to_plain("") == ""


# Text that reaches the shortcut (nothing to convert) and text just past it: letters (some beyond ASCII),
# digits, spaces, underscores, and every character that makes a text need converting.
SHORTCUT_EDGE = st.text(alphabet=st.sampled_from(list("ab_ _1é9 \u00b2\u0301#=-*~`<>&\n\\•◦▪")), max_size=24)


@given(SHORTCUT_EDGE)
@example("• a")  # each bullet, which the shortcut looks for by name
@example("◦ a")
@example("▪ a")
@settings(max_examples=400, deadline=None)
def test_a_text_returned_as_it_is_is_what_converting_it_gives(text: str) -> None:
    """Renderer.text returns most messages untouched (every line of a postmortem goes through it): only
    when converting them would give the same text, in Markdown and in plain text alike."""
    for renderer in (Renderer(Names(), True, ZoneInfo("Europe/Paris")), Renderer(Names(), False, None)):
        assert renderer.text(text) == renderer._converted(text)


@given(st.text(alphabet=st.sampled_from(list("a _1é #=-*~`<>&\n\\•◦▪/!?;")), max_size=12))
@example("   # heading")
@example("    # four spaces: code, not a heading")
@example("&amp;")
def test_each_shortcut_skips_only_what_its_pattern_would_leave_alone(text: str) -> None:
    """The `in` checks that spare most texts (and lines) a regular expression: never wrong the other way."""
    assert _may_format(text) == bool(re.search(r"[<&*~`\n>•◦▪\\]", text))  # what makes a text need converting
    assert _may_need_escaping(text) or not _LITERAL_SPECIAL.search(text)
    assert text.lstrip(" ")[:1] in ("#", "=", "-") or not _LINE_START_SPECIAL.search(text)
