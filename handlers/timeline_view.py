"""`/incident timeline`: the timeline as Block Kit pages, within Slack's limits (50 blocks a message,
3,000 characters a text block). Every entry is on some page; an entry too long for one block continues
in the next. Nothing is cut."""

from __future__ import annotations

from typing import Any

from bot.incidents.values import EntryKind, Incident, Role, Severity, Status
from bot.timeline import TimelineItem, visible
from handlers.blocks import label_of

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


def paginate(items: list[TimelineItem]) -> list[list[str]]:
    """The section texts of each page, in order."""
    sections: list[str] = []
    for item in items:
        for part in _split(line(item), BLOCK_TEXT):
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


def render(incident: Incident, items: list[TimelineItem], page: int) -> tuple[str, list[dict[str, Any]]]:
    visible_items = visible(items)
    pages = paginate(visible_items)
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


def line(item: TimelineItem) -> str:
    moment = item.occurred_at
    when = f"`<!date^{int(moment.timestamp())}^{{time_secs}}|{moment:%H:%M:%S} UTC>`"
    who = f"<@{item.actor_id}>" if item.actor_id else "the bot"
    key = ":pushpin: " if item.key_event else ""
    return f"{when} {key}{_describe(item, who)}"


def _describe(item: TimelineItem, who: str) -> str:
    data = item.data
    match item.kind:
        case EntryKind.MESSAGE:
            reply = "↳ " if item.is_reply else ""
            edited = " _(edited)_" if item.edited else ""
            files = "".join(f" :paperclip: {f.get('title') or f.get('name') or 'file'}" for f in item.files)
            link = f" <{item.permalink}|·>" if item.permalink else ""
            return f"{reply}*{who}*: {item.text}{edited}{files}{link}"
        case EntryKind.DECLARED:
            return f":rotating_light: {who} declared the incident ({label_of(Severity, data.get('severity'))}): {item.text}"
        case EntryKind.STATUS_CHANGED:
            return f":arrows_counterclockwise: {who} set the status to *{label_of(Status, data.get('to'))}* (was {label_of(Status, data.get('from'))})"
        case EntryKind.SEVERITY_CHANGED:
            return f":warning: {who} set the severity to *{label_of(Severity, data.get('to'))}* (was {label_of(Severity, data.get('from'))})"
        case EntryKind.ROLE_ASSIGNED:
            role = Role(data["role"]).label.lower() if data.get("role") else "a role"
            return f":bust_in_silhouette: {who} named <@{data.get('user')}> {role}"
        case EntryKind.UPDATE:
            return f":memo: *Status update* by {who}: {item.text}"
        case EntryKind.RESOLVED:
            return f":white_check_mark: {who} resolved the incident" + (f": {item.text}" if item.text else "")
        case EntryKind.CLOSED:
            return f":lock: {who} closed the incident"
        case EntryKind.PAGED:
            what = "escalated to" if data.get("escalated_from") else ("paged again" if data.get("repeated") else "paged")
            return f":pager: {who} {what} *{data.get('team')}*" + (f": {item.text}" if item.text else "")
        case EntryKind.PAGE_FAILED:
            return f":x: paging *{data.get('team')}* through {data.get('provider')} failed: {item.text}"
        case EntryKind.PAGE_ACKNOWLEDGED:
            return f":white_check_mark: the page to *{data.get('team')}* was acknowledged by {item.text}"
        case EntryKind.DIAGNOSTIC:
            return f":bar_chart: {who} ran `{data.get('check')}` on *{data.get('target')}*: {item.text}"
        case EntryKind.FOLLOWUP:
            owner = f" (owner <@{data['owner']}>)" if data.get("owner") else ""
            return f":ballot_box_with_check: {who} added a follow-up{owner}: {item.text}"
        case EntryKind.DIAGNOSTIC_DENIED:
            return f":no_entry_sign: {who} was refused `{data.get('check')}` on *{data.get('target')}* (not allowed)"
    label = "Note" if item.kind is EntryKind.NOTE else item.kind.value.capitalize()
    return f"{NOTE_ICONS.get(item.kind, ':spiral_note_pad:')} *{label}* by {who}: {item.text}"


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
