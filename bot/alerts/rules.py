"""`[[alerts.rules]]`: what to do with an alert group, by its labels. The first rule whose every
`label = value` holds wins; no rule matching means the group is posted with a Declare button only. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.incidents.values import Severity

if TYPE_CHECKING:
    from bot.config import AlertsSection


@dataclass(frozen=True)
class Rule:
    match: dict[str, str]  # label -> value; every one must hold (exact, case-sensitive)
    declare: bool  # declare an incident as soon as a matching group fires
    incident_severity: Severity | None  # the declared incident's; None: the bot's default (SEV2)
    page: str | None  # a team of [teams], paged when an incident is declared from the group

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(name in labels and labels[name] == value for name, value in self.match.items())


def first_match(rules: Sequence[Rule], labels: Mapping[str, str]) -> Rule | None:
    """The first rule whose every label = value holds in `labels`, or None. (A rule with an empty
    `match` would match everything; the configuration refuses one.)"""
    return next((rule for rule in rules if rule.matches(labels)), None)


def rules_from(section: AlertsSection) -> list[Rule]:
    """The `[alerts]` section's rules, in the file's order."""
    return [Rule(match=dict(r.match), declare=r.declare, incident_severity=Severity(r.incident_severity), page=r.page)
            for r in section.rules]
