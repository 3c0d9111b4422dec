"""Pure parts: the sub-command parser and channel-name generation, with properties over any text."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.incidents import commands as c
from bot.incidents.channel_names import MAX_CHANNEL_NAME, channel_name, is_valid_channel_name, slugify
from bot.incidents.values import EntryKind, Role, Severity, Status


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("declare sev1 Checkout is timing out", c.Declare("Checkout is timing out", Severity.SEV1)),
        ("DECLARE SEV2   Search   down ", c.Declare("Search down", Severity.SEV2)),
        ("declare Checkout sev1", c.Declare("Checkout sev1", Severity.SEV3)),
        ("declare", c.OpenDeclareForm()),
        ("declare sev2", c.OpenDeclareForm(severity=Severity.SEV2)),
        ("declare sev2 --private", c.OpenDeclareForm(private=True, severity=Severity.SEV2)),
        ("declare --private sev1 Payroll export", c.Declare("Payroll export", Severity.SEV1, private=True)),
        # Wherever `--private` stands, and as Slack's clients may send it (an em dash), it is honoured.
        ("declare sev2 Payroll export --private", c.Declare("Payroll export", Severity.SEV2, private=True)),
        ("declare sev2 -private Payroll export", c.Declare("Payroll export", Severity.SEV2, private=True)),
        ("declare \u2014private Payroll export", c.Declare("Payroll export", Severity.SEV3, private=True)),
        # However the dashes were typed or what punctuation came with it (each seen to publish a title).
        ("declare sev2 Payroll exposed --private.", c.Declare("Payroll exposed", Severity.SEV2, private=True)),
        ("declare sev2 Payroll exposed --private\u2026", c.Declare("Payroll exposed", Severity.SEV2, private=True)),
        ("declare sev2 \u2010\u2010private Payroll", c.Declare("Payroll", Severity.SEV2, private=True)),
        ("declare sev2 \u2212\u2212private Payroll", c.Declare("Payroll", Severity.SEV2, private=True)),
        ("declare sev2 \uff0d\uff0dprivate Payroll", c.Declare("Payroll", Severity.SEV2, private=True)),
        ("declare sev2 (--private) Payroll", c.Declare("Payroll", Severity.SEV2, private=True)),
        ("declare sev2 \u201c--private\u201d Payroll", c.Declare("Payroll", Severity.SEV2, private=True)),
        ("declare sev2 *--private* Payroll", c.Declare("Payroll", Severity.SEV2, private=True)),
        ("declare sev2 --private\u200b Payroll", c.Declare("Payroll", Severity.SEV2, private=True)),
        ("declare sev2 Payroll --PRIVATE:", c.Declare("Payroll", Severity.SEV2, private=True)),
        # A dash in a title is a dash.
        ("declare sev2 Checkout \u2013 payments down", c.Declare("Checkout \u2013 payments down", Severity.SEV2)),
        ("declare sev2 Payroll (private) export", c.Declare("Payroll (private) export", Severity.SEV2)),
        ("declare Several users cannot log in", c.Declare("Several users cannot log in", Severity.SEV3)),
        ("declare sev1: Checkout is down", c.Declare("Checkout is down", Severity.SEV1)),
        ("note misleading: Database servers were tuned", c.AddNote("Database servers were tuned", EntryKind.MISLEADING)),
        ("note Hypothesis - pool exhaustion", c.AddNote("pool exhaustion", EntryKind.HYPOTHESIS)),
        ("note ruled-out the network", c.AddNote("the network", EntryKind.MISLEADING)),
        ("note Reaction from users is calm", c.AddNote("Reaction from users is calm", EntryKind.NOTE)),
        ("summary", c.ShowSummary()),
        ("private", c.MakePrivate()),
        ("status Identified", c.SetStatus(Status.IDENTIFIED)),
        ("status resolved", c.SetStatus(Status.RESOLVED)),
        ("sev SEV4", c.SetSeverity(Severity.SEV4)),
        ("role comms <@U0BOB|bob>", c.AssignRole(Role.COMMS, "U0BOB")),
        ("role scribe <@W0ENT>", c.AssignRole(Role.SCRIBE, "W0ENT")),
        ("update DB failover done", c.PostUpdate("DB failover done")),
        ("resolve", c.Resolve(None)),
        ("resolve Rolled back", c.Resolve("Rolled back")),
        ("close", c.Close()),
        ("list", c.ListOpen()),
        ("help", c.Help()),
        ("", c.Help()),
    ],
)
def test_sub_commands_parse_into_typed_values(text: str, expected: c.Command) -> None:
    assert c.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # A private incident's title must never be announced by a slip of the flag.
        ("declare sev1 Payroll export --privat", "looks like a mistyped `--private`"),
        ("declare sev1 -prviate Payroll export", "looks like a mistyped `--private`"),
        ("declare sev2 private Payroll export", "starts with the word `private`"),
        ("declare sev2 \u201cPrivate\u201d: Payroll export", "starts with the word `private`"),
        ("declare sev2 -- private Payroll exposed", "looks like `--private` with a space in it"),
        ("declare sev2 \u2014 private Payroll exposed", "looks like `--private` with a space in it"),
        ("declare sev2 Payroll exposed - private", "looks like `--private` with a space in it"),
        ("declare sev2 Payroll exposed (--privte)", "looks like a mistyped `--private`"),
        ("declare --private --private Twice", "is given twice"),
        ("declare --public Checkout", "is not an option of declare"),
        ("declare sev5 Checkout", "is not a severity"),
        # A kind mistyped would drop the note out of the postmortem's sections and the read-in.
        ("note mislead Restarted the web tier, no change", "did you mean `misleading`?"),
        ("note hypothesys the pool", "did you mean `hypothesis`?"),
        ("note misleading:", "needs some text"),
    ],
)
def test_slips_that_would_publish_or_lose_something_are_refused_saying_how(text: str, said: str) -> None:
    with pytest.raises(c.UsageError) as refused:
        c.parse(text)
    assert said in refused.value.message


def test_a_refused_note_is_quoted_back_whole() -> None:
    text = "mislead " + "Restarted the web tier, no change. " * 40
    with pytest.raises(c.UsageError) as refused:
        c.parse(f"note {text}")
    assert text.strip() in refused.value.message


@given(st.text(max_size=300))
@settings(max_examples=400, deadline=None)
def test_any_text_parses_or_gives_a_usage_message(text: str) -> None:
    try:
        command = c.parse(text)
    except c.UsageError as error:
        assert error.message and "/incident" in error.usage
    else:
        assert isinstance(command, c.Command.__args__)  # type: ignore[attr-defined]


@given(st.text(max_size=500), st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=999))
@settings(max_examples=400, deadline=None)
def test_any_title_gives_a_valid_channel_name(title: str, number: int, attempt: int) -> None:
    name = channel_name("inc", date(2026, 11, 27), title, number, attempt)
    assert is_valid_channel_name(name), name
    assert name.startswith("inc-20261127-") and len(name) <= MAX_CHANNEL_NAME
    if attempt > 1:
        assert name.endswith(f"-{attempt}")


def test_slugs_fold_accents_drop_markup_and_cut_at_a_word() -> None:
    assert slugify("Crème brûlée &amp; <@U0BOB|bob>'s API: 500s!", 80) == "creme-brulee-bob-s-api-500s"
    assert slugify("alpha beta gamma", 12) == "alpha-beta"
    assert slugify("決済が遅い", 80) == ""
    assert channel_name("inc", date(2026, 1, 2), "決済が遅い", 7) == "inc-20260102-incident-7"


# --- Bad input at scale: every sub-command, any text after it.

SUB_COMMANDS = sorted(c._PARSERS)
ANY_TEXT = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.builds(lambda chunk, times: chunk * times, st.text(min_size=1, max_size=5), st.integers(0, 1500)),  # oversized
    st.sampled_from(["sev1", "SEV9", "<@U0BOB|bob>", "<@U0BOB> <@U0CAROL>", "@bob", "\x00", "\u200b", "`", "*",
                     "detection", "list", "closed", "'; DROP TABLE incidents; --", "\n\t "]),
)


def _case_mixed(word: str, flips: list[bool]) -> str:
    return "".join(ch.upper() if flip else ch for ch, flip in zip(word, flips + [False] * len(word), strict=False))


@given(st.sampled_from(SUB_COMMANDS), st.lists(st.booleans(), max_size=10), st.sampled_from([" ", "  ", "\t", "\n", " \u00a0"]),
       ANY_TEXT)
@settings(max_examples=1500, deadline=None)
def test_every_sub_command_with_any_text_gives_a_command_or_a_usage_message(
    name: str, flips: list[bool], separator: str, rest: str
) -> None:
    text = f"{_case_mixed(name, flips)}{separator}{rest}"
    try:
        command = c.parse(text)
    except c.UsageError as error:
        assert error.message.strip() and error.usage.strip() and "/incident" in error.usage
        assert str(error) == error.message
        if not error.usage.startswith("•"):  # a sub-command's own usage, not the whole help
            assert error.usage in c.USAGE.values()
    else:
        assert isinstance(command, c.Command.__args__)  # type: ignore[attr-defined]
        for key in ("text", "message", "summary"):  # free text is bounded; names (team, target) are looked up
            assert len(getattr(command, key, None) or "") <= c.MAX_TEXT_LENGTH
        assert len(getattr(command, "title", "")) <= c.MAX_TITLE_LENGTH


@given(ANY_TEXT)
@settings(max_examples=500, deadline=None)
def test_diag_only_ever_names_an_allowlisted_check_and_one_target_word(rest: str) -> None:
    try:
        command = c.parse(f"diag {rest}")
    except c.UsageError as error:
        assert error.usage == c.USAGE["diag"]
        return
    assert isinstance(command, c.ListDiagnostics | c.RunDiagnostic)
    if isinstance(command, c.RunDiagnostic):
        assert command.check in c.CHECKS
        assert command.target is None or (command.target and command.target.split() == [command.target])


@pytest.mark.parametrize("text", [
    "diag SELECT 1",
    "diag select pg_terminate_backend(pid) from pg_stat_activity",
    "diag connections; DROP TABLE users",
    "diag connections primary; DELETE FROM accounts",
    "diag connections primary --sql 'SELECT 1'",
    "diag settings primary extra words",
    "diag `SELECT 1`",
])
def test_diag_refuses_sql(text: str) -> None:
    with pytest.raises(c.UsageError) as refused:
        c.parse(text)
    assert refused.value.usage == c.USAGE["diag"]


@given(st.text(max_size=400), st.integers(min_value=0, max_value=10**12))
@settings(max_examples=400, deadline=None)
def test_slugs_are_short_lowercase_words(text: str, max_length: int) -> None:
    slug = slugify(text, max_length % 120)
    assert len(slug) <= max_length % 120
    assert slug == "" or re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug), slug


@given(
    st.from_regex(r"[a-z0-9][a-z0-9_-]{0,19}", fullmatch=True),  # what the configuration accepts as a prefix
    st.dates(),
    st.text(max_size=300),
    st.integers(min_value=1, max_value=10**12),
    st.integers(min_value=1, max_value=10**6),
)
@settings(max_examples=600, deadline=None)
def test_any_prefix_title_number_and_attempt_give_a_valid_slack_name(
    prefix: str, day: date, title: str, number: int, attempt: int
) -> None:
    name = channel_name(prefix, day, title, number, attempt)
    assert is_valid_channel_name(name), name
    assert len(name) <= MAX_CHANNEL_NAME and name == name.lower()
    assert re.fullmatch(r"[a-z0-9_-]+", name)
    assert name.startswith(f"{prefix}-{day:%Y%m%d}-")
    if attempt > 1:
        assert name.endswith(f"-{attempt}")
        assert name != channel_name(prefix, day, title, number, attempt + 1)
