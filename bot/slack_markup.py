"""Slack's message markup, read by people outside Slack: parsed into tokens, rendered as Markdown (the
postmortem) or plain text (pages sent to PagerDuty/Opsgenie, logs).

The forms are the ones Slack documents for message text (Slack: "Formatting text for app surfaces",
https://api.slack.com/reference/surfaces/formatting, "Escaping text", "Linking to channels and users",
"Mentioning groups", "Special mentions", "Formatting dates", "Linking to URLs"):

    <@U123>  <@U123|name>                  a person (the label is legacy: Slack may stop sending it)
    <#C123>  <#C123|name>  <#C123|>        a channel (private ones come with an empty label)
    <!subteam^S123>  <!subteam^S123|@dba>  a user group
    <!here>  <!channel>  <!everyone>       special mentions, with an optional |label
    <!date^1392734382^{date_num} {time_secs}^https://optional.link|fallback text>
    <https://x>  <https://x|label>  <mailto:a@b.c|label>
    &amp;  &lt;  &gt;                      the only three entities Slack escapes

Anything else between `<` and `>` (say `<b>` typed in a modal, whose text Slack does not escape) is
left as the text it is. Entities are decoded once, after the tokens are found, so text people typed
as `&lt;b&gt;` reads `<b>` and is never taken for markup.

Names: a person is shown by the name the resolver knows (their current display name), the label
only when it knows none; a channel or user group by its label, the resolver only when the label is
missing. What nobody can name reads as what it is: "a channel (C0GENERAL)", never a bare id.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.slack_formatting import (
    ATOM,
    Block,
    Code,
    CodeBlock,
    Line,
    Span,
    Styled,
    parse_blocks,
)

# --- Tokens.


@dataclass(frozen=True, slots=True)
class Text:
    """Literal text, entities decoded."""

    text: str


@dataclass(frozen=True, slots=True)
class UserMention:
    user_id: str
    label: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelLink:
    channel_id: str
    label: str | None = None


@dataclass(frozen=True, slots=True)
class UsergroupMention:
    usergroup_id: str
    label: str | None = None  # "@dba" as Slack sends it, or "dba"


@dataclass(frozen=True, slots=True)
class SpecialMention:
    name: str  # "here", "channel", "everyone" (or the legacy "group")
    label: str | None = None


@dataclass(frozen=True, slots=True)
class DateToken:
    timestamp: int | None  # Unix seconds; None when Slack's text did not hold a usable number
    format: str  # Slack's token string, e.g. "{date_num} {time_secs}"
    link: str | None
    fallback: str | None
    source: str  # the token as written, decoded, for when nothing else can be shown


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    label: str | None = None


Token = Text | UserMention | ChannelLink | UsergroupMention | SpecialMention | DateToken | Link

_ANGLED = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_ID = r"[A-Z0-9]+"
_USER = re.compile(rf"@({_ID})(?:\|(.*))?", re.S)
_CHANNEL = re.compile(rf"#({_ID})(?:\|(.*))?", re.S)
_USERGROUP = re.compile(rf"!subteam\^({_ID})(?:\|(.*))?", re.S)
_DATE = re.compile(r"!date\^([^^|]*)\^([^^|]*)(?:\^([^|]*))?(?:\|(.*))?", re.S)
_SPECIAL = re.compile(r"!([a-z]+)(?:\|(.*))?", re.S)
# The schemes Slack makes links of; `<javascript:…|x>` typed in a modal (not escaped by Slack) stays text.
_URL = re.compile(r"((?:https?|ftp|mailto|tel|slack):[^|\s]+)(?:\|(.*))?", re.S | re.I)


def decode(text: str) -> str:
    """Slack's three entities decoded in one pass (so `&amp;lt;` reads `&lt;`, as typed)."""
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text) if "&" in text else text


def parse(text: str) -> list[Token]:
    """The tokens of a message's text, in order. Never fails: what is not markup is `Text`."""
    tokens: list[Token] = []
    literal: list[str] = []
    position = 0
    for match in _ANGLED.finditer(text):
        token = _token(match.group(1))
        if token is None:
            continue  # not markup: stays in the literal run
        literal.append(text[position:match.start()])
        if run := "".join(literal):
            tokens.append(Text(decode(run)))
        literal = []
        tokens.append(token)
        position = match.end()
    literal.append(text[position:])
    if run := "".join(literal):
        tokens.append(Text(decode(run)))
    return tokens


def _token(body: str) -> Token | None:
    if match := _USER.fullmatch(body):
        return UserMention(match.group(1), _label(match.group(2)))
    if match := _CHANNEL.fullmatch(body):
        return ChannelLink(match.group(1), _label(match.group(2)))
    if match := _USERGROUP.fullmatch(body):
        return UsergroupMention(match.group(1), _label(match.group(2)))
    if match := _DATE.fullmatch(body):
        stamp, form, link, fallback = match.groups()
        number = int(stamp) if re.fullmatch(r"-?\d{1,12}", stamp) else None
        return DateToken(number, decode(form), decode(link) if link else None, _label(fallback), decode(f"<{body}>"))
    if match := _SPECIAL.fullmatch(body):
        return SpecialMention(match.group(1), _label(match.group(2)))
    if match := _URL.fullmatch(body):
        return Link(decode(match.group(1)), _label(match.group(2)))
    return None


def _label(raw: str | None) -> str | None:
    """An empty label (`<#C123|>`) is no label."""
    return decode(raw) if raw and raw.strip() else None


# --- Names.


@dataclass
class References:
    """Ids a text names that a reader needs names for: every person, and the channels and user groups
    that came without a label."""

    users: set[str] = field(default_factory=set)
    channels: set[str] = field(default_factory=set)
    usergroups: set[str] = field(default_factory=set)

    def add(self, text: str | None) -> References:
        """Adds what `text` names; returns self, so calls chain."""
        if text and "<" in text:
            for token in parse(text):
                match token:
                    case UserMention(user_id=user_id):
                        self.users.add(user_id)
                    case ChannelLink(channel_id=channel_id, label=None):
                        self.channels.add(channel_id)
                    case UsergroupMention(usergroup_id=usergroup_id, label=None):
                        self.usergroups.add(usergroup_id)
        return self


def references(*texts: str | None) -> References:
    found = References()
    for text in texts:
        found.add(text)
    return found


@dataclass(frozen=True)
class Names:
    """What is known: user id -> display name, channel id -> name (no "#"), user group id -> handle (no "@")."""

    users: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)
    usergroups: Mapping[str, str] = field(default_factory=dict)


class Lookup(Protocol):
    """Asks Slack for names the store does not know (implemented at the edge, in handlers/). Each method
    gets the ids still unknown and answers with those it could name; an id it cannot name is left out,
    never an error (a missing scope, a channel the bot cannot see)."""

    def users(self, user_ids: Collection[str]) -> dict[str, str]: ...

    def channels(self, channel_ids: Collection[str]) -> dict[str, str]: ...

    def usergroups(self, usergroup_ids: Collection[str]) -> dict[str, str]: ...


# --- Rendering.

# An underscore is matched first and looked behind after (as bot/slack_formatting.py's _INLINE): a branch
# led by a look-behind is tried at every character.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*~\[\]<>|]|_(?<![A-Za-z0-9]_)|_(?![A-Za-z0-9])")
# In literal text: what Markdown would format (`*`, `_`, `~`, a backtick, a backslash escaping the next
# character), and what it would take for HTML: a tag's `<` (or a `<` just before a name, which ends the
# run), an entity's `&`. `_literal` keeps those that cannot format where they stand.
_LITERAL_SPECIAL = re.compile(r"[\\`*_~]|<(?=[A-Za-z/!?]|$)|&(?=#?[A-Za-z0-9]+;)")
_LITERAL_ASCII = "\\`*_~<&"  # every character _LITERAL_SPECIAL can match
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# At the start of a line: what Markdown would make a heading of, or take for a heading's underline.
_LINE_START_SPECIAL = re.compile(r"^( {0,3})(#{1,6}(?=[ \t]|$)|=+[ \t]*$|-+[ \t]*$)")
# A message without these is shown as it is (most messages: a 10,000-entry draft renders every one): a
# character that formats or escapes (_may_format: these, and the bullets "•◦▪"), or a start Markdown
# would read as a heading or a rule. A pattern for the start alone, not one alternation with "^",
# which is tried at every position of the text: three times slower, once per timeline line.
_FORMATTING_ASCII = "<&*~`\n>\\"
_FORMATTING_START = re.compile(r"[ ]{0,3}[#=-]")
# An underscore between two letters or digits (snake_case, max_connections) neither formats in Slack nor
# needs escaping in Markdown (_literal), so only one that is not counts; looked for only when the text
# has an underscore (the pattern starts with it, so the scan skips to each one).
_LONE_UNDERSCORE = re.compile(r"_(?<![^\W_]_)|_(?![^\W_])")
_STYLES = {"bold": "**", "italic": "*", "strike": "~~"}
_BULLETS = "•◦▪"
_URL_UNSAFE = re.compile(r"[\s()<>]")
_SPECIALS = {"group": "channel"}  # the legacy name of @channel in private groups
_DATE_FORMS = {
    "date_num": "%Y-%m-%d",
    "date_slash": "%d/%m/%Y",
    "date": "{month} {day}, %Y",
    "date_long_full": "{month} {day}, %Y",
    "date_pretty": "{month} {day}, %Y",
    "date_short": "%b {day}, %Y",
    "date_short_pretty": "%b {day}, %Y",
    "date_long": "%A, {month} {day}, %Y",
    "date_long_pretty": "%A, {month} {day}, %Y",
    "day_divider_pretty": "%A, {month} {day}, %Y",
    "time": "%H:%M",
    "time_secs": "%H:%M:%S",
    "ago": "{month} {day}, %Y %H:%M",
}
_DATE_TOKEN = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Renderer:
    """Renders Slack markup for one reader.

    `markdown`: True for Markdown (links as `[label](url)`, names escaped so `*`, `_`, `[`, `<` in them
    stay text, a `<b>` or `&copy;` people typed kept as text with a backslash), False for plain text.

    `zone`: a date token (`<!date^…>`) is shown from its timestamp, in this zone, with its UTC offset
    ("November 12, 2023 10:10 UTC+01:00"), when a zone is given: a postmortem shows every time in its
    one configured zone, and Slack's fallback text is in whatever zone its author chose. Relative forms
    ({date_pretty}, {ago}) become absolute: a document is read long after "today". Without a zone
    (pages, logs) the fallback text is shown, as Slack's own clients do when they cannot format.
    """

    names: Names = field(default_factory=Names)
    markdown: bool = True
    zone: ZoneInfo | None = None
    # A person as "@name", as Slack shows a mention: for plain text people read back in Slack (the
    # declare form prefilled from a message), where a bare name would not read as a mention.
    at_names: bool = False

    def text(self, mrkdwn: str | None) -> str:
        """A message's text for this reader; "" for None.

        Slack's formatting (bot/slack_formatting.py) is translated: in Markdown `*bold*` reads `**bold**`,
        `_italic_` `*italic*`, `~strike~` `~~strike~~`, `code` stays a code span, a ```block``` becomes a
        fenced code block on lines of its own, `> quote` a quote, a `• bullet` line a list item, and
        each line break a line break (a hard break, two spaces before it). A text that starts with a
        quote, list or code block starts with a line break, and one that ends with a code block ends
        with one, so the block stands on its own lines wherever the text is put. In plain text the
        markers go and the words stay (a code block on lines of its own, quotes as `> `, bullets as typed).
        Code is shown as typed: a mention in it reads as its name, unformatted."""
        if not mrkdwn:
            return ""
        if not (_may_format(mrkdwn) or _FORMATTING_START.match(mrkdwn)
                or ("_" in mrkdwn and _LONE_UNDERSCORE.search(mrkdwn))):
            return mrkdwn
        return self._converted(mrkdwn)

    def _converted(self, mrkdwn: str) -> str:
        """text() for a text that may hold formatting: parsed and laid out again."""
        tokens = parse(mrkdwn)
        skeleton = "".join(t.text.replace(ATOM, "\ufffd") if isinstance(t, Text) else ATOM for t in tokens)
        atoms = iter([t for t in tokens if not isinstance(t, Text)])
        blocks = parse_blocks(skeleton)
        return self._markdown_blocks(blocks, atoms) if self.markdown else self._plain_blocks(blocks, atoms)

    def token(self, token: Token) -> str:
        match token:
            case Text(text=text):
                return self._literal(text)
            case UserMention(user_id=user_id, label=label):
                return self.user(user_id, label)
            case ChannelLink(channel_id=channel_id, label=label):
                return self.channel(channel_id, label)
            case UsergroupMention(usergroup_id=usergroup_id, label=label):
                return self.usergroup(usergroup_id, label)
            case SpecialMention(name=name, label=label):
                return self._name("@" + (label or _SPECIALS.get(name, name)).lstrip("@"))
            case DateToken():
                return self.date(token)
            case Link(url=url, label=label):
                return self.link(url, label)
        raise TypeError(token)

    def user(self, user_id: str, label: str | None = None) -> str:
        """The person's name ("@name" with `at_names`); the mention's label when no name is known; else "a person (U…)"."""
        name = self.names.users.get(user_id) or label
        if not name:
            return f"a person ({user_id})"
        return self._name(("@" if self.at_names else "") + name.lstrip("@"))

    def channel(self, channel_id: str, label: str | None = None) -> str:
        """"#name"; "a direct message" for a D… id (Slack labels those "Direct Message", no name)."""
        if channel_id.startswith("D"):
            return "a direct message"
        name = label or self.names.channels.get(channel_id)
        return self._name("#" + name.lstrip("#")) if name else f"a channel ({channel_id})"

    def usergroup(self, usergroup_id: str, label: str | None = None) -> str:
        handle = label or self.names.usergroups.get(usergroup_id)
        return self._name("@" + handle.lstrip("@")) if handle else f"a user group ({usergroup_id})"

    def link(self, url: str, label: str | None = None) -> str:
        """Markdown: `<https://x>`, or `[label](url)`; plain: "label (url)", or the address alone when
        the label only repeats it (Slack labels the links it makes from typed text that way)."""
        address = _without_scheme(url) if url.startswith(("mailto:", "tel:")) else url
        shown = label if label and label not in (url, _without_scheme(url)) else None
        if not self.markdown:
            return f"{shown} ({address})" if shown else (label or address)
        if label is None and url.startswith(("http://", "https://")) and not _URL_UNSAFE.search(url):
            return f"<{url}>"  # a CommonMark autolink: reads the same raw and rendered
        return f"[{self._name(label or address)}]({_safe_url(url)})"

    def date(self, token: DateToken) -> str:
        formatted = None
        if token.timestamp is not None and (self.zone is not None or token.fallback is None):
            formatted = _format_date(token.timestamp, token.format, self.zone or ZoneInfo("UTC"))
        shown = formatted or token.fallback
        if shown is None:  # no usable timestamp and no fallback: the token as it was written
            return self.token(Text(token.source))
        if not self.markdown:
            return shown
        return f"[{self._name(shown)}]({_safe_url(token.link)})" if token.link else self._name(shown)

    def _name(self, name: str) -> str:
        """A name or label as this reader shows it: in Markdown, characters that would format it are escaped."""
        return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), name) if self.markdown else name

    def _literal(self, text: str) -> str:
        """Text people typed, as text: in Markdown, a character that would format is escaped, unless it
        cannot where it stands (`snake_case`, `a * b`), so the text reads as typed, raw or rendered."""
        if not self.markdown or not _may_need_escaping(text):
            return text

        def escape(match: re.Match[str]) -> str:
            char, at = match.group(0), match.start()
            before, after = text[at - 1:at], text[at + 1:at + 2]
            if char == "\\" and after and after not in _ASCII_PUNCTUATION:
                return char
            if char == "_" and ((before.isalnum() and after.isalnum()) or (before.isspace() and after.isspace())):
                return char
            if char in "*~" and before.isspace() and after.isspace():
                return char
            return "\\" + char

        return _LITERAL_SPECIAL.sub(escape, text)

    # Formatting: the blocks and spans of bot/slack_formatting.py, ATOMs replaced by the tokens in order.

    def _spans(self, spans: list[Span], atoms: Iterator[Token]) -> str:
        shown = []
        for span in spans:
            if isinstance(span, str):
                pieces = span.split(ATOM)
                shown.append(self._literal(pieces[0]))
                for piece in pieces[1:]:
                    shown.append(self.token(next(atoms)))
                    shown.append(self._literal(piece))
            elif isinstance(span, Code):
                code = self._code(span.text, atoms)
                shown.append(_code_span(code) if self.markdown else code)
            elif isinstance(span, Styled):
                inner = self._spans(span.spans, atoms)
                shown.append(f"{_STYLES[span.style]}{inner}{_STYLES[span.style]}" if self.markdown else inner)
        return "".join(shown)

    def _code(self, text: str, atoms: Iterator[Token]) -> str:
        """Code as typed: entities decoded, mentions and links as their plain words (Markdown formats
        nothing in code)."""
        if ATOM not in text:
            return text
        plain = replace(self, markdown=False) if self.markdown else self
        pieces = text.split(ATOM)
        return pieces[0] + "".join(plain.token(next(atoms)) + piece for piece in pieces[1:])

    def _markdown_blocks(self, blocks: list[Block], atoms: Iterator[Token]) -> str:
        shown: list[str] = []
        before: str | None = None  # the previous block's kind ("text", "quote", "bullet", "code"); "" for an empty line
        for block in blocks:
            if isinstance(block, CodeBlock):
                code = self._code(block.text, atoms)
                fence = "`" * max(3, _longest_backtick_run(code) + 1)
                kind, line = "code", f"{fence}\n{code}\n{fence}"
            else:
                kind, line = self._markdown_line(block, atoms)
            if before is None:
                shown.append("\n" if kind in ("quote", "bullet", "code") else "")
            elif kind == before and kind in ("text", "quote"):
                shown.append("  \n")  # Slack's line break; Markdown would join the lines
            elif before in ("quote", "bullet") and kind == "text":
                shown.append("\n\n")  # else the line would continue the quote or the list item
            else:
                shown.append("\n")
            shown.append(line)
            before = kind
        if before == "code":
            shown.append("\n")
        return "".join(shown)

    def _markdown_line(self, line: Line, atoms: Iterator[Token]) -> tuple[str, str]:
        content = self._spans(line.spans, atoms)
        if line.kind == "quote":
            return "quote", f"> {content}" if content else ">"
        if line.kind == "bullet":
            return "bullet", f"{'  ' * line.level}- {content}"
        if not content:
            return "", ""
        if content.lstrip(" ")[:1] not in ("#", "=", "-"):  # what _LINE_START_SPECIAL starts with, past its spaces
            return "text", content
        return "text", _LINE_START_SPECIAL.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", content)

    def _plain_blocks(self, blocks: list[Block], atoms: Iterator[Token]) -> str:
        lines = []
        for block in blocks:
            if isinstance(block, CodeBlock):
                lines.append(self._code(block.text, atoms))
                continue
            content = self._spans(block.spans, atoms)
            if block.kind == "quote":
                lines.append(f"> {content}" if content else ">")
            elif block.kind == "bullet":
                lines.append(f"{'  ' * block.level}{_BULLETS[block.level]} {content}")
            else:
                lines.append(content)
        return "\n".join(lines)


def _holds_any(text: str, chars: str) -> bool:
    """Whether the text holds any of these characters, each looked for with `in` (a memchr): a third of
    the time of a regex's character class over the text, for the text of every timeline line a
    postmortem shows."""
    for char in chars:  # noqa: SIM110 - any() over a generator costs three times this loop
        if char in text:
            return True
    return False


def _may_format(text: str) -> bool:
    """Whether the text holds a character that may format it: one of _FORMATTING_ASCII, or a bullet."""
    return _holds_any(text, _FORMATTING_ASCII) or (not text.isascii() and _holds_any(text, _BULLETS))


def _may_need_escaping(text: str) -> bool:
    """Whether _LITERAL_SPECIAL may match in the text (most lines of the texts that are converted have
    none of its characters): not the pattern's alternation tried at each character."""
    return _holds_any(text, _LITERAL_ASCII)


def to_markdown(text: str | None, names: Names | None = None, zone: ZoneInfo | None = None) -> str:
    return Renderer(names or Names(), True, zone).text(text)


def to_plain(text: str | None, names: Names | None = None, zone: ZoneInfo | None = None) -> str:
    return Renderer(names or Names(), False, zone).text(text)


def _code_span(code: str) -> str:
    """A Markdown code span holding `code` as it is, whatever backticks it holds (CommonMark: "Code spans")."""
    fence = "`" * (_longest_backtick_run(code) + 1)
    padded = f" {code} " if code.startswith("`") or code.endswith("`") else code
    return f"{fence}{padded}{fence}"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def _safe_url(url: str) -> str:
    """A link destination Markdown cannot cut short: spaces, parentheses and angle brackets percent-encoded."""
    return _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group(0).encode()), url)


def _without_scheme(url: str) -> str:
    return re.sub(r"^(mailto:|tel:|https?://)", "", url)


def _format_date(timestamp: int, form: str, zone: ZoneInfo) -> str | None:
    """Slack's token string with each token filled in `zone`; None when it holds a token Slack's
    docs do not list (then the fallback is what a reader should see)."""
    try:
        moment = datetime.fromtimestamp(timestamp, UTC).astimezone(zone)
    except (OverflowError, OSError, ValueError):
        return None
    names = [m.group(1) for m in _DATE_TOKEN.finditer(form)]
    if not names or any(name not in _DATE_FORMS for name in names):
        return None

    def fill(match: re.Match[str]) -> str:
        return moment.strftime(_DATE_FORMS[match.group(1)].format(month=f"{moment:%B}", day=moment.day))

    shown = _DATE_TOKEN.sub(fill, form)
    if any(name.startswith("time") or name == "ago" for name in names):
        offset = moment.strftime("%z")
        shown += " UTC" if offset in ("+0000", "") else f" UTC{offset[:3]}:{offset[3:5]}"
    return shown
