"""Block Kit for pages: the page message in the incident channel, kept current as the page moves."""

from __future__ import annotations

from typing import Any

from bot.config import TeamSection
from bot.paging.service import PageView
from handlers.blocks import slack_date
from handlers.invites import describe

ACKNOWLEDGE_ACTION = "page_acknowledge"
RETRY_ACTION = "page_retry"


def reach(team: TeamSection) -> str:
    ways = [name for name, key in (("PagerDuty", team.pagerduty_routing_key), ("Opsgenie", team.opsgenie_api_key)) if key]
    ways += [f"<@{member}>" for member in team.slack_members]
    return " · ".join(ways) or "nobody (the team has no contact configured)"


def page_message(page: PageView, display_name: str, team: TeamSection, incident_number: int) -> tuple[str, list[dict[str, Any]]]:
    who = f"<@{page.requested_by}>" if page.requested_by else "the bot (escalation)"
    lines = [f":pager: *Paging {display_name}* for incident {incident_number}, requested by {who}"]
    if page.message:
        lines.append(f">{page.message}")
    lines.append(f"Reaching: {reach(team)}")
    if page.invitation is not None:
        lines.append(describe(page.invitation))
    if page.deliveries:
        lines.append(" · ".join(
            f"{name}: :white_check_mark: sent" if d.get("ok") else f"{name}: :x: failed ({d.get('error')})"
            for name, d in page.deliveries.items()
        ))
    elif page.status == "sending":
        lines.append(":hourglass_flowing_sand: sending…")
    if page.acknowledged_at:
        by = f"<@{page.acknowledged_by}>" if (page.acknowledged_by or "").startswith(("U", "W")) and " " not in (page.acknowledged_by or "") else page.acknowledged_by
        lines.append(f":white_check_mark: *Acknowledged* by {by} {slack_date(page.acknowledged_at)}")
    elif page.resolved_at:
        lines.append(f":heavy_check_mark: Closed with the incident {slack_date(page.resolved_at)}")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
    if page.is_open:
        buttons = [{"type": "button", "style": "primary", "text": {"type": "plain_text", "text": "Acknowledge"},
                    "action_id": ACKNOWLEDGE_ACTION, "value": str(page.id)}]
        if page.failed:
            buttons.append({"type": "button", "text": {"type": "plain_text", "text": "Retry failed"},
                            "action_id": RETRY_ACTION, "value": str(page.id)})
        blocks.append({"type": "actions", "block_id": f"page-{page.id}", "elements": buttons})
    text = f"Paging {display_name} for incident {incident_number}"
    return text, blocks


def failure_message(page: PageView, display_name: str) -> str:
    failures = "; ".join(f"{name}: {error}" for name, error in page.failed.items())
    return (
        f":x: Paging *{display_name}* failed: {failures}. Nobody was reached that way. Fix the cause and press "
        "*Retry failed* on the page, or page another team with `/incident page <team>`."
    )
