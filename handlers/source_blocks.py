"""Block Kit for declaring from a message (the `declare_from_message` shortcut): the declare form
prefilled from the message, the incident channel's line linking it, and what the person is told when
the form cannot open.

The form is the declare form (handlers.blocks.declare_form), with the same inputs and block ids, so one
submission handler serves both: here its title and description get initial values (plain text: the
inputs are plain_text_input), a context block above says where it comes from, and a checkbox offers to
invite the message's author.
"""

from __future__ import annotations

import html
from typing import Any

from bot.incidents import commands as c
from bot.incidents.values import MAX_TITLE_LENGTH
from handlers import blocks, mrkdwn

INVITE_AUTHOR_BLOCK = "invite_author"


def prefilled_form(source: c.SourceMessage, reporter_id: str, *, title: str, description: str,
                   metadata: str) -> dict[str, Any]:
    """The declare form for `source`. `title` and `description` are plain text, held here to their
    inputs' max_length (MAX_TITLE_LENGTH, blocks.MAX_DESCRIPTION) with a visible "…" when longer;
    `metadata` (private_metadata) is at most 3,000 characters, else ValueError. The author gets an
    "invite" box, ticked, unless there is none (a bot's message) or it is the person declaring."""
    form = blocks.declare_form(source.channel_id)
    if mrkdwn.length(metadata) > mrkdwn.PRIVATE_METADATA:
        raise ValueError(f"private_metadata is at most {mrkdwn.PRIVATE_METADATA:,} characters")
    form["private_metadata"] = metadata
    inputs = {block["block_id"]: block for block in form["blocks"]}
    if title:
        inputs["title"]["element"]["initial_value"] = mrkdwn.clip(title, MAX_TITLE_LENGTH)
    if description:
        inputs["description"]["element"]["initial_value"] = mrkdwn.clip(description, blocks.MAX_DESCRIPTION)
    shown: list[dict[str, Any]] = [mrkdwn.context(f":speech_balloon: {_from_words(source, 'From')}")]
    for block in form["blocks"]:
        shown.append(block)
        if block["block_id"] == "description" and source.author_id and source.author_id != reporter_id:
            shown.append(_invite_author(source.author_id))
    form["blocks"] = shown
    return form


def declared_from_line(source: c.SourceMessage) -> str:
    """The incident channel's line (mrkdwn) saying where the incident started:
    "Declared from <permalink|a message> by @author in #channel"."""
    return f":speech_balloon: {_from_words(source, 'Declared from')}"


def form_failed(error: str) -> str:
    """What the person is told when the prefilled form could not open (mrkdwn); `error` is Slack's code."""
    return (f":warning: The declare form could not open (Slack said `{mrkdwn.escape(error)}`). Try *Declare incident* "
            "on the message again (Slack gives the bot 3 seconds to open the form), or declare with text: "
            f"{mrkdwn.placeholders(c.USAGE['declare'])}")


def unreadable_message() -> str:
    """What the person is told when Slack's payload names no message the bot can use (mrkdwn)."""
    return ("The bot could not tell which message that was (Slack sent no message ts), so no form opened. "
            f"Try again, or declare with text: {mrkdwn.placeholders(c.USAGE['declare'])}")


def title_suggestion(plain: str) -> str:
    """The first line with words in it, whitespace folded, quote marks dropped, held to MAX_TITLE_LENGTH
    as the title will be stored: escaped (`&` counts as the five characters of `&amp;`), so the
    suggestion is never refused for its length when submitted unchanged."""
    line = next((line for line in plain.splitlines() if line.strip(" >")), "")
    words = " ".join(line.strip().lstrip("> ").split())
    best, low, high = "", 1, MAX_TITLE_LENGTH
    while low <= high:  # the longest clip whose escaped form fits
        limit = (low + high) // 2
        title = mrkdwn.clip(words, limit)
        if len(html.escape(title, quote=False)) <= MAX_TITLE_LENGTH:
            best, low = title, limit + 1
        else:
            high = limit - 1
    return best


def _from_words(source: c.SourceMessage, lead: str) -> str:
    message = f"<{source.permalink}|a message>" if source.permalink else "a message"
    if source.author_id:
        by = f" by <@{source.author_id}>"
    else:
        by = f" by {mrkdwn.escape(source.bot_name)} (an app)" if source.bot_name else " by an app"
    if source.channel_id.startswith("D"):
        where = " in a direct message"
    else:
        where = f" in <#{source.channel_id}>"
    unlinked = "" if source.permalink else " (Slack gave no link to it)"
    return f"{lead} {message}{by}{where}{unlinked}"


def _invite_author(author_id: str) -> dict[str, Any]:
    # Checkbox options may be mrkdwn (Slack: checkboxes element, "options"), so the mention shows a name.
    option = {"text": {"type": "mrkdwn", "text": f"Invite <@{author_id}>, who wrote it, to the incident channel"},
              "value": author_id}
    return {
        "type": "input",
        "block_id": INVITE_AUTHOR_BLOCK,
        "optional": True,
        "label": {"type": "plain_text", "text": "Participants"},
        "element": {"type": "checkboxes", "action_id": "value", "options": [option], "initial_options": [option]},
    }
