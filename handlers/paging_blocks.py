"""Block Kit for pages: the page message in the incident channel, kept current as the page moves.

A page's message may be as long as the bot takes (2,900 characters as Slack sends them): it gets
sections of its own, so the page's state and its Acknowledge button are always there (Slack refuses a
whole message when one section passes 3,000 characters; handlers.mrkdwn)."""

from __future__ import annotations

from typing import Any

from bot.config import TeamSection
from bot.paging.service import PageView
from handlers import mrkdwn
from handlers.blocks import slack_date
from handlers.invites import describe

ACKNOWLEDGE_ACTION = "page_acknowledge"
RETRY_ACTION = "page_retry"
TEAM_NAME = 100  # characters of a team's display name shown (the config allows any length)
PROVIDER_ERROR = 300  # characters of a provider's error shown; the timeline keeps it whole
QUOTED_PIECE = 1400  # a page's message is quoted in pieces this long: a ">" a line at most doubles one


def team_name(display_name: str) -> str:
    """A team's configured display name (plain text) as mrkdwn: escaped, at most TEAM_NAME characters."""
    return mrkdwn.escape(mrkdwn.clip(display_name, TEAM_NAME))


def provider_error(error: object) -> str:
    """A provider's error (plain text from its answer) as mrkdwn: escaped and shortened."""
    return mrkdwn.escape(mrkdwn.clip(str(error), PROVIDER_ERROR))


def reach(team: TeamSection) -> str:
    ways = [name for name, key in (("PagerDuty", team.pagerduty_routing_key), ("Opsgenie", team.opsgenie_api_key)) if key]
    ways += [f"<@{member}>" for member in team.slack_members]
    return " · ".join(ways) or "nobody (the team has no contact configured)"


def page_message(page: PageView, display_name: str, team: TeamSection, incident_number: int) -> tuple[str, list[dict[str, Any]]]:
    """The page: who is paged and why (the message quoted, over as many sections as it takes), how it
    is reaching them, and the Acknowledge (and Retry failed) buttons while it is open."""
    who = f"<@{page.requested_by}>" if page.requested_by else "the bot (escalation)"
    name = team_name(display_name)
    heading = f":pager: *Paging {name}* for incident {incident_number}, requested by {who}"
    quoted: list[str] = []
    if page.message:  # an escalation's message is the bot's own plain text; a person's came escaped
        message = mrkdwn.escape(page.message) if page.escalated_from_id is not None else page.message
        quoted = [mrkdwn.quote(piece) for piece in mrkdwn.split(message, QUOTED_PIECE)]
    lines = [f"Reaching: {reach(team)}"]
    if page.invitation is not None:
        lines.append(describe(page.invitation))
    if page.deliveries:
        lines.append(" · ".join(
            f"{provider}: :white_check_mark: sent" if d.get("ok") else f"{provider}: :x: failed ({provider_error(d.get('error'))})"
            for provider, d in page.deliveries.items()
        ))
    elif page.status == "sending":
        lines.append(":hourglass_flowing_sand: sending…")
    if page.acknowledged_at:
        by = acknowledger(page.acknowledged_by)
        lines.append(f":white_check_mark: *Acknowledged* by {by} {slack_date(page.acknowledged_at)}")
    elif page.resolved_at and page.closed_by:
        lines.append(f":heavy_check_mark: *Closed* by {mrkdwn.escape(mrkdwn.clip(page.closed_by, TEAM_NAME))} {slack_date(page.resolved_at)}")
    elif page.resolved_at:
        lines.append(f":heavy_check_mark: Closed with the incident {slack_date(page.resolved_at)}")
    # One section when it all fits (the usual page); else the heading, the message and the state each
    # in as many sections as they take: nothing is shortened but the state, and the buttons stay.
    blocks = [mrkdwn.section(text) for text in mrkdwn.pack([heading, *quoted, "\n".join(lines)], mrkdwn.SECTION_TEXT)]
    if page.is_open:
        buttons = [mrkdwn.button("Acknowledge", ACKNOWLEDGE_ACTION, str(page.id), style="primary")]
        if page.failed:
            buttons.append(mrkdwn.button("Retry failed", RETRY_ACTION, str(page.id)))
        blocks.append(mrkdwn.actions(buttons, block_id=f"page-{page.id}"))
    return mrkdwn.message(f"Paging {name} for incident {incident_number}", blocks)


def acknowledger(by: str | None) -> str:
    """Who acknowledged: a Slack user as a mention, a pager's name (plain text) escaped."""
    if by and by.startswith(("U", "W")) and " " not in by:
        return f"<@{by}>"
    return mrkdwn.escape(mrkdwn.clip(by or "someone", TEAM_NAME))


def failure_message(page: PageView, display_name: str, provider: str) -> str:
    """`provider` could not deliver the page (its error as recorded on the page)."""
    error = provider_error(page.failed.get(provider, "it did not say why"))
    others = [name for name, outcome in page.deliveries.items() if name != provider and outcome.get("ok")]
    reached = f" {', '.join(others)} did take it." if others else " Nobody was reached that way."
    return mrkdwn.fallback(
        f":x: Paging *{team_name(display_name)}* through {provider} failed: {error}.{reached} Fix the cause and press "
        "*Retry failed* on the page, or page another team with `/incident page &lt;team&gt;`."
    )
