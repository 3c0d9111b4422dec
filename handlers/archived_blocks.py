"""What the bot says when an incident's channel was archived or deleted in Slack, and when it is back.

Slack takes no posts in an archived channel (`is_archived`) nor in a deleted one (`channel_not_found`),
and an app cannot unarchive a channel (Slack: conversations.unarchive, "Bot tokens (xoxb-...) cannot
currently be used to unarchive conversations"). So these messages go to the incident's announcement
thread, and say what still works: a person unarchiving the channel, or the operator's CLI.
"""

from __future__ import annotations

from bot.incidents.values import Incident, Status
from handlers.blocks import channel_link

def gone_notice(incident: Incident, by: str | None, *, deleted: bool) -> str:
    """The one message telling the announcement thread that the channel is gone, and what to do.
    `by`: who archived or deleted it (a Slack user id), None when Slack's refusal was the first sign."""
    number, gone = incident.number, "deleted" if deleted else "archived"
    where = f"#{incident.channel_name or incident.channel_id}" if deleted else channel_link(incident)
    when = f"before the incident was closed (it is *{incident.status.label}*)"
    if by:
        headline = f"<@{by}> {gone} {where}, the channel of incident {number}, {when}."
    else:
        headline = f"{where}, the channel of incident {number}, was {gone} {when}: Slack refuses posts there."
    lines = [f":file_cabinet: {headline} What the bot has to say about this incident comes to this thread now."]
    if not deleted:
        lines.append("• To carry on in the channel: unarchive it (the channel's name → *Settings* → *Unarchive channel*); "
                     "the bot joins it again. Apps cannot unarchive channels themselves.")
    if incident.status is Status.RESOLVED:
        lines.append(f"• To close it as it is: an operator runs `incident-bot close {number}` where the bot runs.")
    else:
        lines.append(f"• To end it as it is: an operator runs `incident-bot resolve {number} [summary]`, "
                     f"then `incident-bot close {number}`, where the bot runs.")
    return "\n".join(lines)


def redirected(incident: Incident) -> str:
    """The line above a message meant for the channel, posted in the announcement thread instead."""
    return f":file_cabinet: _For incident {incident.number}, whose channel is archived:_"


def back_notice(incident: Incident, by: str | None, *, joined: bool) -> str:
    """Told to the announcement thread when someone unarchives the channel."""
    who = f"<@{by}> unarchived" if by else "Someone unarchived"
    then = ("The bot is back in it: `/incident` works there again." if joined
            else "The bot could not join it again: invite it with `/invite @incident-bot` in the channel.")
    return f":open_file_folder: {who} {channel_link(incident)}, the channel of incident {incident.number}. {then}"
