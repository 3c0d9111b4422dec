"""Slack's Block Kit rules as a pure validator: what Slack refuses, in Slack's own words.

The Slack simulator answers with it (chat.postMessage / chat.update / chat.postEphemeral, a
response_url, views.open / views.update), and tests call it directly to prove that what the bot
builds would be accepted::

    message_problems({"text": "SEV1", "blocks": blocks})   # [] when Slack would post it
    view_problems(modal)                                    # [] when views.open would open it
    message_warnings({"text": "x" * 40_001})                # ["message_truncated"]: posted, cut

Problems read like Slack's ``response_metadata.messages``:
``[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]``. Pointers of a
message start at the payload (``/blocks/…``, ``/attachments/0/blocks/…``); those of a view at
``/view`` as views.* reports them (``[json-pointer:/view/blocks/0/element/options]``, seen from
Slack).

Two layers:

* our own walk of the JSON, one rule per documented limit, each naming the Block Kit reference
  page it comes from (https://docs.slack.dev/reference/block-kit/…), with precise pointers;
* slack_sdk's models (`Block.parse(...).to_dict()`, `View(**view).to_dict()`, which run every
  ``validate_json`` down the tree) as a safety net for what the walk does not spell out; their
  refusal is reported at the block (or view) pointer. They miss, among others: text-object
  emptiness and the 3,000 cap, plain_text-only positions, section fields' 2,000 each,
  checkbox/radio options ≤10 (documented, not checked), plain_text_input min/max_length ranges,
  duplicate block_id / action_id, ``submit`` with inputs.

Lengths count Python characters (code points) of the text as sent, i.e. after the bot's own
words and after escaping (``&`` travels as ``&amp;`` and counts 5).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, BlockElement
from slack_sdk.models.views import View

__all__ = [
    "MESSAGE_BLOCKS_MAX", "TEXT_MAX", "TRUNCATION_MESSAGE", "VIEW_BLOCKS_MAX", "Refusal",
    "ack_problems", "message_problems", "message_refusal", "message_warnings", "view_problems",
]

MESSAGE_BLOCKS_MAX = 50  # Block Kit reference "Blocks": "up to 50 blocks in each message"
VIEW_BLOCKS_MAX = 100  # ... "and 100 blocks in modals or Home tabs"
TEXT_MAX = 40_000  # changelog 2018-04 "Truncating really long messages": longer `text` is cut, with a warning
ATTACHMENTS_MAX = 100  # chat.postMessage errors: too_many_attachments, "A maximum of 100 attachments"

_SURFACE_BLOCKS = {"message": MESSAGE_BLOCKS_MAX, "modal": VIEW_BLOCKS_MAX, "home": VIEW_BLOCKS_MAX}
# The response_metadata.messages line that comes with the message_truncated warning (same changelog).
TRUNCATION_MESSAGE = "[WARN] Your message was truncated but still posted. The `text` field accepts up to 40,000 characters."



def _all_subclasses(cls: type) -> list[type]:
    found: list[type] = []
    sub: type
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


# Block and element types Slack knows: the ones slack_sdk models (it tracks Slack's reference).
_BLOCK_TYPES = frozenset(t for cls in _all_subclasses(Block) if isinstance(t := getattr(cls, "type", None), str))
_ELEMENT_TYPES = frozenset(t for cls in _all_subclasses(BlockElement) if isinstance(t := getattr(cls, "type", None), str))


class Refusal(NamedTuple):
    """How Slack refuses a payload: its ``error`` code and its ``response_metadata.messages``."""

    error: str  # "invalid_blocks", "invalid_blocks_format", "no_text", "too_many_attachments"
    messages: list[str]  # "[ERROR] … [json-pointer:…]"; [] when Slack gives only the code


# -- public API -------------------------------------------------------------------------------------


def message_problems(payload: Mapping[str, Any], *, surface: str = "message") -> list[str]:
    """Why Slack would refuse this message payload; [] when it would post it.

    `payload` is a chat.postMessage / chat.update / chat.postEphemeral / response_url body
    ("text", "blocks", "attachments"; other keys ignored). `surface` picks the block cap:
    "message" (50), "modal" or "home" (100). Refusals that carry no messages (``no_text``,
    ``too_many_attachments``, ``invalid_blocks_format``) come back as their bare error code.
    A `text` over 40,000 characters is not a problem: Slack truncates it (`message_warnings`).
    """
    refusal = message_refusal(payload, surface=surface)
    if refusal is None:
        return []
    return list(refusal.messages) or [refusal.error]


def message_refusal(payload: Mapping[str, Any], *, surface: str = "message") -> Refusal | None:
    """Slack's answer to an unacceptable message payload, or None when it would post it.

    Order follows Slack's: a `blocks` that is not an array is ``invalid_blocks_format``; Block
    Kit problems are ``invalid_blocks`` (chat.postMessage "errors"); more than 100 attachments
    is ``too_many_attachments``; nothing to show at all is ``no_text``.
    """
    if surface not in _SURFACE_BLOCKS:
        raise ValueError(f"surface must be one of {sorted(_SURFACE_BLOCKS)}, not {surface!r}")
    blocks = payload.get("blocks")
    if blocks in ("", None):
        blocks = None
    elif not isinstance(blocks, list):
        return Refusal("invalid_blocks_format", [])
    problems = _blocks_problems(blocks, "/blocks", _SURFACE_BLOCKS[surface]) if blocks is not None else []
    attachments = payload.get("attachments") or None
    if isinstance(attachments, list):
        for i, attachment in enumerate(attachments):
            inner = attachment.get("blocks") if isinstance(attachment, dict) else None
            if isinstance(inner, list):
                problems += _blocks_problems(inner, f"/attachments/{i}/blocks", _SURFACE_BLOCKS[surface])
    if problems:
        return Refusal("invalid_blocks", problems)
    if isinstance(attachments, list) and len(attachments) > ATTACHMENTS_MAX:
        return Refusal("too_many_attachments", [])
    if not (payload.get("text") or blocks or attachments):
        return Refusal("no_text", [])
    return None


def message_warnings(payload: Mapping[str, Any]) -> list[str]:
    """Warnings Slack answers while still posting: ["message_truncated"] past 40,000 characters.

    Source: changelog 2018-04 "Truncating really long messages" (chat.postMessage,
    chat.postEphemeral, response URLs and webhooks alike): the text is cut to 40,000 characters
    and the answer carries ``response_metadata.warnings: ["message_truncated"]``.
    """
    return ["message_truncated"] if len(str(payload.get("text") or "")) > TEXT_MAX else []


def ack_problems(answer: object) -> list[str]:
    """What Slack would refuse in an acknowledgement's body ([] when it would show it, or when the
    body carries nothing to show).

    A slash command's or block action's ack (HTTP 200 JSON, or a Socket Mode envelope's `payload`)
    is read as a message (`text`/`blocks`); a view submission's is a `response_action`, whose
    "update"/"push" carry a view (Block Kit reference "Modals": "Responding to view submissions").
    """
    if not isinstance(answer, Mapping):
        return []
    if answer.get("response_action") in ("update", "push"):
        return view_problems(answer.get("view") or {})
    if "text" in answer or "blocks" in answer:
        return message_problems(answer)
    return []


def view_problems(view: Mapping[str, Any]) -> list[str]:
    """Why views.open / views.update / views.push would refuse this view; [] when it would open it.

    Slack answers ``invalid_arguments`` with these messages. Rules (Reference "Modal views" /
    "Home tab views"): type modal|home; a modal needs a plain_text `title` ≤24; `close` and
    `submit` plain_text ≤24, `submit` required once an input block is present (home views take
    neither); `blocks` required, ≤100; `private_metadata` ≤3,000; `callback_id` ≤255; plus every
    block rule with block_id unique across the view.
    """
    if not isinstance(view, Mapping):
        return ["[ERROR] must be an object [json-pointer:/view]"]
    out: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        out.append("[ERROR] must be one of: modal, home [json-pointer:/view/type]")
    if kind == "modal":
        if view.get("title") is None:
            out.append("[ERROR] missing required field: title [json-pointer:/view]")
        for key in ("title", "close", "submit"):
            if view.get(key) is not None:
                _text(view[key], f"/view/{key}", out, limit=24, plain_only=True)
    elif kind == "home":
        out += [f"[ERROR] {key} is not allowed in a home view [json-pointer:/view/{key}]"
                for key in ("close", "submit") if view.get(key) is not None]
    for key, limit in (("private_metadata", 3000), ("callback_id", 255)):
        _string(view, key, f"/view/{key}", out, limit)
    blocks = view.get("blocks")
    if blocks is None:
        out.append("[ERROR] missing required field: blocks [json-pointer:/view]")
    elif not isinstance(blocks, list):
        out.append("[ERROR] must be an array [json-pointer:/view/blocks]")
    else:
        out += _blocks_problems(blocks, "/view/blocks", VIEW_BLOCKS_MAX)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if kind == "modal" and has_input and view.get("submit") is None:
            # "Modal views": "submit is required when an input block is within the blocks array".
            out.append("[ERROR] missing required field: submit [json-pointer:/view]")
    if not out:
        out += _sdk_view_problem(view)
    return out


# -- blocks ----------------------------------------------------------------------------------------


def _blocks_problems(blocks: list[Any], ptr: str, cap: int) -> list[str]:
    """Every block rule, plus block_id unique across the surface and the block cap."""
    out: list[str] = []
    if len(blocks) > cap:
        out.append(_too_many(cap, ptr))
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        here = f"{ptr}/{i}"
        before = len(out)
        kind = _kind(block, _BLOCK_TYPES, here, out)
        if kind is None:
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            # Block Kit reference, every block: "block_id … Maximum length for this field is 255
            # characters. block_id should be unique for each message and each iteration of a message."
            if _string(block, "block_id", f"{here}/block_id", out, 255) and block_id in seen_ids:
                out.append(_already_exists("block_id", block_id, f"{here}/block_id"))
            if isinstance(block_id, str):
                seen_ids.add(block_id)
        rule = _BLOCK_RULES.get(kind)
        if rule is not None:
            rule(block, here, out)
        if len(out) == before:
            out += _sdk_block_problem(block, here)
    return out


def _section(block: dict[str, Any], ptr: str, out: list[str]) -> None:
    """Reference "Section block": text ≤3,000; fields ≤10, each ≤2,000; one of them required."""
    if block.get("text") is None and not block.get("fields"):
        out.append(f"[ERROR] must define either `text` or `fields` [json-pointer:{ptr}]")
    if block.get("text") is not None:
        _text(block["text"], f"{ptr}/text", out, limit=3000, union=True)
    fields = _items(block, "fields", f"{ptr}/fields", out, 10)
    for j, item in enumerate(fields):
        _text(item, f"{ptr}/fields/{j}", out, limit=2000, union=True)
    if block.get("accessory") is not None:
        _element(block["accessory"], f"{ptr}/accessory", out)


def _header(block: dict[str, Any], ptr: str, out: list[str]) -> None:
    """Reference "Header block": text is plain_text, ≤150 characters, required."""
    _text(block.get("text"), f"{ptr}/text", out, limit=150, plain_only=True, parent=ptr)


def _context(block: dict[str, Any], ptr: str, out: list[str]) -> None:
    """Reference "Context block": elements (image elements and text objects) required, ≤10."""
    elements = _items(block, "elements", f"{ptr}/elements", out, 10, required=True, parent=ptr)
    for j, element in enumerate(elements):
        here = f"{ptr}/elements/{j}"
        if isinstance(element, dict) and element.get("type") == "image":
            _element(element, here, out)
        else:
            _text(element, here, out, limit=3000, union=True)


def _actions(block: dict[str, Any], ptr: str, out: list[str]) -> None:
    """Reference "Actions block": elements required, ≤25; action_id unique within the block.

    Uniqueness: element references ("action_id … Should be unique among all other action_ids in
    the containing block"); Slack refuses a repeat with "`action_id` "x" already exists
    [json-pointer:/blocks/1/elements/1/action_id]" (seen from Slack in two unrelated bot reports).
    """
    elements = _items(block, "elements", f"{ptr}/elements", out, 25, required=True, parent=ptr)
    seen: set[str] = set()
    for j, element in enumerate(elements):
        here = f"{ptr}/elements/{j}"
        _element(element, here, out)
        action_id = element.get("action_id") if isinstance(element, dict) else None
        if isinstance(action_id, str):
            if action_id in seen:
                out.append(_already_exists("action_id", action_id, f"{here}/action_id"))
            seen.add(action_id)


def _input(block: dict[str, Any], ptr: str, out: list[str]) -> None:
    """Reference "Input block": label plain_text ≤2,000 (required); hint plain_text ≤2,000; element required."""
    _text(block.get("label"), f"{ptr}/label", out, limit=2000, plain_only=True, parent=ptr)
    if block.get("hint") is not None:
        _text(block["hint"], f"{ptr}/hint", out, limit=2000, plain_only=True)
    if block.get("element") is None:
        out.append(f"[ERROR] missing required field: element [json-pointer:{ptr}]")
    else:
        _element(block["element"], f"{ptr}/element", out)


def _image_block(block: dict[str, Any], ptr: str, out: list[str]) -> None:
    """Reference "Image block": alt_text required ≤2,000; image_url ≤3,000; title plain_text ≤2,000."""
    _string(block, "alt_text", f"{ptr}/alt_text", out, 2000, required=True, parent=ptr)
    _string(block, "image_url", f"{ptr}/image_url", out, 3000)
    if block.get("title") is not None:
        _text(block["title"], f"{ptr}/title", out, limit=2000, plain_only=True)


def _markdown(block: dict[str, Any], ptr: str, out: list[str]) -> None:
    """Reference "Markdown block": text required, ≤12,000 characters."""
    _string(block, "text", f"{ptr}/text", out, 12_000, required=True, parent=ptr, min_len=1)


_BLOCK_RULES: dict[str, Callable[[dict[str, Any], str, list[str]], None]] = {
    "section": _section, "header": _header, "context": _context, "actions": _actions,
    "input": _input, "image": _image_block, "markdown": _markdown,
}


# -- elements and composition objects -------------------------------------------------------------

# Option caps per element (Reference, each element's page): selects 100, overflow 5, checkboxes
# and radio buttons 10.
_OPTIONS_MAX = {
    "static_select": 100, "multi_static_select": 100, "overflow": 5, "checkboxes": 10, "radio_buttons": 10,
}
# Options show plain_text only in menus; checkboxes and radio buttons also take mrkdwn.
_MRKDWN_OPTIONS = frozenset({"checkboxes", "radio_buttons"})


def _kind(obj: Any, known: Collection[str], ptr: str, out: list[str]) -> str | None:
    """A block's or element's `type`, or None (with the problem added) when it is not an object of a
    known type. blocks.validate reference: "unsupported type: invalid" at the type's pointer."""
    if not isinstance(obj, dict):
        out.append(f"[ERROR] must be an object [json-pointer:{ptr}]")
        return None
    kind = obj.get("type")
    if not isinstance(kind, str):
        out.append(f"[ERROR] missing required field: type [json-pointer:{ptr}]")
        return None
    if kind not in known:
        out.append(f"[ERROR] unsupported type: {kind} [json-pointer:{ptr}/type]")
        return None
    return kind


def _element(element: Any, ptr: str, out: list[str]) -> None:
    """One block element: type known, action_id ≤255, placeholder plain_text ≤150, confirm, options, per-type caps."""
    kind = _kind(element, _ELEMENT_TYPES, ptr, out)
    if kind is None:
        return
    _string(element, "action_id", f"{ptr}/action_id", out, 255)  # every interactive element's page
    if element.get("placeholder") is not None:
        _text(element["placeholder"], f"{ptr}/placeholder", out, limit=150, plain_only=True)
    if element.get("confirm") is not None:
        _confirm(element["confirm"], f"{ptr}/confirm", out)
    if kind == "button":
        # Reference "Button element": text plain_text ≤75 (required), value ≤2,000, url ≤3,000,
        # style primary|danger, accessibility_label ≤75.
        _text(element.get("text"), f"{ptr}/text", out, limit=75, plain_only=True, parent=ptr)
        _string(element, "value", f"{ptr}/value", out, 2000)
        _string(element, "url", f"{ptr}/url", out, 3000)
        _string(element, "accessibility_label", f"{ptr}/accessibility_label", out, 75)
        if element.get("style") is not None and element["style"] not in ("primary", "danger"):
            out.append(f"[ERROR] must be one of: primary, danger [json-pointer:{ptr}/style]")
    elif kind == "image":
        # Reference "Image element": image_url ≤3,000; alt_text required, ≤2,000.
        _string(element, "image_url", f"{ptr}/image_url", out, 3000)
        _string(element, "alt_text", f"{ptr}/alt_text", out, 2000, required=True, parent=ptr)
    elif kind == "plain_text_input":
        # Reference "Plain-text input element": min_length 0-3,000 and max_length 1-3,000 inclusive.
        _integer(element, "min_length", f"{ptr}/min_length", out, 0, 3000)
        _integer(element, "max_length", f"{ptr}/max_length", out, 1, 3000)
    if kind in _OPTIONS_MAX:
        plain_only = kind not in _MRKDWN_OPTIONS
        if element.get("options") is None and element.get("option_groups") is None:
            out.append(f"[ERROR] missing required field: options [json-pointer:{ptr}]")
        for j, option in enumerate(_items(element, "options", f"{ptr}/options", out, _OPTIONS_MAX[kind])):
            _option(option, f"{ptr}/options/{j}", out, plain_only=plain_only)
        for g, group in enumerate(_items(element, "option_groups", f"{ptr}/option_groups", out, 100)):
            # Reference "Option group object": label plain_text ≤75; options ≤100.
            here = f"{ptr}/option_groups/{g}"
            if not isinstance(group, dict):
                out.append(f"[ERROR] must be an object [json-pointer:{here}]")
                continue
            _text(group.get("label"), f"{here}/label", out, limit=75, plain_only=True, parent=here)
            for j, option in enumerate(_items(group, "options", f"{here}/options", out, 100, required=True, parent=here)):
                _option(option, f"{here}/options/{j}", out, plain_only=True)


def _option(option: Any, ptr: str, out: list[str], *, plain_only: bool) -> None:
    """Reference "Option object": text ≤75 (required), value ≤150, description ≤75, url ≤3,000."""
    if not isinstance(option, dict):
        out.append(f"[ERROR] must be an object [json-pointer:{ptr}]")
        return
    _text(option.get("text"), f"{ptr}/text", out, limit=75, plain_only=plain_only, parent=ptr)
    _string(option, "value", f"{ptr}/value", out, 150)
    if option.get("description") is not None:
        _text(option["description"], f"{ptr}/description", out, limit=75, plain_only=plain_only)
    _string(option, "url", f"{ptr}/url", out, 3000)


def _confirm(confirm: Any, ptr: str, out: list[str]) -> None:
    """Reference "Confirmation dialog object": title ≤100, text ≤300, confirm ≤30, deny ≤30, all plain_text."""
    if not isinstance(confirm, dict):
        out.append(f"[ERROR] must be an object [json-pointer:{ptr}]")
        return
    for key, limit in (("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)):
        _text(confirm.get(key), f"{ptr}/{key}", out, limit=limit, plain_only=True, parent=ptr)


def _text(
    obj: Any, ptr: str, out: list[str], *, limit: int, plain_only: bool = False, union: bool = False,
    parent: str | None = None,
) -> None:
    """A text object (Reference "Text object"): type plain_text|mrkdwn, text 1..`limit` characters.

    `parent` set means the object is required and its absence is reported there. `union` marks a
    position that takes more than one schema (section text and fields, context elements): Slack
    then leads with "failed to match all allowed schemas" at the object, as seen from Slack:
    ``[ERROR] failed to match all allowed schemas [json-pointer:/blocks/0/text]`` followed by
    ``[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]``.
    """
    if obj is None:
        if parent is not None:
            out.append(f"[ERROR] missing required field: {ptr.rsplit('/', 1)[1]} [json-pointer:{parent}]")
        return
    found: list[str] = []
    if not isinstance(obj, dict):
        found.append(f"[ERROR] must be an object [json-pointer:{ptr}]")
    else:
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind is None:
            found.append(f"[ERROR] missing required field: type [json-pointer:{ptr}]")
        elif kind not in allowed:
            found.append(f"[ERROR] unsupported type: {kind} [json-pointer:{ptr}/type]")
        text = obj.get("text")
        if text is None:
            found.append(f"[ERROR] missing required field: text [json-pointer:{ptr}]")
        elif not isinstance(text, str):
            found.append(f"[ERROR] must be a string [json-pointer:{ptr}/text]")
        elif not text:
            found.append(f"[ERROR] must be more than 0 characters [json-pointer:{ptr}/text]")
        elif len(text) > min(limit, 3000):  # "Text object": "maximum length is 3000 characters"
            found.append(_too_long(min(limit, 3000), f"{ptr}/text"))
    if found and union:
        out.append(f"[ERROR] failed to match all allowed schemas [json-pointer:{ptr}]")
    out += found


# -- primitives ------------------------------------------------------------------------------------


def _string(
    obj: Mapping[str, Any], key: str, ptr: str, out: list[str], limit: int, *, required: bool = False,
    parent: str | None = None, min_len: int = 0,
) -> bool:
    """Check a string field's presence, type and length; True when it is present and fine."""
    value = obj.get(key)
    if value is None:
        if required:
            out.append(f"[ERROR] missing required field: {key} [json-pointer:{parent or ptr}]")
        return False
    if not isinstance(value, str):
        out.append(f"[ERROR] must be a string [json-pointer:{ptr}]")
        return False
    if len(value) < min_len:
        out.append(f"[ERROR] must be more than {min_len - 1} characters [json-pointer:{ptr}]")
        return False
    if len(value) > limit:
        out.append(_too_long(limit, ptr))
        return False
    return True


def _integer(obj: Mapping[str, Any], key: str, ptr: str, out: list[str], low: int, high: int) -> None:
    value = obj.get(key)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        out.append(f"[ERROR] must be an integer [json-pointer:{ptr}]")
    elif not low <= value <= high:
        out.append(f"[ERROR] must be between {low} and {high} [json-pointer:{ptr}]")


def _items(
    obj: Mapping[str, Any], key: str, ptr: str, out: list[str], cap: int, *, required: bool = False,
    parent: str | None = None,
) -> list[Any]:
    """An array field, capped; [] when absent or malformed (the problem is recorded)."""
    value = obj.get(key)
    if value is None:
        if required:
            out.append(f"[ERROR] missing required field: {key} [json-pointer:{parent or ptr}]")
        return []
    if not isinstance(value, list):
        out.append(f"[ERROR] must be an array [json-pointer:{ptr}]")
        return []
    if required and not value:
        out.append(f"[ERROR] must contain at least 1 items [json-pointer:{ptr}]")
    if len(value) > cap:
        out.append(_too_many(cap, ptr))
    return value


def _too_long(limit: int, ptr: str) -> str:
    return f"[ERROR] must be less than {limit + 1} characters [json-pointer:{ptr}]"


def _too_many(cap: int, ptr: str) -> str:
    return f"[ERROR] no more than {cap} items allowed [json-pointer:{ptr}]"


def _already_exists(field: str, value: str, ptr: str) -> str:
    # Slack's wording for a repeated action_id (see `_actions`); block_id repeats read the same way.
    return f'[ERROR] `{field}` "{value}" already exists [json-pointer:{ptr}]'


# -- slack_sdk's models, as a safety net ------------------------------------------------------------

_SDK_ERRORS = (SlackObjectFormationError, TypeError, KeyError, AttributeError, ValueError)


def _sdk_block_problem(block: dict[str, Any], ptr: str) -> list[str]:
    """slack_sdk's verdict on one block that passed our own rules, at the block's pointer."""
    sdk_logger = logging.getLogger("slack_sdk.models")
    previous, sdk_logger.disabled = sdk_logger.disabled, True  # "unknown element skipped" noise
    try:
        parsed = Block.parse(copy.deepcopy(block))
        if parsed is not None:
            parsed.to_dict()  # runs validate_json on the block and everything under it
    except _SDK_ERRORS as exc:
        return [f"[ERROR] {exc} [json-pointer:{ptr}]"]
    finally:
        sdk_logger.disabled = previous
    return []


def _sdk_view_problem(view: Mapping[str, Any]) -> list[str]:
    """slack_sdk's verdict on a view that passed our own rules, at /view."""
    sdk_logger = logging.getLogger("slack_sdk.models")
    previous, sdk_logger.disabled = sdk_logger.disabled, True
    try:
        View(**copy.deepcopy(dict(view))).to_dict()
    except _SDK_ERRORS as exc:
        return [f"[ERROR] {exc} [json-pointer:/view]"]
    finally:
        sdk_logger.disabled = previous
    return []

