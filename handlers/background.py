"""Work done after Slack has been answered.

Slack wants an answer within 3 seconds, so listeners store what they were asked, acknowledge, and hand
the slow Web API work to `Background`. Work for one incident runs in order on one lane (a status change
is never published before the channel it goes to exists); different incidents run side by side.
Provider calls never run here (bot.paging.dispatch): a pager that hangs must not hold up Slack work.
"""

from __future__ import annotations

from bot.lanes import ErrorReporter, Lanes

__all__ = ["Background", "ErrorReporter"]


class Background(Lanes):
    def __init__(self, lanes: int = 8) -> None:
        super().__init__(lanes, name="work")
