"""Who an invitation to a channel reached: each person asked for ends up in exactly one of invited,
already there, or could not be invited (with Slack's reason)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Invitation:
    invited: tuple[str, ...] = ()  # user ids added to the channel by this invitation
    already: tuple[str, ...] = ()  # were members before it
    failed: Mapping[str, str] = field(default_factory=dict)  # user id -> Slack's error code (`user_not_found`…)

    def merged(self, other: Invitation) -> Invitation:
        return Invitation(self.invited + other.invited, self.already + other.already, {**self.failed, **other.failed})

    def as_json(self) -> dict[str, Any]:
        """`{"invited": [ids], "already": [ids], "failed": {id: code}}`, as it is stored."""
        return {"invited": list(self.invited), "already": list(self.already), "failed": dict(self.failed)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Invitation:
        return cls(tuple(data.get("invited") or ()), tuple(data.get("already") or ()), dict(data.get("failed") or {}))
