"""Slack text that fits: escaping, visible shortening and splitting of mrkdwn, and the Block Kit pieces
the bot builds its messages from, each kept within Slack's documented limits by construction.

Slack refuses a whole message (`invalid_blocks`) when one limit is passed, so nothing the bot composes
may pass one, whatever a person typed. Lengths are measured on the final string as sent: after the bot
added its own words and after escaping (`&` is sent as `&amp;`, five characters), and in UTF-16 code
units, as JavaScript counts, which is never fewer than Python's `len` (an emoji outside the BMP is two),
so the measure is safe whichever way Slack counts.

Text is cut only between "atoms": never inside `<…>` markup (mentions, channel links, links, dates), an
`&…;` entity, an `:emoji:` code or a character with its combining marks, so a mention or link is either
shown whole or not at all.

Limits (Slack, Block Kit reference: blocks, block elements, composition objects; surfaces: messages,
modals): section text 3,000 and fields 10 of 2,000 each; context 10 elements; header 150; a text
object 3,000; button text 75, value 2,000; action_id, block_id and callback_id 255; action_id unique
within a block and block_id within a message or view; 50 blocks a message, 100 a modal; modal title,
submit and close 24; private_metadata 3,000. The top-level `text` is kept to 4,000: Slack truncates at
40,000 and may split a longer one into several messages (Slack: chat.postMessage, "Truncating content";
changelog 2018-04 "Truncating really long messages").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from html import unescape
from typing import Any

Block = dict[str, Any]

SECTION_TEXT = 3000
SECTION_FIELD = 2000
SECTION_FIELDS = 10
TEXT_OBJECT = 3000
CONTEXT_ELEMENTS = 10
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ACTION_ID = 255
BLOCK_ID = 255
ACTIONS_ELEMENTS = 25
MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100
MODAL_TITLE = 24
MODAL_BUTTON = 24
PRIVATE_METADATA = 3000
CALLBACK_ID = 255
OPTION_TEXT = 75
OPTION_VALUE = 150
PLACEHOLDER = 150
INPUT_LABEL = 2000
MESSAGE_TEXT = 4000
TOPIC = 250  # conversations.setTopic: "topic … maximum 250 characters"

CONTINUED = "_…continued:_ "
LINK_TOO_LONG = "_(a link too long to show)_"
FENCE = "```"

# One atom: markup, an entity, an emoji code, a code fence, or one character (combining marks, ZWJ
# sequences, variation selectors and skin tones are attached to it afterwards).
_ATOM = re.compile(r"<[^<>\n]*>|&(?:[A-Za-z]{2,8}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});|:[a-z0-9_+'-]{1,100}:|```|.", re.S)
_ZWJ = "\u200d"
_PLACEHOLDER = re.compile(r"<(@?[a-z][a-z0-9 _|.\-]*)>")


def escape(text: str) -> str:
    """Plain text (a form's plain_text_input, a config value, a database's output, a pager's name) made
    safe to place in mrkdwn: `&`, `<`, `>` become entities (Slack: "Formatting text for app surfaces",
    "Escaping text"). Slash-command text arrives escaped already and must not be escaped again."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def placeholders(text: str) -> str:
    """The bot's own usage text with its `<word>` placeholders (`<title>`, `<@user>`,
    `<sev1|sev2>`) escaped, so Slack shows them instead of reading them as markup. Slack's markup is
    left alone: a user or channel id is upper case, a special mention starts with `!`, a link has a
    scheme (`https:`), and text typed by people arrives with its `<` escaped."""
    return _PLACEHOLDER.sub(lambda m: f"&lt;{m.group(1)}&gt;", text)


def quote(text: str) -> str:
    """`text` as a block quote: every line starts with ">" (a quote covers one line in mrkdwn)."""
    return "\n".join(">" + line for line in text.split("\n"))


def length(text: str) -> int:
    """Characters as Slack's limits count them, in UTF-16 code units (never fewer than `len`)."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int, *, where: str = "") -> str:
    """`text` if it fits in `limit`, else cut at a safe place (a line or word break near the end when
    there is one) and marked visibly: "… _(1,234 more characters)_", or "… _(1,234 more characters:
    {where})_" to say where the whole text is. The count is of characters a person would see."""
    if length(text) <= limit:
        return text
    widest = _more(len(text), where)
    if length(widest) + 1 > limit:
        return clip(text, limit)
    atoms = _atoms(text)
    kept, rest = _cut(atoms, limit - length(widest) - len(FENCE), prefer_break=True)
    closing = FENCE if kept.count(FENCE) % 2 else ""  # a code block cut open is closed before the marker
    return kept.rstrip() + closing + _more(_visible(rest), where)


def clip(text: str, limit: int) -> str:
    """`text` if it fits in `limit`, else cut at a safe place and ended with "…": for places too small
    for a count (a topic, a button, a modal title)."""
    if length(text) <= limit:
        return text
    kept, _ = _cut(_atoms(text), max(limit - 1, 0), prefer_break=False)
    return kept.rstrip() + "…"


def split(text: str, limit: int, *, continued: str = CONTINUED) -> list[str]:
    """Pieces of at most `limit` that together show all of `text`, in order: cut at a line or word
    break where one is in the second half of a piece, else between atoms. Each piece after the first
    starts with `continued`; a ``` code block cut in two is closed and reopened. Markup too long for
    any piece (a link of thousands of characters) is replaced by its label, or said to be too long."""
    if length(text) <= limit:
        return [text]
    room = limit - len(FENCE)  # a piece may need to close a code block it cuts
    budget = room - length(continued) - len(FENCE)  # what one atom may take, after a reopened block
    if budget < 20:
        raise ValueError(f"a limit of {limit} leaves no room to split into")
    atoms = [_shown(atom, budget) for atom in _atoms(text)]
    pieces: list[str] = []
    prefix, start, in_code = "", 0, False
    while start < len(atoms):
        end, size = start, length(prefix)
        while end < len(atoms) and size + length(atoms[end]) <= room:
            size += length(atoms[end])
            end += 1
        last = end >= len(atoms)
        if not last:
            end = _break_before(atoms, start, end)
        in_code = in_code != (atoms[start:end].count(FENCE) % 2 == 1)
        body = "".join(atoms[start:end])
        pieces.append(prefix + body if last else prefix + body.rstrip() + (FENCE if in_code else ""))
        start = end
        while start < len(atoms) and atoms[start].isspace():
            start += 1
        prefix = continued + (FENCE if in_code else "")
    return pieces


def pack(lines: Iterable[str], limit: int) -> list[str]:
    """Lines (or paragraphs) joined with newlines into as few texts of at most `limit` as keeps each
    whole; one longer than `limit` on its own is shortened visibly."""
    texts: list[str] = []
    for line in lines:
        line = fit(line, limit)
        if texts and length(texts[-1]) + 1 + length(line) <= limit:
            texts[-1] += "\n" + line
        else:
            texts.append(line)
    return texts


# -- Block Kit pieces -----------------------------------------------------------------------------


def text_object(text: str, limit: int = TEXT_OBJECT) -> dict[str, str]:
    """A mrkdwn text object, shortened visibly to `limit`."""
    return {"type": "mrkdwn", "text": fit(text, limit)}


def plain(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object cut to `limit` with "…" (labels, titles, button text)."""
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def section(text: str, *, where: str = "", block_id: str | None = None) -> Block:
    """A section of mrkdwn; text over 3,000 is shortened visibly (`where` says where it all is)."""
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": fit(text, SECTION_TEXT, where=where)}}
    return _with_block_id(block, block_id)


def sections(text: str, *, limit: int = SECTION_TEXT, continued: str = CONTINUED) -> list[Block]:
    """As many sections as it takes to show all of `text` (see `split`)."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": piece}} for piece in split(text, limit, continued=continued)]


def fields(texts: Sequence[str], *, block_id: str | None = None) -> Block:
    """A section of up to 10 fields, each shortened visibly to 2,000."""
    if not 0 < len(texts) <= SECTION_FIELDS:
        raise ValueError(f"a section holds 1 to {SECTION_FIELDS} fields, not {len(texts)}")
    return _with_block_id({"type": "section", "fields": [text_object(t, SECTION_FIELD) for t in texts]}, block_id)


def context(*texts: str, block_id: str | None = None) -> Block:
    """A context block of up to 10 mrkdwn elements, each shortened visibly to 3,000."""
    if not 0 < len(texts) <= CONTEXT_ELEMENTS:
        raise ValueError(f"a context block holds 1 to {CONTEXT_ELEMENTS} elements, not {len(texts)}")
    return _with_block_id({"type": "context", "elements": [text_object(t) for t in texts]}, block_id)


def button(label: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    """A button: its label cut to 75. The action_id (≤255) and value (≤2,000) are the bot's own ids,
    so one too long is a bug: ValueError."""
    _check_id("action_id", action_id, ACTION_ID)
    if length(value) > BUTTON_VALUE:
        raise ValueError(f"a button's value is at most {BUTTON_VALUE} characters: {value[:40]}…")
    element: dict[str, Any] = {"type": "button", "text": plain(label, BUTTON_TEXT), "action_id": action_id, "value": value}
    if style:
        element["style"] = style
    return element


def actions(elements: Sequence[dict[str, Any]], *, block_id: str | None = None) -> Block:
    """An actions block of up to 25 elements whose action_ids are unique within it (Slack: button,
    "action_id … should be unique among all other action_ids in the containing block")."""
    if not 0 < len(elements) <= ACTIONS_ELEMENTS:
        raise ValueError(f"an actions block holds 1 to {ACTIONS_ELEMENTS} elements, not {len(elements)}")
    ids = [e["action_id"] for e in elements]
    if len(set(ids)) != len(ids):
        raise ValueError(f"action_ids must be unique within a block: {ids}")
    return _with_block_id({"type": "actions", "elements": list(elements)}, block_id)


def message(text: str, blocks: Iterable[Block], *, limit: int = MESSAGE_BLOCKS) -> tuple[str, list[Block]]:
    """A message's top-level `text` (the notification and fallback, shortened visibly to 4,000) and its
    blocks, checked: at most `limit` blocks, block_ids unique. Builders keep to the count themselves
    (saying what they left out), so a breach here is a bug: ValueError."""
    built = list(blocks)
    if len(built) > limit:
        raise ValueError(f"{len(built)} blocks; a message holds {limit}")
    ids = [b["block_id"] for b in built if "block_id" in b]
    if len(set(ids)) != len(ids):
        raise ValueError(f"block_ids must be unique within a message: {ids}")
    return fallback(text), built


def fallback(text: str) -> str:
    """A top-level `text` (or a text-only message) shortened visibly to 4,000."""
    return fit(text, MESSAGE_TEXT)


def at_most(blocks: list[Block], limit: int, left_out: str) -> list[Block]:
    """`blocks` if there are at most `limit`, else the first `limit - 1` and a context saying how many
    were left out: `left_out` is formatted with `{count}` (e.g. "…and {count} more incidents")."""
    if len(blocks) <= limit:
        return blocks
    kept = blocks[: limit - 1]
    return [*kept, context(left_out.format(count=f"{len(blocks) - len(kept):,}"))]


# -- atoms ----------------------------------------------------------------------------------------


def _atoms(text: str) -> list[str]:
    atoms: list[str] = []
    for match in _ATOM.finditer(text):
        atom = match.group()
        if atoms and len(atom) == 1 and _joins(atoms[-1], atom):
            atoms[-1] += atom
        else:
            atoms.append(atom)
    return atoms


def _joins(before: str, char: str) -> bool:
    """Whether `char` belongs to the character before it (so no cut may fall between them)."""
    if before.endswith(_ZWJ) or char == _ZWJ:
        return True
    code = ord(char)
    if 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:
        return True
    if 0x1F1E6 <= code <= 0x1F1FF and len(before) == 1 and 0x1F1E6 <= ord(before) <= 0x1F1FF:
        return True  # the second of a flag's two regional indicators
    return unicodedata.category(char) in ("Mn", "Me", "Mc")


def _cut(atoms: list[str], budget: int, *, prefer_break: bool) -> tuple[str, str]:
    """The longest run of whole atoms within `budget` (ending at a break when one is in its last
    fifth and `prefer_break`), and the rest."""
    end, size = 0, 0
    while end < len(atoms) and size + length(atoms[end]) <= budget:
        size += length(atoms[end])
        end += 1
    if prefer_break and end < len(atoms):
        for i in range(end - 1, max(end - max(budget // 5, 1), 0) - 1, -1):
            if atoms[i] in (" ", "\n"):
                end = i
                break
    return "".join(atoms[:end]), "".join(atoms[end:])


def _break_before(atoms: list[str], start: int, end: int) -> int:
    """Where to end a piece that would end at `end`: after the last line break in its second half,
    else the last space there, else at `end`."""
    half = start + (end - start) // 2
    for wanted in ("\n", " "):
        for i in range(end - 1, half, -1):
            if atoms[i] == wanted:
                return i + 1 if wanted == "\n" else i
    return end


def _shown(atom: str, budget: int) -> str:
    """An atom as it can be shown in a piece of `budget`: markup too long for any piece becomes its
    label (or a note), never a cut link."""
    if length(atom) <= budget:
        return atom
    label = atom[1:-1].partition("|")[2] if atom.startswith("<") else ""
    note = LINK_TOO_LONG
    return f"{label} {note}" if label and length(label) + length(note) + 1 <= budget else note


def _visible(text: str) -> int:
    return len(unescape(text))


def _more(count: int, where: str) -> str:
    return f"… _({count:,} more characters{': ' + where if where else ''})_"


def _check_id(name: str, value: str, limit: int) -> None:
    if not value or length(value) > limit:
        raise ValueError(f"{name} must be 1 to {limit} characters: {value[:40]!r}")


def _with_block_id(block: Block, block_id: str | None) -> Block:
    if block_id is not None:
        _check_id("block_id", block_id, BLOCK_ID)
        block["block_id"] = block_id
    return block
