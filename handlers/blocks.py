"""Block Kit and message text for incidents: pure functions from domain values to Slack payloads.

Titles and texts are kept as Slack sends slash-command text (mrkdwn with `&`, `<`, `>` escaped, mentions
as markup), so they are shown as they are; the declare form escapes its plain-text input on the way in.
Every message is built from handlers.mrkdwn's pieces, so none passes a Slack limit whatever was typed:
long text is split over sections (the summary) or shortened visibly, never cut inside markup.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from bot.incidents.commands import help_text
from bot.incidents.service import Changed
from bot.incidents.values import (
    DEFAULT_SEVERITY,
    MAX_TEXT_LENGTH,
    MAX_TITLE_LENGTH,
    NOTE_KINDS,
    OPERATOR,
    OPERATOR_NAME,
    EntryKind,
    Incident,
    Role,
    Severity,
    Status,
)
from bot.wording import counted
from handlers import mrkdwn
from handlers.mrkdwn import Block
NameOf = Callable[[str], str]  # user id -> a display name, for places where mentions do not render

SEVERITY_ICON = {
    Severity.SEV1: ":red_circle:",
    Severity.SEV2: ":large_orange_circle:",
    Severity.SEV3: ":large_yellow_circle:",
    Severity.SEV4: ":white_circle:",
}
MAX_TOPIC = mrkdwn.TOPIC
MAX_DESCRIPTION = MAX_TEXT_LENGTH  # what the form takes, before escaping (up to 5 times as long after)
DECLARE_CALLBACK = "incident_declare"
ARCHIVED = " (:file_cabinet: archived: `incident-bot resolve|close` ends it)"  # after the channel in `/incident list`
RETRY_PROVISION_ACTION = "incident_retry_provision"


def icon(incident: Incident) -> str:
    if incident.status is Status.CLOSED:
        return ":lock:"
    if incident.status is Status.RESOLVED:
        return ":white_check_mark:"
    return SEVERITY_ICON[incident.severity]


def channel_link(incident: Incident) -> str:
    if incident.channel_id is None:
        return f"incident {incident.number} (no channel yet)"
    return f"<#{incident.channel_id}|{incident.channel_name or incident.channel_id}>"


def incident_reference(incident: Incident) -> str:
    """The incident as named where anyone may read it (the alerts and announcement channels): its number
    and channel; a private one by its number only, since even a `<#C…>` link names its channel to its
    members and says that it exists to everyone else."""
    if incident.private:
        return f":lock: incident {incident.number} (private)"
    return f"incident {incident.number}, {channel_link(incident)}"


def slack_date(moment: datetime) -> str:
    """A time every reader sees in their own time zone, with a UTC fallback."""
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def actor(actor_id: str) -> str:
    """Who made a change: a mention, or the operator when it came from `incident-bot resolve|close`."""
    return OPERATOR_NAME if actor_id == OPERATOR else f"<@{actor_id}>"


def mention(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "_unassigned_"


def topic(incident: Incident, name_of: NameOf) -> str:
    commander = mrkdwn.escape(name_of(incident.commander)) if incident.commander else "none yet"  # a name, plain text
    text = (
        f"{incident.severity.label} · {incident.status.label} · Commander: {commander} · "
        f"Incident {incident.number}: {incident.title}"
    )
    return mrkdwn.clip(text, MAX_TOPIC)


def summary(incident: Incident) -> tuple[str, list[Block]]:
    """The pinned summary message, kept current in place. Nothing is left out: a description or
    resolution longer than one section (the form's 2,900 characters can be 14,500 once escaped)
    continues in the next sections."""
    headline = f"{icon(incident)} Incident {incident.number}: {incident.title}"
    fields = [
        ("Severity", incident.severity.label),
        ("Status", incident.status.label),
        ("Commander", mention(incident.roles.get(Role.COMMANDER))),
        ("Comms lead", mention(incident.roles.get(Role.COMMS))),
        ("Scribe", mention(incident.roles.get(Role.SCRIBE))),
        ("Reported by", mention(incident.reporter_id)),
        ("Declared", slack_date(incident.declared_at)),
    ]
    if incident.resolved_at:
        fields.append(("Resolved", slack_date(incident.resolved_at)))
    if incident.closed_at:
        fields.append(("Closed", slack_date(incident.closed_at)))
    if incident.private:
        fields.append(("Visibility", ":lock: Private: announced without its title, not named outside this channel"))
    blocks: list[Block] = [
        mrkdwn.section(f"*{headline}*"),
        mrkdwn.fields([f"*{name}*\n{value}" for name, value in fields]),
    ]
    if incident.description:
        blocks += mrkdwn.sections(f"*Description*\n{incident.description}")
    if incident.resolution_summary:
        blocks += mrkdwn.sections(f"*Resolution*\n{incident.resolution_summary}")
    blocks.append(mrkdwn.context(f"Last change {slack_date(incident.updated_at)} · `/incident help` lists the commands"))
    text = f"Incident {incident.number}: {incident.title} — {incident.severity.label}, {incident.status.label}"
    return mrkdwn.message(text, blocks)


def declared_announcement(incident: Incident, *, made_private: bool = False, channel_private: bool = False) -> str:
    """The incident's announcement: who declared what, and where to help (not in an archived channel:
    what the bot says of it then is in this announcement's thread). A private incident's says only that
    it was declared (or, `made_private`, made private later), its severity and who leads it: no title, no
    channel (docs/design.md). It calls the channel private only when Slack said so (`channel_private`:
    conversations.create or conversations.info answered `is_private`, or the Admin API converted it):
    a channel made private by `/incident private` stays public until a person converts it."""
    if incident.private:
        lead = incident.commander or incident.reporter_id
        severity = f"{SEVERITY_ICON[incident.severity]} *{incident.severity.label}*"
        what = (f"{severity} incident {incident.number} was made private" if made_private
                else f"A private {severity} incident (incident {incident.number}) was declared")
        where = "Its channel is private" if channel_private else "Its details are kept in its channel"
        return mrkdwn.fallback(f":rotating_light: :lock: {what}; <@{lead}> leads it.\n{where}: if you should be in it, ask them.")
    where = (f"Join {channel_link(incident)} to help." if incident.channel_archived_at is None
             else ":file_cabinet: Its channel is archived: follow this thread.")
    return mrkdwn.fallback(
        f":rotating_light: {SEVERITY_ICON[incident.severity]} *{incident.severity.label}* incident {incident.number} "
        f"declared by <@{incident.reporter_id}>: *{incident.title}*\n{where}"
    )


def postmortem_posted(incident: Incident, version: int, problem: str | None) -> str:
    """The comment on the uploaded draft; `problem` (a template's error, plain text) is escaped."""
    text = (f":memo: *Postmortem draft, version {version}*, for incident {incident.number}. The timeline, times and figures "
            "come from what was recorded; the parts marked *[To be written]* need you. "
            "`/incident postmortem` drafts a new version from the record as it is then.")
    if problem:
        text += f"\n:warning: The team's template could not be used, so this draft uses the default one: {mrkdwn.escape(problem)}"
    return mrkdwn.fallback(text)


def postmortem_link(version: int, permalink: str | None) -> str:
    where = f"<{permalink}|version {version}>" if permalink else f"version {version}, in the incident channel"
    return f":memo: Postmortem draft: {where}"


def change_message(change: Changed) -> tuple[str, list[Block]]:
    """What the incident channel is told about a change: all of it, in as many sections as it takes
    (an update can be 2,900 characters as typed, five times that as Slack escapes it)."""
    words = _change_words(change)
    return mrkdwn.message(words, mrkdwn.sections(words))


def _change_words(change: Changed) -> str:
    incident, who = change.incident, actor(change.actor_id)
    match change.kind:
        case EntryKind.STATUS_CHANGED:
            return f":arrows_counterclockwise: {who} changed the status: {label_of(Status, change.before)} → *{incident.status.label}*"
        case EntryKind.SEVERITY_CHANGED:
            return f"{SEVERITY_ICON[incident.severity]} {who} changed the severity: {label_of(Severity, change.before)} → *{incident.severity.label}*"
        case EntryKind.ROLE_ASSIGNED:
            role = Role(change.data["role"])
            previous = f" (was <@{change.before}>)" if change.before else ""
            return f":bust_in_silhouette: <@{change.after}> is now the *{role.label.lower()}*{previous}, named by {who}"
        case EntryKind.UPDATE:
            return f":memo: *Status update* from {who}:\n{change.text}"
        case EntryKind.RESOLVED:
            summary_text = f"\n>{change.text}" if change.text else ""
            return f":white_check_mark: {who} marked incident {incident.number} *resolved*.{summary_text}"
        case EntryKind.CLOSED:
            return f":lock: {who} closed incident {incident.number}. Thank you, everyone."
        case EntryKind.MADE_PRIVATE:
            return (f":lock: {who} made incident {incident.number} *private*: its announcement now leaves out the title "
                    "and this channel, nothing more is announced, and pagers get only its number and severity.")
    if change.kind in NOTE_KINDS or change.kind is EntryKind.NOTE:
        label = "note" if change.kind is EntryKind.NOTE else f"{change.kind.value} note"
        return f":spiral_note_pad: {who} added a {label} to the timeline: {change.text}"
    return f"{who}: {change.kind.value}"


def change_announcement(change: Changed) -> tuple[str, list[Block]] | None:
    """What the announcement channel is told about a change, all of it (as `change_message`); None for
    changes only the channel needs, and for every change of a private incident."""
    if change.incident.private:
        return None
    words = _announcement_words(change)
    return None if words is None else mrkdwn.message(words, mrkdwn.sections(words))


def _announcement_words(change: Changed) -> str | None:
    incident = change.incident
    where = f"Incident {incident.number} ({channel_link(incident)}, _{incident.title}_)"
    match change.kind:
        case EntryKind.STATUS_CHANGED:
            return f":arrows_counterclockwise: {where} is now *{incident.status.label}* (was {label_of(Status, change.before)})."
        case EntryKind.SEVERITY_CHANGED:
            return f"{SEVERITY_ICON[incident.severity]} {where} is now *{incident.severity.label}* (was {label_of(Severity, change.before)})."
        case EntryKind.UPDATE:
            return f":memo: Update on {where} from {actor(change.actor_id)}:\n{change.text}"
        case EntryKind.RESOLVED:
            summary_text = f"\n>{change.text}" if change.text else ""
            return f":white_check_mark: {where} is *resolved*.{summary_text}"
        case EntryKind.CLOSED:
            return f":lock: {where} is *closed*."
    return None


def changes_topic(change: Changed) -> bool:
    return change.kind in (EntryKind.STATUS_CHANGED, EntryKind.SEVERITY_CHANGED, EntryKind.RESOLVED, EntryKind.CLOSED) or (
        change.kind is EntryKind.ROLE_ASSIGNED and change.data.get("role") == Role.COMMANDER.value
    )


LIST_UNKNOWN_MEMBERSHIP = ("_Slack did not say in time who is in the private incidents' channels, so those are shown "
                           "as to someone not in them: `/incident summary` in an incident's channel shows it whole._")


def open_incidents(incidents: list[Incident], now: datetime, *, members_of: Collection[int] = frozenset(),
                   unknown: Collection[int] = frozenset()) -> tuple[str, list[Block]]:
    """`/incident list`: one line per incident, packed into sections; past what one message holds, a
    last line says how many more there are. A private incident is shown whole only when its id is in
    `members_of` (the caller is in its channel); otherwise it is counted, not named: its number and how
    long it has been open, no title, channel or commander, nor its severity or status (which would tell
    its changes, never announced). `unknown`: ids of private incidents Slack did not say the caller's
    membership of (handlers.private.members_of); when one of them is counted, a last line says why."""
    if not incidents:
        return mrkdwn.message("No open incidents.", [mrkdwn.section(":sunny: No open incidents.")])
    lines = [_listed(i, now) if not i.private or i.id in members_of else _counted(i, now) for i in incidents]
    unsaid = any(i.private and i.id in unknown and i.id not in members_of for i in incidents)
    chunks = mrkdwn.pack(lines, mrkdwn.SECTION_TEXT)
    room = mrkdwn.MESSAGE_BLOCKS - (2 if unsaid else 1)  # the count's block, and the line saying why
    if len(chunks) > room:  # a line each, so the lines left out are the incidents left out
        shown = chunks[: room - 1]
        hidden = len(lines) - sum(chunk.count("\n") + 1 for chunk in shown)
        chunks = [*shown, f"_…and {hidden:,} more open incidents, not shown: one message holds no more._"]
    count = counted(len(incidents), 'open incident')
    blocks = [mrkdwn.section(f"*{count}*")]
    blocks += [mrkdwn.section(chunk) for chunk in chunks]
    if unsaid:
        blocks.append(mrkdwn.context(LIST_UNKNOWN_MEMBERSHIP))
    return mrkdwn.message(count, blocks)


def _listed(incident: Incident, now: datetime) -> str:
    private = " · :lock: private" if incident.private else ""
    return (f"{icon(incident)} *{incident.number}* {incident.title} · {incident.severity.label} · {incident.status.label}{private} · "
            f"{channel_link(incident)}{ARCHIVED if incident.channel_archived_at else ''} · commander {mention(incident.commander)} · "
            f"open for {_duration(now - incident.declared_at)}")


def _counted(incident: Incident, now: datetime) -> str:
    return f":lock: Incident {incident.number} · private · open for {_duration(now - incident.declared_at)}"


def help_message() -> str:
    return mrkdwn.placeholders(f"*`/incident` sub-commands*\n{help_text()}")


def usage_error(message: str, usage: str) -> str:
    return mrkdwn.fallback(mrkdwn.placeholders(f":warning: {message}\n{usage}"))


def not_an_incident_channel() -> str:
    return (
        ":mag: This channel is not an incident's channel. Run that sub-command in the incident's own channel; "
        "`/incident list` shows the open incidents and their channels."
    )


PRIVATE_OPTION = "private"


def declare_form(origin_channel: str | None, *, private: bool = False, severity: Severity | None = None) -> dict[str, Any]:
    """The declare modal. Its inputs take plain text, escaped on submission: the description's 2,900
    characters may grow to 14,500 then, which the summary splits over sections. The origin channel
    rides in private_metadata (a channel id, far under its 3,000). `private`: the Private box ticked;
    `severity`: the one chosen (default SEV3)."""
    options = [{"text": mrkdwn.plain(s.label, mrkdwn.OPTION_TEXT), "value": s.value} for s in Severity]
    private_option = {
        "text": mrkdwn.plain("Private incident", mrkdwn.OPTION_TEXT),
        "description": mrkdwn.plain("A private channel; the announcement leaves the title out", mrkdwn.OPTION_TEXT),
        "value": PRIVATE_OPTION,
    }
    private_element: dict[str, Any] = {"type": "checkboxes", "action_id": "value", "options": [private_option]}
    if private:
        private_element["initial_options"] = [private_option]
    metadata = origin_channel or ""
    if mrkdwn.length(metadata) > mrkdwn.PRIVATE_METADATA:
        raise ValueError("private_metadata holds a channel id, at most 3,000 characters")
    return {
        "type": "modal",
        "callback_id": DECLARE_CALLBACK,
        "title": mrkdwn.plain("Declare an incident", mrkdwn.MODAL_TITLE),
        "submit": mrkdwn.plain("Declare", mrkdwn.MODAL_BUTTON),
        "close": mrkdwn.plain("Cancel", mrkdwn.MODAL_BUTTON),
        "private_metadata": metadata,
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "max_length": MAX_TITLE_LENGTH,
                    "placeholder": {"type": "plain_text", "text": "Checkout is timing out"},
                },
            },
            {
                "type": "input",
                "block_id": "severity",
                "label": {"type": "plain_text", "text": "Severity"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": options,
                    "initial_option": options[list(Severity).index(severity or DEFAULT_SEVERITY)],
                },
            },
            {
                "type": "input",
                "block_id": "description",
                "optional": True,
                "label": {"type": "plain_text", "text": "What is happening?"},
                "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": MAX_DESCRIPTION},
            },
            {
                "type": "input",
                "block_id": "private",
                "optional": True,
                "label": {"type": "plain_text", "text": "Visibility"},
                "element": private_element,
            },
        ],
    }


def declared_to_reporter(incident: Incident) -> str:
    """What the person who declared is told once the incident's channel is set up (slash command: in
    place of "Declaring…"; the declare form: by direct message)."""
    return f":white_check_mark: Incident {incident.number} declared: {channel_link(incident)}. You're in it."


def already_declared(incident: Incident) -> str:
    """What a declaration that opened nothing is told: the same request again (a retry, a form submitted
    twice), or the same title from the same person just now (IncidentService.declare)."""
    return (f":information_source: Incident {incident.number} (“{incident.title}”) was already declared "
            f"by <@{incident.reporter_id}>: {channel_link(incident)}. Nothing new was opened; "
            "to declare a separate incident, give it a different title.")


def provisioning_failed(incident: Incident, step: str, error: str) -> tuple[str, list[Block]]:
    """`step` is the bot's own words (mrkdwn); `error`, Slack's code or an exception's name, is escaped."""
    text = (
        f":warning: Incident {incident.number} is recorded, but {step} failed: Slack said `{mrkdwn.escape(error)}`. "
        "Fix the cause (the bot's scopes, or invite the bot to the channel) and press Retry; "
        "the bot also retries when it restarts."
    )
    button = mrkdwn.button("Retry", RETRY_PROVISION_ACTION, str(incident.id))
    return mrkdwn.message(text, [mrkdwn.section(text), mrkdwn.actions([button])])


def label_of(enum: type[Status] | type[Severity], value: Any) -> str:
    """The label of a stored status or severity; "none" for a value that is missing or unknown."""
    try:
        return enum(value).label
    except ValueError:
        return "none"


def _duration(delta: Any) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours // 24} days"

