"""Block Kit for an alert group from monitoring: one message per group, kept current as alerts join, fire
again or resolve, with a Declare incident button until the group has an incident.

What monitoring sends is plain text of any length: every piece is escaped and clipped to Block Kit's
limits (handlers.mrkdwn), and a large group shows its first alerts and says how many more there are.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from typing import Any

from bot.alerts.service import AlertView, GroupView
from bot.incidents.values import Incident
from handlers import mrkdwn
from handlers.blocks import incident_reference
from handlers.timeline_view import when

DECLARE_ACTION = "alert_group_declare"
SHOWN_ALERTS = 20  # alerts listed in one message; the rest are counted
LABEL_TEXT = 300  # characters of one alert's distinguishing labels shown
SUMMARY_TEXT = 600  # characters of one alert's summary shown
LINK_NAMES = {"source": "Source", "dashboard": "Dashboard", "panel": "Panel", "runbook": "Runbook",
              "silence": "Silence", "image": "Image"}


def group_message(group: GroupView, incident: Incident | None, zone: tzinfo) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for the group's message in the alerts channel."""
    firing = group.firing
    state = f":fire: *FIRING* ({len(firing)} of {len(group.alerts)})" if firing else ":white_check_mark: *RESOLVED*"
    name = mrkdwn.escape(mrkdwn.clip(_without_state(group.title) or group.name, 150))
    labels = ", ".join(f"{k}={v}" for k, v in sorted(group.labels.items()))
    blocks: list[dict[str, Any]] = [
        mrkdwn.section(f"{state} {name}"),
        mrkdwn.context(mrkdwn.escape(mrkdwn.clip(f"{group.source} · {labels}", 2900))),
    ]
    shown = sorted(group.alerts, key=lambda a: (a.status != "firing", a.starts_at))[:SHOWN_ALERTS]
    blocks += [mrkdwn.section(_alert_line(alert, group, zone)) for alert in shown]
    if len(group.alerts) > SHOWN_ALERTS:
        blocks.append(mrkdwn.context(f"…and {len(group.alerts) - SHOWN_ALERTS} more alerts in this group"))
    if incident is not None:
        # Named by number alone when private: this channel is read by everyone the alerts reach.
        blocks.append(mrkdwn.section(f":white_check_mark: {_capitalized(incident_reference(incident))}"))
    else:
        blocks.append(mrkdwn.actions([mrkdwn.button("Declare incident", DECLARE_ACTION, str(group.id), style="danger")],
                                     block_id=f"alert-group-{group.id}"))
    text = f"{'FIRING' if firing else 'RESOLVED'}: {mrkdwn.clip(_without_state(group.title) or group.name, 150)}"
    return mrkdwn.message(mrkdwn.escape(text), blocks)


def named(alert: AlertView, group: GroupView) -> str:
    """An alert's name (bold) and the labels that tell it apart from the rest of its group (as code)."""
    own = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if group.labels.get(k) != v and k != "alertname")
    head = f"*{mrkdwn.escape(mrkdwn.clip(alert.name, 150))}*"
    return head + (f" `{mrkdwn.escape(mrkdwn.clip(own, LABEL_TEXT)).replace('`', chr(39))}`" if own else "")


def _alert_line(alert: AlertView, group: GroupView, zone: tzinfo) -> str:
    icon = ":red_circle:" if alert.status == "firing" else ":large_green_circle:"
    lines = [f"{icon} {named(alert, group)} since {when(alert.starts_at, zone, dated=True)}"
             + (f", resolved {when(alert.ends_at, zone, dated=True)}" if alert.status == "resolved" and alert.ends_at else "")]
    if alert.summary:
        lines.append(mrkdwn.escape(mrkdwn.clip(" ".join(alert.summary.split()), SUMMARY_TEXT)))
    links = [f"<{url}|{LINK_NAMES.get(kind, kind.title())}>" for kind, url in alert.links.items() if _linkable(url)]
    if links:
        lines.append(" · ".join(links))
    return mrkdwn.fit("\n".join(lines), mrkdwn.SECTION_TEXT)


def _capitalized(text: str) -> str:
    """"incident 7, <#C…>" as the start of a line: "Incident 7, <#C…>"."""
    return text.replace("incident", "Incident", 1)


def _without_state(title: str | None) -> str:
    """Grafana's title starts with its own state ("[FIRING:2] High memory"): the message says the state once."""
    return re.sub(r"^\[(?:FIRING|RESOLVED)(?::\d+)?\]\s*", "", title or "")


def _linkable(url: str) -> bool:
    """A URL Slack can show as a link: http(s), no characters that end or split mrkdwn's <url|text>."""
    return url.startswith(("http://", "https://")) and not any(ch in url for ch in "<>| \n") and len(url) < 1500
