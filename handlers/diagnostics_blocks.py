"""Block Kit for diagnostics: results as compact tables (the headline figure first), the list of checks
and targets, and the watchdog's alerts."""

from __future__ import annotations

from typing import Any

from bot.diagnostics.drivers import Table
from bot.diagnostics.service import RunOutcome

WATCHDOG_DECLARE_ACTION = "watchdog_declare"
CELL = 32  # characters a cell keeps; a table is for scanning, the run is stored whole
TABLE_ROWS = 10

FAILURE_ICON = {"refused": ":no_entry:", "unreachable": ":electric_plug:", "timeout": ":hourglass:", "busy": ":hourglass:"}


def result_message(outcome: RunOutcome, user_id: str | None) -> tuple[str, list[dict[str, Any]]]:
    who = f" · run by <@{user_id}>" if user_id else ""
    context = f"`{outcome.check}` on *{outcome.target}* · {outcome.duration_ms} ms{who} · read-only"
    if not outcome.ok:
        icon = FAILURE_ICON.get(outcome.outcome, ":warning:")
        text = f"{icon} *{outcome.target}*: {outcome.headline}"
        if outcome.outcome == "refused":
            text += "\nThat is itself the finding: the server has no connection left to give."
        return text, [_section(text), _context(context)]
    assert outcome.result is not None
    blocks = [_section(f":bar_chart: *{outcome.result.headline}*"), _context(context)]
    for table in outcome.result.tables:
        blocks.append(_section(render_table(table)))
    if outcome.result.notes:
        blocks.append(_context(" · ".join(outcome.result.notes)))
    return f"{outcome.target} {outcome.check}: {outcome.result.headline}", blocks[:50]


def render_table(table: Table) -> str:
    """A monospace table that fits one Slack text block."""
    if not table.rows:
        return f"*{table.title}*: none"
    rows = [[_cell(value) for value in row] for row in table.rows[:TABLE_ROWS]]
    header = [_cell(c) for c in table.columns]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip() for row in [header, *rows]]
    more = f"\n… and {len(table.rows) - TABLE_ROWS} more" if len(table.rows) > TABLE_ROWS else ""
    body = "\n".join(lines)[:2700]
    return f"*{table.title}*\n```{body}```{more}"


def list_message(targets: dict[str, tuple[str, ...]]) -> str:
    if not targets:
        return ":information_source: No diagnostics targets are configured (`[diagnostics.targets.<name>]`)."
    lines = [f"• *{name}*: {', '.join(f'`{c}`' for c in checks) or 'no checks (unsupported URL)'}" for name, checks in targets.items()]
    return "*Read-only checks, by target*\n" + "\n".join(lines) + "\nRun one with `/incident diag <check> [target]`."


def watchdog_alert(alert_id: int, target: str, reasons: list[str], headline: str, declared: str | None) -> tuple[str, list[dict[str, Any]]]:
    text = f":rotating_light: *Watchdog: connection trouble on {target}*\n" + "\n".join(f"• {r}" for r in reasons)
    blocks = [_section(text), _context(f"Snapshot: {headline}")]
    if declared:
        blocks.append(_section(f":white_check_mark: Declared: {declared}"))
    else:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "style": "danger", "text": {"type": "plain_text", "text": "Declare incident"},
            "action_id": WATCHDOG_DECLARE_ACTION, "value": str(alert_id),
        }]})
    return f"Watchdog: connection trouble on {target}", blocks


def watchdog_cleared(target: str, headline: str) -> str:
    return f":white_check_mark: Watchdog: *{target}* is back to normal. {headline}"


def _cell(value: object) -> str:
    text = "—" if value is None else str(value)
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= CELL else text[: CELL - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
