"""`/incident timeline`: the timeline as Block Kit pages, within Slack's limits (50 blocks a message,
3,000 characters a text block). Every entry is on some page; an entry too long for one block continues
in the next. Nothing is cut."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.incidents.values import NOTE_KINDS, EntryKind, Incident
from bot.timeline import TimelineItem, visible
from bot.timeline_words import USER_ID, Wording, describe

PAGE_ACTION = "incident_timeline_page"
BLOCK_TEXT = 2900  # under Slack's 3,000, leaving room for the mrkdwn Slack adds around mentions
PAGE_SECTIONS = 40
PAGE_CHARACTERS = 12_000  # keeps a page well inside what Slack accepts for one message

NOTE_ICONS = {
    EntryKind.NOTE: ":spiral_note_pad:",
    EntryKind.DETECTION: ":mag:",
    EntryKind.ACTION: ":hammer_and_wrench:",
    EntryKind.HYPOTHESIS: ":thinking_face:",
    EntryKind.MISLEADING: ":no_entry_sign:",
    EntryKind.ESCALATION: ":telephone_receiver:",
    EntryKind.RESOLUTION: ":white_check_mark:",
}


def paginate(items: list[TimelineItem], words: Wording) -> list[list[str]]:
    """The section texts of each page, in order."""
    sections: list[str] = []
    for item in items:
        for part in _split(line(item, words), BLOCK_TEXT):
            if sections and len(sections[-1]) + 1 + len(part) <= BLOCK_TEXT:
                sections[-1] += "\n" + part
            else:
                sections.append(part)
    pages: list[list[str]] = [[]]
    for section in sections:
        page = pages[-1]
        if page and (len(page) >= PAGE_SECTIONS or sum(map(len, page)) + len(section) > PAGE_CHARACTERS):
            pages.append(page := [])
        page.append(section)
    return pages


def render(incident: Incident, items: list[TimelineItem], page: int,
           team: Callable[[str], str] = str) -> tuple[str, list[dict[str, Any]]]:
    """One page of the timeline; `team` names a configured team (its display name)."""
    visible_items = visible(items)
    pages = paginate(visible_items, wording(team))
    page = max(0, min(page, len(pages) - 1))
    left_out = sum(1 for i in items if i.deleted)
    heading = f"*Timeline of incident {incident.number}: {incident.title}* · {len(visible_items)} entries"
    if len(pages) > 1:
        heading += f" · page {page + 1} of {len(pages)}"
    if left_out:
        heading += f" · {left_out} deleted message{'s' if left_out != 1 else ''} left out"
    blocks: list[dict[str, Any]] = [{"type": "context", "elements": [{"type": "mrkdwn", "text": heading}]}]
    if not visible_items:
        blocks.append(_section("Nothing recorded yet."))
    blocks += [_section(text) for text in pages[page]]
    buttons = []
    if page > 0:
        buttons.append(_button("◀ Earlier", f"{incident.id}:{page - 1}"))
    if page < len(pages) - 1:
        buttons.append(_button("Later ▶", f"{incident.id}:{page + 1}"))
    if buttons:
        blocks.append({"type": "actions", "block_id": "timeline_pages", "elements": buttons})
    return f"Timeline of incident {incident.number}, page {page + 1} of {len(pages)}", blocks


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
    EntryKind.DIAGNOSTIC: ":bar_chart:",
    EntryKind.DIAGNOSTIC_DENIED: ":no_entry_sign:",
    EntryKind.FOLLOWUP: ":ballot_box_with_check:",
    EntryKind.CHANNEL_ARCHIVED: ":file_cabinet:",
    EntryKind.CHANNEL_UNARCHIVED: ":open_file_folder:",
    **NOTE_ICONS,
}


def wording(team: Callable[[str], str]) -> Wording:
    """How Slack shows people (mentions, which it renders as names), teams and emphasis."""
    return Wording(person=lambda who: f"<@{who}>" if USER_ID.fullmatch(who) else who,
                   team=lambda key: f"*{team(key)}*", strong=lambda text: f"*{text}*", bot="the bot")


def line(item: TimelineItem, words: Wording) -> str:
    moment = item.occurred_at
    when = f"`<!date^{int(moment.timestamp())}^{{time_secs}}|{moment:%H:%M:%S} UTC>`"
    key = ":pushpin: " if item.key_event else ""
    return f"{when} {key}{_describe(item, words)}"


def _describe(item: TimelineItem, words: Wording) -> str:
    who = words.who(item.actor_id)
    icon = ICONS.get(item.kind, ":spiral_note_pad:")
    if item.kind is EntryKind.MESSAGE:
        reply = "↳ " if item.is_reply else ""
        edited = " _(edited)_" if item.edited else ""
        files = "".join(f" :paperclip: {f.get('title') or f.get('name') or 'file'}" for f in item.files)
        link = f" <{item.permalink}|·>" if item.permalink else ""
        return f"{reply}*{who}*: {item.text}{edited}{files}{link}"
    if item.kind is EntryKind.NOTE or item.kind in NOTE_KINDS:
        label = "Note" if item.kind is EntryKind.NOTE else item.kind.value.capitalize()
        return f"{icon} *{label}* by {who}: {item.text}"
    return f"{icon} {describe(item, words)}"


def _split(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut at a line or word break where one is near."""
    parts = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut])
        text = "_…continued:_ " + text[cut:].lstrip()
    return parts + [text]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(label: str, value: str) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": label}, "action_id": PAGE_ACTION, "value": value}
