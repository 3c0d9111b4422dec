"""`/incident` sub-commands, parsed once into typed values.

Parsing is pure: text in, a command out, or a UsageError that says what was wrong and shows the right
form. Nothing is executed here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.diagnostics.drivers import CHECKS
from bot.incidents.values import (
    DEFAULT_SEVERITY,
    MAX_TEXT_LENGTH,
    MAX_TITLE_LENGTH,
    NOTE_KINDS,
    SETTABLE_STATUSES,
    EntryKind,
    Role,
    Severity,
    Status,
)

# One line per sub-command: `help` shows them all, a usage error shows its own.
USAGE: dict[str, str] = {
    "declare": "`/incident declare [sev1|sev2|sev3|sev4] [--private] <title>`: open an incident "
    "(`--private`: in a private channel, announced without its title; no title: a form asks)",
    "status": "`/incident status <investigating|identified|monitoring|resolved>`: change the status",
    "sev": "`/incident sev <sev1|sev2|sev3|sev4>`: change the severity",
    "role": "`/incident role <commander|comms|scribe> <@user>`: assign a role",
    "update": "`/incident update <text>`: post a status update here and in the announcement channel",
    "note": "`/incident note [detection|action|hypothesis|misleading|escalation|resolution] <text>`: "
    "add a typed entry to the timeline",
    "timeline": "`/incident timeline`: the timeline so far (only you see it)",
    "diag": "`/incident diag list` or `/incident diag <connections|idle-in-tx|long-queries|blocking|settings> [target]`: "
    "a read-only database check",
    "page": "`/incident page <team> [message]`: page a team (PagerDuty, Opsgenie, Slack members); escalates if nobody acknowledges",
    "followup": "`/incident followup <text> [@owner]`: record an action item for the postmortem; its owner is reminded",
    "resolve": "`/incident resolve [summary]`: mark the incident resolved (stops paging and reminders)",
    "close": "`/incident close`: close the incident and post the drafted postmortem here",
    "postmortem": "`/incident postmortem`: draft a new version of the postmortem (earlier versions are kept)",
    "list": "`/incident list`: the open incidents",
    "summary": "`/incident summary`: where this incident stands and what was already ruled out (only you see it)",
    "private": "`/incident private`: make this incident private (its channel too, where Slack lets the bot)",
    "stats": "`/incident stats`: headline figures across incidents and the main chart, sent to you by direct message",
    "help": "`/incident help`: this list",
}


class UsageError(Exception):
    """A command that cannot be understood; `usage` is the right form to show next to the message."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


@dataclass(frozen=True)
class SourceMessage:
    """The Slack message an incident was declared from (the `declare_from_message` shortcut): it becomes
    the incident's first Detection entry, at the message's own time."""

    channel_id: str
    ts: str  # Slack's message ts: when it was posted
    author_id: str | None  # a user id; None for a bot's or an app's message
    text: str  # mrkdwn, as Slack stored it
    permalink: str | None = None  # None when chat.getPermalink could not give it (a DM, a channel the bot cannot see)
    bot_name: str | None = None  # a bot's or an app's own name, when author_id is None
    # The author is invited to the incident's channel unless the person declaring unticked it (say, a
    # private incident about what the author did).
    invite_author: bool = True


@dataclass(frozen=True)
class Declare:
    title: str
    severity: Severity = DEFAULT_SEVERITY
    description: str | None = None
    private: bool = False
    source: SourceMessage | None = None


@dataclass(frozen=True)
class OpenDeclareForm:
    private: bool = False  # the form opens with its Private box ticked
    severity: Severity | None = None  # chosen in the form; None: the default


@dataclass(frozen=True)
class SetStatus:
    status: Status


@dataclass(frozen=True)
class SetSeverity:
    severity: Severity


@dataclass(frozen=True)
class AssignRole:
    role: Role
    user_id: str


@dataclass(frozen=True)
class PostUpdate:
    text: str


@dataclass(frozen=True)
class AddNote:
    text: str
    kind: EntryKind = EntryKind.NOTE


@dataclass(frozen=True)
class ShowTimeline:
    pass


@dataclass(frozen=True)
class ListDiagnostics:
    pass


@dataclass(frozen=True)
class RunDiagnostic:
    check: str
    target: str | None = None


@dataclass(frozen=True)
class PageTeam:
    team: str
    message: str | None = None


@dataclass(frozen=True)
class AddFollowup:
    text: str
    owner_id: str | None = None


@dataclass(frozen=True)
class DraftPostmortem:
    pass


@dataclass(frozen=True)
class Resolve:
    summary: str | None = None


@dataclass(frozen=True)
class Close:
    pass


@dataclass(frozen=True)
class ListOpen:
    pass


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class ShowSummary:
    pass


@dataclass(frozen=True)
class MakePrivate:
    pass


@dataclass(frozen=True)
class ShowStats:
    pass


Command = (
    Declare | OpenDeclareForm | SetStatus | SetSeverity | AssignRole | PostUpdate | AddNote | ShowTimeline
    | PageTeam | ListDiagnostics | RunDiagnostic | AddFollowup | DraftPostmortem | Resolve | Close | ListOpen | Help
    | ShowSummary | MakePrivate | ShowStats
)
# Commands that change the incident of the channel they are typed in.
IncidentCommand = SetStatus | SetSeverity | AssignRole | PostUpdate | AddNote | Resolve | Close

_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


def parse(text: str) -> Command:
    words = without_nul(text).strip().split(maxsplit=1)
    if not words:
        return Help()
    name, rest = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
    parser = _PARSERS.get(name)
    if parser is None:
        raise UsageError(f"`{_shorten(words[0])}` is not an /incident sub-command.", help_text())
    return parser(rest)


def without_nul(text: str) -> str:
    """NUL characters dropped: no person means them, and PostgreSQL's text columns refuse them."""
    return text.replace("\x00", "") if "\x00" in text else text


def help_text() -> str:
    return "\n".join(f"• {line}" for line in USAGE.values())


def clean_title(title: str) -> str:
    """The title as stored: whitespace folded; empty or over-long titles are refused."""
    cleaned = " ".join(without_nul(title).split())
    if not cleaned:
        raise UsageError("The incident needs a title.", USAGE["declare"])
    if len(cleaned) > MAX_TITLE_LENGTH:  # as stored (and sent): the store keeps at most 200
        typed = typed_length(cleaned)
        # No & < > in these words: they are shown as mrkdwn (a slash command) and as plain text (the form).
        length = (f"{typed:,} characters, but Slack sends each ampersand and angle bracket as several, "
                  f"which makes it {len(cleaned):,}; keep it to {MAX_TITLE_LENGTH} counted that way"
                  ) if typed <= MAX_TITLE_LENGTH else f"{typed:,} characters long; keep it to {MAX_TITLE_LENGTH}"
        raise UsageError(f"The title is {length} and put the details in an update.", USAGE["declare"])
    return cleaned


def typed_length(text: str) -> int:
    """Characters as the person typed them. Slack sends `&`, `<` and `>` in message text as `&amp;`,
    `&lt;` and `&gt;` (Slack: "Formatting text for app surfaces", escaping); each counts one here."""
    return len(text) - 4 * text.count("&amp;") - 3 * (text.count("&lt;") + text.count("&gt;"))


def parse_severity(word: str, usage: str) -> Severity:
    try:
        return Severity(word.lower())
    except ValueError:
        raise UsageError(f"`{_shorten(word)}` is not a severity; use sev1 (worst) to sev4.", usage) from None


def _declare(rest: str) -> Declare | OpenDeclareForm:
    """`[sev1..sev4] [--private] <title>`, the options in either order before the title. No title: the
    form opens, with the severity given chosen and the Private box ticked when `--private` was given.

    A private incident's title must never be announced by mistake, so `--private` is honoured wherever
    it stands in the title and however a keyboard or a client typed its dashes (`—private`, `‐‐private`,
    `−−private`) or put punctuation around it (`--private.`, `(--private)`, `“--private”`); a word that
    looks like a mistyped `--private` (`-privat`, `--pirvate`), dashes apart from the word (`-- private`,
    `— private`), or a title starting with the bare word "private", is refused rather than published."""
    severity: Severity | None = None
    private = False
    words = rest.split()
    while words:
        first = words[0]
        if severity is None and _SEVERITY_WORD.fullmatch(first):
            severity = parse_severity(first.rstrip(":,"), USAGE["declare"])
        elif _is_private_flag(first):
            if private:
                raise UsageError(f"`{_shorten(first)}` is given twice; once is enough.", USAGE["declare"])
            private = True
        elif _OPTION_LIKE.match(_dashes(first)):
            raise UsageError(f"`{_shorten(first)}` is not an option of declare; the only one is `--private`.", USAGE["declare"])
        else:
            break
        words = words[1:]
    words, flagged = title_private_flag(words, USAGE["declare"])
    private = private or flagged
    if words and _bare(words[0]) == "private":
        raise UsageError("The title starts with the word `private`: for a private incident write `--private`, "
                         "so the title is never announced. A title that really starts with that word: "
                         "declare with the form (`/incident declare` with no title).", USAGE["declare"])
    if not words:
        return OpenDeclareForm(private=private, severity=severity)
    return Declare(title=clean_title(" ".join(words)), severity=severity or DEFAULT_SEVERITY, private=private)


def title_private_flag(words: list[str], usage: str, how: str = "Write `--private`") -> tuple[list[str], bool]:
    """A title's words without `--private` (in any of the forms `_declare` names), and whether it was
    there: the slash command and the declare form's title field both honour it. Raises UsageError for a
    word that looks like a mistyped `--private` or for `-- private` with a space, so a title meant to be
    private is never published; its message tells `how` to declare a private incident instead."""
    flagged = any(_is_private_flag(w) for w in words)
    words = [w for w in words if not _is_private_flag(w)]
    for word, after in zip(words, [*words[1:], ""], strict=False):  # each word and the next ("" after the last)
        if _mistyped_private(word):
            raise UsageError(f"`{_shorten(word)}` looks like a mistyped `--private`; nothing was declared. "
                             f"{how} for a private incident, or leave the word out.", usage)
        if _LONE_DASHES.fullmatch(_dashes(word)) and _bare(after) == "private":
            raise UsageError(f"`{_shorten(word)} {_shorten(after)}` looks like `--private` with a space in it; nothing "
                             f"was declared. {how} for a private incident, or reword the title.", usage)
    return words, flagged


def _dashes(word: str) -> str:
    """The word with every dash a keyboard or a client may type for `-` made one, and no invisible
    character: Slack's clients turn `--` into an em dash, phones into an en dash; hyphen and minus signs
    look the same on screen, and a zero-width space pasted along does not show at all."""
    return word.translate(_DASH_MAP)


def _bare(word: str) -> str:
    """The word without the quotes, brackets and punctuation typed around it, lower-cased."""
    return word.strip(_AROUND).lower()


def _is_private_flag(word: str) -> bool:
    return _PRIVATE_FLAG.fullmatch(_dashes(word).strip(_AROUND)) is not None


def _mistyped_private(word: str) -> bool:
    """A dashed word close to `--private` that is not it: `-privat`, `--pirvate`, `—prvate`."""
    dashed = re.fullmatch(r"-{1,2}([A-Za-z]+)", _dashes(word).strip(_AROUND))
    return dashed is not None and difflib.SequenceMatcher(None, dashed.group(1).lower(), "private").ratio() >= 0.75


# A word meant as a severity ("sev1", "SEV2", "sev5", "sev"), not a title's first word ("Several…").
_SEVERITY_WORD = re.compile(r"(?i)sev-?\d*[:,]?")  # "sev1:" too: typed in a hurry, still the severity
# Hyphen, non-breaking hyphen, figure dash, minus sign, small and full-width hyphen-minus as "-"; en and
# em dash, horizontal bar and small em dash as "--" (what the client replaced); invisible characters
# (zero-width space and joiners, word joiner, byte order mark, soft hyphen) dropped.
_DASH_MAP = str.maketrans({**dict.fromkeys("\u2010\u2011\u2012\u2212\ufe63\uff0d", "-"),
                           **dict.fromkeys("\u2013\u2014\u2015\ufe58", "--"),
                           **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad")})
_AROUND = "()[]{}<>\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb.,;:!?\u2026*_~"  # quotes, brackets, punctuation, Slack's styling
_PRIVATE_FLAG = re.compile(r"(?i)-{1,4}private")  # "-private" too: a slip, its meaning plain
_LONE_DASHES = re.compile(r"[(\[\"'\u201c\u2018]?-{1,4}")
_OPTION_LIKE = re.compile(r"--[A-Za-z]")


def _status(rest: str) -> SetStatus:
    usage = USAGE["status"]
    if not rest:
        raise UsageError("Which status?", usage)
    word = rest.split()[0].lower()
    try:
        status = Status(word)
    except ValueError:
        status = None
    if status not in SETTABLE_STATUSES:
        hint = " To close the incident, use `/incident close`." if status is Status.CLOSED else ""
        raise UsageError(f"`{_shorten(rest.split()[0])}` is not a status you can set.{hint}", usage)
    if len(rest.split()) > 1:
        raise UsageError("`status` takes one word; post details with `/incident update <text>`.", usage)
    return SetStatus(status)


def _sev(rest: str) -> SetSeverity:
    usage = USAGE["sev"]
    words = rest.split()
    if len(words) != 1:
        raise UsageError("Which severity?" if not words else "`sev` takes one word.", usage)
    return SetSeverity(parse_severity(words[0], usage))


def _role(rest: str) -> AssignRole:
    usage = USAGE["role"]
    words = rest.split()
    if not words:
        raise UsageError("Which role, and for whom?", usage)
    try:
        role = Role(words[0].lower())
    except ValueError:
        raise UsageError(f"`{_shorten(words[0])}` is not a role; the roles are commander, comms and scribe.", usage) from None
    if len(words) < 2:
        raise UsageError(f"Who should be {role.value}? Mention them with @.", usage)
    mention = _USER_MENTION.match(words[1])
    if mention is None or len(words) > 2:
        raise UsageError(
            f"`{_shorten(' '.join(words[1:]))}` is not one user mention; type @ and pick the person.", usage
        )
    return AssignRole(role, mention.group(1))


def _update(rest: str) -> PostUpdate:
    if not rest:
        raise UsageError("The update needs some text.", USAGE["update"])
    return PostUpdate(_bounded_text(rest, "update"))


def _note(rest: str) -> AddNote:
    """`[kind] <text>`: the kind also as typed in a hurry (`misleading: …`, `Hypotheses …`,
    `ruled-out …`). A first word close to a kind but not one (`mislead`, `hypothesys`) is refused
    with the kind it resembles: as a plain note it would be lost from the postmortem's sections and
    the read-in's "already ruled out"."""
    usage = USAGE["note"]
    head = _NOTE_HEAD.match(rest)
    word, text = (head.group(1), rest[head.end():].strip()) if head else ("", rest)
    kind = NOTE_KIND_WORDS.get(word.lower())
    if kind is None:
        text = rest
        # Close to a kind and starting like it: a slip ("mislead", "hypothesys"), not a word such as "Reaction".
        close = [k for k in difflib.get_close_matches(word.lower(), [k.value for k in NOTE_KINDS], n=1, cutoff=0.7)
                 if k[:3] == word[:3].lower()]
        if close:
            # The note is quoted back whole (within what a slash command can carry): nothing typed is lost.
            raise UsageError(f"`{_shorten(word)}` is not a note kind: did you mean `{close[0]}`? Nothing was added. "
                             "The kinds are detection, action, hypothesis, misleading, escalation and resolution; to "
                             f"keep it a plain note, start it with another word. Your note:\n>{_bounded_text(rest, 'note')}", usage)
    if not text:
        what = f"The {kind.value} note" if kind else "The note"
        raise UsageError(f"{what} needs some text.", usage)
    return AddNote(_bounded_text(text, "note"), kind or EntryKind.NOTE)


# The first word of a note and what follows it: "misleading: text", "misleading - text", "misleading text".
_NOTE_HEAD = re.compile(r"([A-Za-z][A-Za-z_-]*[A-Za-z])\s*(?::|\s-\s|\s|$)")
# Each note kind by its name, its plural, and the words responders use for it.
NOTE_KIND_WORDS: dict[str, EntryKind] = {
    **{k.value: k for k in NOTE_KINDS},
    "detections": EntryKind.DETECTION,
    "actions": EntryKind.ACTION,
    "hypotheses": EntryKind.HYPOTHESIS,
    "ruled-out": EntryKind.MISLEADING,
    "ruled_out": EntryKind.MISLEADING,
    "ruledout": EntryKind.MISLEADING,
    "escalations": EntryKind.ESCALATION,
    "resolutions": EntryKind.RESOLUTION,
}


def _page(rest: str) -> PageTeam:
    team, _, message = rest.partition(" ")
    if not team:
        raise UsageError("Which team?", USAGE["page"])
    return PageTeam(team, _bounded_text(message.strip(), "page") or None)


def _diag(rest: str) -> ListDiagnostics | RunDiagnostic:
    words = rest.split()
    if not words:
        raise UsageError("Which check?", USAGE["diag"])
    if words[0].lower() == "list" and len(words) == 1:
        return ListDiagnostics()
    check = words[0].lower()
    if check not in CHECKS:
        raise UsageError(f"`{_shorten(words[0])}` is not a check; the checks are {', '.join(CHECKS)}.", USAGE["diag"])
    if len(words) > 2:
        raise UsageError("`diag` takes a check and at most one target; no SQL of your own.", USAGE["diag"])
    return RunDiagnostic(check, words[1] if len(words) == 2 else None)


def _followup(rest: str) -> AddFollowup:
    """`<text> [<@owner>]`: a mention at the very end names the owner; mentions inside the text stay text."""
    usage = USAGE["followup"]
    text, owner = rest, None
    words = rest.rsplit(maxsplit=1)
    if words:
        mention = _USER_MENTION.match(words[-1])
        if mention:
            owner = mention.group(1)
            text = words[0] if len(words) > 1 else ""
    text = text.strip()
    if not text:
        raise UsageError("The follow-up needs some text: what should be done?", usage)
    return AddFollowup(_bounded_text(text, "followup"), owner)


def _resolve(rest: str) -> Resolve:
    return Resolve(_bounded_text(rest, "resolve") or None)


def _bounded_text(text: str, name: str) -> str:
    """Counted as typed: what Slack's escaping adds is the bot's to fit (handlers/mrkdwn.py splits it)."""
    if (typed := typed_length(text)) > MAX_TEXT_LENGTH:
        raise UsageError(f"The text is {typed:,} characters long; keep it to {MAX_TEXT_LENGTH:,}.", USAGE[name])
    return text


NoArguments = Close | ListOpen | Help | ShowTimeline | DraftPostmortem | ShowSummary | MakePrivate | ShowStats


def _no_arguments(command: NoArguments, name: str) -> Callable[[str], Command]:
    def parse_nothing(rest: str) -> NoArguments:
        if rest:
            raise UsageError(f"`{name}` takes no arguments.", USAGE[name])
        return command

    return parse_nothing


def _shorten(text: str, limit: int = 40) -> str:
    """A word quoted back to its author: at most `limit`, never ending in half a mention, link or
    `&…;` entity (Slack would show the markup's raw pieces). A word cut out of the text at a space can
    hold half of markup that has spaces in it (`<!date^…^{date_short} {time}|…>`, a link's label):
    its stray `<` or `>` is shown as a character, not left open."""
    text = text.replace("`", "'")
    if len(text) > limit:
        text = _PARTIAL_MARKUP.sub("", text[: limit - 1]) + "…"
    parts = _WHOLE_MARKUP.split(text)  # odd indexes: whole <…> markup
    return "".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


_PARTIAL_MARKUP = re.compile(r"(?:<[^<>]*|&[A-Za-z0-9#]*)$")
_WHOLE_MARKUP = re.compile(r"(<[^<>]*>)")


_PARSERS = {
    "declare": _declare,
    "status": _status,
    "sev": _sev,
    "severity": _sev,
    "role": _role,
    "update": _update,
    "resolve": _resolve,
    "note": _note,
    "page": _page,
    "diag": _diag,
    "timeline": _no_arguments(ShowTimeline(), "timeline"),
    "followup": _followup,
    "close": _no_arguments(Close(), "close"),
    "postmortem": _no_arguments(DraftPostmortem(), "postmortem"),
    "list": _no_arguments(ListOpen(), "list"),
    "summary": _no_arguments(ShowSummary(), "summary"),
    "private": _no_arguments(MakePrivate(), "private"),
    "stats": _no_arguments(ShowStats(), "stats"),
    "help": _no_arguments(Help(), "help"),
}
