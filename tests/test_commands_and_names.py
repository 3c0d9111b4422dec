"""Pure parts: the sub-command parser and channel-name generation, with properties over any text."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.incidents import commands as c
from bot.incidents.channel_names import MAX_CHANNEL_NAME, channel_name, is_valid_channel_name, slugify
from bot.incidents.values import Role, Severity, Status


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("declare sev1 Checkout is timing out", c.Declare("Checkout is timing out", Severity.SEV1)),
        ("DECLARE SEV2   Search   down ", c.Declare("Search down", Severity.SEV2)),
        ("declare Checkout sev1", c.Declare("Checkout sev1", Severity.SEV3)),
        ("declare", c.OpenDeclareForm()),
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
