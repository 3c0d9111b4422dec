"""Slack's text formatting (mrkdwn) parsed into lines and spans, for readers outside Slack.

Slack: "Formatting text for app surfaces", "Basic formatting"
(https://api.slack.com/reference/surfaces/formatting#basics):

    *bold*   _italic_   ~strike~   `code`
    ```a block of code, on as many lines as it takes```
    > a quote (a line that starts with `>`, `&gt;` in the stored text)
    and no list syntax: people type bullets ("• a point"), as Slack's clients write lists in `text`.

What Slack formats follows its clients: a marker opens only where a word does not go on before it (start,
space, punctuation), and closes only where no word follows; what it holds starts and ends with no space
and stays on one line. A code block holds its text as typed: nothing in it is formatted. A marker with no
partner, or inside a word (`snake_case`, `2*3*4`), is text.

The parser works on a *skeleton*: the message's text with its entities decoded and each piece of
angle-bracket markup (a mention, a link: bot/slack_markup.py) replaced by `ATOM`, so formatting can hold
mentions (`*<@U1>*`) and never looks inside a link's URL. Renderers put the pieces back in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ATOM = "\x00"  # stands for one piece of angle-bracket markup; never in text people type (NUL)


@dataclass(frozen=True, slots=True)
class Styled:
    """`*bold*`, `_italic_` or `~strike~`: its content parsed again, so styles nest."""

    style: str  # "bold", "italic", "strike"
    spans: list[Span]


@dataclass(frozen=True, slots=True)
class Code:
    """`code`: literal, ATOMs included."""

    text: str


Span = str | Styled | Code  # str: literal text (with ATOMs)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a message outside code blocks."""

    kind: str  # "text", "quote" (`> …`), "bullet" (`• …`)
    spans: list[Span]
    level: int = 0  # for a bullet: 0 for •, 1 for ◦, 2 for ▪ (the characters Slack writes nested lists with)


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """```…```: its lines as typed (ATOMs included), without the newline that follows the opening fence
    or precedes the closing one."""

    text: str


Block = Line | CodeBlock

_CODE_BLOCK = re.compile(r"```(.+?)```", re.DOTALL)
_QUOTE = re.compile(r"> ?")
_BULLET = re.compile(r"[ \t]*([•◦▪])[ \t]+")
_BULLET_LEVELS = {"•": 0, "◦": 1, "▪": 2}
# `code` first; then each style: opened where no word (nor the same marker) goes on before it, the content
# starting and ending with no space, closed where no word (nor the marker) follows. \w includes `_`.
# Each branch starts with its marker and looks behind it after (`\*(?<![\w*]\*)`, not `(?<![\w*])\*`):
# then the search skips to the next marker, where a branch led by a look-behind made it try all four at
# every character (10 µs against 1 µs for a 170-character line with a snake_case word).
_INLINE = re.compile(
    r"`(?P<code>[^`\n]+)`"
    r"|\*(?<![\w*]\*)(?P<bold>[^\s*](?:[^\n]*?[^\s*])?)\*(?![\w*])"
    r"|_(?<!\w_)(?P<italic>[^\s_](?:[^\n]*?[^\s_])?)_(?![\w])"
    r"|~(?<![\w~]~)(?P<strike>[^\s~](?:[^\n]*?[^\s~])?)~(?![\w~])"
)
_INLINE_MARKER = re.compile(r"[`*_~]")  # a line without these has no span for _INLINE to find


def parse_blocks(skeleton: str) -> list[Block]:
    """The lines and code blocks of a skeleton, in order. Never fails: what is not formatting is text."""
    blocks: list[Block] = []
    position = 0
    for match in _CODE_BLOCK.finditer(skeleton):
        body = match.group(1)
        body = body.removeprefix("\n").removesuffix("\n")
        if not body.strip():
            continue  # ``` ``` with nothing in it: text
        blocks.extend(_lines(skeleton[position:match.start()], first=position == 0, last=False))
        blocks.append(CodeBlock(body))
        position = match.end()
    blocks.extend(_lines(skeleton[position:], first=position == 0, last=True))
    return blocks


def _lines(text: str, *, first: bool, last: bool) -> list[Line]:
    """The lines around code blocks; the line break that separates text from a block is the block's own."""
    if not first:
        text = text.lstrip(" ")
        text = text.removeprefix("\n")
    if not last:
        text = text.rstrip(" ")
        text = text.removesuffix("\n")
    if not text and not (first and last):
        return []
    lines = []
    for raw in text.split("\n"):
        if quote := _QUOTE.match(raw):
            lines.append(Line("quote", parse_spans(raw[quote.end():])))
        elif bullet := _BULLET.match(raw):
            lines.append(Line("bullet", parse_spans(raw[bullet.end():]), _BULLET_LEVELS[bullet.group(1)]))
        else:
            lines.append(Line("text", parse_spans(raw)))
    return lines


def parse_spans(text: str) -> list[Span]:
    """One line's literal text, code and styled spans, in order."""
    if not _INLINE_MARKER.search(text):  # most lines: no marker to try the four patterns at each character
        return [text] if text else []
    spans: list[Span] = []
    position = 0
    for match in _INLINE.finditer(text):
        if match.start() > position:
            spans.append(text[position:match.start()])
        kind = match.lastgroup
        if kind == "code" and not match.group("code").strip():
            spans.append(match.group(0))  # ` ` holds nothing to show: text
        elif kind == "code":
            spans.append(Code(match.group("code")))
        else:
            spans.append(Styled(str(kind), parse_spans(match.group(str(kind)))))
        position = match.end()
    if position < len(text):
        spans.append(text[position:])
    return spans
