"""`/incident timeline`: the timeline as Block Kit pages, within Slack's limits (50 blocks a message,
3,000 characters a text block; handlers.mrkdwn). Every entry is on some page; an entry too long for one
block continues in the next. Nothing is cut.

Times are Slack dates (`<!date^…>`), which every reader sees in their own zone. An entry shows its date
as well as its time when it opens the timeline or a page, or when its day differs from the entry's
before it (days counted in the configured zone, `[postmortem] timezone`, as the postmortem does), so an
incident spanning days reads right.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from bot.incidents.values import NOTE_KINDS, EntryKind, Incident
from bot.timeline import TimelineItem, visible
from bot.timeline_words import USER_ID, Wording, describe
from bot.wording import counted
from handlers import mrkdwn
from handlers.paging_blocks import team_name

# One action_id each: Slack refuses two equal action_ids in one block (Block Kit reference, button:
# "action_id … should be unique among all other action_ids in the containing block").
EARLIER_ACTION = "incident_timeline_earlier"
LATER_ACTION = "incident_timeline_later"
# What the page handler answers: both, and the one id buttons shown before the split shared.
PAGE_ACTIONS = re.compile(r"^incident_timeline_(?:earlier|later|page)$")
BLOCK_TEXT = 2900  # under Slack's 3,000 for a section's text
PAGE_SECTIONS = 40
PAGE_CHARACTERS = 12_000  # keeps a page well inside what Slack accepts for one message
# Entries whose text the bot stored as plain text (a provider's error, a check's headline), not mrkdwn,
# and the plain-text names entries carry in their data (a configured target, a check, a provider).
PLAIN_TEXT_KINDS = (EntryKind.PAGE_FAILED, EntryKind.PAGE_UPDATED, EntryKind.DIAGNOSTIC)
PLAIN_DATA = ("check", "target", "provider")

NOTE_ICONS = {
    EntryKind.NOTE: ":spiral_note_pad:",
    EntryKind.DETECTION: ":mag:",
    EntryKind.ACTION: ":hammer_and_wrench:",
    EntryKind.HYPOTHESIS: ":thinking_face:",
    EntryKind.MISLEADING: ":no_entry_sign:",
    EntryKind.ESCALATION: ":telephone_receiver:",
    EntryKind.RESOLUTION: ":white_check_mark:",
}


def paginate(items: list[TimelineItem], words: Wording, zone: tzinfo = UTC) -> list[list[str]]:
    """The section texts of each page, in order: lines packed into sections of at most BLOCK_TEXT,
    at most PAGE_SECTIONS sections and PAGE_CHARACTERS characters a page."""
    pages: list[_Page] = [_Page()]
    previous_day, dated_page = None, -1  # the last page an entry started on (and so shows a date)
    for item in items:
        day = item.occurred_at.astimezone(zone).date()
        dated = day != previous_day or dated_page != len(pages) - 1
        parts = mrkdwn.split(line(item, words, zone, dated=dated), BLOCK_TEXT)
        if not dated and not pages[-1].has_room(parts[0]):  # it will open the next page
            parts = mrkdwn.split(line(item, words, zone, dated=True), BLOCK_TEXT)
        for i, part in enumerate(parts):
            if not pages[-1].has_room(part):
                pages.append(_Page())
            if i == 0:
                dated_page = len(pages) - 1
            pages[-1].add(part)
        previous_day = day
    return [page.sections for page in pages]


class _Page:
    """The sections of one page as they fill, with their sizes kept (a timeline may hold thousands)."""

    def __init__(self) -> None:
        self.sections: list[str] = []
        self.size = 0  # characters in all sections
        self.last = 0  # characters in the last section

    def has_room(self, part: str) -> bool:
        if not self.sections:
            return True
        size = mrkdwn.length(part)
        joins = self.last + 1 + size <= BLOCK_TEXT
        return self.size + 1 + size <= PAGE_CHARACTERS and (joins or len(self.sections) < PAGE_SECTIONS)

    def add(self, part: str) -> None:
        size = mrkdwn.length(part)
        if self.sections and self.last + 1 + size <= BLOCK_TEXT:
            self.sections[-1] += "\n" + part
            self.last += 1 + size
            self.size += 1 + size
        else:
            self.sections.append(part)
            self.last = size
            self.size += size


def render(incident: Incident, items: list[TimelineItem], page: int,
           team: Callable[[str], str] = str, zone: tzinfo = UTC) -> tuple[str, list[dict[str, Any]]]:
    """One page of the timeline (0-based; clamped to the pages there are): a heading, the page's
    sections, and "◀ Earlier" / "Later ▶" buttons whose value is "<incident id>:<page>". `team` names
    a configured team (its display name, plain text); `zone` is where days begin."""
    visible_items = visible(items)
    pages = paginate(visible_items, wording(team), zone)
    page = max(0, min(page, len(pages) - 1))
    left_out = sum(1 for i in items if i.deleted)
    heading = f"*Timeline of incident {incident.number}: {incident.title}* · {counted(len(visible_items), 'entry', 'entries')}"
    if len(pages) > 1:
        heading += f" · page {page + 1} of {len(pages)}"
    if left_out:
        heading += f" · {counted(left_out, 'deleted message')} left out"
    blocks: list[dict[str, Any]] = [mrkdwn.context(heading)]
    if not visible_items:
        blocks.append(mrkdwn.section("Nothing recorded yet."))
    blocks += [mrkdwn.section(text) for text in pages[page]]
    buttons = []
    if page > 0:
        buttons.append(mrkdwn.button("◀ Earlier", EARLIER_ACTION, f"{incident.id}:{page - 1}"))
    if page < len(pages) - 1:
        buttons.append(mrkdwn.button("Later ▶", LATER_ACTION, f"{incident.id}:{page + 1}"))
    if buttons:
        blocks.append(mrkdwn.actions(buttons, block_id="timeline_pages"))
    return mrkdwn.message(f"Timeline of incident {incident.number}, page {page + 1} of {len(pages)}", blocks)


ICONS = {
    EntryKind.DECLARED: ":rotating_light:",
    EntryKind.STATUS_CHANGED: ":arrows_counterclockwise:",
    EntryKind.SEVERITY_CHANGED: ":warning:",
    EntryKind.ROLE_ASSIGNED: ":bust_in_silhouette:",
    EntryKind.UPDATE: ":memo:",
    EntryKind.RESOLVED: ":white_check_mark:",
    EntryKind.CLOSED: ":lock:",
    EntryKind.PAGED: ":pager:",
    EntryKind.PAGE_FAILED: ":x:",
    EntryKind.PAGE_ACKNOWLEDGED: ":white_check_mark:",
    EntryKind.PAGE_UPDATED: ":pager:",
    EntryKind.ALERT: ":bell:",
    EntryKind.DIAGNOSTIC: ":bar_chart:",
    EntryKind.DIAGNOSTIC_DENIED: ":no_entry_sign:",
    EntryKind.FOLLOWUP: ":ballot_box_with_check:",
    EntryKind.CHANNEL_ARCHIVED: ":file_cabinet:",
    EntryKind.CHANNEL_UNARCHIVED: ":open_file_folder:",
    EntryKind.MADE_PRIVATE: ":lock:",
    **NOTE_ICONS,
}


def wording(team: Callable[[str], str]) -> Wording:
    """How Slack shows people (mentions, which it renders as names; a pager's name, plain text, is
    escaped), teams (a configured display name, escaped) and emphasis."""
    return Wording(person=lambda who: f"<@{who}>" if USER_ID.fullmatch(who) else mrkdwn.escape(who),
                   team=lambda key: f"*{team_name(team(key))}*",
                   strong=lambda text: f"*{text}*", bot="the bot")



def line(item: TimelineItem, words: Wording, zone: tzinfo = UTC, *, dated: bool = False) -> str:
    key = ":pushpin: " if item.key_event else ""
    return f"{when(item.occurred_at, zone, dated=dated)} {key}{_describe(item, words)}"


def when(moment: datetime, zone: tzinfo = UTC, *, dated: bool = False) -> str:
    """A Slack date each reader sees in their own zone, with the date when `dated`; its fallback
    (for clients that cannot render it) is in `zone`, named."""
    local = moment.astimezone(zone)
    stamp, name = int(moment.timestamp()), local.tzname() or "UTC"
    if dated:
        return f"<!date^{stamp}^{{date_short_pretty}} {{time_secs}}|{local:%Y-%m-%d %H:%M:%S} {name}>"
    return f"<!date^{stamp}^{{time_secs}}|{local:%H:%M:%S} {name}>"


def _describe(item: TimelineItem, words: Wording) -> str:
    if item.kind in PLAIN_TEXT_KINDS:
        item = dataclasses.replace(item, text=mrkdwn.escape(item.text))
    if any(isinstance(item.data.get(key), str) for key in PLAIN_DATA):
        item = dataclasses.replace(item, data={**item.data, **{key: mrkdwn.escape(item.data[key]) for key in PLAIN_DATA
                                                              if isinstance(item.data.get(key), str)}})
    who = words.who(item.actor_id)
    icon = ICONS.get(item.kind, ":spiral_note_pad:")
    if item.kind is EntryKind.MESSAGE:
        reply = "↳ " if item.is_reply else ""
        edited = " _(edited)_" if item.edited else ""
        files = "".join(f" :paperclip: {mrkdwn.escape(str(f.get('title') or f.get('name') or 'file'))}" for f in item.files)
        link = f" <{item.permalink}|·>" if item.permalink else ""
        shared = [s for s in item.data.get("shared") or [] if isinstance(s, dict)]
        forwarded = "".join("\n" + _forwarded(s) for s in shared)
        if shared and not item.text and not item.files:
            return f"{reply}*{who}* forwarded a message{edited}{link}{forwarded}"
        return f"{reply}*{who}*: {item.text}{edited}{files}{link}{forwarded}"
    if item.kind is EntryKind.DETECTION and item.data.get("declared_from") == "message":
        return f"{icon} *Detection*: {describe(item, words)}"  # who posted it, linked (bot.timeline_words)
    if item.kind is EntryKind.NOTE or item.kind in NOTE_KINDS:
        label = "Note" if item.kind is EntryKind.NOTE else item.kind.value.capitalize()
        return f"{icon} *{label}* by {who}: {item.text}"
    return f"{icon} {describe(item, words)}"


def _forwarded(share: dict[str, Any]) -> str:
    """A forwarded message (handlers/capture.py), quoted: who wrote it and where as mentions, which
    Slack shows as names, then its text, which is Slack's mrkdwn already."""
    author = f"<@{share['author_id']}>" if share.get("author_id") else mrkdwn.escape(str(share.get("author_name") or "someone"))
    channel = str(share.get("channel_id") or "")
    where = " in a direct message" if channel.startswith("D") else f" in <#{channel}>" if channel else ""
    original = f" <{share['from_url']}|original>" if share.get("from_url") else ""
    return mrkdwn.quote(f"_Forwarded from {author}{where}_{original}:\n{share.get('text') or ''}")

