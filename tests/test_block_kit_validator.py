"""Unit tests for simulators.block_kit: each documented limit accepts its maximum and refuses one more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from simulators.block_kit import (
    TEXT_MAX,
    Refusal,
    ack_problems,
    message_problems,
    message_refusal,
    message_warnings,
    view_problems,
)

Payload = dict[str, Any]


def mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def message(*blocks: dict[str, Any]) -> Payload:
    return {"text": "fallback", "blocks": list(blocks)}


def button(action_id: str = "go", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": plain("Go"), "action_id": action_id, **extra}


def actions(*elements: dict[str, Any], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": list(elements)}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def option(text: str = "One", value: str = "1") -> dict[str, Any]:
    return {"text": plain(text), "value": value}


def select(options: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "static_select", "action_id": "pick", "options": options, **extra}


def text_input(**extra: Any) -> dict[str, Any]:
    return {"type": "plain_text_input", "action_id": "value", **extra}


def modal(*blocks: dict[str, Any], **extra: Any) -> Payload:
    content = list(blocks) or [{"type": "divider"}]
    return {"type": "modal", "title": plain("Declare"), "submit": plain("Go"), "blocks": content, **extra}


def input_block(element: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "input", "block_id": "title", "label": plain("Title"),
            "element": element or text_input(), **extra}


def in_message(block: Callable[[str], dict[str, Any]]) -> Callable[[str], list[str]]:
    return lambda s: message_problems(message(block(s)))


def in_modal(block: Callable[[str], dict[str, Any]]) -> Callable[[str], list[str]]:
    return lambda s: view_problems(modal(block(s)))


# (rule, problems of a payload carrying a string s, the documented maximum, where Slack points)
LENGTH_LIMITS: list[tuple[str, Callable[[str], list[str]], int, str]] = [
    ("section text", in_message(lambda s: {"type": "section", "text": mrkdwn(s)}), 3000, "/blocks/0/text/text"),
    ("section field", in_message(lambda s: {"type": "section", "fields": [mrkdwn(s)]}), 2000,
     "/blocks/0/fields/0/text"),
    ("header text", in_message(lambda s: {"type": "header", "text": plain(s)}), 150, "/blocks/0/text/text"),
    ("context text", in_message(lambda s: {"type": "context", "elements": [mrkdwn(s)]}), 3000,
     "/blocks/0/elements/0/text"),
    ("markdown text", in_message(lambda s: {"type": "markdown", "text": s}), 12_000, "/blocks/0/text"),
    ("block_id", in_message(lambda s: {"type": "divider", "block_id": s}), 255, "/blocks/0/block_id"),
    ("button text", in_message(lambda s: actions({"type": "button", "text": plain(s), "action_id": "a"})), 75,
     "/blocks/0/elements/0/text/text"),
    ("button value", in_message(lambda s: actions(button(value=s))), 2000, "/blocks/0/elements/0/value"),
    ("button url", in_message(lambda s: actions(button(url=s))), 3000, "/blocks/0/elements/0/url"),
    ("action_id", in_message(lambda s: actions(button(action_id=s))), 255, "/blocks/0/elements/0/action_id"),
    ("confirm title", in_message(lambda s: actions(button(confirm={
        "title": plain(s), "text": plain("Sure?"), "confirm": plain("Yes"), "deny": plain("No")}))), 100,
     "/blocks/0/elements/0/confirm/title/text"),
    ("option text", in_message(lambda s: actions(select([option(text=s)]))), 75,
     "/blocks/0/elements/0/options/0/text/text"),
    ("option value", in_message(lambda s: actions(select([option(value=s)]))), 150,
     "/blocks/0/elements/0/options/0/value"),
    ("image alt_text", in_message(lambda s: {"type": "image", "image_url": "https://x.test/a.png", "alt_text": s}),
     2000, "/blocks/0/alt_text"),
    ("input label", in_modal(lambda s: input_block(label=plain(s))), 2000, "/view/blocks/0/label/text"),
    ("input hint", in_modal(lambda s: input_block(hint=plain(s))), 2000, "/view/blocks/0/hint/text"),
    ("placeholder", in_modal(lambda s: input_block(text_input(placeholder=plain(s)))), 150,
     "/view/blocks/0/element/placeholder/text"),
    ("modal title", lambda s: view_problems(modal(title=plain(s))), 24, "/view/title/text"),
    ("modal submit", lambda s: view_problems(modal(submit=plain(s))), 24, "/view/submit/text"),
    ("modal close", lambda s: view_problems(modal(close=plain(s))), 24, "/view/close/text"),
    ("private_metadata", lambda s: view_problems(modal(private_metadata=s)), 3000, "/view/private_metadata"),
    ("callback_id", lambda s: view_problems(modal(callback_id=s)), 255, "/view/callback_id"),
]


@pytest.mark.parametrize(("problems", "limit", "pointer"), [c[1:] for c in LENGTH_LIMITS],
                         ids=[c[0] for c in LENGTH_LIMITS])
def test_length_limits(problems: Callable[[str], list[str]], limit: int, pointer: str) -> None:
    assert problems("x" * limit) == []
    over = problems("x" * (limit + 1))
    assert f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}]" in over


# (rule, problems of a payload carrying n items, the documented maximum, where Slack points)
COUNT_LIMITS: list[tuple[str, Callable[[int], list[str]], int, str]] = [
    ("message blocks", lambda n: message_problems(message(*[{"type": "divider"}] * n)), 50, "/blocks"),
    ("modal blocks", lambda n: view_problems(modal(*[{"type": "divider"}] * n)), 100, "/view/blocks"),
    ("home blocks", lambda n: view_problems({"type": "home", "blocks": [{"type": "divider"}] * n}), 100,
     "/view/blocks"),
    ("section fields", lambda n: message_problems(message({"type": "section", "fields": [mrkdwn("f")] * n})), 10,
     "/blocks/0/fields"),
    ("context elements", lambda n: message_problems(message({"type": "context", "elements": [mrkdwn("c")] * n})),
     10, "/blocks/0/elements"),
    ("actions elements", lambda n: message_problems(message(actions(*[button(f"b{i}") for i in range(n)]))), 25,
     "/blocks/0/elements"),
    ("static_select options", lambda n: message_problems(message(actions(select([option()] * n)))), 100,
     "/blocks/0/elements/0/options"),
    ("overflow options", lambda n: message_problems(message(actions(
        {"type": "overflow", "action_id": "more", "options": [option()] * n}))), 5, "/blocks/0/elements/0/options"),
    ("checkboxes options", lambda n: view_problems(modal(input_block(
        {"type": "checkboxes", "action_id": "c", "options": [option()] * n}))), 10,
     "/view/blocks/0/element/options"),
]


@pytest.mark.parametrize(("problems", "cap", "pointer"), [c[1:] for c in COUNT_LIMITS],
                         ids=[c[0] for c in COUNT_LIMITS])
def test_count_limits(problems: Callable[[int], list[str]], cap: int, pointer: str) -> None:
    assert problems(cap) == []
    assert f"[ERROR] no more than {cap} items allowed [json-pointer:{pointer}]" in problems(cap + 1)


def test_an_over_long_section_is_refused_the_way_slack_words_it() -> None:
    # As Slack answered chat.postMessage: the failed schema first, then the failed constraint.
    assert message_problems(message({"type": "section", "text": mrkdwn("x" * 3001)})) == [
        "[ERROR] failed to match all allowed schemas [json-pointer:/blocks/0/text]",
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
    ]


def test_limits_count_what_is_sent_after_escaping() -> None:
    escaped = "x" * 2996 + "&amp;"  # 2,997 characters before escaping, 3,001 as sent
    assert message_problems(message({"type": "section", "text": mrkdwn(escaped)}))


def test_a_block_id_may_appear_once_per_message() -> None:
    problems = message_problems(message({"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "b"},
                                        {"type": "divider", "block_id": "a"}))
    assert problems == ['[ERROR] `block_id` "a" already exists [json-pointer:/blocks/2/block_id]']
    assert view_problems(modal(input_block(), input_block())) == [
        '[ERROR] `block_id` "title" already exists [json-pointer:/view/blocks/1/block_id]']


def test_an_action_id_may_appear_once_per_block() -> None:
    # The timeline's page 2: "◀ Earlier" and "Later ▶" shared one action_id in one block.
    earlier, later = button("timeline_page", value="1"), button("timeline_page", value="3")
    assert message_problems(message(actions(earlier, later, block_id="timeline_pages"))) == [
        '[ERROR] `action_id` "timeline_page" already exists [json-pointer:/blocks/0/elements/1/action_id]']
    # The same action_id in two different blocks is fine: uniqueness is per block.
    assert message_problems(message(actions(button("ack")), actions(button("ack")))) == []


def test_text_objects_need_text_and_the_right_type() -> None:
    assert message_problems(message({"type": "section", "text": mrkdwn("")})) == [
        "[ERROR] failed to match all allowed schemas [json-pointer:/blocks/0/text]",
        "[ERROR] must be more than 0 characters [json-pointer:/blocks/0/text/text]",
    ]
    assert message_problems(message({"type": "header", "text": mrkdwn("SEV1")})) == [
        "[ERROR] unsupported type: mrkdwn [json-pointer:/blocks/0/text/type]"]
    assert message_problems(message(actions({"type": "button", "text": mrkdwn("Go"), "action_id": "a"}))) == [
        "[ERROR] unsupported type: mrkdwn [json-pointer:/blocks/0/elements/0/text/type]"]
    assert message_problems(message({"type": "header"})) == [
        "[ERROR] missing required field: text [json-pointer:/blocks/0]"]


def test_a_section_needs_text_or_fields() -> None:
    assert message_problems(message({"type": "section"})) == [
        "[ERROR] must define either `text` or `fields` [json-pointer:/blocks/0]"]
    assert message_problems(message({"type": "section", "fields": [mrkdwn("a"), plain("b")]})) == []


def test_unknown_types_are_refused() -> None:
    assert message_problems(message({"type": "sparkle"})) == [
        "[ERROR] unsupported type: sparkle [json-pointer:/blocks/0/type]"]
    assert message_problems(message(actions({"type": "slider", "action_id": "s"}))) == [
        "[ERROR] unsupported type: slider [json-pointer:/blocks/0/elements/0/type]"]
    assert message_problems(message({"text": mrkdwn("no type")})) == [
        "[ERROR] missing required field: type [json-pointer:/blocks/0]"]


def test_actions_and_context_need_elements() -> None:
    assert message_problems(message({"type": "actions", "elements": []})) == [
        "[ERROR] must contain at least 1 items [json-pointer:/blocks/0/elements]"]
    assert message_problems(message({"type": "context"})) == [
        "[ERROR] missing required field: elements [json-pointer:/blocks/0]"]


def test_button_style_is_primary_or_danger() -> None:
    assert message_problems(message(actions(button(style="danger")))) == []
    assert message_problems(message(actions(button(style="loud")))) == [
        "[ERROR] must be one of: primary, danger [json-pointer:/blocks/0/elements/0/style]"]


def test_plain_text_input_lengths_stay_within_documented_ranges() -> None:
    for max_length in (1, 3000):
        assert view_problems(modal(input_block(text_input(max_length=max_length)))) == []
    for max_length in (0, 3001):
        assert view_problems(modal(input_block(text_input(max_length=max_length)))) == [
            "[ERROR] must be between 1 and 3000 [json-pointer:/view/blocks/0/element/max_length]"]
    assert view_problems(modal(input_block(text_input(min_length=3001)))) == [
        "[ERROR] must be between 0 and 3000 [json-pointer:/view/blocks/0/element/min_length]"]


def test_a_modal_with_inputs_needs_submit_and_a_title() -> None:
    form = modal(input_block())
    del form["submit"]
    assert view_problems(form) == ["[ERROR] missing required field: submit [json-pointer:/view]"]
    untitled = modal({"type": "divider"})
    del untitled["title"]
    assert view_problems(untitled) == ["[ERROR] missing required field: title [json-pointer:/view]"]
    assert view_problems({**modal({"type": "divider"}), "type": "popup"}) == [
        "[ERROR] must be one of: modal, home [json-pointer:/view/type]"]
    assert view_problems({"type": "modal", "title": plain("T")}) == [
        "[ERROR] missing required field: blocks [json-pointer:/view]"]


def test_home_tabs_take_no_submit_or_close() -> None:
    assert view_problems({"type": "home", "blocks": [{"type": "divider"}]}) == []
    assert view_problems({"type": "home", "submit": plain("Go"), "blocks": [{"type": "divider"}]}) == [
        "[ERROR] submit is not allowed in a home view [json-pointer:/view/submit]"]


def test_slack_sdk_models_catch_what_the_walk_leaves_to_them() -> None:
    # Options and option groups together: only slack_sdk's StaticSelectElement spells this rule out.
    both = select([option()], option_groups=[{"label": plain("G"), "options": [option()]}])
    assert message_problems(message(actions(both))) == [
        "[ERROR] options and option_groups cannot both be specified [json-pointer:/blocks/0]"]


def test_blocks_inside_attachments_follow_the_same_rules() -> None:
    payload = {"text": "t", "attachments": [{"blocks": [{"type": "header", "text": plain("x" * 151)}]}]}
    assert message_problems(payload) == [
        "[ERROR] must be less than 151 characters [json-pointer:/attachments/0/blocks/0/text/text]"]


def test_refusals_that_carry_only_a_code() -> None:
    assert message_refusal({"text": "t"}) is None
    assert message_refusal({"blocks": "{oops"}) == Refusal("invalid_blocks_format", [])
    assert message_refusal({}) == Refusal("no_text", [])
    assert message_refusal({"text": "", "blocks": []}) == Refusal("no_text", [])
    assert message_refusal({"text": "t", "attachments": [{"text": "a"}] * 101}) == Refusal("too_many_attachments", [])
    assert message_problems({}) == ["no_text"]
    assert message_refusal(message({"type": "header", "text": plain("x" * 151)})) == Refusal(
        "invalid_blocks", ["[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"])


def test_long_text_is_posted_truncated_not_refused() -> None:
    at_limit, over = {"text": "x" * TEXT_MAX}, {"text": "x" * (TEXT_MAX + 1)}
    assert message_problems(over) == [] and message_warnings(at_limit) == []
    assert message_warnings(over) == ["message_truncated"]


def test_blocks_without_text_are_accepted() -> None:
    # Slack posts them; the "missing text" notice is slack_sdk's client-side UserWarning, not Slack's.
    assert message_problems({"blocks": [{"type": "divider"}]}) == []


def test_unknown_surface_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="surface"):
        message_problems({"text": "t"}, surface="canvas")
    assert message_problems(message(*[{"type": "divider"}] * 100), surface="modal") == []


# --- acknowledgements: Slack shows an ack's body as a message (or a view), under the same rules


def test_an_ack_with_nothing_to_show_is_fine() -> None:
    assert ack_problems({}) == []
    assert ack_problems(None) == []
    assert ack_problems({"response_action": "errors", "errors": {"title": "Too long"}}) == []


def test_an_ack_message_is_held_to_the_message_rules() -> None:
    button = {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "same"}
    refused = {"text": "page 2", "blocks": [{"type": "actions", "elements": [button, {**button}]}]}
    assert any("already exists" in p for p in ack_problems(refused))
    assert ack_problems({"response_type": "ephemeral", "text": "ok"}) == []


def test_a_view_submission_ack_is_held_to_the_view_rules() -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "x" * 25}, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    assert ack_problems({"response_action": "update", "view": view})
    assert ack_problems({"response_action": "push", "view": {**view, "title": {"type": "plain_text", "text": "ok"}}}) == []
