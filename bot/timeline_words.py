"""Timeline entries in words: one sentence for each kind of entry, shared by `/incident timeline` (Slack
mrkdwn) and the postmortem (Markdown). The two differ only in how they show a person, a team, an entry's
own text and emphasis, which the caller passes in as a `Wording`. Captured messages are not described
here: each reader lays them out its own way (threads, edits, files, links)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.incidents.values import OPERATOR, OPERATOR_NAME, EntryKind, Role, Severity, Status
from bot.timeline import TimelineItem

USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class Wording:
    person: Callable[[str], str]  # a Slack user id, or a name a pager sent, as the reader should see it
    team: Callable[[str], str]  # a configured team's key, as the reader should see it
    text: Callable[[str], str] = _same  # an entry's own text, made fit for the medium
    strong: Callable[[str], str] = _same  # emphasis
    bot: str = "incident-bot"  # who the bot is, when it acted

    def who(self, actor_id: str | None) -> str:
        if actor_id == OPERATOR:
            return OPERATOR_NAME
        return self.person(actor_id) if actor_id else self.bot


def describe(item: TimelineItem, wording: Wording) -> str:
    """What the entry says happened, as one sentence."""
    data, who, text = item.data, wording.who(item.actor_id), wording.text(item.text)
    strong = wording.strong

    def team() -> str:
        return wording.team(str(data.get("team", "")))

    def said(sentence: str) -> str:
        return f"{sentence}: {text}" if text else sentence

    match item.kind:
        case EntryKind.DECLARED:
            return said(f"{who} declared the incident ({severity_label(data.get('severity'))})")
        case EntryKind.STATUS_CHANGED:
            return f"{who} set the status to {strong(status_label(data.get('to')))} (was {status_label(data.get('from'))})"
        case EntryKind.SEVERITY_CHANGED:
            return f"{who} set the severity to {strong(severity_label(data.get('to')))} (was {severity_label(data.get('from'))})"
        case EntryKind.ROLE_ASSIGNED:
            role = Role(data["role"]).label.lower() if data.get("role") else "a role"
            return f"{who} named {wording.person(str(data.get('user')))} {role}"
        case EntryKind.UPDATE:
            return said(f"{strong('Status update')} by {who}")
        case EntryKind.RESOLVED:
            return said(f"{who} resolved the incident")
        case EntryKind.CLOSED:
            return f"{who} closed the incident"
        case EntryKind.PAGED if data.get("escalated_from"):
            return said(f"Not acknowledged in time, so {wording.bot} escalated to {team()}")
        case EntryKind.PAGED:
            return said(f"{who} paged {team()}{' again' if data.get('repeated') else ''}")
        case EntryKind.PAGE_FAILED:
            return said(f"Paging {team()} through {data.get('provider')} failed")
        case EntryKind.PAGE_ACKNOWLEDGED:
            by, _, via = item.text.rpartition(" via ")  # stored as "<who> via <Slack|PagerDuty|…>"
            return f"{team()} acknowledged the page: {wording.person(by)} via {via}" if by else said(f"{team()} acknowledged the page")
        case EntryKind.PAGE_UPDATED:
            late = " (it arrived after a later change, and changed nothing)" if data.get("outcome") == "stale" else ""
            return f"{team()}'s page: {text}{late}"
        case EntryKind.ALERT:
            return f"Monitoring: {text}"
        case EntryKind.DIAGNOSTIC:
            return said(f"{who} ran `{data.get('check')}` on `{data.get('target')}`")
        case EntryKind.DIAGNOSTIC_DENIED:
            return f"{who} was refused `{data.get('check')}` on `{data.get('target')}` (not allowed to run diagnostics)"
        case EntryKind.FOLLOWUP:
            owner = f" (owner: {wording.person(str(data['owner']))})" if data.get("owner") else ""
            return said(f"{who} added a follow-up{owner}")
        case EntryKind.CHANNEL_ARCHIVED:
            gone = "deleted" if data.get("deleted") else "archived"
            if item.actor_id:
                return f"{who} {gone} the incident channel"
            if data.get("seen") in ("is_archived", "channel_not_found"):  # learnt from Slack refusing a post
                return f"The incident channel was found {gone} (Slack answered `{data.get('seen')}`)"
            return f"The incident channel was {gone}"
        case EntryKind.CHANNEL_UNARCHIVED:
            return f"{who if item.actor_id else 'Someone'} unarchived the incident channel"
        case EntryKind.MADE_PRIVATE:
            return f"{who} made the incident {strong('private')}: nothing outside its channel names it from then on"
        case EntryKind.DETECTION if data.get("declared_from") == "message":
            # The message the incident was declared from (bot.incidents.service): by its author, or by an
            # app (no actor then, which must not read as the bot); the permalink as Slack markup, so each
            # reader shows it as its own kind of link.
            app = str(data.get("bot_name") or "")
            by = who if item.actor_id else f"{wording.text(_escaped(app))} (an app)" if app else "An app"
            message = wording.text(f"<{data['permalink']}|the message>") if data.get("permalink") else "the message"
            return said(f"{by} posted {message} the incident was declared from")
    return said(who)  # typed notes, whose kind is shown as their label


def _escaped(text: str) -> str:
    """Plain text as Slack markup (`&`, `<`, `>` as entities), for `Wording.text`, which reads markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def severity_label(value: object) -> str:
    try:
        return Severity(str(value)).label
    except ValueError:
        return "unknown"


def status_label(value: object) -> str:
    try:
        return Status(str(value)).label
    except ValueError:
        return "unknown"
