"""Block Kit for diagnostics: results as compact tables (the headline figure first), the list of checks
and targets, and the watchdog's alerts.

What a database says (cells, headlines, errors) and target names from the config are plain text: they
are escaped before they reach mrkdwn, and a table keeps the rows that fit one section, saying how many
more there are (handlers.mrkdwn)."""

from __future__ import annotations

from typing import Any

from bot.diagnostics.drivers import Table
from bot.diagnostics.service import RunOutcome
from handlers import mrkdwn
from handlers.mrkdwn import escape

WATCHDOG_DECLARE_ACTION = "watchdog_declare"
CELL = 32  # characters a cell keeps; a table is for scanning, the run is stored whole
TABLE_ROWS = 10

FAILURE_ICON = {"refused": ":no_entry:", "unreachable": ":electric_plug:", "timeout": ":hourglass:", "busy": ":hourglass:"}


def result_message(outcome: RunOutcome, user_id: str | None) -> tuple[str, list[dict[str, Any]]]:
    """A check's result: the headline, who ran it where, a table per result table (as many as one
    message holds; the run is stored whole), and the driver's notes."""
    who = f" · run by <@{user_id}>" if user_id else ""
    target = escape(outcome.target)
    context = f"`{escape(outcome.check)}` on *{target}* · {outcome.duration_ms} ms{who} · read-only"
    if not outcome.ok:
        icon = FAILURE_ICON.get(outcome.outcome, ":warning:")
        text = f"{icon} *{target}*: {escape(outcome.headline)}"
        if outcome.outcome == "refused":
            text += "\nThat is itself the finding: the server has no connection left to give."
        return mrkdwn.message(text, [mrkdwn.section(text), mrkdwn.context(context)])
    assert outcome.result is not None
    headline = escape(outcome.result.headline)
    blocks = [mrkdwn.section(f":bar_chart: *{headline}*"), mrkdwn.context(context)]
    notes = [mrkdwn.context(" · ".join(escape(note) for note in outcome.result.notes))] if outcome.result.notes else []
    tables = [mrkdwn.section(render_table(table)) for table in outcome.result.tables]
    tables = mrkdwn.at_most(tables, mrkdwn.MESSAGE_BLOCKS - len(blocks) - len(notes),
                            "…and {count} more tables, not shown: one message holds no more (the run is stored whole).")
    return mrkdwn.message(f"{target} {escape(outcome.check)}: {headline}", [*blocks, *tables, *notes])


def render_table(table: Table) -> str:
    """A monospace table that fits one section (3,000): its first rows (at most TABLE_ROWS, as many as
    fit), then how many more there are. Cells are cut to CELL characters and escaped after padding, so
    the columns line up as people see them."""
    title = f"*{escape(table.title)}*"
    if not table.rows:
        return f"{title}: none"
    rows = [[_cell(value) for value in row] for row in table.rows[:TABLE_ROWS]]
    header = [_cell(c) for c in table.columns]
    widths = [max(len(r[i]) if i < len(r) else 0 for r in [header, *rows]) for i in range(len(header))]
    lines = [escape("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip()) for row in [header, *rows]]
    for shown in range(len(rows), -1, -1):
        more = len(table.rows) - shown
        text = f"{title}\n```{chr(10).join(lines[: shown + 1])}```" + (f"\n… and {more:,} more" if more else "")
        if mrkdwn.length(text) <= mrkdwn.SECTION_TEXT:
            return text
    return mrkdwn.fit(text, mrkdwn.SECTION_TEXT)  # even the header row is too wide: shortened, fence closed


def list_message(targets: dict[str, tuple[str, ...]]) -> str:
    if not targets:
        return ":information_source: No diagnostics targets are configured (`[diagnostics.targets.&lt;name&gt;]`)."
    lines = [f"• *{escape(name)}*: {', '.join(f'`{c}`' for c in checks) or 'no checks (unsupported URL)'}" for name, checks in targets.items()]
    return mrkdwn.fallback("*Read-only checks, by target*\n" + "\n".join(lines) + "\nRun one with `/incident diag &lt;check&gt; [target]`.")


def watchdog_alert(alert_id: int, target: str, reasons: list[str], headline: str, declared: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The watchdog's alert in the announcement channel; `declared` (mrkdwn) once an incident is."""
    name = escape(target)
    text = f":rotating_light: *Watchdog: connection trouble on {name}*\n" + "\n".join(f"• {escape(r)}" for r in reasons)
    blocks = [mrkdwn.section(text), mrkdwn.context(f"Snapshot: {escape(headline)}")]
    if declared:
        blocks.append(mrkdwn.section(f":white_check_mark: Declared: {declared}"))
    else:
        blocks.append(mrkdwn.actions([mrkdwn.button("Declare incident", WATCHDOG_DECLARE_ACTION, str(alert_id), style="danger")]))
    return mrkdwn.message(f"Watchdog: connection trouble on {name}", blocks)


def watchdog_cleared(target: str, headline: str) -> str:
    return mrkdwn.fallback(f":white_check_mark: Watchdog: *{escape(target)}* is back to normal. {escape(headline)}")


def _cell(value: object) -> str:
    text = "—" if value is None else str(value)
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= CELL else text[: CELL - 1] + "…"

