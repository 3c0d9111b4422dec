"""Block Kit for the read-in (bot/readin): where an incident stands, for one person, in one message.

Within Slack's limits by construction (handlers/mrkdwn.py): each list (ruled out, hypotheses, key
events, pages, diagnostics, follow-ups) is one section of at most 3,000 characters holding its newest
entries, each shortened visibly past ENTRY characters, and says how many earlier ones it left out and
where they are; so a message has at most a dozen blocks whatever was recorded.

Times are Slack dates (`<!date^…>`), which every reader sees in their own zone, each with its day
(`{date_short_pretty}`: "today", "yesterday" or the date, in the reader's zone: a day judged in the
configured zone would be wrong for a reader elsewhere), and a fallback in the configured zone with its
date (Slack: "Formatting text for app surfaces", date formatting). Ages ("5 min ago") are
as of the moment the read-in was built, which its last line gives. Mentions (`<@U…>`) render as names.
Text people typed is mrkdwn as Slack sent it; configured names and what databases and pagers said are
plain text, escaped here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, tzinfo

from bot.incidents.values import Status
from bot.readin.content import DiagnosticResult, PageState, ReadIn, Said, WatchdogReading
from bot.wording import counted
from handlers import mrkdwn
from handlers.blocks import SEVERITY_ICON, actor, mention
from handlers.diagnostics_blocks import FAILURE_ICON
from handlers.mrkdwn import Block, escape
from handlers.paging_blocks import acknowledger, team_name

ENTRY = 600  # characters one entry shows; the timeline keeps it whole
DESCRIPTION = 600
UPDATE = 1500
TIMELINE = "`/incident timeline`"
LEFT_OUT = 80  # room kept in a list's section for the line saying what it left out


def message(readin: ReadIn, zone: tzinfo) -> tuple[str, list[Block]]:
    """The read-in as a message: `(text, blocks)` for chat.postEphemeral or an ephemeral answer."""
    def at(moment: datetime) -> str:
        return when(moment, zone)

    blocks: list[Block] = [_heading(readin, at), _state(readin, at), _latest_update(readin, at)]
    if readin.resolution is not None:
        done = readin.resolution
        summary = f": {mrkdwn.fit(done.text, ENTRY, where=TIMELINE)}" if done.text else ""
        blocks.append(mrkdwn.section(f":white_check_mark: *Resolved* {at(done.at)} by {_who(done.who)}{summary}"))
    if readin.ruled_out:
        blocks.append(listing(":no_entry_sign: *Already ruled out*: tried, and it was not that",
                              [_said(s, at) for s in readin.ruled_out], "ruled-out paths"))
    if readin.hypotheses:
        blocks.append(listing(":thinking_face: *Hypotheses recorded*", [_said(s, at) for s in readin.hypotheses], "hypotheses"))
    if readin.key_events:
        blocks.append(listing(":pushpin: *Key events*", [_key_event(s, at) for s in readin.key_events], "key events"))
    if readin.pages:
        blocks.append(listing(":pager: *Open pages*", [_page(p, readin.now, at) for p in readin.pages], "open pages",
                              where="the page messages in this channel"))
    diagnostics = _diagnostics(readin.diagnostics, readin.watchdog, readin.now, at)
    if diagnostics:
        watched = ", and the watchdog" if readin.watchdog else ""
        blocks.append(listing(f":bar_chart: *Diagnostics*: last result per target{watched}", diagnostics, "targets",
                              where="`/incident diag list`"))
    if readin.followups:
        blocks.append(listing(":ballot_box_with_check: *Open follow-ups*",
                              [f"• {mrkdwn.fit(f.text, ENTRY)} · owner {mention(f.owner_id)} · added {at(f.added_at)} by {_who(f.added_by)}"
                               for f in readin.followups], "follow-ups"))
    blocks.append(mrkdwn.context(f"As of {at(readin.now)} · only you can see this · {TIMELINE} has every entry; "
                                 "`/incident summary` shows this again"))
    count = len(readin.ruled_out)
    ruled_out = f"; {counted(count, 'path')} already ruled out" if count else ""
    text = (f"Where incident {readin.number} stands: {readin.title} — {readin.severity.label}, "
            f"{readin.status.label}{ruled_out}")
    return mrkdwn.message(text, blocks)


def listing(heading: str, lines: Sequence[str], what: str, *, where: str = TIMELINE) -> Block:
    """One section: `heading`, then as many of the newest `lines` (oldest first, each shortened to
    ENTRY) as fit in 3,000 characters, shown oldest first, and how many earlier `what` were left out."""
    fitted = [mrkdwn.fit(line, ENTRY, where=TIMELINE) for line in lines]
    room = mrkdwn.SECTION_TEXT - mrkdwn.length(heading) - LEFT_OUT - mrkdwn.length(where)
    shown: list[str] = []
    for line in reversed(fitted):
        size = mrkdwn.length(line) + 1
        if size > room:
            break
        shown.append(line)
        room -= size
    left = len(fitted) - len(shown)
    text = "\n".join([heading, *reversed(shown)])
    if left:
        text += f"\n_…and {left:,} earlier {what} not shown here: {where}_"
    return mrkdwn.section(text)


def when(moment: datetime, zone: tzinfo) -> str:
    """A Slack date with its day and time, both in the reader's zone ("today 09:40", "Nov 11, 2023
    23:10"); the fallback, for clients that cannot render it, in `zone`, with its date."""
    local = moment.astimezone(zone)
    stamp, name = int(moment.timestamp()), local.tzname() or "UTC"
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{local:%Y-%m-%d %H:%M} {name}>"


def span(delta: timedelta) -> str:
    """A duration in short words: "40 s", "45 min", "2 h 05 min", "3 days"."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours // 24} days"


def ago(moment: datetime, now: datetime) -> str:
    return "just now" if now - moment < timedelta(minutes=1) else f"{span(now - moment)} ago"


# -- the parts -------------------------------------------------------------------------------------


def _heading(readin: ReadIn, at: Callable[[datetime], str]) -> Block:
    icon = ":lock:" if readin.status is Status.CLOSED else SEVERITY_ICON[readin.severity]
    lines = [f"{icon} *Where incident {readin.number} stands: {readin.title}*",
             f"Declared {at(readin.declared_at)} ({ago(readin.declared_at, readin.now)}) by {_who(readin.reporter_id)}"]
    if readin.description:
        lines.append(mrkdwn.quote(mrkdwn.fit(readin.description, DESCRIPTION, where="the pinned summary")))
    return mrkdwn.section("\n".join(lines))


def _state(readin: ReadIn, at: Callable[[datetime], str]) -> Block:
    fields = [
        f"*Severity*\n{readin.severity.label}",
        f"*Status*\n{readin.status.label} for {span(readin.now - readin.status_since)} (since {at(readin.status_since)})",
    ]
    for holder in readin.roles:
        since = f" · since {at(holder.since)}" if holder.user_id and holder.since else ""
        fields.append(f"*{holder.role.label}*\n{mention(holder.user_id)}{since}")
    if readin.private:
        fields.append("*Visibility*\n:lock: Private: not named outside this channel")
    return mrkdwn.fields(fields)


def _latest_update(readin: ReadIn, at: Callable[[datetime], str]) -> Block:
    update = readin.latest_update
    if update is None and readin.status is Status.CLOSED:  # a closed incident takes no update: no hint to post one
        return mrkdwn.section(":memo: *Latest status update*: none was posted")
    if update is None:
        return mrkdwn.section(":memo: *Latest status update*: none posted yet (`/incident update &lt;text&gt;` posts one)")
    text = mrkdwn.quote(mrkdwn.fit(update.text, UPDATE, where=TIMELINE))
    return mrkdwn.section(f":memo: *Latest status update* {at(update.at)} ({ago(update.at, readin.now)}) "
                          f"by {_who(update.who)}\n{text}")


def _said(said: Said, at: Callable[[datetime], str]) -> str:
    return f"• {at(said.at)} {said.text} — {_who(said.who)}"


def _key_event(said: Said, at: Callable[[datetime], str]) -> str:
    link = f" <{said.link}|·>" if said.link else ""
    return f"• {at(said.at)} {_who(said.who)}: {said.text}{link}"


def _page(page: PageState, now: datetime, at: Callable[[datetime], str]) -> str:
    by = f"by {_who(page.requested_by)}" if page.requested_by else "by the bot"
    source = f", escalated from *{team_name(page.escalated_from)}*" if page.escalated_from else ""
    line = f"• *{team_name(page.team)}* paged {at(page.requested_at)} ({ago(page.requested_at, now)}) {by}{source} · "
    if page.acknowledged_at is not None:
        return line + f":white_check_mark: acknowledged by {acknowledger(page.acknowledged_by)} {at(page.acknowledged_at)}"
    if page.escalated_at is not None:
        to = f" to *{team_name(page.escalates_to)}*" if page.escalates_to else ""
        return line + f":arrow_double_up: not acknowledged in time: escalated{to} {at(page.escalated_at)}"
    line += ":hourglass_flowing_sand: not acknowledged yet"
    if page.escalates_to and page.escalation_due_at:
        line += f"; escalates to *{team_name(page.escalates_to)}* at {at(page.escalation_due_at)} unless acknowledged"
    return line


def _diagnostics(results: list[DiagnosticResult], readings: list[WatchdogReading], now: datetime,
                 at: Callable[[datetime], str]) -> list[str]:
    """A line per target: its last check's result, then what the watchdog sees there now."""
    last = {r.target: r for r in results}
    watched = {w.target: w for w in readings}
    lines = []
    for target in sorted(set(last) | set(watched)):
        parts = [f"• *{escape(target)}*"]
        if target in last:
            result = last[target]
            icon = "" if result.outcome == "ok" else FAILURE_ICON.get(result.outcome, ":warning:") + " "
            parts.append(f"`{escape(result.check)}` {at(result.at)} by {_who(result.who)}: {icon}{escape(result.headline)}")
        if target in watched:
            parts.append(_watchdog(watched[target], now, at))
        lines.append("\n    ".join(parts))  # the target, then what was found there, a line each
    return lines


def _watchdog(reading: WatchdogReading, now: datetime, at: Callable[[datetime], str]) -> str:
    """What the watchdog sees on a target: its open alert, else calm only when its latest sample has
    figures. A sample without them (the target unreachable, refusing connections, a failed check) is
    said as such, with how long the samples have been failing: calm is never claimed for what the
    watchdog could not read."""
    alerting = None
    if reading.alerting_since is not None:
        reasons = "; ".join(escape(r) for r in reading.reasons) or "connection trouble"
        alerting = f"watchdog :rotating_light: alerting since {at(reading.alerting_since)}: {reasons}"
    if reading.taken_at is None:
        return f"{alerting}; not sampled yet" if alerting else "watchdog: not sampled yet"
    sampled = f"latest sample {at(reading.taken_at)} ({ago(reading.taken_at, now)})"
    if reading.problem:
        problem = escape(reading.problem)
        if alerting is not None:
            return f"{alerting}; {sampled}: {problem}"
        since = reading.failing_since or reading.taken_at  # every sample since then failed
        return f"watchdog :warning: not read since {at(since)}: {problem} (latest try {ago(reading.taken_at, now)})"
    state = alerting or "watchdog :large_green_circle: calm"
    figures = []
    if reading.in_use is not None:
        usage = reading.usage_percent
        figures.append(f"{reading.in_use}" + (f" of {reading.usable}" if reading.usable else "") + " connections in use"
                       + (f" ({usage:.0f}%)" if usage is not None else ""))
    if reading.idle_in_transaction:
        oldest = reading.oldest_idle_in_transaction_seconds
        figures.append(f"{reading.idle_in_transaction} idle in a transaction"
                       + (f", the oldest for {span(timedelta(seconds=oldest))}" if oldest is not None else ""))
    return f"{state}; {sampled}: {', '.join(figures) or 'no figures'}"


def _who(user_id: str | None) -> str:
    """A person as a mention (Slack shows the name), the operator's CLI as such; the bot when nobody is named."""
    return actor(user_id) if user_id else "the bot"
